"""The sample-data generator: byte-determinism, SPEC §2 shapes, planted anomalies, ground truth.

Pipeline tests rely on these properties of the sample extracts (a correction,
a duplicate, returns, prospects, every lifecycle stage), so each one is
pinned here, at small sizes to stay fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.special import hyp2f1

from customer_equity.generate import (
    COST_COLUMNS,
    CUSTOMER_COLUMNS,
    HOLDER_ACTIVE_DAYS,
    HOLDER_SHARE,
    HOLDINGS_COLUMNS,
    SIDECAR_NAME,
    TRANSACTION_COLUMNS,
    WALLET_COLUMNS,
    GenerationReport,
    customers_for_transactions,
    expected_transactions_per_buyer,
    generate_extracts,
)
from customer_equity.schemas.inputs import COST_TYPES

END_DATE = date(2025, 12, 31)
DEMO_BUYERS = 3000
STATISTICAL_BUYERS = 20_000


@dataclass(frozen=True)
class Generated:
    inbox: Path
    report: GenerationReport

    @property
    def sidecar(self) -> dict[str, object]:
        return json.loads((self.inbox / SIDECAR_NAME).read_text(encoding="utf-8"))

    def transaction_files(self) -> list[Path]:
        return sorted((self.inbox / "transactions").iterdir())

    def transactions(self) -> pl.DataFrame:
        """Every transaction row in feed order, with the file it came from."""
        return pl.concat(
            _read(path).with_columns(pl.lit(path.name).alias("file"))
            for path in self.transaction_files()
        )

    def loaded_transactions(self) -> pl.DataFrame:
        """What ingestion should end with: one row per transaction_id, latest file wins."""
        return self.transactions().unique("transaction_id", keep="last", maintain_order=True)

    def holdings(self) -> pl.DataFrame:
        """Every holdings row, one monthly file after the other."""
        return pl.concat(
            pl.read_csv(path, try_parse_dates=True, schema_overrides={"risk_level": pl.String})
            for path in sorted((self.inbox / "holdings").iterdir())
        )

    def extract(self, kind: str) -> pl.DataFrame:
        (path,) = (self.inbox / kind).iterdir()
        return _read(path)


def _read(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, try_parse_dates=True, schema_overrides={"referred_by": pl.String})


def _generate(root: Path, **arguments: object) -> Generated:
    inbox = root / "inbox"
    return Generated(inbox, generate_extracts(inbox, **arguments))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("demo"), customers=DEMO_BUYERS)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("large"), customers=STATISTICAL_BUYERS, seed=7)


def _file_bytes(inbox: Path) -> dict[str, bytes]:
    return {
        path.relative_to(inbox).as_posix(): path.read_bytes()
        for path in sorted(inbox.rglob("*"))
        if path.is_file()
    }


def test_same_seed_writes_identical_bytes(demo: Generated, tmp_path: Path) -> None:
    again = _generate(tmp_path, customers=DEMO_BUYERS)
    assert _file_bytes(again.inbox) == _file_bytes(demo.inbox)


def test_different_seed_writes_different_extracts(demo: Generated, tmp_path: Path) -> None:
    other = _generate(tmp_path, customers=DEMO_BUYERS, seed=43)
    demo_bytes, other_bytes = _file_bytes(demo.inbox), _file_bytes(other.inbox)
    assert demo_bytes.keys() == other_bytes.keys()
    for name in ("transactions/transactions_2025-12-24_history.csv", "wallets/wallets.csv"):
        assert demo_bytes[name] != other_bytes[name]


def test_every_kind_has_the_canonical_columns(demo: Generated) -> None:
    expected = {
        "transactions": TRANSACTION_COLUMNS,
        "customers": CUSTOMER_COLUMNS,
        "wallets": WALLET_COLUMNS,
        "costs": COST_COLUMNS,
        "holdings": HOLDINGS_COLUMNS,
    }
    for kind, columns in expected.items():
        for path in (demo.inbox / kind).iterdir():
            header = path.read_text(encoding="utf-8").split("\n", 1)[0]
            assert tuple(header.split(",")) == columns, path


def test_csv_spells_iso_dates_and_two_decimals(demo: Generated) -> None:
    raw = pl.read_csv(demo.transaction_files()[0], infer_schema=False)
    assert raw["transaction_date"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    for money in ("amount", "cost", "discount"):
        assert raw[money].str.contains(r"^-?\d+\.\d{2}$").all(), money
    assert raw["transaction_id"].str.contains(r"^T\d{9}$").all()
    assert raw["customer_id"].str.contains(r"^C\d{7}$").all()
    assert (raw["currency"] == "USD").all()


def test_counts_agree_with_files_report_and_sidecar(demo: Generated) -> None:
    sidecar = demo.sidecar
    rows = {
        "transactions": demo.transactions().height,
        **{kind: demo.extract(kind).height for kind in ("customers", "wallets", "costs")},
        "holdings": demo.holdings().height,
    }
    assert dict(demo.report.counts) == rows == sidecar["counts"]
    assert rows["customers"] == DEMO_BUYERS + sidecar["prospects"]
    assert sidecar["prospects"] == round(0.05 * DEMO_BUYERS)
    assert [path.relative_to(demo.inbox).as_posix() for path in demo.report.files] == [
        *sidecar["files"],
        SIDECAR_NAME,
    ]
    assert sidecar["bgnbd"]["time_unit"] == "days"
    assert {"r", "alpha", "a", "b"} <= sidecar["bgnbd"].keys()
    assert {"p", "q", "v"} <= sidecar["gamma_gamma"].keys()
    assert sidecar["seed"] == 42
    assert sidecar["end_date"] == "2025-12-31"


def test_feed_is_one_history_file_then_one_file_per_day(demo: Generated) -> None:
    names = [path.name for path in demo.transaction_files()]
    days = [END_DATE - timedelta(days=offset) for offset in range(6, -1, -1)]
    assert names == [
        "transactions_2025-12-24_history.csv",
        *(f"transactions_{day.isoformat()}.csv" for day in days),
    ]
    rows = demo.transactions()
    history = rows.filter(pl.col("file") == names[0])
    assert history["transaction_date"].max() < days[0]
    for day, name in zip(days[:-1], names[1:-1], strict=True):
        assert (rows.filter(pl.col("file") == name)["transaction_date"] == day).all()
    assert rows.filter(pl.col("file") == names[0])["transaction_id"].is_unique().all()


def test_last_file_carries_exactly_one_correction_and_one_duplicate(demo: Generated) -> None:
    rows = demo.transactions()
    last_file = demo.transaction_files()[-1].name
    earlier = rows.filter(pl.col("file") != last_file).drop("file")
    resent = (
        rows.filter(pl.col("file") == last_file)
        .drop("file")
        .join(earlier.select("transaction_id"), on="transaction_id", how="semi")
    )
    assert resent.height == 2
    exact_copies = resent.join(earlier, on=list(TRANSACTION_COLUMNS), how="semi")
    corrected = resent.join(exact_copies, on="transaction_id", how="anti")
    assert exact_copies.height == 1
    assert corrected.height == 1
    assert rows.filter(pl.col("file") != last_file)["transaction_id"].is_unique().all()

    sidecar = demo.sidecar
    assert sidecar["duplicated_transaction_id"] == exact_copies["transaction_id"][0]
    assert sidecar["corrected_transaction_id"] == corrected["transaction_id"][0]
    assert sidecar["resent_in_file"] == last_file
    before = earlier.filter(pl.col("transaction_id") == corrected["transaction_id"][0])
    assert before["amount"][0] == sidecar["corrected_original_amount"]
    assert corrected["amount"][0] == sidecar["corrected_amount"] != before["amount"][0]


def test_holdings_are_month_end_balances_of_a_share_of_active_buyers(demo: Generated) -> None:
    holdings = demo.holdings()
    names = [path.name for path in sorted((demo.inbox / "holdings").iterdir())]
    month_ends = ["06-30", "07-31", "08-31", "09-30", "10-31", "11-30", "12-31"]
    assert names == [f"holdings_2025-{day}.csv" for day in month_ends]
    assert holdings.select("customer_id", "product_id", "balance_date").is_unique().all()
    assert (holdings["balance"] >= 0).all()
    customers = demo.extract("customers")
    recent = demo.transactions().filter(
        pl.col("transaction_date") >= END_DATE - timedelta(days=HOLDER_ACTIVE_DAYS)
    )
    open_buyers = customers.filter(
        pl.col("customer_id").is_in(recent["customer_id"].implode())
        & (pl.col("status") == "active")
    )
    holders = holdings["customer_id"].unique()
    assert holders.is_in(open_buyers["customer_id"].implode()).all()
    assert abs(holders.len() / open_buyers.height - HOLDER_SHARE) < 0.03
    assert set(holdings["risk_level"].drop_nulls().unique()) <= {f"R{n}" for n in range(1, 6)}
    assert set(holdings["liquidity"].drop_nulls().unique()) == {"medium"}  # time deposits


def test_holdings_plant_unsuitable_stale_sold_and_wealthy_positions(demo: Generated) -> None:
    """Enough of each case for the wealth view to show it (demo size, fixed seed)."""
    holdings = demo.holdings()
    latest = holdings.group_by("customer_id", "product_id").agg(
        pl.col("balance_date").max().alias("last"),
        pl.col("balance").sort_by("balance_date").last().alias("last_balance"),
    )
    stale = latest.filter((pl.col("last") <= date(2025, 10, 31)) & (pl.col("last_balance") > 0))
    sold = latest.filter(pl.col("last_balance") == 0)
    assert stale.height >= 30 and sold.height >= 20
    profiles = demo.extract("customers").select("customer_id", "risk_profile")
    risky_for_conservative = holdings.join(profiles, on="customer_id").filter(
        (pl.col("risk_profile") == "conservative")
        & pl.col("asset_class").is_in(["equities", "funds"])
    )
    assert risky_for_conservative["customer_id"].n_unique() >= 30  # above R2: unsuitable
    aum = (
        holdings.filter(pl.col("balance_date") == date(2025, 12, 31))
        .group_by("customer_id")
        .agg(pl.col("balance").sum())
    )
    assert (aum["balance"] >= 6_000_000).sum() >= 1
    assert (aum["balance"].is_between(500_000, 6_000_000, closed="left")).sum() >= 30


def test_prospects_are_customers_without_transactions(demo: Generated) -> None:
    customers = demo.extract("customers")
    buyers = demo.transactions()["customer_id"].unique()
    assert buyers.is_in(customers["customer_id"].implode()).all()
    prospects = customers.filter(~pl.col("customer_id").is_in(buyers.implode()))
    assert prospects.height == demo.sidecar["prospects"]
    assert buyers.len() == DEMO_BUYERS


def test_returns_are_negative_and_follow_a_purchase(demo: Generated) -> None:
    rows = demo.loaded_transactions()
    returns = rows.filter(pl.col("amount") < 0)
    assert 0.015 < returns.height / rows.height < 0.04
    assert (returns["cost"] < 0).all()
    assert (rows.filter(pl.col("amount") > 0)["cost"] > 0).all()
    assert (rows["amount"] != 0).all()
    first_purchase = (
        rows.filter(pl.col("amount") > 0)
        .group_by("customer_id")
        .agg(pl.col("transaction_date").min().alias("first_purchase"))
    )
    checked = returns.join(first_purchase, on="customer_id", how="left")
    assert (checked["transaction_date"] > checked["first_purchase"]).all()


def test_some_customer_buys_twice_on_one_day(demo: Generated) -> None:
    purchases = demo.loaded_transactions().filter(pl.col("amount") > 0)
    same_day = (
        purchases.group_by("customer_id", "transaction_date").len().filter(pl.col("len") >= 2)
    )
    assert same_day.height >= 10


def test_customer_master_is_consistent(demo: Generated) -> None:
    customers = demo.extract("customers")
    assert customers["customer_id"].is_unique().all()
    number = customers["customer_id"].str.slice(1).cast(pl.Int64)
    referred = customers.filter(pl.col("referred_by").is_not_null())
    assert 0.07 < referred.height / customers.height < 0.13
    assert referred["referred_by"].is_in(customers["customer_id"].implode()).all()
    referrer_number = referred["referred_by"].str.slice(1).cast(pl.Int64)
    assert (referrer_number < referred["customer_id"].str.slice(1).cast(pl.Int64)).all()
    assert (number.diff().drop_nulls() == 1).all()
    assert (customers["created_date"].diff().drop_nulls().dt.total_days() >= 0).all()

    first_purchase = (
        demo.loaded_transactions()
        .group_by("customer_id")
        .agg(pl.col("transaction_date").min().alias("first_purchase"))
    )
    joined = customers.join(first_purchase, on="customer_id", how="inner")
    assert (joined["created_date"] <= joined["first_purchase"]).all()

    assert customers["segment"].value_counts()["count"].min() >= 30
    assert customers["status"].unique().sort().to_list() == ["active", "closed"]
    closed = customers.filter(pl.col("status") == "closed")
    assert 0.01 < closed.height / customers.height < 0.06
    assert closed["closed_date"].is_not_null().all()
    assert customers.filter(pl.col("status") == "active")["closed_date"].is_null().all()
    last_transaction = (
        demo.loaded_transactions()
        .group_by("customer_id")
        .agg(pl.col("transaction_date").max().alias("last_transaction"))
    )
    closed = closed.join(last_transaction, on="customer_id")
    assert (closed["closed_date"] > closed["last_transaction"]).all()
    assert set(customers["risk_profile"]) == {"conservative", "steady", "balanced", "aggressive"}


def test_cost_rows_are_keyed_and_positive(demo: Generated) -> None:
    costs = demo.extract("costs")
    assert costs.select(pl.struct("customer_id", "cost_date", "cost_type").is_unique().all()).item()
    assert (costs["amount"] > 0).all()
    assert set(costs["cost_type"]) == set(COST_TYPES)
    acquisition = costs.filter(pl.col("cost_type") == "acquisition")
    customers = demo.extract("customers")
    on_created = acquisition.join(customers, on="customer_id").filter(
        pl.col("cost_date") == pl.col("created_date")
    )
    assert acquisition.height == on_created.height == customers.height
    assert (costs["cost_date"] <= END_DATE).all()
    rebates = costs.filter(pl.col("cost_type") == "rebate")
    assert (rebates["cost_date"].dt.month() == 12).all()
    assert (rebates["cost_date"].dt.day() == 31).all()


def test_wallets_cover_our_revenue_and_reach_high_shares(demo: Generated) -> None:
    wallets = demo.extract("wallets")
    customers = demo.extract("customers")
    buyers = demo.transactions()["customer_id"].unique()
    prospects = customers.filter(~pl.col("customer_id").is_in(buyers.implode()))["customer_id"]
    assert prospects.is_in(wallets["customer_id"].implode()).all()
    covered_buyers = wallets["customer_id"].unique().is_in(buyers.implode()).sum()
    assert 0.6 < covered_buyers / DEMO_BUYERS < 0.8
    assert (wallets["period_start"].dt.month() == 1).all()
    assert (
        wallets["period_end"] == wallets["period_start"].dt.offset_by("1y") - timedelta(1)
    ).all()

    yearly_revenue = (
        demo.loaded_transactions()
        .group_by("customer_id", pl.col("transaction_date").dt.year().alias("year"))
        .agg(pl.col("amount").sum().alias("revenue"))
    )
    share = (
        wallets.with_columns(pl.col("period_start").dt.year().alias("year"))
        .join(yearly_revenue, on=["customer_id", "year"], how="left")
        .with_columns(pl.col("revenue").fill_null(0.0))
    )
    assert (share["total_purchases"] >= share["revenue"] - 0.005).all()
    assert (share["total_purchases"] > 0).all()
    assert (share["revenue"] / share["total_purchases"] >= 0.6).sum() >= 50


def test_every_lifecycle_stage_occurs(demo: Generated) -> None:
    """A simplified SPEC §5 on the demo data: each stage must have customers to show."""
    as_of = END_DATE
    half_year = timedelta(days=180)
    rows = demo.loaded_transactions()
    in_last = pl.col("transaction_date") > as_of - half_year
    in_prior = (pl.col("transaction_date") > as_of - 2 * half_year) & ~in_last
    summary = rows.group_by("customer_id").agg(
        first=pl.col("transaction_date").min(),
        last=pl.col("transaction_date").filter(pl.col("amount") > 0).max(),
        recent=pl.col("amount").filter(in_last).sum(),
        prior=pl.col("amount").filter(in_prior).sum(),
        window=pl.col("amount").filter(pl.col("transaction_date") > as_of - 2 * half_year).sum(),
    )
    wallet = demo.extract("wallets").filter(pl.col("period_start").dt.year() == as_of.year)
    stage = (
        demo.extract("customers")
        .join(summary, on="customer_id", how="left")
        .join(wallet, on="customer_id", how="left")
        .select(
            pl.when((pl.col("status") == "closed") | (pl.col("last") < as_of - 2 * half_year))
            .then(pl.lit("termination"))
            .when(pl.col("first").is_null())
            .then(pl.lit("potential"))
            .when(pl.col("first") > as_of - half_year)
            .then(pl.lit("development"))
            .when(pl.col("recent") <= 0.7 * pl.col("prior"))
            .then(pl.lit("decline"))
            .when(pl.col("window") / pl.col("total_purchases") >= 0.6)
            .then(pl.lit("maturity"))
            .otherwise(pl.lit("growth"))
            .alias("stage")
        )
    )
    counts = dict(stage["stage"].value_counts().iter_rows())
    stages = {"termination", "potential", "development", "decline", "maturity", "growth"}
    assert counts.keys() == stages
    assert min(counts.values()) >= 30, counts


def test_parquet_feed_has_typed_columns_and_is_deterministic(tmp_path: Path) -> None:
    first = _generate(tmp_path / "first", customers=300, file_format="parquet")
    second = _generate(tmp_path / "second", customers=300, file_format="parquet")
    assert _file_bytes(first.inbox) == _file_bytes(second.inbox)
    files = first.transaction_files()
    assert {path.suffix for path in files} == {".parquet"}
    schema = pl.read_parquet_schema(files[0])
    assert list(schema) == list(TRANSACTION_COLUMNS)
    assert schema["transaction_date"] == pl.Date
    assert schema["amount"] == schema["cost"] == schema["discount"] == pl.Float64
    assert schema["quantity"] == pl.Int64
    assert (first.inbox / "customers" / "customers.csv").exists()


def test_refuses_an_inbox_that_already_holds_extracts(demo: Generated) -> None:
    with pytest.raises(FileExistsError):
        generate_extracts(demo.inbox, customers=DEMO_BUYERS)


def test_transaction_count_follows_the_sizing_formula(large: Generated) -> None:
    """Per-buyer row counts are heavy-tailed (sd ≈ 15), so 20 000 buyers give ~1.5 % noise."""
    expected = STATISTICAL_BUYERS * expected_transactions_per_buyer()
    assert abs(large.report.counts["transactions"] / expected - 1) < 0.06
    assert abs(customers_for_transactions(10_000_000) - 1_410_000) < 20_000


def test_purchase_counts_match_the_recorded_bgnbd_parameters(large: Generated) -> None:
    """Observed repeat-purchase days vs. the BG/NBD expectations of FHL (2005).

    For each buyer with observation length T (days from the first purchase to
    the end of end_date), E[X(T)] = (a+b-1)/(a-1) · [1 - (α/(α+T))^r ·
    2F1(r, b; a+b-1; T/(α+T))] and P(X(T) = 0) = (α/(α+T))^r. Tolerances:
    at 20 000 buyers the standard error is ~1.3 % of the mean and ~0.25
    points of the zero share (4 SE is allowed); in addition, purchases falling
    on the same day merge into one purchase day, which lowers the mean by ~3 %
    and raises the zero share by ~0.5 points at these parameters (measured at
    1.4 M buyers). The test also checks that a 25 % error in r or α fails.
    """
    parameters = large.sidecar["bgnbd"]
    r, alpha, a, b = (parameters[name] for name in ("r", "alpha", "a", "b"))
    end = pl.lit(END_DATE)
    summary = (
        large.loaded_transactions()
        .filter(pl.col("amount") > 0)
        .group_by("customer_id")
        .agg(
            repeats=pl.col("transaction_date").n_unique() - 1,
            observed_days=(end - pl.col("transaction_date").min()).dt.total_days() + 0.5,
        )
    )
    repeats = summary["repeats"].to_numpy()
    t = summary["observed_days"].to_numpy()

    def consistent(r: float, alpha: float) -> bool:
        """Do both statistics agree with BG/NBD(r, α, a, b) within the tolerances above?"""
        z = t / (alpha + t)
        zero_repeat = (alpha / (alpha + t)) ** r
        bracket = 1 - zero_repeat * hyp2f1(r, b, a + b - 1, z)
        mean_gap = repeats.mean() - np.mean((a + b - 1) / (a - 1) * bracket)
        mean_error = repeats.std() / np.sqrt(repeats.size)
        mean_ok = -4 * mean_error - 0.03 * repeats.mean() < mean_gap < 4 * mean_error
        expected_zero = zero_repeat.mean()
        zero_error = np.sqrt(expected_zero * (1 - expected_zero) / repeats.size)
        zero_gap = np.mean(repeats == 0) - expected_zero
        zero_ok = -4 * zero_error < zero_gap < 4 * zero_error + 0.005
        return bool(mean_ok and zero_ok)

    assert consistent(r, alpha)
    for wrong_r, wrong_alpha in ((1.25 * r, alpha), (0.8 * r, alpha), (r, 1.25 * alpha)):
        assert not consistent(wrong_r, wrong_alpha), (wrong_r, wrong_alpha)

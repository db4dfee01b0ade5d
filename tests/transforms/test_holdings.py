"""SPEC §10 holdings: every figure of one three-product customer worked by hand.

D = 2025-12-31, default settings: stale_days 45, conservative tolerates R2 and
needs 30 % in high-liquidity products; cash is high/R1, funds medium/R3.

Customer A (conservative), rows up to D:
  P1 cash   2025-12-01 25,000; 2025-12-31 20,000       → latest 20,000, high, R1
  P2 funds  2025-06-30 40,000; 2025-12-15 50,000 (retirement)   → 50,000, medium, R3
  P3 funds  2025-11-16 30,000, row risk_level 4 (retirement)    → 45 days old: still counts
  P4 equities 2025-06-30 10,000; 2025-11-15 15,000     → 46 days old: stale, ignored
  P1 cash   2025-06-30 60,000
  and after D: P1 2026-01-05 99,999 (never seen by a snapshot of D)

  AUM = 20,000 + 50,000 + 30,000 = 100,000 (mass); products 3, asset classes 2.
  Product shares 0.2 / 0.5 / 0.3 → product Herfindahl 0.04 + 0.25 + 0.09 = 0.38,
    largest product share 0.5.
  Class shares cash 0.2, funds 0.8 → asset-class Herfindahl 0.04 + 0.64 = 0.68.
  Weighted risk (20,000·1 + 50,000·3 + 30,000·4) / 100,000 = 290,000 / 100,000 = 2.9
    → return expectation medium (2 < 2.9 ≤ 3.5).
  Suitability: tolerated 2; P2 (R3) and P3 (R4) are above: 80,000 / 100,000 = 0.8,
    flagged.
  Liquidity: high = cash 20,000 → 0.2 < 0.3 (conservative) → liquidity gap.
  Mix: asset_class cash 0.2 / funds 0.8; liquidity high 0.2 / medium 0.8;
    goal retirement 0.8 / unspecified 0.2.
  180 days ago (2025-07-04; positions not older than 2025-05-20):
    P1 60,000 + P2 40,000 + P4 10,000 = 110,000 (P3 not yet bought)
    → aum_change = 100,000 / 110,000 − 1 = −1/11 = −0.0909…
  stale_products = 1 (P4).
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.schemas.outputs import conform
from customer_equity.settings import AumTiers, Holdings, Settings
from customer_equity.transforms import holdings as rules
from customer_equity.transforms.outputs import holdings_tables, no_holdings
from tests.conftest import AS_OF

SETTINGS = Settings()
HOLDINGS = SETTINGS.holdings


def holdings(*rows: tuple) -> pl.LazyFrame:
    """Rows of (customer, date, product, class, balance[, liquidity[, risk_level[, goal]]])."""
    padded = [row + (None,) * (8 - len(row)) for row in rows]
    return pl.DataFrame(padded, schema=no_holdings().collect_schema(), orient="row").lazy()


def customers(*rows: tuple[str, str | None]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "customer_id": [c for c, _ in rows],
            "created_date": [date(2020, 1, 1)] * len(rows),
            "segment": ["wealth"] * len(rows),
            "risk_profile": [profile for _, profile in rows],
        },
        schema={
            "customer_id": pl.String,
            "created_date": pl.Date,
            "segment": pl.String,
            "risk_profile": pl.String,
        },
    )


A_ROWS = (
    ("A", date(2025, 12, 1), "P1", "cash", 25_000.0),
    ("A", date(2025, 12, 31), "P1", "cash", 20_000.0),
    ("A", date(2025, 6, 30), "P2", "funds", 40_000.0, None, None, "retirement"),
    ("A", date(2025, 12, 15), "P2", "funds", 50_000.0, None, None, "retirement"),
    ("A", date(2025, 11, 16), "P3", "funds", 30_000.0, None, 4.0, "retirement"),
    ("A", date(2025, 6, 30), "P4", "equities", 10_000.0),
    ("A", date(2025, 11, 15), "P4", "equities", 15_000.0),
    ("A", date(2025, 6, 30), "P1", "cash", 60_000.0),
    ("A", date(2026, 1, 5), "P1", "cash", 99_999.0),
)


def tables(
    rows: pl.LazyFrame, people: pl.LazyFrame, settings: Settings = SETTINGS
) -> dict[str, pl.DataFrame]:
    return {
        name: conform(name, frame.collect())
        for name, frame in holdings_tables(rows, people, AS_OF, settings).items()
    }


@pytest.fixture(scope="module")
def worked() -> dict[str, pl.DataFrame]:
    return tables(holdings(*A_ROWS), customers(("A", "conservative")))


def test_the_three_product_customer(worked: dict[str, pl.DataFrame]) -> None:
    (a,) = worked["customer_holdings"].to_dicts()
    assert a["aum"] == 100_000.0 and a["aum_tier"] == "mass"
    assert (a["products"], a["asset_classes"], a["stale_products"]) == (3, 2, 1)
    assert a["product_herfindahl"] == pytest.approx(0.38, abs=1e-9)
    assert a["asset_class_herfindahl"] == pytest.approx(0.68, abs=1e-9)
    assert a["largest_product_share"] == pytest.approx(0.5)
    assert a["holdings_risk_level"] == pytest.approx(2.9)
    assert a["return_expectation"] == "medium"
    assert (a["risk_profile"], a["tolerated_risk_level"]) == ("conservative", 2)
    assert a["unsuitable_share"] == pytest.approx(0.8) and a["suitability_flag"] is True
    assert a["high_liquidity_share"] == pytest.approx(0.2)
    assert (a["min_liquid_share"], a["liquidity_gap"]) == (0.3, True)
    assert a["aum_180d_ago"] == 110_000.0
    assert a["aum_change"] == pytest.approx(-1 / 11)
    assert a["liabilities"] == 0.0
    assert a["last_balance_date"] == date(2025, 12, 31)


def test_the_mix_of_the_three_product_customer(worked: dict[str, pl.DataFrame]) -> None:
    mix = {
        (row["dimension"], row["bucket"]): (row["balance"], row["share"])
        for row in worked["holdings_mix"].to_dicts()
    }
    assert mix == {
        ("asset_class", "cash"): (20_000.0, pytest.approx(0.2)),
        ("asset_class", "funds"): (80_000.0, pytest.approx(0.8)),
        ("liquidity", "high"): (20_000.0, pytest.approx(0.2)),
        ("liquidity", "medium"): (80_000.0, pytest.approx(0.8)),
        ("goal", "retirement"): (80_000.0, pytest.approx(0.8)),
        ("goal", "unspecified"): (20_000.0, pytest.approx(0.2)),
    }


def test_positions_take_the_latest_balance_and_drop_stale_ones() -> None:
    held = rules.positions(holdings(*A_ROWS), AS_OF, HOLDINGS).collect()
    assert dict(held.select("product_id", "balance").iter_rows()) == {
        "P1": 20_000.0,
        "P2": 50_000.0,
        "P3": 30_000.0,  # exactly stale_days old: still a position
    }
    looser = rules.positions(holdings(*A_ROWS), AS_OF, Holdings(stale_days=46)).collect()
    assert set(looser["product_id"]) == {"P1", "P2", "P3", "P4"}


def test_rows_after_d_change_nothing(worked: dict[str, pl.DataFrame]) -> None:
    without_future = tables(
        holdings(*(row for row in A_ROWS if row[1] <= AS_OF)), customers(("A", "conservative"))
    )
    for name, frame in worked.items():
        assert frame.equals(without_future[name]), name


def test_unknown_profile_is_null_not_a_flag_and_gets_the_default_liquid_share() -> None:
    rows = holdings(
        ("U", AS_OF, "E1", "equities", 900.0),
        ("U", AS_OF, "C1", "cash", 100.0),
        ("N", AS_OF, "E1", "equities", 500.0),
        ("S", AS_OF, "E1", "equities", 500.0),
    )
    people = customers(("U", "yolo"), ("N", None), ("S", " Steady "))
    by_customer = {
        r["customer_id"]: r for r in tables(rows, people)["customer_holdings"].to_dicts()
    }
    u, n, s = by_customer["U"], by_customer["N"], by_customer["S"]
    assert (u["tolerated_risk_level"], u["unsuitable_share"], u["suitability_flag"]) == (
        None,
        None,
        None,
    )
    assert (n["suitability_flag"], n["risk_profile"]) == (None, None)
    # equities are high-liquidity: U 0.9 + cash 0.1 = 1.0, above the default 0.1
    assert (u["high_liquidity_share"], u["min_liquid_share"], u["liquidity_gap"]) == (
        1.0,
        0.1,
        False,
    )
    # " Steady " is steady: tolerates R3, equities are R4 → all unsuitable
    assert (s["tolerated_risk_level"], s["unsuitable_share"], s["suitability_flag"]) == (
        3,
        1.0,
        True,
    )


def test_chinese_profile_names_map_like_the_english_ones() -> None:
    rows = holdings(("Z", AS_OF, "B1", "bonds", 100.0), ("Z", AS_OF, "F1", "funds", 100.0))
    (z,) = tables(rows, customers(("Z", "保守")))["customer_holdings"].to_dicts()
    assert (z["tolerated_risk_level"], z["unsuitable_share"], z["min_liquid_share"]) == (
        2,
        0.5,
        0.3,
    )


def test_no_earlier_position_gives_null_change() -> None:
    rows = holdings(("N", AS_OF, "C1", "cash", 100.0), ("N", date(2025, 5, 1), "C1", "cash", 50.0))
    (n,) = tables(rows, customers(("N", "steady")))["customer_holdings"].to_dicts()
    # 2025-05-01 is 64 days before D − 180 (2025-07-04): stale then, so no earlier AUM
    assert (n["aum"], n["aum_180d_ago"], n["aum_change"]) == (100.0, None, None)


def test_liabilities_are_reported_apart_and_not_in_aum_or_shares() -> None:
    settings = Settings(
        holdings=Holdings(
            asset_classes=(*HOLDINGS.asset_classes, "loans"), liability_classes=("loans",)
        )
    )
    rows = holdings(
        ("L", AS_OF, "C1", "cash", 300.0),
        ("L", AS_OF, "F1", "funds", 100.0),
        ("L", AS_OF, "M1", "loans", -5_000.0),
    )
    result = tables(rows, customers(("L", "balanced")), settings)
    (row,) = result["customer_holdings"].to_dicts()
    assert (row["aum"], row["liabilities"], row["products"]) == (400.0, -5_000.0, 2)
    assert row["product_herfindahl"] == pytest.approx(0.75**2 + 0.25**2)
    assert set(result["holdings_mix"]["bucket"]) == {"cash", "funds", "high", "medium", NO_GOAL}


NO_GOAL = rules.NO_GOAL


def test_a_customer_holding_only_zero_balances_has_null_shares() -> None:
    rows = holdings(("Z", AS_OF, "C1", "cash", 0.0))
    result = tables(rows, customers(("Z", "steady")))
    (z,) = result["customer_holdings"].to_dicts()
    assert (z["aum"], z["products"], z["aum_tier"]) == (0.0, 0, "mass")
    assert z["product_herfindahl"] is None and z["suitability_flag"] is None
    assert result["holdings_mix"].height == 0  # nothing held, nothing to mix


def test_only_stale_positions_mean_no_row() -> None:
    rows = holdings(("S", date(2025, 10, 1), "C1", "cash", 100.0))
    assert tables(rows, customers(("S", "steady")))["customer_holdings"].height == 0


def test_aum_tiers_follow_the_spec_thresholds() -> None:
    frame = pl.DataFrame({"aum": [0.0, 499_999.99, 500_000.0, 5_999_999.0, 6_000_000.0, None]})
    tiers = frame.select(rules.aum_tier(pl.col("aum"), AumTiers()).alias("t"))["t"].to_list()
    assert tiers == ["mass", "mass", "affluent", "affluent", "private_banking", None]


@pytest.mark.parametrize(
    ("level", "expected"),
    [(1.0, "stable"), (2.0, "stable"), (2.01, "medium"), (3.5, "medium"), (3.51, "high")],
)
def test_return_expectation_bands(level: float, expected: str) -> None:
    frame = pl.DataFrame({"level": [level]})
    assert frame.select(rules.return_expectation(pl.col("level")).alias("e"))["e"][0] == expected


def test_no_holdings_extract_gives_empty_tables() -> None:
    result = tables(no_holdings(), customers(("A", "steady")))
    assert {name: frame.height for name, frame in result.items()} == {
        "customer_holdings": 0,
        "holdings_mix": 0,
    }


def test_inputs_are_not_mutated_and_order_does_not_matter(
    worked: dict[str, pl.DataFrame],
) -> None:
    shuffled = holdings(*A_ROWS).collect().sample(fraction=1.0, shuffle=True, seed=5).lazy()
    again = tables(shuffled, customers(("A", "conservative")))
    for name, frame in worked.items():
        assert frame.equals(again[name]), name


@pytest.mark.parametrize("seed", range(8))
def test_mix_shares_are_bucket_balance_over_aum_bit_for_bit(seed: int) -> None:
    """0.1 + 0.2 + 0.3 is 0.6 or 0.6000000000000001 depending on the order of the sum.

    A share must not depend on the order rows arrive in (a backfill re-run
    compares bit for bit): it is the bucket's balance over the customer's AUM,
    both exact fixed-point sums.
    """
    rows = holdings(
        *(
            (f"M{n}", AS_OF, f"P{k}", asset_class, amount, None, None, goal)
            for n in range(20)
            for k, (asset_class, amount, goal) in enumerate(
                [("cash", 0.1, "a"), ("bonds", 0.2, "b"), ("funds", 0.3, "c")]
            )
        )
    )
    shuffled = rows.collect().sample(fraction=1.0, shuffle=True, seed=seed).lazy()
    people = customers(*((f"M{n}", "steady") for n in range(20)))
    result = tables(shuffled, people)
    aum = dict(result["customer_holdings"].select("customer_id", "aum").iter_rows())
    assert set(aum.values()) == {0.6}
    for row in result["holdings_mix"].to_dicts():
        assert row["share"] == row["balance"] / aum[row["customer_id"]], row

"""Holdings extracts (SPEC §10) under bad input, corrections, re-delivery and unknown folders.

Each bad row is quarantined with its reason and line, the rest loads, and
the AUM computed afterwards is the AUM of the good rows only: a quarantined
row never distorts the wealth view.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from customer_equity.generate import generate_extracts
from customer_equity.lake import read_partition
from customer_equity.settings import load_settings
from customer_equity.transforms.outputs import holdings_tables
from tests.conftest import warehouse_inputs
from tests.reliability.support import (
    AS_OF,
    csv_text,
    ingest,
    new_project,
    put,
    quarantine_of,
    query,
    run_to_end,
)

HEADER = "customer_id,balance_date,product_id,asset_class,balance,liquidity,risk_level,goal"
LOANS = (
    "[holdings]\n"
    'asset_classes = ["cash", "bonds", "equities", "funds", "insurance", "real_estate", '
    '"other", "loans"]\n'
    'liability_classes = ["loans"]\n'
)
# NOW (support.py) is 2025-06-01; the default tolerance allows dates up to 2025-06-02.
HOLDINGS_CASES: tuple[tuple[str, str | None], ...] = (
    ("C1,2025-05-31,DEP1,cash,1000,,,emergency", None),
    ("C1,2025-05-31,FND1,Funds,3000,,R3,retirement", None),  # class case-insensitive, R-level
    ("C1,2025-05-31,BND1,bonds,2000,medium,2,", None),
    ("C1,2025-05-31,LN1,loans,-50000,,,", None),  # negative: a liability class
    ("C1,2025-05-31,X1,crypto,900000,,,", "unknown_asset_class"),
    ("C1,2025-05-31,X2,equities,-900000,,,", "negative_balance"),
    ("C1,2025-05-31,X3,funds,900000,,0,", "risk_level_out_of_range"),
    ("C1,2025-05-31,X4,funds,900000,,6,", "risk_level_out_of_range"),
    ("C1,2025-05-31,X5,funds,900000,,R9,", "risk_level_out_of_range"),
    ("C1,2025-05-31,X6,funds,900000,,2.5,", "unparseable_risk_level"),
    ("C1,2025-05-31,X7,funds,900000,,high,", "unparseable_risk_level"),
    ("C1,2025-05-31,X8,cash,900000,instant,,", "unknown_liquidity"),
    ("C1,2025-06-03,X9,cash,900000,,,", "balance_date_in_future"),
    ("C1,2025-13-01,X10,cash,900000,,,", "unparseable_balance_date"),
    ("C1,,X11,cash,900000,,,", "missing_balance_date"),
    ("C1,2025-05-31,,cash,900000,,,", "missing_product_id"),
    (",2025-05-31,X12,cash,900000,,,", "missing_customer_id"),
    ("C1,2025-05-31,X13,,900000,,,", "missing_asset_class"),
    ("C1,2025-05-31,X14,cash,lots,,,", "unparseable_balance"),
    ("C1,2025-05-31,X15,cash,1e15,,,", "balance_out_of_bounds"),
    ("C1,0001-01-01,X17,cash,900000,,,", "balance_date_before_earliest"),  # ERP sentinel
    (
        "C1,2025-05-31,X16,crypto,-5,,7,",
        "negative_balance; risk_level_out_of_range; unknown_asset_class",
    ),
)


def _aum(root: Path, as_of: date) -> dict[str, object]:
    settings = load_settings(root / "customer-equity.toml")
    inputs = warehouse_inputs(settings, as_of)
    frame = holdings_tables(inputs.holdings, inputs.customers, as_of, settings)
    (row,) = frame["customer_holdings"].collect().to_dicts()
    return row


def test_every_bad_holdings_row_is_quarantined_and_aum_is_the_good_rows(tmp_path: Path) -> None:
    root = new_project(tmp_path, LOANS)
    put(root, "holdings", "h.csv", csv_text(HEADER, *(row for row, _ in HOLDINGS_CASES)))
    (outcome,) = ingest(root).values()
    expected = [
        ("h.csv", line, reason)
        for line, (_, reason) in enumerate(HOLDINGS_CASES, start=2)
        if reason
    ]
    assert quarantine_of(root) == expected
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (
        len(HOLDINGS_CASES),
        4,
        len(expected),
    )
    assert outcome.accounted()
    stored = query(root, "select product_id, asset_class, risk_level from holdings order by 1")
    assert stored == [("BND1", "bonds", 2.0), ("DEP1", "cash", None), ("FND1", "funds", 3.0),
                      ("LN1", "loans", None)]  # fmt: skip
    # Every quarantined row carried 900,000 (or −900,000): none of it reaches AUM.
    row = _aum(root, date(2025, 5, 31))
    assert (row["aum"], row["liabilities"], row["products"]) == (6000.0, -50000.0, 3)


def test_without_liability_classes_a_loan_is_quarantined(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    put(
        root,
        "holdings",
        "h.csv",
        csv_text(HEADER, "C1,2025-05-31,DEP1,cash,1000,,,", "C1,2025-05-31,LN1,loans,-500,,,"),
    )
    ingest(root)
    # loans is no default asset class; a negative balance in it would also be refused
    assert quarantine_of(root) == [("h.csv", 3, "negative_balance; unknown_asset_class")]
    assert _aum(root, date(2025, 5, 31))["aum"] == 1000.0


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("customer_id,balance_date,product_id,balance", "['asset_class']"),
        ("customer_id,product_id,asset_class,balance", "['balance_date']"),
        ("customer_id,balance_date,asset_class,value", "['product_id', 'balance']"),
    ],
)
def test_missing_columns_fail_the_file_and_load_nothing(
    tmp_path: Path, header: str, missing: str
) -> None:
    root = new_project(tmp_path)
    width = len(header.split(","))
    put(root, "holdings", "h.csv", csv_text(header, ",".join(["x"] * width)))
    (outcome,) = ingest(root).values()
    assert outcome.status == "failed"
    assert f"missing required column(s) {missing}" in (outcome.error or "")
    assert query(root, "select count(*) from holdings") == [(0,)]
    assert query(root, "select count(*) from quarantine") == [(0,)]


def test_parquet_holdings_with_integer_risk_levels_load(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    buffer = io.BytesIO()
    pl.DataFrame(
        {
            "customer_id": ["C1", "C1"],
            "balance_date": [date(2025, 5, 31)] * 2,
            "product_id": ["F1", "F2"],
            "asset_class": ["funds", "funds"],
            "balance": [100.0, 300.0],
            "risk_level": [2, 4],
        }
    ).write_parquet(buffer)
    put(root, "holdings", "h.parquet", buffer.getvalue())
    (outcome,) = ingest(root).values()
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)
    assert _aum(root, date(2025, 5, 31))["holdings_risk_level"] == pytest.approx(3.5)


def test_a_correction_replaces_the_balance_and_is_audited_once(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    put(root, "holdings", "h_2025-04-30.csv", csv_text(HEADER, "C1,2025-04-30,F1,funds,100,,,"))
    put(
        root,
        "holdings",
        "h_2025-05-31.csv",
        csv_text(
            HEADER,
            "C1,2025-04-30,F1,funds,120,,,",  # the April balance, corrected
            "C1,2025-05-31,F1,funds,130,,,",
        ),
    )
    first = ingest(root)
    assert (first["h_2025-05-31.csv"].rows_loaded, first["h_2025-05-31.csv"].rows_replaced) == (
        1,
        1,
    )
    assert query(root, "select balance from holdings_replaced") == [(100.0,)]
    assert _aum(root, date(2025, 5, 15))["aum"] == 120.0  # the corrected April balance
    # Exactly once: the same files again load nothing and audit nothing more.
    again = ingest(root, "run-2")
    assert {o.status for o in again.values()} == {"skipped"}
    assert query(root, "select count(*) from holdings") == [(2,)]
    assert query(root, "select count(*) from holdings_replaced") == [(1,)]


def test_a_re_delivered_old_extract_does_not_undo_a_newer_correction(tmp_path: Path) -> None:
    """SPEC §2: the file that sorts last wins, whatever the arrival order."""
    root = new_project(tmp_path)
    put(
        root,
        "holdings",
        "h_2025-05-31.csv",
        csv_text(HEADER, "C1,2025-04-30,F1,funds,120,,,", "C1,2025-05-31,F1,funds,130,,,"),
    )
    ingest(root)
    # The April extract arrives late (a re-delivery): its 100 is the older version.
    put(root, "holdings", "h_2025-04-30.csv", csv_text(HEADER, "C1,2025-04-30,F1,funds,100,,,"))
    late = ingest(root, "run-2")["h_2025-04-30.csv"]
    assert (late.rows_read, late.rows_loaded, late.rows_replaced) == (1, 0, 1)
    assert query(root, "select balance from holdings_replaced") == [(100.0,)]
    assert _aum(root, date(2025, 5, 15))["aum"] == 120.0


def test_holdings_of_unknown_customers_are_quarantined_when_configured(tmp_path: Path) -> None:
    """`[quality] unknown_customers = "quarantine"` covers holdings like transactions."""
    root = new_project(tmp_path, '[quality]\nunknown_customers = "quarantine"\n')
    put(root, "customers", "c.csv", csv_text("customer_id,risk_profile", "C1,steady"))
    put(
        root,
        "holdings",
        "h.csv",
        csv_text(HEADER, "C1,2025-05-31,F1,funds,100,,,", "C9,2025-05-31,F1,funds,900000,,,"),
    )
    outcome = ingest(root)["h.csv"]
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 1)
    assert quarantine_of(root) == [("h.csv", 3, "unknown_customer")]
    assert _aum(root, date(2025, 5, 31))["aum"] == 100.0  # C9's 900,000 is nobody's AUM


def test_a_holdings_file_read_in_many_batches_loads_what_one_batch_loads(tmp_path: Path) -> None:
    """The streaming ingest validates holdings batch by batch: same rows, lines and reasons.

    30,000 rows (about 1.2 MB) are several 512 KiB batches under a 32 MiB budget;
    every 1,000th row has an unknown asset class. The AUM of D is then the sum
    of the good rows, computed here by hand: customer c holds the rows with
    i % 50 == c, each balance i % 90 + 1.
    """
    rows = [
        f"C{i % 50},2025-05-31,P{i},{'crypto' if i % 1000 == 0 else 'funds'},{i % 90 + 1},,,"
        for i in range(30_000)
    ]
    tables = {}
    for budget in ("32MiB", "4GiB"):
        root = new_project(tmp_path / budget, f'[engine]\nmemory_limit = "{budget}"\n')
        put(root, "holdings", "h.csv", csv_text(HEADER, *rows))
        outcome = ingest(root)["h.csv"]
        assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (
            30_000,
            29_970,
            30,
        )
        tables[budget] = (
            query(root, "select product_id, _line, balance from holdings order by 1"),
            quarantine_of(root),
        )
    assert tables["32MiB"] == tables["4GiB"]
    assert tables["32MiB"][1][:2] == [("h.csv", 2, "unknown_asset_class"),
                                      ("h.csv", 1002, "unknown_asset_class")]  # fmt: skip
    settings = load_settings(tmp_path / "32MiB" / "customer-equity.toml")
    inputs = warehouse_inputs(settings, date(2025, 5, 31))
    aum = dict(
        holdings_tables(inputs.holdings, inputs.customers, date(2025, 5, 31), settings)[
            "customer_holdings"
        ]
        .select("customer_id", "aum")
        .collect()
        .iter_rows()
    )
    expected = {f"C{c}": 0.0 for c in range(50)}
    for i in range(30_000):
        if i % 1000:
            expected[f"C{i % 50}"] += i % 90 + 1
    assert aum == expected


def test_point_in_time_a_snapshot_ignores_later_balances(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    put(
        root,
        "holdings",
        "h.csv",
        csv_text(
            HEADER,
            "C1,2025-03-31,F1,funds,100,,,",
            "C1,2025-04-30,F1,funds,500,,,",
            "C1,2025-04-30,F2,cash,50,,,",
        ),
    )
    ingest(root)
    march = _aum(root, date(2025, 4, 29))
    assert (march["aum"], march["products"]) == (100.0, 1)
    assert _aum(root, date(2025, 4, 30))["aum"] == 550.0


def test_a_folder_of_an_unknown_kind_is_reported_not_skipped(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    put(root, "Holdings", "h.csv", csv_text(HEADER, "C1,2025-05-31,F1,funds,100,,,"))
    put(root, "holding", "h2.csv", csv_text(HEADER, "C1,2025-05-31,F1,funds,100,,,"))
    (root / "inbox" / ".partial-upload").mkdir()  # hidden folders wait, like hidden files
    outcomes = ingest(root)
    assert sorted(outcomes) == ["Holdings/", "holding/"]
    unknown = outcomes["Holdings/"]
    assert (unknown.status, unknown.extract_kind) == ("failed", "Holdings")
    assert "Holdings/: not an extract kind" in (unknown.error or "")
    assert "1 file(s) were not read" in (unknown.error or "")
    assert query(root, "select extract_kind, status from manifest order by 1") == [
        ("Holdings", "failed"),
        ("holding", "failed"),
    ]
    assert query(root, "select count(*) from holdings") == [(0,)]
    # Reported again by every run until someone moves the files.
    assert sorted(ingest(root, "run-2")) == ["Holdings/", "holding/"]


def test_the_run_summary_shows_the_unknown_folder_and_the_wealth_view(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    root = new_project(tmp_path)
    generate_extracts(root / "inbox", customers=150, seed=11, end_date=AS_OF, daily_files=2)
    put(root, "holding", "h.csv", csv_text(HEADER, "C0000001,2025-12-31,F1,funds,100,,,"))
    output = run_to_end(root, cli_env)
    assert "holding/: not an extract kind" in output
    assert "Wealth view" in output
    holdings = read_partition(root / "lake", "customer_holdings", AS_OF)
    (total,) = (line for line in output.splitlines() if "all holders" in line)
    assert f" {holdings.height:,} " in total  # the customers column counts every holder
    assert f"{holdings['aum'].sum():,.0f}" in total
    quality = read_partition(root / "lake", "data_quality", AS_OF)
    unknown = quality.filter(pl.col("extract_kind") == "holding")
    assert unknown.select("file_name", "status").rows() == [("holding/", "failed")]
    assert (holdings["customer_id"] != "").all()

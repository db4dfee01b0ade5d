"""Issue 6.1: a bad row is quarantined with a named reason, file and line; the rest loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.support import (
    csv_text,
    ingest,
    new_project,
    put,
    quarantine_of,
    query,
)

QUALITY = '[quality]\nbase_currency = "CNY"\nmax_abs_amount = 1000\nfuture_tolerance_days = 3\n'
HEADER = "transaction_id,customer_id,transaction_date,amount,cost,discount,currency"
# NOW (support.py) is 2025-06-01: with 3 days of tolerance 2025-06-04 is fine, 06-05 is not.
TRANSACTION_CASES: tuple[tuple[str, str | None], ...] = (
    ("T01,C1,2025-03-01,100,60,,CNY", None),
    ("T02,C1,2025-03-02,-40,-25,,CNY", None),  # a return is a normal row
    ("T03,C1,20250303,5,,,", None),  # compact date, no cost, currency blank = base
    ("T04,C1,2025-06-04,5,,,cny", None),  # inside the tolerance; currency case-insensitive
    (",C1,2025-03-01,5,,,", "missing_transaction_id"),
    ("   ,C1,2025-03-01,5,,,", "missing_transaction_id"),  # blank after trimming
    ("T07,,2025-03-01,5,,,", "missing_customer_id"),
    ("T08,C1,,5,,,", "missing_transaction_date"),
    ("T09,C1,2025-13-01,5,,,", "unparseable_transaction_date"),
    ("T10,C1,2025-02-30,5,,,", "unparseable_transaction_date"),
    ("T11,C1,01/03/2025,5,,,", "unparseable_transaction_date"),
    ("T12,C1,2025-03-01,12;5,,,", "unparseable_amount"),
    ("T13,C1,2025-03-01,nan,,,", "unparseable_amount"),
    ("T14,C1,2025-03-01,inf,,,", "unparseable_amount"),
    ("T15,C1,2025-03-01,5,abc,,", "unparseable_cost"),
    ("T16,C1,2025-06-05,5,,,", "transaction_date_in_future"),
    ("T17,C1,2025-03-01,5,,,USD", "non_base_currency"),
    ("T18,C1,2025-03-01,,40,,", "missing_amount"),  # cost without amount
    ("T19,C1,2025-03-01,1000000,,,", "amount_out_of_bounds"),
    ("T20,C1,2025-03-01,-1e9,,,", "amount_out_of_bounds"),  # an absurd return too
    ("T21,C1,2025-03-01,5,5000,,", "cost_out_of_bounds"),
    ("T22,C1,2025-03-01,5,,-1,", "negative_discount"),
    ("T23,C1,2025-03-01,5,,2000,", "discount_out_of_bounds"),
    (
        ",C1,someday,5,,,EUR",
        "missing_transaction_id; non_base_currency; unparseable_transaction_date",
    ),
)


def test_every_bad_transaction_row_is_quarantined_with_its_reason_and_line(tmp_path: Path) -> None:
    root = new_project(tmp_path, QUALITY)
    rows = [row for row, _ in TRANSACTION_CASES]
    put(root, "transactions", "t.csv", csv_text(HEADER, *rows))
    (outcome,) = ingest(root).values()
    expected = {
        line: reason for line, (_, reason) in enumerate(TRANSACTION_CASES, start=2) if reason
    }
    assert quarantine_of(root) == [("t.csv", line, why) for line, why in expected.items()]
    good = [row.split(",")[0] for row, reason in TRANSACTION_CASES if reason is None]
    assert [
        tid for (tid,) in query(root, "select transaction_id from transactions order by 1")
    ] == (good)
    assert (outcome.status, outcome.rows_read, outcome.rows_loaded) == ("loaded", 24, 4)
    assert outcome.rows_quarantined == len(expected) and outcome.accounted()
    # The record keeps the row as delivered, so the source system can be told what to fix.
    record = json.loads(query(root, "select record from quarantine where line = 13")[0][0])
    assert record["amount"] == "12;5" and record["transaction_id"] == "T12"


@pytest.mark.parametrize(
    ("kind", "header", "rows", "reasons"),
    [
        (
            "customers",
            "customer_id,created_date,status,closed_date,segment",
            [
                "C1,2024-01-01,active,,零售",
                ",2024-01-01,active,,零售",
                "C3,2024-01-01,dormant,,零售",
                "C4,2024-05-01,closed,2024-01-01,批发",
                "C5,2024-99-01,active,,批发",
            ],
            {
                3: "missing_customer_id",
                4: "unknown_status",
                5: "closed_before_created",
                6: "unparseable_created_date",
            },
        ),
        (
            "wallets",
            "customer_id,period_start,period_end,total_purchases",
            [
                "C1,2024-01-01,2024-12-31,50000",
                "C1,,2024-12-31,50000",
                "C2,2024-06-01,2024-01-01,50000",
                "C3,2024-01-01,2024-12-31,-1",
                "C4,2024-01-01,2024-12-31,lots",
            ],
            {
                3: "missing_period_start",
                4: "period_end_before_start",
                5: "negative_total_purchases",
                6: "unparseable_total_purchases",
            },
        ),
        (
            "costs",
            "customer_id,cost_date,cost_type,amount",
            [
                "C1,2025-01-01,service,20",
                "C1,2025-01-02,bribe,20",
                "C1,2026-01-01,service,20",
                "C1,2025-01-03,,20",
                "C1,2025-01-04,rebate,99999",
            ],
            {
                3: "unknown_cost_type",
                4: "cost_date_in_future",
                5: "missing_cost_type",
                6: "amount_out_of_bounds",
            },
        ),
    ],
)
def test_bad_rows_of_the_other_extract_kinds_are_quarantined(
    tmp_path: Path, kind: str, header: str, rows: list[str], reasons: dict[int, str]
) -> None:
    root = new_project(tmp_path, QUALITY)
    put(root, kind, f"{kind}.csv", csv_text(header, *rows))
    (outcome,) = ingest(root).values()
    assert quarantine_of(root) == [(f"{kind}.csv", line, why) for line, why in reasons.items()]
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (5, 1, 4)
    assert query(root, f"select count(*) from {kind}") == [(1,)]


CUSTOMERS = csv_text("customer_id,segment", "C1,零售", "C2,批发")
ORDERS = csv_text(HEADER, "T1,C1,2025-03-01,5,,,", "T2,C9,2025-03-01,5,,,")


@pytest.mark.parametrize(
    ("policy", "with_customers", "quarantined"),
    [
        ("quarantine", True, [("t.csv", 3, "unknown_customer")]),
        ("accept", True, []),
        ("quarantine", False, []),  # no customers extract: nothing to check against
    ],
)
def test_unknown_customers_follow_the_configured_policy(
    tmp_path: Path, policy: str, with_customers: bool, quarantined: list[tuple]
) -> None:
    root = new_project(tmp_path, f'[quality]\nunknown_customers = "{policy}"\n')
    if with_customers:
        put(root, "customers", "c.csv", CUSTOMERS)
    put(root, "transactions", "t.csv", ORDERS)
    ingest(root)
    assert quarantine_of(root) == quarantined
    assert query(root, "select count(*) from transactions") == [(2 - len(quarantined),)]


def test_unknown_customer_check_uses_customers_loaded_in_the_same_run(tmp_path: Path) -> None:
    """Customers load first within a run, whatever the file names, so new customers are known."""
    root = new_project(tmp_path, '[quality]\nunknown_customers = "quarantine"\n')
    put(root, "customers", "z-late-name.csv", CUSTOMERS)
    put(root, "transactions", "a-early-name.csv", csv_text(HEADER, "T1,C2,2025-03-01,5,,,"))
    ingest(root)
    assert quarantine_of(root) == []

"""Issue 6.4: files load once, duplicates are counted, corrections audited, every row accounted.

read = loaded + replaced + duplicate + quarantined is checked once by the
pipeline itself: per file against the tables inside its transaction (so a
violation never commits); the `data_quality` schema checks it again on publish.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from customer_equity import ingest as ingest_module
from customer_equity.generate import generate_extracts
from customer_equity.ingest import AccountingError, FileOutcome
from tests.reliability.support import (
    NOW,
    TX_HEADER,
    csv_text,
    ingest,
    new_project,
    put,
    query,
)

DAY_1 = csv_text(
    TX_HEADER,
    "T1,C1,2025-03-01,100,60,software,USD",
    "T2,C1,2025-03-02,50,30,software,USD",
    "T3,C2,2025-03-03,10,5,furniture,USD",
)
DAY_2 = csv_text(
    TX_HEADER,
    "T2,C1,2025-03-02,50.00,30,software,USD",  # same values as stored (50 = 50.00): duplicate
    "T3,C2,2025-03-03,12,5,furniture,USD",  # correction of T3
    "T4,C2,2025-03-04,-10,-5,furniture,USD",  # return
    "T5,C3,2025-03-05,7,,,",
    "T5,C3,2025-03-05,8,,,",  # corrected again within the same file: latest line wins
    "T6,C3,bad-date,8,,,",
)


def _counts(outcome: FileOutcome) -> tuple[int, ...]:
    o = outcome
    return (o.rows_read, o.rows_loaded, o.rows_replaced, o.rows_duplicate, o.rows_quarantined)


def test_duplicates_and_corrections_are_counted_and_audited(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    put(root, "transactions", "day-1.csv", DAY_1)
    put(root, "transactions", "day-2.csv", DAY_2)
    outcomes = ingest(root)
    assert _counts(outcomes["day-1.csv"]) == (3, 3, 0, 0, 0)
    assert _counts(outcomes["day-2.csv"]) == (6, 2, 2, 1, 1)
    current = query(root, "select transaction_id, amount, _file from transactions order by 1")
    assert current == [
        ("T1", 100.0, "day-1.csv"),
        ("T2", 50.0, "day-1.csv"),  # a duplicate does not even touch the stored row
        ("T3", 12.0, "day-2.csv"),
        ("T4", -10.0, "day-2.csv"),
        ("T5", 8.0, "day-2.csv"),
    ]
    audit = query(
        root, "select transaction_id, amount, _file, _line from transactions_replaced order by 1"
    )
    assert audit == [("T3", 10.0, "day-1.csv", 4), ("T5", 7.0, "day-2.csv", 5)]


def test_the_same_file_twice_loads_once_in_one_run_and_across_runs(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    first = put(root, "transactions", "a-day-1.csv", DAY_1)
    shutil.copy(first, first.with_name("b-day-1-resent.csv"))
    outcomes = ingest(root)
    assert outcomes["a-day-1.csv"].status == "loaded"
    assert outcomes["b-day-1-resent.csv"].status == "skipped"
    shutil.copy(first, first.with_name("c-day-1-resent-again.csv"))
    again = ingest(root, "run-2")
    assert {o.status for o in again.values()} == {"skipped"}
    assert query(root, "select count(*) from transactions") == [(3,)]
    assert query(root, "select count(*) from transactions_replaced") == [(0,)]


def test_the_same_row_in_two_files_is_a_counted_duplicate(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    put(root, "transactions", "a.csv", csv_text(TX_HEADER, "T1,C1,2025-03-01,5,1,x,USD"))
    put(root, "transactions", "b.csv", csv_text(TX_HEADER, " T1 ,C1,20250301,5.0,1.00,x,usd"))
    outcomes = ingest(root)
    assert _counts(outcomes["b.csv"]) == (1, 0, 0, 1, 0)
    assert query(root, "select count(*) from transactions") == [(1,)]


def test_corrections_of_the_other_kinds_keep_the_old_version(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    header = "customer_id,period_start,period_end,total_purchases"
    put(root, "wallets", "w1.csv", csv_text(header, "C1,2024-01-01,2024-12-31,1000"))
    put(root, "wallets", "w2.csv", csv_text(header, "C1,2024-01-01,2024-12-31,1200"))
    put(root, "customers", "c1.csv", csv_text("customer_id,segment", "C1,零售"))
    put(root, "customers", "c2.csv", csv_text("customer_id,segment", "C1,批发"))
    ingest(root)
    assert query(root, "select total_purchases from wallets") == [(1200.0,)]
    assert query(root, "select total_purchases from wallets_replaced") == [(1000.0,)]
    assert query(root, "select segment from customers") == [("批发",)]
    assert query(root, "select segment from customers_replaced") == [("零售",)]


def test_a_file_whose_rows_do_not_add_up_never_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge that loses a row (deletes one after classifying) is caught in its transaction."""
    root = new_project(tmp_path)
    put(root, "transactions", "a.csv", DAY_1)
    real_merge = ingest_module._merge

    def lossy_merge(con, kind, run_id, now):  # type: ignore[no-untyped-def]
        counts = real_merge(con, kind, run_id, now)
        con.execute("delete from transactions where transaction_id = 'T2'")
        return counts

    monkeypatch.setattr(ingest_module, "_merge", lossy_merge)
    with pytest.raises(AccountingError, match=r"a.csv: rows do not add up"):
        ingest(root)
    assert query(root, "select count(*) from transactions") == [(0,)]
    assert query(root, "select count(*) from manifest") == [(0,)]


def test_counts_that_claim_more_than_the_tables_hold_never_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = new_project(tmp_path)
    put(root, "transactions", "a.csv", DAY_1)
    real_merge = ingest_module._merge

    def boastful_merge(con, kind, run_id, now):  # type: ignore[no-untyped-def]
        per_delivery = real_merge(con, kind, run_id, now)
        return {
            delivery: {**counts, "rows_loaded": counts["rows_loaded"] - 1, "rows_duplicate": 1}
            for delivery, counts in per_delivery.items()
        }

    monkeypatch.setattr(ingest_module, "_merge", boastful_merge)
    with pytest.raises(AccountingError, match="the tables changed by"):
        ingest(root)
    assert query(root, "select count(*) from transactions") == [(0,)]


def test_the_identity_holds_for_every_file_of_a_generated_feed(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    generate_extracts(root / "inbox", customers=60, seed=5, end_date=NOW.date(), daily_files=2)
    outcomes = ingest(root)
    assert all(o.accounted() for o in outcomes.values())
    totals = query(
        root,
        "select sum(rows_replaced), sum(rows_duplicate) from manifest where status = 'loaded'",
    )
    assert totals == [(1, 1)]  # the generator re-sends one corrected and one duplicate row

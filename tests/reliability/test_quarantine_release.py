"""Issue 10.5: quarantine is not forever.

A row quarantined for a reason that can clear later (its customer is not yet
known, its date is in the future) is re-checked on every run and loaded once
the reason is gone: counted as `rows_released` in a `released` outcome of its
original file, the quarantine row marked with the run that released it, the
loaded row's lineage naming its original file and line. Before, such a row
stayed in the quarantine forever and its revenue never counted.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl

from customer_equity.faults import KILL_AT
from customer_equity.ingest import FileOutcome, ingest_inbox
from customer_equity.lake import read_partition
from tests.conftest import settings_of
from tests.reliability.support import (
    AS_OF,
    COMMITTED_ACCOUNTING_SQL,
    NOW,
    TX_HEADER,
    assert_warehouse_consistent,
    csv_text,
    new_project,
    put,
    query,
    run_to_end,
    start_run,
)

QUARANTINE_UNKNOWN = '[quality]\nunknown_customers = "quarantine"\n'
COSTS_HEADER = "customer_id,cost_date,cost_type,amount"


def _run(root: Path, run_id: str, days_later: int = 0) -> list[FileOutcome]:
    return ingest_inbox(settings_of(root), run_id, NOW + timedelta(days=days_later))


def _released(outcomes: list[FileOutcome]) -> list[FileOutcome]:
    return [o for o in outcomes if o.status == "released"]


def _revenue(root: Path, customer: str) -> float | None:
    return query(
        root, "select sum(amount) from transactions where customer_id = $c", {"c": customer}
    )[0][0]


def _held(root: Path) -> list[tuple[str, int, str]]:
    """Quarantine rows still held (not released)."""
    return query(
        root,
        "select file_name, line, reason from quarantine where released_by_run is null "
        "order by file_name, line",
    )


def test_a_transaction_of_a_customer_not_yet_known_loads_once_the_customer_arrives(
    tmp_path: Path,
) -> None:
    """C9 buys 250 on day 1, but the customers extract lists C9 only on day 2.

    Before: T2 stayed quarantined, C9's revenue was 0 for ever. After: run 2
    releases it, so C9's revenue is 250 and the day total 100 + 250 = 350.
    T3 has an unknown customer *and* a foreign currency: the currency never
    clears, so it stays held.
    """
    root = new_project(tmp_path, QUARANTINE_UNKNOWN)
    put(root, "customers", "c-1.csv", csv_text("customer_id", "C1"))
    put(
        root,
        "transactions",
        "t-1.csv",
        csv_text(
            TX_HEADER,
            "T1,C1,2025-03-01,100,60,software,USD",
            "T2,C9,2025-03-01,250,100,software,USD",
            "T3,C9,2025-03-01,40,10,software,EUR",
        ),
    )
    first = _run(root, "run-1")
    assert [(o.file_name, o.rows_quarantined) for o in first if o.status == "loaded"] == [
        ("c-1.csv", 0),
        ("t-1.csv", 2),
    ]
    assert _revenue(root, "C9") is None

    put(root, "customers", "c-2.csv", csv_text("customer_id", "C9"))
    (release,) = _released(_run(root, "run-2"))
    assert (release.extract_kind, release.file_name, release.rows_read) == (
        "transactions",
        "t-1.csv",
        0,
    )
    assert (release.rows_released, release.rows_loaded, release.rows_quarantined) == (1, 1, 0)
    assert release.accounted()
    assert _revenue(root, "C9") == 250.0
    assert query(root, "select sum(amount) from transactions") == [(350.0,)]
    # Lineage: the original file and line; the run that loaded it is the releasing run.
    assert query(
        root, "select _file, _line, _run_id from transactions where transaction_id = 'T2'"
    ) == [("t-1.csv", 3, "run-2")]
    assert query(root, "select line, run_id, released_by_run from quarantine order by line") == [
        (3, "run-1", "run-2"),
        (4, "run-1", None),
    ]
    assert _held(root) == [("t-1.csv", 4, "non_base_currency; unknown_customer")]

    # Nothing is released twice: a third run finds nothing to release.
    assert _released(_run(root, "run-3")) == []
    assert _revenue(root, "C9") == 250.0
    assert_warehouse_consistent(root)


def test_a_future_date_loads_once_the_day_has_come(tmp_path: Path) -> None:
    """A transaction dated 10 days after the run (tolerance 1 day) is held, then released.

    Costs follow the same rule: the serve cost of C1 becomes 30 + 12 = 42.
    """
    root = new_project(tmp_path)
    later = (NOW.date() + timedelta(days=10)).isoformat()
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(
            TX_HEADER, "T1,C1,2025-05-20,100,60,software,USD", f"T2,C1,{later},70,20,software,USD"
        ),
    )
    put(
        root,
        "costs",
        "k.csv",
        csv_text(COSTS_HEADER, "C1,2025-05-20,service,30", f"C1,{later},service,12"),
    )
    _run(root, "run-1")
    assert _held(root) == [
        ("k.csv", 3, "cost_date_in_future"),
        ("t.csv", 3, "transaction_date_in_future"),
    ]
    # Five days later the date is still beyond the tolerance: nothing is released.
    assert _released(_run(root, "run-2", days_later=5)) == []
    assert _revenue(root, "C1") == 100.0

    released = _released(_run(root, "run-3", days_later=10))
    assert sorted((o.extract_kind, o.file_name, o.rows_released) for o in released) == [
        ("costs", "k.csv", 1),
        ("transactions", "t.csv", 1),
    ]
    assert _revenue(root, "C1") == 170.0
    assert query(root, "select sum(amount) from costs") == [(42.0,)]
    # A cost without cost_id keys on its original file and line: the released cost is its
    # own row, never a correction of the first one.
    assert query(root, "select _file, _line, amount from costs order by _line") == [
        ("k.csv", 2, 30.0),
        ("k.csv", 3, 12.0),
    ]
    assert _held(root) == []
    assert_warehouse_consistent(root)


def test_a_released_row_never_undoes_a_newer_correction(tmp_path: Path) -> None:
    """T2 of t-1.csv (C9, 250) is held; t-2.csv corrects T2 to 300 once C9 is known.

    The release comes in the same run as the correction: the released version is
    from the file that sorts first, so it is superseded on arrival (audited,
    counted replaced) and C9's revenue is 300, not 250.
    """
    root = new_project(tmp_path, QUARANTINE_UNKNOWN)
    put(root, "customers", "c-1.csv", csv_text("customer_id", "C1"))
    put(root, "transactions", "t-1.csv", csv_text(TX_HEADER, "T2,C9,2025-03-01,250,1,x,USD"))
    _run(root, "run-1")
    put(root, "customers", "c-2.csv", csv_text("customer_id", "C9"))
    put(root, "transactions", "t-2.csv", csv_text(TX_HEADER, "T2,C9,2025-03-01,300,1,x,USD"))
    outcomes = _run(root, "run-2")
    (release,) = _released(outcomes)
    assert (release.rows_released, release.rows_loaded, release.rows_replaced) == (1, 0, 1)
    assert _revenue(root, "C9") == 300.0
    assert query(root, "select amount, _file, _replaced_by_run from transactions_replaced") == [
        (250.0, "t-1.csv", "run-2")
    ]
    assert_warehouse_consistent(root)


def test_a_released_row_of_a_redelivered_file_is_ordered_by_its_arrival(tmp_path: Path) -> None:
    """t.csv arrives twice under one name: first T2 for C9 (held), then corrected to 130.

    C9 arrives with the second delivery, so that one loads 130; the held row of
    the first delivery arrived earlier and must not win when it is released in
    the same run (130, not 120): between deliveries under one name the later one wins.
    """
    root = new_project(tmp_path, QUARANTINE_UNKNOWN)
    put(root, "customers", "c-1.csv", csv_text("customer_id", "C1"))
    put(root, "transactions", "t.csv", csv_text(TX_HEADER, "T2,C9,2025-03-01,120,1,x,USD"))
    _run(root, "run-1")
    put(root, "customers", "c-2.csv", csv_text("customer_id", "C9"))
    put(root, "transactions", "t.csv", csv_text(TX_HEADER, "T2,C9,2025-03-01,130,1,x,USD"))
    outcomes = _run(root, "run-2", days_later=1)
    assert [(o.status, o.rows_loaded) for o in outcomes if o.file_name == "t.csv"] == [
        ("loaded", 1),
        ("released", 0),
    ]
    assert _revenue(root, "C9") == 130.0
    assert query(root, "select amount from transactions_replaced") == [(120.0,)]


def test_extra_attributes_of_a_released_row_are_kept(tmp_path: Path) -> None:
    root = new_project(
        tmp_path, QUARANTINE_UNKNOWN + '[extracts.transactions]\nextra_columns = "keep"\n'
    )
    put(root, "customers", "c-1.csv", csv_text("customer_id", "C1"))
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(f"{TX_HEADER},store", "T2,C9,2025-03-01,120,1,x,USD,Lyon"),
    )
    _run(root, "run-1")
    put(root, "customers", "c-2.csv", csv_text("customer_id", "C9"))
    _run(root, "run-2")
    assert query(root, "select extra_attributes from transactions") == [('{"store":"Lyon"}',)]


def test_released_rows_add_up_over_a_files_history(tmp_path: Path) -> None:
    """Per file over all its manifest rows: read = loaded + replaced + duplicate + still held.

    (Each row: read + released = loaded + replaced + duplicate + quarantined.)
    """
    root = new_project(tmp_path, QUARANTINE_UNKNOWN)
    put(root, "customers", "c-1.csv", csv_text("customer_id", "C1"))
    rows = [f"T{i},C{i % 4},2025-03-0{1 + i % 5},{i},1,x,USD" for i in range(40)]
    put(root, "transactions", "t.csv", csv_text(TX_HEADER, *rows))
    _run(root, "run-1")
    put(root, "customers", "c-2.csv", csv_text("customer_id", "C2"))
    _run(root, "run-2")
    put(root, "customers", "c-3.csv", csv_text("customer_id", "C3"))
    _run(root, "run-3")
    history = query(
        root,
        "select sum(rows_read), sum(rows_loaded + rows_replaced + rows_duplicate), "
        "sum(rows_quarantined) - sum(rows_released) from manifest where file_name = 't.csv'",
    )
    held = query(root, "select count(*) from quarantine where released_by_run is null")[0][0]
    assert history == [(40, 30, 10)] and held == 10  # C0 is never known: 10 rows stay held
    assert query(root, COMMITTED_ACCOUNTING_SQL) == []
    assert query(root, "select count(*), sum(amount) from transactions") == [
        (30, float(sum(i for i in range(40) if i % 4)))
    ]


def test_a_real_run_releases_rows_and_reports_them(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Two `customer-equity run` processes: the second one's data_quality shows the release,
    and C9's revenue in customer_metrics includes the released 250."""
    root = new_project(tmp_path, QUARANTINE_UNKNOWN)
    put(root, "customers", "c-1.csv", csv_text("customer_id,created_date", "C1,2025-01-01"))
    put(
        root,
        "transactions",
        "t-1.csv",
        csv_text(
            TX_HEADER,
            "T1,C1,2025-12-01,100,60,software,USD",
            "T2,C9,2025-12-02,250,100,software,USD",
        ),
    )
    run_to_end(root, cli_env)
    lake = root / "lake"
    metrics = read_partition(lake, "customer_metrics", AS_OF)
    assert metrics.filter(pl.col("customer_id") == "C9").is_empty()

    put(root, "customers", "c-2.csv", csv_text("customer_id,created_date", "C9,2025-01-01"))
    next_day = AS_OF + timedelta(days=1)
    run_to_end(root, cli_env, "--as-of", next_day.isoformat())  # the last --as-of counts
    metrics = read_partition(lake, "customer_metrics", next_day)
    assert metrics.filter(pl.col("customer_id") == "C9")["revenue"].to_list() == [250.0]
    quality = read_partition(lake, "data_quality", next_day)
    released = quality.filter(pl.col("status") == "released")
    assert released.select("file_name", "rows_released", "rows_loaded").rows() == [
        ("t-1.csv", 1, 1)
    ]


# Columns this feature added; a warehouse written by the previous release has none of them.
ADDED_COLUMNS = {
    "manifest": ("rows_released", "as_of_date"),
    "quarantine": ("extra_attributes", "released_by_run", "released_at"),
    "transactions": ("_arrived_at",),
    "transactions_replaced": ("_arrived_at",),
}


def test_a_warehouse_from_before_the_release_columns_opens_and_releases(tmp_path: Path) -> None:
    """A warehouse of the previous release (no release columns) is migrated on open.

    Its held row (C9, 250, quarantined by the old release) is released once C9
    arrives, and its stored row T1 (no `_arrived_at`) is still ordered by its
    load time: t-0.csv re-sent with an older amount does not undo the 100.
    Revenue of C1 100, of C9 250.
    """
    root = new_project(tmp_path, QUARANTINE_UNKNOWN)
    put(root, "customers", "c-1.csv", csv_text("customer_id", "C1"))
    put(
        root,
        "transactions",
        "t-1.csv",
        csv_text(TX_HEADER, "T1,C1,2025-03-01,100,1,x,USD", "T2,C9,2025-03-01,250,1,x,USD"),
    )
    _run(root, "run-1")
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        for table, columns in ADDED_COLUMNS.items():
            for column in columns:
                con.execute(f'alter table "{table}" drop column "{column}"')
    assert "rows_released" not in {
        c for (c,) in query(root, "select name from pragma_table_info('manifest')")
    }

    put(root, "customers", "c-2.csv", csv_text("customer_id", "C9"))
    put(root, "transactions", "t-0.csv", csv_text(TX_HEADER, "T1,C1,2025-03-01,90,1,x,USD"))
    outcomes = _run(root, "run-2", days_later=1)
    (release,) = _released(outcomes)
    assert (release.file_name, release.rows_released, release.rows_loaded) == ("t-1.csv", 1, 1)
    assert _revenue(root, "C9") == 250.0
    assert _revenue(root, "C1") == 100.0  # t-0.csv sorts before t-1.csv: superseded on arrival
    assert query(root, "select rows_released from manifest where run_id = 'run-1'") == [
        (0,),
        (0,),
    ]
    assert_warehouse_consistent(root)


def test_a_kill_while_releasing_keeps_the_row_held_for_the_next_run(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """SIGKILL after the release's writes, before its COMMIT: nothing of it is kept.

    T2 (C9, 250) stays held with its reason, C9 has no revenue; the next run
    releases it once (revenue 250, one `released` row in the manifest).
    """
    root = new_project(tmp_path, QUARANTINE_UNKNOWN)
    put(root, "customers", "c-1.csv", csv_text("customer_id,created_date", "C1,2025-01-01"))
    put(
        root,
        "transactions",
        "t-1.csv",
        csv_text(
            TX_HEADER,
            "T1,C1,2025-12-01,100,60,software,USD",
            "T2,C9,2025-12-02,250,100,software,USD",
        ),
    )
    run_to_end(root, cli_env)
    put(root, "customers", "c-2.csv", csv_text("customer_id,created_date", "C9,2025-01-01"))
    killed = start_run(root, cli_env, faults={KILL_AT: "release-before-commit:transactions"})
    output, _ = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, output[-3000:]
    assert_warehouse_consistent(root)
    assert _held(root) == [("t-1.csv", 3, "unknown_customer")]
    assert _revenue(root, "C9") is None

    run_to_end(root, cli_env)
    assert _held(root) == []
    assert _revenue(root, "C9") == 250.0
    assert query(root, "select count(*) from manifest where status = 'released'") == [(1,)]
    assert_warehouse_consistent(root)

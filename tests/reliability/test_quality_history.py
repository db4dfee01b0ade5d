"""Issue 10.7: `data_quality` keeps the history of D.

A re-run of D (after a crash, a deleted partition, a backfill) finds every file
already loaded: before, it rewrote the partition of D with "skipped / 0" rows,
so the load and quarantine counts of D vanished from the lake. Now the
partition reports every file loaded for D with the counts of the run that
loaded it (`run_id`), plus everything the latest run did (`latest_run_id`).

Real `customer-equity run` processes on real files; the counts are checked by
hand and against the business figure they describe (C1's orders and revenue).
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import polars as pl

from customer_equity.faults import KILL_AT
from customer_equity.lake import read_partition
from tests.reliability.support import (
    AS_OF,
    TX_HEADER,
    assert_warehouse_consistent,
    csv_text,
    new_project,
    put,
    query,
    run_to_end,
    start_run,
)

COUNTS = ["rows_read", "rows_loaded", "rows_replaced", "rows_duplicate", "rows_quarantined"]


def _project(tmp_path: Path) -> Path:
    """t-1.csv: T1 twice (one duplicate), T2 in EUR (quarantined), T3: read 4, loaded 2,
    duplicate 1, quarantined 1; C1 buys T1 100 + T3 50 = 150 in 2 orders."""
    root = new_project(tmp_path)
    put(root, "customers", "c.csv", csv_text("customer_id,created_date", "C1,2025-01-01"))
    put(
        root,
        "transactions",
        "t-1.csv",
        csv_text(
            TX_HEADER,
            "T1,C1,2025-12-01,100,60,software,USD",
            "T1,C1,2025-12-01,100,60,software,USD",
            "T2,C1,2025-12-02,40,10,software,EUR",
            "T3,C1,2025-12-03,50,20,software,USD",
        ),
    )
    return root


def _quality(root: Path) -> pl.DataFrame:
    return read_partition(root / "lake", "data_quality", AS_OF).sort("run_id", "file_name")


def _loads(quality: pl.DataFrame) -> list[tuple]:
    """(kind, file, status, counts…) of the files loaded for D, whichever run loaded them."""
    return sorted(
        quality.filter(pl.col("status") == "loaded")
        .select("extract_kind", "file_name", "status", *COUNTS)
        .rows()
    )


FIRST_LOADS = [
    ("customers", "c.csv", "loaded", 1, 1, 0, 0, 0),
    ("transactions", "t-1.csv", "loaded", 4, 2, 0, 1, 1),
]


def _assert_c1_metrics(root: Path, orders: int, revenue: float) -> None:
    metrics = read_partition(root / "lake", "customer_metrics", AS_OF)
    c1 = metrics.filter(pl.col("customer_id") == "C1").select("orders", "revenue").rows()
    assert c1 == [(orders, revenue)]


def test_a_rerun_after_the_partition_was_deleted_still_reports_the_loads_of_d(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Run 1 loads c.csv and t-1.csv for D; the lake is deleted; t-2.csv (T4, 30) arrives.

    Run 2 re-runs D: it loads t-2.csv, skips the other two. The partition of D
    reports the loads of run 1 with their counts (before: both were "skipped", 0
    rows), t-2.csv loaded by run 2, and run 2's skipped rows. The loaded
    transactions rows add up to C1's 3 orders (2 + 1), revenue 100 + 50 + 30 = 180.
    """
    root = _project(tmp_path)
    run_to_end(root, cli_env)
    first = _quality(root)
    assert _loads(first) == FIRST_LOADS
    (first_run,) = set(first["run_id"])

    shutil.rmtree(root / "lake")
    put(root, "transactions", "t-2.csv", csv_text(TX_HEADER, "T4,C1,2025-12-04,30,5,x,USD"))
    run_to_end(root, cli_env)
    quality = _quality(root)
    assert _loads(quality) == sorted(
        [*FIRST_LOADS, ("transactions", "t-2.csv", "loaded", 1, 1, 0, 0, 0)]
    )
    (latest,) = set(quality["latest_run_id"])
    assert latest != first_run
    # Each load is reported with the run that did it, exactly as that run published it.
    earlier = quality.filter(pl.col("run_id") == first_run)
    assert earlier.drop("latest_run_id").equals(first.drop("latest_run_id"))
    # What the latest run did: every file of the inbox, once.
    mine = quality.filter(pl.col("run_id") == latest)
    assert sorted(mine.select("file_name", "status").rows()) == [
        ("c.csv", "skipped"),
        ("t-1.csv", "skipped"),
        ("t-2.csv", "loaded"),
    ]
    transactions = quality.filter(pl.col("extract_kind") == "transactions")
    assert transactions["rows_loaded"].sum() == 3
    assert transactions["rows_quarantined"].sum() == 1
    _assert_c1_metrics(root, orders=3, revenue=180.0)


def test_a_rerun_after_a_crash_reports_what_the_killed_run_loaded(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Run 1 is killed after its ingest committed, before anything was published.

    The re-run of D finds both files loaded: its partition of D still shows their
    counts from the killed run (before: "skipped", 0), and C1's 2 orders, 150.
    """
    root = _project(tmp_path)
    killed = start_run(root, cli_env, faults={KILL_AT: "ingest-done"})
    output, _ = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, output[-3000:]
    assert_warehouse_consistent(root)
    (killed_run,) = {r for (r,) in query(root, "select distinct run_id from manifest")}

    run_to_end(root, cli_env)
    quality = _quality(root)
    assert _loads(quality) == FIRST_LOADS
    assert set(quality.filter(pl.col("status") == "loaded")["run_id"]) == {killed_run}
    (latest,) = set(quality["latest_run_id"])
    assert set(quality.filter(pl.col("run_id") == latest)["status"]) == {"skipped"}
    _assert_c1_metrics(root, orders=2, revenue=150.0)


def test_a_rerun_for_another_date_does_not_report_the_loads_of_d(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A backfill of an earlier date D-1 after D: the files were loaded for D, not D-1.

    D-1's partition reports only what its run did (both files skipped), and D's
    partition is untouched.
    """
    root = _project(tmp_path)
    run_to_end(root, cli_env)
    earlier = AS_OF.replace(day=AS_OF.day - 1)
    run_to_end(root, cli_env, "--as-of", earlier.isoformat())  # the last --as-of counts
    backfilled = read_partition(root / "lake", "data_quality", earlier)
    assert set(backfilled["status"]) == {"skipped"}
    assert backfilled["run_id"].n_unique() == 1
    assert _loads(_quality(root)) == FIRST_LOADS

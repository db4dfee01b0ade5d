"""Backfills and overlapping writers, in process against the session's Prefect API.

A backfill is the nightly flow per as-of date, oldest first: a failed date is
reported and the others still run, and re-running a range changes nothing.
Two runs on one warehouse never write at the same time: without waiting the
second fails naming the lock; with waiting both complete, one after the other.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from prefect import flow, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from typer.testing import CliRunner

import customer_equity.flows.nightly as nightly_module
from customer_equity.cli import app
from customer_equity.flows.backfill import (
    SUMMARY_KEY,
    BackfillError,
    as_of_dates,
    backfill,
    backfill_dates,
)
from customer_equity.flows.nightly import nightly
from customer_equity.generate import generate_extracts
from customer_equity.lake import STAGING_DIR, read_partition
from customer_equity.warehouse import WarehouseBusyError
from tests.checkpoints import Holds
from tests.conftest import PUBLISHED_WITH_HOLDINGS as TABLES
from tests.conftest import generated_project, read_table, write_config

END = date(2025, 12, 31)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    root = tmp_path_factory.mktemp("backfill")
    generated_project(root, customers=200, seed=21)
    return root


def config_of(root: Path) -> str:
    return str(root / "customer-equity.toml")


def partitions(root: Path, table: str) -> list[str]:
    folder = root / "lake" / table
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def snapshot(root: Path, dates: list[date]) -> dict[str, pl.DataFrame]:
    """What the backfill published for `dates`, one frame per table."""
    tables = {}
    for table in TABLES:
        frame = read_table(root / "lake", table).filter(pl.col("as_of_date").is_in(dates))
        tables[table] = frame.sort(list(dict.fromkeys(["as_of_date", *frame.columns])))
    return tables


def test_as_of_dates_are_every_day_oldest_first_and_bounded() -> None:
    assert as_of_dates(date(2025, 2, 27), date(2025, 3, 1)) == [
        date(2025, 2, 27),
        date(2025, 2, 28),
        date(2025, 3, 1),
    ]
    assert as_of_dates(END, END) == [END]
    with pytest.raises(ValueError, match="before start"):
        as_of_dates(END, END - timedelta(days=1))
    with pytest.raises(ValueError, match="split it"):
        as_of_dates(date(2025, 1, 1), date(2205, 1, 1))


def test_a_backfill_publishes_each_date_oldest_first_and_a_rerun_changes_nothing(
    project: Path,
) -> None:
    dates = [date(2025, 12, 27), date(2025, 12, 28)]
    result = backfill(start=dates[0], end=dates[-1], config=config_of(project))
    assert [d["as_of"] for d in result["dates"]] == [d.isoformat() for d in dates]  # type: ignore[index]
    assert {d["status"] for d in result["dates"]} == {"completed"}  # type: ignore[union-attr]
    for table in TABLES:
        assert partitions(project, table) == [f"as_of_date={d}" for d in dates], table
    # Oldest first: the first date's run loaded the inbox, the later ones found it loaded.
    # (A small sample can have a header-only daily file: rejected by every run, never loaded.)
    first, second = (
        set(read_partition(project / "lake", "data_quality", d)["status"]) for d in dates[:2]
    )
    assert "loaded" in first
    assert "loaded" not in second and "skipped" in second
    # Point in time: a later as-of date sees at least as many purchases.
    orders = [
        read_partition(project / "lake", "customer_metrics", d)["orders"].sum() for d in dates
    ]
    assert orders == sorted(orders)

    before = snapshot(project, dates)
    backfill(start=dates[0], end=dates[-1], config=config_of(project))
    after = snapshot(project, dates)
    # data_quality of each date: what the re-run did (every file already loaded), and
    # the loads of the first backfill with their counts, unchanged (issue 10.7).
    quality = after["data_quality"]
    latest = quality.filter(pl.col("run_id") == pl.col("latest_run_id"))
    assert "loaded" not in set(latest["status"])
    loads = [
        frame["data_quality"].filter(pl.col("status") == "loaded").drop("latest_run_id")
        for frame in (after, before)
    ]
    assert_frame_equal(loads[0], loads[1], check_exact=True)
    for table in (t for t in TABLES if t != "data_quality"):
        assert_frame_equal(after[table], before[table], check_exact=True)  # bit for bit
    for table in TABLES:
        assert partitions(project, table) == [f"as_of_date={d}" for d in dates], table


def test_a_failed_date_is_reported_and_the_other_dates_still_run(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = nightly_module.nightly
    broken = date(2025, 12, 21)

    @flow(name="nightly")
    def nightly_with_an_outage(
        as_of: date,
        config: str | None = None,
        lock_wait_seconds: float = 0.0,
        holdout_from: date | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, object]:
        if as_of == broken:
            raise RuntimeError(f"source system outage on {as_of}")
        return real.fn(as_of, config, lock_wait_seconds, holdout_from, overrides)

    monkeypatch.setattr(nightly_module, "nightly", nightly_with_an_outage)
    state = backfill(
        start=date(2025, 12, 20),
        end=date(2025, 12, 22),
        config=config_of(project),
        return_state=True,
    )
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, BackfillError)
    assert "1 of 3 as-of date(s) failed (2025-12-21)" in str(error)
    assert "source system outage" in str(error)
    assert [(o.as_of, o.status) for o in error.outcomes] == [
        ("2025-12-20", "completed"),
        ("2025-12-21", "failed"),
        ("2025-12-22", "completed"),
    ]
    published = partitions(project, "customer_metrics")
    assert "as_of_date=2025-12-20" in published and "as_of_date=2025-12-22" in published
    assert "as_of_date=2025-12-21" not in published

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    (summary,) = [a for a in artifacts if a.key == SUMMARY_KEY]
    assert '"status": "failed"' in str(summary.data)
    assert "2 published, 1 failed" in (summary.description or "")
    # Each published date carries its business figures, not only ids.
    rows = {row["as_of"]: row for row in json.loads(str(summary.data))}
    equity = read_partition(project / "lake", "customer_equity", date(2025, 12, 22))
    base = equity.filter(pl.col("group_by") == "base").row(0, named=True)
    assert rows["2025-12-22"]["customers"] == f"{base['customers']:,}"
    assert rows["2025-12-22"]["customer_equity"] == f"{base['customer_equity']:,.2f} USD"
    assert rows["2025-12-22"]["churn_rate"].endswith("%")
    assert rows["2025-12-21"]["customers"] == ""

    # The error names the command that re-runs exactly the failed date, and it does.
    assert "customer-equity backfill --dates 2025-12-21" in str(error)
    monkeypatch.setattr(nightly_module, "nightly", real)
    retried = backfill(dates=[broken], config=config_of(project))
    assert [(o["as_of"], o["status"]) for o in retried["dates"]] == [("2025-12-21", "completed")]
    assert "as_of_date=2025-12-21" in partitions(project, "customer_metrics")


def test_a_backfill_takes_a_range_or_dates_never_both() -> None:
    assert backfill_dates(dates=[date(2025, 12, 3), date(2025, 12, 1), date(2025, 12, 3)]) == [
        date(2025, 12, 1),
        date(2025, 12, 3),
    ]
    with pytest.raises(ValueError, match="not both"):
        backfill_dates(date(2025, 12, 1), date(2025, 12, 2), [date(2025, 12, 3)])
    with pytest.raises(ValueError, match="give start and end"):
        backfill_dates(date(2025, 12, 1))


def test_the_cli_backfill_runs_the_same_flow_with_overrides(project: Path) -> None:
    runner = CliRunner()
    one_day = ["backfill", "--start", "2025-12-31", "--end", "2025-12-31"]
    result = runner.invoke(
        app, [*one_day, "--config", config_of(project), "--set", "model.discount_rate=0.11"]
    )
    assert result.exit_code == 0, result.output
    assert "2025-12-31" in result.output and "completed" in result.output
    value = read_partition(project / "lake", "customer_value", END)
    assert set(value["discount_rate"]) == {0.11}

    wrong = runner.invoke(
        app, [*one_day, "--config", config_of(project), "--set", "model.discount_ratio=0.11"]
    )
    assert wrong.exit_code == 2
    assert "model.discount_ratio" in wrong.output


# --- overlapping writers ----------------------------------------------------------------------


def in_thread(pool: ThreadPoolExecutor, call: Callable[[], object]) -> Future[object]:
    # Prefect keeps its API settings in context variables, which a new thread does not inherit.
    return pool.submit(contextvars.copy_context().run, call)


# The first run stops inside its lock here until the test lets it go (customer_equity.faults).
INSIDE_THE_LOCK = "lake-before-swap:customer_metrics"
FOUND_IT_BUSY = "lock-busy:warehouse.duckdb.lock"


@pytest.fixture
def fresh(tmp_path: Path, prefect_harness: None) -> Path:
    write_config(tmp_path)
    generate_extracts(tmp_path / "inbox", customers=120, seed=5, end_date=END)
    return tmp_path


def test_a_second_run_without_waiting_fails_naming_the_lock_and_writes_nothing(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holds = Holds(fresh / "holds")
    for name, value in holds.env(INSIDE_THE_LOCK).items():
        monkeypatch.setenv(name, value)
    config = config_of(fresh)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = in_thread(pool, lambda: nightly(as_of=END, config=config, lock_wait_seconds=60))
        try:
            holds.wait_reached(INSIDE_THE_LOCK, running=lambda: not first.done())
            with pytest.raises(WarehouseBusyError, match=r"warehouse\.duckdb\.lock") as busy:
                nightly(as_of=END - timedelta(days=1), config=config, lock_wait_seconds=0)
        finally:
            holds.release(INSIDE_THE_LOCK)
        assert "another run is writing" in str(busy.value)
        assert "waited 0 s" in str(busy.value)  # failed at once instead of queueing
        first_result = first.result(timeout=120)
    # Only the first run's partitions exist, complete; the second left nothing behind.
    for table in TABLES:
        assert partitions(fresh, table) == [f"as_of_date={END}"], table
    assert not list((fresh / "lake" / STAGING_DIR).glob("*"))
    assert set(read_partition(fresh / "lake", "data_quality", END)["run_id"]) == {
        first_result["run_id"]
    }


def test_two_waiting_runs_both_complete_one_after_the_other(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first run goes on only once the second has found the lock taken and waits for it.
    holds = Holds(fresh / "holds")
    for name, value in holds.env(INSIDE_THE_LOCK, FOUND_IT_BUSY).items():
        monkeypatch.setenv(name, value)
    config = config_of(fresh)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            in_thread(pool, lambda: nightly(as_of=END, config=config, lock_wait_seconds=120)),
            in_thread(pool, lambda: nightly(as_of=END, config=config, lock_wait_seconds=120)),
        ]
        try:
            for point in (INSIDE_THE_LOCK, FOUND_IT_BUSY):
                holds.wait_reached(point, running=lambda: not all(run.done() for run in runs))
        finally:
            holds.release(INSIDE_THE_LOCK, FOUND_IT_BUSY)
        results = [run.result(timeout=180) for run in runs]
    # The inbox was loaded exactly once: one run loaded it, the other found it loaded.
    loaders = [r for r in results if any(f["status"] == "loaded" for f in r["files"])]  # type: ignore[union-attr]
    assert len(loaders) == 1
    loaded_rows = sum(
        f["rows_loaded"]
        for f in loaders[0]["files"]  # type: ignore[union-attr]
        if f["extract_kind"] == "transactions" and f["status"] == "loaded"
    )
    with duckdb.connect(str(fresh / "warehouse.duckdb"), read_only=True) as con:
        stored = con.sql("select count(*) from transactions").fetchall()[0][0]
    assert stored == loaded_rows > 0  # nothing was ingested twice
    for table in TABLES:
        folder = fresh / "lake" / table / f"as_of_date={END}"
        assert len(list(folder.glob("*.parquet"))) == 1, table
    # The later run's manifest is the published one: the runs did not interleave.
    last = read_partition(fresh / "lake", "data_quality", END)
    (latest,) = set(last["latest_run_id"])
    assert latest in {r["run_id"] for r in results}
    assert set(last["run_id"]) <= {r["run_id"] for r in results}

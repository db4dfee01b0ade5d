"""Issue 6.6: two runs at once never interleave; lake readers see the old or the new partition.

Both runs are real `customer-equity run` processes started together on the
same folder. Whichever takes the lock is held inside it, at `ingest-done`
(`customer_equity.faults`), until the test has seen the other one collide with
it: fail at once, or find the lock busy and start waiting. So the two surely
overlap, however the start-ups race and however loaded the machine is.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from customer_equity.lake import write_partition
from tests.checkpoints import Holds
from tests.conftest import read_table
from tests.reliability.support import (
    Baseline,
    assert_lake_clean,
    assert_same_tables,
    assert_warehouse_consistent,
    copy_inbox,
    lake_tables,
    sorted_frame,
    start_run,
    warehouse_tables,
)

pytestmark = pytest.mark.slow


def _without_data_quality(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {name: frame for name, frame in tables.items() if name != "data_quality"}


# Where the lock holder stops, and where the other run stops once it finds the lock busy.
INSIDE_THE_LOCK = "ingest-done"
FOUND_IT_BUSY = "lock-busy:warehouse.duckdb.lock"


def _outcomes(runs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    return [(run.returncode, output) for run, output in zip(runs, outputs, strict=True)]


def _two_runs_without_waiting(
    roots: tuple[Path, Path], cli_env: dict[str, str], holds: Holds
) -> list[tuple[int, str]]:
    """One run in each of `roots`; the holder stays inside the lock until the other has failed."""
    faults = holds.env(INSIDE_THE_LOCK)
    runs = [start_run(root, cli_env, faults=faults) for root in roots]
    try:
        holder = holds.wait_reached(INSIDE_THE_LOCK, running=lambda: _any_running(runs))
        (other,) = [run for run in runs if run.pid != holder]
        other.communicate(timeout=300)
    finally:
        holds.release(INSIDE_THE_LOCK)
    return _outcomes(runs)


def _two_waiting_runs(root: Path, cli_env: dict[str, str], holds: Holds) -> list[tuple[int, str]]:
    """Both wait for the lock; the holder goes on once the other is seen waiting for it."""
    faults = holds.env(INSIDE_THE_LOCK, FOUND_IT_BUSY)
    runs = [start_run(root, cli_env, "--wait", "120", faults=faults) for _ in range(2)]
    try:
        holder = holds.wait_reached(INSIDE_THE_LOCK, running=lambda: _any_running(runs))
        waiter = holds.wait_reached(FOUND_IT_BUSY, running=lambda: _any_running(runs))
        assert waiter != holder
    finally:
        holds.release(INSIDE_THE_LOCK, FOUND_IT_BUSY)
    return _outcomes(runs)


def _any_running(runs: list[subprocess.Popen[str]]) -> bool:
    return any(run.poll() is None for run in runs)


def test_of_two_runs_started_together_one_proceeds_and_the_other_fails_naming_the_lock(
    crash_inputs: Path, baseline: Baseline, cli_env: dict[str, str], tmp_path: Path
) -> None:
    root = copy_inbox(crash_inputs, tmp_path / "project")
    results = _two_runs_without_waiting((root, root), cli_env, Holds(tmp_path / "holds"))
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    (refused,) = [output for code, output in results if code != 0]
    message = " ".join(refused.split())
    assert "WarehouseBusyError: another run is writing" in message
    assert f"(lock {root / 'warehouse.duckdb.lock'}, held by pid " in message
    assert_warehouse_consistent(root)
    assert_lake_clean(root)
    assert_same_tables(warehouse_tables(root), baseline.warehouse)
    assert_same_tables(
        _without_data_quality(lake_tables(root)), _without_data_quality(baseline.lake)
    )


def test_with_wait_the_second_run_queues_and_loads_nothing_twice(
    crash_inputs: Path, baseline: Baseline, cli_env: dict[str, str], tmp_path: Path
) -> None:
    root = copy_inbox(crash_inputs, tmp_path / "project")
    results = _two_waiting_runs(root, cli_env, Holds(tmp_path / "holds"))
    assert [code for code, _ in results] == [0, 0], results
    # The partition of D is the second run's: it found every file already loaded (or broken),
    # and it still reports the first run's loads of D with their counts (issue 10.7).
    quality = read_table(root / "lake", "data_quality")
    (latest,) = set(quality["latest_run_id"])
    second = quality.filter(pl.col("run_id") == latest)
    first = quality.filter(pl.col("run_id") != latest)
    assert set(second["status"]) == {"skipped", "failed"}
    expected_loads = baseline.lake["data_quality"].filter(pl.col("status") == "loaded")
    assert sorted_frame(first.drop("run_id", "latest_run_id")).equals(expected_loads)
    assert_warehouse_consistent(root)
    assert_lake_clean(root)
    assert_same_tables(warehouse_tables(root), baseline.warehouse)
    assert_same_tables(
        _without_data_quality(lake_tables(root)), _without_data_quality(baseline.lake)
    )


TRANSIENT_READ_ERRORS = ("no such file", "expanded paths were empty")
WRITER = textwrap.dedent(
    """
    import sys
    from datetime import date
    from pathlib import Path
    import polars as pl
    from customer_equity.lake import write_partition

    lake, rounds = Path(sys.argv[1]), int(sys.argv[2])
    frames = [
        pl.DataFrame({"customer_id": [f"C{i}" for i in range(5000)], "revenue": [scale] * 5000})
        for scale in (1.0, 2.0)
    ]
    for i in range(rounds):
        write_partition(frames[i % 2], lake, "t", date(2025, 1, 1))
    """
)


def test_a_reader_process_sees_the_old_or_the_new_partition_never_a_mix(tmp_path: Path) -> None:
    """A writer process swaps a partition back and forth while this process reads it."""
    old = pl.DataFrame({"customer_id": [f"C{i}" for i in range(5000)], "revenue": [1.0] * 5000})
    write_partition(old, tmp_path, "t", date(2025, 1, 1))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "60"])
    seen: set[tuple[int, float]] = set()
    vanished = 0
    while writer.poll() is None:
        try:
            frame = read_table(tmp_path, "t")
        except (FileNotFoundError, pl.exceptions.ComputeError) as exc:
            # The partition was swapped between listing and opening it (the file, or the
            # listed folder, is gone): the reader retries; it never gets mixed rows.
            assert any(sign in str(exc).lower() for sign in TRANSIENT_READ_ERRORS), exc
            vanished += 1
            continue
        seen.add((frame.height, frame["revenue"].sum()))
    assert writer.returncode == 0
    assert seen <= {(5000, 5000.0), (5000, 10000.0)}, seen
    assert len(seen) == 2 or vanished > 0, "the reader never overlapped the writer"


def test_two_warehouses_publishing_into_one_lake_never_interleave(
    crash_inputs: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 10.8: two configs, two warehouses, one lake. Before, both runs exited 0 and
    the lake ended with tables of two runs (one run's `clear_staging` removed the other's files).
    """
    lake = tmp_path / "shared-lake"
    roots = []
    for name in ("first", "second"):
        root = copy_inbox(crash_inputs, tmp_path / name)
        config = root / "customer-equity.toml"
        config.write_text(config.read_text().replace('lake = "lake"', f'lake = "{lake}"'))
        roots.append(root)
    results = _two_runs_without_waiting((roots[0], roots[1]), cli_env, Holds(tmp_path / "holds"))
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and codes[1] != 0, results
    (refused,) = [output for code, output in results if code != 0]
    message = " ".join(refused.split())
    assert f"another run is publishing into {lake} (lock {lake / '.lake.lock'}" in message
    quality = read_table(lake, "data_quality")
    assert quality["run_id"].n_unique() == 1  # every table of D comes from one run

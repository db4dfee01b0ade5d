"""Issue 6.5: SIGKILL the real `customer-equity run` anywhere; the next run repairs everything.

Each scenario starts the CLI in its own process on a copy of the same
inputs, kills it (at a named checkpoint of `customer_equity.faults`, or from
outside after a random delay), checks what the crash left (the DuckDB file
adds up, every Parquet file a lake reader can glob is complete), runs the
CLI again and compares every lake table (all partitions, rows sorted) and
every warehouse table with one uninterrupted run of the same inputs in
another folder. A last scenario crashes the same folder four times in turn
before letting a run finish.

The scenarios are independent processes, so they run two at a time (one
per core); each still reports as its own test.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

from customer_equity.faults import KILL_AT
from customer_equity.lake import read_table
from tests.reliability.support import (
    Baseline,
    assert_lake_clean,
    assert_same_tables,
    assert_warehouse_consistent,
    copy_inbox,
    lake_tables,
    query,
    run_to_end,
    sorted_frame,
    start_run,
    warehouse_tables,
)

pytestmark = pytest.mark.slow

# In pipeline order. Where a crash hurts most: creating the warehouse, mid-transaction (first file,
# a file with a correction and a duplicate, the last file), between files,
# between ingest and publish, with a staged but unswapped partition, with
# some tables of D new and the rest old or missing, before the last table.
KILL_POINTS = (
    "warehouse-before-rename",  # the first night, while the warehouse file is created
    "ingest-before-commit",
    "ingest-after-commit:transactions_2025-12-28_history.csv",
    "ingest-before-commit:transactions_2025-12-31.csv",
    "ingest-before-commit:costs.csv",
    "ingest-done",
    "lake-before-swap:customer_metrics",
    "lake-after-swap:churn",
    "lake-before-swap:data_quality",
    "tasks-after-load-inputs",
    "tasks-after-model-fit",
    "tasks-before-value",
)
RANDOM_KILL_SEEDS = (1, 2, 3)
# One folder crashed again and again, each run getting further than the last.
REPEATED_KILL_POINTS = (
    "ingest-before-commit:transactions_2025-12-31.csv",
    "ingest-done",
    "lake-after-swap:churn",
    "lake-before-swap:data_quality",
)
REPEATED_CRASHES = "four crashes in turn, same folder"
PARALLEL_SCENARIOS = 2


def _killed(root: Path, cli_env: dict[str, str], kill_at: str) -> None:
    process = start_run(root, cli_env, faults={KILL_AT: kill_at})
    output, _ = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, f"not killed at {kill_at}:\n{output[-3000:]}"
    _assert_crash_left_no_damage(root)


def _killed_after(root: Path, cli_env: dict[str, str], delay: float) -> None:
    for _ in range(4):
        process = start_run(root, cli_env)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate(timeout=300)
        if process.returncode == -signal.SIGKILL:
            break
        # This run was quicker than the baseline and finished: start over, kill sooner.
        assert process.returncode == 0, output[-3000:]
        _forget_the_run(root)
        delay *= 0.6
    else:
        raise AssertionError(f"every run finished within {delay:.1f} s")
    _assert_crash_left_no_damage(root)


def _forget_the_run(root: Path) -> None:
    """Back to the state before any run: the pipeline writes only the warehouse and the lake."""
    for path in root.glob("warehouse.duckdb*"):
        # The bucket storage beside the warehouse is a folder.
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    shutil.rmtree(root / "lake", ignore_errors=True)


def _assert_crash_left_no_damage(root: Path) -> None:
    assert_warehouse_consistent(root)
    if (root / "lake").exists():
        assert_lake_clean(root)


def _resume_and_compare(root: Path, baseline: Baseline, cli_env: dict[str, str]) -> None:
    """Run again to the end and compare with the uninterrupted run."""
    run_to_end(root, cli_env)
    assert_lake_clean(root)
    lake = lake_tables(root)
    quality = lake.pop("data_quality")
    expected_lake = dict(baseline.lake)
    expected_quality = expected_lake.pop("data_quality")
    assert_same_tables(lake, expected_lake)
    assert_same_tables(warehouse_tables(root), baseline.warehouse)
    _assert_quality_of_resumed_run(root, quality, expected_quality)


def _assert_quality_of_resumed_run(
    root: Path, quality: pl.DataFrame, expected: pl.DataFrame
) -> None:
    """The re-run sees every file; what the killed run committed it reports as skipped.

    The partition of D still reports every file loaded for D with its counts, whichever
    run loaded it (issue 10.7): its loads are exactly the uninterrupted run's.
    """
    identity = ["extract_kind", "file_name", "file_sha256"]
    assert set(quality.select(identity).rows()) == set(expected.select(identity).rows())
    loads = [frame.filter(pl.col("status") == "loaded") for frame in (quality, expected)]
    assert sorted_frame(loads[0]).equals(sorted_frame(loads[1])), loads
    not_skipped = quality.filter(pl.col("status") != "skipped")
    unexpected = not_skipped.join(expected, on=not_skipped.columns, how="anti", nulls_equal=True)
    assert unexpected.is_empty(), unexpected
    skipped = set(quality.filter(pl.col("status") == "skipped")["file_name"])
    loaded = {
        name for (name,) in query(root, "select file_name from manifest where status = 'loaded'")
    }
    assert skipped <= loaded
    assert read_table(root / "lake", "data_quality")["as_of_date"].n_unique() == 1


def _scenarios(baseline: Baseline, cli_env: dict[str, str]) -> dict[str, Callable[[Path], None]]:
    def at_checkpoint(kill_at: str) -> Callable[[Path], None]:
        def scenario(root: Path) -> None:
            _killed(root, cli_env, kill_at)
            _resume_and_compare(root, baseline, cli_env)

        return scenario

    def after_random_delay(seed: int) -> Callable[[Path], None]:
        # Somewhere between late start-up and the last table (the baseline run took `seconds`).
        delay = baseline.seconds * random.Random(seed).uniform(0.4, 0.9)

        def scenario(root: Path) -> None:
            _killed_after(root, cli_env, delay)
            _resume_and_compare(root, baseline, cli_env)

        return scenario

    def repeated(root: Path) -> None:
        for kill_at in REPEATED_KILL_POINTS:
            _killed(root, cli_env, kill_at)
        _resume_and_compare(root, baseline, cli_env)

    return {
        **{f"kill at {point}": at_checkpoint(point) for point in KILL_POINTS},
        **{
            f"kill after random delay, seed {seed}": after_random_delay(seed)
            for seed in RANDOM_KILL_SEEDS
        },
        REPEATED_CRASHES: repeated,
    }


SCENARIO_NAMES = (
    *(f"kill at {point}" for point in KILL_POINTS),
    *(f"kill after random delay, seed {seed}" for seed in RANDOM_KILL_SEEDS),
    REPEATED_CRASHES,
)


@pytest.fixture(scope="module")
def crash_outcomes(
    crash_inputs: Path,
    baseline: Baseline,
    cli_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str | None]:
    """Run every scenario (two at a time); the failure text of each, None when it passed."""
    scenarios = _scenarios(baseline, cli_env)
    assert tuple(scenarios) == SCENARIO_NAMES

    def outcome(name: str) -> str | None:
        root = copy_inbox(crash_inputs, tmp_path_factory.mktemp("crash") / "project")
        try:
            scenarios[name](root)
        except Exception:  # reported by the scenario's own test below
            return traceback.format_exc()
        return None

    with ThreadPoolExecutor(max_workers=PARALLEL_SCENARIOS) as pool:
        return dict(zip(SCENARIO_NAMES, pool.map(outcome, SCENARIO_NAMES), strict=True))


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_a_killed_run_resumes_to_outputs_identical_to_an_uninterrupted_run(
    scenario: str, crash_outcomes: dict[str, str | None]
) -> None:
    failure = crash_outcomes[scenario]
    assert failure is None, failure

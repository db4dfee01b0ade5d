"""Issue 6.5: SIGKILL the real `customer-equity run` anywhere; the next run repairs everything.

Each scenario starts the CLI in its own process on a copy of the same
inputs, kills it at a checkpoint of `customer_equity.faults` (it kills
itself at a named one, or the test kills it from outside while it is held at
one picked at random from every checkpoint an uninterrupted run passes),
checks what the crash left (the DuckDB file adds up, every Parquet file a
lake reader can glob is complete), runs the CLI again and compares every
lake table (all partitions, rows sorted) and every warehouse table with one
uninterrupted run of the same inputs in another folder. A last scenario
crashes the same folder four times in turn before letting a run finish.

No kill depends on timing: a loaded machine makes the scenarios slower, never
different. They are independent processes, so they run one per core, the
longest first; each still reports as its own test.
"""

from __future__ import annotations

import contextvars
import os
import random
import signal
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from customer_equity.faults import KILL_AT
from customer_equity.flows.nightly import nightly
from tests.checkpoints import Holds
from tests.conftest import read_table
from tests.reliability.support import (
    AS_OF,
    Baseline,
    assert_lake_clean,
    assert_same_tables,
    assert_warehouse_consistent,
    copy_inbox,
    lake_tables,
    query,
    sorted_frame,
    start_run,
    warehouse_tables,
)

pytestmark = pytest.mark.slow

# In pipeline order. Where a crash hurts most: creating the warehouse, mid-transaction (first file,
# a file with a correction and a duplicate, the last file), between files,
# between ingest and the bucket steps, between them, with a staged but unswapped
# partition, with some tables of D new and the rest old or missing, before the
# last table.
KILL_POINTS = (
    "warehouse-before-rename",  # the first night, while the warehouse file is created
    "ingest-before-commit",
    "ingest-after-commit:transactions_2025-12-28_history.csv",
    "ingest-before-commit:transactions_2025-12-31.csv",
    "ingest-before-commit:costs.csv",
    "ingest-done",
    "tasks-after-load-inputs",
    "tasks-after-model-fit",
    "tasks-before-value",
    "lake-before-swap:customer_metrics",
    "lake-after-swap:churn",
    "lake-before-swap:data_quality",
)
# Each seed picks one more checkpoint of the baseline run, among those KILL_POINTS does not name.
RANDOM_KILL_SEEDS = (1, 2, 3)
# One folder crashed again and again, each run getting further than the last.
REPEATED_KILL_POINTS = (
    "ingest-before-commit:transactions_2025-12-31.csv",
    "ingest-done",
    "lake-after-swap:churn",
    "lake-before-swap:data_quality",
)
REPEATED_CRASHES = "four crashes in turn, same folder"
PARALLEL_SCENARIOS = os.cpu_count() or 2


def _killed(root: Path, cli_env: dict[str, str], kill_at: str) -> None:
    process = start_run(root, cli_env, faults={KILL_AT: kill_at})
    output, _ = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, f"not killed at {kill_at}:\n{output[-3000:]}"
    _assert_crash_left_no_damage(root)


def _killed_from_outside(root: Path, cli_env: dict[str, str], point: str) -> None:
    """Hold the run at `point`, then SIGKILL it and everything it started from outside."""
    holds = Holds(root.parent / "holds")
    process = start_run(root, cli_env, faults=holds.env(point))
    try:
        holds.wait_reached(point, running=lambda: process.poll() is None)
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the CLI and its children
    finally:
        output, _ = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, f"not killed at {point}:\n{output[-3000:]}"
    _assert_crash_left_no_damage(root)


def _assert_crash_left_no_damage(root: Path) -> None:
    assert_warehouse_consistent(root)
    if (root / "lake").exists():
        assert_lake_clean(root)


def _resume_and_compare(root: Path, baseline: Baseline) -> None:
    """Run again to the end and compare with the uninterrupted run.

    The repairing run is the nightly flow in this process: what repairs is the
    flow, which the CLI only wraps, and a run here skips the ~5 s of CPU a new
    process spends importing (half of what a CLI run of these inputs costs).
    """
    nightly(as_of=AS_OF, config=str(root / "customer-equity.toml"))
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


def random_checkpoint(baseline: Baseline, seed: int) -> str:
    """A checkpoint the uninterrupted run passed that no fixed kill point names, by seed."""
    named = {passed for point in KILL_POINTS if (passed := first_passed(baseline, point))}
    candidates = sorted(set(baseline.checkpoints) - named)
    return random.Random(seed).choice(candidates)


def first_passed(baseline: Baseline, point: str) -> str | None:
    """The first checkpoint of the baseline run that `point` matches (a bare name: its first)."""
    return next(
        (passed for passed in baseline.checkpoints if point in (passed, passed.split(":")[0])),
        None,
    )


@dataclass(frozen=True)
class Scenario:
    kill_points: tuple[str, ...]  # where the run(s) die, in turn
    run: Callable[[Path], None]


def _scenarios(baseline: Baseline, cli_env: dict[str, str]) -> dict[str, Scenario]:
    def at_checkpoint(kill_at: str) -> Scenario:
        def scenario(root: Path) -> None:
            _killed(root, cli_env, kill_at)
            _resume_and_compare(root, baseline)

        return Scenario((kill_at,), scenario)

    def at_random_checkpoint(seed: int) -> Scenario:
        point = random_checkpoint(baseline, seed)

        def scenario(root: Path) -> None:
            _killed_from_outside(root, cli_env, point)
            _resume_and_compare(root, baseline)

        return Scenario((point,), scenario)

    def repeated(root: Path) -> None:
        for kill_at in REPEATED_KILL_POINTS:
            _killed(root, cli_env, kill_at)
        _resume_and_compare(root, baseline)

    return {
        **{f"kill at {point}": at_checkpoint(point) for point in KILL_POINTS},
        **{
            f"kill at a random checkpoint, seed {seed}": at_random_checkpoint(seed)
            for seed in RANDOM_KILL_SEEDS
        },
        REPEATED_CRASHES: Scenario(REPEATED_KILL_POINTS, repeated),
    }


SCENARIO_NAMES = (
    *(f"kill at {point}" for point in KILL_POINTS),
    *(f"kill at a random checkpoint, seed {seed}" for seed in RANDOM_KILL_SEEDS),
    REPEATED_CRASHES,
)


def longest_first(scenarios: dict[str, Scenario], baseline: Baseline) -> list[str]:
    """Scenario names by the work they do (runs to their kill points, plus the resume)."""
    position = {point: index for index, point in enumerate(baseline.checkpoints)}
    length = len(baseline.checkpoints)

    def work(name: str) -> float:
        passed = (first_passed(baseline, point) for point in scenarios[name].kill_points)
        return 1 + sum((position[point] + 1) / length for point in passed if point)

    return sorted(scenarios, key=work, reverse=True)


@pytest.fixture(scope="module")
def crash_outcomes(
    crash_inputs: Path,
    baseline: Baseline,
    cli_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str | None]:
    """Run every scenario (one per core); the failure text of each, None when it passed."""
    scenarios = _scenarios(baseline, cli_env)
    assert tuple(scenarios) == SCENARIO_NAMES

    def outcome(name: str) -> str | None:
        root = copy_inbox(crash_inputs, tmp_path_factory.mktemp("crash") / "project")
        try:
            scenarios[name].run(root)
        except Exception:  # reported by the scenario's own test below
            killed_at = ", then ".join(scenarios[name].kill_points)
            return f"killed at {killed_at}:\n{traceback.format_exc()}"
        return None

    order = longest_first(scenarios, baseline)
    with ThreadPoolExecutor(max_workers=PARALLEL_SCENARIOS) as pool:
        # Prefect keeps the harness's API in context variables, which pool threads lack.
        futures = {
            name: pool.submit(contextvars.copy_context().run, outcome, name) for name in order
        }
        return {name: future.result() for name, future in futures.items()}


def test_every_kill_point_is_a_checkpoint_an_uninterrupted_run_passes(baseline: Baseline) -> None:
    """A renamed checkpoint must fail here, not leave a scenario that kills nothing."""
    assert [point for point in KILL_POINTS if first_passed(baseline, point) is None] == []
    assert set(REPEATED_KILL_POINTS) <= set(KILL_POINTS)
    # Every published table passes a checkpoint on either side of its swap.
    tables = {point.split(":")[1] for point in baseline.checkpoints if point.startswith("lake-")}
    assert tables == set(baseline.lake)


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
def test_a_killed_run_resumes_to_outputs_identical_to_an_uninterrupted_run(
    scenario: str, crash_outcomes: dict[str, str | None]
) -> None:
    failure = crash_outcomes[scenario]
    assert failure is None, failure

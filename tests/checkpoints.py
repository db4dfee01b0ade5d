"""The test side of `customer_equity.faults`: stop runs at checkpoints, wait for them, let them go.

Tests that need two runs to overlap, or a run to be killed at a given point,
hold it at a checkpoint instead of guessing a delay: the run writes a
"reached" marker and waits for the test's "go" marker, so a loaded machine can
make the test slower but never change what it tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from customer_equity.faults import HOLD_AT, HOLD_DIR, TRACE, marker

POLL_SECONDS = 0.02


def wait_until(
    condition: Callable[[], bool], *, timeout: float, failure: Callable[[], str]
) -> None:
    """Poll `condition` until it holds; fail with `failure()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure()
        time.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Holds:
    """Marker files in `folder` for the runs a test holds at checkpoints."""

    folder: Path

    def env(self, *points: str) -> dict[str, str]:
        """Environment variables that hold a run at each of `points`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return {HOLD_AT: ",".join(points), HOLD_DIR: str(self.folder)}

    def wait_reached(self, point: str, *, running: Callable[[], bool], timeout: float = 300) -> int:
        """Wait until some run holds at `point`; the pid of the last run that got there.

        Fails as soon as `running()` says no run that could get there is left.
        """
        reached = marker(self.folder, point, "reached")

        def arrived() -> bool:
            assert reached.exists() or running(), f"every run ended before reaching {point}"
            return reached.exists()

        wait_until(arrived, timeout=timeout, failure=lambda: f"no run reached {point}")
        return int(reached.read_text(encoding="utf-8"))

    def release(self, *points: str) -> None:
        """Let every run held (or still to arrive) at `points` go on."""
        for point in points:
            marker(self.folder, point, "go").touch()


def trace_env(trace: Path) -> dict[str, str]:
    """Environment that makes a run list every checkpoint it reaches in `trace`."""
    return {TRACE: str(trace)}


def traced_points(trace: Path) -> list[str]:
    """The checkpoints a traced run reached, in order, each once."""
    return list(dict.fromkeys(trace.read_text(encoding="utf-8").splitlines()))

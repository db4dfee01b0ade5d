"""What every benchmark here shares: run a measured child process, take medians, save JSON.

A child is a fresh interpreter, so its peak RSS is its own (read with
`os.wait4`, never inherited from an earlier run) and its wall time includes
start-up and imports, as a user sees them.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class ChildRun:
    wall_seconds: float
    peak_rss_mib: float
    report: dict[str, object]  # what the child printed as its last line of JSON


def run_child(program: str, *arguments: str) -> ChildRun:
    """Run `python -c program arguments…`; its last stdout line must be a JSON object."""
    started = time.perf_counter()
    environment = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    child = subprocess.Popen(
        [sys.executable, "-c", program, *arguments],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert child.stdout is not None
    with child.stdout:
        output = child.stdout.read()
    # wait4, not child.wait(): it returns this child's own resource usage.
    _, status, usage = os.wait4(child.pid, 0)
    wall_seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"benchmark child failed with exit code {child.returncode}")
    return ChildRun(
        wall_seconds=wall_seconds,
        peak_rss_mib=usage.ru_maxrss / 1024,  # Linux reports KiB
        report=json.loads(output.strip().splitlines()[-1]),
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, object]:
    import numpy as np
    import polars as pl

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "polars": pl.__version__,
        "load_average": os.getloadavg(),
    }


def save(name: str, result: dict[str, object], output: Path | None = None) -> Path:
    path = output or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**result, "machine": machine()}, indent=2) + "\n", "utf-8")
    return path

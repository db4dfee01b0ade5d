"""Benchmark the sample-data generator: wall time, peak memory and how both scale.

Each generation runs in a fresh Python subprocess, so its peak RSS is its own
(read with `os.wait4`, not polluted by earlier runs) and the wall time
includes interpreter start and imports, as a user running the demo sees it.
A baseline at a fraction of the size runs in the same benchmark invocation,
on the same machine state, so the ratios show scaling rather than hardware.

    .venv/bin/python bench/bench_generate.py --transactions 10000000 --runs 3

Prints a table and writes bench/results/generate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from harness import run_child

from customer_equity.generate import customers_for_transactions

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "generate.json"

# Runs one generation and reports what the generator itself measured.
CHILD_PROGRAM = """
import json, sys
from pathlib import Path
from customer_equity.generate import generate_extracts
report = generate_extracts(Path(sys.argv[1]), customers=int(sys.argv[2]), file_format=sys.argv[3])
print(json.dumps({"counts": dict(report.counts), "elapsed_seconds": report.elapsed_seconds}))
"""


@dataclass(frozen=True)
class Run:
    """One generation in its own process."""

    customers: int
    transactions: int
    wall_seconds: float  # process start to exit
    generate_seconds: float  # inside generate_extracts only
    peak_rss_mib: float
    bytes_written: int


@dataclass(frozen=True)
class Summary:
    """Medians over the runs of one size."""

    customers: int
    transactions: int
    wall_seconds: float
    generate_seconds: float
    peak_rss_mib: float
    bytes_written: int


def run_once(customers: int, file_format: str, scratch: Path | None) -> Run:
    """Generate into a throw-away inbox in a fresh interpreter and measure it."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-generate-") as folder:
        inbox = Path(folder) / "inbox"
        child = run_child(CHILD_PROGRAM, str(inbox), str(customers), file_format)
        bytes_written = sum(path.stat().st_size for path in inbox.rglob("*") if path.is_file())
    return Run(
        customers=customers,
        transactions=child.report["counts"]["transactions"],  # type: ignore[index]
        wall_seconds=child.wall_seconds,
        generate_seconds=child.report["elapsed_seconds"],  # type: ignore[arg-type]
        peak_rss_mib=child.peak_rss_mib,
        bytes_written=bytes_written,
    )


def summarise(runs: list[Run]) -> Summary:
    return Summary(
        customers=runs[0].customers,
        transactions=runs[0].transactions,
        wall_seconds=statistics.median(run.wall_seconds for run in runs),
        generate_seconds=statistics.median(run.generate_seconds for run in runs),
        peak_rss_mib=statistics.median(run.peak_rss_mib for run in runs),
        bytes_written=runs[0].bytes_written,
    )


def print_table(baseline: list[Run], full: list[Run], ratios: dict[str, float]) -> None:
    header = (
        f"{'run':<12}{'customers':>11}{'transactions':>14}{'wall s':>9}"
        f"{'generate s':>12}{'peak RSS MiB':>14}{'MB written':>12}"
    )
    print(header)
    print("-" * len(header))
    rows = [(f"baseline {index + 1}", run) for index, run in enumerate(baseline)]
    rows += [(f"full {index + 1}", run) for index, run in enumerate(full)]
    rows += [("baseline med", summarise(baseline)), ("full median", summarise(full))]
    for label, run in rows:
        megabytes = run.bytes_written / 1e6
        print(
            f"{label:<12}{run.customers:>11,}{run.transactions:>14,}{run.wall_seconds:>9.2f}"
            f"{run.generate_seconds:>12.2f}{run.peak_rss_mib:>14.0f}{megabytes:>12.0f}"
        )
    print()
    for name, value in ratios.items():
        print(f"{name:<28}{value:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=10_000_000, help="target size")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; medians are reported")
    parser.add_argument(
        "--baseline-fraction", type=float, default=0.01, help="baseline size / target size"
    )
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", dest="file_format")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the temp inboxes")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    arguments = parser.parse_args()

    full_customers = customers_for_transactions(arguments.transactions)
    baseline_customers = customers_for_transactions(
        round(arguments.transactions * arguments.baseline_fraction)
    )
    baseline = [
        run_once(baseline_customers, arguments.file_format, arguments.scratch)
        for _ in range(arguments.runs)
    ]
    full = [
        run_once(full_customers, arguments.file_format, arguments.scratch)
        for _ in range(arguments.runs)
    ]
    small, large = summarise(baseline), summarise(full)
    ratios = {
        "size ratio (transactions)": large.transactions / small.transactions,
        "wall time ratio": large.wall_seconds / small.wall_seconds,
        "generate time ratio": large.generate_seconds / small.generate_seconds,
        "peak RSS ratio": large.peak_rss_mib / small.peak_rss_mib,
        "full: transactions/s (M)": large.transactions / large.generate_seconds / 1e6,
        "full: RSS bytes/transaction": large.peak_rss_mib * 2**20 / large.transactions,
    }
    print_table(baseline, full, ratios)

    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "generate_extracts",
        "file_format": arguments.file_format,
        "runs": arguments.runs,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "polars": pl.__version__,
        },
        "baseline": {"median": asdict(small), "runs": [asdict(run) for run in baseline]},
        "full": {"median": asdict(large), "runs": [asdict(run) for run in full]},
        "ratios": ratios,
    }
    arguments.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {arguments.output}")


if __name__ == "__main__":
    main()

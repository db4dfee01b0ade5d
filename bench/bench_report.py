"""Benchmark the HTML report: rendering time, peak RSS and file size at about 1M customers.

Generates extracts once per size (about 7 transactions per customer), runs the
nightly flow once on each (which publishes the lake the report reads), then
re-renders the report of the as-of date in fresh interpreters, `--runs` times:
the median time of `write_report` alone (imports excluded), the history page
and the BI catalog, with the peak RSS of the rendering process (its own VmHWM)
and the page size. The
baseline is the same at `--baseline-fraction` of the size, in the same
invocation, so the ratio is about scaling, not hardware.

    .venv/bin/python bench/bench_report.py --transactions 7000000 --runs 5

Prints a table and writes bench/results/report.json.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date
from pathlib import Path

from harness import ChildRun, median, run_child, save

from customer_equity.generate import customers_for_transactions, generate_extracts

AS_OF = date(2025, 12, 31)

# Through the CLI's Prefect session: its temporary server gets the CLI's start-up time.
FLOW_PROGRAM = """
import json, sys
from datetime import date
from customer_equity.cli import prefect_session
from customer_equity.flows.nightly import nightly
with prefect_session():
    result = nightly(as_of=date.fromisoformat(sys.argv[2]), config=sys.argv[1])
print(json.dumps({"rows_read": sum(f["rows_read"] for f in result["files"])}))
"""

# Renders the report, the history page and the catalog from the lake, timing each.
RENDER_PROGRAM = """
import json, sys, time
from datetime import date
import polars as pl
from customer_equity.catalog import build_catalog
from customer_equity.report import write_history, write_report
from customer_equity.settings import load_settings
settings = load_settings(sys.argv[1])
as_of = date.fromisoformat(sys.argv[2])
started = time.perf_counter()
page = write_report(settings, as_of)
report_seconds = time.perf_counter() - started
started = time.perf_counter()
history = write_history(settings)
history_seconds = time.perf_counter() - started
started = time.perf_counter()
build_catalog(settings.paths.lake)
catalog_seconds = time.perf_counter() - started
customers = pl.scan_parquet(
    str(settings.paths.lake / "customer_metrics" / "*" / "*.parquet")
).select(pl.len()).collect().item()
# The child's own high-water mark: ru_maxrss would include the parent's memory at fork
# (Linux carries it over exec), and the parent holds the generator's arrays.
with open("/proc/self/status", encoding="utf-8") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({
    "peak_mib": peak_kib / 1024, "report_seconds": report_seconds,
    "history_seconds": history_seconds,
    "catalog_seconds": catalog_seconds, "report_bytes": page.stat().st_size,
    "history_bytes": history.stat().st_size, "customers": customers,
}))
"""


def prepare(folder: Path, transactions: int, memory_limit: str) -> Path:
    """Extracts of one size and one nightly run over them; returns the config file."""
    root = folder / f"size-{transactions}"
    generate_extracts(
        root / "inbox", customers=customers_for_transactions(transactions), end_date=AS_OF
    )
    config = root / "bench.toml"
    config.write_text(
        '[paths]\ninbox = "inbox"\nwarehouse = "warehouse.duckdb"\nlake = "lake"\n'
        f'[engine]\nmemory_limit = "{memory_limit}"\n',
        encoding="utf-8",
    )
    run_child(FLOW_PROGRAM, str(config), AS_OF.isoformat())
    return config


def summary(runs: list[ChildRun]) -> dict[str, object]:
    first = runs[0].report
    return {
        "customers": first["customers"],
        "report_bytes": first["report_bytes"],
        "history_bytes": first["history_bytes"],
        "peak_rss_mib": median([run.report["peak_mib"] for run in runs]),  # type: ignore[misc]
        **{
            key: median([run.report[key] for run in runs])  # type: ignore[misc]
            for key in ("report_seconds", "history_seconds", "catalog_seconds")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=7_000_000)
    parser.add_argument("--runs", type=int, default=5, help="renders per size; medians reported")
    parser.add_argument("--baseline-fraction", type=float, default=0.01)
    parser.add_argument("--memory-limit", default="4GiB", help="[engine] memory_limit of the run")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for temp data")
    arguments = parser.parse_args()

    sizes = {
        "baseline": round(arguments.transactions * arguments.baseline_fraction),
        "full": arguments.transactions,
    }
    with tempfile.TemporaryDirectory(dir=arguments.scratch, prefix="bench-report-") as folder:
        configs = {
            name: prepare(Path(folder), size, arguments.memory_limit)
            for name, size in sizes.items()
        }
        runs = {
            name: [
                run_child(RENDER_PROGRAM, str(config), AS_OF.isoformat())
                for _ in range(arguments.runs)
            ]
            for name, config in configs.items()
        }
    medians = {name: summary(result) for name, result in runs.items()}
    base, full = medians["baseline"], medians["full"]
    ratios = {
        key: full[key] / base[key]  # type: ignore[operator]
        for key in ("customers", "report_seconds", "report_bytes", "peak_rss_mib")
    }
    print(
        f"{'size':<10}{'customers':>11}{'report s':>10}{'history s':>11}{'catalog s':>11}"
        f"{'report MB':>11}{'peak RSS MiB':>14}"
    )
    for name, row in medians.items():
        print(
            f"{name:<10}{row['customers']:>11,}{row['report_seconds']:>10.2f}"
            f"{row['history_seconds']:>11.2f}{row['catalog_seconds']:>11.2f}"
            f"{row['report_bytes'] / 1e6:>11.2f}{row['peak_rss_mib']:>14,.0f}"
        )
    print("ratios full/baseline: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    path = save(
        "report",
        {
            "benchmark": "HTML report rendering",
            "runs": arguments.runs,
            "transactions": sizes,
            "medians": medians,
            "ratios": ratios,
            "all_runs": {
                name: [
                    {"wall_seconds": r.wall_seconds, "peak_rss_mib": r.peak_rss_mib, **r.report}
                    for r in result
                ]
                for name, result in runs.items()
            },
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Benchmark the whole nightly flow: wall time, peak RSS and time per task, at two sizes.

Extracts are generated once per size (the generator has its own benchmark);
each run then executes the real `nightly` flow in a fresh interpreter against
a fresh warehouse and lake, so every run ingests everything. Task durations
come from Prefect's own task-run records. The baseline (a fraction of the
size, same invocation, same machine state) makes the ratios about scaling,
not hardware; the flow's fixed cost (Prefect's temporary server) shows in the
baseline's wall time.

    .venv/bin/python bench/bench_pipeline.py --transactions 10000000 --runs 3

Prints a table and writes bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date
from pathlib import Path

from harness import ChildRun, median, run_child, save

from customer_equity.generate import customers_for_transactions, generate_extracts

AS_OF = date(2025, 12, 31)

# Runs the flow once and reports Prefect's task timings and the rows it read.
CHILD_PROGRAM = """
import json, sys, time
from datetime import date
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from flows.nightly import nightly
started = time.perf_counter()
state = nightly(as_of=date.fromisoformat(sys.argv[2]), config=sys.argv[1], return_state=True)
flow_seconds = time.perf_counter() - started
result = state.result()
run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
with get_client(sync_client=True) as client:
    task_runs = client.read_task_runs(flow_run_filter=run_filter)
steps = {run.name.rsplit("-", 1)[0]:
         run.total_run_time.total_seconds() for run in task_runs}
rows = sum(f["rows_read"] for f in result["files"])
print(json.dumps({"flow_seconds": flow_seconds, "steps": steps, "rows_read": rows}))
"""


def prepare(folder: Path, transactions: int) -> Path:
    """Generate the extracts of one size once; returns the inbox."""
    inbox = folder / f"inbox-{transactions}"
    generate_extracts(inbox, customers=customers_for_transactions(transactions), end_date=AS_OF)
    return inbox


def run_flow(inbox: Path, scratch: Path | None) -> ChildRun:
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-pipeline-") as folder:
        config = Path(folder) / "bench.toml"
        config.write_text(
            f'[paths]\ninbox = "{inbox}"\nwarehouse = "warehouse.duckdb"\nlake = "lake"\n',
            encoding="utf-8",
        )
        return run_child(CHILD_PROGRAM, str(config), AS_OF.isoformat())


def summary(runs: list[ChildRun]) -> dict[str, object]:
    steps = runs[0].report["steps"]
    return {
        "rows_read": runs[0].report["rows_read"],
        "wall_seconds": median([run.wall_seconds for run in runs]),
        "flow_seconds": median([run.report["flow_seconds"] for run in runs]),  # type: ignore[misc]
        "peak_rss_mib": median([run.peak_rss_mib for run in runs]),
        "steps": {
            step: median([run.report["steps"][step] for run in runs])  # type: ignore[index]
            for step in steps  # type: ignore[union-attr]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per size; medians reported")
    parser.add_argument("--baseline-fraction", type=float, default=0.01)
    parser.add_argument("--scratch", type=Path, default=None, help="folder for temp data")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=arguments.scratch, prefix="bench-inboxes-") as folder:
        sizes = {
            "baseline": round(arguments.transactions * arguments.baseline_fraction),
            "full": arguments.transactions,
        }
        inboxes = {name: prepare(Path(folder), size) for name, size in sizes.items()}
        runs = {
            name: [run_flow(inbox, arguments.scratch) for _ in range(arguments.runs)]
            for name, inbox in inboxes.items()
        }
    medians = {name: summary(result) for name, result in runs.items()}
    base, full = medians["baseline"], medians["full"]
    ratios = {
        "rows": full["rows_read"] / base["rows_read"],  # type: ignore[operator]
        "wall_seconds": full["wall_seconds"] / base["wall_seconds"],  # type: ignore[operator]
        "peak_rss_mib": full["peak_rss_mib"] / base["peak_rss_mib"],  # type: ignore[operator]
    }
    print(f"{'size':<10}{'rows read':>12}{'wall s':>9}{'flow s':>9}{'peak RSS MiB':>14}  steps (s)")
    for name, row in medians.items():
        steps = ", ".join(f"{k} {v:.1f}" for k, v in row["steps"].items())  # type: ignore[union-attr]
        print(
            f"{name:<10}{row['rows_read']:>12,}{row['wall_seconds']:>9.1f}"
            f"{row['flow_seconds']:>9.1f}{row['peak_rss_mib']:>14,.0f}  {steps}"
        )
    print("ratios full/baseline: " + ", ".join(f"{k} {v:.1f}" for k, v in ratios.items()))
    path = save(
        "pipeline",
        {
            "benchmark": "nightly flow",
            "runs": arguments.runs,
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

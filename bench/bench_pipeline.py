"""Benchmark the whole nightly run against the DuckDB floor, at several history sizes.

For each size the project's generator writes the CSV extracts once; then, in
this same invocation and on the same files:

- the **floor**: DuckDB alone loads the four CSV extracts into a fresh database
  file and writes the per-customer summary (orders, revenue, first/last and
  distinct purchase days) to Parquet;
- the **nightly run**: the real `nightly` flow against a running Prefect server
  (as a deployment runs), cold warehouse, every table written, both models fitted.

Each run is a fresh child process (wall time, peak RSS via `os.wait4`); medians
over `--runs`. Per-stage seconds come from Prefect's own task-run records (a
bucket step's figure is the sum over its buckets). Also reported: one night that
adds the last day of extracts to the history of the largest size ≤ 10M, and the
start-up cost of a bare CLI run on a temporary Prefect server.

    .venv/bin/python bench/bench_pipeline.py --sizes 1000000 10000000 40000000 --runs 3 \
        --scratch /work/benchdata

Prints a table and writes bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from harness import ChildRun, median, run_child, save

from customer_equity.generate import customers_for_transactions, generate_extracts

AS_OF = date(2025, 12, 31)
BIN = Path(sys.executable).parent

FLOOR_PROGRAM = """
import json, sys, time, duckdb
inbox, folder = sys.argv[1], sys.argv[2]
started = time.perf_counter()
con = duckdb.connect(folder + "/floor.duckdb")
for kind in ("transactions", "customers", "wallets", "costs"):
    con.execute(
        f"create table {kind} as select * from read_csv($files, union_by_name = true)",
        {"files": f"{inbox}/{kind}/*.csv"},
    )
loaded = time.perf_counter() - started
con.execute('''copy (
    select customer_id,
        count(distinct transaction_id) filter (where amount > 0) as orders,
        sum(amount) as revenue,
        min(transaction_date) filter (where amount >= 0) as first_purchase,
        max(transaction_date) filter (where amount >= 0) as last_purchase,
        count(distinct transaction_date) filter (where amount >= 0) as purchase_days
    from transactions group by customer_id
) to $target (format parquet)''', {"target": folder + "/summary.parquet"})
con.close()
print(json.dumps({"load_seconds": loaded, "seconds": time.perf_counter() - started}))
"""

NIGHTLY_PROGRAM = """
import json, sys, time
from datetime import date
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId,
)
from customer_equity.flows.nightly import nightly
started = time.perf_counter()
state = nightly(as_of=date.fromisoformat(sys.argv[2]), config=sys.argv[1], return_state=True)
flow_seconds = time.perf_counter() - started
result = state.result()
parent = state.state_details.flow_run_id
steps = {}
with get_client(sync_client=True) as client:
    subflows = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))
    )
    flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[parent, *(run.id for run in subflows)]))
    task_runs, page_size = [], 200  # the API's largest page
    while page := client.read_task_runs(
        flow_run_filter=flow_runs, limit=page_size, offset=len(task_runs)
    ):
        task_runs.extend(page)
    for run in task_runs:
        name = run.name.rsplit("-", 1)[0]
        steps[name] = steps.get(name, 0.0) + run.total_run_time.total_seconds()
rows = sum(f["rows_read"] for f in result["files"])
print(json.dumps({"flow_seconds": flow_seconds, "steps": steps, "rows_read": rows}))
"""


def prepare(folder: Path, transactions: int) -> Path:
    """The generated extracts of one size (reused when the folder already has them)."""
    inbox = folder / f"inbox-{transactions}"
    if not (inbox / "generator_params.json").exists():
        generate_extracts(inbox, customers=customers_for_transactions(transactions), end_date=AS_OF)
    return inbox


def _config(folder: Path, inbox: Path) -> Path:
    config = folder / "bench.toml"
    config.write_text(
        f'[paths]\ninbox = "{inbox}"\nwarehouse = "warehouse.duckdb"\nlake = "lake"\n'
        # Generated files are complete when written: no settle time (issue 10.6).
        "[inbox]\nsettle_seconds = 0\n",
        encoding="utf-8",
    )
    return config


def run_floor(inbox: Path, scratch: Path) -> ChildRun:
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-floor-") as folder:
        return run_child(FLOOR_PROGRAM, str(inbox), folder)


def run_nightly(inbox: Path, scratch: Path) -> ChildRun:
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-nightly-") as folder:
        return run_child(NIGHTLY_PROGRAM, str(_config(Path(folder), inbox)), AS_OF.isoformat())


def run_one_more_day(inbox: Path, scratch: Path, runs: int) -> list[ChildRun]:
    """A night that adds the last daily extract to the history of D − 1 (warehouse restored)."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-increment-") as folder:
        root = Path(folder)
        history = root / "inbox"
        shutil.copytree(inbox, history)
        last_day = sorted((history / "transactions").glob("*.csv"))[-1]
        held_back = root / last_day.name
        last_day.rename(held_back)
        config = _config(root, history)
        run_child(NIGHTLY_PROGRAM, str(config), (AS_OF - timedelta(days=1)).isoformat())
        shutil.copyfile(root / "warehouse.duckdb", root / "history.duckdb")
        shutil.copyfile(held_back, last_day)
        measured = []
        for _ in range(runs):
            shutil.copyfile(root / "history.duckdb", root / "warehouse.duckdb")
            measured.append(run_child(NIGHTLY_PROGRAM, str(config), AS_OF.isoformat()))
        return measured


def bare_cli_run(inbox: Path, scratch: Path) -> float:
    """Wall seconds of `customer-equity run` on a temporary Prefect server (no API URL)."""
    environment = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-cli-") as folder:
        config = _config(Path(folder), inbox)
        started = time.perf_counter()
        subprocess.run(
            [str(BIN / "customer-equity"), "run", "--as-of", AS_OF.isoformat(), "-c", str(config)],
            check=True,
            env={**environment, "PREFECT_HOME": str(Path(folder) / "prefect")},
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


@contextmanager
def prefect_server(scratch: Path) -> Iterator[str]:
    """A `prefect server` on a free loopback port for the whole benchmark."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = Path(tempfile.mkdtemp(dir=scratch, prefix="bench-prefect-"))
    environment = {**os.environ, "PREFECT_HOME": str(home)}
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 900
        while True:
            probe = subprocess.run(["curl", "-sf", f"{url}/health"], capture_output=True)
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the Prefect server did not start within 900 s")
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def summary(floor: list[ChildRun], nightly: list[ChildRun]) -> dict[str, object]:
    steps = nightly[0].report["steps"]
    total = median([run.wall_seconds for run in nightly])
    floor_seconds = median([run.wall_seconds for run in floor])
    rows = nightly[0].report["rows_read"]
    return {
        "rows_read": rows,
        "total_s": total,
        "flow_s": median([run.report["flow_seconds"] for run in nightly]),  # type: ignore[misc]
        "floor_s": floor_seconds,
        "ratio_to_floor": total / floor_seconds,
        "peak_rss_mib": median([run.peak_rss_mib for run in nightly]),
        "floor_peak_rss_mib": median([run.peak_rss_mib for run in floor]),
        "microseconds_per_row": total / rows * 1e6,  # type: ignore[operator]
        "steps": {
            step: median([run.report["steps"].get(step, 0.0) for run in nightly])  # type: ignore[union-attr]
            for step in steps  # type: ignore[union-attr]
        },
        "all_runs": [
            {"wall_seconds": r.wall_seconds, "peak_rss_mib": r.peak_rss_mib, **r.report}
            for r in nightly
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=3, help="runs per size; medians reported")
    parser.add_argument(
        "--runs-above-10m", type=int, default=1, help="runs per size above 10M (a run is long)"
    )
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep-inboxes", action="store_true", help="reuse/keep generated data")
    arguments = parser.parse_args()
    scratch: Path = arguments.scratch
    scratch.mkdir(parents=True, exist_ok=True)

    results: dict[str, object] = {}
    with prefect_server(scratch) as api_url:
        os.environ["PREFECT_API_URL"] = api_url
        for size in arguments.sizes:
            inbox = prepare(scratch, size)
            runs = arguments.runs if size <= 10_000_000 else arguments.runs_above_10m
            floor = [run_floor(inbox, scratch) for _ in range(runs)]
            nightly = [run_nightly(inbox, scratch) for _ in range(runs)]
            results[str(size)] = summary(floor, nightly)
            print(_line(size, results[str(size)]), flush=True)
        increment_size = max([s for s in arguments.sizes if s <= 10_000_000] or arguments.sizes[:1])
        increment = run_one_more_day(prepare(scratch, increment_size), scratch, arguments.runs)
        full = results[str(increment_size)]
        one_day = {
            "size": increment_size,
            "wall_s": median([r.wall_seconds for r in increment]),
            "peak_rss_mib": median([r.peak_rss_mib for r in increment]),
            "rows_read": increment[0].report["rows_read"],
        }
        one_day["ratio_to_full_run"] = one_day["wall_s"] / full["total_s"]  # type: ignore[index, operator]
        results["one_more_day"] = one_day
        del os.environ["PREFECT_API_URL"]
    smallest = min(arguments.sizes)
    cli_seconds = bare_cli_run(prepare(scratch, smallest), scratch)
    results["bare_cli"] = {
        "size": smallest,
        "wall_s": cli_seconds,
        "extra_over_server_s": cli_seconds - results[str(smallest)]["total_s"],  # type: ignore[index, operator]
    }
    if not arguments.keep_inboxes:
        for size in arguments.sizes:
            shutil.rmtree(scratch / f"inbox-{size}", ignore_errors=True)
    print(
        f"one more day on {increment_size:,}: {one_day['wall_s']:.1f} s "
        f"({one_day['ratio_to_full_run']:.2f} of the full run), {one_day['peak_rss_mib']:,.0f} MiB"
    )
    print(f"bare CLI run (temporary Prefect server) at {smallest:,}: {cli_seconds:.1f} s")
    path = save(
        "pipeline", {"benchmark": "nightly vs DuckDB floor", "runs": arguments.runs, **results}
    )
    print(f"wrote {path}")


def _line(size: int, row: dict[str, object]) -> str:
    steps = ", ".join(f"{k} {v:.1f}" for k, v in row["steps"].items())  # type: ignore[union-attr]
    return (
        f"{size:>11,} transactions: total_s {row['total_s']:.1f}  floor_s {row['floor_s']:.1f}  "
        f"ratio_to_floor {row['ratio_to_floor']:.2f}  peak_rss_mib {row['peak_rss_mib']:,.0f}  "
        f"µs/row {row['microseconds_per_row']:.2f}\n    steps: {steps}"
    )


if __name__ == "__main__":
    main()

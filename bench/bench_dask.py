"""Benchmark the bucket steps on a Dask LocalCluster against the local executor.

For each size the same generated CSV extracts go through the real `nightly`
flow twice in this invocation, against one running Prefect server: once with
`[engine] executor = "local"` (bucket steps one at a time in the flow's
process) and once with `executor = "dask"` (a LocalCluster of `--workers`
single-threaded worker processes). Reported per run: wall time, the flow
process's peak RSS (VmHWM), and each Dask worker's peak RSS as the worker
itself logged it after its bucket steps. Buckets are sized automatically from
the memory budget, so a larger history means more buckets, not more memory
per worker.

    .venv/bin/python bench/bench_dask.py --sizes 10000000 40000000 --scratch /work/benchdata

Prints a table and writes bench/results/dask.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench_pipeline import prefect_server, prepare
from harness import ChildRun, median, run_child, save

CHILD_PROGRAM = """
import json, re, sys, time
from datetime import date
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterName
from customer_equity.flows.nightly import nightly

def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

if __name__ == "__main__":
    started = time.perf_counter()
    result = nightly(as_of=date.fromisoformat(sys.argv[2]), config=sys.argv[1])
    flow_seconds = time.perf_counter() - started
    run = result["run_id"]
    messages, task_logs = [], LogFilter(name=LogFilterName(any_=["prefect.task_runs"]))
    with get_client(sync_client=True) as client:
        while page := client.read_logs(log_filter=task_logs, limit=200, offset=len(messages)):
            messages.extend(log.message for log in page)
    workers = {}
    for message in messages:
        found = re.search(r"\\(run " + run + r", worker ([^,]+), peak ([0-9,]+) MiB\\)", message)
        if found:
            worker, peak = found.group(1), int(found.group(2).replace(",", ""))
            workers[worker] = max(workers.get(worker, 0), peak)
    buckets = sum(1 for m in messages if m.startswith("measured bucket") and run in m)
    print(json.dumps({"flow_seconds": flow_seconds, "flow_process_peak_mib": peak_mib(),
                      "worker_peak_mib": workers, "buckets": buckets}))
"""


def run_nightly(inbox: Path, scratch: Path, engine: str) -> ChildRun:
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-dask-") as folder:
        config = Path(folder) / "bench.toml"
        config.write_text(
            f'[paths]\ninbox = "{inbox}"\nwarehouse = "warehouse.duckdb"\nlake = "lake"\n'
            f"[engine]\n{engine}",
            encoding="utf-8",
        )
        program = Path(folder) / "child.py"  # Dask's worker processes re-import the main module
        program.write_text(CHILD_PROGRAM, encoding="utf-8")
        return run_child(f"exec(open({str(program)!r}).read())", str(config), "2025-12-31")


def summary(runs: list[ChildRun]) -> dict[str, object]:
    workers = [max(run.report["worker_peak_mib"].values(), default=0.0) for run in runs]  # type: ignore[union-attr]
    return {
        "wall_s": median([run.wall_seconds for run in runs]),
        "flow_process_peak_mib": median([run.report["flow_process_peak_mib"] for run in runs]),  # type: ignore[misc]
        "largest_worker_peak_mib": median(workers),
        "workers": len(runs[0].report["worker_peak_mib"]),  # type: ignore[arg-type]
        "buckets": runs[0].report["buckets"],
        "all_runs": [{"wall_seconds": r.wall_seconds, **r.report} for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--engines", nargs="+", choices=["local", "dask"], default=["local", "dask"]
    )
    parser.add_argument("--name", default="dask", help="results file bench/results/<name>.json")
    arguments = parser.parse_args()
    scratch: Path = arguments.scratch
    engines = {
        "local": 'executor = "local"\n',
        "dask": f'executor = "dask"\ndask_workers = {arguments.workers}\n',
    }
    engines = {name: engines[name] for name in arguments.engines}
    results: dict[str, object] = {}
    with prefect_server(scratch) as api_url:
        os.environ["PREFECT_API_URL"] = api_url
        for size in arguments.sizes:
            inbox = prepare(scratch, size)
            for name, engine in engines.items():
                runs = [run_nightly(inbox, scratch, engine) for _ in range(arguments.runs)]
                row = summary(runs)
                results[f"{size}-{name}"] = row
                print(
                    f"{size:>11,} {name:<6} wall {row['wall_s']:7.1f} s  "
                    f"flow process {row['flow_process_peak_mib']:7,.0f} MiB  "
                    f"largest worker {row['largest_worker_peak_mib']:7,.0f} MiB  "
                    f"({row['workers']} process(es), {row['buckets']} buckets)",
                    flush=True,
                )
    path = save(arguments.name, {"benchmark": "dask LocalCluster vs local", **results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

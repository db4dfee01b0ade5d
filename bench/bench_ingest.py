"""Benchmark the ingest against its floor: DuckDB alone loading the same CSV extracts.

Per size, the project's generator writes one inbox (all four kinds); then, in
the same invocation and on the same files, each run is a fresh interpreter:

- floor: `create table <kind> as select * from read_csv([...files])` for the
  four kinds into a fresh DuckDB file (DuckDB's own CSV load, default settings);
- ingest: `ingest_inbox` into a fresh warehouse with the default settings (or
  `--memory-limit`), i.e. hashing, decoding, structure check, staging,
  pandera validation, quarantine, classification, merge and manifest.

Wall time (median of the runs), peak RSS of the child (os.wait4) and the
ratio ingest / floor are printed and written to bench/results/ingest.json.

    .venv/bin/python bench/bench_ingest.py --transactions 1000000 10000000 --runs 3 \
        --scratch /work/scratch

`--inboxes DIR` keeps the generated inboxes in DIR (inbox-<transactions>) and
reuses them on the next invocation, so a before/after comparison reads the
same bytes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import date
from pathlib import Path

from harness import ChildRun, median, run_child, save

from customer_equity.generate import customers_for_transactions, generate_extracts

AS_OF = date(2025, 12, 31)
KINDS = ("customers", "transactions", "wallets", "costs")

FLOOR_PROGRAM = """
import json, sys, time
from pathlib import Path
import duckdb
inbox, database = Path(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
con = duckdb.connect(database)
rows = 0
for kind in ("customers", "transactions", "wallets", "costs"):
    files = sorted(str(p) for p in (inbox / kind).glob("*.csv"))
    con.execute(f"create table {kind} as select * from read_csv($files)", {"files": files})
    rows += con.execute(f"select count(*) from {kind}").fetchall()[0][0]
con.close()
print(json.dumps({"seconds": time.perf_counter() - started, "rows_read": rows}))
"""

INGEST_PROGRAM = """
import json, sys, time
from datetime import datetime, UTC
from customer_equity.ingest import ingest_inbox
from customer_equity.settings import load_settings
started = time.perf_counter()
outcomes = ingest_inbox(load_settings(sys.argv[1]), "bench", datetime(2026, 1, 1, tzinfo=UTC))
assert all(o.status == "loaded" for o in outcomes), [o.error for o in outcomes]
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "rows_read": sum(o.rows_read for o in outcomes),
    "files": len(outcomes),
}))
"""


def prepare(folder: Path, transactions: int) -> Path:
    """The inbox of one size, generated once (reused when it is complete)."""
    inbox = folder / f"inbox-{transactions}"
    if (inbox / "generator_params.json").exists():
        return inbox
    shutil.rmtree(inbox, ignore_errors=True)
    generate_extracts(inbox, customers=customers_for_transactions(transactions), end_date=AS_OF)
    return inbox


def run_floor(inbox: Path, scratch: Path | None) -> ChildRun:
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-floor-") as folder:
        return run_child(FLOOR_PROGRAM, str(inbox), str(Path(folder) / "floor.duckdb"))


def run_ingest(inbox: Path, scratch: Path | None, memory_limit: str | None) -> ChildRun:
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bench-ingest-") as folder:
        config = Path(folder) / "bench.toml"
        engine = f'[engine]\nmemory_limit = "{memory_limit}"\n' if memory_limit else ""
        config.write_text(
            f'[paths]\ninbox = "{inbox}"\nwarehouse = "warehouse.duckdb"\nlake = "lake"\n'
            "[inbox]\nsettle_seconds = 0\n" + engine,
            encoding="utf-8",
        )
        return run_child(INGEST_PROGRAM, str(config))


def summary(runs: list[ChildRun]) -> dict[str, float]:
    return {
        "rows_read": runs[0].report["rows_read"],  # type: ignore[dict-item]
        "wall_seconds": median([run.wall_seconds for run in runs]),
        "inner_seconds": median([run.report["seconds"] for run in runs]),  # type: ignore[misc]
        "peak_rss_mib": median([run.peak_rss_mib for run in runs]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=3, help="runs per size; medians reported")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for temp data")
    parser.add_argument("--inboxes", type=Path, default=None, help="keep/reuse inboxes here")
    parser.add_argument("--memory-limit", default=None, help='[engine] memory_limit, e.g. "4GiB"')
    parser.add_argument("--skip-floor", action="store_true", help="measure the ingest only")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=arguments.scratch, prefix="bench-inboxes-") as temp:
        folder = arguments.inboxes or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict[str, object]] = {}
        for size in arguments.transactions:
            inbox = prepare(folder, size)
            floor = (
                []
                if arguments.skip_floor
                else [run_floor(inbox, arguments.scratch) for _ in range(arguments.runs)]
            )
            ingest = [
                run_ingest(inbox, arguments.scratch, arguments.memory_limit)
                for _ in range(arguments.runs)
            ]
            row: dict[str, object] = {"ingest": summary(ingest)}
            if floor:
                row["floor"] = summary(floor)
                row["ratio_wall"] = row["ingest"]["wall_seconds"] / row["floor"]["wall_seconds"]  # type: ignore[index]
                row["ratio_rss"] = row["ingest"]["peak_rss_mib"] / row["floor"]["peak_rss_mib"]  # type: ignore[index]
            row["all_runs"] = {
                name: [{"wall_seconds": r.wall_seconds, "peak_rss_mib": r.peak_rss_mib} for r in rs]
                for name, rs in (("floor", floor), ("ingest", ingest))
            }
            results[str(size)] = row
            print_row(size, row)
    path = save(
        "ingest",
        {
            "benchmark": "ingest_inbox vs DuckDB read_csv floor",
            "runs": arguments.runs,
            "memory_limit": arguments.memory_limit or "default",
            "sizes": results,
        },
    )
    print(f"wrote {path}")


def print_row(size: int, row: dict[str, object]) -> None:
    ingest: dict[str, float] = row["ingest"]  # type: ignore[assignment]
    text = (
        f"{size:>12,} transactions ({ingest['rows_read']:,.0f} rows): ingest "
        f"{ingest['wall_seconds']:.1f} s, {ingest['peak_rss_mib']:,.0f} MiB"
    )
    if "floor" in row:
        floor: dict[str, float] = row["floor"]  # type: ignore[assignment]
        text += (
            f"; floor {floor['wall_seconds']:.1f} s, {floor['peak_rss_mib']:,.0f} MiB; "
            f"ratio wall {row['ratio_wall']:.2f}, RSS {row['ratio_rss']:.2f}"
        )
    print(text, flush=True)


if __name__ == "__main__":
    main()

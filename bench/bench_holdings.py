"""Benchmark the wealth view (SPEC §10): customer_holdings and holdings_mix at scale.

Each run is a fresh interpreter that simulates month-end holdings (7
snapshots, 1–8 products per holder, some stale, some without a goal or risk
level) and times `holdings_tables(...)` collecting both tables. A baseline of
a fraction of the holders runs in its own fresh interpreter in the same
invocation, so the ratio shows how the work scales, not the hardware. Peak
RSS is the child's own (`os.wait4`), simulation included.

280,000 holders (the default) is the sample generator's share at 10 million
transactions (1.41M buyers, a fifth of the open ones hold products).

    .venv/bin/python bench/bench_holdings.py --holders 280000 --runs 3

CPU seconds (user + system of the child) are reported beside wall time: on a
shared machine they show the work when the wall clock shows the queue.

Prints a table and writes bench/results/holdings.json.
"""

from __future__ import annotations

import argparse
from datetime import date

from harness import ChildRun, median, run_child, save

AS_OF = date(2025, 12, 31)

CHILD_PROGRAM = """
import json, resource, sys, time
from datetime import date, timedelta
import numpy as np
import polars as pl
from customer_equity.settings import ASSET_CLASSES, Settings
from customer_equity.transforms.outputs import holdings_tables

holders, as_of = int(sys.argv[1]), date.fromisoformat(sys.argv[2])
rng = np.random.default_rng(holders)
products = np.minimum(1 + rng.poisson(1.6, holders), 8)
owner = np.repeat(np.arange(holders), products)
rank = np.arange(owner.size) - np.repeat(np.cumsum(products) - products, products)
snapshots = 7
last = np.where(rng.random(owner.size) < 0.06, rng.integers(0, 5, owner.size), snapshots - 1)
product, snapshot = np.nonzero(np.arange(snapshots)[None, :] <= last[:, None])
month_ends = [as_of - timedelta(days=31 * (snapshots - 1 - k)) for k in range(snapshots)]
asset = rng.integers(0, len(ASSET_CLASSES), owner.size)
risk = np.where(rng.random(owner.size) < 0.6, rng.integers(1, 6, owner.size), 0)
goal = rng.integers(0, 6, owner.size)
holdings = pl.DataFrame({
    "customer_id": owner[product].astype(str),
    "balance_date": pl.Series([month_ends[k] for k in range(snapshots)]).gather(snapshot),
    "product_id": rank[product].astype(str),
    "asset_class": pl.Series(ASSET_CLASSES).gather(asset[product]),
    "balance": np.round(rng.lognormal(10.5, 1.5, product.size), 2),
    "liquidity": pl.repeat(None, product.size, dtype=pl.String, eager=True),
    "risk_level": pl.Series(risk[product].astype(float)).replace(0.0, None),
    "goal": pl.Series(["retirement", "education", "housing", "growth", "emergency", None])
    .gather(goal[product]),
})
profiles = ["conservative", "steady", "balanced", "aggressive", None]
customers = pl.DataFrame({
    "customer_id": np.arange(holders).astype(str),
    "created_date": pl.repeat(date(2020, 1, 1), holders, eager=True),
    "segment": pl.repeat("retail", holders, eager=True),
    "risk_profile": pl.Series(profiles).gather(rng.integers(0, 5, holders)),
})
def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
rss_after_simulation = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started, cpu_started = time.perf_counter(), cpu_seconds()
tables = {name: frame.collect() for name, frame in
          holdings_tables(holdings.lazy(), customers.lazy(), as_of, Settings()).items()}
seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
print(json.dumps({
    "seconds": seconds,
    "cpu_seconds": cpu,
    "holdings_rows": holdings.height,
    "rows": {name: frame.height for name, frame in tables.items()},
    "rss_after_simulation_mib": rss_after_simulation,
}))
"""


def measure(holders: int, runs: int) -> list[ChildRun]:
    return [run_child(CHILD_PROGRAM, str(holders), AS_OF.isoformat()) for _ in range(runs)]


def summary(measured: list[ChildRun]) -> dict[str, object]:
    return {
        "transform_seconds": median([float(r.report["seconds"]) for r in measured]),
        "transform_cpu_seconds": median([float(r.report["cpu_seconds"]) for r in measured]),
        "wall_seconds": median([r.wall_seconds for r in measured]),
        "peak_rss_mib": median([r.peak_rss_mib for r in measured]),
        "rss_after_simulation_mib": median(
            [float(r.report["rss_after_simulation_mib"]) for r in measured]
        ),
        "holdings_rows": measured[0].report["holdings_rows"],
        "rows": measured[0].report["rows"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holders", type=int, default=280_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-fraction", type=float, default=0.01)
    args = parser.parse_args()
    baseline_holders = max(100, round(args.holders * args.baseline_fraction))
    baseline = summary(measure(baseline_holders, args.runs))
    full = summary(measure(args.holders, args.runs))
    ratio = full["transform_seconds"] / baseline["transform_seconds"]  # type: ignore[operator]
    result = {
        "benchmark": "wealth view: customer_holdings and holdings_mix",
        "runs": args.runs,
        "holders": args.holders,
        "baseline_holders": baseline_holders,
        "full": full,
        "baseline": baseline,
        "transform_ratio": ratio,
    }
    print(f"median of {args.runs} fresh processes each; as of {AS_OF}")
    for name, size, row in (
        ("full", args.holders, full),
        ("baseline", baseline_holders, baseline),
    ):
        print(
            f"{name:<9}{size:>10,} holders {row['holdings_rows']:>11,} rows: "
            f"transforms {row['transform_seconds']:.2f} s "
            f"(CPU {row['transform_cpu_seconds']:.2f} s), wall {row['wall_seconds']:.2f} s, "
            f"peak RSS {row['peak_rss_mib']:.0f} MiB "
            f"(after simulation {row['rss_after_simulation_mib']:.0f})"
        )
    scale = args.holders / baseline_holders
    print(f"transform time ratio full / baseline: {ratio:.1f} for {scale:.0f}x the holders")
    print(f"wrote {save('holdings', result)}")


if __name__ == "__main__":
    main()

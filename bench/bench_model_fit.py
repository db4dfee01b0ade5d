"""Benchmark the probabilistic CLV model (SPEC §6): fits and per-customer values at scale.

Each run is a fresh Python subprocess that simulates a customer base from known
BG/NBD and Gamma-Gamma parameters (vectorised numpy), then times, on the same
machine state, a baseline of 10,000 customers and the full size:
`fit_bgnbd`, `fit_gamma_gamma` and `probabilistic_value(...).collect()`.
The ratio full/baseline of the same process shows how the work scales (100×
the customers) independently of the hardware; peak RSS comes from
`resource.getrusage` inside the child, so no run inherits another's peak.

The simulated summary looks like a real daily one: ages are whole days over
three years, purchase times are rounded down to whole days, and the time unit
is weeks (days / 7), the pipeline's default. Many customers therefore share a
(x, t_x, T) triple, which is what the fit's row collapsing exploits.

    .venv/bin/python bench/bench_model_fit.py --customers 1000000 --runs 3

Prints a table and writes bench/results/model_fit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy

from customer_equity.transforms.bgnbd import fit_bgnbd
from customer_equity.transforms.gamma_gamma import fit_gamma_gamma
from customer_equity.transforms.probabilistic import probabilistic_value

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "model_fit.json"
BASELINE_CUSTOMERS = 10_000
STEPS = ("fit_bgnbd", "fit_gamma_gamma", "probabilistic_value")

# Daily purchase rates and dropout like the CDNOW estimates, spend in currency units.
TRUE_BGNBD = {"r": 0.25, "alpha_days": 30.0, "a": 0.8, "b": 2.5}
TRUE_GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "v": 15.0}
HISTORY_DAYS = 3 * 365
HORIZON_MONTHS = 36
DISCOUNT_RATE = 0.08


def simulate_summary(customers: int, seed: int) -> pl.DataFrame:
    """A repeat-purchase summary (SPEC §3, in weeks) drawn from the BG/NBD/Gamma-Gamma model.

    Given N ~ Poisson(λT) potential purchases in (0, T] and dropout right after
    repeat purchase J ~ Geometric(p), the customer shows x = min(N, J) purchases
    and t_x is the x-th of N uniform order statistics, T·Beta(x, N − x + 1).
    """
    rng = np.random.default_rng(seed)
    age_days = rng.integers(1, HISTORY_DAYS + 1, customers).astype(np.float64)
    rate = rng.gamma(TRUE_BGNBD["r"], 1.0 / TRUE_BGNBD["alpha_days"], customers)
    dropout = np.clip(rng.beta(TRUE_BGNBD["a"], TRUE_BGNBD["b"], customers), 1e-12, 1.0)
    possible = rng.poisson(rate * age_days)
    frequency = np.minimum(possible, rng.geometric(dropout))
    order_statistic = rng.beta(np.maximum(frequency, 1), possible - frequency + 1)
    recency_days = np.where(frequency > 0, np.floor(age_days * order_statistic), 0.0)
    spend_rate = rng.gamma(TRUE_GAMMA_GAMMA["q"], 1.0 / TRUE_GAMMA_GAMMA["v"], customers)
    shape = TRUE_GAMMA_GAMMA["p"] * np.maximum(frequency, 1)
    mean_spend = rng.gamma(shape, 1.0 / (spend_rate * np.maximum(frequency, 1)))
    return pl.DataFrame(
        {
            "customer_id": np.arange(customers).astype(str),
            "repeat_purchases": frequency.astype(np.float64),
            "recency": recency_days / 7.0,
            "age": age_days / 7.0,
            "monetary_value": np.where(frequency > 0, mean_spend, 0.0),
        }
    )


def peak_rss_mib() -> float:
    """This process's peak resident set so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_steps(summary: pl.DataFrame) -> dict[str, object]:
    """Wall seconds of each model step on one summary, plus what the fits found."""
    arrays = [summary[c].to_numpy() for c in ("repeat_purchases", "recency", "age")]
    spend = summary["monetary_value"].to_numpy()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    bgnbd = fit_bgnbd(*arrays)
    seconds["fit_bgnbd"] = time.perf_counter() - started
    started = time.perf_counter()
    gamma_gamma = fit_gamma_gamma(arrays[0], spend)
    seconds["fit_gamma_gamma"] = time.perf_counter() - started
    started = time.perf_counter()
    values = probabilistic_value(
        summary.lazy(),
        bgnbd,
        gamma_gamma,
        horizon_months=HORIZON_MONTHS,
        discount_rate=DISCOUNT_RATE,
        time_unit="weeks",
    ).collect()
    seconds["probabilistic_value"] = time.perf_counter() - started
    distinct = summary.select("repeat_purchases", "recency", "age").unique().height
    return {
        "customers": summary.height,
        "distinct_summary_rows": distinct,
        "seconds": seconds,
        "bgnbd": {
            "r": bgnbd.r,
            "alpha_days": bgnbd.alpha * 7.0,
            "a": bgnbd.a,
            "b": bgnbd.b,
            "converged": bgnbd.converged,
        },
        "gamma_gamma": {
            "p": gamma_gamma.p,
            "q": gamma_gamma.q,
            "v": gamma_gamma.v,
            "converged": gamma_gamma.converged,
        },
        "clv_nulls": values["clv_probabilistic"].null_count(),
    }


def child(customers: int, seed: int) -> None:
    """One run: warm-up, baseline, then full size in this process; JSON on stdout.

    The untimed warm-up on 1,000 customers keeps one-time costs (scipy's lazy
    imports, Polars' thread pool) out of the baseline, which would otherwise
    understate the ratio.
    """
    time_steps(simulate_summary(1_000, seed - 1))
    baseline_summary = simulate_summary(BASELINE_CUSTOMERS, seed)
    full_summary = simulate_summary(customers, seed + 1)
    rss_after_simulation = peak_rss_mib()
    baseline = time_steps(baseline_summary)
    rss_after_baseline = peak_rss_mib()
    full = time_steps(full_summary)
    report = {
        "baseline": baseline,
        "full": full,
        "peak_rss_mib": {
            "after_simulation": rss_after_simulation,
            "after_baseline": rss_after_baseline,
            "after_full": peak_rss_mib(),
        },
    }
    print(json.dumps(report))


def run_child(customers: int, seed: int) -> dict[str, object]:
    """Start a fresh interpreter for one run and return its report."""
    completed = subprocess.run(
        [sys.executable, __file__, "--child", "--customers", str(customers), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)


def summarise(runs: list[dict], customers: int) -> dict[str, object]:
    """Medians over runs of each step's time, its full/baseline ratio, and peak RSS."""
    steps = {}
    for step in (*STEPS, "total"):

        def seconds(report: dict, size: str, step: str = step) -> float:
            timings = report[size]["seconds"]
            return sum(timings.values()) if step == "total" else timings[step]

        steps[step] = {
            "full_seconds": statistics.median(seconds(r, "full") for r in runs),
            "baseline_seconds": statistics.median(seconds(r, "baseline") for r in runs),
            "ratio": statistics.median(seconds(r, "full") / seconds(r, "baseline") for r in runs),
        }
    return {
        "benchmark": "probabilistic model fit and values",
        "customers": customers,
        "baseline_customers": BASELINE_CUSTOMERS,
        "runs": len(runs),
        "horizon_months": HORIZON_MONTHS,
        "time_unit": "weeks",
        "true_parameters": {"bgnbd": TRUE_BGNBD, "gamma_gamma": TRUE_GAMMA_GAMMA},
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "polars": pl.__version__,
        },
        "median": {
            "steps": steps,
            "peak_rss_mib": {
                stage: statistics.median(r["peak_rss_mib"][stage] for r in runs)
                for stage in ("after_simulation", "after_baseline", "after_full")
            },
        },
        "run_reports": runs,
    }


def print_table(result: dict) -> None:
    """Human-readable medians."""
    full, base = result["customers"], result["baseline_customers"]
    print(f"median of {result['runs']} fresh processes; {full:,} vs {base:,} customers")
    print(f"{'step':<22}{'full s':>10}{'baseline s':>12}{'ratio':>9}")
    for step, row in result["median"]["steps"].items():
        print(
            f"{step:<22}{row['full_seconds']:>10.3f}{row['baseline_seconds']:>12.4f}"
            f"{row['ratio']:>9.1f}"
        )
    rss = result["median"]["peak_rss_mib"]
    print(
        f"peak RSS MiB: after simulation {rss['after_simulation']:.0f}, "
        f"after baseline {rss['after_baseline']:.0f}, after full run {rss['after_full']:.0f}"
    )
    last = result["run_reports"][-1]["full"]
    print(
        f"distinct (x, t_x, T) rows: {last['distinct_summary_rows']:,}; "
        f"BG/NBD {last['bgnbd']}; Gamma-Gamma {last['gamma_gamma']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.customers, args.seed)
        return
    runs = [run_child(args.customers, args.seed + 10 * run) for run in range(args.runs)]
    result = summarise(runs, args.customers)
    print_table(result)
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS_PATH}")


if __name__ == "__main__":
    main()

"""Where the ingest spends time and memory: per-stage wall time and the RSS peak inside it.

Wraps named functions (`module:function`) with a timer; a sampler thread
reads the process RSS every 20 ms and charges the peak to the innermost
stage running. One in-process `ingest_inbox` over an inbox made by
`bench_ingest.py --inboxes DIR` (or `customer-equity generate`):

    .venv/bin/python bench/profile_ingest.py /work/scratch/ingest/inbox-10000000 \
        customer_equity.ingest:read_extract customer_equity.ingest:stage ...

Prints one line per stage: calls, seconds, peak RSS (MiB) while inside it.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
seconds: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)
peak: dict[str, int] = defaultdict(int)
running: list[str] = []


def rss() -> int:
    with Path("/proc/self/statm").open() as handle:
        return int(handle.read().split()[1]) * PAGE


def sampler(stop: threading.Event) -> None:
    while not stop.wait(0.02):
        current = rss()
        for stage in list(running):
            peak[stage] = max(peak[stage], current)
        peak["(whole)"] = max(peak["(whole)"], current)


def wrap(target: str) -> None:
    module_name, _, dotted = target.partition(":")
    owner: object = importlib.import_module(module_name)
    *parents, name = dotted.split(".")
    for parent in parents:  # a method: module:Class.method
        owner = getattr(owner, parent)
    original: Callable[..., object] = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: object, **kwargs: object) -> object:
        running.append(target)
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[target] += time.perf_counter() - started
            calls[target] += 1
            running.remove(target)

    setattr(owner, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inbox", type=Path)
    parser.add_argument("stages", nargs="+", help="module:function to time")
    parser.add_argument("--scratch", type=Path, default=None)
    arguments = parser.parse_args()
    for target in arguments.stages:
        wrap(target)
    from customer_equity.ingest import ingest_inbox
    from customer_equity.settings import load_settings

    stop = threading.Event()
    thread = threading.Thread(target=sampler, args=(stop,), daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory(dir=arguments.scratch, prefix="profile-ingest-") as folder:
        config = Path(folder) / "profile.toml"
        config.write_text(
            f'[paths]\ninbox = "{arguments.inbox}"\nwarehouse = "w.duckdb"\nlake = "lake"\n'
            "[inbox]\nsettle_seconds = 0\n",
            encoding="utf-8",
        )
        started = time.perf_counter()
        ingest_inbox(load_settings(config), "profile", datetime(2026, 1, 1, tzinfo=UTC))
        total = time.perf_counter() - started
    stop.set()
    thread.join()
    print(f"{'stage':<60}{'calls':>6}{'seconds':>9}{'share':>7}{'peak RSS MiB':>14}")
    for target in sorted(seconds, key=seconds.get, reverse=True):  # type: ignore[arg-type]
        print(
            f"{target:<60}{calls[target]:>6}{seconds[target]:>9.1f}"
            f"{seconds[target] / total:>7.0%}{peak[target] / 2**20:>14,.0f}"
        )
    print(
        f"{'ingest_inbox (whole)':<60}{1:>6}{total:>9.1f}{1:>7.0%}{peak['(whole)'] / 2**20:>14,.0f}"
    )


if __name__ == "__main__":
    main()

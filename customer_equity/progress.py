"""Progress of long steps, for the terminal and the Prefect log alike (both read the run logger).

A 2M-transaction run used to be silent for 23 s during ingest and 10 s during
metrics. `heartbeat` logs when a step starts, every `every_seconds` while it
runs ("still ..."), and when it ends with its duration; `file_progress` logs a
line per ingested file. Bucket steps log their own progress, one line per bucket.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

HEARTBEAT_SECONDS = 10.0


@contextmanager
def heartbeat(
    logger: logging.Logger | logging.LoggerAdapter[Any],
    what: str,
    every_seconds: float = HEARTBEAT_SECONDS,
) -> Iterator[None]:
    """Log the start of `what`, a line every `every_seconds` while it runs, and its end."""
    started = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every_seconds):
            logger.info("still %s (%s s so far)", what, f"{time.monotonic() - started:,.0f}")

    logger.info("%s ...", what)
    thread = threading.Thread(target=beat, name=f"heartbeat: {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    logger.info("%s: done in %s s", what, f"{time.monotonic() - started:,.1f}")


def file_progress(
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> Callable[[int, int, Any], None]:
    """A callback for `ingest_inbox`: one line per file loaded or rejected, with running rows.

    Files skipped as already loaded are counted, not listed (a year of daily
    files would bury the new ones).
    """
    rows_so_far = 0

    def report(done: int, total: int, outcome: Any) -> None:
        nonlocal rows_so_far
        if outcome.status == "skipped":
            return
        rows_so_far += outcome.rows_read
        logger.info(
            "ingest: file %s of %s %s: %s, %s rows (%s rows read so far)",
            f"{done:,}",
            f"{total:,}",
            outcome.file_name,
            outcome.status,
            f"{outcome.rows_read:,}",
            f"{rows_so_far:,}",
        )

    return report

"""Fault-injection hooks for the crash and concurrency tests (a test hook, not a feature).

`checkpoint(name)` marks a point in the pipeline where a crash or a collision
must be survivable. It does nothing unless the test environment asks for it:

- `CUSTOMER_EQUITY_KILL_AT=<point>` SIGKILLs the own process there (no
  cleanup, no `finally`, no flush: exactly what the OOM killer or a power cut
  does).
- `CUSTOMER_EQUITY_HOLD_AT=<point>[,<point>…]` with `CUSTOMER_EQUITY_HOLD_DIR=<folder>`
  stops there: the process writes `<folder>/<point>.reached` (holding its pid)
  and waits until the test creates `<folder>/<point>.go` — or kills it. So a
  test knows, without guessing a delay, that a run holds the warehouse lock
  or has got exactly this far. A `.go` marker stays: later arrivals pass.
- `CUSTOMER_EQUITY_TRACE=<file>` appends every point reached, one per line, so
  a test can list the points of a whole run (and pick one at random).

A checkpoint called with a `detail` (e.g. the file name) is the point
`<name>:<detail>`, and `<name>` alone also matches it, so a test can name
the third file or just the first one. Outside tests the cost is one
environment lookup per call; checkpoints sit at per-file and per-table
boundaries, never in per-row code.

Checkpoints (tests/reliability/test_crash_safety.py kills at each, except where noted):
- `warehouse-before-rename:<file>`: a new warehouse created and initialised under
  its temporary name, not yet renamed into place
- `ingest-before-commit:<file>`: every write of the file done, COMMIT not yet sent
- `ingest-after-commit:<file>`: the file committed, the next not started
- `release-before-commit:<kind>`: quarantined rows of the kind released and marked,
  COMMIT not yet sent (killed in tests/reliability/test_quarantine_release.py)
- `ingest-done`: all files in and the run's accounting checked, connection still open
- `tasks-after-load-inputs`, `tasks-after-model-fit`, `tasks-before-value`: between
  the bucket steps (flows/tasks.py)
- `lake-before-swap:<table>`: the new partition staged and fsynced, not yet renamed in
- `lake-after-swap:<table>`: the partition swapped in, the next table not started
- `lock-busy:<lock file>`: a run found the lock taken and is about to wait or fail
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

KILL_AT = "CUSTOMER_EQUITY_KILL_AT"
HOLD_AT = "CUSTOMER_EQUITY_HOLD_AT"
HOLD_DIR = "CUSTOMER_EQUITY_HOLD_DIR"
TRACE = "CUSTOMER_EQUITY_TRACE"
# A held process whose test never answers (it crashed) gives up instead of hanging forever.
HOLD_TIMEOUT_SECONDS = 600.0
_HOLD_POLL_SECONDS = 0.01


class HoldTimeoutError(RuntimeError):
    """A process held at a checkpoint was neither released nor killed in time."""


def checkpoint(name: str, detail: str | None = None) -> None:
    """Crash, stop or record here when the environment names this point (see module doc)."""
    kill_at, hold_at, trace = (os.environ.get(key) for key in (KILL_AT, HOLD_AT, TRACE))
    if kill_at is None and hold_at is None and trace is None:
        return
    point = name if detail is None else f"{name}:{detail}"
    if trace:
        with Path(trace).open("a", encoding="utf-8") as log:
            log.write(point + "\n")
    if kill_at in (name, point):
        os.kill(os.getpid(), signal.SIGKILL)
    if hold_at:
        held = [wanted for wanted in hold_at.split(",") if wanted in (name, point)]
        if held:
            _hold(Path(os.environ[HOLD_DIR]), held[0])


def marker(folder: Path, point: str, kind: str) -> Path:
    """`<folder>/<point>.<kind>`: the file a held process writes ("reached") or awaits ("go")."""
    return folder / f"{point}.{kind}"


def _hold(folder: Path, point: str) -> None:
    reached = marker(folder, point, "reached")
    staged = reached.with_name(f"{reached.name}.{os.getpid()}")
    staged.write_text(str(os.getpid()), encoding="utf-8")
    staged.replace(reached)  # a test never reads a half-written marker
    go = marker(folder, point, "go")
    deadline = time.monotonic() + HOLD_TIMEOUT_SECONDS
    while not go.exists():
        if time.monotonic() > deadline:
            raise HoldTimeoutError(f"held at {point} for {HOLD_TIMEOUT_SECONDS:g} s: no {go}")
        time.sleep(_HOLD_POLL_SECONDS)

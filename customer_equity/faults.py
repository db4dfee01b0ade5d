"""Fault-injection hooks for the crash and concurrency tests (a test hook, not a feature).

`checkpoint(name)` marks a point in the pipeline where a crash or a slow step
must be survivable. It does nothing unless the test environment asks for it:

- `CUSTOMER_EQUITY_KILL_AT=<name>` SIGKILLs the own process at that point (no
  cleanup, no `finally`, no flush: exactly what the OOM killer or a power cut
  does).
- `CUSTOMER_EQUITY_PAUSE_AT=<name>=<seconds>` sleeps there, to hold the
  warehouse lock long enough for a second run to collide with it.

A checkpoint called with a `detail` (e.g. the file name) also matches
`<name>:<detail>`, so a test can pick the third file rather than the first.
Outside tests the cost is one environment lookup per call; checkpoints sit
at per-file and per-table boundaries, never in per-row code.

Checkpoints (tests/reliability/test_crash_safety.py kills at each, except where noted):
- `warehouse-before-rename:<file>`: a new warehouse created and initialised under
  its temporary name, not yet renamed into place
- `ingest-before-commit:<file>`: every write of the file done, COMMIT not yet sent
- `ingest-after-commit:<file>`: the file committed, the next not started
- `release-before-commit:<kind>`: quarantined rows of the kind released and marked,
  COMMIT not yet sent (killed in tests/reliability/test_quarantine_release.py)
- `ingest-done`: all files in and the run's accounting checked, connection still open
- `lake-before-swap:<table>`: the new partition staged and fsynced, not yet renamed in
- `lake-after-swap:<table>`: the partition swapped in, the next table not started
"""

from __future__ import annotations

import os
import signal
import time

KILL_AT = "CUSTOMER_EQUITY_KILL_AT"
PAUSE_AT = "CUSTOMER_EQUITY_PAUSE_AT"


def checkpoint(name: str, detail: str | None = None) -> None:
    """Crash or pause here when the environment names this point (see module doc)."""
    kill_at = os.environ.get(KILL_AT)
    pause_at = os.environ.get(PAUSE_AT)
    if kill_at is None and pause_at is None:
        return
    names = {name} if detail is None else {name, f"{name}:{detail}"}
    if kill_at in names:
        os.kill(os.getpid(), signal.SIGKILL)
    if pause_at:
        point, _, seconds = pause_at.rpartition("=")
        if point in names:
            time.sleep(float(seconds))

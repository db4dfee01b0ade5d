"""Progress lines of long steps: start, a heartbeat while running, the end with its duration."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from customer_equity.ingest import ingest_inbox
from customer_equity.progress import file_progress, heartbeat
from tests.conftest import settings_of
from tests.reliability.support import NOW, csv_text, new_project, put


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.beats = threading.Semaphore(0)

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.lines.append(line)
        if line.startswith("still "):
            self.beats.release()


def test_a_long_step_says_it_is_alive_until_it_ends() -> None:
    logger = logging.getLogger("test-progress")
    logger.setLevel(logging.INFO)
    recorder = Recorder()
    logger.addHandler(recorder)
    try:
        with heartbeat(logger, "ingesting transactions.csv", every_seconds=0.01):
            # The step "runs" until two heartbeats were logged (no timing assumption).
            assert recorder.beats.acquire(timeout=30) and recorder.beats.acquire(timeout=30)
        beats = len([line for line in recorder.lines if line.startswith("still ")])
        assert recorder.lines[0] == "ingesting transactions.csv ..."
        assert recorder.lines[1].startswith("still ingesting transactions.csv (")
        assert recorder.lines[-1].startswith("ingesting transactions.csv: done in ")
        # Once the step ended, the heartbeat stopped.
        assert len([line for line in recorder.lines if line.startswith("still ")]) == beats
    finally:
        logger.removeHandler(recorder)


def test_a_failing_step_still_stops_its_heartbeat() -> None:
    logger = logging.getLogger("test-progress-failing")
    with pytest.raises(RuntimeError), heartbeat(logger, "failing", every_seconds=0.01):
        raise RuntimeError("boom")
    assert not any(t.name == "heartbeat: failing" for t in threading.enumerate())


def test_ingest_reports_each_new_file_with_running_row_counts(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    header = "transaction_id,customer_id,transaction_date,amount"
    put(root, "transactions", "a.csv", csv_text(header, "T1,C1,2025-03-01,5", "T2,C1,2025-03-02,6"))
    put(root, "transactions", "b.csv", csv_text(header, "T3,C2,2025-03-01,5"))
    logger = logging.getLogger("test-progress-ingest")
    logger.setLevel(logging.INFO)
    recorder = Recorder()
    logger.addHandler(recorder)
    try:
        ingest_inbox(settings_of(root), "run-1", NOW, file_progress(logger))
        ingest_inbox(settings_of(root), "run-2", NOW, file_progress(logger))  # all skipped
    finally:
        logger.removeHandler(recorder)
    assert recorder.lines == [
        "ingest: file 1 of 2 a.csv: loaded, 2 rows (2 rows read so far)",
        "ingest: file 2 of 2 b.csv: loaded, 1 rows (3 rows read so far)",
    ]

"""The nightly flow: ingest → validate → transform → write, for one as-of date."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

from prefect import flow, runtime

from customer_equity.lake import clear_staging
from customer_equity.settings import Settings, load_settings
from customer_equity.warehouse import warehouse_lock
from flows.tasks import (
    build_customer_tables,
    build_value_tables,
    ingest_extracts,
    write_data_quality,
    write_model_calibration,
)


def default_as_of() -> date:
    """The calendar day before the run was scheduled (a 02:00 run values yesterday)."""
    scheduled = runtime.flow_run.scheduled_start_time
    return scheduled.date() - timedelta(days=1)


def run_id() -> str:
    return str(runtime.flow_run.id or uuid.uuid4())


@flow(name="nightly", log_prints=True)
def nightly(
    as_of: date | None = None,
    config: str | None = None,
    lock_wait_seconds: float = 0.0,
    holdout_from: date | None = None,
) -> dict[str, object]:
    """Value the customer base as of `as_of` (default: yesterday) and publish the tables.

    With `holdout_from`, also validate BG/NBD: fit on the days before it and
    compare predicted with actual purchases from it up to `as_of`.
    """
    settings: Settings = load_settings(Path(config) if config else None)
    as_of = as_of or default_as_of()
    with warehouse_lock(settings.paths.warehouse, wait_seconds=lock_wait_seconds):
        clear_staging(settings.paths.lake)
        current_run = run_id()
        files = ingest_extracts(settings, current_run)
        measured = build_customer_tables(settings, as_of)
        valued = build_value_tables(settings, as_of, measured["models"])
        if holdout_from:
            valued["model_calibration"] = write_model_calibration(settings, holdout_from, as_of)
        quality = write_data_quality(settings, current_run, as_of)
    tables = {**measured["paths"], **valued, "data_quality": quality}
    return {"as_of": as_of.isoformat(), "run_id": current_run, "files": files, "tables": tables}

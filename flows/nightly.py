"""The nightly flow: ingest → validate → transform → write, for one as-of date."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, runtime

from customer_equity.lake import clear_staging
from customer_equity.settings import Settings, load_settings
from customer_equity.warehouse import warehouse_lock
from flows.artifacts import publish_run_artifacts
from flows.tasks import (
    build_customer_tables,
    build_value_tables,
    ingest_extracts,
    write_data_quality,
    write_model_calibration,
)


def as_of_for(scheduled: datetime, timezone: str) -> date:
    """The calendar day before `scheduled`, read in `timezone`.

    The API reports start times in UTC; a 02:00 run in Asia/Tokyo starts at
    17:00 UTC the day before, so the date must be taken after converting.
    """
    if scheduled.tzinfo is None:  # the API's times are UTC; never read them as local time
        scheduled = scheduled.replace(tzinfo=UTC)
    return scheduled.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def run_id() -> str:
    return str(runtime.flow_run.id or uuid.uuid4())


@flow(name="nightly", log_prints=True)
def nightly(
    as_of: date | None = None,
    config: str | None = None,
    lock_wait_seconds: float = 0.0,
    holdout_from: date | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, object]:
    """Value the customer base as of `as_of` (default: yesterday) and publish the tables.

    Args:
        as_of: The as-of date D. Empty: the day before the run's scheduled start,
            in the time zone of `[schedule] timezone`.
        config: Settings file (TOML) on the machine that runs the flow.
        lock_wait_seconds: How long to wait while another run holds the warehouse
            before failing (nothing is written by a run that could not start).
        holdout_from: Also validate BG/NBD: fit on the days before this date and
            compare predicted with actual purchases from it up to `as_of`.
        overrides: Settings for this run only, as dotted keys, e.g.
            {"model.discount_rate": 0.1}.
    """
    logger = get_run_logger()
    if holdout_from and as_of and holdout_from > as_of:
        raise ValueError(f"holdout_from {holdout_from} must be on or before as_of {as_of}")
    settings: Settings = load_settings(config, overrides)
    if overrides:
        logger.warning("settings overridden for this run: %s", overrides)
    if as_of is None:
        scheduled = runtime.flow_run.scheduled_start_time
        zone = settings.schedule.timezone
        as_of = as_of_for(scheduled, zone)
        logger.info(
            "no as-of date given: valuing %s, the day before the scheduled start %s (%s)",
            as_of.isoformat(),
            scheduled.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M"),
            zone,
        )
    logger.info(
        "valuing the customer base as of %s; waiting up to %g s if another run holds %s",
        as_of.isoformat(),
        lock_wait_seconds,
        settings.paths.warehouse,
    )
    # The OS lock spans ingest and every partition swap, so a scheduled run, a
    # backfill date and a hand-started CLI run never interleave their writes.
    with warehouse_lock(settings.paths.warehouse, wait_seconds=lock_wait_seconds):
        clear_staging(settings.paths.lake)
        current_run = run_id()
        files = ingest_extracts(settings, current_run)
        measured = build_customer_tables(settings, as_of)
        valued = build_value_tables(settings, as_of, measured["models"])
        warnings: list[str] = []
        if holdout_from:
            # An optional diagnostic: whatever happens in it, the run and data_quality go on.
            calibration = write_model_calibration(settings, holdout_from, as_of, return_state=True)
            if calibration.is_completed():
                valued["model_calibration"] = calibration.result()
            else:
                warnings.append(f"model_calibration not written: {calibration.message}")
                logger.warning("%s", warnings[-1])
        quality = write_data_quality(settings, current_run, as_of)
    tables = {**measured["paths"], **valued, "data_quality": quality}
    result: dict[str, object] = {
        "as_of": as_of.isoformat(),
        "run_id": current_run,
        "files": files,
        "tables": tables,
        "warnings": warnings,
    }
    # After the lock: the report only reads what this run published, and must not
    # keep the next run waiting on API calls.
    report = publish_run_artifacts(settings, result, return_state=True)
    if not report.is_completed():
        # The tables are published and correct; a missing report must not make a
        # scheduled run look failed (and re-run), but it must be visible.
        logger.warning("tables published, but the run report was not: %s", report.message)
    return result

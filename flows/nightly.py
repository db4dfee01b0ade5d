"""The nightly flow: ingest → validate → transform → write, for one as-of date."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import Task, flow, get_run_logger, runtime, unmapped
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from customer_equity.buckets import BucketLayout, remove_stale_runs
from customer_equity.flows.artifacts import publish_run_artifacts
from customer_equity.flows.reporting import publish_report
from customer_equity.flows.tasks import (
    calibration_bucket,
    holdout_cut_off,
    ingest_extracts,
    measure_bucket,
    publish_tables,
    reduce_customer_equity,
    reduce_group_facts,
    reduce_model_calibration,
    reduce_tier_cutoffs,
    snapshot_buckets,
    tier_bucket,
    value_bucket,
    wealth_bucket,
    write_data_quality,
)
from customer_equity.lake import clear_staging, lake_lock
from customer_equity.settings import Engine, Settings, load_settings
from customer_equity.warehouse import warehouse_lock


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


def each_bucket(step: Task[..., None], layout: BucketLayout, **arguments: Any) -> None:
    """Run a bucket step for every bucket on the flow's task runner, and wait for all."""
    futures = step.map(
        **{name: unmapped(value) for name, value in arguments.items()},
        layout=unmapped(layout),
        bucket=range(layout.buckets),
    )
    futures.result()


def bucket_task_runner(engine: Engine) -> TaskRunner[Any]:
    """Where the bucket steps run (`[engine] executor`).

    local: this process, one bucket at a time (a bucket step's memory is sized to
    the run's budget, and Polars already uses every core inside one step).
    dask: Prefect's DaskTaskRunner on the cluster at `scheduler_address`, or on
    a local cluster of `dask_workers` single-threaded worker processes.
    """
    if engine.executor == "local":
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if engine.scheduler_address:
        return DaskTaskRunner(address=engine.scheduler_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": engine.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        },
    )


@flow(name="bucket-tables")
def bucket_tables(settings: Settings, as_of: date, layout: BucketLayout) -> None:
    """Every output table of D from the bucket files: map steps per bucket, reductions between.

    Runs as a subflow so that its task runner can follow `[engine] executor`;
    the reductions run here, beside the warehouse, and read only small partials.
    """
    each_bucket(measure_bucket, layout, settings=settings, as_of=as_of)
    each_bucket(wealth_bucket, layout, settings=settings, as_of=as_of)
    reduce_group_facts(settings, as_of, layout)
    each_bucket(value_bucket, layout, settings=settings, as_of=as_of)
    reduce_tier_cutoffs(settings, layout)
    each_bucket(tier_bucket, layout, settings=settings, as_of=as_of)
    reduce_customer_equity(settings, layout)


@flow(name="holdout-check")
def holdout_check(
    settings: Settings, as_of: date, layout: BucketLayout, calibration_end: date
) -> None:
    """`model_calibration`: BG/NBD fitted up to `calibration_end`, predicted up to D (SPEC §6)."""
    each_bucket(
        calibration_bucket, layout, settings=settings, calibration_end=calibration_end, as_of=as_of
    )
    reduce_model_calibration(settings, calibration_end, as_of, layout)


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
    with (
        warehouse_lock(settings.paths.warehouse, wait_seconds=lock_wait_seconds),
        lake_lock(settings.paths.lake, wait_seconds=lock_wait_seconds),
    ):
        clear_staging(settings.paths.lake)
        remove_stale_runs(settings)
        current_run = run_id()
        files = ingest_extracts(settings, as_of, current_run)
        layout = snapshot_buckets(settings, as_of, current_run)
        bucket_tables.with_options(task_runner=bucket_task_runner(settings.engine))(
            settings, as_of, layout
        )
        warnings: list[str] = []
        if holdout_from:
            # An optional diagnostic: whatever happens in it, the run and data_quality go on.
            check = holdout_check.with_options(task_runner=bucket_task_runner(settings.engine))(
                settings, as_of, layout, holdout_cut_off(holdout_from, as_of), return_state=True
            )
            if not check.is_completed():
                warnings.append(f"model_calibration not written: {check.message}")
                logger.warning("%s", warnings[-1])
        write_data_quality(settings, as_of, current_run, layout)
        tables = publish_tables(settings, as_of, layout)
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
    pages = publish_report(settings, as_of, return_state=True)
    if pages.is_completed():
        result |= pages.result()
    else:
        logger.warning("tables published, but the HTML report was not: %s", pages.message)
    return result

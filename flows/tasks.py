"""Prefect tasks: the I/O around the pure transforms.

Tasks pass settings, dates, bucket numbers and the run's `BucketLayout` (a
folder and two numbers), never frames: each bucket step reads its bucket's
files and writes its results beside them (`customer_equity.buckets`), so a
step's memory is one bucket's, whatever the history. Business steps are not
cached: a backfill after a correction must recompute, and hashing inputs would
cost more than the work. Tasks carry no tags: in Prefect 3.9 every tagged task
run asks the server for a concurrency slot, which cost up to 2 s per task.
"""

from __future__ import annotations

import os
import resource
import socket
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from customer_equity import buckets, lake, warehouse
from customer_equity.buckets import BucketLayout
from customer_equity.faults import checkpoint
from customer_equity.ingest import ingest_inbox
from customer_equity.progress import file_progress, heartbeat
from customer_equity.settings import Settings
from customer_equity.transforms import outputs
from customer_equity.transforms.models import PurchaseModels, model_calibration, model_fit


@task(name="ingest-extracts", cache_policy=NO_CACHE)
def ingest_extracts(settings: Settings, as_of: date, run_id: str) -> list[dict[str, object]]:
    """Load every new extract file into the warehouse, and the quarantined rows whose
    reason has cleared; one outcome per file seen and per file with released rows."""
    logger = get_run_logger()
    with heartbeat(logger, "ingesting extracts"):
        outcomes = ingest_inbox(
            settings, run_id, datetime.now(UTC), file_progress(logger), as_of=as_of
        )
    rows = [asdict(outcome) for outcome in outcomes]
    loaded = [o for o in outcomes if o.status == "loaded"]
    failed = [o for o in outcomes if o.status == "failed"]
    logger.info(
        "ingested %d file(s), %s rows (%s new, %s replaced, %s duplicate), %s quarantined; "
        "%d already loaded, %d failed",
        len(loaded),
        f"{sum(o.rows_read for o in loaded):,}",
        f"{sum(o.rows_loaded for o in loaded):,}",
        f"{sum(o.rows_replaced for o in loaded):,}",
        f"{sum(o.rows_duplicate for o in loaded):,}",
        f"{sum(o.rows_quarantined for o in loaded):,}",
        sum(o.status == "skipped" for o in outcomes),
        len(failed),
    )
    for outcome in failed:
        logger.error("extract rejected: %s", outcome.error)
    for outcome in (o for o in outcomes if o.status == "released"):
        logger.info(
            "released %s row(s) of %s from quarantine (reason cleared)",
            f"{outcome.rows_released:,}",
            outcome.file_name,
        )
    return rows


@task(name="snapshot-buckets", cache_policy=NO_CACHE)
def snapshot_buckets(settings: Settings, as_of: date, run_id: str) -> BucketLayout:
    """Write the point-in-time inputs of D from the warehouse, split into customer buckets."""
    layout = buckets.snapshot(settings, as_of, run_id)
    get_run_logger().info(
        "%s transactions up to %s in %d customer bucket(s)",
        f"{layout.transactions:,}",
        as_of.isoformat(),
        layout.buckets,
    )
    checkpoint("tasks-after-load-inputs")
    return layout


def _peak_rss_mib() -> int:
    """This process's peak resident memory.

    VmHWM, not getrusage's ru_maxrss: ru_maxrss survives exec, so a Dask worker
    spawned by the flow process would report the flow's own peak (measured).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _progress(step: str, layout: BucketLayout, bucket: int, customers: int) -> None:
    """One log line per bucket step: progress in the UI, and which worker did it."""
    get_run_logger().info(
        "%s bucket %d of %d: %s customers (run %s, worker %s:%d, peak %s MiB)",
        step,
        bucket + 1,
        layout.buckets,
        f"{customers:,}",
        layout.run_id,
        socket.gethostname(),
        os.getpid(),
        f"{_peak_rss_mib():,}",
    )


def _inputs(layout: BucketLayout, bucket: int) -> outputs.Inputs:
    return outputs.Inputs(**buckets.bucket_inputs(layout, bucket))


@task(name="measure-bucket", cache_policy=NO_CACHE)
def measure_bucket(settings: Settings, as_of: date, layout: BucketLayout, bucket: int) -> None:
    """Map step 1: the bucket's customers' own figures and its partials."""
    inputs = _inputs(layout, bucket)
    customers = outputs.measured_customers(inputs, as_of, settings).collect()
    buckets.write_frame(customers, layout, layout.bucket_file("measured", bucket))
    partials = outputs.bucket_partials(inputs, customers.lazy(), as_of, settings)
    names = outputs.Partials.names()
    for name, part in zip(
        names, pl.collect_all([getattr(partials, n) for n in names]), strict=True
    ):
        buckets.write_frame(part, layout, layout.bucket_file(f"partials/{name}", bucket))
    _progress("measured", layout, bucket, customers.height)


def _partials(layout: BucketLayout) -> outputs.Partials:
    return outputs.Partials(
        **{
            name: buckets.read_buckets(layout, f"partials/{name}")
            for name in outputs.Partials.names()
        }
    )


def _facts(layout: BucketLayout) -> outputs.GroupFacts:
    return outputs.GroupFacts(
        **{
            name: buckets.read_frame(layout, layout.path("facts", f"{name}.parquet")).lazy()
            for name in (
                "churn",
                "segment_margins",
                "referral_margins",
                "referrals_known",
                "cost_rows",
            )
        }
    )


@task(name="group-facts", cache_policy=NO_CACHE)
def reduce_group_facts(settings: Settings, as_of: date, layout: BucketLayout) -> None:
    """Reduce step: churn, cohorts, segment M, referral totals and the model fits of D."""
    partials = _partials(layout)
    facts = outputs.group_facts(partials)
    logger = get_run_logger()
    for name in ("churn", "segment_margins", "referral_margins", "referrals_known", "cost_rows"):
        buckets.write_frame(getattr(facts, name), layout, layout.path("facts", f"{name}.parquet"))
    with heartbeat(logger, "fitting BG/NBD and Gamma-Gamma on every bucket's summaries"):
        models = outputs.purchase_models(partials, settings)
    checkpoint("tasks-after-model-fit")
    for error in (models.bgnbd_error, models.gamma_gamma_error):
        if error:
            logger.warning("purchase model not fitted: %s", error)
    buckets.write_models(layout, models.to_record())
    buckets.write_output_part(facts.churn, layout, "churn", 0)
    buckets.write_output_part(
        outputs.cohort_retention(partials, as_of), layout, "cohort_retention", 0
    )
    buckets.write_output_part(model_fit(models), layout, "model_fit", 0)


@task(name="wealth-bucket", cache_policy=NO_CACHE)
def wealth_bucket(settings: Settings, as_of: date, layout: BucketLayout, bucket: int) -> None:
    """Map step (SPEC §10): the bucket's customer_holdings and holdings_mix, when it has holdings.

    A bucket without holdings writes no part; a run without any publishes neither table.
    """
    inputs = buckets.bucket_inputs(layout, bucket)
    holdings = inputs["holdings"].collect()
    if holdings.height == 0:
        return
    tables = outputs.holdings_tables(holdings.lazy(), inputs["customers"], as_of, settings)
    rows = {table: buckets.write_output_part(frame, layout, table, bucket)
            for table, frame in tables.items()}  # fmt: skip
    _progress("wealth", layout, bucket, rows["customer_holdings"])


def _holdings(layout: BucketLayout, bucket: int) -> pl.LazyFrame | None:
    """The bucket's customer_holdings; empty when only other buckets have some; None: none at all.

    Equity is grouped by AUM tier when the run has holdings, so a bucket without
    them still counts its customers in the group without a tier.
    """
    filesystem = layout.filesystem()
    path = layout.bucket_file("tables/customer_holdings", bucket)
    if filesystem.exists(path):
        return buckets.read_frame(layout, path).lazy()
    if filesystem.glob(layout.path("tables", "customer_holdings", "bucket=*.parquet")):
        return outputs.empty_table("customer_holdings")
    return None


@task(name="value-bucket", cache_policy=NO_CACHE)
def value_bucket(settings: Settings, as_of: date, layout: BucketLayout, bucket: int) -> None:
    """Map step 2: the bucket's customer_metrics and customer_value, and its tier scores."""
    checkpoint("tasks-before-value")
    facts = _facts(layout)
    models = PurchaseModels.from_record(buckets.read_models(layout))
    measured = buckets.read_frame(layout, layout.bucket_file("measured", bucket)).lazy()
    metrics = outputs.customer_metrics_of(measured, facts, models, settings).collect()
    buckets.write_output_part(metrics, layout, "customer_metrics", bucket)
    value = outputs.customer_value(metrics.lazy(), facts, models, settings).collect()
    buckets.write_output_part(value, layout, "customer_value", bucket)
    customers = buckets.bucket_inputs(layout, bucket)["customers"]
    candidates = outputs.tier_candidates(
        metrics.lazy(), value.lazy(), customers, _holdings(layout, bucket)
    )
    buckets.write_frame(candidates, layout, layout.bucket_file("candidates", bucket))
    for rule_set, scores in outputs.tier_scores(candidates, settings).items():
        buckets.write_frame(scores, layout, layout.bucket_file(f"scores/{rule_set}", bucket))
    _progress("valued", layout, bucket, metrics.height)


@task(name="tier-cutoffs", cache_policy=NO_CACHE)
def reduce_tier_cutoffs(settings: Settings, layout: BucketLayout) -> None:
    """Reduce step: exact percentile cut-offs per rule set over every bucket's scores."""
    scores = {
        name: buckets.read_buckets(layout, f"scores/{name}")
        for name, rule in settings.tiers.rule_sets.items()
        if rule.method == "percentile"
    }
    for name, cutoffs in outputs.tier_cutoffs(scores, settings).items():
        buckets.write_frame(cutoffs, layout, layout.path("cutoffs", f"{name}.parquet"))


@task(name="tier-bucket", cache_policy=NO_CACHE)
def tier_bucket(settings: Settings, as_of: date, layout: BucketLayout, bucket: int) -> None:
    """Map step 3: the bucket's customer_tiers, its share of customer_equity and of the
    year's acquisitions (retention economics)."""
    cutoffs = {
        name: buckets.read_frame(layout, layout.path("cutoffs", f"{name}.parquet")).lazy()
        for name, rule in settings.tiers.rule_sets.items()
        if rule.method == "percentile"
    }
    candidates = buckets.read_frame(layout, layout.bucket_file("candidates", bucket)).lazy()
    tiers = outputs.customer_tiers(candidates, cutoffs, settings).collect()
    buckets.write_output_part(tiers, layout, "customer_tiers", bucket)
    metrics = buckets.read_frame(layout, layout.bucket_file("tables/customer_metrics", bucket))
    value = buckets.read_frame(layout, layout.bucket_file("tables/customer_value", bucket))
    holdings = _holdings(layout, bucket)
    equity = outputs.equity_partials(value.lazy(), metrics.lazy(), tiers.lazy(), settings, holdings)
    buckets.write_frame(equity, layout, layout.bucket_file("equity", bucket))
    acquired = outputs.retention_partials(metrics.lazy(), tiers.lazy(), as_of, settings, holdings)
    buckets.write_frame(acquired, layout, layout.bucket_file("acquisitions", bucket))
    _progress("tiered", layout, bucket, metrics.height)


@task(name="customer-equity", cache_policy=NO_CACHE)
def reduce_customer_equity(settings: Settings, layout: BucketLayout) -> None:
    """Reduce step: customer_equity per group from every bucket's share and the churn table,
    and retention_economics (SPEC §11) from it and every bucket's acquisitions."""
    equity = outputs.customer_equity(
        buckets.read_buckets(layout, "equity"), _facts(layout).churn, settings
    ).collect()
    buckets.write_output_part(equity, layout, "customer_equity", 0)
    economics = outputs.retention_economics(
        equity.lazy(), buckets.read_buckets(layout, "acquisitions"), settings
    )
    buckets.write_output_part(economics, layout, "retention_economics", 0)


@task(name="calibration-bucket", cache_policy=NO_CACHE)
def calibration_bucket(
    settings: Settings, calibration_end: date, as_of: date, layout: BucketLayout, bucket: int
) -> None:
    """Map step of the holdout check: the bucket's calibration summaries and holdout counts."""
    rows = outputs.calibration_partial(_inputs(layout, bucket), calibration_end, as_of, settings)
    buckets.write_frame(rows, layout, layout.bucket_file("calibration", bucket))


@task(name="model-calibration", cache_policy=NO_CACHE)
def reduce_model_calibration(
    settings: Settings, calibration_end: date, as_of: date, layout: BucketLayout
) -> None:
    """Calibration/holdout check of BG/NBD: fit before the cut-off, predict up to D."""
    table = model_calibration(
        buckets.read_buckets(layout, "calibration"), calibration_end, as_of, settings
    )
    if table["predicted_holdout_purchases"].is_null().all():
        get_run_logger().warning(
            "model_calibration without predictions: %s",
            table["message"][0] if table.height else "nobody bought before the holdout",
        )
    buckets.write_output_part(table, layout, "model_calibration", 0)


def holdout_cut_off(holdout_from: date, as_of: date) -> date:
    """The last calibration day: the day before the holdout starts (which is ≤ D)."""
    if not holdout_from <= as_of:
        raise ValueError(f"holdout_from {holdout_from} must be on or before as_of {as_of}")
    return holdout_from - timedelta(days=1)


@task(name="data-quality", cache_policy=NO_CACHE)
def write_data_quality(settings: Settings, as_of: date, run_id: str, layout: BucketLayout) -> None:
    """`data_quality` of D: this run's manifest rows and the loads of earlier runs of D."""
    con = warehouse.connect(
        settings.paths.warehouse, memory_limit=settings.engine.duckdb_memory_limit
    )
    try:
        manifest = con.sql(
            warehouse.sql_text("ingest/data_quality"),
            params={"run_id": run_id, "as_of": as_of},
        ).pl()
    finally:
        con.close()
    buckets.write_output_part(manifest, layout, "data_quality", 0)


@task(name="publish-tables", cache_policy=NO_CACHE)
def publish_tables(settings: Settings, as_of: date, layout: BucketLayout) -> dict[str, str]:
    """Swap every table's partition of D into the lake, each in one atomic step; paths."""
    logger = get_run_logger()
    published: dict[str, str] = {}
    for table in buckets.output_tables(layout):
        path = lake.publish_partition(
            settings.paths.lake,
            table,
            as_of,
            lambda staging, table=table: buckets.fetch_parts(layout, table, staging),
        )
        rows = pl.scan_parquet(path / "*.parquet").select(pl.len()).collect().item()
        logger.info("wrote %s: %s rows -> %s", table, f"{rows:,}", path)
        published[table] = str(path)
    buckets.remove_run(layout)
    return published

"""Prefect tasks: the I/O around the pure transforms.

Tasks pass settings, dates and table names, never frames; each opens its own
DuckDB connection. Business steps are not cached: a backfill after a
correction must recompute, and hashing inputs would cost more than the work.
Tasks carry no tags: in Prefect 3.9 every tagged task run asks the server for a
concurrency slot, which cost up to 2 s per task on the SQLite server.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from customer_equity import lake, warehouse
from customer_equity.faults import checkpoint
from customer_equity.ingest import ingest_inbox
from customer_equity.settings import EXTRACT_KINDS, ExtractKind, Settings
from schemas.inputs import input_schema
from schemas.outputs import conform
from transforms import outputs


@task(name="ingest-extracts", cache_policy=NO_CACHE)
def ingest_extracts(settings: Settings, run_id: str) -> list[dict[str, object]]:
    """Load every new extract file into the warehouse; one outcome per file seen."""
    outcomes = ingest_inbox(settings, run_id, datetime.now(UTC))
    rows = [asdict(outcome) for outcome in outcomes]
    loaded = [o for o in outcomes if o.status == "loaded"]
    failed = [o for o in outcomes if o.status == "failed"]
    logger = get_run_logger()
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
    return rows


DATE_COLUMN = {
    "transactions": "transaction_date",
    "customers": "created_date",
    "wallets": "period_start",
    "costs": "cost_date",
}


def load_tables(
    settings: Settings, as_of: date, kinds: tuple[ExtractKind, ...] = EXTRACT_KINDS
) -> dict[str, pl.LazyFrame]:
    """Warehouse tables as of D, the point-in-time cut pushed into DuckDB."""
    con = warehouse.connect(
        settings.paths.warehouse, memory_limit=settings.engine.duckdb_memory_limit
    )
    try:
        frames = {}
        for kind in kinds:
            columns = ", ".join(warehouse.quote(c) for c in input_schema(kind).columns)
            column = warehouse.quote(DATE_COLUMN[kind])
            frames[kind] = (
                con.sql(
                    f"select {columns} from {warehouse.quote(kind)} "
                    f"where {column} is null or {column} <= $as_of",
                    params={"as_of": as_of},
                )
                .pl()
                .lazy()
            )
    finally:
        con.close()
    return frames


def load_inputs(settings: Settings, as_of: date) -> outputs.Inputs:
    """All four extract tables as of D."""
    return outputs.Inputs(**load_tables(settings, as_of))


def publish(frame: pl.LazyFrame | pl.DataFrame, settings: Settings, table: str, as_of: date) -> str:
    """Validate against the output schema and swap the partition in; returns its path."""
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    path = lake.write_partition(conform(table, collected), settings.paths.lake, table, as_of)
    get_run_logger().info("wrote %s: %s rows -> %s", table, f"{collected.height:,}", path)
    return str(path)


@task(name="customer-metrics", cache_policy=NO_CACHE)
def build_customer_tables(settings: Settings, as_of: date) -> dict[str, object]:
    """customer_metrics (with P(alive)), churn, cohort_retention and model_fit for D.

    Returns the partition paths and the fitted model parameters (a few numbers)
    for the value step.
    """
    inputs = load_inputs(settings, as_of)
    checkpoint("tasks-after-load-inputs")
    metrics = outputs.customer_metrics(inputs, as_of, settings).collect()
    models = outputs.fit_purchase_models(metrics, settings)
    checkpoint("tasks-after-model-fit")
    for error in (models.bgnbd_error, models.gamma_gamma_error):
        if error:
            get_run_logger().warning("purchase model not fitted: %s", error)
    paths = {
        "customer_metrics": publish(
            outputs.with_p_alive(metrics.lazy(), models, settings),
            settings,
            "customer_metrics",
            as_of,
        ),
        "churn": publish(outputs.churn(inputs, as_of, settings), settings, "churn", as_of),
        "cohort_retention": publish(
            outputs.cohort_retention(inputs, as_of), settings, "cohort_retention", as_of
        ),
        "model_fit": publish(outputs.model_fit(models), settings, "model_fit", as_of),
    }
    return {"paths": paths, "models": models.to_record()}


@task(name="customer-value", cache_policy=NO_CACHE)
def build_value_tables(
    settings: Settings, as_of: date, models: dict[str, object]
) -> dict[str, str]:
    """customer_value, customer_tiers and customer_equity from the published metrics of D."""
    checkpoint("tasks-before-value")
    lake_root = settings.paths.lake
    metrics = lake.read_partition(lake_root, "customer_metrics", as_of).lazy()
    churn = lake.read_partition(lake_root, "churn", as_of).lazy()
    # Only the customer attributes: the transactions were already read by the metrics step.
    customers = load_tables(settings, as_of, ("customers",))["customers"]
    fitted = outputs.PurchaseModels.from_record(models)
    value = outputs.customer_value(metrics, churn, fitted, settings).collect().lazy()
    tiers = outputs.customer_tiers(metrics, value, customers, settings).collect().lazy()
    return {
        "customer_value": publish(value, settings, "customer_value", as_of),
        "customer_tiers": publish(tiers, settings, "customer_tiers", as_of),
        "customer_equity": publish(
            outputs.customer_equity(value, metrics, tiers, churn, settings),
            settings,
            "customer_equity",
            as_of,
        ),
    }


@task(name="model-calibration", cache_policy=NO_CACHE)
def write_model_calibration(settings: Settings, holdout_from: date, as_of: date) -> str:
    """Calibration/holdout check of BG/NBD: fit before `holdout_from`, predict up to D."""
    if not holdout_from <= as_of:
        raise ValueError(f"holdout_from {holdout_from} must be on or before as_of {as_of}")
    table = outputs.model_calibration(
        load_inputs(settings, as_of), holdout_from - timedelta(days=1), as_of, settings
    )
    if table["predicted_holdout_purchases"].is_null().all():
        get_run_logger().warning(
            "model_calibration without predictions: %s",
            table["message"][0] if table.height else "nobody bought before the holdout",
        )
    return publish(table, settings, "model_calibration", as_of)


@task(name="data-quality", cache_policy=NO_CACHE)
def write_data_quality(settings: Settings, run_id: str, as_of: date) -> str:
    """`data_quality`: the manifest rows of this run (SPEC §9)."""
    con = warehouse.connect(
        settings.paths.warehouse, memory_limit=settings.engine.duckdb_memory_limit
    )
    try:
        manifest = con.sql(
            "select run_id, extract_kind, file_name, file_sha256, status, rows_read, rows_loaded, "
            "rows_replaced, rows_duplicate, rows_quarantined, error from manifest "
            "where run_id = $run_id order by processed_at, extract_kind, file_name",
            params={"run_id": run_id},
        ).pl()
    finally:
        con.close()
    return publish(manifest, settings, "data_quality", as_of)

"""The run report: Prefect artifacts that show what a nightly run read, computed and wrote.

Published once at the end of `nightly` (and so once per as-of date of a
backfill), from the flow result and the partitions the run just published:

- `data-quality`: the extract files of the run with their row counts,
- `stage-tier-counts`: customers per lifecycle stage × value tier,
- `churn-and-equity`: churn rate and customer equity, whole base and per group,
- `published-partitions`: the Parquet partition of every table written.

The keys are fixed, so the Artifacts page of the UI shows each one's history
across runs; each version is also attached to the run that made it. The
builders are plain functions of files and dicts, testable without Prefect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from customer_equity import lake
from customer_equity.settings import TIERS, Settings

DATA_QUALITY_KEY = "data-quality"
STAGE_TIER_KEY = "stage-tier-counts"
CHURN_EQUITY_KEY = "churn-and-equity"
PARTITIONS_KEY = "published-partitions"
# What the Prefect API accepts as an artifact key; checked in the tests.
ARTIFACT_KEY = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")

# Lifecycle order (SPEC §5), not the rule precedence of settings.STAGES: a reader
# scans the table from new customers to lost ones.
STAGE_ORDER = ("potential", "development", "growth", "maturity", "decline", "termination")
COUNT_COLUMNS = (
    "rows_read",
    "rows_loaded",
    "rows_replaced",
    "rows_duplicate",
    "rows_quarantined",
)

FileRow = Mapping[str, Any]


def data_quality_rows(files: Sequence[FileRow]) -> list[dict[str, object]]:
    """One row per extract file loaded or rejected by the run, then one for the skipped ones.

    Files already loaded by an earlier run are skipped with zero counts; listing
    each of them would bury the few new files under the whole history of the inbox.
    """
    rows: list[dict[str, object]] = [
        {
            "extract": f["extract_kind"],
            "file": f["file_name"],
            "status": f["status"],
            **{column: f[column] for column in COUNT_COLUMNS},
            "error": f["error"] or "",
        }
        for f in files
        if f["status"] != "skipped"
    ]
    skipped = sum(f["status"] == "skipped" for f in files)
    if skipped or not rows:
        rows.append(
            {
                "extract": "all",
                "file": f"{skipped} file(s) already loaded by earlier runs",
                "status": "skipped",
                **dict.fromkeys(COUNT_COLUMNS, 0),
                "error": "",
            }
        )
    return rows


def data_quality_summary(files: Sequence[FileRow]) -> str:
    """One sentence in business terms: what came in, what was kept out."""
    loaded = [f for f in files if f["status"] == "loaded"]
    failed = [f for f in files if f["status"] == "failed"]
    total = {column: sum(int(f[column]) for f in loaded) for column in COUNT_COLUMNS}
    return (
        f"{len(loaded)} new file(s) with {total['rows_read']:,} rows: "
        f"{total['rows_loaded']:,} loaded, {total['rows_replaced']:,} replaced, "
        f"{total['rows_duplicate']:,} duplicate, {total['rows_quarantined']:,} quarantined; "
        f"{len(failed)} file(s) rejected, "
        f"{sum(f['status'] == 'skipped' for f in files)} already loaded."
    )


def stage_tier_rows(lake_root: Path, as_of: date, rule_set: str) -> list[dict[str, object]]:
    """Customers per lifecycle stage (rows) and value tier (columns) of the main rule set."""
    tiers = lake.read_partition(lake_root, "customer_tiers", as_of).filter(
        pl.col("rule_set") == rule_set
    )
    counts = {
        (stage, tier): n
        for stage, tier, n in tiers.group_by("lifecycle_stage", "value_tier").len().iter_rows()
    }
    stages = [*STAGE_ORDER, *sorted({s for s, _ in counts} - set(STAGE_ORDER))]
    rows: list[dict[str, object]] = []
    for stage in stages:
        row: dict[str, object] = {"lifecycle stage": stage}
        row |= {tier: counts.get((stage, tier), 0) for tier in TIERS}
        row["all tiers"] = sum(counts.get((stage, tier), 0) for tier in TIERS)
        rows.append(row)
    total: dict[str, object] = {"lifecycle stage": "all stages"}
    total |= {tier: sum(int(r[tier]) for r in rows) for tier in (*TIERS, "all tiers")}
    return [*rows, total]


def _money(value: float | None, currency: str) -> str:
    return "n/a" if value is None else f"{value:,.2f} {currency}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def churn_equity_markdown(lake_root: Path, as_of: date, currency: str) -> str:
    """Headline churn rate and customer equity of the whole base, then per group."""
    churn = lake.read_partition(lake_root, "churn", as_of)
    equity = lake.read_partition(lake_root, "customer_equity", as_of)
    base_churn = churn.filter(pl.col("group_by") == "base").to_dicts()
    base_equity = equity.filter(pl.col("group_by") == "base").to_dicts()
    lines = [f"# Customer equity as of {as_of.isoformat()}", "", "| measure | value |", "|---|---|"]
    if base_equity:
        row = base_equity[0]
        lines += [
            f"| customer equity (whole base) | {_money(row['customer_equity'], currency)} |",
            f"| customers valued | {row['customers']:,} |",
            f"| CLV per customer | {_money(row['clv_per_customer'], currency)} |",
            f"| lifetime behind the equity | {_years(row['avg_lifetime_years'])} "
            f"({row['lifetime_source']}: {row['lifetime_reason']}) |",
        ]
    if base_churn:
        row = base_churn[0]
        lines += [
            f"| churn rate (whole base) | {_share(row['churn_rate'])} "
            f"({row['customers_lost']:,} of {row['customers_at_start']:,} customers) |",
            f"| average lifetime | {_years(row['avg_lifetime_years'])} |",
        ]
    groups = equity.filter(pl.col("group_by") != "base").sort("group_by", "group_value")
    if groups.height:
        lines += [
            "",
            "## Per group",
            "",
            "| group | value | customers | churn rate | CLV per customer | customer equity |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in groups.iter_rows(named=True):
            lines.append(
                f"| {row['group_by']} | {row['group_value']} | {row['customers']:,} | "
                f"{_share(row['churn_rate'])} | {_money(row['clv_per_customer'], currency)} | "
                f"{_money(row['customer_equity'], currency)} |"
            )
    return "\n".join(lines)


def _years(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} years"


def headline(lake_root: Path, as_of: date, currency: str) -> str:
    """The run's result in one line for the log: equity, customers, churn."""
    equity = lake.read_partition(lake_root, "customer_equity", as_of).filter(
        pl.col("group_by") == "base"
    )
    churn = lake.read_partition(lake_root, "churn", as_of).filter(pl.col("group_by") == "base")
    parts = [f"as of {as_of.isoformat()}"]
    if equity.height:
        parts.append(
            f"customer equity {_money(equity['customer_equity'][0], currency)} "
            f"over {equity['customers'][0]:,} customers"
        )
        if equity["lifetime_source"][0] == "cap":
            parts.append(f"lifetime capped at {_years(equity['avg_lifetime_years'][0])}")
    if churn.height:
        parts.append(f"churn rate {_share(churn['churn_rate'][0])}")
    return ", ".join(parts)


def partitions_markdown(tables: Mapping[str, str]) -> str:
    """Every partition the run published, with its row count and a file link."""
    lines = [
        "| table | rows | partition |",
        "|---|---:|---|",
    ]
    for table, folder in tables.items():
        path = Path(folder)
        # Row counts come from the Parquet footers: no data page is read.
        rows = pl.scan_parquet(path / "*.parquet").select(pl.len()).collect().item()
        lines.append(f"| {table} | {rows:,} | [`{path}`]({path.as_uri()}) |")
    return "\n".join(lines)


@task(
    name="publish-artifacts",
    cache_policy=NO_CACHE,
    # Only API calls and reads of just-published files: safe and cheap to repeat.
    retries=2,
    retry_delay_seconds=2,
    # No tags: on Prefect 3.9 every tagged task run asks the API for tag concurrency
    # slots, which on the SQLite server often costs a 2 s retry (measured).
)
def publish_run_artifacts(settings: Settings, result: Mapping[str, Any]) -> dict[str, UUID]:
    """Publish the run report of one nightly run; returns artifact id by key."""
    as_of = date.fromisoformat(str(result["as_of"]))
    files: Sequence[FileRow] = result["files"]
    tables: Mapping[str, str] = result["tables"]
    lake_root = settings.paths.lake
    stamp = f"as of {as_of.isoformat()}, run {result['run_id']}"
    ids = {
        DATA_QUALITY_KEY: create_table_artifact(
            table=data_quality_rows(files),
            key=DATA_QUALITY_KEY,
            description=f"Extracts ({stamp}): {data_quality_summary(files)}",
        ),
        STAGE_TIER_KEY: create_table_artifact(
            table=stage_tier_rows(lake_root, as_of, settings.tiers.rule_set),
            key=STAGE_TIER_KEY,
            description=(
                f"Customers per lifecycle stage and value tier (rule set "
                f"{settings.tiers.rule_set!r}, {stamp})"
            ),
        ),
        CHURN_EQUITY_KEY: create_markdown_artifact(
            markdown=churn_equity_markdown(lake_root, as_of, settings.quality.base_currency),
            key=CHURN_EQUITY_KEY,
            description=f"Churn rate and customer equity ({stamp})",
        ),
        PARTITIONS_KEY: create_markdown_artifact(
            markdown=partitions_markdown(tables),
            key=PARTITIONS_KEY,
            description=f"Parquet partitions written ({stamp}); lake root {lake_root}",
        ),
    }
    logger = get_run_logger()
    logger.info("%s", headline(lake_root, as_of, settings.quality.base_currency))
    logger.info("published the run report (artifacts %s)", ", ".join(ids))
    return ids

"""The run's Prefect artifacts: the run summary (customer_equity.summary) as the UI shows it.

Published once at the end of `nightly` (and so once per as-of date of a
backfill), from the flow result and the partitions the run just published:

- `data-quality`: the extract files of the run with their row counts,
- `stage-tier-counts`: customers per lifecycle stage × value tier,
- `churn-and-equity`: churn rate, customer equity and retention economics,
  whole base and per group, and the wealth view (AUM tier × suitability) when
  the run has holdings,
- `published-partitions`: the Parquet partition of every table written.

The keys are fixed, so the Artifacts page of the UI shows each one's history
across runs; each version is also attached to the run that made it. The
sections are the ones the CLI prints, built by the same function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from customer_equity.settings import Settings
from customer_equity.summary import RunSummary, read_published, run_summary, to_markdown, to_records

DATA_QUALITY_KEY = "data-quality"
STAGE_TIER_KEY = "stage-tier-counts"
CHURN_EQUITY_KEY = "churn-and-equity"
PARTITIONS_KEY = "published-partitions"
# What the Prefect API accepts as an artifact key; checked in the tests.
ARTIFACT_KEY = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def summary_of(settings: Settings, result: Mapping[str, Any]) -> RunSummary:
    """The run summary of a nightly flow result, from the partitions it published."""
    as_of = date.fromisoformat(str(result["as_of"]))
    return run_summary(
        read_published(settings.paths.lake, as_of, result["tables"]),
        result["files"],
        as_of=as_of,
        run_id=str(result["run_id"]),
        rule_set=settings.tiers.rule_set,
        currency=settings.quality.base_currency,
    )


def churn_equity_markdown(summary: RunSummary) -> str:
    """Headline measures of the whole base, then equity and retention economics per group,
    then the wealth view when the run has holdings."""
    measures = summary.section("measures")
    parts = [to_markdown(measures, heading="#")]
    keys = ("groups", "retention", "wealth")
    parts += [to_markdown(section) for section in summary.sections if section.key in keys]
    return "\n\n".join(parts)


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
    """Publish the run summary of one nightly run as artifacts; returns artifact id by key."""
    summary = summary_of(settings, result)
    stamp = f"as of {summary.as_of.isoformat()}, run {summary.run_id}"
    extracts, stages = summary.section("extracts"), summary.section("stages")
    ids = {
        DATA_QUALITY_KEY: create_table_artifact(
            table=to_records(extracts),
            key=DATA_QUALITY_KEY,
            description=f"Extracts ({stamp}): {extracts.note}",
        ),
        STAGE_TIER_KEY: create_table_artifact(
            table=to_records(stages),
            key=STAGE_TIER_KEY,
            description=f"{stages.title} ({stamp}) {stages.note}".strip(),
        ),
        CHURN_EQUITY_KEY: create_markdown_artifact(
            markdown=churn_equity_markdown(summary),
            key=CHURN_EQUITY_KEY,
            description=f"Churn rate, customer equity and retention economics ({stamp})",
        ),
        PARTITIONS_KEY: create_markdown_artifact(
            markdown=to_markdown(summary.section("outputs"), heading="#"),
            key=PARTITIONS_KEY,
            description=f"Parquet partitions written ({stamp}); lake root {settings.paths.lake}",
        ),
    }
    logger = get_run_logger()
    logger.info("%s", summary.headline)
    logger.info("published the run summary (artifacts %s)", ", ".join(ids))
    return ids

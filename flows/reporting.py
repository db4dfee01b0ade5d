"""The task that turns the published lake into what people read: the HTML report, the
history page and the BI catalog. It reads only published partitions."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact
from prefect.cache_policies import NO_CACHE

from customer_equity.catalog import build_catalog
from customer_equity.report import write_history, write_report
from customer_equity.settings import Settings

REPORT_KEY = "run-report"


@task(
    name="run-report",
    cache_policy=NO_CACHE,
    # Reads published files and writes derived ones (each replaced in one rename): safe to repeat.
    retries=1,
    retry_delay_seconds=2,
)
def publish_report(settings: Settings, as_of: date) -> dict[str, str]:
    """The BI catalog, the HTML report of D and the history page; a link artifact to the report."""
    logger = get_run_logger()
    catalog = build_catalog(settings.paths.lake)
    logger.info("BI catalog rebuilt: %s", catalog)
    report = write_report(settings, as_of)
    history = write_history(settings)
    logger.info("run report: %s (history of every as-of date: %s)", report, history)
    create_link_artifact(
        key=REPORT_KEY,
        link=report.as_uri(),
        link_text=f"Run report as of {as_of.isoformat()}",
        description=f"HTML report with charts ({report}); history page {history}",
    )
    return {"report": str(report), "history": str(history), "catalog": str(catalog)}

"""The backfill flow: the nightly flow once per as-of date of a range, oldest first.

Each date is a `nightly` subflow run, so a date produces exactly the
partitions a nightly run on that date would have (point-in-time cuts live in
the transforms), shows up as its own run with its own report in the UI, and
takes the warehouse lock for that date only: a scheduled nightly run that
starts meanwhile waits for the current date, runs, and the backfill goes on.
A failed date is reported and the later dates still run; the backfill then
ends Failed, naming the dates to re-run, which the `dates` parameter (CLI:
`--dates`) runs exactly. Re-running a range swaps the same partitions in
again (idempotent). The summary artifact carries each date's business
figures: active customers, customer equity and churn rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from customer_equity import lake
from customer_equity.flows import nightly as nightly_module
from customer_equity.settings import Settings, load_settings
from customer_equity.summary import business_figures

PROGRESS_KEY = "backfill-progress"
SUMMARY_KEY = "backfill-summary"
# A typo in a year (2205 for 2025) must not start 65,000 runs.
MAX_DAYS = 3660


@dataclass(frozen=True)
class DateOutcome:
    """What happened to one as-of date of a backfill."""

    as_of: str
    status: str  # "completed" or "failed"
    flow_run_id: str
    message: str
    customers: str = ""  # the published figures of the date, formatted ("" when failed)
    customer_equity: str = ""
    churn_rate: str = ""


class BackfillError(RuntimeError):
    """Some dates of a backfill failed; the others were published. `outcomes` has each date."""

    def __init__(self, message: str, outcomes: list[DateOutcome] | None = None) -> None:
        # `outcomes` has a default so that pickling (Prefect stores failed states) round-trips.
        super().__init__(message)
        self.outcomes = outcomes or []


def as_of_dates(start: date, end: date) -> list[date]:
    """Every calendar day from `start` to `end`, both included, oldest first."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ValueError(
            f"{start}..{end} spans {days:,} days (more than {MAX_DAYS:,}); "
            "split it into smaller backfills"
        )
    return [start + timedelta(days=offset) for offset in range(days)]


def backfill_dates(
    start: date | None = None, end: date | None = None, dates: Sequence[date] | None = None
) -> list[date]:
    """The as-of dates of a backfill: a range (start, end), or exactly `dates`, oldest first."""
    if dates:
        if start or end:
            raise ValueError("give either start and end, or dates, not both")
        if len(set(dates)) > MAX_DAYS:
            raise ValueError(f"{len(set(dates)):,} dates (more than {MAX_DAYS:,}): split them")
        return sorted(set(dates))
    if start is None or end is None:
        raise ValueError("give start and end (a range of as-of dates), or dates")
    return as_of_dates(start, end)


def date_figures(settings: Settings, as_of: date) -> dict[str, str]:
    """The business figures a backfill reports for one published date."""

    def read(table: str) -> pl.DataFrame | None:
        if not lake.partition_exists(settings.paths.lake, table, as_of):
            return None
        return lake.read_partition(settings.paths.lake, table, as_of)

    figures = business_figures(
        read("customer_equity"), read("churn"), settings.quality.base_currency
    )
    return {
        "customers": figures["customers"],
        "customer_equity": figures["customer equity"],
        "churn_rate": figures["churn rate"],
    }


def retry_hint(failed: Sequence[str]) -> str:
    dates = ",".join(failed)
    return (
        f"re-run exactly these with: customer-equity backfill --dates {dates} "
        f"(or the backfill deployment with dates = [{', '.join(failed)}])"
    )


@flow(name="backfill", log_prints=True)
def backfill(
    start: date | None = None,
    end: date | None = None,
    config: str | None = None,
    lock_wait_seconds: float = 3600.0,
    overrides: dict[str, Any] | None = None,
    dates: list[date] | None = None,
) -> dict[str, object]:
    """Run the nightly flow for every as-of date from `start` to `end` (both included).

    Args:
        start: The first as-of date.
        end: The last as-of date (included).
        config: Settings file (TOML) on the machine that runs the flow.
        lock_wait_seconds: How long each date waits while another run (a scheduled
            nightly run, a CLI run) holds the warehouse before that date fails.
        overrides: Settings for these runs only, as dotted keys, e.g.
            {"model.discount_rate": 0.1}.
        dates: Instead of start and end: exactly these as-of dates (e.g. the
            failed dates of an earlier backfill).
    """
    logger = get_run_logger()
    days = backfill_dates(start, end, dates)
    first, last = days[0].isoformat(), days[-1].isoformat()
    span = f"{first}..{last}" if not dates else f"{len(days):,} date(s) {first}..{last}"
    # Fail on a bad config or override now, not once per date.
    settings = load_settings(config, overrides)
    logger.info("backfill of %d as-of date(s) from %s to %s, oldest first", len(days), first, last)
    progress = create_progress_artifact(
        progress=0.0,
        key=PROGRESS_KEY,
        description=f"Backfill {span}: 0 of {len(days):,} dates",
    )
    outcomes: list[DateOutcome] = []
    for done, as_of in enumerate(days, start=1):
        # Looked up at call time (not bound at import) so the tests can stand in a failing date.
        run = nightly_module.nightly.with_options(flow_run_name=f"nightly-as-of-{as_of}")
        state = run(
            as_of=as_of,
            config=config,
            lock_wait_seconds=lock_wait_seconds,
            overrides=overrides,
            return_state=True,
        )
        child_id = str(state.state_details.flow_run_id or "")
        if state.is_completed():
            figures = date_figures(settings, as_of)
            outcomes.append(DateOutcome(as_of.isoformat(), "completed", child_id, "", **figures))
            logger.info(
                "as of %s: published (%d of %d): %s customers, equity %s, churn rate %s",
                as_of,
                done,
                len(days),
                figures["customers"],
                figures["customer_equity"],
                figures["churn_rate"],
            )
        else:
            message = state.message or state.name
            outcomes.append(DateOutcome(as_of.isoformat(), "failed", child_id, message))
            logger.error(
                "as of %s: FAILED (%d of %d), continuing with the next date: %s",
                as_of,
                done,
                len(days),
                message,
            )
        failed_so_far = sum(o.status == "failed" for o in outcomes)
        update_progress_artifact(
            artifact_id=progress,
            progress=100.0 * done / len(days),
            description=(
                f"Backfill {span}: {done:,} of {len(days):,} dates, {failed_so_far:,} failed"
            ),
        )
    failed = [o for o in outcomes if o.status == "failed"]
    create_table_artifact(
        table=[asdict(o) for o in outcomes],
        key=SUMMARY_KEY,
        description=(
            f"Backfill {span}: {len(outcomes) - len(failed):,} published, {len(failed):,} failed"
            + (f"; {retry_hint([o.as_of for o in failed])}" if failed else "")
        ),
    )
    if failed:
        raise BackfillError(
            f"backfill {span}: {len(failed)} of {len(days)} as-of date(s) failed "
            f"({', '.join(o.as_of for o in failed)}); the other dates were published; "
            f"{retry_hint([o.as_of for o in failed])}. First error: {failed[0].message}",
            outcomes,
        )
    logger.info("backfill %s: all %d date(s) published", span, len(days))
    return {"start": first, "end": last, "dates": [asdict(o) for o in outcomes]}

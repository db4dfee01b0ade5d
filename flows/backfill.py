"""The backfill flow: the nightly flow once per as-of date of a range, oldest first.

Each date is a `nightly` subflow run, so a date produces exactly the
partitions a nightly run on that date would have (point-in-time cuts live in
the transforms), shows up as its own run with its own report in the UI, and
takes the warehouse lock for that date only: a scheduled nightly run that
starts meanwhile waits for the current date, runs, and the backfill goes on.
A failed date is reported and the later dates still run; the backfill then
ends Failed, naming the dates to re-run. Re-running a range swaps the same
partitions in again (idempotent).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from customer_equity.settings import load_settings
from flows import nightly as nightly_module

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


@flow(name="backfill", log_prints=True)
def backfill(
    start: date,
    end: date,
    config: str | None = None,
    lock_wait_seconds: float = 3600.0,
    overrides: dict[str, Any] | None = None,
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
    """
    logger = get_run_logger()
    dates = as_of_dates(start, end)
    # Fail on a bad config or override now, not once per date.
    load_settings(config, overrides)
    logger.info(
        "backfill of %d as-of date(s) from %s to %s, oldest first",
        len(dates),
        start.isoformat(),
        end.isoformat(),
    )
    progress = create_progress_artifact(
        progress=0.0,
        key=PROGRESS_KEY,
        description=f"Backfill {start.isoformat()}..{end.isoformat()}: 0 of {len(dates)} dates",
    )
    outcomes: list[DateOutcome] = []
    for done, as_of in enumerate(dates, start=1):
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
            outcomes.append(DateOutcome(as_of.isoformat(), "completed", child_id, ""))
            logger.info("as of %s: published (%d of %d)", as_of, done, len(dates))
        else:
            message = state.message or state.name
            outcomes.append(DateOutcome(as_of.isoformat(), "failed", child_id, message))
            logger.error(
                "as of %s: FAILED (%d of %d), continuing with the next date: %s",
                as_of,
                done,
                len(dates),
                message,
            )
        failed_so_far = sum(o.status == "failed" for o in outcomes)
        update_progress_artifact(
            artifact_id=progress,
            progress=100.0 * done / len(dates),
            description=(
                f"Backfill {start.isoformat()}..{end.isoformat()}: {done} of {len(dates)} "
                f"dates, {failed_so_far} failed"
            ),
        )
    failed = [o for o in outcomes if o.status == "failed"]
    create_table_artifact(
        table=[asdict(o) for o in outcomes],
        key=SUMMARY_KEY,
        description=(
            f"Backfill {start.isoformat()}..{end.isoformat()}: "
            f"{len(outcomes) - len(failed)} published, {len(failed)} failed"
        ),
    )
    if failed:
        raise BackfillError(
            f"backfill {start}..{end}: {len(failed)} of {len(dates)} as-of date(s) failed "
            f"({', '.join(o.as_of for o in failed)}); the other dates were published. "
            f"First error: {failed[0].message}",
            outcomes,
        )
    logger.info("backfill %s..%s: all %d date(s) published", start, end, len(dates))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "dates": [asdict(o) for o in outcomes],
    }

"""The `nightly` and `backfill` deployments, declared once in code.

`serve` (one machine, the default): one long-running process registers both
deployments with the Prefect server, polls for their runs and executes them
as local subprocesses. No work pool, no worker, no code storage: the fewest
moving parts, and the schedule comes from the same settings file as
everything else (`[schedule]`).

`deploy` (teams): the same two deployments, registered against a work pool;
any `prefect worker start --pool <pool>` with this package installed runs them.

Both deployments run one at a time (deployment concurrency limit 1, ENQUEUE:
a second run waits in the queue, visible in the UI), and every run also
takes the warehouse file lock, which a hand-started CLI run takes too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import deploy as prefect_deploy
from prefect import serve as prefect_serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from customer_equity.flows.backfill import backfill
from customer_equity.flows.nightly import nightly
from customer_equity.settings import Settings

NIGHTLY = "nightly/nightly"
BACKFILL = "backfill/backfill"
TAGS = ["customer-equity"]


def one_run_at_a_time() -> ConcurrencyLimitConfig:
    """A second run of the same deployment waits (queued) instead of failing or overlapping."""
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def build_deployments(
    settings: Settings,
    config: Path | None,
    *,
    entrypoint_type: EntrypointType = EntrypointType.FILE_PATH,
    job_variables: dict[str, Any] | None = None,
) -> list[RunnerDeployment]:
    """The two deployments; `config` becomes their default parameter (absolute path)."""
    # Runs may execute in another working directory (a worker): pass the file absolutely.
    defaults: dict[str, Any] = {
        "config": str(Path(config).resolve()) if config else None,
        "lock_wait_seconds": settings.schedule.lock_wait_seconds,
    }
    schedule = settings.schedule
    return [
        nightly.to_deployment(
            name="nightly",
            description=(
                f"Nightly valuation at `{schedule.cron}` ({schedule.timezone}); as of the "
                "previous calendar day unless `as_of` is given."
            ),
            schedules=[Cron(schedule.cron, timezone=schedule.timezone)],
            parameters=defaults,
            concurrency_limit=one_run_at_a_time(),
            tags=TAGS,
            entrypoint_type=entrypoint_type,
            job_variables=job_variables,
        ),
        backfill.to_deployment(
            name="backfill",
            description=(
                "Backfill: the nightly flow for every as-of date from `start` to `end`, "
                "oldest first, or for exactly the `dates` given (the failed dates of an "
                "earlier backfill). Start it with Run → Custom run."
            ),
            parameters=defaults,
            concurrency_limit=one_run_at_a_time(),
            tags=TAGS,
            entrypoint_type=entrypoint_type,
            job_variables=job_variables,
        ),
    ]


def serve(settings: Settings, config: Path | None) -> None:
    """Register both deployments and run their flow runs from this process until stopped."""
    # pause_on_shutdown: while nobody serves, the schedule is paused, so no runs
    # pile up as Late; a missed night is caught up with a backfill.
    prefect_serve(*build_deployments(settings, config), pause_on_shutdown=True)


def deploy(settings: Settings, config: Path | None, work_pool: str) -> list[UUID]:
    """Register both deployments against `work_pool` (e.g. a `process` pool) for workers."""
    # A module entrypoint needs no code storage: workers import the installed package.
    # The working directory keeps relative defaults (no --config) meaning what they mean here.
    return prefect_deploy(
        *build_deployments(
            settings,
            config,
            entrypoint_type=EntrypointType.MODULE_PATH,
            job_variables={"working_dir": str(Path.cwd())},
        ),
        work_pool_name=work_pool,
        print_next_steps_message=False,
        ignore_warnings=True,
    )

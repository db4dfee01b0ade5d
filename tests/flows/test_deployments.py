"""The deployments: schedule and as-of date, and the whole path through a real Prefect server.

The server test is what a user does by the runbook: `prefect server start`,
`customer-equity serve`, then a backfill started through the API the UI uses
(`run_deployment`), while a scheduled nightly run arrives at the same time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, FlowRun
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from customer_equity.flows.artifacts import (
    CHURN_EQUITY_KEY,
    DATA_QUALITY_KEY,
    PARTITIONS_KEY,
    STAGE_TIER_KEY,
)
from customer_equity.flows.backfill import PROGRESS_KEY, SUMMARY_KEY
from customer_equity.flows.deployments import BACKFILL, NIGHTLY, build_deployments, deploy
from customer_equity.flows.nightly import as_of_for
from customer_equity.flows.reporting import REPORT_KEY
from customer_equity.lake import read_partition
from customer_equity.settings import ConfigError, load_settings
from tests.conftest import PUBLISHED_WITH_HOLDINGS as TABLES
from tests.conftest import generated_project, write_config

BIN = Path(sys.executable).parent
CONFIG = "customer-equity.toml"  # what write_config writes
REPORT_KEYS = {DATA_QUALITY_KEY, STAGE_TIER_KEY, CHURN_EQUITY_KEY, PARTITIONS_KEY, REPORT_KEY}


# --- the as-of date of a scheduled run --------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduled_utc", "zone", "expected"),
    [
        # 02:00 in Tokyo is 17:00 UTC the day before: the UTC date would be a day early.
        (datetime(2025, 12, 31, 17, 0, tzinfo=UTC), "Asia/Tokyo", date(2025, 12, 31)),
        (datetime(2026, 1, 1, 2, 0, tzinfo=UTC), "UTC", date(2025, 12, 31)),
        # 02:00 in New York is 07:00 UTC the same day.
        (datetime(2026, 3, 1, 7, 0, tzinfo=UTC), "America/New_York", date(2026, 2, 28)),
        # A naive time from the API is UTC, never the machine's local time.
        (datetime(2026, 1, 1, 1, 0), "Europe/Berlin", date(2025, 12, 31)),
    ],
)
def test_the_as_of_date_is_the_day_before_the_scheduled_start_in_the_configured_zone(
    scheduled_utc: datetime, zone: str, expected: date
) -> None:
    assert as_of_for(scheduled_utc, zone) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[schedule]\ntimezone = "Mars/Olympus"\n', "schedule.timezone"),
        ('[schedule]\ncron = "0 0 2 * * *"\n', "schedule.cron"),
        ("[schedule]\nlock_wait_seconds = -1\n", "schedule.lock_wait_seconds"),
    ],
)
def test_a_wrong_schedule_setting_is_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(write_config(tmp_path, text))


def test_overrides_change_only_the_named_keys_and_unknown_ones_are_named(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[model]\ndiscount_rate = 0.12\ntime_unit = 'days'\n")
    settings = load_settings(str(config), {"model.discount_rate": 0.1, "paths.lake": "other"})
    assert settings.model.discount_rate == 0.1
    assert settings.model.time_unit == "days"  # the rest of the section stays as in the file
    assert settings.paths.lake == tmp_path / "other"  # relative to the config file
    with pytest.raises(ConfigError, match=r"model\.discount_ratio"):
        load_settings(str(config), {"model.discount_ratio": 0.1})
    with pytest.raises(ConfigError, match="demo_as_of"):  # a value, not a section
        load_settings(str(config), {"demo_as_of.year": 2020})
    with pytest.raises(ConfigError, match="not a settings section"):
        load_settings(str(config), {"model.time_unit.days": 1})


def test_the_deployments_carry_schedule_concurrency_and_defaults(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[schedule]\ncron = "30 3 * * *"\ntimezone = "Europe/Berlin"\nlock_wait_seconds = 600\n',
    )
    nightly_deployment, backfill_deployment = build_deployments(load_settings(config), config)
    assert f"{nightly_deployment.flow_name}/{nightly_deployment.name}" == NIGHTLY
    assert f"{backfill_deployment.flow_name}/{backfill_deployment.name}" == BACKFILL
    (schedule,) = nightly_deployment.schedules
    assert isinstance(schedule.schedule, CronSchedule)
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 3 * * *", "Europe/Berlin")
    assert backfill_deployment.schedules == []  # a backfill runs when someone starts it
    for deployment in (nightly_deployment, backfill_deployment):
        assert deployment.parameters == {"config": str(config), "lock_wait_seconds": 600.0}
        assert deployment.concurrency_limit == 1
        assert deployment.concurrency_options is not None
        assert deployment.concurrency_options.collision_strategy == (
            ConcurrencyLimitStrategy.ENQUEUE
        )


# --- a real server --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Deadlines for things to happen, not timings under test: a server took 11–13 s to
# become healthy on a quiet 2-core machine and 90 s on a heavily loaded one.
STARTUP_SECONDS = 300
RUN_SECONDS = 600


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:  # refused while starting, or a timeout: not up yet
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and everything it started."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:  # the child keeps its own descriptor
        return subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on a free loopback port with its own PREFECT_HOME.

    Yields the environment for processes that use it; the server (and anything it
    started) is stopped in teardown whatever the test did.
    """
    home = tmp_path_factory.mktemp("prefect-server")
    log = home / "server.log"
    for _attempt in range(3):  # another process may take the free port before the server
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # Pick up a new run within a second instead of ten (the served runner's poll).
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        }
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
        process = _start([*command, "--port", str(port)], env, log)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not _healthy(url) and process.poll() is None:
                assert time.monotonic() < deadline, f"server not healthy in time:\n{_tail(log)}"
                time.sleep(0.25)
            if process.poll() is None:
                yield env
                return
        finally:
            _stop(process)
    pytest.fail(f"prefect server did not start on three free ports:\n{_tail(log)}")


@pytest.fixture(scope="module")
def served_project(
    server: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Generated extracts and `customer-equity serve --config …` registered with the server."""
    root = tmp_path_factory.mktemp("served")
    generated_project(
        root,
        customers=300,
        seed=3,
        config='[schedule]\ntimezone = "Asia/Tokyo"\nlock_wait_seconds = 120\n',
    )
    log = root / "serve.log"
    command = [str(BIN / "customer-equity"), "serve", "--config", str(root / CONFIG)]
    process = _start(command, server, log)
    try:
        with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
            deadline = time.monotonic() + STARTUP_SECONDS
            with get_client(sync_client=True) as client:
                while True:
                    names = {f"{d.name}" for d in client.read_deployments()}
                    if {"nightly", "backfill"} <= names:
                        break
                    assert process.poll() is None, f"serve exited:\n{_tail(log)}"
                    assert time.monotonic() < deadline, f"no deployments in time:\n{_tail(log)}"
                    time.sleep(0.25)
        yield root
    finally:
        _stop(process)
        # On failure the runner's log says why a run did not start or failed.
        print(f"--- serve log ---\n{_tail(log)}")


def _wait_final(client: SyncPrefectClient, run_id: UUID, timeout: float) -> FlowRun:
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        assert time.monotonic() < deadline, f"flow run {run.name} still {run.state_name}"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_backfill_started_through_the_api_publishes_every_date_with_its_report(
    server: dict[str, str], served_project: Path
) -> None:
    lake = served_project / "lake"
    backfill_dates = [date(2025, 12, 24) + timedelta(days=d) for d in range(7)]
    with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            nightly_deployment = client.read_deployment_by_name(NIGHTLY)
            (schedule,) = nightly_deployment.schedules
            assert isinstance(schedule.schedule, CronSchedule)
            assert schedule.schedule.cron == "0 2 * * *"
            assert schedule.schedule.timezone == "Asia/Tokyo"
            assert schedule.active

        started = time.monotonic()
        # What Run → Custom run does: a run of the deployment with the form's parameters.
        backfill_run = run_deployment(
            BACKFILL,
            parameters={"start": "2025-12-24", "end": "2025-12-30"},
            timeout=0,
            as_subflow=False,
        )
        # Meanwhile the schedule's run for 1 January, 02:00 in Tokyo (17:00 UTC the day
        # before) arrives: it must value 31 December and share the warehouse safely.
        scheduled_run = run_deployment(
            NIGHTLY,
            scheduled_time=datetime(2025, 12, 31, 17, 0, tzinfo=UTC),
            timeout=0,
            as_subflow=False,
        )
        with get_client(sync_client=True) as client:
            backfill_run = _wait_final(client, backfill_run.id, timeout=RUN_SECONDS)
            scheduled_run = _wait_final(client, scheduled_run.id, timeout=RUN_SECONDS)
            elapsed = time.monotonic() - started
            assert backfill_run.state is not None and backfill_run.state.is_completed(), (
                backfill_run.state
            )
            assert scheduled_run.state is not None and scheduled_run.state.is_completed(), (
                scheduled_run.state
            )
            children = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[backfill_run.id])
                )
            )
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(
                        any_=[backfill_run.id, scheduled_run.id, *(c.id for c in children)]
                    )
                )
            )
    print(f"backfill of 7 dates and one scheduled run: {elapsed:.1f} s")

    # One partition per date per table: seven from the backfill, 31 December from the schedule.
    expected = [f"as_of_date={d.isoformat()}" for d in [*backfill_dates, date(2025, 12, 31)]]
    for table in TABLES:
        partitions = sorted(p.name for p in (lake / table).iterdir())
        assert partitions == expected, table
        for partition in (lake / table).iterdir():
            assert len(list(partition.glob("*.parquet"))) == 1, partition
    scheduled_quality = read_partition(lake, "data_quality", date(2025, 12, 31))
    assert set(scheduled_quality["run_id"]) == {str(scheduled_run.id)}

    # Each date is its own nightly run in the UI, with its report; the backfill has its own.
    assert sorted(c.name for c in children) == [f"nightly-as-of-{d}" for d in backfill_dates]
    keys_by_run: dict[UUID, set[str]] = {}
    for artifact in artifacts:
        assert artifact.flow_run_id is not None and artifact.key is not None
        keys_by_run.setdefault(artifact.flow_run_id, set()).add(artifact.key)
    for run in [*children, scheduled_run]:
        assert keys_by_run.get(run.id) == REPORT_KEYS, run.name
    assert keys_by_run[backfill_run.id] == {PROGRESS_KEY, SUMMARY_KEY}
    progress = next(a for a in artifacts if a.key == PROGRESS_KEY)
    assert float(progress.data) == 100.0  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_same_deployments_register_on_a_work_pool_for_teams(
    server: dict[str, str], served_project: Path
) -> None:

    config = served_project / CONFIG
    with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name="customer-equity", type="process"))
        deploy(load_settings(config), config, "customer-equity")
        with get_client(sync_client=True) as client:
            for name, entrypoint in (
                (NIGHTLY, "customer_equity.flows.nightly.nightly"),
                (BACKFILL, "customer_equity.flows.backfill.backfill"),
            ):
                deployment = client.read_deployment_by_name(name)
                assert deployment.work_pool_name == "customer-equity"
                assert deployment.entrypoint == entrypoint  # a worker imports the package
                assert deployment.parameters["config"] == str(config)
                assert deployment.global_concurrency_limit is not None
                assert deployment.global_concurrency_limit.limit == 1

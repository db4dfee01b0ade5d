"""Session fixtures of the reliability suite: one Prefect API, one input set, one clean run."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.settings import get_current_settings

from customer_equity.generate import generate_extracts
from tests.checkpoints import trace_env, traced_points
from tests.reliability.support import (
    AS_OF,
    TX_HEADER,
    Baseline,
    copy_inbox,
    csv_text,
    lake_tables,
    new_project,
    put,
    run_to_end,
    subprocess_env,
    warehouse_tables,
)


@pytest.fixture(scope="session")
def cli_env(prefect_harness: None) -> dict[str, str]:
    """Environment for `customer-equity` subprocesses: the harness's API, no own server.

    A process without PREFECT_API_URL starts a temporary server (~20 s) and,
    when SIGKILLed, would orphan it.
    """
    api_url = get_current_settings().api.url
    assert api_url, "the Prefect test harness did not set an API URL"
    return subprocess_env(api_url)


@pytest.fixture(scope="session")
def crash_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A realistic inbox: generated extracts of all kinds plus a bad file and bad rows."""
    root = new_project(tmp_path_factory.mktemp("crash-inputs"))
    generate_extracts(root / "inbox", customers=150, seed=11, end_date=AS_OF, daily_files=3)
    put(root, "transactions", "transactions_zz_truncated.csv", TX_HEADER + "\nT-X,C0000001,2025-1")
    put(
        root,
        "transactions",
        "transactions_zz_bad_rows.csv",
        csv_text(
            TX_HEADER,
            "T-B1,C0000001,2025-12-30,12.5,7,software,USD",
            "T-B2,,2025-12-30,12.5,7,software,USD",
            "T-B3,C0000002,not-a-date,12.5,7,software,USD",
            "T-B4,C0000003,2025-12-30,12.5,7,software,EUR",
        ),
    )
    return root


@pytest.fixture(scope="session")
def baseline(
    crash_inputs: Path, cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Baseline:
    """One uninterrupted run of `crash_inputs`: what every crashed-and-resumed run must equal."""
    root = copy_inbox(crash_inputs, tmp_path_factory.mktemp("baseline"))
    trace = root / "checkpoints.txt"
    run_to_end(root, cli_env, faults=trace_env(trace))
    return Baseline(
        root=root,
        lake=lake_tables(root),
        warehouse=warehouse_tables(root),
        checkpoints=tuple(traced_points(trace)),
    )

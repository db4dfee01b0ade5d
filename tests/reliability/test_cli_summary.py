"""Issue 10 items 9 and 11: what `customer-equity run` reports, with real files and processes.

- a completed run with no active customer exits 0 (the summary used to format a null);
- text from the extracts is escaped in Prefect markdown artifacts (a `|` used to split a
  table row, a link used to render);
- a bare run gives Prefect's temporary server a generous start-up time unless the user
  set one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from markdown_it import MarkdownIt
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from customer_equity.flows.artifacts import CHURN_EQUITY_KEY
from tests.reliability.support import (
    cli_command,
    csv_text,
    new_project,
    put,
    subprocess_env,
)

CUSTOMERS_HEADER = "customer_id,created_date,segment"
TX_HEADER = "transaction_id,customer_id,transaction_date,amount,cost"
RUN_ID = re.compile(r"run ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
HOSTILE_SEGMENT = "a|b [click](https://evil.example) <b>bold</b> www.evil.example"


def _run(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(root), env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_completed_run_without_any_active_customer_exits_0(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Every purchase is years old: everybody has churned, and that is a result, not an error."""
    root = new_project(tmp_path)
    put(root, "customers", "customers.csv", csv_text(CUSTOMERS_HEADER, "C1,2021-01-01,retail"))
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(TX_HEADER, "T1,C1,2022-03-01,100,60", "T2,C1,2022-04-01,50,30"),
    )
    done = _run(root, cli_env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "no active customer" in output
    assert "Traceback" not in output


def _artifact_markdown(run_id: str, key: str) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    (artifact,) = (a for a in found if a.key == key)
    return str(artifact.data)


def test_extract_text_is_escaped_in_markdown_artifacts(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    root = new_project(tmp_path)
    customers = [f"C{n},2025-01-01,{HOSTILE_SEGMENT}" for n in range(3)]
    # A CSV cell with a comma, a bar and brackets, quoted as a source system would.
    customers = [c.replace(HOSTILE_SEGMENT, f'"{HOSTILE_SEGMENT}"') for c in customers]
    put(root, "customers", "customers.csv", csv_text(CUSTOMERS_HEADER, *customers))
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(TX_HEADER, *(f"T{n},C{n},2025-12-0{n + 1},100,60" for n in range(3))),
    )
    done = _run(root, cli_env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    (run_id,) = set(RUN_ID.findall(done.stdout))
    markdown = _artifact_markdown(run_id, CHURN_EQUITY_KEY)

    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<a " not in html and "<b>" not in html
    assert "https://evil" not in markdown and "www.evil" not in markdown  # no bare autolink
    rows = [r for r in html.split("<tr>") if "evil" in r]
    assert len(rows) == 2  # equity per group and retention economics: one segment row each
    for table in html.split("<table>")[1:]:
        header, *body = table.split("<tr>")[1:]
        for row in body:  # the | did not split any row
            assert row.count("<td") == header.count("<th"), row
    assert all("a|b [click](https://evil.example) &lt;b&gt;bold&lt;/b&gt;" in r for r in rows)


def _startup_timeout(env: dict[str, str]) -> float:
    """The temporary server's start-up timeout as Prefect sees it inside the CLI's process."""
    # What `run`, `demo`, `backfill` and `serve` do before they start a flow.
    script = (
        "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as T\n"
        "from customer_equity.cli import prefect_session\n"
        "with prefect_session():\n"
        "    print('timeout', T.value())\n"  # what the temporary server's start-up waits for
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.rsplit("timeout", 1)[1])


def test_a_bare_run_waits_generously_for_the_temporary_server(tmp_path: Path) -> None:
    env = subprocess_env("")
    env.pop("PREFECT_API_URL")
    env.pop("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", None)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    assert _startup_timeout(env) >= 120  # Prefect's own default is 20 s

    # A value the user chose wins, whether from the environment or from a Prefect profile.
    assert _startup_timeout({**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "33"}) == 33
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        'active = "mine"\n[profiles.mine]\nPREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS = 44\n',
        encoding="utf-8",
    )
    assert _startup_timeout({**env, "PREFECT_PROFILES_PATH": str(profiles)}) == 44

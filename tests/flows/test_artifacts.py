"""The run report: what each nightly run shows in the UI, built from its own outputs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

import customer_equity.flows.nightly as nightly_module
from customer_equity import summary as run_summary
from customer_equity.flows import artifacts
from customer_equity.flows.artifacts import (
    ARTIFACT_KEY,
    CHURN_EQUITY_KEY,
    DATA_QUALITY_KEY,
    PARTITIONS_KEY,
    STAGE_TIER_KEY,
    churn_equity_markdown,
    summary_of,
)
from customer_equity.flows.backfill import PROGRESS_KEY, SUMMARY_KEY
from customer_equity.flows.nightly import nightly
from customer_equity.flows.reporting import REPORT_KEY
from customer_equity.lake import read_partition
from customer_equity.summary import (
    COUNT_COLUMNS,
    STAGE_ORDER,
    data_quality_sentence,
    extracts_section,
    to_markdown,
    to_records,
)
from tests.conftest import generated_project, settings_of

AS_OF = date(2025, 12, 31)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    root = tmp_path_factory.mktemp("report")
    generated_project(root, customers=150, seed=13)
    return root


@pytest.fixture(scope="module")
def run(project: Path) -> dict[str, object]:
    return nightly(as_of=AS_OF, config=str(project / "customer-equity.toml"))


def _file(status: str, **counts: int) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(COUNT_COLUMNS, 0)
    row |= {"extract_kind": "transactions", "file_name": f"{status}.csv", "file_sha256": "x"}
    return row | {"status": status, "error": "bad header" if status == "failed" else None} | counts


def test_every_key_is_one_the_api_accepts() -> None:
    keys = [DATA_QUALITY_KEY, STAGE_TIER_KEY, CHURN_EQUITY_KEY, PARTITIONS_KEY, REPORT_KEY]
    for key in [*keys, PROGRESS_KEY, SUMMARY_KEY]:
        assert ARTIFACT_KEY.fullmatch(key), key
    assert len(set(keys)) == len(keys)


def test_the_quality_table_lists_new_and_rejected_files_and_sums_up_the_rest() -> None:
    files = [
        _file("loaded", rows_read=12_345, rows_loaded=12_343, rows_duplicate=1, rows_quarantined=1),
        _file("failed"),
        _file("skipped"),
        _file("skipped"),
    ]
    rows = to_records(extracts_section(files))
    assert [(r["file"], r["status"]) for r in rows] == [
        ("loaded.csv", "loaded"),
        ("failed.csv", "failed"),
        ("2 file(s) already loaded by earlier runs", "skipped"),
    ]
    assert rows[0]["read"] == "12,345" and rows[0]["quarantined"] == "1"  # thousands separators
    assert rows[1]["error"] == "bad header"
    assert "1 new file(s) with 12,345 rows" in data_quality_sentence(files)
    # A run that finds nothing at all still says so.
    assert to_records(extracts_section([]))[0]["file"] == "0 file(s) already loaded by earlier runs"


def test_stage_by_tier_counts_add_up_to_the_customers_of_the_main_rule_set(
    project: Path, run: dict[str, object]
) -> None:
    settings = settings_of(project)
    rows = to_records(summary_of(settings, run).section("stages"))
    tiers = read_partition(settings.paths.lake, "customer_tiers", AS_OF).filter(
        pl.col("rule_set") == settings.tiers.rule_set
    )

    def number(text: str) -> int:
        return int(text.replace(",", ""))

    total = rows[-1]
    assert total["lifecycle stage"] == "all stages"
    assert number(total["all tiers"]) == tiers.height
    assert [r["lifecycle stage"] for r in rows[:6]] == list(STAGE_ORDER)
    for row in rows:
        assert number(row["all tiers"]) == sum(
            number(row[t]) for t in ("core", "important", "general")
        )
    decline = tiers.filter(pl.col("lifecycle_stage") == "decline")
    assert number(rows[4]["all tiers"]) == decline.height


def test_churn_and_equity_show_the_published_base_numbers_and_retention(
    project: Path, run: dict[str, object]
) -> None:
    settings = settings_of(project)
    lake = settings.paths.lake
    text = churn_equity_markdown(summary_of(settings, run))
    base = read_partition(lake, "customer_equity", AS_OF).filter(pl.col("group_by") == "base")
    churn = read_partition(lake, "churn", AS_OF).filter(pl.col("group_by") == "base")
    retention = read_partition(lake, "retention_economics", AS_OF).filter(
        pl.col("group_by") == "base"
    )
    assert f"{base['customer_equity'][0]:,.2f} USD" in text
    assert f"{churn['churn_rate'][0]:.1%}" in text
    assert f"{retention['equity_per_churn_point'][0]:,.2f} USD" in text
    assert f"{retention['replacement_cost_per_year'][0]:,.0f}" in text
    assert "| segment |" in text and "| value\\_tier |" in text
    assert "## Retention economics" in text


def test_the_partition_list_links_every_table_written(
    project: Path, run: dict[str, object]
) -> None:
    tables: dict[str, str] = run["tables"]  # type: ignore[assignment]
    text = to_markdown(summary_of(settings_of(project), run).section("outputs"))
    assert "`" not in text  # a literal backtick used to show around every path
    for table, folder in tables.items():
        assert f"| {table.replace('_', chr(92) + '_')} |" in text
        assert Path(folder).as_uri() in text


def test_the_terminal_and_the_artifacts_show_the_same_rows(
    project: Path, run: dict[str, object]
) -> None:
    """Issue 15: one summary, two renderings, same columns and row order."""
    from io import StringIO

    from rich.console import Console

    summary = summary_of(settings_of(project), run)
    out = StringIO()
    run_summary.print_summary(summary, Console(file=out, width=400))
    lines = out.getvalue().splitlines()
    for section in summary.sections:
        found = []
        for record in to_records(section):
            # The first line after the previous row that shows every cell, left to right.
            start = found[-1] + 1 if found else 0
            hit = next(n for n in range(start, len(lines)) if _in_order(lines[n], record.values()))
            found.append(hit)
        assert found == sorted(found), section.key
        markdown = to_markdown(section)
        assert markdown.count("\n| ") == len(section.rows) + 1  # header and every row


def _in_order(line: str, cells: object) -> bool:
    position = 0
    for cell in cells:  # type: ignore[attr-defined]
        position = line.find(str(cell), position)
        if position < 0:
            return False
        position += len(str(cell))
    return True


def test_a_run_publishes_its_report_readable_through_the_api(run: dict[str, object]) -> None:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run["run_id"]])
            )
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) == {
        DATA_QUALITY_KEY, STAGE_TIER_KEY, CHURN_EQUITY_KEY, PARTITIONS_KEY, REPORT_KEY
    }  # fmt: skip
    quality = json.loads(str(by_key[DATA_QUALITY_KEY].data))
    files: list[dict[str, object]] = run["files"]  # type: ignore[assignment]
    read = sum(int(str(r["read"]).replace(",", "")) for r in quality)
    assert read == sum(f["rows_read"] for f in files)  # type: ignore[misc]
    stage_tiers = json.loads(str(by_key[STAGE_TIER_KEY].data))
    assert stage_tiers[-1]["lifecycle stage"] == "all stages"
    assert f"as of {AS_OF.isoformat()}" in str(by_key[CHURN_EQUITY_KEY].data)
    assert "customer_metrics" in str(by_key[PARTITIONS_KEY].data)
    assert AS_OF.isoformat() in (by_key[DATA_QUALITY_KEY].description or "")


def test_a_report_that_cannot_be_built_leaves_the_published_run_completed(
    project: Path,
    run: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise OSError("disk hiccup while reading the tiers")

    monkeypatch.setattr(artifacts, "run_summary", broken)
    # No retries here: the point is what the flow does once the report has failed.
    monkeypatch.setattr(
        nightly_module,
        "publish_run_artifacts",
        artifacts.publish_run_artifacts.with_options(retries=0),
    )
    state = nightly(as_of=AS_OF, config=str(project / "customer-equity.toml"), return_state=True)
    assert state.is_completed()
    assert "tables published, but the run report was not" in caplog.text
    assert "disk hiccup" in caplog.text
    result = state.result()
    # The partition is this run's (earlier runs' loads of D stay listed, issue 10.7).
    assert read_partition(settings_of(project).paths.lake, "data_quality", AS_OF)[
        "latest_run_id"
    ].unique().to_list() == [result["run_id"]]

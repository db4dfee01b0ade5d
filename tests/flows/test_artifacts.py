"""The run report: what each nightly run shows in the UI, built from its own outputs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

import flows.nightly as nightly_module
from customer_equity.lake import read_partition
from flows import artifacts
from flows.artifacts import (
    ARTIFACT_KEY,
    CHURN_EQUITY_KEY,
    DATA_QUALITY_KEY,
    PARTITIONS_KEY,
    STAGE_TIER_KEY,
    churn_equity_markdown,
    data_quality_rows,
    partitions_markdown,
    stage_tier_rows,
)
from flows.backfill import PROGRESS_KEY, SUMMARY_KEY
from flows.nightly import nightly
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
    row: dict[str, object] = dict.fromkeys(artifacts.COUNT_COLUMNS, 0)
    row |= {"extract_kind": "transactions", "file_name": f"{status}.csv", "file_sha256": "x"}
    return row | {"status": status, "error": "bad header" if status == "failed" else None} | counts


def test_every_key_is_one_the_api_accepts() -> None:
    keys = [DATA_QUALITY_KEY, STAGE_TIER_KEY, CHURN_EQUITY_KEY, PARTITIONS_KEY]
    for key in [*keys, PROGRESS_KEY, SUMMARY_KEY]:
        assert ARTIFACT_KEY.fullmatch(key), key
    assert len(set(keys)) == len(keys)


def test_the_quality_table_lists_new_and_rejected_files_and_sums_up_the_rest() -> None:
    files = [
        _file("loaded", rows_read=10, rows_loaded=8, rows_duplicate=1, rows_quarantined=1),
        _file("failed"),
        _file("skipped"),
        _file("skipped"),
    ]
    rows = data_quality_rows(files)
    assert [(r["file"], r["status"]) for r in rows] == [
        ("loaded.csv", "loaded"),
        ("failed.csv", "failed"),
        ("2 file(s) already loaded by earlier runs", "skipped"),
    ]
    assert rows[0]["rows_quarantined"] == 1 and rows[1]["error"] == "bad header"
    assert "1 new file(s) with 10 rows" in artifacts.data_quality_summary(files)
    # A run that finds nothing at all still says so.
    assert data_quality_rows([])[0]["file"] == "0 file(s) already loaded by earlier runs"


def test_stage_by_tier_counts_add_up_to_the_customers_of_the_main_rule_set(
    project: Path, run: dict[str, object]
) -> None:
    settings = settings_of(project)
    rows = stage_tier_rows(settings.paths.lake, AS_OF, settings.tiers.rule_set)
    tiers = read_partition(settings.paths.lake, "customer_tiers", AS_OF).filter(
        pl.col("rule_set") == settings.tiers.rule_set
    )
    total = rows[-1]
    assert total["lifecycle stage"] == "all stages"
    assert total["all tiers"] == tiers.height
    assert [r["lifecycle stage"] for r in rows[:6]] == list(artifacts.STAGE_ORDER)
    for row in rows:
        assert row["all tiers"] == row["core"] + row["important"] + row["general"]  # type: ignore[operator]
    decline = tiers.filter(pl.col("lifecycle_stage") == "decline")
    assert rows[4]["all tiers"] == decline.height


def test_churn_and_equity_show_the_published_base_numbers(
    project: Path, run: dict[str, object]
) -> None:
    lake = settings_of(project).paths.lake
    text = churn_equity_markdown(lake, AS_OF, "USD")
    base = read_partition(lake, "customer_equity", AS_OF).filter(pl.col("group_by") == "base")
    churn = read_partition(lake, "churn", AS_OF).filter(pl.col("group_by") == "base")
    assert f"{base['customer_equity'][0]:,.2f} USD" in text
    assert f"{churn['churn_rate'][0]:.1%}" in text
    assert "| segment |" in text and "| value_tier |" in text


def test_the_partition_list_links_every_table_written(run: dict[str, object]) -> None:
    tables: dict[str, str] = run["tables"]  # type: ignore[assignment]
    text = partitions_markdown(tables)
    for table, folder in tables.items():
        assert f"| {table} |" in text
        assert Path(folder).as_uri() in text


def test_a_run_publishes_its_report_readable_through_the_api(run: dict[str, object]) -> None:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run["run_id"]])
            )
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) == {DATA_QUALITY_KEY, STAGE_TIER_KEY, CHURN_EQUITY_KEY, PARTITIONS_KEY}
    quality = json.loads(str(by_key[DATA_QUALITY_KEY].data))
    files: list[dict[str, object]] = run["files"]  # type: ignore[assignment]
    assert sum(r["rows_read"] for r in quality) == sum(f["rows_read"] for f in files)  # type: ignore[misc]
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
    def broken(*args: object) -> list[dict[str, object]]:
        raise OSError("disk hiccup while reading the tiers")

    monkeypatch.setattr(artifacts, "stage_tier_rows", broken)
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
    assert read_partition(settings_of(project).paths.lake, "data_quality", AS_OF)[
        "run_id"
    ].unique().to_list() == [result["run_id"]]

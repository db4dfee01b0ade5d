"""Issue 9.5: CDNOW as of 1997-09-30 — nobody was active a year earlier, so no churn rate.

Every customer's lifetime is the cap `max_lifetime_years` (20 years). The tables
must name that source (`cap`, not "base"), and the run summary and the run
report must say that the equity rests on the cap instead of printing an
equity next to "churn rate n/a".
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from customer_equity import cli
from customer_equity.flows.artifacts import churn_equity_markdown, summary_of
from customer_equity.flows.nightly import nightly
from customer_equity.lake import read_partition
from tests.conftest import DATA, settings_of, write_config, write_extract

CUT_OFF = date(1997, 9, 30)


@pytest.fixture(scope="module")
def cdnow_run(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("cdnow-cap")
    write_config(root)
    rows = [
        {"transaction_id": f"{n}", "customer_id": c, "transaction_date": day, "amount": value}
        for n, (_, c, day, _, value) in enumerate(
            line.split() for line in (DATA / "CDNOW_sample.txt").read_text().splitlines()
        )
    ]
    write_extract(root, "transactions", "cdnow.csv", rows)
    return root, nightly(as_of=CUT_OFF, config=str(root / "customer-equity.toml"))


def test_tables_name_the_cap_as_the_source(cdnow_run: tuple[Path, dict[str, object]]) -> None:
    root, _ = cdnow_run
    churn = read_partition(root / "lake", "churn", CUT_OFF)
    assert churn.filter(pl.col("group_by") == "base")["customers_at_start"].to_list() == [0]
    value = read_partition(root / "lake", "customer_value", CUT_OFF)
    assert value["lifetime_source"].unique().to_list() == ["cap"]
    assert value["expected_lifetime_years"].unique().to_list() == [20.0]
    base = read_partition(root / "lake", "customer_equity", CUT_OFF).filter(
        pl.col("group_by") == "base"
    )
    assert base["lifetime_source"].to_list() == ["cap"]
    assert base["avg_lifetime_years"].to_list() == [20.0]


def test_report_and_summary_say_the_equity_rests_on_the_cap(
    cdnow_run: tuple[Path, dict[str, object]],
) -> None:
    root, result = cdnow_run
    settings = settings_of(root)
    run_summary = summary_of(settings, result)
    markdown = churn_equity_markdown(run_summary).replace("\\", "")  # as rendered: unescaped
    assert "cap" in markdown and "max_lifetime_years" in markdown
    assert "cap" in run_summary.headline
    with cli.console.capture() as captured:
        cli._print_run(result, settings, kept=True)
    summary = captured.get()
    assert "max_lifetime_years" in summary and "20" in summary

"""The HTML report, the history page and the BI catalog, from real nightly runs of two dates.

The report is checked structurally everywhere (every chart section embeds a figure with data
points, the figures agree with the lake) and, where Debian's `chromium` is installed, in a
real headless browser: the page loads offline with no console error and every chart drew.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from typer.testing import CliRunner

from customer_equity.catalog import catalog_path
from customer_equity.cli import app
from customer_equity.flows.nightly import nightly
from customer_equity.flows.reporting import REPORT_KEY
from customer_equity.report import (
    Partitions,
    figures_of,
    history_path,
    holdings_chart,
    report_path,
    wealth_view,
)
from tests.conftest import generated_project

AS_OF = date(2025, 12, 31)
EARLIER = date(2025, 12, 30)
HOLDOUT_FROM = date(2025, 7, 1)
CHROMIUM = shutil.which("chromium")
# Every section of a report of a run with a holdout and holdings (generated projects have them;
# without a holdings extract the two wealth sections say so: tested below).
CHART_SECTIONS = {
    "stages", "tiers", "actions", "clv", "pareto", "churn", "cohorts", "equity", "retention",
    "calibration", "wealth", "holdings",
}  # fmt: skip
ABSENT_SECTIONS: set[str] = set()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    root = tmp_path_factory.mktemp("report")
    generated_project(root, customers=300, seed=21)
    return root


@pytest.fixture(scope="module")
def runs(project: Path) -> dict[date, dict[str, Any]]:
    config = str(project / "customer-equity.toml")
    earlier = nightly(as_of=EARLIER, config=config)
    latest = nightly(as_of=AS_OF, config=config, holdout_from=HOLDOUT_FROM)
    return {EARLIER: earlier, AS_OF: latest}


@pytest.fixture(scope="module")
def page(project: Path, runs: dict[date, dict[str, Any]]) -> str:
    return report_path(project / "lake", AS_OF).read_text(encoding="utf-8")


def _points(values: object) -> int:
    """Data points in a plotly array: a JSON list or a typed array (base64 `bdata`)."""
    if isinstance(values, dict) and "bdata" in values:
        return len(base64.b64decode(values["bdata"]))
    if isinstance(values, list):
        return sum(_points(v) if isinstance(v, list) else v is not None for v in values)
    return 0


def _trace_points(trace: dict[str, Any]) -> int:
    return max(_points(trace.get(axis)) for axis in ("x", "y", "z", "values"))


# --- structure --------------------------------------------------------------------------------


def test_each_run_writes_its_report_beside_the_partitions_and_returns_the_path(
    project: Path, runs: dict[date, dict[str, Any]]
) -> None:
    for as_of, result in runs.items():
        assert Path(result["report"]) == report_path(project / "lake", as_of)
        assert Path(result["report"]).is_file()
        assert Path(result["history"]) == history_path(project / "lake")
        assert Path(result["catalog"]) == catalog_path(project / "lake")


def test_every_chart_section_has_data_and_absent_tables_say_so(page: str) -> None:
    figures = figures_of(page)
    assert set(figures) == CHART_SECTIONS
    for key, figure in figures.items():
        assert figure["data"], key
        for trace in figure["data"]:
            assert _trace_points(trace) > 0, (key, trace.get("type"), trace.get("name"))
    for key in ABSENT_SECTIONS:
        section = page.split(f'data-chart-section="{key}"', 1)[1].split("</section>", 1)[0]
        assert 'class="absent"' in section and "was not published for this date" in section


def test_the_page_needs_nothing_from_the_network(page: str) -> None:
    assert "<script src=" not in page and "<link " not in page
    body = page.split("</head>", 1)[1]  # the head holds plotly.js itself
    assert "http://" not in body and "https://" not in body
    assert len(page) < 8_000_000  # plotly.js once (about 4.7 MB) and aggregates


def test_the_stage_funnel_counts_the_customers_of_the_lake(project: Path, page: str) -> None:
    funnel = figures_of(page)["stages"]["data"][0]
    counted = dict(
        duckdb.sql(
            "select lifecycle_stage, count(*) from read_parquet($files) group by 1",
            params={"files": str(project / f"lake/customer_metrics/as_of_date={AS_OF}/*.parquet")},
        ).fetchall()
    )
    assert dict(zip(funnel["y"], funnel["x"], strict=True)) == counted


def test_the_pareto_curve_agrees_with_an_sql_computation(project: Path, page: str) -> None:
    """The top 10 % of active customers by CLV hold the share of equity the curve shows."""
    curve = figures_of(page)["pareto"]["data"][0]
    lake = project / "lake"
    ((top_share,),) = duckdb.sql(
        """
        with active as (
            select v.clv_annuity from read_parquet($value) v
            join read_parquet($metrics) m using (customer_id)
            where not m.churned and not m.is_prospect and v.clv_annuity is not null
        ), ranked as (
            select clv_annuity, row_number() over (order by clv_annuity desc) as rank,
                   count(*) over () as n from active
        )
        select sum(clv_annuity) filter (where rank <= round(n * 0.1)) / sum(clv_annuity)
        from ranked
        """,
        params={
            "value": str(lake / f"customer_value/as_of_date={AS_OF}/*.parquet"),
            "metrics": str(lake / f"customer_metrics/as_of_date={AS_OF}/*.parquet"),
        },
    ).fetchall()
    assert curve["x"][10] == pytest.approx(0.1)
    assert curve["y"][10] == pytest.approx(top_share, rel=1e-9)


def test_the_retention_section_shows_the_published_scenarios(project: Path, page: str) -> None:
    retention = pl.read_parquet(
        project / f"lake/retention_economics/as_of_date={AS_OF}/*.parquet"
    ).sort("group_by", "group_value", nulls_last=True)
    bars = {t["name"]: t["y"] for t in figures_of(page)["retention"]["data"]}
    assert bars["r (today)"] == pytest.approx(retention["customer_equity"].to_list())
    assert bars["r − 10 pts"] == pytest.approx(retention["equity_churn_minus_10pts"].to_list())
    assert "replacements / year" in page


def _lake_sql(project: Path, sql: str, *tables: str) -> list[tuple[Any, ...]]:
    files = {t: str(project / f"lake/{t}/as_of_date={AS_OF}/*.parquet") for t in tables}
    return duckdb.sql(sql, params=files).fetchall()


def test_equity_by_group_shows_the_aum_tiers(project: Path, page: str) -> None:
    """With holdings, the equity chart has a third panel: AUM tiers from the top down."""
    traces = {t["name"]: t for t in figures_of(page)["equity"]["data"]}
    assert set(traces) == {"segment", "value_tier", "aum_tier"}
    published = dict(
        _lake_sql(
            project,
            "select coalesce(group_value, '(none)'), customer_equity "
            "from read_parquet($customer_equity) where group_by = 'aum_tier'",
            "customer_equity",
        )
    )
    aum = traces["aum_tier"]
    assert aum["x"][-1] == "(none)"  # customers without a position, last
    assert [x for x in aum["x"] if x != "(none)"] == [
        t for t in ("private_banking", "affluent", "mass") if t in published
    ]
    assert dict(zip(aum["x"], aum["y"], strict=True)) == pytest.approx(published)


def test_the_wealth_view_agrees_with_an_sql_computation(project: Path, page: str) -> None:
    """Customers per AUM tier × suitability and the asset mix per tier, counted again in SQL."""
    traces = figures_of(page)["wealth"]["data"]
    suitability = {t["name"]: t for t in traces if t["legendgroup"] == "suitability"}
    counted = _lake_sql(
        project,
        "select aum_tier, case when suitability_flag is null then 'not judged' "
        "when suitability_flag then 'unsuitable' else 'suitable' end, count(*) "
        "from read_parquet($customer_holdings) group by all",
        "customer_holdings",
    )
    shown = {
        (tier, name, n)
        for name, trace in suitability.items()
        for tier, n in zip(trace["x"], trace["y"], strict=True)
        if n
    }
    assert shown == set(counted)
    assert "unsuitable" in {name for _, name, _ in counted}  # the sample has unsuitable holders
    mix = _lake_sql(
        project,
        "select h.aum_tier, m.bucket, sum(m.balance) / sum(sum(m.balance)) over (partition by "
        "h.aum_tier) from read_parquet($holdings_mix) m join read_parquet($customer_holdings) h "
        "using (customer_id) where m.dimension = 'asset_class' group by h.aum_tier, m.bucket",
        "holdings_mix",
        "customer_holdings",
    )
    assets = {t["name"]: t for t in traces if t["legendgroup"] == "assets"}
    shown_mix = {
        (tier, name): share
        for name, trace in assets.items()
        for tier, share in zip(trace["x"], trace["y"], strict=True)
        if share
    }
    assert shown_mix == pytest.approx({(tier, asset): share for tier, asset, share in mix})
    ((holders,),) = _lake_sql(
        project, "select count(*) from read_parquet($customer_holdings)", "customer_holdings"
    )
    table = page.split('data-section="wealth"', 1)[1].split("</table>", 1)[0]
    assert "<td>all holders</td>" in table and f">{holders:,}<" in table


def test_without_holdings_the_wealth_sections_say_so(tmp_path: Path) -> None:
    parts = Partitions(tmp_path / "lake", AS_OF)
    for section in (wealth_view(parts, "USD"), holdings_chart(parts, "USD")):
        assert section.figure is None and section.table is None
        assert "customer_holdings was not published" in section.absent


def test_the_history_page_covers_every_published_date(project: Path) -> None:
    history = history_path(project / "lake").read_text(encoding="utf-8")
    figures = figures_of(history)
    assert set(figures) == {"equity-history", "churn-history", "stage-history"}
    assert figures["equity-history"]["data"][0]["x"] == [EARLIER.isoformat(), AS_OF.isoformat()]
    stages = figures["stage-history"]["data"]
    assert {len(trace["x"]) for trace in stages} == {2}
    for day in (EARLIER, AS_OF):
        assert f'href="report-{day.isoformat()}.html"' in history


def test_the_run_links_its_report_as_an_artifact(runs: dict[date, dict[str, Any]]) -> None:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[runs[AS_OF]["run_id"]])
            )
        )
    (link,) = (a for a in found if a.key == REPORT_KEY)
    assert report_path(Path(runs[AS_OF]["report"]).parents[1], AS_OF).as_uri() in str(link.data)


def test_the_report_command_re_renders_a_past_date_from_the_lake(project: Path) -> None:
    older = report_path(project / "lake", EARLIER)
    older.unlink()
    runner = CliRunner()
    config = str(project / "customer-equity.toml")
    done = runner.invoke(app, ["report", "--as-of", EARLIER.isoformat(), "--config", config])
    assert done.exit_code == 0, done.output
    assert str(older) in done.output.replace("\n", "")
    assert "calibration" not in figures_of(older.read_text(encoding="utf-8"))  # no holdout then

    missing = runner.invoke(app, ["report", "--as-of", "2020-01-01", "--config", config])
    assert missing.exit_code == 2
    assert "nothing published for as-of date 2020-01-01" in missing.output


# --- the BI catalog and the readers -------------------------------------------------------------


def _in_another_process(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_catalog_has_a_view_per_table_and_a_latest_view(
    project: Path, runs: dict[date, dict[str, Any]], tmp_path: Path
) -> None:
    catalog = catalog_path(project / "lake")
    customers = pl.read_csv(project / "inbox/customers/customers.csv").height
    # What a BI tool does: attach read-only from its own process and folder, two at once.
    query = f"""
import duckdb, json
con = duckdb.connect()
con.execute("attach '{catalog}' as lake (read_only)")
def one(sql):
    return con.execute(sql).fetchall()[0]
print(json.dumps((
    one("select count(*), count(distinct as_of_date), typeof(any_value(as_of_date))"
        " from lake.customer_metrics"),
    one("select count(*), min(as_of_date) from lake.latest_customer_metrics"),
    sorted(r[0] for r in con.execute(
        "select view_name from duckdb_views() where database_name = 'lake'").fetchall()),
), default=str))
"""
    holder = duckdb.connect(str(catalog), read_only=True)  # a BI tool keeps it attached
    try:
        out = _in_another_process(query, tmp_path)
    finally:
        holder.close()
    all_dates, latest, views = json.loads(out)
    assert all_dates == [2 * customers, 2, "DATE"]  # the README's old one-liner counted this
    assert latest == [customers, AS_OF.isoformat()]
    for table in (
        "customer_metrics",
        "retention_economics",
        "model_calibration",
        "data_quality",
        "customer_holdings",  # the wealth tables need no entry of their own
        "holdings_mix",
    ):
        assert table in views and f"latest_{table}" in views
    assert not any(v.startswith("_") or "report" in v for v in views)


def test_the_readme_one_liners_give_as_of_date_as_a_date(project: Path, tmp_path: Path) -> None:
    lake = project / "lake"
    readers = {
        "polars": "import polars as pl; "
        f"f = pl.read_parquet('{lake}/customer_metrics/**/*.parquet', hive_partitioning=True); "
        "print(f['as_of_date'].dtype, f.height)",
        "pyarrow": "import pyarrow as pa, pyarrow.dataset as ds; "
        "part = ds.partitioning(pa.schema([('as_of_date', pa.date32())]), flavor='hive'); "
        f"t = ds.dataset('{lake}/customer_metrics', partitioning=part).to_table(); "
        "print(t.schema.field('as_of_date').type, t.num_rows)",
        "pandas": "import pandas as pd, pyarrow as pa, pyarrow.dataset as ds; "
        "part = ds.partitioning(pa.schema([('as_of_date', pa.date32())]), flavor='hive'); "
        f"df = pd.read_parquet('{lake}/customer_metrics', partitioning=part); "
        "print(type(df['as_of_date'].iloc[0]).__name__, len(df))",
    }
    customers = pl.read_csv(project / "inbox/customers/customers.csv").height
    seen = {name: _in_another_process(code, tmp_path).split() for name, code in readers.items()}
    assert seen["polars"] == ["Date", str(2 * customers)]
    assert seen["pyarrow"] == ["date32[day]", str(2 * customers)]
    assert seen["pandas"] == ["date", str(2 * customers)]


# --- a real browser ---------------------------------------------------------------------------

BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
DRAWN_CHARTS = """() => Array.from(document.querySelectorAll('[data-chart-section]'))
  .map(section => {
    const chart = section.querySelector('.chart');
    if (!chart) return [section.dataset.chartSection, null];
    const points = (chart.data || []).map(t =>
      Math.max(...['x', 'y', 'z', 'values'].map(k => (t[k] && t[k].length) || 0)));
    return [section.dataset.chartSection,
            {traces: points, drawn: !!chart.querySelector('.main-svg')}];
  })"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run has it)")
@pytest.mark.parametrize("which", ["report", "history"])
def test_the_pages_load_in_headless_chromium_and_draw_every_chart(
    project: Path, runs: dict[date, dict[str, Any]], which: str
) -> None:
    from playwright.sync_api import sync_playwright

    path = (
        report_path(project / "lake", AS_OF)
        if which == "report"
        else history_path(project / "lake")
    )
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith("file:")
                    else (requests.append(route.request.url), route.abort())
                ),
            )
            # Generous: a 5 MB page with plotly on a loaded 2-core machine took over 30 s.
            page.goto(path.as_uri(), wait_until="load", timeout=180_000)
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.chart'))"
                ".every(c => c.querySelector('.main-svg'))",
                timeout=180_000,
            )
            charts = dict(page.evaluate(DRAWN_CHARTS))
        finally:
            browser.close()
    assert problems == [] and requests == []
    expected = (
        CHART_SECTIONS
        if which == "report"
        else {"equity-history", "churn-history", "stage-history"}
    )
    assert {k for k, v in charts.items() if v is not None} == expected
    for key in expected:
        assert charts[key]["drawn"] and charts[key]["traces"], key
        assert all(points > 0 for points in charts[key]["traces"]), (key, charts[key])
    json.dumps(charts)  # plain data came back from the page

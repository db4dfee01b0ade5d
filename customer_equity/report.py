"""The HTML run report and the history page: charts for the people who read the numbers.

Both pages are rendered from the published Parquet lake alone (any past date
can be re-rendered: `customer-equity report --as-of D`) and written beside
the partitions, in `lake/_reports/` (a folder name no table can have, and one
that Spark, pyarrow and Hive skip):

- `report-<D>.html`: one as-of date. Headline measures, then one section per
  chart; a table that was not published for D (no holdout run, no holdings
  extract) leaves its section saying so, so new tables need no change here.
  With holdings, customer equity is also shown per AUM tier and the wealth
  view (AUM tier × suitability, asset mix per tier) gets its section.
- `history.html`: every published as-of date: equity, churn and customers
  by stage over time, with a link to each date's report.

Charts are plotly figures; plotly.js is embedded once per page, so a page
opens offline. Every chart is built from aggregates (at most a few thousand
points), so a page stays about 5 MB whatever the number of customers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from customer_equity import lake
from customer_equity.settings import TIERS, Settings
from customer_equity.summary import (
    AUM_TIER_ORDER,
    STAGE_ORDER,
    WEALTH_COLUMNS,
    Published,
    Section,
    extracts_section,
    measures_section,
    retention_section,
    wealth_section,
)

REPORTS_DIR = "_reports"
HISTORY_NAME = "history.html"
CLV_BINS = 40
LORENZ_POINTS = 100
STAGE_COLOURS = {
    "potential": "#9ecae1",
    "development": "#4292c6",
    "growth": "#41ab5d",
    "maturity": "#006d2c",
    "decline": "#fd8d3c",
    "termination": "#a50f15",
}
TIER_COLOURS = {"core": "#54278f", "important": "#807dba", "general": "#bcbddc"}


@dataclass(frozen=True)
class ChartSection:
    """One section of a page: a chart (or the reason there is none) and an optional table."""

    key: str
    title: str
    description: str
    figure: go.Figure | None = None
    absent: str = ""  # why there is no chart, shown instead of it
    table: Section | None = None


def reports_dir(lake_root: Path) -> Path:
    return lake_root / REPORTS_DIR


def report_path(lake_root: Path, as_of: date) -> Path:
    return reports_dir(lake_root) / f"report-{as_of.isoformat()}.html"


def history_path(lake_root: Path) -> Path:
    return reports_dir(lake_root) / HISTORY_NAME


# --- reading: aggregates only -----------------------------------------------------------------


class Partitions:
    """Lazy access to the partitions of one as-of date; an absent table is None."""

    def __init__(self, lake_root: Path, as_of: date) -> None:
        self.lake_root, self.as_of = lake_root, as_of

    def scan(self, table: str) -> pl.LazyFrame | None:
        if not lake.partition_exists(self.lake_root, table, self.as_of):
            return None
        return pl.scan_parquet(lake.partition_dir(self.lake_root, table, self.as_of) / "*.parquet")

    def read(self, table: str) -> pl.DataFrame | None:
        frame = self.scan(table)
        return None if frame is None else frame.collect()


def _absent(table: str, why: str = "") -> str:
    return f"Table {table} was not published for this date{why}."


def _layout(figure: go.Figure, **extra: Any) -> go.Figure:
    defaults: dict[str, Any] = {
        "template": "plotly_white",
        "separators": ".,",
        "margin": {"l": 60, "r": 30, "t": 30, "b": 50},
        "height": 420,
    }
    figure.update_layout(**(defaults | extra))
    return figure


# --- one function per chart -------------------------------------------------------------------


def stage_funnel(parts: Partitions) -> ChartSection:
    title, description = (
        "Customers by lifecycle stage",
        (
            "How many customers are in each stage of the relationship (SPEC §5), "
            "from prospects to lost customers."
        ),
    )
    metrics = parts.scan("customer_metrics")
    if metrics is None:
        return ChartSection("stages", title, description, absent=_absent("customer_metrics"))
    counts = dict(metrics.group_by("lifecycle_stage").len().collect().iter_rows())
    stages = [s for s in STAGE_ORDER if s in counts] + sorted(set(counts) - set(STAGE_ORDER))
    figure = go.Figure(
        go.Funnel(
            y=stages,
            x=[counts[s] for s in stages],
            textinfo="value+percent total",
            marker={"color": [STAGE_COLOURS.get(s, "#888888") for s in stages]},
            hovertemplate="%{y}: %{x:,} customers<extra></extra>",
        )
    )
    return ChartSection("stages", title, description, _layout(figure))


def _main_tiers(parts: Partitions, rule_set: str) -> pl.LazyFrame | None:
    tiers = parts.scan("customer_tiers")
    return None if tiers is None else tiers.filter(pl.col("rule_set") == rule_set)


def tier_bars(parts: Partitions, rule_set: str, currency: str) -> ChartSection:
    title = "Customers and value by tier"
    description = (
        f"Customers per value tier of rule set {rule_set} (SPEC §8) and the CLV they hold "
        "(seed method, active customers)."
    )
    tiers = _main_tiers(parts, rule_set)
    if tiers is None:
        return ChartSection("tiers", title, description, absent=_absent("customer_tiers"))
    rows = {
        tier: (n, clv)
        for tier, n, clv in tiers.group_by("value_tier")
        .agg(pl.len(), pl.col("clv_annuity").sum())
        .collect()
        .iter_rows()
    }
    names = [t for t in TIERS if t in rows]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("customers", f"CLV ({currency})"))
    colours = [TIER_COLOURS[t] for t in names]
    figure.add_trace(
        go.Bar(
            x=names,
            y=[rows[t][0] for t in names],
            marker_color=colours,
            name="customers",
            hovertemplate="%{x}: %{y:,} customers<extra></extra>",
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Bar(
            x=names,
            y=[rows[t][1] for t in names],
            marker_color=colours,
            name="CLV",
            hovertemplate="%{x}: %{y:,.0f} " + currency + "<extra></extra>",
        ),
        row=1,
        col=2,
    )
    return ChartSection("tiers", title, description, _layout(figure, showlegend=False))


def action_matrix(parts: Partitions, rule_set: str, currency: str) -> ChartSection:
    title = "Action matrix: lifecycle stage × value tier"
    description = (
        "Each cell: the recommended action for the pair (SPEC §8), the number of customers "
        f"and the CLV they hold ({currency}). Colour: customers."
    )
    tiers = _main_tiers(parts, rule_set)
    if tiers is None:
        return ChartSection("actions", title, description, absent=_absent("customer_tiers"))
    cells = {
        (stage, tier): (action, n, clv)
        for stage, tier, action, n, clv in tiers.group_by("lifecycle_stage", "value_tier")
        .agg(pl.col("action").first(), pl.len(), pl.col("clv_annuity").sum())
        .collect()
        .iter_rows()
    }
    stages = [s for s in STAGE_ORDER if any((s, t) in cells for t in TIERS)]
    z = [[cells.get((s, t), ("", 0, 0.0))[1] for t in TIERS] for s in stages]
    text = [
        [
            f"{a}<br>{n:,} customers<br>{v:,.0f}" if n else ""
            for a, n, v in (cells.get((s, t), ("", 0, 0.0)) for t in TIERS)
        ]
        for s in stages
    ]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=list(TIERS),
            y=stages,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            hovertemplate="%{y} × %{x}: %{z:,} customers<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    return ChartSection("actions", title, description, _layout(figure, height=520))


def _active_clv(parts: Partitions) -> pl.LazyFrame | None:
    """CLV (seed method) of active customers: not churned, not prospects."""
    value, metrics = parts.scan("customer_value"), parts.scan("customer_metrics")
    if value is None or metrics is None:
        return None
    active = metrics.filter(~pl.col("churned") & ~pl.col("is_prospect")).select("customer_id")
    return (
        value.join(active, on="customer_id", how="semi")
        .select("clv_annuity")
        .filter(pl.col("clv_annuity").is_not_null())
    )


def clv_distribution(parts: Partitions, currency: str) -> ChartSection:
    title = "CLV distribution"
    description = (
        f"Active customers by CLV (seed method, {currency}), in {CLV_BINS} bins between the "
        "1st and the 99th percentile; the outer bins also hold the customers beyond them."
    )
    clv = _active_clv(parts)
    if clv is None:
        return ChartSection("clv", title, description, absent=_absent("customer_value"))
    values = clv.collect()["clv_annuity"]
    if values.is_empty():
        return ChartSection("clv", title, description, absent="No active customer to value.")
    low, high = values.quantile(0.01), values.quantile(0.99)
    width = (high - low) / CLV_BINS if high > low else 1.0
    bins = (
        ((values - low) / width).floor().clip(0, CLV_BINS - 1).cast(pl.Int64).value_counts()
    ).sort(values.name)
    centres = [low + (b + 0.5) * width for b in bins[values.name]]
    figure = go.Figure(
        go.Bar(
            x=centres,
            y=bins["count"].to_list(),
            width=width,
            marker_color="#4292c6",
            hovertemplate="CLV about %{x:,.0f}: %{y:,} customers<extra></extra>",
        )
    )
    figure.update_xaxes(title=f"CLV ({currency})", tickformat=",.0f")
    figure.update_yaxes(title="customers")
    return ChartSection("clv", title, description, _layout(figure, bargap=0.05))


def value_concentration(parts: Partitions) -> ChartSection:
    title = "Value concentration (Pareto curve)"
    description = (
        "Share of customer equity held by the most valuable x % of active customers. "
        "Above 100 %: the unprofitable customers at the tail destroy value."
    )
    clv = _active_clv(parts)
    if clv is None:
        return ChartSection("pareto", title, description, absent=_absent("customer_value"))
    ranked = clv.sort("clv_annuity", descending=True).collect()["clv_annuity"]
    total = ranked.sum()
    if ranked.is_empty() or total <= 0:
        return ChartSection(
            "pareto",
            title,
            description,
            absent="Customer equity is not positive: no concentration to show.",
        )
    cumulative = ranked.cum_sum()
    n = ranked.len()
    shares = [0.0] + [
        cumulative[max(round(n * k / LORENZ_POINTS) - 1, 0)] / total
        for k in range(1, LORENZ_POINTS + 1)
    ]
    top = {k: shares[k] for k in (10, 20)}
    figure = go.Figure(
        [
            go.Scatter(
                x=[k / LORENZ_POINTS for k in range(LORENZ_POINTS + 1)],
                y=shares,
                mode="lines",
                name="equity held",
                line={"color": "#54278f"},
                hovertemplate="top %{x:.0%} of customers: %{y:.1%} of equity<extra></extra>",
            ),
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="equal shares",
                line={"dash": "dot", "color": "#999999"},
                hoverinfo="skip",
            ),
        ]
    )
    for k, value in top.items():
        figure.add_annotation(x=k / 100, y=value, text=f"top {k} %: {value:.1%}", showarrow=True)
    figure.update_xaxes(title="share of active customers (most valuable first)", tickformat=".0%")
    figure.update_yaxes(title="share of customer equity", tickformat=".0%")
    return ChartSection("pareto", title, description, _layout(figure))


def churn_by_segment(parts: Partitions) -> ChartSection:
    title = "Churn rate and lifetime by segment"
    description = (
        "Churn rate r over the year ending on D per segment (SPEC §4) and the average "
        "lifetime 1 / r it implies; the dotted line is the whole base."
    )
    churn = parts.read("churn")
    if churn is None:
        return ChartSection("churn", title, description, absent=_absent("churn"))
    groups = churn.filter(pl.col("group_by") != "base").sort("group_value", nulls_last=True)
    base = churn.filter(pl.col("group_by") == "base")
    if groups.height == 0 and base.height == 0:
        return ChartSection("churn", title, description, absent="No group with a churn rate.")
    frame = pl.concat([base, groups]) if groups.height else base
    names = [str(v) if v is not None else "(none)" for v in frame["group_value"]]
    names = [
        "whole base" if g == "base" else n for g, n in zip(frame["group_by"], names, strict=True)
    ]
    lifetimes = [
        f"{t:,.1f} years" if t is not None else "no churn" for t in frame["avg_lifetime_years"]
    ]
    figure = go.Figure(
        go.Bar(
            x=names,
            y=frame["churn_rate"].fill_null(0.0).to_list(),
            text=lifetimes,
            customdata=frame.select("customers_lost", "customers_at_start").rows(),
            marker_color=["#6a51a3" if g == "base" else "#9e9ac8" for g in frame["group_by"]],
            hovertemplate="%{x}: %{y:.1%} (%{customdata[0]:,} of %{customdata[1]:,}), "
            "lifetime %{text}<extra></extra>",
        )
    )
    figure.update_yaxes(title="churn rate", tickformat=".0%")
    return ChartSection("churn", title, description, _layout(figure))


def cohort_heatmap(parts: Partitions) -> ChartSection:
    title = "Cohort retention"
    description = (
        "Per first-purchase month (rows), the share of the cohort buying k calendar months "
        "later (columns); hover for the counts (SPEC §4)."
    )
    cohorts = parts.read("cohort_retention")
    if cohorts is None:
        return ChartSection("cohorts", title, description, absent=_absent("cohort_retention"))
    if cohorts.height == 0:
        return ChartSection("cohorts", title, description, absent="No purchase yet: no cohort.")
    grid = cohorts.sort("cohort_month", "months_since_first").pivot(
        on="months_since_first", index="cohort_month", values="active_share"
    )
    counts = cohorts.pivot(on="months_since_first", index="cohort_month", values="active_customers")
    counts = grid.select("cohort_month").join(counts, on="cohort_month", how="left")
    months = [c for c in grid.columns if c != "cohort_month"]
    figure = go.Figure(
        go.Heatmap(
            z=grid.select(months).rows(),
            x=[int(m) for m in months],
            y=[d.strftime("%Y-%m") for d in grid["cohort_month"]],
            customdata=counts.select(months).rows(),
            colorscale="Greens",
            zmin=0,
            zmax=1,
            hovertemplate="cohort %{y}, month %{x}: %{z:.1%} (%{customdata:,} customers)"
            "<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", type="category", title="first-purchase month")
    figure.update_xaxes(title="months since the first purchase")
    return ChartSection("cohorts", title, description, _layout(figure, height=560))


EQUITY_GROUPINGS = ("segment", "value_tier", "aum_tier")


def text_or_none(value: object) -> str:
    """A group value as a label; the group of customers without one is "(none)"."""
    return "(none)" if value is None else str(value)


def _in_group_order(rows: pl.DataFrame, grouping: str) -> pl.DataFrame:
    """Value and AUM tiers from the top down, other groups by name; the null group last."""
    order = {"value_tier": TIERS, "aum_tier": AUM_TIER_ORDER[::-1]}.get(grouping)
    if order is None:
        return rows.sort("group_value", nulls_last=True)
    rank = pl.col("group_value").replace_strict(order, range(len(order)), default=len(order))
    return rows.sort(rank, "group_value", nulls_last=True)


def equity_by_group(parts: Partitions, currency: str) -> ChartSection:
    title = "Customer equity by group"
    description = f"Customer equity (SPEC §7, {currency}) per segment and per value tier."
    equity = parts.read("customer_equity")
    if equity is None:
        return ChartSection("equity", title, description, absent=_absent("customer_equity"))
    groupings = [g for g in EQUITY_GROUPINGS if g in set(equity["group_by"])]
    if not groupings:
        return ChartSection("equity", title, description, absent="No active customer: no group.")
    if "aum_tier" in groupings:
        description += " With holdings also per AUM tier (SPEC §10); (none): no position on D."
    figure = make_subplots(rows=1, cols=len(groupings), subplot_titles=groupings)
    for col, grouping in enumerate(groupings, start=1):
        rows = _in_group_order(equity.filter(pl.col("group_by") == grouping), grouping)
        figure.add_trace(
            go.Bar(
                x=[text_or_none(v) for v in rows["group_value"]],
                y=rows["customer_equity"].to_list(),
                customdata=rows["customers"].to_list(),
                name=grouping,
                hovertemplate="%{x}: %{y:,.0f} "
                + currency
                + " over %{customdata:,} customers<extra></extra>",
            ),
            row=1,
            col=col,
        )
    figure.update_yaxes(tickformat=",.0f")
    return ChartSection("equity", title, description, _layout(figure, showlegend=False))


def retention_scenarios(parts: Partitions, currency: str, published: Published) -> ChartSection:
    title = "Retention economics"
    description = (
        "What churn costs (SPEC §11): customer equity if churn were 10 or 5 points lower or "
        "5 points higher, per group; the table adds the replacements needed per year and "
        "their acquisition cost."
    )
    table = retention_section(published, currency)
    frame = published.retention
    if frame is None:
        return ChartSection("retention", title, description, absent=_absent("retention_economics"))
    if frame.height == 0:
        return ChartSection(
            "retention", title, description, absent="No active customer.", table=table
        )
    frame = frame.sort("group_by", "group_value", nulls_last=True)
    names = [
        f"{g}: {v}" if g != "base" else "whole base"
        for g, v in zip(frame["group_by"], frame["group_value"], strict=True)
    ]
    scenarios = (
        ("r + 5 pts", "equity_churn_plus_5pts", "#fb6a4a"),
        ("r (today)", "customer_equity", "#6a51a3"),
        ("r − 5 pts", "equity_churn_minus_5pts", "#74c476"),
        ("r − 10 pts", "equity_churn_minus_10pts", "#238b45"),
    )
    figure = go.Figure(
        [
            go.Bar(
                name=label,
                x=names,
                y=frame[column].to_list(),
                marker_color=colour,
                hovertemplate="%{x}, " + label + ": %{y:,.0f} " + currency + "<extra></extra>",
            )
            for label, column, colour in scenarios
        ]
    )
    figure.update_yaxes(title=f"customer equity ({currency})", tickformat=",.0f")
    return ChartSection(
        "retention", title, description, _layout(figure, barmode="group", height=480), table=table
    )


def calibration_chart(parts: Partitions) -> ChartSection:
    title = "BG/NBD check: predicted vs actual purchases"
    description = (
        "With a holdout (run --holdout-from): mean purchases per customer in the holdout "
        "period, predicted by the model fitted before it and observed, per number of repeat "
        "purchases in the calibration period (SPEC §6)."
    )
    calibration = parts.read("model_calibration")
    if calibration is None:
        why = " (it is written by a run with --holdout-from)"
        return ChartSection(
            "calibration", title, description, absent=_absent("model_calibration", why)
        )
    buckets = calibration["repeat_purchases_bucket"].to_list()
    figure = go.Figure(
        [
            go.Scatter(
                x=buckets,
                y=calibration["actual_holdout_purchases"].to_list(),
                mode="lines+markers",
                name="actual",
                line={"color": "#252525"},
            ),
            go.Scatter(
                x=buckets,
                y=calibration["predicted_holdout_purchases"].to_list(),
                mode="lines+markers",
                name="predicted (BG/NBD)",
                line={"color": "#e6550d", "dash": "dash"},
            ),
        ]
    )
    figure.update_xaxes(title="repeat purchases in the calibration period", type="category")
    figure.update_yaxes(title="mean purchases in the holdout")
    return ChartSection("calibration", title, description, _layout(figure))


SUITABILITY_COLOURS = {"suitable": "#41ab5d", "unsuitable": "#e6550d", "not judged": "#bdbdbd"}


def suitability_counts(holdings: pl.LazyFrame) -> pl.DataFrame:
    """Customers per AUM tier and suitability (suitable / unsuitable / not judged), tiers from
    mass up to private banking: aum_tier, suitability, customers."""
    judged = (
        pl.when(pl.col("suitability_flag").is_null())
        .then(pl.lit("not judged"))
        .when(pl.col("suitability_flag"))
        .then(pl.lit("unsuitable"))
        .otherwise(pl.lit("suitable"))
    )
    return (
        holdings.group_by("aum_tier", judged.alias("suitability"))
        .agg(pl.len().cast(pl.Int64).alias("customers"))
        .collect()
        .sort(_aum_tier_rank(), "suitability")
    )


def asset_mix_by_tier(holdings: pl.LazyFrame, mix: pl.LazyFrame) -> pl.DataFrame:
    """AUM per AUM tier and asset class, and its share of the tier's AUM (SPEC §10 mix):
    aum_tier, asset_class, balance, share."""
    balances = (
        mix.filter(pl.col("dimension") == "asset_class")
        .join(holdings.select("customer_id", "aum_tier"), on="customer_id")
        .group_by("aum_tier", pl.col("bucket").alias("asset_class"))
        .agg(pl.col("balance").sum())
    )
    return (
        balances.with_columns(
            (pl.col("balance") / pl.col("balance").sum().over("aum_tier")).alias("share")
        )
        .collect()
        .sort(_aum_tier_rank(), "asset_class")
    )


def _aum_tier_rank() -> pl.Expr:
    return pl.col("aum_tier").replace_strict(
        AUM_TIER_ORDER, range(len(AUM_TIER_ORDER)), default=len(AUM_TIER_ORDER)
    )


def wealth_view(parts: Partitions, currency: str) -> ChartSection:
    title = "Wealth view: AUM tier × suitability and asset mix"
    description = (
        "Left: customers with holdings per AUM tier, by whether their products suit their "
        "declared risk profile (SPEC §10; not judged: unknown profile or nothing held). "
        f"Right: the asset mix of each AUM tier, share of its AUM ({currency}) per asset class."
    )
    holdings, mix = parts.scan("customer_holdings"), parts.scan("holdings_mix")
    if holdings is None or mix is None:
        return ChartSection(
            "wealth",
            title,
            description,
            absent=_absent("customer_holdings", " (it needs a holdings extract)"),
        )
    table = wealth_section(holdings.select(WEALTH_COLUMNS).collect(), currency)
    counts, assets = suitability_counts(holdings), asset_mix_by_tier(holdings, mix)
    tiers = counts["aum_tier"].unique(maintain_order=True).to_list()
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=("customers by suitability", "asset mix (share of AUM)")
    )
    for judged, colour in SUITABILITY_COLOURS.items():
        rows = dict(
            counts.filter(pl.col("suitability") == judged)
            .select("aum_tier", "customers")
            .iter_rows()
        )
        figure.add_trace(
            go.Bar(
                x=tiers,
                y=[rows.get(tier, 0) for tier in tiers],
                name=judged,
                marker_color=colour,
                legendgroup="suitability",
                hovertemplate="%{x}: %{y:,} customers " + judged + "<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for asset_class in sorted(assets["asset_class"].unique().to_list()):
        rows = assets.filter(pl.col("asset_class") == asset_class)
        shares = dict(rows.select("aum_tier", "share").iter_rows())
        balances = dict(rows.select("aum_tier", "balance").iter_rows())
        figure.add_trace(
            go.Bar(
                x=tiers,
                y=[shares.get(tier, 0.0) for tier in tiers],
                customdata=[balances.get(tier, 0.0) for tier in tiers],
                name=asset_class,
                legendgroup="assets",
                hovertemplate="%{x}, "
                + asset_class
                + ": %{y:.1%} (%{customdata:,.0f} "
                + currency
                + ")<extra></extra>",
            ),
            row=1,
            col=2,
        )
    figure.update_yaxes(tickformat=",", title="customers", row=1, col=1)
    figure.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=2)
    return ChartSection(
        "wealth", title, description, _layout(figure, barmode="stack", height=460), table=table
    )


def holdings_chart(parts: Partitions, currency: str) -> ChartSection:
    title = "Assets under management"
    description = f"Customers by AUM ({currency}) where a holdings extract exists (SPEC §10)."
    holdings = parts.scan("customer_holdings")
    if holdings is None or "aum" not in holdings.collect_schema():
        return ChartSection(
            "holdings",
            title,
            description,
            absent=_absent("customer_holdings", " (it needs a holdings extract)"),
        )
    aum = holdings.select(pl.col("aum").drop_nulls()).collect()["aum"]
    if aum.is_empty():
        return ChartSection("holdings", title, description, absent="No customer holds assets.")
    figure = go.Figure(go.Histogram(x=aum.to_list(), nbinsx=CLV_BINS, marker_color="#2171b5"))
    figure.update_xaxes(title=f"AUM ({currency})", tickformat=",.0f")
    return ChartSection("holdings", title, description, _layout(figure))


# --- pages ------------------------------------------------------------------------------------


def _published(parts: Partitions) -> Published:
    def read(table: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        frame = parts.scan(table)
        return None if frame is None else frame.select(columns or pl.all()).collect()

    return Published(
        tiers=None,
        revenue=None,
        churn=read("churn"),
        equity=read("customer_equity"),
        retention=read("retention_economics"),
        row_counts={},
        partitions={},
    )


def report_sections(lake_root: Path, as_of: date, settings: Settings) -> list[ChartSection]:
    """Every section of the report of D, in reading order."""
    parts = Partitions(lake_root, as_of)
    currency, rule_set = settings.quality.base_currency, settings.tiers.rule_set
    published = _published(parts)
    builders: Sequence[Callable[[], ChartSection]] = (
        lambda: stage_funnel(parts),
        lambda: tier_bars(parts, rule_set, currency),
        lambda: action_matrix(parts, rule_set, currency),
        lambda: clv_distribution(parts, currency),
        lambda: value_concentration(parts),
        lambda: churn_by_segment(parts),
        lambda: cohort_heatmap(parts),
        lambda: equity_by_group(parts, currency),
        lambda: retention_scenarios(parts, currency, published),
        lambda: calibration_chart(parts),
        lambda: wealth_view(parts, currency),
        lambda: holdings_chart(parts, currency),
    )
    return [build() for build in builders]


def _figure_json(figure: go.Figure) -> str:
    # `<` never appears raw, so no value (a segment called "</script>") can end the script tag.
    return figure.to_json().replace("<", "\\u003c")


_TEMPLATES = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: (
            resources.files("customer_equity")
            .joinpath("templates", name)
            .read_text(encoding="utf-8")
        )
    ),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def render_page(
    *,
    title: str,
    subtitle: str,
    sections: Sequence[ChartSection],
    measures: Section | None = None,
    extracts: Section | None = None,
    links: Sequence[tuple[str, str]] = (),
    dates: Sequence[tuple[str, str | None]] = (),
) -> str:
    """One self-contained HTML page (plotly.js inline, no request to anywhere)."""
    return _TEMPLATES.get_template("report.html.j2").render(
        title=title,
        subtitle=subtitle,
        sections=sections,
        figures={s.key: _figure_json(s.figure) for s in sections if s.figure is not None},
        measures=measures,
        extracts=extracts,
        links=links,
        dates=dates,
        plotly_js=get_plotlyjs(),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _write_atomically(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    staging.write_text(content, encoding="utf-8")
    staging.replace(path)
    return path


def write_report(settings: Settings, as_of: date) -> Path:
    """Render the report of D from the lake into `lake/_reports/report-D.html`; returns it."""
    lake_root = settings.paths.lake
    if not lake.partition_exists(lake_root, "customer_metrics", as_of):
        raise FileNotFoundError(
            f"nothing published for as-of date {as_of} in {lake_root} "
            f"(published dates: {_date_list(lake.published_dates(lake_root, 'customer_metrics'))})"
        )
    parts = Partitions(lake_root, as_of)
    currency = settings.quality.base_currency
    quality = parts.read("data_quality")
    html = render_page(
        title=f"Customer equity as of {as_of.isoformat()}",
        subtitle=f"lake {lake_root}",
        sections=report_sections(lake_root, as_of, settings),
        measures=measures_section(_published(parts), as_of, currency),
        extracts=extracts_section(quality.to_dicts()) if quality is not None else None,
        links=[("history across as-of dates", HISTORY_NAME)],
    )
    return _write_atomically(report_path(lake_root, as_of), html)


def _date_list(dates: Sequence[date]) -> str:
    if not dates:
        return "none"
    shown = ", ".join(d.isoformat() for d in dates[-5:])
    return shown if len(dates) <= 5 else f"{len(dates):,} dates, the last {shown}"


# --- history ----------------------------------------------------------------------------------


def _scan_all(lake_root: Path, table: str) -> pl.LazyFrame | None:
    if table not in lake.table_names(lake_root):
        return None
    return pl.scan_parquet(
        lake_root / table / "*" / "*.parquet",
        hive_partitioning=True,
        hive_schema={lake.PARTITION_KEY: pl.Date},
        missing_columns="insert",
        extra_columns="ignore",
    )


def history_sections(lake_root: Path, currency: str) -> list[ChartSection]:
    """Equity, churn and customers by stage over every published as-of date."""
    sections = []
    equity = _scan_all(lake_root, "customer_equity")
    title = "Customer equity over time"
    description = f"Customer equity of the whole base per as-of date ({currency})."
    if equity is None:
        sections.append(
            ChartSection(
                "equity-history", title, description, absent="No customer_equity partition yet."
            )
        )
    else:
        base = (
            equity.filter(pl.col("group_by") == "base")
            .select("as_of_date", "customer_equity", "customers")
            .sort("as_of_date")
            .collect()
        )
        figure = go.Figure(
            go.Scatter(
                x=base["as_of_date"].to_list(),
                y=base["customer_equity"].to_list(),
                customdata=base["customers"].to_list(),
                mode="lines+markers",
                line={"color": "#54278f"},
                hovertemplate="%{x}: %{y:,.0f} "
                + currency
                + " over %{customdata:,} customers<extra></extra>",
            )
        )
        figure.update_yaxes(tickformat=",.0f", title=currency)
        sections.append(ChartSection("equity-history", title, description, _layout(figure)))

    churn = _scan_all(lake_root, "churn")
    title = "Churn rate over time"
    description = "Churn rate r of the whole base over the year ending on each as-of date."
    if churn is None:
        sections.append(
            ChartSection("churn-history", title, description, absent="No churn partition yet.")
        )
    else:
        base = (
            churn.filter(pl.col("group_by") == "base")
            .select("as_of_date", "churn_rate")
            .sort("as_of_date")
            .collect()
        )
        figure = go.Figure(
            go.Scatter(
                x=base["as_of_date"].to_list(),
                y=base["churn_rate"].to_list(),
                mode="lines+markers",
                line={"color": "#a50f15"},
                hovertemplate="%{x}: %{y:.1%}<extra></extra>",
            )
        )
        figure.update_yaxes(tickformat=".0%", title="churn rate")
        sections.append(ChartSection("churn-history", title, description, _layout(figure)))

    metrics = _scan_all(lake_root, "customer_metrics")
    title = "Customers by lifecycle stage over time"
    description = "Customers in each lifecycle stage per as-of date (stacked)."
    if metrics is None:
        sections.append(
            ChartSection(
                "stage-history", title, description, absent="No customer_metrics partition yet."
            )
        )
    else:
        counts = (
            metrics.group_by("as_of_date", "lifecycle_stage").len().sort("as_of_date").collect()
        )
        figure = go.Figure(
            [
                go.Scatter(
                    x=rows["as_of_date"].to_list(),
                    y=rows["len"].to_list(),
                    name=stage,
                    stackgroup="stages",
                    line={"color": STAGE_COLOURS.get(stage)},
                    hovertemplate=f"%{{x}}: %{{y:,}} {stage}<extra></extra>",
                )
                for stage in STAGE_ORDER
                if (rows := counts.filter(pl.col("lifecycle_stage") == stage)).height
            ]
        )
        figure.update_yaxes(tickformat=",", title="customers")
        sections.append(ChartSection("stage-history", title, description, _layout(figure)))
    return sections


def write_history(settings: Settings) -> Path:
    """Render `lake/_reports/history.html` over every published as-of date; returns it."""
    lake_root = settings.paths.lake
    dates = lake.published_dates(lake_root, "customer_metrics")
    html = render_page(
        title="Customer equity across as-of dates",
        subtitle=f"{len(dates):,} published as-of date(s) in lake {lake_root}",
        sections=history_sections(lake_root, settings.quality.base_currency),
        dates=[
            (
                d.isoformat(),
                report_path(lake_root, d).name if report_path(lake_root, d).exists() else None,
            )
            for d in reversed(dates)
        ],
    )
    return _write_atomically(history_path(lake_root), html)


def figures_of(html: str) -> dict[str, dict[str, Any]]:
    """The figures embedded in a page, by section key (for tests and tools)."""
    marker = '<script type="application/json" data-figure="'
    figures = {}
    for chunk in html.split(marker)[1:]:
        key, _, rest = chunk.partition('">')
        figures[key] = json.loads(rest.split("</script>", 1)[0])
    return figures

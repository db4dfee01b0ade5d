"""The run summary: built once from the published tables, rendered for the terminal and Prefect.

`run_summary` is a pure function of the partitions one run published (read by
`read_published`); it returns sections of formatted cells. The CLI prints them
with rich (`print_summary`), the Prefect artifacts show the same sections as
Markdown (`to_markdown`) or as table artifacts (`to_records`): same columns,
same row order, same figures. Text that comes from the extracts is escaped
for Markdown, so a `|` in a segment name cannot split a table row and a link
in it does not render.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from customer_equity import lake
from customer_equity.settings import TIERS

# Lifecycle order (SPEC §5), not the rule precedence of settings.STAGES: a reader
# scans the table from new customers to lost ones.
STAGE_ORDER = ("potential", "development", "growth", "maturity", "decline", "termination")
COUNT_COLUMNS = ("rows_read", "rows_loaded", "rows_replaced", "rows_duplicate", "rows_quarantined")
NOT_AVAILABLE = "n/a"

FileRow = Mapping[str, Any]


@dataclass(frozen=True)
class Link:
    """A cell that is a file: a link in Markdown, its path in the terminal."""

    text: str
    target: Path

    def __str__(self) -> str:
        return self.text


Cell = str | Link


@dataclass(frozen=True)
class Section:
    """One table of the summary; every cell is already formatted."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: frozenset[str] = field(default_factory=frozenset)  # right-aligned columns
    note: str = ""


@dataclass(frozen=True)
class RunSummary:
    as_of: date
    run_id: str
    headline: str
    sections: tuple[Section, ...]

    def section(self, key: str) -> Section:
        (found,) = (s for s in self.sections if s.key == key)
        return found


@dataclass(frozen=True)
class Published:
    """What the summary reads of one as-of date; a table that was not published is None."""

    tiers: pl.DataFrame | None  # customer_id, rule_set, value_tier, lifecycle_stage
    revenue: pl.DataFrame | None  # customer_id, revenue
    churn: pl.DataFrame | None
    equity: pl.DataFrame | None
    retention: pl.DataFrame | None
    row_counts: Mapping[str, int]
    partitions: Mapping[str, str]
    holdings: pl.DataFrame | None = None  # customer_holdings (SPEC §10), only with holdings


# --- formatting: one spelling of every kind of figure -----------------------------------------


def count(value: int | None) -> str:
    return NOT_AVAILABLE if value is None else f"{value:,}"


def money(value: float | None, currency: str) -> str:
    return NOT_AVAILABLE if value is None else f"{value:,.2f} {currency}"


def amount(value: float | None) -> str:
    """Money in a column whose header names the currency: whole units."""
    return NOT_AVAILABLE if value is None else f"{value:,.0f}"


def share(value: float | None) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.1%}"


def years(value: float | None) -> str:
    return NOT_AVAILABLE if value is None else f"{value:,.1f} years"


def decimal(value: float | None) -> str:
    return NOT_AVAILABLE if value is None else f"{value:,.1f}"


def text(value: object) -> str:
    return NOT_AVAILABLE if value is None else str(value)


# --- reading (the only I/O) -------------------------------------------------------------------


def read_published(lake_root: Path, as_of: date, partitions: Mapping[str, str]) -> Published:
    """The columns the summary needs from the partitions of D; row counts from Parquet footers."""

    def read(table: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        if not lake.partition_exists(lake_root, table, as_of):
            return None
        return lake.read_partition(lake_root, table, as_of, columns)

    row_counts = {
        table: pl.scan_parquet(Path(folder) / "*.parquet").select(pl.len()).collect().item()
        for table, folder in partitions.items()
    }
    return Published(
        tiers=read("customer_tiers", ["customer_id", "rule_set", "value_tier", "lifecycle_stage"]),
        revenue=read("customer_metrics", ["customer_id", "revenue"]),
        churn=read("churn"),
        equity=read("customer_equity"),
        retention=read("retention_economics"),
        row_counts=row_counts,
        partitions=partitions,
        holdings=read("customer_holdings", list(WEALTH_COLUMNS)),
    )


# --- the summary (pure) -----------------------------------------------------------------------


def run_summary(
    published: Published,
    files: Sequence[FileRow],
    *,
    as_of: date,
    run_id: str,
    rule_set: str,
    currency: str,
) -> RunSummary:
    """Every section a user wants after a run, in the order they read it."""
    return RunSummary(
        as_of=as_of,
        run_id=run_id,
        headline=headline(published, as_of, currency),
        sections=(
            extracts_section(files),
            stages_section(published, rule_set, currency),
            measures_section(published, as_of, currency),
            groups_section(published, currency),
            retention_section(published, currency),
            *wealth_sections(published, currency),
            outputs_section(published),
        ),
    )


def extracts_section(files: Sequence[FileRow]) -> Section:
    """One row per extract file loaded or rejected by the run, then one for the skipped ones.

    Files already loaded by an earlier run are skipped with zero counts; listing
    each of them would bury the few new files under the whole history of the inbox.
    """
    rows: list[tuple[Cell, ...]] = [
        (
            str(f["extract_kind"]),
            str(f["file_name"]),
            str(f["status"]),
            *(count(int(f[c])) for c in COUNT_COLUMNS),
            str(f["error"] or ""),
        )
        for f in files
        if f["status"] != "skipped"
    ]
    skipped = sum(f["status"] == "skipped" for f in files)
    if skipped or not rows:
        already = f"{skipped:,} file(s) already loaded by earlier runs"
        rows.append(("all", already, "skipped", *("0" for _ in COUNT_COLUMNS), ""))
    columns = ("extract", "file", "status", "read", "loaded", "replaced", "duplicate")
    return Section(
        key="extracts",
        title="Extracts",
        columns=(*columns, "quarantined", "error"),
        rows=tuple(rows),
        numeric=frozenset({"read", "loaded", "replaced", "duplicate", "quarantined"}),
        note=data_quality_sentence(files),
    )


def data_quality_sentence(files: Sequence[FileRow]) -> str:
    """One sentence in business terms: what came in, what was kept out."""
    loaded = [f for f in files if f["status"] == "loaded"]
    failed = sum(f["status"] == "failed" for f in files)
    skipped = sum(f["status"] == "skipped" for f in files)
    total = {c: sum(int(f[c]) for f in loaded) for c in COUNT_COLUMNS}
    return (
        f"{len(loaded):,} new file(s) with {total['rows_read']:,} rows: "
        f"{total['rows_loaded']:,} loaded, {total['rows_replaced']:,} replaced, "
        f"{total['rows_duplicate']:,} duplicate, {total['rows_quarantined']:,} quarantined; "
        f"{failed:,} file(s) rejected, {skipped:,} already loaded."
    )


def stages_section(published: Published, rule_set: str, currency: str) -> Section:
    """Customers per lifecycle stage (rows) and value tier (columns), with revenue in W."""
    columns = ("lifecycle stage", *TIERS, "all tiers", f"revenue W ({currency})")
    numeric = frozenset(columns[1:])
    if published.tiers is None:
        return Section(
            "stages",
            "Lifecycle stage × value tier",
            columns,
            (),
            numeric,
            "customer_tiers was not published",
        )
    tiers = published.tiers.filter(pl.col("rule_set") == rule_set)
    if published.revenue is not None:
        tiers = tiers.join(published.revenue, on="customer_id", how="left")
    else:
        tiers = tiers.with_columns(pl.lit(None, dtype=pl.Float64).alias("revenue"))
    counts = {
        (stage, tier): n
        for stage, tier, n in tiers.group_by("lifecycle_stage", "value_tier").len().iter_rows()
    }
    revenue = dict(tiers.group_by("lifecycle_stage").agg(pl.col("revenue").sum()).iter_rows())
    stages = [*STAGE_ORDER, *sorted({s for s, _ in counts} - set(STAGE_ORDER))]
    rows: list[tuple[Cell, ...]] = []
    for stage in stages:
        per_tier = [counts.get((stage, tier), 0) for tier in TIERS]
        rows.append(
            (stage, *map(count, per_tier), count(sum(per_tier)), amount(revenue.get(stage, 0.0)))
        )
    totals = [sum(counts.get((s, tier), 0) for s in stages) for tier in TIERS]
    all_revenue = sum(v for v in revenue.values() if v is not None) if revenue else None
    rows.append(("all stages", *map(count, totals), count(sum(totals)), amount(all_revenue)))
    return Section(
        key="stages",
        title=f"Lifecycle stage × value tier (rule set {rule_set})",
        columns=columns,
        rows=tuple(rows),
        numeric=numeric,
    )


def _base_row(frame: pl.DataFrame | None) -> dict[str, Any] | None:
    if frame is None:
        return None
    rows = frame.filter(pl.col("group_by") == "base").to_dicts()
    return rows[0] if rows else None


def _active_base(equity: pl.DataFrame | None) -> dict[str, Any] | None:
    """The whole base's equity row, or None when no customer is active (its figures are null)."""
    row = _base_row(equity)
    return row if row and row["customers"] else None


def headline(published: Published, as_of: date, currency: str) -> str:
    """The run's result in one line for the log: equity, customers, churn."""
    figures = business_figures(published.equity, published.churn, currency)
    base = _active_base(published.equity)
    result = (
        f"customer equity {figures['customer equity']} over {figures['customers']} customers"
        if base
        else "no active customer"
    )
    if base and base.get("lifetime_source") == "cap":
        result += f", lifetime capped at {years(base['avg_lifetime_years'])}"
    return f"as of {as_of.isoformat()}, {result}, churn rate {figures['churn rate']}"


def business_figures(
    equity: pl.DataFrame | None, churn: pl.DataFrame | None, currency: str
) -> dict[str, str]:
    """Active customers, customer equity and churn rate of the whole base, formatted."""
    base_equity, base_churn = _active_base(equity), _base_row(churn)
    return {
        "customers": count(base_equity["customers"]) if base_equity else "0",
        "customer equity": money(base_equity["customer_equity"], currency)
        if base_equity
        else money(0.0, currency),
        "churn rate": share(base_churn["churn_rate"]) if base_churn else NOT_AVAILABLE,
    }


def measures_section(published: Published, as_of: date, currency: str) -> Section:
    """The headline figures of the whole base, one per row."""
    equity, churn = _active_base(published.equity), _base_row(published.churn)
    retention = _base_row(published.retention) if equity else None
    rows: list[tuple[Cell, ...]] = []
    if equity:
        rows += [
            ("customer equity (whole base)", money(equity["customer_equity"], currency)),
            ("active customers", count(equity["customers"])),
            ("CLV per customer", money(equity["clv_per_customer"], currency)),
            (
                "lifetime behind the equity",
                f"{years(equity['avg_lifetime_years'])} "
                f"({text(equity.get('lifetime_source'))}: {text(equity.get('lifetime_reason'))})",
            ),
        ]
    else:
        rows.append(("customer equity (whole base)", f"no active customer as of {as_of}"))
    if churn and churn["churn_rate"] is not None:
        lost = f"{churn['customers_lost']:,} of {churn['customers_at_start']:,} customers"
        rows += [
            ("churn rate (whole base)", f"{share(churn['churn_rate'])} ({lost})"),
            ("average lifetime", years(churn["avg_lifetime_years"])),
        ]
    else:
        rows.append(("churn rate (whole base)", "no customer was active a year ago"))
    if retention:
        rows += [
            ("replacements needed per year", decimal(retention["replacements_per_year"])),
            (
                "their acquisition cost per year",
                money(retention["replacement_cost_per_year"], currency),
            ),
            (
                "equity of one point less churn",
                money(retention["equity_per_churn_point"], currency),
            ),
        ]
    return Section(
        "measures",
        f"Customer equity as of {as_of.isoformat()}",
        ("measure", "value"),
        tuple(rows),
        frozenset({"value"}),
    )


def _group_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.sort("group_by", "group_value", nulls_last=True).to_dicts()


def groups_section(published: Published, currency: str) -> Section:
    """Churn, lifetime, CLV and equity per group (whole base, segment, value tier)."""
    columns = (
        "group",
        "value",
        "customers",
        "churn rate",
        "lifetime (years)",
        f"CLV per customer ({currency})",
        f"customer equity ({currency})",
    )
    rows = tuple(
        (
            str(row["group_by"]),
            text(row["group_value"]),
            count(row["customers"]),
            share(row["churn_rate"]),
            decimal(row["avg_lifetime_years"]),
            amount(row["clv_per_customer"]),
            amount(row["customer_equity"]),
        )
        for row in (_group_rows(published.equity) if published.equity is not None else [])
    )
    note = "" if rows else "no active customer: no group to value"
    return Section(
        "groups", "Customer equity per group", columns, rows, frozenset(columns[2:]), note
    )


def retention_section(published: Published, currency: str) -> Section:
    """SPEC §11 per group: replacements, their cost, equity under churn scenarios."""
    columns = (
        "group",
        "value",
        "replacements / year",
        f"acquisition cost / customer ({currency})",
        f"replacement cost / year ({currency})",
        f"equity at r − 10 pts ({currency})",
        f"equity at r − 5 pts ({currency})",
        f"equity at r + 5 pts ({currency})",
        f"one point less churn ({currency})",
    )
    frame = published.retention
    rows = tuple(
        (
            str(row["group_by"]),
            text(row["group_value"]),
            decimal(row["replacements_per_year"]),
            amount(row["acquisition_cost_per_customer"]),
            amount(row["replacement_cost_per_year"]),
            amount(row["equity_churn_minus_10pts"]),
            amount(row["equity_churn_minus_5pts"]),
            amount(row["equity_churn_plus_5pts"]),
            amount(row["equity_per_churn_point"]),
        )
        for row in (_group_rows(frame) if frame is not None else [])
    )
    note = "retention_economics was not published" if frame is None else ""
    return Section(
        "retention",
        "Retention economics (SPEC §11)",
        columns,
        rows,
        frozenset(columns[2:]),
        note,
    )


AUM_TIER_ORDER = ("mass", "affluent", "private_banking")
WEALTH_COLUMNS = ("aum_tier", "suitability_flag", "liquidity_gap", "aum")


def wealth_sections(published: Published, currency: str) -> list[Section]:
    """The wealth view when the run published customer_holdings, else nothing."""
    return [] if published.holdings is None else [wealth_section(published.holdings, currency)]


def wealth_section(holdings: pl.DataFrame, currency: str) -> Section:
    """Customers per AUM tier and suitability (SPEC §10), with their AUM, then all tiers.

    "not judged": unknown risk profile, or nothing held (AUM 0).
    """
    per_tier = (
        holdings.group_by("aum_tier")
        .agg(
            pl.col("suitability_flag").not_().sum().alias("suitable"),
            pl.col("suitability_flag").sum().alias("unsuitable"),
            pl.col("suitability_flag").is_null().sum().alias("not judged"),
            pl.len().alias("customers"),
            pl.col("liquidity_gap").sum().alias("liquidity gap"),
            pl.col("aum").sum().alias("aum"),
        )
        .with_columns(
            pl.col("aum_tier")
            .replace_strict(AUM_TIER_ORDER, range(len(AUM_TIER_ORDER)), default=len(AUM_TIER_ORDER))
            .alias("_order")
        )
        .sort("_order", "aum_tier")
    )
    counts = ("suitable", "unsuitable", "not judged", "customers", "liquidity gap")
    totals = per_tier.select(pl.col(*counts, "aum").sum()).row(0, named=True)
    rows: list[tuple[Cell, ...]] = [
        (text(row["aum_tier"]), *(count(row[c]) for c in counts), amount(row["aum"]))
        for row in per_tier.iter_rows(named=True)
    ]
    rows.append(("all holders", *(count(totals[c]) for c in counts), amount(totals["aum"])))
    columns = ("AUM tier", *counts, f"AUM ({currency})")
    return Section(
        "wealth",
        "Wealth view: customers by AUM tier and suitability (SPEC §10)",
        columns,
        tuple(rows),
        frozenset(columns[1:]),
        "not judged: unknown risk profile, or nothing held (AUM 0)",
    )


def outputs_section(published: Published) -> Section:
    rows = tuple(
        (table, count(published.row_counts.get(table)), Link(folder, Path(folder)))
        for table, folder in published.partitions.items()
    )
    return Section(
        "outputs",
        "Published partitions (Hive-partitioned Parquet)",
        ("table", "rows", "partition"),
        rows,
        frozenset({"rows"}),
    )


# --- rendering --------------------------------------------------------------------------------

# Characters that start Markdown (or inline HTML) constructs; a backslash makes each literal.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~:&@^$=\"'])")
_BARE_WWW = re.compile(r"(?i)\b(www)\.")


def escape_markdown(value: str) -> str:
    """`value` as literal text in a Markdown table cell: no row split, no link, no HTML.

    Newlines become spaces (a cell is one line); `www.` loses its autolink by an
    escaped dot, `https://` by an escaped colon.
    """
    one_line = " ".join(value.splitlines())
    return _BARE_WWW.sub(r"\1\\.", _MARKDOWN_SPECIAL.sub(r"\\\1", one_line))


def _markdown_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f"[{escape_markdown(cell.text)}]({cell.target.as_uri()})"
    return escape_markdown(cell)


def to_markdown(section: Section, heading: str = "##") -> str:
    lines = [f"{heading} {escape_markdown(section.title)}", ""]
    if section.note:
        lines += [escape_markdown(section.note), ""]
    if section.rows:
        align = ["---:" if c in section.numeric else "---" for c in section.columns]
        lines += [
            "| " + " | ".join(escape_markdown(c) for c in section.columns) + " |",
            "|" + "|".join(align) + "|",
            *("| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in section.rows),
        ]
    return "\n".join(lines)


def to_records(section: Section) -> list[dict[str, str]]:
    """Rows as dicts for a Prefect table artifact (the UI shows cells as plain text)."""
    return [
        {column: str(cell) for column, cell in zip(section.columns, row, strict=True)}
        for row in section.rows
    ]


def print_summary(summary: RunSummary, console: Any) -> None:
    """Every section as a rich table (the terminal shows text literally: nothing to escape)."""
    from rich.markup import escape
    from rich.table import Table

    console.print(f"\n[bold]as of {summary.as_of.isoformat()}[/bold]  (run {summary.run_id})")
    for section in summary.sections:
        table = Table(
            title=escape(section.title), title_justify="left", caption=escape(section.note) or None
        )
        for column in section.columns:
            table.add_column(
                escape(column), justify="right" if column in section.numeric else "left"
            )
        for row in section.rows:
            table.add_row(*(escape(str(cell)) for cell in row))
        if section.rows:
            console.print(table)
        else:
            console.print(f"[bold]{escape(section.title)}[/bold]: {escape(section.note)}")

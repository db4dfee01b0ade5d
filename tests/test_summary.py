"""The run summary as a pure function of published frames, and its Markdown escaping."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import polars as pl
from markdown_it import MarkdownIt

from customer_equity.summary import Published, escape_markdown, run_summary, to_markdown

AS_OF = date(2025, 12, 31)
EQUITY_COLUMNS = {
    "group_by": pl.String, "group_value": pl.String, "customers": pl.Int64,
    "churn_rate": pl.Float64, "avg_lifetime_years": pl.Float64,
    "avg_annual_contribution": pl.Float64, "discount_rate": pl.Float64, "pvifa": pl.Float64,
    "clv_per_customer": pl.Float64, "customer_equity": pl.Float64,
}  # fmt: skip


def _published(equity_rows: list[dict[str, object]]) -> Published:
    churn = pl.DataFrame(
        {"group_by": ["base"], "group_value": ["all"], "customers_at_start": [0],
         "customers_lost": [0], "churn_rate": [None], "avg_lifetime_years": [None]},
        schema_overrides={"churn_rate": pl.Float64, "avg_lifetime_years": pl.Float64},
    )  # fmt: skip
    return Published(
        tiers=pl.DataFrame(
            {
                "customer_id": ["C1"],
                "rule_set": ["clv"],
                "value_tier": ["general"],
                "lifecycle_stage": ["termination"],
            }
        ),
        revenue=pl.DataFrame({"customer_id": ["C1"], "revenue": [0.0]}),
        churn=churn,
        equity=pl.DataFrame(equity_rows, schema=EQUITY_COLUMNS),
        retention=None,
        row_counts={},
        partitions={},
    )


def test_no_active_customer_is_a_result_not_a_crash() -> None:
    """Issue 10: the base row of customer_equity has 0 customers and null figures."""
    base = dict.fromkeys(EQUITY_COLUMNS) | {
        "group_by": "base",
        "group_value": "all",
        "customers": 0,
    }
    summary = run_summary(
        _published([base]), [], as_of=AS_OF, run_id="r", rule_set="clv", currency="USD"
    )
    measures = dict(summary.section("measures").rows)
    assert measures["customer equity (whole base)"] == "no active customer as of 2025-12-31"
    assert measures["churn rate (whole base)"] == "no customer was active a year ago"
    assert "no active customer" in summary.headline
    assert summary.section("retention").note == "retention_economics was not published"


def test_escaped_text_renders_literally_in_a_table_cell() -> None:
    hostile = "a|b [x](https://evil.example) <img src=x> *bold* www.evil.example `code`\nline"
    html = (
        MarkdownIt("commonmark")
        .enable("table")
        .render(f"| h |\n|---|\n| {escape_markdown(hostile)} |\n")
    )
    assert "<a " not in html and "<img" not in html and "<em>" not in html
    assert html.count("<td>") == 1
    assert (
        "a|b [x](https://evil.example) &lt;img src=x&gt; *bold* www.evil.example `code` line"
        in html
    )


def test_markdown_tables_keep_column_count_and_order() -> None:
    row = dict.fromkeys(EQUITY_COLUMNS) | {
        "group_by": "segment", "group_value": "x|y", "customers": 1_234, "customer_equity": 1e6,
        "clv_per_customer": 810.37,
    }  # fmt: skip
    base = row | {"group_by": "base", "group_value": "all"}
    summary = run_summary(
        _published([row, base]), [], as_of=AS_OF, run_id="r", rule_set="clv", currency="USD"
    )
    groups = summary.section("groups")
    assert [r[0] for r in groups.rows] == ["base", "segment"]  # base first, as printed
    lines = to_markdown(groups).splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert {line.count(" | ") for line in table if "---" not in line} == {len(groups.columns) - 1}
    assert "1,234" in table[-1] and "1,000,000" in table[-1] and "810" in table[-1]


def test_the_wealth_section_counts_holders_per_aum_tier_and_suitability() -> None:
    """Five holders, counted by hand: mass has one suitable (gap), one unsuitable and one
    not judged (AUM 300 in all); affluent one unsuitable (gap, 600,000); one tier the
    configuration knows but the order does not ("ultra") comes after the known ones."""
    holdings = pl.DataFrame(
        {
            "aum_tier": ["affluent", "mass", "mass", "mass", "ultra"],
            "suitability_flag": [True, False, True, None, False],
            "liquidity_gap": [True, True, False, None, False],
            "aum": [600_000.0, 100.0, 150.0, 50.0, 9e6],
        }
    )
    base = dict.fromkeys(EQUITY_COLUMNS) | {"group_by": "base", "group_value": "all"}
    published = replace(_published([base]), holdings=holdings)
    summary = run_summary(published, [], as_of=AS_OF, run_id="r", rule_set="clv", currency="USD")
    wealth = summary.section("wealth")
    assert wealth.columns[-1] == "AUM (USD)"
    assert wealth.rows == (
        ("mass", "1", "1", "1", "3", "1", "300"),
        ("affluent", "0", "1", "0", "1", "1", "600,000"),
        ("ultra", "1", "0", "0", "1", "0", "9,000,000"),
        ("all holders", "2", "2", "1", "5", "2", "9,600,300"),
    )
    keys = [s.key for s in summary.sections]
    assert keys.index("wealth") == keys.index("retention") + 1
    # Without customer_holdings (no holdings extract) there is no wealth section at all.
    plain = run_summary(
        _published([base]), [], as_of=AS_OF, run_id="r", rule_set="clv", currency="USD"
    )
    assert "wealth" not in [s.key for s in plain.sections]

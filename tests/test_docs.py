"""The committed reference docs are the ones the code generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from customer_equity.docs import GENERATED_DOCS

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("name", sorted(GENERATED_DOCS))
def test_doc_is_up_to_date(name: str) -> None:
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == GENERATED_DOCS[name]() + "\n", f"run `customer-equity docs` ({name})"


def test_every_output_table_and_settings_section_is_documented() -> None:
    dictionary = GENERATED_DOCS["data_dictionary.md"]()
    for table in (
        "customer_metrics",
        "customer_value",
        "customer_tiers",
        "customer_equity",
        "cohort_retention",
        "churn",
        "model_fit",
        "data_quality",
        "customer_holdings",
        "holdings_mix",
        "holdings",
    ):
        assert f"### {table}" in dictionary
    reference = GENERATED_DOCS["configuration.md"]()
    for section in (
        "[paths]",
        "[model]",
        "[tiers]",
        "[tiers.rule_sets.<name>]",
        "[lifecycle]",
        "[holdings]",
        "[holdings.aum_tiers]",
        "[extracts.holdings]",
    ):
        assert f"`{section}`" in reference


def _row_of(document: str, table: str, column: str) -> str:
    """The data dictionary row of `column` in the section of `table`."""
    section = document.split(f"### {table}\n", 1)[1].split("\n### ", 1)[0]
    (row,) = [line for line in section.splitlines() if line.startswith(f"| `{column}` |")]
    return row


def test_the_words_match_the_code() -> None:
    """Issue 9.7: a purchase is amount ≥ 0 (zero-value orders count, transforms.metrics)."""
    dictionary = GENERATED_DOCS["data_dictionary.md"]()
    for column in ("first_purchase_date", "last_purchase_date"):
        row = _row_of(dictionary, "customer_metrics", column)
        assert "amount ≥ 0" in row and "amount > 0" not in row, row


def test_the_monthly_discounting_convention_is_documented() -> None:
    """Issue 9.7: (1 + i)^(m/12) per month of 365.25/12 days, and the gap to lifetimes."""
    reference = GENERATED_DOCS["configuration.md"]()
    dictionary = GENERATED_DOCS["data_dictionary.md"]()
    clv_row = _row_of(dictionary, "customer_value", "clv_probabilistic")
    for text in (reference, clv_row):
        assert "(1 + i)^(m/12)" in text and "365.25/12" in text, text
    assert "4.345" in reference and "0.056 %" in reference

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
    ):
        assert f"### {table}" in dictionary
    reference = GENERATED_DOCS["configuration.md"]()
    for section in ("[paths]", "[model]", "[tiers]", "[tiers.rule_sets.<name>]", "[lifecycle]"):
        assert f"`{section}`" in reference

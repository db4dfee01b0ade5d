"""The data dictionary, rendered from the pandera schemas so it is never written twice."""

from __future__ import annotations

import pandera.polars as pa

from customer_equity.schemas.inputs import input_schema
from customer_equity.schemas.outputs import OUTPUT_SCHEMAS
from customer_equity.settings import EXTRACT_KINDS


def _check_names(column: pa.Column) -> str:
    return ", ".join(check.name or "" for check in column.checks) or ""


def _table_section(schema: pa.DataFrameSchema, heading: str) -> list[str]:
    key = ", ".join(schema.metadata["key"])
    lines = [
        f"### {heading}",
        "",
        schema.description or "",
        "",
        f"Key: `{key}`. Table checks: "
        + (", ".join(f"`{check.name}`" for check in schema.checks) or "none")
        + ".",
        "",
        "| column | type | nullable | description | checks |",
        "|---|---|---|---|---|",
    ]
    for name, column in schema.columns.items():
        lines.append(
            f"| `{name}` | {column.dtype} | {'yes' if column.nullable else 'no'} "
            f"| {column.description or ''} | {_check_names(column)} |"
        )
    return [*lines, ""]


def data_dictionary() -> str:
    lines = [
        "# Data dictionary",
        "",
        "Generated from `schemas/` by `customer-equity docs`; do not edit by hand.",
        "Money is DOUBLE in the base currency; dates are DATE; every output table is",
        "Hive-partitioned by `as_of_date=YYYY-MM-DD` (the key is in the folder name).",
        "",
        "## Inputs (extracts, SPEC §2)",
        "",
        "A check's name is the quarantine reason of a row that fails it; a missing",
        "required value is quarantined as `missing_<column>`.",
        "",
    ]
    for kind in EXTRACT_KINDS:
        lines += _table_section(input_schema(kind), kind)
    lines += ["## Outputs (Parquet lake, SPEC §9)", ""]
    for name, schema in OUTPUT_SCHEMAS.items():
        lines += _table_section(schema, name)
    return "\n".join(lines)

"""The output schemas of SPEC §9 on their own: a valid row passes, every check broken fails.

One valid row per table is built from the declared dtypes (an allowed value
where a column has a list of them) with the few values the cross-column
rules need; each check then gets a second row built to break it, and must
name that row. `conform` is what every write goes through: cast, order,
validate.
"""

from __future__ import annotations

from datetime import date

import pandera.polars as pa
import polars as pl
import pytest
from pandera.errors import SchemaErrors

from customer_equity.schemas.outputs import OUTPUT_SCHEMAS, conform, polars_schema
from customer_equity.transforms.maximum_likelihood import GRADIENT_TOLERANCE

SAMPLE: dict[type[pl.DataType], object] = {
    pl.String: "x",
    pl.Int64: 1,
    pl.Float64: 0.5,
    pl.Boolean: False,
    pl.Date: date(2025, 12, 31),
}
# Values the cross-column rules need in an otherwise generic row.
VALID_OVERRIDES: dict[str, dict[str, object]] = {
    "customer_metrics": {"lifecycle_stage": "growth"},  # not churned, so not termination
    # read + released = 1 loaded + 1 replaced + 1 duplicate + 1 quarantined
    "data_quality": {"rows_read": 4, "rows_released": 0, "error": None},
    "customer_holdings": {
        "holdings_risk_level": 3.0,
        "tolerated_risk_level": 3,
        "unsuitable_share": 0.0,  # suitable, so not flagged
    },
    "holdings_mix": {"share": 1.0},  # one bucket holds the customer's whole AUM
}
# A row that breaks each cross-column rule, as changes to the valid row.
ROW_RULE_BREAKERS: dict[str, dict[str, object]] = {
    "last_on_or_after_first": {"first_purchase_date": date(2026, 1, 1)},
    "recency_within_age": {"recency_days": 2},
    "prospect_has_no_activity": {"is_prospect": True, "lifecycle_stage": "potential"},
    "last_purchase_is_last_activity": {"last_activity_date": date(2025, 12, 30)},
    "prospect_stage": {
        "is_prospect": True,
        "last_activity_date": None,
        "lifecycle_stage": "growth",
    },
    "churned_is_termination": {"churned": True},
    "lost_within_base": {"customers_lost": 2},
    "active_within_cohort": {"active_customers": 2},
    "rows_accounted": {"rows_read": 5},
    "error_iff_failed": {"error": "truncated file"},
    "unprofitable_is_general": {"unprofitable": True, "value_tier": "core"},
    "replacements_within_base": {"replacements_per_year": 2.0},  # of 1 customer
    "flag_iff_unsuitable": {"suitability_flag": True},
    "gap_iff_below_minimum": {"liquidity_gap": True},  # liquid share 0.5, minimum 0.5
    "largest_share_within_herfindahl": {"largest_product_share": 1.0},  # 1² > 0.5
    "products_hold_the_classes": {"asset_classes": 2},  # in 1 product
    "shares_add_up_to_one": {"share": 0.5},
}
# A duplicated key also doubles a sum taken over that key.
SUMS_OVER_THE_KEY = {"shares_add_up_to_one"}
TABLES = sorted(OUTPUT_SCHEMAS)


def valid_row(table: str) -> dict[str, object]:
    row = {}
    for name, column in OUTPUT_SCHEMAS[table].columns.items():
        allowed = [check.statistics["allowed_values"] for check in column.checks if _isin(check)]
        row[name] = allowed[0][0] if allowed else SAMPLE[column.dtype.type]
    return {**row, **VALID_OVERRIDES.get(table, {})}


def _isin(check: pa.Check) -> bool:
    return check.name == "isin"


def rows(table: str, *changed: dict[str, object]) -> pl.DataFrame:
    """The valid row of `table`, then one row per change (each with its own key)."""
    key = OUTPUT_SCHEMAS[table].metadata["key"]
    valid = valid_row(table)
    frames = [valid]
    for number, change in enumerate(changed, start=1):
        unique_key = {  # columns with a list of allowed values keep theirs
            column: f"key {number}" if polars_schema(table)[column] == pl.String else number + 1
            for column in key
            if not any(_isin(check) for check in OUTPUT_SCHEMAS[table].columns[column].checks)
        }
        frames.append({**valid, **unique_key, **change})
    return pl.DataFrame(frames, schema=polars_schema(table))


def failures(table: str, frame: pl.DataFrame) -> set[tuple[str, int | None]]:
    """(check, row index) of every failure; empty when the frame is valid."""
    try:
        OUTPUT_SCHEMAS[table].validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases.select("check", pl.col("index").cast(pl.Int64))
        return set(cases.rows())
    return set()


def column_checks() -> list[tuple[str, str, pa.Check]]:
    return [
        (table, name, check)
        for table in TABLES
        for name, column in OUTPUT_SCHEMAS[table].columns.items()
        for check in column.checks
    ]


def breaking_value(check: pa.Check) -> object:
    """A value outside what a built-in column check allows."""
    statistics = check.statistics
    if check.name == "in_range":
        return statistics["max_value"] + 0.5
    if check.name == "greater_than_or_equal_to":
        return statistics["min_value"] - 1
    if check.name == "isin":
        return "not one of them"
    raise AssertionError(f"no breaking value for {check.name}: add one")


@pytest.mark.parametrize("table", TABLES)
def test_a_valid_row_passes_every_check(table: str) -> None:
    assert failures(table, rows(table)) == set()
    assert conform(table, rows(table)).height == 1


@pytest.mark.parametrize(
    ("table", "column", "check"),
    column_checks(),
    ids=[f"{table}.{column}:{check.name}" for table, column, check in column_checks()],
)
def test_each_column_check_fails_on_the_row_built_to_break_it(
    table: str, column: str, check: pa.Check
) -> None:
    found = failures(table, rows(table, {column: breaking_value(check)}))
    # A negative count can break a cross-column rule as well (lost ≤ at start): only row 1.
    assert (check.error, 1) in found
    assert {index for _, index in found} == {1}


@pytest.mark.parametrize(
    ("table", "rule"),
    [(table, check.name) for table in TABLES for check in OUTPUT_SCHEMAS[table].checks],
)
def test_each_cross_column_rule_fails_on_the_row_built_to_break_it(table: str, rule: str) -> None:
    assert rule in ROW_RULE_BREAKERS, f"{table}.{rule} has no row that breaks it: add one"
    assert failures(table, rows(table, ROW_RULE_BREAKERS[rule])) == {(rule, 1)}


@pytest.mark.parametrize("table", TABLES)
def test_the_key_is_unique(table: str) -> None:
    twice = pl.concat([rows(table), rows(table)])
    found = failures(table, twice)
    checks = {check for check, _ in found}
    assert "multiple_fields_uniqueness" in checks
    assert checks - {"multiple_fields_uniqueness"} <= SUMS_OVER_THE_KEY
    assert {index for _, index in found} == {0, 1}


@pytest.mark.parametrize(
    ("table", "column"),
    [
        (table, name)
        for table in TABLES
        for name, column in OUTPUT_SCHEMAS[table].columns.items()
        if not column.nullable
    ],
)
def test_a_null_in_a_non_nullable_column_fails(table: str, column: str) -> None:
    found = failures(table, rows(table, {column: None}))
    assert ("not_nullable", 1) in found


def test_an_extra_column_fails_the_strict_schema() -> None:
    extra = rows("churn").with_columns(pl.lit(1).alias("as_of_date"))
    found = failures("churn", extra)
    assert {check for check, _ in found} == {"column_in_schema"}


def test_conform_casts_and_orders_the_columns_as_declared_and_validates() -> None:
    declared = list(polars_schema("churn"))
    given = rows("churn").with_columns(
        pl.col("churn_rate").cast(pl.Float32),
        pl.col("customers_at_start").cast(pl.Int32),
    )
    shuffled = given.select(reversed(declared))
    shaped = conform("churn", shuffled)
    assert shaped.columns == declared
    assert shaped.schema["churn_rate"] == pl.Float64
    assert shaped.schema["customers_at_start"] == pl.Int64
    assert shaped.row(0, named=True) == valid_row("churn")
    # Columns the schema does not declare are dropped, not published.
    assert conform("churn", given.with_columns(pl.lit(1).alias("debug"))).columns == declared
    with pytest.raises(SchemaErrors, match="lost_within_base"):
        conform("churn", rows("churn", ROW_RULE_BREAKERS["lost_within_base"]))
    with pytest.raises(pl.exceptions.ColumnNotFoundError, match="churn_rate"):
        conform("churn", given.drop("churn_rate"))


def test_model_fit_describes_converged_as_the_fitting_code_decides_it() -> None:
    """`maximise` calls a fit converged on its gradient and bounds, not the optimiser's flag."""
    described = OUTPUT_SCHEMAS["model_fit"].columns["converged"].description
    assert f"at most {GRADIENT_TOLERANCE:g}" in described
    assert "no parameter on its search bound" in described
    assert "optimiser reported success" not in described

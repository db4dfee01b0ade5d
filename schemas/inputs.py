"""Pandera schemas of the extract kinds (SPEC §2, §10), as staged by `sql/staging/`.

Each schema is the one description of its table: the warehouse DDL, the
staging contract, the quarantine reasons and the data dictionary are all
derived from it. Schema metadata carries what pandera has no slot for:
`key` (the columns that identify a row across extracts) and, per column,
`required` (must be present in the file) and `typed` (cast from text in
staging, so a value that does not parse is a quarantine reason).

A check's name is the quarantine reason a failing row gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandera.polars as pa
import polars as pl

from customer_equity.settings import ExtractKind, Holdings

COST_TYPES = ("acquisition", "development", "retention", "service", "rebate")
SERVE_COST_TYPES = ("development", "retention", "service", "rebate")
CUSTOMER_STATUSES = ("active", "closed")
LIQUIDITY_LEVELS = ("high", "medium", "low")
RISK_LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)
RAW_PREFIX = "_raw_"
# Flag column the ingest adds when unknown customers are quarantined (looked up in DuckDB).
KNOWN_CUSTOMER = "_customer_known"
# Flag column the ingest adds to wallets: the period overlaps one loaded before it.
WALLET_OVERLAP = "_period_overlaps"
# Longest text value a row may carry in a used column (the csv module's historic field limit);
# longer cells in columns the pipeline ignores do not matter.
MAX_TEXT_CHARS = 131_072
DEFAULT_HOLDINGS = Holdings()  # frozen: one shared default is safe


@dataclass(frozen=True)
class InputRules:
    """The configured, run-dependent limits that input rows are checked against."""

    base_currency: str = "USD"
    max_abs_amount: float = float("inf")
    latest_allowed_date: date = date.max
    earliest_allowed_date: date = date.min
    check_known_customers: bool = False
    check_wallet_overlaps: bool = False
    holdings: Holdings = DEFAULT_HOLDINGS


def _column(
    dtype: type[pl.DataType],
    description: str,
    *,
    required: bool = False,
    checks: list[pa.Check] | None = None,
) -> pa.Column:
    typed = dtype is not pl.String
    return pa.Column(
        dtype,
        nullable=not required,
        required=True,  # staging adds absent optional columns as nulls
        checks=checks,
        description=description,
        metadata={"required": required, "typed": typed},
    )


def _parseable(column: str, dtype: type[pl.DataType]) -> pa.Check:
    """A non-blank source value that staging could not cast is a bad row, not a null.

    `nan` and `inf` cast to DOUBLE but are no amount: they count as unparseable.
    """
    raw = f"{RAW_PREFIX}{column}"
    parsed = pl.col(column).is_not_null()
    if dtype == pl.Float64:
        parsed = parsed & pl.col(column).is_finite()
    return pa.Check(
        lambda data: data.lazyframe.select(parsed | pl.col(raw).is_null()),
        name=f"unparseable_{column}",
        description=f"{column} must parse as its type",
    )


def _not_too_long(column: str) -> pa.Check:
    return pa.Check(
        lambda data: data.lazyframe.select(
            pl.col(column).str.len_chars().fill_null(0) <= MAX_TEXT_CHARS
        ),
        name=f"{column}_too_long",
        description=f"{column} at most {MAX_TEXT_CHARS:,} characters",
    )


def _not_before(column: str, earliest: date) -> pa.Check:
    return pa.Check(
        lambda data: data.lazyframe.select(pl.col(column) >= earliest),
        name=f"{column}_before_earliest",
        description=f"{column} on or after the configured earliest date",
    )


def _not_after(column: str, latest: date) -> pa.Check:
    return pa.Check(
        lambda data: data.lazyframe.select(pl.col(column) <= latest),
        name=f"{column}_in_future",
        description=f"{column} no later than the run date plus the tolerance",
    )


def _at_least_zero(name: str) -> pa.Check:
    return pa.Check(
        lambda data: data.lazyframe.select(pl.col(data.key) >= 0), name=name, description=">= 0"
    )


def _within(bound: float, name: str) -> pa.Check:
    """|value| ≤ bound; nan and inf are left to the unparseable check (one reason per fault)."""
    return pa.Check(
        lambda data: data.lazyframe.select(
            (pl.col(data.key).abs() <= bound) | ~pl.col(data.key).is_finite()
        ),
        name=name,
        description=f"absolute value at most {bound:g}",
    )


def _one_of(values: tuple[str, ...] | list[str], name: str) -> pa.Check:
    allowed = list(values)
    return pa.Check(
        lambda data: data.lazyframe.select(pl.col(data.key).is_in(allowed)),
        name=name,
        description=f"one of {allowed}",
    )


def _known_customer(check: bool) -> list[pa.Check]:
    if not check:
        return []
    return [
        pa.Check(
            lambda data: data.lazyframe.select(pl.col(KNOWN_CUSTOMER)),
            name="unknown_customer",
            description="customer_id present in the customers extract",
        )
    ]


def _schema(
    kind: ExtractKind,
    key: tuple[str, ...],
    columns: dict[str, pa.Column],
    checks: list[pa.Check],
    description: str,
    rules: InputRules,
    *,
    row_key_when_null: bool = False,
) -> pa.DataFrameSchema:
    """The schema of one kind; every date column gets the earliest-date bound.

    `row_key_when_null`: a row whose key is null is its own version (never a
    correction or a duplicate of another row).
    """
    typed = {name: col.dtype.type for name, col in columns.items() if col.metadata["typed"]}
    dates = [name for name, col in columns.items() if col.dtype.type == pl.Date]
    text = [name for name, col in columns.items() if not col.metadata["typed"]]
    return pa.DataFrameSchema(
        columns,
        checks=[_parseable(name, dtype) for name, dtype in typed.items()]
        + [_not_too_long(name) for name in text]
        + [_not_before(name, rules.earliest_allowed_date) for name in dates]
        + checks,
        name=kind,
        description=description,
        metadata={"key": key, "row_key_when_null": row_key_when_null},
        strict=False,
    )


def transactions_schema(rules: InputRules) -> pa.DataFrameSchema:
    amount_bound = _within(rules.max_abs_amount, "amount_out_of_bounds")
    return _schema(
        "transactions",
        ("transaction_id",),
        {
            "transaction_id": _column(pl.String, "order or order-line id", required=True),
            "customer_id": _column(
                pl.String,
                "buying customer",
                required=True,
                checks=_known_customer(rules.check_known_customers),
            ),
            "transaction_date": _column(
                pl.Date,
                "day of the transaction",
                required=True,
                checks=[_not_after("transaction_date", rules.latest_allowed_date)],
            ),
            "amount": _column(
                pl.Float64,
                "net revenue in base currency; negative = return",
                required=True,
                checks=[amount_bound],
            ),
            "cost": _column(
                pl.Float64,
                "direct cost of goods; null = configured margin rate applies",
                checks=[_within(rules.max_abs_amount, "cost_out_of_bounds")],
            ),
            "quantity": _column(pl.Float64, "units"),
            "category": _column(pl.String, "product category (enables cross-sell)"),
            "channel": _column(pl.String, "sales channel"),
            "discount": _column(
                pl.Float64,
                "price concession already deducted from amount",
                checks=[
                    _at_least_zero("negative_discount"),
                    _within(rules.max_abs_amount, "discount_out_of_bounds"),
                ],
            ),
            "currency": _column(
                pl.String,
                "ISO currency; null = base currency",
                checks=[_one_of([rules.base_currency], "non_base_currency")],
            ),
        },
        [],
        "One row per order or order line.",
        rules,
    )


def customers_schema(rules: InputRules) -> pa.DataFrameSchema:
    return _schema(
        "customers",
        ("customer_id",),
        {
            "customer_id": _column(pl.String, "customer key", required=True),
            "created_date": _column(pl.Date, "first contact"),
            "acquisition_channel": _column(pl.String, "how the customer was acquired"),
            "segment": _column(pl.String, "business segment (a grouping for churn and CLV)"),
            "region": _column(pl.String, "region"),
            "referred_by": _column(pl.String, "customer_id of the referrer"),
            "status": _column(
                pl.String,
                "active or closed",
                checks=[_one_of(CUSTOMER_STATUSES, "unknown_status")],
            ),
            "closed_date": _column(pl.Date, "date the relationship was closed"),
            "risk_profile": _column(pl.String, "e.g. conservative/steady/balanced/aggressive"),
            "aum": _column(pl.Float64, "assets under management (banks)"),
        },
        [
            pa.Check(
                lambda data: data.lazyframe.select(
                    pl.col("closed_date").is_null()
                    | pl.col("created_date").is_null()
                    | (pl.col("closed_date") >= pl.col("created_date"))
                ),
                name="closed_before_created",
            )
        ],
        "One row per known customer, buyers and prospects.",
        rules,
    )


def wallets_schema(rules: InputRules) -> pa.DataFrameSchema:
    return _schema(
        "wallets",
        ("customer_id", "period_start"),
        {
            "customer_id": _column(pl.String, "customer key", required=True),
            "period_start": _column(pl.Date, "first day of the period", required=True),
            "period_end": _column(pl.Date, "last day of the period", required=True),
            "total_purchases": _column(
                pl.Float64,
                "customer's purchases in our category from all suppliers in the period",
                required=True,
                checks=[
                    _at_least_zero("negative_total_purchases"),
                    _within(rules.max_abs_amount * 1000, "total_purchases_out_of_bounds"),
                ],
            ),
        },
        [
            pa.Check(
                lambda data: data.lazyframe.select(pl.col("period_end") >= pl.col("period_start")),
                name="period_end_before_start",
            ),
            *(
                [
                    pa.Check(
                        lambda data: data.lazyframe.select(~pl.col(WALLET_OVERLAP)),
                        name="overlapping_wallet_period",
                        description="a period of the customer loaded before overlaps it",
                    )
                ]
                if rules.check_wallet_overlaps
                else []
            ),
        ],
        "Customer's total business (share-of-wallet denominator) per period.",
        rules,
    )


def costs_schema(rules: InputRules) -> pa.DataFrameSchema:
    return _schema(
        "costs",
        ("cost_id",),
        {
            "cost_id": _column(
                pl.String,
                "the source's id of a cost, when it can correct one (then the key); "
                "without it every row counts",
            ),
            "customer_id": _column(
                pl.String,
                "customer key",
                required=True,
                checks=_known_customer(rules.check_known_customers),
            ),
            "cost_date": _column(
                pl.Date,
                "day the cost was incurred",
                required=True,
                checks=[_not_after("cost_date", rules.latest_allowed_date)],
            ),
            "cost_type": _column(
                pl.String,
                "acquisition, development, retention, service or rebate",
                required=True,
                checks=[_one_of(COST_TYPES, "unknown_cost_type")],
            ),
            "amount": _column(
                pl.Float64,
                "money spent on the customer",
                required=True,
                checks=[_within(rules.max_abs_amount, "amount_out_of_bounds")],
            ),
        },
        [],
        "Money spent on a customer (SPEC §2 costs); several on one day all count.",
        rules,
        row_key_when_null=True,
    )


def holdings_schema(rules: InputRules) -> pa.DataFrameSchema:
    """SPEC §10: one balance per customer, product and day; liabilities only where configured."""
    liability_classes = list(rules.holdings.liability_classes)
    return _schema(
        "holdings",
        ("customer_id", "product_id", "balance_date"),
        {
            "customer_id": _column(
                pl.String,
                "customer key",
                required=True,
                checks=_known_customer(rules.check_known_customers),
            ),
            "balance_date": _column(
                pl.Date,
                "day the balance was taken",
                required=True,
                checks=[_not_after("balance_date", rules.latest_allowed_date)],
            ),
            "product_id": _column(pl.String, "product or account held", required=True),
            "asset_class": _column(
                pl.String,
                "one of the configured asset classes (holdings.asset_classes), lower case",
                required=True,
                checks=[_one_of(rules.holdings.asset_classes, "unknown_asset_class")],
            ),
            "balance": _column(
                pl.Float64,
                "market value in base currency; negative only in a liability class",
                required=True,
                checks=[_within(rules.max_abs_amount * 1000, "balance_out_of_bounds")],
            ),
            "liquidity": _column(
                pl.String,
                "high, medium or low; null = the asset class's (holdings.class_liquidity)",
                checks=[_one_of(LIQUIDITY_LEVELS, "unknown_liquidity")],
            ),
            "risk_level": _column(
                pl.Float64,
                "product risk level 1–5 (R1–R5; an `R` prefix is read); null = the class's",
                checks=[_one_of(RISK_LEVELS, "risk_level_out_of_range")],
            ),
            "goal": _column(pl.String, "investment goal (retirement, education, …), lower case"),
        },
        [
            pa.Check(
                lambda data: data.lazyframe.select(
                    (pl.col("balance") >= 0)
                    | pl.col("asset_class").is_in(liability_classes)
                    | ~pl.col("balance").is_finite()
                ),
                name="negative_balance",
                description="negative balances only in holdings.liability_classes",
            )
        ],
        "Balance per customer, product and day: what the customer holds with us (SPEC §10).",
        rules,
    )


INPUT_SCHEMAS = {
    "transactions": transactions_schema,
    "customers": customers_schema,
    "wallets": wallets_schema,
    "costs": costs_schema,
    "holdings": holdings_schema,
}


def input_schema(kind: ExtractKind, rules: InputRules | None = None) -> pa.DataFrameSchema:
    """The schema of `kind`; without rules, only the run-independent checks bind."""
    return INPUT_SCHEMAS[kind](rules or InputRules())


def key_columns(schema: pa.DataFrameSchema) -> tuple[str, ...]:
    return tuple(schema.metadata["key"])


def row_key_when_null(schema: pa.DataFrameSchema) -> bool:
    return bool(schema.metadata.get("row_key_when_null"))


# Kinds whose customer_id is checked against the customers extract (unknown_customers).
CUSTOMER_CHECKED_KINDS = ("transactions", "costs", "holdings")


def releasable_reasons(kind: ExtractKind) -> tuple[str, ...]:
    """Quarantine reasons of `kind` that can clear later (SPEC §2 "Quarantine is not forever").

    The customer may arrive in a later customers extract; a future date stops
    being one. Rows held only for these are re-checked by every run.
    """
    rules = InputRules(check_known_customers=kind in CUSTOMER_CHECKED_KINDS)
    schema = input_schema(kind, rules)
    names = [check.name for check in schema.checks] + [
        check.name for column in schema.columns.values() for check in column.checks
    ]
    return tuple(
        name for name in names if name == "unknown_customer" or name.endswith("_in_future")
    )


def required_columns(schema: pa.DataFrameSchema) -> list[str]:
    return [name for name, col in schema.columns.items() if col.metadata["required"]]


def typed_columns(schema: pa.DataFrameSchema) -> list[str]:
    return [name for name, col in schema.columns.items() if col.metadata["typed"]]

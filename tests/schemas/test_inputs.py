"""The input schemas of SPEC §2 on their own: a staged row that passes, and every check broken.

A staged frame is what `sql/staging/` hands to validation: the canonical
columns, typed, plus the source text of each typed column (`_raw_<column>`),
so that a value that does not parse is told apart from one that is absent.
Each test frame has two rows, a valid one and the same row with one fault:
the check must name the second row and only it (its name is the row's
quarantine reason).
"""

from __future__ import annotations

from datetime import date

import pandera.polars as pa
import polars as pl
import pytest
from pandera.errors import SchemaErrors

from customer_equity.schemas.inputs import (
    COST_TYPES,
    KNOWN_CUSTOMER,
    MAX_TEXT_CHARS,
    RAW_PREFIX,
    SERVE_COST_TYPES,
    WALLET_OVERLAP,
    InputRules,
    input_schema,
    key_columns,
    required_columns,
    typed_columns,
)
from customer_equity.settings import EXTRACT_KINDS

RULES = InputRules(
    base_currency="USD",
    max_abs_amount=1_000.0,
    latest_allowed_date=date(2025, 12, 31),
    earliest_allowed_date=date(2000, 1, 1),
    check_known_customers=True,
    check_wallet_overlaps=True,
)
BEFORE_EARLIEST = date(1999, 12, 31)
TOO_LONG = "x" * (MAX_TEXT_CHARS + 1)

VALID: dict[str, dict[str, object]] = {
    "transactions": {
        "transaction_id": "T1",
        "customer_id": "C1",
        "transaction_date": date(2025, 12, 30),
        "amount": 12.5,
        "cost": 7.0,
        "quantity": 1.0,
        "category": "software",
        "channel": "web",
        "discount": 0.5,
        "currency": "USD",
        KNOWN_CUSTOMER: True,  # the ingest's look-up in the customers loaded so far
    },
    "customers": {
        "customer_id": "C1",
        "created_date": date(2024, 1, 1),
        "acquisition_channel": "web",
        "segment": "smb",
        "region": "north",
        "referred_by": "C2",
        "status": "closed",
        "closed_date": date(2025, 6, 30),
        "risk_profile": "steady",
        "aum": 50_000.0,
    },
    "wallets": {
        "customer_id": "C1",
        "period_start": date(2025, 1, 1),
        "period_end": date(2025, 12, 31),
        "total_purchases": 100.0,
        WALLET_OVERLAP: False,  # the ingest's look-up in the periods loaded so far
    },
    "costs": {
        "cost_id": "K1",
        "customer_id": "C1",
        "cost_date": date(2025, 6, 1),
        "cost_type": "service",
        "amount": 20.0,
        KNOWN_CUSTOMER: True,
    },
    "holdings": {
        "customer_id": "C1",
        "balance_date": date(2025, 12, 31),
        "product_id": "P1",
        "asset_class": "funds",
        "balance": 1_000.0,
        "liquidity": "medium",
        "risk_level": 3.0,
        "goal": "growth",
        KNOWN_CUSTOMER: True,
    },
}

UNPARSEABLE = "12,5 EUR"  # source text that staging could not cast


def _unparseable(column: str) -> dict[str, object]:
    return {column: None, RAW_PREFIX + column: UNPARSEABLE}


# A required value that does not parse (or parses to nan) is null to pandera, so
# not_nullable fails too; ingest reports such a row once, as unparseable.
ALSO_NULL = "not_nullable"


# (kind, check that must fail, the fault in the second row[, a check that fails with it])
BROKEN: list[tuple[str, str, dict[str, object]] | tuple[str, str, dict[str, object], str]] = [
    ("transactions", "unparseable_transaction_date", _unparseable("transaction_date"), ALSO_NULL),
    ("transactions", "unparseable_amount", _unparseable("amount"), ALSO_NULL),
    # nan parses as a DOUBLE but is no amount
    (
        "transactions",
        "unparseable_amount",
        {"amount": float("nan"), "_raw_amount": "nan"},
        ALSO_NULL,
    ),
    ("transactions", "unparseable_cost", _unparseable("cost")),
    ("transactions", "unparseable_quantity", _unparseable("quantity")),
    ("transactions", "unparseable_discount", _unparseable("discount")),
    ("transactions", "transaction_date_in_future", {"transaction_date": date(2026, 1, 1)}),
    ("transactions", "amount_out_of_bounds", {"amount": 1_000.01}),
    ("transactions", "amount_out_of_bounds", {"amount": -1_000.01}),  # a return, too large
    ("transactions", "cost_out_of_bounds", {"cost": 5_000.0}),
    ("transactions", "negative_discount", {"discount": -0.5}),
    ("transactions", "discount_out_of_bounds", {"discount": 1_500.0}),
    ("transactions", "non_base_currency", {"currency": "EUR"}),
    ("transactions", "unknown_customer", {KNOWN_CUSTOMER: False}),
    ("customers", "unparseable_created_date", _unparseable("created_date")),
    ("customers", "unparseable_closed_date", _unparseable("closed_date")),
    ("customers", "unparseable_aum", _unparseable("aum")),
    ("customers", "unknown_status", {"status": "dormant"}),
    ("customers", "closed_before_created", {"closed_date": date(2023, 12, 31)}),
    ("wallets", "unparseable_period_start", _unparseable("period_start"), ALSO_NULL),
    ("wallets", "unparseable_period_end", _unparseable("period_end"), ALSO_NULL),
    ("wallets", "unparseable_total_purchases", _unparseable("total_purchases"), ALSO_NULL),
    ("wallets", "negative_total_purchases", {"total_purchases": -1.0}),
    ("wallets", "total_purchases_out_of_bounds", {"total_purchases": 2_000_000.0}),
    ("wallets", "period_end_before_start", {"period_end": date(2024, 12, 31)}),
    ("wallets", "overlapping_wallet_period", {WALLET_OVERLAP: True}),
    ("costs", "unparseable_cost_date", _unparseable("cost_date"), ALSO_NULL),
    ("costs", "unparseable_amount", _unparseable("amount"), ALSO_NULL),
    ("costs", "cost_date_in_future", {"cost_date": date(2026, 1, 1)}),
    ("costs", "unknown_cost_type", {"cost_type": "bribe"}),
    ("costs", "amount_out_of_bounds", {"amount": 1_000.01}),
    ("costs", "unknown_customer", {KNOWN_CUSTOMER: False}),
    ("holdings", "unparseable_balance_date", _unparseable("balance_date"), ALSO_NULL),
    ("holdings", "unparseable_balance", _unparseable("balance"), ALSO_NULL),
    ("holdings", "unparseable_risk_level", _unparseable("risk_level")),
    ("holdings", "balance_date_in_future", {"balance_date": date(2026, 1, 1)}),
    ("holdings", "balance_out_of_bounds", {"balance": 2_000_000.0}),  # > 1,000 × max amount
    ("holdings", "negative_balance", {"balance": -5.0}),  # no liability classes configured
    ("holdings", "risk_level_out_of_range", {"risk_level": 6.0}),
    ("holdings", "unknown_asset_class", {"asset_class": "crypto"}),
    ("holdings", "unknown_liquidity", {"liquidity": "instant"}),
    ("holdings", "unknown_customer", {KNOWN_CUSTOMER: False}),
]
# A value that breaks one check may break a second, which then fails with it.
ALSO_FAILS = {
    ("transactions", "currency"): "non_base_currency",
    ("customers", "status"): "unknown_status",
    ("customers", "closed_date"): "closed_before_created",
    ("wallets", "period_end"): "period_end_before_start",
    ("costs", "cost_type"): "unknown_cost_type",
    ("holdings", "asset_class"): "unknown_asset_class",
    ("holdings", "liquidity"): "unknown_liquidity",
}


def _limit_cases() -> list[tuple[str, ...]]:
    """Every date column has the configured earliest date; every text column a length limit."""
    cases: list[tuple[str, ...]] = []
    for kind in EXTRACT_KINDS:
        for name, column in input_schema(kind).columns.items():
            also = (ALSO_FAILS[kind, name],) if (kind, name) in ALSO_FAILS else ()
            if column.dtype.type == pl.Date:
                cases.append((kind, f"{name}_before_earliest", {name: BEFORE_EARLIEST}, *also))  # type: ignore[arg-type]
            elif column.dtype.type == pl.String:
                cases.append((kind, f"{name}_too_long", {name: TOO_LONG}, *also))  # type: ignore[arg-type]
    return cases


BROKEN += _limit_cases()  # type: ignore[arg-type]


def staged(kind: str, fault: dict[str, object] | None = None) -> pl.DataFrame:
    """A valid staged row of `kind`, and a second one with `fault` when given."""
    schema = input_schema(kind)
    dtypes = {name: column.dtype.type for name, column in schema.columns.items()}
    raw = {RAW_PREFIX + name: pl.String for name in typed_columns(schema)}
    flags = {name: pl.Boolean for name in (KNOWN_CUSTOMER, WALLET_OVERLAP) if name in VALID[kind]}

    def row(values: dict[str, object]) -> dict[str, object]:
        text = {RAW_PREFIX + name: _source_text(values[name]) for name in typed_columns(schema)}
        return {**values, **text}

    rows = [row(VALID[kind])]
    if fault is not None:
        faulty = row({**VALID[kind], **fault})
        rows.append({**faulty, **{k: v for k, v in fault.items() if k.startswith(RAW_PREFIX)}})
    return pl.DataFrame(rows, schema={**dtypes, **raw, **flags})


def _source_text(value: object) -> str | None:
    return None if value is None else str(value)


def failures(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> list[tuple[str, int | None]]:
    """(check, row index) of every failure, sorted; empty when the frame is valid."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases.select("check", pl.col("index").cast(pl.Int64))
        return sorted(set(cases.rows()), key=str)
    return []


def check_names(schema: pa.DataFrameSchema) -> set[str]:
    columns = (check.name for column in schema.columns.values() for check in column.checks)
    return {check.name for check in schema.checks} | set(columns)


@pytest.mark.parametrize("kind", EXTRACT_KINDS)
def test_a_valid_staged_row_passes_every_check(kind: str) -> None:
    assert failures(input_schema(kind, RULES), staged(kind)) == []


@pytest.mark.parametrize("case", BROKEN, ids=[case[1] for case in BROKEN])
def test_each_check_fails_on_the_row_built_to_break_it_and_only_there(
    case: tuple[str, str, dict[str, object]] | tuple[str, str, dict[str, object], str],
) -> None:
    kind, fault = case[0], case[2]
    expected = sorted(((check, 1) for check in (case[1], *case[3:])), key=str)
    assert failures(input_schema(kind, RULES), staged(kind, fault)) == expected


@pytest.mark.parametrize("kind", EXTRACT_KINDS)
def test_every_check_of_every_schema_has_a_row_that_breaks_it(kind: str) -> None:
    broken = {case[1] for case in BROKEN if case[0] == kind}
    assert check_names(input_schema(kind, RULES)) == broken


@pytest.mark.parametrize(
    ("kind", "column"),
    [(kind, column) for kind in EXTRACT_KINDS for column in required_columns(input_schema(kind))],
)
def test_a_missing_required_value_fails_as_not_nullable(kind: str, column: str) -> None:
    # An absent value has no source text either: only not_nullable fires (ingest names
    # the reason missing_<column>), not unparseable_<column>.
    assert failures(input_schema(kind, RULES), staged(kind, {column: None})) == [
        ("not_nullable", 1)
    ]


def test_without_rules_only_the_run_independent_checks_bind() -> None:
    """The limits of a run (bounds, dates, currency, known customers) come from its rules."""
    fault = {
        KNOWN_CUSTOMER: False,
        "transaction_date": date(2999, 1, 1),
        "amount": 1e12,
        "discount": -0.5,
    }
    assert failures(input_schema("transactions"), staged("transactions", fault)) == [
        ("negative_discount", 1),
    ]


def test_keys_required_and_typed_columns_are_the_staging_contract() -> None:
    transactions = input_schema("transactions")
    assert key_columns(transactions) == ("transaction_id",)
    assert key_columns(input_schema("wallets")) == ("customer_id", "period_start")
    assert key_columns(input_schema("costs")) == ("cost_id",)
    assert required_columns(transactions) == [
        "transaction_id",
        "customer_id",
        "transaction_date",
        "amount",
    ]
    assert typed_columns(transactions) == [
        "transaction_date",
        "amount",
        "cost",
        "quantity",
        "discount",
    ]
    assert set(SERVE_COST_TYPES) == set(COST_TYPES) - {"acquisition"}

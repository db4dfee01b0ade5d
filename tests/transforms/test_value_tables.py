"""The value tables when the purchase models cannot be fitted: a documented fallback, no NaN."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.schemas.outputs import conform
from customer_equity.settings import Settings, Value
from customer_equity.transforms.models import PurchaseModels, model_fit
from customer_equity.transforms.outputs import (
    Inputs,
    customer_metrics_of,
    customer_value,
    purchase_models,
    whole_base,
    whole_base_tables,
)
from tests.conftest import AS_OF, transactions
from tests.transforms.test_outputs import COST_SCHEMA, CUSTOMER_SCHEMA, WALLET_SCHEMA, rows_of

SETTINGS = Settings()


def test_too_few_customers_leave_probabilistic_columns_null_and_say_why() -> None:
    tx = transactions(
        ("A1", "A", date(2025, 1, 5), 100.0, 60.0),
        ("A2", "A", date(2025, 6, 5), 100.0, 60.0),
        ("B1", "B", date(2025, 3, 1), 50.0, 30.0),
    )
    inputs = Inputs(tx, rows_of(CUSTOMER_SCHEMA), rows_of(WALLET_SCHEMA), rows_of(COST_SCHEMA))
    base = whole_base(inputs, AS_OF, SETTINGS)
    models = purchase_models(base.measured.partials, SETTINGS)
    assert models.bgnbd is None and "customers" in (models.bgnbd_error or "")
    fit_table = conform("model_fit", model_fit(models))
    assert fit_table["converged"].to_list() == [False, False]
    assert fit_table["message"].null_count() == 0  # each absent model says why
    # the fit survives the trip between tasks
    assert PurchaseModels.from_record(models.to_record()) == models
    published = customer_metrics_of(base.measured.customers, base.facts, models, SETTINGS)
    value = customer_value(published, base.facts, models, SETTINGS).collect()
    conform("customer_value", value)
    assert value["clv_probabilistic"].null_count() == value.height
    assert value["clv_annuity"].is_not_null().all()  # the other methods are unaffected
    numeric = value.select(pl.col(pl.Float64))
    assert not any(numeric[c].is_nan().any() for c in numeric.columns)


FIFTEEN_IDENTICAL = transactions(
    *(
        (f"T{i}-{k}", f"C{i:02d}", day, 100.0 + i, 50.0)
        for i in range(15)
        for k, day in enumerate(
            (date(2025, 1, 1), date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1))
        )
    )
)


def test_an_unconverged_fit_publishes_no_probabilistic_column_and_says_why() -> None:
    """Issue 9.4: 15 customers buying on the same four days (x = 3, t_x = 39, T = 52 weeks).

    Without heterogeneity BG/NBD's r runs to its search bound (converged = false) and
    Gamma-Gamma's q too. P(alive) = 1.0 used to be published beside null expected
    purchases (the hypergeometric term is NaN at those parameters). Now every
    probabilistic column is null, in customer_metrics and customer_value, and
    model_fit says why on every row.
    """
    inputs = Inputs(
        FIFTEEN_IDENTICAL, rows_of(CUSTOMER_SCHEMA), rows_of(WALLET_SCHEMA), rows_of(COST_SCHEMA)
    )
    tables = whole_base_tables(inputs, AS_OF, SETTINGS)
    fit_table = conform("model_fit", tables["model_fit"])
    assert not any(fit_table["converged"])
    assert all("at its search bound" in m and "left null" in m for m in fit_table["message"])
    assert tables["customer_metrics"]["p_alive"].null_count() == 15
    value = conform("customer_value", tables["customer_value"])
    for column in PROBABILISTIC:
        assert value[column].null_count() == 15, column
    assert value["clv_annuity"].is_not_null().all()


PROBABILISTIC = (
    "p_alive",
    "expected_purchases",
    "expected_value_per_purchase",
    "clv_probabilistic",
)


def test_a_customer_known_only_from_returns_is_not_a_prospect() -> None:
    """Issue 9.6: a return without any purchase on record means the customer bought before
    the data starts; the return is its last activity (SPEC §4, §5). D = 2025-12-31.

    A–D buy on 2024-06-01 and 2025-06-01, E only on 2024-06-01.
    Q: one return 2024-11-01 → active a year ago (2024-12-31), 425 days ago at D:
       churned, termination, every CLV 0.
    R: one return 2025-10-01 −120/−60 (margin −60), no customers row → last activity
       2025-10-01, 91 days ago: active; not development (first purchase unknown, before the
       data), no wallet and no known tenure for maturity → growth.
    Base r: A–E and Q active a year ago, E and Q lost → 2/6 = 1/3, T = 3.
    R's Q − C = −60 over W (an unknown tenure is annualised over the whole window):
    clv_annuity = −60 · PVIFA(8 %, 3) = −60 · 2.577097 = −154.63, year by year the same
    (T whole, within the 10-year horizon), retention −60 · (2/3) / (1.08 − 2/3) = −96.77.
    """
    buyers = [
        (f"{c}{k}", c, day, 100.0, 50.0)
        for c in "ABCDE"
        for k, day in enumerate((date(2024, 6, 1), date(2025, 6, 1) if c != "E" else None))
        if day is not None
    ]
    tx = transactions(
        *buyers,
        ("R1", "R", date(2025, 10, 1), -120.0, -60.0),
        ("Q1", "Q", date(2024, 11, 1), -80.0, -40.0),
    )
    settings = Settings(value=Value(group_by="base", min_group_size=1))
    inputs = Inputs(tx, rows_of(CUSTOMER_SCHEMA), rows_of(WALLET_SCHEMA), rows_of(COST_SCHEMA))
    models = PurchaseModels(None, None, "weeks", "too few", "too few")
    tables = whole_base_tables(inputs, AS_OF, settings, models)
    metrics = conform("customer_metrics", tables["customer_metrics"])
    rows = {row["customer_id"]: row for row in metrics.to_dicts()}
    r, q = rows["R"], rows["Q"]
    assert (r["is_prospect"], r["churned"], r["lifecycle_stage"]) == (False, False, "growth")
    assert (r["first_purchase_date"], r["last_activity_date"]) == (None, date(2025, 10, 1))
    assert r["days_since_last_purchase"] == 91
    assert "returns" in r["stage_reason"]
    assert r["annual_contribution"] == pytest.approx(-60.0)
    assert (q["is_prospect"], q["churned"], q["lifecycle_stage"]) == (False, True, "termination")
    assert "return" in q["stage_reason"]

    churn_table = tables["churn"]
    assert churn_table.filter(pl.col("group_by") == "base")["churn_rate"].item() == pytest.approx(
        1 / 3
    )
    value = conform("customer_value", tables["customer_value"])
    values = {row["customer_id"]: row for row in value.to_dicts()}
    assert values["R"]["clv_annuity"] == pytest.approx(-154.63, abs=0.005)
    assert values["R"]["clv_projection"] == pytest.approx(-154.63, abs=0.005)
    assert values["R"]["clv_retention"] == pytest.approx(-96.77, abs=0.005)
    assert (values["Q"]["clv_annuity"], values["Q"]["clv_projection"]) == (0.0, 0.0)
    assert values["Q"]["clv_retention"] == 0.0

"""The value tables when the purchase models cannot be fitted: a documented fallback, no NaN."""

from __future__ import annotations

from datetime import date

import polars as pl

from customer_equity.settings import Settings
from schemas.outputs import conform
from tests.conftest import AS_OF, transactions
from tests.transforms.test_outputs import COST_SCHEMA, CUSTOMER_SCHEMA, WALLET_SCHEMA, rows_of
from transforms.outputs import (
    Inputs,
    PurchaseModels,
    churn,
    customer_metrics,
    customer_value,
    fit_purchase_models,
    model_fit,
    with_p_alive,
)

SETTINGS = Settings()


def test_too_few_customers_leave_probabilistic_columns_null_and_say_why() -> None:
    tx = transactions(
        ("A1", "A", date(2025, 1, 5), 100.0, 60.0),
        ("A2", "A", date(2025, 6, 5), 100.0, 60.0),
        ("B1", "B", date(2025, 3, 1), 50.0, 30.0),
    )
    inputs = Inputs(tx, rows_of(CUSTOMER_SCHEMA), rows_of(WALLET_SCHEMA), rows_of(COST_SCHEMA))
    metrics = customer_metrics(inputs, AS_OF, SETTINGS).collect()
    models = fit_purchase_models(metrics, SETTINGS)
    assert models.bgnbd is None and "customers" in (models.bgnbd_error or "")
    fit_table = conform("model_fit", model_fit(models))
    assert fit_table["converged"].to_list() == [False, False]
    assert fit_table["message"].null_count() == 0  # each absent model says why
    # the fit survives the trip between tasks
    assert PurchaseModels.from_record(models.to_record()) == models
    published = with_p_alive(metrics.lazy(), models, SETTINGS).collect()
    value = customer_value(
        published.lazy(), churn(inputs, AS_OF, SETTINGS), models, SETTINGS
    ).collect()
    conform("customer_value", value)
    assert value["clv_probabilistic"].null_count() == value.height
    assert value["clv_annuity"].is_not_null().all()  # the other methods are unaffected
    numeric = value.select(pl.col(pl.Float64))
    assert not any(numeric[c].is_nan().any() for c in numeric.columns)

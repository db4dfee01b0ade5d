"""The Polars transforms against an independent DuckDB SQL implementation, on generated data.

The SQL (`customer_metrics_core.sql` beside this file) is a test oracle: the
pipeline never runs it, so it lives here and not in the installed package.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from customer_equity.ingest import ingest_inbox
from customer_equity.settings import Settings
from customer_equity.transforms.outputs import customer_metrics
from tests.conftest import generated_project, settings_of, warehouse_inputs

ORACLE_SQL = Path(__file__).with_name("customer_metrics_core.sql")
AS_OF_DATES = [date(2024, 6, 30), date(2025, 3, 15), date(2025, 10, 1), date(2025, 12, 31)]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("crosscheck")
    generated_project(root, customers=2500, seed=11)
    settings = settings_of(root)
    ingest_inbox(settings, "crosscheck")
    return settings


def _by_sql(settings: Settings, as_of: date) -> pl.DataFrame:
    metrics, lifecycle = settings.metrics, settings.lifecycle
    params = {
        "as_of": as_of,
        "window_days": metrics.window_days,
        "floor_days": metrics.frequency_floor_days,
        "churn_after_days": metrics.churn_after_days,
        "default_margin_rate": metrics.default_margin_rate,
        "monetary": settings.model.monetary,
        "decline_days": lifecycle.decline_window_days,
        "decline_drop": lifecycle.decline_drop,
        "development_days": lifecycle.development_days,
        "maturity_share": lifecycle.maturity_share,
    }
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        return con.sql(ORACLE_SQL.read_text(encoding="utf-8"), params=params).pl()


@pytest.mark.parametrize("as_of", AS_OF_DATES, ids=str)
def test_polars_and_sql_agree(loaded: Settings, as_of: date) -> None:
    expected = _by_sql(loaded, as_of)
    actual = (
        customer_metrics(warehouse_inputs(loaded, as_of), as_of, loaded)
        .collect()
        .select(expected.columns)
    )
    assert actual.height > 1000
    assert_frame_equal(actual, expected, check_dtypes=False, rel_tol=1e-9, abs_tol=1e-6)
    # the data exercise every rule, so agreement is not vacuous
    assert set(actual["lifecycle_stage"]) == {
        "potential", "development", "growth", "maturity", "decline", "termination"
    }  # fmt: skip

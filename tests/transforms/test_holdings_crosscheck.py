"""SPEC §10 AUM and concentration: the Polars transforms against DuckDB SQL on generated data.

`sql/holdings_check.sql` beside this file is a second implementation written
from SPEC §10 alone (positions, staleness, the 180-day comparison, both
Herfindahl indices); it lives with the tests, not in the package.
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
from customer_equity.transforms.outputs import holdings_tables
from tests.conftest import generated_project, settings_of, warehouse_inputs

ORACLE = (Path(__file__).parent / "sql" / "holdings_check.sql").read_text(encoding="utf-8")
# D with every generated snapshot 180 days before; mid-month; a month after the feed
# ends (stale products drop out, positions are up to 20 days old); D − 180 before the feed.
AS_OF_DATES = [date(2025, 12, 31), date(2025, 11, 15), date(2026, 1, 20), date(2025, 8, 10)]
COLUMNS = ["customer_id", "aum", "aum_180d_ago", "asset_class_herfindahl", "product_herfindahl"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("holdings-crosscheck")
    generated_project(root, customers=2500, seed=12)
    settings = settings_of(root)
    ingest_inbox(settings, "holdings-crosscheck")
    return settings


def _by_sql(settings: Settings, as_of: date) -> pl.DataFrame:
    params = {
        "as_of": as_of,
        "stale_days": settings.holdings.stale_days,
        "liability_classes": list(settings.holdings.liability_classes),
    }
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        return con.sql(ORACLE, params=params).pl()


@pytest.mark.parametrize("as_of", AS_OF_DATES, ids=str)
def test_aum_and_herfindahl_agree_with_sql(loaded: Settings, as_of: date) -> None:
    expected = _by_sql(loaded, as_of)
    inputs = warehouse_inputs(loaded, as_of)  # the run's own snapshot of D, one bucket
    actual = holdings_tables(inputs.holdings, inputs.customers, as_of, loaded)[
        "customer_holdings"
    ].collect()
    assert actual.height > 200
    assert_frame_equal(
        actual.select(COLUMNS), expected, check_dtypes=False, rel_tol=1e-9, abs_tol=1e-6
    )
    # the data exercise the rules, so agreement is not vacuous
    assert actual["asset_class_herfindahl"].min() < 0.5 < actual["product_herfindahl"].max()
    assert (actual["product_herfindahl"] < actual["asset_class_herfindahl"]).any()
    if as_of >= date(2025, 12, 31):
        assert actual["stale_products"].sum() > 10
        assert actual["aum_180d_ago"].is_not_null().sum() > 200
    if as_of == date(2025, 8, 10):
        assert actual["aum_180d_ago"].is_null().all()  # nothing was reported by 2025-02-11

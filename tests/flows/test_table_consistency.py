"""Generated data through ingestion and every table builder: the tables agree with each other.

Issue 9: the same number must not differ between two tables (a group's churn
rate in `churn` and `customer_equity`), and the source's identities must hold
for every customer (Q = P·K·M·N), at every as-of date — including the first
year of data, when nobody was active a year earlier.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from customer_equity.ingest import ingest_inbox
from customer_equity.schemas.outputs import conform
from customer_equity.settings import Settings
from customer_equity.transforms import outputs
from tests.conftest import generated_project, settings_of, warehouse_inputs

# The generator's history starts on 2023-01-01 (three years up to 2025-12-31).
AS_OF_DATES = (
    date(2023, 6, 30),  # nobody active a year ago: equity rests on the cap
    date(2024, 3, 31),
    date(2024, 12, 31),
    date(2025, 6, 30),
    date(2025, 12, 31),
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root: Path = tmp_path_factory.mktemp("consistency")
    generated_project(root, customers=400, seed=29)
    settings = settings_of(root)
    ingest_inbox(settings, "consistency")
    return settings


@pytest.fixture(scope="module")
def tables(settings: Settings) -> dict[date, dict[str, pl.DataFrame]]:
    """Every published table per as-of date, built as the nightly flow builds them."""
    result = {}
    for as_of in AS_OF_DATES:
        built = outputs.whole_base_tables(warehouse_inputs(settings, as_of), as_of, settings)
        result[as_of] = {
            name: conform(name, built[name])
            for name in ("customer_metrics", "churn", "customer_value", "customer_equity")
        }
    return result


def test_equity_uses_the_churn_tables_rate_for_base_and_segments(
    tables: dict[date, dict[str, pl.DataFrame]], settings: Settings
) -> None:
    """Issue 9.1: for every date, base and segment r are the same number in both tables.

    Where a segment falls back (too small, no churn) its r is the base's row; where
    no rate can be observed or T would exceed the cap, r = 1 / max_lifetime_years.
    """
    floor_rate = 1 / settings.value.max_lifetime_years
    sources: dict[str, int] = {}
    for as_of, frames in tables.items():
        churn = {
            (row["group_by"], row["group_value"]): row["churn_rate"]
            for row in frames["churn"].to_dicts()
        }
        equity = frames["customer_equity"].filter(pl.col("group_by").is_in(["base", "segment"]))
        assert equity.height >= 2, as_of
        for row in equity.to_dicts():
            source = row["lifetime_source"]
            sources[source] = sources.get(source, 0) + 1
            expected = {
                "segment": churn.get((row["group_by"], row["group_value"])),
                "base": churn[("base", "all")],
                "cap": floor_rate,
            }[source]
            assert row["churn_rate"] == expected, (as_of, row)
            assert row["avg_lifetime_years"] == pytest.approx(1 / expected), (as_of, row)
    # every rule is exercised: own rates, small segments falling back, the cap
    assert min(sources.get("segment", 0), sources.get("base", 0), sources.get("cap", 0)) >= 4, (
        sources
    )
    base_2023 = tables[AS_OF_DATES[0]]["customer_equity"].filter(pl.col("group_by") == "base")
    assert base_2023["lifetime_source"].to_list() == ["cap"]


def test_pkmn_equals_the_annual_gross_margin_for_every_customer_with_a_wallet(
    tables: dict[date, dict[str, pl.DataFrame]],
) -> None:
    """Issue 9.3: P·K·M·N = Q to rounding whenever P, K, M and N are defined.

    They are, for every customer with a wallet overlapping W, a purchase share
    above 0, an order and a positive revenue in W (M = margin / revenue).
    """
    checked = 0
    for as_of, frames in tables.items():
        metrics = frames["customer_metrics"]
        defined = metrics.filter(
            pl.col("purchase_share").is_not_null()
            & (pl.col("purchase_share") > 0)
            & (pl.col("orders") > 0)
            & pl.col("margin_rate").is_not_null()
        )
        assert defined["annual_margin_pkmn"].null_count() == 0, as_of
        gap = (defined["annual_margin_pkmn"] - defined["annual_gross_margin"]).abs()
        tolerance = 1e-9 * defined["annual_gross_margin"].abs() + 1e-9
        off = defined.filter(gap > tolerance)
        assert off.height == 0, (as_of, off.select("customer_id", "annual_margin_pkmn").head())
        undefined = metrics.join(defined, on="customer_id", how="anti")
        assert undefined["annual_margin_pkmn"].null_count() == undefined.height, as_of
        checked += defined.height
    assert checked > 500


def test_the_seed_methods_are_computed_or_null_together(
    tables: dict[date, dict[str, pl.DataFrame]],
) -> None:
    """Issue 9.6: for every customer, the annuity, year-by-year and retention CLVs agree."""
    for as_of, frames in tables.items():
        value = frames["customer_value"]
        known = value.select(
            pl.sum_horizontal(
                pl.col(c).is_not_null().cast(pl.Int8)
                for c in ("clv_annuity", "clv_projection", "clv_retention")
            ).alias("known")
        )["known"]
        assert set(known.unique()) <= {0, 3}, as_of


def test_probabilistic_columns_come_from_a_usable_fit_or_are_all_null(
    tables: dict[date, dict[str, pl.DataFrame]],
) -> None:
    """Issue 9.4: each model's columns are either computed for every buyer or null for all."""
    for as_of, frames in tables.items():
        value = frames["customer_value"]
        metrics = frames["customer_metrics"]
        buyers = value.join(
            metrics.filter(pl.col("first_purchase_date").is_not_null()).select("customer_id"),
            on="customer_id",
        )
        for group in (
            ("p_alive", "expected_purchases"),
            ("expected_value_per_purchase", "clv_probabilistic"),
        ):
            nulls = {buyers[c].null_count() for c in group}
            assert nulls in ({0}, {buyers.height}), (as_of, group, nulls)
        if buyers["p_alive"].null_count():
            assert buyers["clv_probabilistic"].null_count() == buyers.height, as_of


def test_p_alive_is_the_same_in_customer_metrics_and_customer_value(
    tables: dict[date, dict[str, pl.DataFrame]],
) -> None:
    """customer_metrics takes P(alive) in closed form, customer_value with the predictions."""
    published = 0
    for as_of, frames in tables.items():
        both = (
            frames["customer_metrics"]
            .select("customer_id", "p_alive")
            .join(frames["customer_value"].select("customer_id", "p_alive"), on="customer_id")
        )
        assert both.height == frames["customer_metrics"].height, as_of
        assert both["p_alive"].null_count() == both["p_alive_right"].null_count(), as_of
        assert (both["p_alive"] == both["p_alive_right"]).all(), as_of
        published += both["p_alive"].is_not_null().sum()
    assert published > 1000

"""The nightly flow for real: generated extracts, a DuckDB file, Prefect, Parquet read back."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from customer_equity.flows.nightly import nightly
from tests.conftest import generated_project, read_table

AS_OF = date(2025, 12, 31)
SPEC_METRICS_COLUMNS = [
    "customer_id", "first_purchase_date", "last_purchase_date", "orders", "revenue", "cost",
    "gross_margin", "margin_rate", "avg_order_value", "purchase_frequency", "purchase_share",
    "annual_contribution", "repeat_purchases", "recency_days", "age_days", "monetary_value",
    "days_since_last_purchase", "churned", "p_alive", "lifecycle_stage", "stage_reason",
]  # fmt: skip
DATA_QUALITY_COLUMNS = [
    "run_id", "extract_kind", "file_name", "file_sha256", "status", "rows_read", "rows_loaded",
    "rows_replaced", "rows_duplicate", "rows_quarantined", "rows_released", "error",
    "latest_run_id",
]  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    root = tmp_path_factory.mktemp("nightly")
    generated_project(root, customers=400, seed=7)
    return root


@pytest.fixture(scope="module")
def first_run(project: Path) -> dict[str, object]:
    return nightly(as_of=AS_OF, config=str(project / "customer-equity.toml"))


def _metrics_by_duckdb(project: Path) -> list[tuple]:
    return duckdb.sql(
        "select * from read_parquet($glob, hive_partitioning = true) order by customer_id",
        params={"glob": str(project / "lake" / "customer_metrics" / "*" / "*.parquet")},
    ).fetchall()


def test_customer_metrics_parquet_is_readable_by_duckdb_and_polars(
    project: Path, first_run: dict[str, object]
) -> None:
    relation = duckdb.sql(
        "select * from read_parquet($glob, hive_partitioning = true)",
        params={"glob": str(project / "lake" / "customer_metrics" / "*" / "*.parquet")},
    )
    assert {*SPEC_METRICS_COLUMNS, "as_of_date"} <= set(relation.columns)
    by_duckdb = relation.pl()
    by_polars = read_table(project / "lake", "customer_metrics")
    assert by_duckdb["as_of_date"].unique().to_list() == [AS_OF]
    assert by_polars.sort("customer_id").equals(
        by_duckdb.select(by_polars.columns).sort("customer_id")
    )
    customers = pl.read_csv(project / "inbox" / "customers" / "customers.csv")
    assert by_polars.height == customers.height  # buyers and prospects, each once
    assert by_polars["customer_id"].n_unique() == by_polars.height
    assert set(by_polars["lifecycle_stage"]) <= {
        "potential", "development", "growth", "maturity", "decline", "termination"
    }  # fmt: skip


def test_data_quality_accounts_for_every_row(project: Path, first_run: dict[str, object]) -> None:
    quality = read_table(project / "lake", "data_quality")
    assert quality.columns == [*DATA_QUALITY_COLUMNS, "as_of_date"]
    assert set(quality["status"]) == {"loaded"}
    accounted = (
        quality["rows_loaded"]
        + quality["rows_replaced"]
        + quality["rows_duplicate"]
        + quality["rows_quarantined"]
    )
    assert (quality["rows_read"] == accounted).all()
    # the generator delivers exactly one correction and one duplicate
    assert quality["rows_replaced"].sum() == 1
    assert quality["rows_duplicate"].sum() == 1
    csv_rows = sum(
        pl.read_csv(path, infer_schema=False).height for path in (project / "inbox").glob("*/*.csv")
    )
    assert quality["rows_read"].sum() == csv_rows


def test_second_run_with_the_same_inputs_changes_nothing(
    project: Path, first_run: dict[str, object]
) -> None:
    before = _metrics_by_duckdb(project)
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        stored_before = con.sql("select count(*), sum(amount) from transactions").fetchall()
    second = nightly(as_of=AS_OF, config=str(project / "customer-equity.toml"))
    assert {row["status"] for row in second["files"]} == {"skipped"}
    assert _metrics_by_duckdb(project) == before
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*), sum(amount) from transactions").fetchall() == (
            stored_before
        )
    partitions = list((project / "lake" / "customer_metrics").iterdir())
    assert [p.name for p in partitions] == [f"as_of_date={AS_OF}"]

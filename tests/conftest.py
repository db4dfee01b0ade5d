"""Shared fixtures: temp project folders, tiny extracts, one Prefect harness per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from customer_equity.lake import PARTITION_KEY
from customer_equity.schemas.outputs import OUTPUT_SCHEMAS
from customer_equity.settings import Settings, load_settings
from customer_equity.transforms.outputs import Inputs

# Set before any test module imports Prefect: this machine has no telemetry endpoint.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

DATA = Path(__file__).parent / "data"
# What every nightly run publishes (model_calibration only with --holdout-from); the
# wealth tables only with holdings up to D, as every generated project has.
WEALTH_TABLES = ("customer_holdings", "holdings_mix")
PUBLISHED_TABLES = tuple(
    name for name in OUTPUT_SCHEMAS if name not in ("model_calibration", *WEALTH_TABLES)
)
PUBLISHED_WITH_HOLDINGS = (*PUBLISHED_TABLES, *WEALTH_TABLES)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (starting one costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def write_config(root: Path, text: str = "") -> Path:
    """A settings file in `root` whose data paths live under `root`."""
    config = root / "customer-equity.toml"
    # Test files are complete when written: no settle time unless a test sets one.
    inbox = "" if "[inbox]" in text else "[inbox]\nsettle_seconds = 0\n"
    config.write_text(
        '[paths]\ninbox = "inbox"\nwarehouse = "warehouse.duckdb"\nlake = "lake"\n' + inbox + text,
        encoding="utf-8",
    )
    return config


def generated_project(root: Path, *, customers: int, seed: int, config: str = "") -> Path:
    """A project folder with a settings file and generated extracts ending on AS_OF."""
    from customer_equity.generate import generate_extracts

    write_config(root, config)
    generate_extracts(root / "inbox", customers=customers, seed=seed, end_date=AS_OF)
    return root


def write_extract(root: Path, kind: str, name: str, rows: list[dict[str, object]]) -> Path:
    """One CSV extract in the inbox of `root` (all values written as text)."""
    folder = root / "inbox" / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pl.DataFrame(rows, infer_schema_length=None).write_csv(path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_config(tmp_path)
    return tmp_path


def settings_of(root: Path) -> Settings:
    return load_settings(root / "customer-equity.toml")


def warehouse_inputs(settings: Settings, as_of: date) -> Inputs:
    """The warehouse's inputs of D as one bucket, through the run's own snapshot step."""
    from customer_equity.buckets import bucket_inputs, snapshot

    one_bucket = settings.model_copy(
        update={"engine": settings.engine.model_copy(update={"buckets": 1})}
    )
    layout = snapshot(one_bucket, as_of, f"tests-{as_of.isoformat()}")
    return Inputs(**bucket_inputs(layout, 0))


def read_table(lake: Path, table: str) -> pl.DataFrame:
    """Every partition of a lake table, with `as_of_date` as a DATE column (as BI tools read it)."""
    return pl.read_parquet(
        lake / table / "**" / "*.parquet",
        hive_partitioning=True,
        hive_schema={PARTITION_KEY: pl.Date},
    )


def frame(rows: list[dict[str, object]], schema: dict[str, type[pl.DataType]]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema=schema).lazy()


TRANSACTION_SCHEMA = {
    "transaction_id": pl.String,
    "customer_id": pl.String,
    "transaction_date": pl.Date,
    "amount": pl.Float64,
    "cost": pl.Float64,
    "category": pl.String,
    "discount": pl.Float64,
}


def transactions(*rows: tuple) -> pl.LazyFrame:
    """Rows of (id, customer, date, amount, cost[, category[, discount]])."""
    padded = [row + (None,) * (7 - len(row)) for row in rows]
    return pl.DataFrame(padded, schema=TRANSACTION_SCHEMA, orient="row").lazy()


AS_OF = date(2025, 12, 31)

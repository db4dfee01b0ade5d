"""Issue 11: the bucketed engine gives the same tables whatever the number of buckets.

Every per-customer figure depends only on that customer's rows and every
whole-base figure reduces from exact per-bucket partials (integer money and
rate units, counts, distinct model-summary rows), so one bucket, three and
eight must publish identical tables: equal bit for bit, after sorting by key
(a partition holds one Parquet part per bucket).
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from customer_equity.lake import read_table
from flows.nightly import nightly
from schemas.outputs import OUTPUT_SCHEMAS
from tests.conftest import PUBLISHED_TABLES, generated_project, write_config

pytestmark = pytest.mark.slow

AS_OF = date(2025, 12, 31)
HOLDOUT_FROM = date(2025, 7, 1)
BUCKET_COUNTS = (1, 3, 8)


def _run(source: Path, root: Path, buckets: int) -> Path:
    shutil.copytree(source / "inbox", root / "inbox")
    config = write_config(root, f"[engine]\nbuckets = {buckets}\n")
    nightly(as_of=AS_OF, config=str(config), holdout_from=HOLDOUT_FROM)
    return root


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> dict[int, Path]:
    source = generated_project(tmp_path_factory.mktemp("source"), customers=700, seed=23)
    return {
        buckets: _run(source, tmp_path_factory.mktemp(f"buckets-{buckets}"), buckets) / "lake"
        for buckets in BUCKET_COUNTS
    }


def _sorted(lake: Path, table: str) -> pl.DataFrame:
    key = list(OUTPUT_SCHEMAS[table].metadata["key"])
    return read_table(lake, table).drop("as_of_date").sort(key, nulls_last=True)


@pytest.mark.parametrize(
    "table", [t for t in PUBLISHED_TABLES if t != "data_quality"] + ["model_calibration"]
)
def test_every_table_is_identical_for_any_bucket_count(lakes: dict[int, Path], table: str) -> None:
    one = _sorted(lakes[1], table)
    assert one.height > 0
    for buckets in BUCKET_COUNTS[1:]:
        other = _sorted(lakes[buckets], table)
        assert other.equals(one, null_equal=True), f"{table}: {buckets} buckets differ from 1"


def test_per_customer_tables_have_one_part_per_bucket(lakes: dict[int, Path]) -> None:
    for buckets, lake in lakes.items():
        parts = list((lake / "customer_metrics" / f"as_of_date={AS_OF}").glob("*.parquet"))
        assert len(parts) == buckets
        metrics = read_table(lake, "customer_metrics")
        assert metrics["customer_id"].n_unique() == metrics.height  # buckets are disjoint


def test_the_data_exercise_the_whole_base_reductions(lakes: dict[int, Path]) -> None:
    """Agreement is not vacuous: every cross-bucket figure is present in the data."""
    metrics = read_table(lakes[8], "customer_metrics")
    assert metrics["referral_value"].fill_null(0).gt(0).sum() > 0  # referrers in other buckets
    assert metrics["estimated_annual_margin"].is_not_null().sum() > 0  # prospects: segment M
    assert metrics["p_alive"].n_unique() > 10  # the fitted model, applied per bucket
    tiers = read_table(lakes[8], "customer_tiers")
    assert {"core", "important", "general"} <= set(tiers["value_tier"])
    fit = read_table(lakes[8], "model_fit")
    assert fit["converged"].all()

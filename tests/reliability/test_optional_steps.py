"""Issue 9.2: an optional diagnostic never fails the nightly run; data_quality is always written.

`--holdout-from` adds the BG/NBD calibration/holdout check. When the model
cannot be fitted on the calibration period (here: nobody bought twice), the
run still publishes every table, writes `model_calibration` with the reason,
warns, and exits 0.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

import customer_equity.flows.tasks
from customer_equity.flows.nightly import nightly
from customer_equity.lake import read_partition
from tests.conftest import PUBLISHED_TABLES, write_extract
from tests.reliability.support import AS_OF, new_project, run_to_end


def _one_purchase_each(root: Path, customers: int = 15) -> Path:
    """`customers` buyers, one purchase each (2025-01-10 … 08-08): no repeat purchase anywhere."""
    rows = [
        {
            "transaction_id": f"T{n}",
            "customer_id": f"C{n:03d}",
            "transaction_date": (date(2025, 1, 10) + timedelta(days=15 * n)).isoformat(),
            "amount": "100.00",
            "cost": "60.00",
        }
        for n in range(customers)
    ]
    write_extract(root, "transactions", "transactions.csv", rows)
    return root


def test_holdout_without_a_fit_warns_and_exits_zero(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    root = _one_purchase_each(new_project(tmp_path))
    output = run_to_end(root, cli_env, "--holdout-from", "2025-10-01")
    lake = root / "lake"
    for table in (*PUBLISHED_TABLES, "model_calibration"):
        assert (lake / table / f"as_of_date={AS_OF}").is_dir(), table
    quality = read_partition(lake, "data_quality", AS_OF)
    assert quality["rows_loaded"].to_list() == [15]
    calibration = read_partition(lake, "model_calibration", AS_OF)
    # all 15 bought by 2025-09-30, none of them twice, and nobody bought again later
    assert calibration["repeat_purchases_bucket"].to_list() == ["0"]
    assert calibration["customers"].to_list() == [15]
    assert calibration["actual_holdout_purchases"].to_list() == [0.0]
    assert calibration["predicted_holdout_purchases"].null_count() == 1
    assert "repeat purchase" in calibration["message"].item()
    assert "model_calibration" in output and "not fitted" in output


def test_a_failing_optional_step_still_writes_data_quality(
    tmp_path: Path, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong inside the calibration step, the run completes and says so."""
    root = _one_purchase_each(new_project(tmp_path))

    def broken(*_: object, **__: object) -> pl.DataFrame:
        raise RuntimeError("disk full while fitting")

    monkeypatch.setattr(customer_equity.flows.tasks, "model_calibration", broken)
    result = nightly(
        as_of=AS_OF, config=str(root / "customer-equity.toml"), holdout_from=date(2025, 10, 1)
    )
    tables = result["tables"]
    assert "model_calibration" not in tables  # type: ignore[operator]
    assert set(PUBLISHED_TABLES) <= set(tables)  # type: ignore[arg-type]
    assert read_partition(root / "lake", "data_quality", AS_OF)["rows_loaded"].to_list() == [15]
    assert "disk full" in str(result["warnings"])

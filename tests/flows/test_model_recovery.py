"""Generated data → ingestion → customer_metrics → BG/NBD recovers the generator's parameters.

The generator (customer_equity/generate.py) simulates a BG/NBD process with
known parameters in days and records them in its sidecar. The tolerance is 4
standard errors of the estimate (observed information, see
tests/transforms/test_probabilistic.py) plus 10 % for the generator's known
departures from a pure BG/NBD process: same-day purchases merge into one
purchase day (≈ 3 % fewer repeat purchases) and a share of buyers ramp their
spending (which does not touch counts). A bug in the summary (returns counted
as purchases, a window cut, off-by-one ages) moves r or α by far more.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from customer_equity.ingest import ingest_inbox
from customer_equity.settings import Settings
from customer_equity.transforms.models import buyers_summary
from customer_equity.transforms.outputs import customer_metrics_of, purchase_models, whole_base
from tests.conftest import generated_project, settings_of, warehouse_inputs
from tests.transforms.test_probabilistic import bgnbd_log_likelihood, standard_errors

AS_OF = date(2025, 12, 31)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    root: Path = tmp_path_factory.mktemp("recovery")
    generated_project(root, customers=15_000, seed=5, config='[model]\ntime_unit = "days"\n')
    settings = settings_of(root)
    ingest_inbox(settings, "recovery")
    truth = json.loads((root / "inbox" / "generator_params.json").read_text())["bgnbd"]
    return settings, truth


def test_bgnbd_fit_recovers_the_generator_parameters(generated: tuple[Settings, dict]) -> None:
    settings, truth = generated
    base = whole_base(warehouse_inputs(settings, AS_OF), AS_OF, settings)
    models = purchase_models(base.measured.partials, settings)
    metrics = customer_metrics_of(base.measured.customers, base.facts, models, settings)
    assert models.bgnbd is not None and models.bgnbd.converged, models.bgnbd_error
    fit = models.bgnbd
    summary = buyers_summary(metrics).collect()
    x, t_x, age = (
        summary[c].cast(pl.Float64).to_numpy()
        for c in ("repeat_purchases", "recency_days", "age_days")
    )
    estimate = np.log([fit.r, fit.alpha, fit.a, fit.b])
    errors = standard_errors(lambda p: bgnbd_log_likelihood(np.exp(p), x, t_x, age), estimate)
    true_log = np.log([truth["r"], truth["alpha"], truth["a"], truth["b"]])
    allowed = 4 * errors + np.log(1.10)
    assert np.all(errors < 0.2), errors  # the data are informative enough to test anything
    assert np.all(np.abs(estimate - true_log) < allowed), (np.exp(estimate), truth, errors)

"""CDNOW: the repeat-purchase summary through the real ingestion path vs a plain-Python count.

SPEC §3: frequency = purchase days after the first, recency = first to last
purchase day, T = first purchase day to D; here D = 1997-09-30, in weeks.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest

from customer_equity.ingest import ingest_inbox
from customer_equity.transforms.outputs import customer_metrics
from tests.conftest import DATA, settings_of, warehouse_inputs, write_config, write_extract

CUT_OFF = date(1997, 9, 30)


def _cdnow_rows() -> list[list[str]]:
    return [line.split() for line in (DATA / "CDNOW_sample.txt").read_text().splitlines()]


def _independent_summary() -> dict[str, tuple[int, float, float]]:
    """(x, t_x, T) in weeks per sample customer id, from sets of purchase days."""
    days: dict[str, set[date]] = defaultdict(set)
    for _, customer, day, _, _ in _cdnow_rows():
        purchase = datetime.strptime(day, "%Y%m%d").date()
        if purchase <= CUT_OFF:
            days[customer].add(purchase)
    summary = {}
    for customer, purchases in days.items():
        first, last = min(purchases), max(purchases)
        summary[customer] = (
            len(purchases) - 1,
            (last - first).days / 7,
            (CUT_OFF - first).days / 7,
        )
    return summary


@pytest.fixture(scope="module")
def pipeline_summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    root: Path = tmp_path_factory.mktemp("cdnow")
    write_config(root)
    rows = [
        {
            "transaction_id": f"{number}",
            "customer_id": customer,
            "transaction_date": day,  # compact YYYYMMDD, as delivered
            "amount": value,
            "quantity": cds,
        }
        for number, (_, customer, day, cds, value) in enumerate(_cdnow_rows())
    ]
    write_extract(root, "transactions", "cdnow.csv", rows)
    settings = settings_of(root)
    (outcome,) = ingest_inbox(settings, "cdnow")
    assert (outcome.rows_read, outcome.rows_loaded) == (6919, 6919)
    metrics = customer_metrics(warehouse_inputs(settings, CUT_OFF), CUT_OFF, settings).collect()
    return {
        row["customer_id"]: (
            row["repeat_purchases"],
            row["recency_days"] / 7,
            row["age_days"] / 7,
        )
        for row in metrics.to_dicts()
    }


def test_every_customer_matches_the_independent_summary(pipeline_summary: dict) -> None:
    expected = _independent_summary()
    assert len(expected) == 2357
    assert pipeline_summary.keys() == expected.keys()
    mismatched = {
        customer: (pipeline_summary[customer], expected[customer])
        for customer in expected
        if pipeline_summary[customer] != pytest.approx(expected[customer], abs=1e-12)
    }
    assert mismatched == {}


def test_published_anchor_customer_one(pipeline_summary: dict) -> None:
    # cdnowSummary (Fader & Hardie): ID 1 has x = 2, t_x = 30.43, T = 38.86 weeks
    assert pipeline_summary["0001"] == pytest.approx((2, 30.428571, 38.857143), abs=1e-6)


def test_same_day_purchases_count_once(pipeline_summary: dict) -> None:
    raw = defaultdict(list)
    for _, customer, day, _, _ in _cdnow_rows():
        if datetime.strptime(day, "%Y%m%d").date() <= CUT_OFF:
            raw[customer].append(day)
    doubled = [c for c, days in raw.items() if len(days) != len(set(days))]
    assert doubled, "CDNOW has customers with two records on one day"
    for customer in doubled:
        assert pipeline_summary[customer][0] == len(set(raw[customer])) - 1

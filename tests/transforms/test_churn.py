"""SPEC §4 churn flag, churn rate r and average lifetime T = 1 / r, worked by hand.

D = 2025-12-31; churn_after_days = 365 ("more than 365 days before D").
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from customer_equity.transforms.churn import average_lifetime_years, churn_rates, churn_status
from tests.conftest import AS_OF, frame

CUSTOMER_SCHEMA = {
    "customer_id": pl.String,
    "segment": pl.String,
    "status": pl.String,
    "closed_date": pl.Date,
}
LAST_SCHEMA = {"customer_id": pl.String, "last_activity_date": pl.Date}
PURCHASE_SCHEMA = {"customer_id": pl.String, "transaction_date": pl.Date, "amount": pl.Float64}


def customers(*rows: tuple[str, str | None, str | None, date | None]) -> pl.LazyFrame:
    """Rows of (customer_id, segment, status, closed_date)."""
    return frame([dict(zip(CUSTOMER_SCHEMA, row, strict=True)) for row in rows], CUSTOMER_SCHEMA)


def purchases(*rows: tuple[str, date]) -> pl.LazyFrame:
    """Purchases (amount 1.0) of (customer_id, transaction_date)."""
    return frame(
        [dict(zip(PURCHASE_SCHEMA, (*row, 1.0), strict=True)) for row in rows], PURCHASE_SCHEMA
    )


def last_purchases(*rows: tuple[str, date]) -> pl.LazyFrame:
    return frame([dict(zip(LAST_SCHEMA, row, strict=True)) for row in rows], LAST_SCHEMA)


def _by_customer(lazy: pl.LazyFrame) -> dict[str, dict[str, object]]:
    return {row["customer_id"]: row for row in lazy.collect().to_dicts()}


# --- churn flag ---------------------------------------------------------------------------------

STATUS = _by_customer(
    churn_status(
        last_purchases(
            ("A", date(2024, 12, 31)),  # D − 365: exactly the threshold → still active
            ("B", date(2024, 12, 30)),  # D − 366: one day more → churned
            ("C", date(2025, 12, 1)),  # recent buyer, closed on D itself → churned
            ("E", date(2025, 12, 1)),  # closed only after D → not (yet) churned
        ),
        customers(
            ("A", "x", "active", None),
            ("C", "x", "closed", date(2025, 12, 31)),
            ("E", "x", "closed", date(2026, 1, 15)),
            ("F", "x", "closed", None),  # closed, no closed_date, never bought → churned
            ("G", "x", "active", None),  # prospect: known, no purchase
        ),
        AS_OF,
        365,
    )
)


def test_last_purchase_exactly_churn_after_days_ago_is_not_churned() -> None:
    a = STATUS["A"]
    assert a["days_since_last_purchase"] == 365
    assert a["days_to_churn"] == 0  # 365 − 365
    assert a["churned"] is False


def test_one_more_day_churns() -> None:
    b = STATUS["B"]
    assert b["days_since_last_purchase"] == 366
    assert b["days_to_churn"] == -1  # 365 − 366
    assert b["churned"] is True
    assert b["closed"] is False


def test_closed_on_or_before_d_churns_even_a_recent_buyer() -> None:
    assert STATUS["C"]["days_since_last_purchase"] == 30
    assert (STATUS["C"]["churned"], STATUS["C"]["closed"]) == (True, True)
    assert (STATUS["F"]["churned"], STATUS["F"]["closed"]) == (True, True)


def test_closed_after_d_is_not_churned_yet() -> None:
    assert (STATUS["E"]["churned"], STATUS["E"]["closed"]) == (False, False)


def test_active_prospect_gets_no_churn_row() -> None:
    # Only buyers and closed customers get a row; customer_metrics fills churned = False.
    assert "G" not in STATUS
    assert {c for c, row in STATUS.items() if row["days_since_last_purchase"] is None} == {"F"}


@pytest.mark.parametrize("threshold", [30, 90, 180, 365])
def test_churn_flag_is_monotone_in_the_threshold(threshold: int) -> None:
    """A longer allowance can only un-churn customers: churned(t + k) ⊆ churned(t)."""
    last = last_purchases(
        *((f"c{days}", AS_OF - timedelta(days=days)) for days in (0, 29, 30, 31, 200, 365, 366))
    )
    no_customers = customers()

    def churned(after: int) -> set[str]:
        status = churn_status(last, no_customers, AS_OF, after).filter(pl.col("churned"))
        return set(status.collect()["customer_id"])

    for longer in (threshold + 1, threshold * 2):
        assert churned(longer) <= churned(threshold)
    # by hand: more than `threshold` days since the last purchase
    expected = {f"c{d}" for d in (0, 29, 30, 31, 200, 365, 366) if d > threshold}
    assert churned(threshold) == expected


# --- churn rate and lifetime --------------------------------------------------------------------


def test_average_lifetime_is_one_over_r_and_null_without_churn() -> None:
    rates = pl.DataFrame({"r": [0.2, 0.1, 0.5, 0.0, None]}, schema={"r": pl.Float64})
    lifetimes = rates.select(average_lifetime_years(pl.col("r"))).to_series().to_list()
    assert lifetimes[:3] == pytest.approx([5.0, 10.0, 2.0])  # SPEC: 20 % → 5, 10 % → 10 years
    assert lifetimes[3:] == [None, None]  # r = 0: no finite lifetime, null rather than inf


RATE_PURCHASES = purchases(
    # retail
    ("R1", date(2024, 6, 1)),
    ("R1", date(2025, 6, 1)),  # active at start (213 days) and at D (213 days) → kept
    ("R2", date(2024, 6, 1)),  # active at start (213 days), 578 days at D → lost
    ("R3", date(2024, 12, 31)),  # bought on D − 365; at D exactly 365 days → kept
    ("R4", date(2025, 3, 1)),  # first bought after D − 365 → not in the base
    # trade
    ("T1", date(2024, 11, 1)),  # in the base, closed 2025-05-01 → lost
    ("T2", date(2023, 1, 1)),  # already churned at D − 365 (730 days) → not in the base
    ("T3", date(2024, 10, 1)),  # closed only after D: in base, its last purchase is 456 days old
    # vip
    ("V1", date(2024, 12, 1)),
    ("V1", date(2025, 12, 1)),  # in base, kept → vip r = 0
    # N: not in the customers extract → segment null
    ("N1", date(2024, 7, 1)),  # in base (183 days), 548 days at D → lost
)
RATE_CUSTOMERS = customers(
    ("R1", "retail", "active", None),
    ("R2", "retail", "active", None),
    ("R3", "retail", "active", None),
    ("R4", "retail", "active", None),
    ("T1", "trade", "closed", date(2025, 5, 1)),
    ("T2", "trade", "active", None),
    ("T3", "trade", "closed", date(2026, 2, 1)),
    ("V1", "vip", "active", None),
)


@pytest.fixture(scope="module")
def rates() -> list[dict[str, object]]:
    return churn_rates(RATE_PURCHASES, RATE_CUSTOMERS, AS_OF, 365).collect().to_dicts()


def test_churn_rate_of_the_whole_base(rates: list[dict[str, object]]) -> None:
    """Base at 2024-12-31: R1 R2 R3 T1 T3 V1 N1 = 7. Lost at D: R2, T1, T3 (456 days), N1 = 4."""
    base = rates[0]
    assert (base["group_by"], base["group_value"]) == ("base", "all")
    assert (base["customers_at_start"], base["customers_lost"]) == (7, 4)
    assert base["churn_rate"] == pytest.approx(4 / 7)
    assert base["avg_lifetime_years"] == pytest.approx(7 / 4)


def test_churn_rate_per_segment(rates: list[dict[str, object]]) -> None:
    """retail 3 at start, 1 lost (R2) → 1/3, T = 3; trade 2 (T1, T3), both lost → 1, T = 1;
    vip 1, 0 lost → r = 0, T null; unknown segment 1 (N1), lost → 1."""
    per_segment = {
        row["group_value"]: (
            row["customers_at_start"],
            row["customers_lost"],
            row["churn_rate"],
            row["avg_lifetime_years"],
        )
        for row in rates[1:]
    }
    assert [row["group_by"] for row in rates[1:]] == ["segment"] * 4
    assert [row["group_value"] for row in rates[1:]] == ["retail", "trade", "vip", None]
    assert per_segment["retail"] == (3, 1, pytest.approx(1 / 3), pytest.approx(3.0))
    assert per_segment["trade"] == (2, 2, pytest.approx(1.0), pytest.approx(1.0))
    assert per_segment["vip"] == (1, 0, 0.0, None)
    assert per_segment[None] == (1, 1, pytest.approx(1.0), pytest.approx(1.0))


def test_new_and_already_churned_customers_are_not_in_the_base(
    rates: list[dict[str, object]],
) -> None:
    # R4 (new) and T2 (churned before D − 365) would raise the base to 9
    assert rates[0]["customers_at_start"] != 9
    assert sum(row["customers_at_start"] for row in rates[1:]) == rates[0]["customers_at_start"]


@pytest.mark.parametrize(("lost", "years"), [(20, 5.0), (10, 10.0)])
def test_spec_worked_numbers(lost: int, years: float) -> None:
    """100 customers active at D − 365 (bought 2024-12-01); `lost` never bought again.

    r = lost / 100; T = 1 / r; holding the base of 100 needs 100 / T = `lost`
    new customers a year (SPEC §4: 20 % → 5 years / 20 new; 10 % → 10 years / 10 new).
    """
    rows: list[tuple[str, date]] = [(f"c{n}", date(2024, 12, 1)) for n in range(100)]
    rows += [(f"c{n}", date(2025, 11, 1)) for n in range(lost, 100)]
    result = churn_rates(purchases(*rows), customers(), AS_OF, 365, ()).collect()
    assert result.height == 1  # no group columns: whole base only
    base = result.row(0, named=True)
    assert (base["customers_at_start"], base["customers_lost"]) == (100, lost)
    assert base["churn_rate"] == pytest.approx(lost / 100)
    assert base["avg_lifetime_years"] == pytest.approx(years)
    assert base["customers_at_start"] / base["avg_lifetime_years"] == pytest.approx(lost)


def test_empty_base_gives_null_rate_not_zero() -> None:
    only_new = purchases(("R4", date(2025, 3, 1)))
    base = churn_rates(only_new, customers(), AS_OF, 365, ()).collect().row(0, named=True)
    assert (base["customers_at_start"], base["customers_lost"]) == (0, 0)
    assert base["churn_rate"] is None
    assert base["avg_lifetime_years"] is None

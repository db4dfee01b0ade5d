"""SPEC §3 purchase share K (购进比例), the P·K·M·N identity and the prospect estimate.

Pro-rating frame: D = 2025-06-30, so W = 2024-07-01 … 2025-06-30
(184 days of 2024 + 181 days of 2025 = 365 days).

- A: calendar-year wallet 2025 of 3,650 (10 a day), half inside W: the
  overlap 2025-01-01 … 2025-06-30 is 181 days → pro-rated 1,810. Our revenue
  on those days: 362 (2025-03-01); the 500 of 2024-10-01 is in W but outside
  the wallet's days and must not count. K = 362 / 1,810 = 0.2; the annual
  wallet = 1,810 · 365 / 181 = 3,650.
- B: wallets 2024 (leap year, 366 days, 7,320 = 20 a day) and 2025 (3,650):
  overlap 184 days → 3,680 plus 181 days → 1,810 = 5,490 over 365 days.
  Revenue 736 (2024-10-01) + 362 (2025-03-01) = 1,098 → K = 1,098 / 5,490 = 0.2.
- C: wallet 2025 of 365 (1 a day) → 181 on the overlap; revenue 362 → raw
  K = 2.0, clipped to 1 and flagged.
- E: wallet 2025 of 1,000, no purchase → K = 0 (known zero, not null).
- F: no wallet → no row (K null); G: wallet 2023 only, disjoint from W → no
  row; H: wallet declared as 0 → K null rather than a division by zero.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from customer_equity.settings import Metrics
from customer_equity.transforms.metrics import annualised, costed_transactions, window_metrics
from customer_equity.transforms.share import (
    contribution_identity,
    prospect_estimate,
    purchase_share,
    segment_margin_units,
)
from customer_equity.transforms.windows import trailing
from tests.conftest import AS_OF, frame, transactions

D = date(2025, 6, 30)
W = trailing(D, 365)

WALLET_SCHEMA = {
    "customer_id": pl.String,
    "period_start": pl.Date,
    "period_end": pl.Date,
    "total_purchases": pl.Float64,
}
YEAR_2023 = (date(2023, 1, 1), date(2023, 12, 31))
YEAR_2024 = (date(2024, 1, 1), date(2024, 12, 31))
YEAR_2025 = (date(2025, 1, 1), date(2025, 12, 31))


def wallets(*rows: tuple[str, tuple[date, date], float]) -> pl.LazyFrame:
    return frame(
        [
            {"customer_id": c, "period_start": p[0], "period_end": p[1], "total_purchases": t}
            for c, p, t in rows
        ],
        WALLET_SCHEMA,
    )


TX = transactions(
    ("A1", "A", date(2024, 10, 1), 500.0, 300.0),
    ("A2", "A", date(2025, 3, 1), 362.0, 200.0),
    ("B1", "B", date(2024, 10, 1), 736.0, 400.0),
    ("B2", "B", date(2025, 3, 1), 362.0, 200.0),
    ("C1", "C", date(2025, 5, 1), 362.0, 200.0),
    ("F1", "F", date(2025, 5, 1), 100.0, 50.0),
    ("G1", "G", date(2025, 5, 1), 100.0, 50.0),
    ("H1", "H", date(2025, 5, 1), 100.0, 50.0),
)
WALLETS = wallets(
    ("A", YEAR_2025, 3650.0),
    ("B", YEAR_2024, 7320.0),
    ("B", YEAR_2025, 3650.0),
    ("C", YEAR_2025, 365.0),
    ("E", YEAR_2025, 1000.0),
    ("G", YEAR_2023, 5000.0),
    ("H", YEAR_2025, 0.0),
)


def _by_customer(lazy: pl.LazyFrame) -> dict[str, dict[str, object]]:
    return {row["customer_id"]: row for row in lazy.collect().to_dicts()}


@pytest.fixture(scope="module")
def shares() -> dict[str, dict[str, object]]:
    return _by_customer(purchase_share(TX, WALLETS, W))


def test_window_is_365_days_starting_2024_07_01() -> None:
    assert (W.start, W.end, W.days) == (date(2024, 7, 1), D, 365)


def test_wallet_half_inside_window_is_prorated_by_overlap_days(shares: dict) -> None:
    a = shares["A"]
    assert a["purchase_share"] == pytest.approx(362 / 1810)  # = 0.2
    assert a["purchase_share"] == pytest.approx(0.2)
    assert a["purchase_share_raw"] == pytest.approx(0.2)
    assert a["purchase_share_clipped"] is False
    assert a["annual_wallet"] == pytest.approx(1810 * 365 / 181)  # = 3,650


def test_revenue_outside_the_wallet_days_is_not_in_the_numerator(shares: dict) -> None:
    # If the 500 of 2024-10-01 counted, K would be 862 / 1,810 ≈ 0.476.
    assert shares["A"]["purchase_share"] != pytest.approx(862 / 1810)


def test_two_wallet_periods_are_prorated_and_summed(shares: dict) -> None:
    b = shares["B"]
    # 7,320 · 184 / 366 = 3,680; 3,650 · 181 / 365 = 1,810; total 5,490 over 365 days
    assert b["purchase_share"] == pytest.approx(1098 / 5490)
    assert b["purchase_share"] == pytest.approx(0.2)
    assert b["annual_wallet"] == pytest.approx(5490.0)


def test_share_above_one_is_clipped_flagged_and_raw_value_kept(shares: dict) -> None:
    c = shares["C"]
    assert c["purchase_share_raw"] == pytest.approx(362 / 181)  # = 2.0
    assert c["purchase_share"] == 1.0
    assert c["purchase_share_clipped"] is True


def test_wallet_without_purchases_gives_zero_not_null(shares: dict) -> None:
    assert shares["E"]["purchase_share"] == 0.0
    assert shares["E"]["purchase_share_clipped"] is False


def test_no_wallet_in_window_gives_null_share(shares: dict) -> None:
    assert "F" not in shares  # no wallet at all: absent, so K is null after the left join
    assert "G" not in shares  # wallet 2023 does not overlap W
    assert shares["H"]["purchase_share"] is None  # declared 0: null, not inf / NaN
    assert shares["H"]["purchase_share_clipped"] is None


def test_no_wallets_at_all_gives_no_rows() -> None:
    assert purchase_share(TX, wallets(), W).collect().height == 0


# --- P·K·M·N (SPEC §3) --------------------------------------------------------------------------


def test_pkmn_equals_the_observed_annual_gross_margin() -> None:
    """D = 2025-12-31, W = calendar 2025, tenure > 1 year so N is not scaled.

    I: 2025-02-01 400/300, 2025-08-01 600/400 → revenue 1,000, margin 300,
       M = 0.3, N = 2; wallet 2025 = 4,000 → K = 0.25, P = AOV / K = 500 / 0.25 = 2,000;
       P·K·M·N = 2,000 · 0.25 · 0.3 · 2 = 300 = annual gross margin.
    J: same purchases, wallet 500 → raw K = 2 (clipped to 1): the identity uses
       the raw K, P = 500 / 2 = 250 → 250 · 2 · 0.3 · 2 = 300.
    Z: no order in W (N = 0) → P and P·K·M·N null, not infinite.
    """
    metrics = Metrics()
    tx = costed_transactions(
        transactions(
            ("I0", "I", date(2024, 3, 1), 100.0, 50.0),
            ("I1", "I", date(2025, 2, 1), 400.0, 300.0),
            ("I2", "I", date(2025, 8, 1), 600.0, 400.0),
            ("J0", "J", date(2024, 3, 1), 100.0, 50.0),
            ("J1", "J", date(2025, 2, 1), 400.0, 300.0),
            ("J2", "J", date(2025, 8, 1), 600.0, 400.0),
            ("Z0", "Z", date(2024, 3, 1), 100.0, 50.0),
        ),
        metrics,
    )
    window = trailing(AS_OF, 365)
    wallet = wallets(("I", YEAR_2025, 4000.0), ("J", YEAR_2025, 500.0), ("Z", YEAR_2025, 800.0))
    first = tx.group_by("customer_id").agg(
        pl.col("transaction_date").min().alias("first_purchase_date")
    )
    joined = (
        first.join(window_metrics(tx, window), on="customer_id", how="left")
        .with_columns(pl.col("orders").fill_null(0), pl.col("gross_margin").fill_null(0.0))
        .pipe(annualised, AS_OF, metrics)
        .join(purchase_share(tx, wallet, window), on="customer_id", how="left")
    )
    rows = _by_customer(contribution_identity(joined))
    i, j, z = rows["I"], rows["J"], rows["Z"]
    assert i["wallet_per_order"] == pytest.approx(2000.0)
    assert i["annual_margin_pkmn"] == pytest.approx(300.0)
    assert i["annual_margin_pkmn"] == pytest.approx(i["annual_gross_margin"])
    assert j["purchase_share"] == 1.0
    assert j["wallet_per_order"] == pytest.approx(250.0)
    assert j["annual_margin_pkmn"] == pytest.approx(j["annual_gross_margin"])
    assert j["annual_margin_pkmn"] == pytest.approx(300.0)
    assert z["purchase_frequency"] == 0
    assert z["wallet_per_order"] is None
    assert z["annual_margin_pkmn"] is None


def test_pkmn_holds_for_a_short_tenure_and_a_wallet_covering_part_of_w() -> None:
    """Issue 9.3: P·K and N annualised over the same period, so P·K·M·N = Q exactly.

    D = 2025-12-31, W = calendar 2025.
    S: first purchase 2025-10-02 (tenure 91 days): 300/200 and 2025-11-15 200/100 →
       revenue 500, margin 200, M = 0.4, N = 2 · 365/91 = 8.022, Q = 200 · 365/91 = 802.20;
       wallet 2025 of 2,000 → K = 500 / 2,000 = 0.25. Our revenue per order is 250, so the
       customer's purchase per occasion across suppliers is P = 250 / 0.25 = 1,000 and
       P·K·M·N = 1,000 · 0.25 · 0.4 · 8.022 = 802.20. (P = annual wallet / N = 249.32 gave
       200, 75 % short: the wallet was annualised over its 365 days, N over 91.)
    U: tenure > 1 year, 2025-03-01 400/200 and 2025-09-01 100/50 → revenue 500, margin 250,
       M = 0.5, N = 2, Q = 250; wallet 2025-07-01 … 12-31 (184 days) of 1,000 → K = 100 /
       1,000 = 0.1 (only the September order is on the wallet's days); P = 250 / 0.1 = 2,500
       and P·K·M·N = 2,500 · 0.1 · 0.5 · 2 = 250. (Before: P = 1,000 · 365/184 / 2 = 991.85
       → 99.18.)
    """
    metrics = Metrics()
    tx = costed_transactions(
        transactions(
            ("S1", "S", date(2025, 10, 2), 300.0, 200.0),
            ("S2", "S", date(2025, 11, 15), 200.0, 100.0),
            ("U0", "U", date(2024, 3, 1), 100.0, 50.0),
            ("U1", "U", date(2025, 3, 1), 400.0, 200.0),
            ("U2", "U", date(2025, 9, 1), 100.0, 50.0),
        ),
        metrics,
    )
    window = trailing(AS_OF, 365)
    wallet = wallets(("S", YEAR_2025, 2000.0), ("U", (date(2025, 7, 1), YEAR_2025[1]), 1000.0))
    first = tx.group_by("customer_id").agg(
        pl.col("transaction_date").min().alias("first_purchase_date")
    )
    joined = (
        first.join(window_metrics(tx, window), on="customer_id", how="left")
        .pipe(annualised, AS_OF, metrics)
        .join(purchase_share(tx, wallet, window), on="customer_id", how="left")
    )
    rows = _by_customer(contribution_identity(joined))
    s, u = rows["S"], rows["U"]
    assert s["annual_gross_margin"] == pytest.approx(200 * 365 / 91)
    assert s["purchase_share"] == pytest.approx(0.25)
    assert s["wallet_per_order"] == pytest.approx(1000.0)
    assert s["annual_margin_pkmn"] == pytest.approx(200 * 365 / 91, rel=1e-12)
    assert u["purchase_share"] == pytest.approx(0.1)
    assert u["wallet_per_order"] == pytest.approx(2500.0)
    assert u["annual_margin_pkmn"] == pytest.approx(250.0, rel=1e-12)


def test_pkmn_is_null_without_a_wallet() -> None:
    rows = pl.LazyFrame(
        {
            "customer_id": ["X"],
            "purchase_frequency": [4.0],
            "avg_order_value": [100.0],
            "purchase_share_raw": [None],
            "margin_rate": [0.25],
        },
        schema_overrides={"purchase_share_raw": pl.Float64},
    )
    x = contribution_identity(rows).collect().row(0, named=True)
    assert x["wallet_per_order"] is None
    assert x["annual_margin_pkmn"] is None  # null, never a silent 0


# --- prospect estimate --------------------------------------------------------------------------

PROSPECT_FRAME = pl.LazyFrame(
    {
        # buyers in x: A 100/40, B 300/60 → M_x = 100 / 400 = 0.25
        # buyer in z: C 100/50; base M = (40 + 60 + 50) / 500 = 0.3
        # R (segment y) only has returns: revenue −50 is not a buyer, so y has no buyers
        "customer_id": ["A", "B", "C", "R", "P", "Q", "N"],
        "segment": ["x", "x", "z", "y", "x", "y", "x"],
        "revenue": [100.0, 300.0, 100.0, -50.0, 0.0, 0.0, 0.0],
        "gross_margin": [40.0, 60.0, 50.0, -20.0, 0.0, 0.0, 0.0],
        "is_prospect": [False, False, False, False, True, True, True],
        "annual_wallet": [900.0, None, None, None, 1000.0, 1000.0, None],
    }
)


def test_prospect_estimate_is_wallet_times_target_share_times_segment_rate() -> None:
    rows = _by_customer(
        prospect_estimate(PROSPECT_FRAME, segment_margin_units(PROSPECT_FRAME), Metrics())
    )
    assert rows["P"]["estimated_annual_margin"] == pytest.approx(1000 * 0.3 * 0.25)  # = 75


def test_prospect_in_segment_without_buyers_falls_back_to_base_rate() -> None:
    rows = _by_customer(
        prospect_estimate(PROSPECT_FRAME, segment_margin_units(PROSPECT_FRAME), Metrics())
    )
    # y has no buyers (R's returns do not make it one): base rate 150 / 500 = 0.3
    assert rows["Q"]["estimated_annual_margin"] == pytest.approx(1000 * 0.3 * 0.3)  # = 90


def test_target_share_is_configurable() -> None:
    rows = _by_customer(
        prospect_estimate(
            PROSPECT_FRAME, segment_margin_units(PROSPECT_FRAME), Metrics(target_share=0.5)
        )
    )
    assert rows["P"]["estimated_annual_margin"] == pytest.approx(1000 * 0.5 * 0.25)  # = 125


def test_no_estimate_for_buyers_or_prospects_without_wallet() -> None:
    rows = _by_customer(
        prospect_estimate(PROSPECT_FRAME, segment_margin_units(PROSPECT_FRAME), Metrics())
    )
    assert rows["A"]["estimated_annual_margin"] is None  # existing customer, wallet or not
    assert rows["N"]["estimated_annual_margin"] is None  # prospect with no wallet


def test_no_buyers_anywhere_gives_null_not_nan() -> None:
    prospects_only = PROSPECT_FRAME.filter(pl.col("is_prospect"))
    rows = _by_customer(
        prospect_estimate(prospects_only, segment_margin_units(prospects_only), Metrics())
    )
    assert rows["P"]["estimated_annual_margin"] is None

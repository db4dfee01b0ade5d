"""Pandera schemas of the output tables (SPEC §9), checked on every write.

Column names are the canonical ones BI models bind to; money is DOUBLE in
base currency, dates are DATE. The partition key `as_of_date` lives in the
folder name, not in these frames. `metadata["key"]` names the unique key.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from customer_equity.settings import STAGES
from customer_equity.transforms.maximum_likelihood import GRADIENT_TOLERANCE

FLOAT, INT, TEXT, DATE, BOOL = pl.Float64, pl.Int64, pl.String, pl.Date, pl.Boolean


def _col(
    dtype: type[pl.DataType],
    description: str,
    *,
    nullable: bool = True,
    checks: list[pa.Check] | None = None,
) -> pa.Column:
    return pa.Column(dtype, nullable=nullable, checks=checks, description=description)


def _rows(name: str, predicate: pl.Expr) -> pa.Check:
    """A cross-column rule that every row must satisfy (nulls pass)."""
    return pa.Check(
        lambda data: data.lazyframe.select(predicate.fill_null(True)), name=name, description=name
    )


def _table(
    name: str,
    key: tuple[str, ...],
    columns: dict[str, pa.Column],
    checks: list[pa.Check],
    description: str,
) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        columns,
        checks=checks,
        unique=list(key),
        strict=True,
        ordered=False,
        name=name,
        description=description,
        metadata={"key": key},
    )


FRACTION = [pa.Check.in_range(0.0, 1.0)]
NON_NEGATIVE = [pa.Check.ge(0)]
CUSTOMER_ID = _col(TEXT, "customer key", nullable=False)

CUSTOMER_METRICS = _table(
    "customer_metrics",
    ("customer_id",),
    {
        "customer_id": CUSTOMER_ID,
        "segment": _col(TEXT, "segment from the customers extract"),
        "first_purchase_date": _col(
            DATE, "first day with a purchase (amount ≥ 0: zero-value orders count, returns not)"
        ),
        "last_purchase_date": _col(DATE, "last day with a purchase (amount ≥ 0) up to D"),
        "last_activity_date": _col(
            DATE,
            "the churn rule's last activity: last_purchase_date; for a customer known only "
            "from returns (bought before the data starts), its last return",
        ),
        "orders": _col(
            INT, "distinct transaction_id with amount > 0 in W", nullable=False, checks=NON_NEGATIVE
        ),
        "revenue": _col(FLOAT, "Σ amount in W, returns netted", nullable=False),
        "cost": _col(
            FLOAT, "Σ cost in W (configured margin rate where cost absent)", nullable=False
        ),
        "gross_margin": _col(FLOAT, "revenue − cost in W", nullable=False),
        "margin_rate": _col(FLOAT, "contribution margin rate M = gross_margin / revenue"),
        "avg_order_value": _col(FLOAT, "revenue / orders in W"),
        "purchase_frequency": _col(
            FLOAT, "N: orders per year over min(W, tenure), 30-day floor", checks=NON_NEGATIVE
        ),
        "purchase_share": _col(
            FLOAT, "K: share of the customer's wallet in W, clipped to 1", checks=FRACTION
        ),
        "purchase_share_clipped": _col(BOOL, "K was above 1 before clipping"),
        "annual_gross_margin": _col(FLOAT, "Q: gross margin in W, annualised like N"),
        "annual_contribution": _col(FLOAT, "Q − C: (gross margin − serve cost) annualised"),
        "wallet_per_order": _col(
            FLOAT,
            "P: customer's total purchase per occasion, all suppliers = avg_order_value / K "
            "(unclipped); null without a wallet, with K = 0 or no order",
        ),
        "annual_margin_pkmn": _col(
            FLOAT, "P·K·M·N: equals annual_gross_margin (to rounding) wherever P and M exist"
        ),
        "estimated_annual_margin": _col(
            FLOAT, "potential customers: wallet × target K × segment M"
        ),
        "serve_cost": _col(FLOAT, "development, retention, service, rebate costs in W"),
        "acquisition_cost": _col(FLOAT, "acquisition costs up to D"),
        "core_category": _col(TEXT, "category of the first purchase"),
        "basic_profit": _col(FLOAT, "margin in the core category in W"),
        "cross_sell_profit": _col(FLOAT, "margin in other categories in W"),
        "referral_value": _col(FLOAT, "margin in W of customers this customer referred"),
        "price_concessions": _col(FLOAT, "Σ discount in W"),
        "repeat_purchases": _col(
            INT, "purchase days after the first (model frequency)", checks=NON_NEGATIVE
        ),
        "recency_days": _col(INT, "days from first to last purchase day", checks=NON_NEGATIVE),
        "age_days": _col(INT, "T: days from first purchase day to D", checks=NON_NEGATIVE),
        "monetary_value": _col(FLOAT, "mean margin (or revenue) of repeat purchase days"),
        "tenure_days": _col(INT, "days from first purchase to D, both included"),
        "days_since_last_purchase": _col(
            INT, "D − last_activity_date (the last purchase day, see there)", checks=NON_NEGATIVE
        ),
        "days_to_churn": _col(INT, "days left before the inactivity rule churns the customer"),
        "churned": _col(BOOL, "churned as of D (SPEC §4)", nullable=False),
        "p_alive": _col(FLOAT, "BG/NBD probability the customer is alive at D", checks=FRACTION),
        "revenue_recent": _col(FLOAT, "revenue in the last 180 days", nullable=False),
        "revenue_prior": _col(FLOAT, "revenue in the 180 days before those", nullable=False),
        "wallet_recent": _col(FLOAT, "customer's total business in the last 180 days"),
        "wallet_prior": _col(FLOAT, "customer's total business in the 180 days before"),
        "is_prospect": _col(
            BOOL,
            "known but no transaction up to D (a return alone is not a prospect)",
            nullable=False,
        ),
        "lifecycle_stage": _col(
            TEXT, "SPEC §5 stage", nullable=False, checks=[pa.Check.isin(STAGES)]
        ),
        "stage_reason": _col(TEXT, "the rule that matched, with its figures", nullable=False),
    },
    [
        _rows(
            "last_on_or_after_first", pl.col("last_purchase_date") >= pl.col("first_purchase_date")
        ),
        _rows("recency_within_age", pl.col("recency_days") <= pl.col("age_days")),
        _rows(
            "prospect_has_no_activity",
            pl.col("is_prospect") == pl.col("last_activity_date").is_null(),
        ),
        _rows(
            "last_purchase_is_last_activity",
            pl.col("last_activity_date") == pl.col("last_purchase_date"),
        ),
        _rows(
            "prospect_stage",
            ~pl.col("is_prospect") | pl.col("lifecycle_stage").is_in(["potential", "termination"]),
        ),
        _rows(
            "churned_is_termination",
            pl.col("churned") == (pl.col("lifecycle_stage") == "termination"),
        ),
    ],
    "Per customer as of D: SPEC §3 metrics, churn (§4) and lifecycle stage (§5).",
)

CHURN = _table(
    "churn",
    ("group_by", "group_value"),
    {
        "group_by": _col(TEXT, "grouping: base or a customer attribute", nullable=False),
        "group_value": _col(TEXT, "value of the grouping attribute"),
        "customers_at_start": _col(
            INT, "active customers at D − 365", nullable=False, checks=NON_NEGATIVE
        ),
        "customers_lost": _col(INT, "of those, churned at D", nullable=False, checks=NON_NEGATIVE),
        "churn_rate": _col(FLOAT, "r = lost / at start", checks=FRACTION),
        "avg_lifetime_years": _col(FLOAT, "T = 1 / r", checks=NON_NEGATIVE),
    },
    [_rows("lost_within_base", pl.col("customers_lost") <= pl.col("customers_at_start"))],
    "Churn rate and average lifetime per group over the year ending D (SPEC §4).",
)

COHORT_RETENTION = _table(
    "cohort_retention",
    ("cohort_month", "months_since_first"),
    {
        "cohort_month": _col(DATE, "first day of the first-purchase month", nullable=False),
        "months_since_first": _col(
            INT, "k: calendar months after the cohort month", nullable=False, checks=NON_NEGATIVE
        ),
        "cohort_customers": _col(INT, "customers in the cohort", nullable=False),
        "active_customers": _col(INT, "of those, buying in month k", nullable=False),
        "active_share": _col(FLOAT, "active / cohort", nullable=False, checks=FRACTION),
    },
    [_rows("active_within_cohort", pl.col("active_customers") <= pl.col("cohort_customers"))],
    "Retention triangle by first-purchase month (SPEC §4).",
)

DATA_QUALITY = _table(
    "data_quality",
    ("run_id", "extract_kind", "file_name", "file_sha256", "status"),
    {
        "run_id": _col(TEXT, "flow run that saw the file", nullable=False),
        "extract_kind": _col(
            TEXT,
            "transactions, customers, wallets, costs or holdings (else an unknown inbox folder)",
            nullable=False,
        ),
        "file_name": _col(TEXT, "extract file name in the inbox", nullable=False),
        "file_sha256": _col(TEXT, "content hash; a file loads once", nullable=False),
        "status": _col(
            TEXT,
            "loaded, skipped (already loaded), failed, waiting (still arriving: read later), "
            "or released (rows of this file held in quarantine by an earlier run, loaded now)",
            nullable=False,
            checks=[pa.Check.isin(["loaded", "skipped", "failed", "waiting", "released"])],
        ),
        "rows_read": _col(INT, "data rows in the file (0 when released)", nullable=False),
        "rows_loaded": _col(INT, "new keys stored", nullable=False),
        "rows_replaced": _col(INT, "corrections of a stored row (old one audited)", nullable=False),
        "rows_duplicate": _col(INT, "identical to the stored version", nullable=False),
        "rows_quarantined": _col(INT, "failed a row check; kept with reason", nullable=False),
        "rows_released": _col(
            INT,
            "quarantined rows whose reason cleared (customer now known, date no longer in "
            "the future), loaded by this run",
            nullable=False,
        ),
        "error": _col(TEXT, "file-level reason, null unless failed"),
        "latest_run_id": _col(
            TEXT,
            "the run that wrote this partition: its rows have run_id = latest_run_id; "
            "the other rows are files loaded for D by earlier runs, with their counts",
            nullable=False,
        ),
    },
    [
        _rows(
            "rows_accounted",
            pl.col("rows_read") + pl.col("rows_released")
            == pl.col("rows_loaded")
            + pl.col("rows_replaced")
            + pl.col("rows_duplicate")
            + pl.col("rows_quarantined"),
        ),
        _rows("error_iff_failed", pl.col("error").is_null() == (pl.col("status") != "failed")),
    ],
    "Per as-of date: every file the latest run saw, and every file earlier runs of the same "
    "date loaded, one row per run and outcome (SPEC §9).",
)

CUSTOMER_VALUE = _table(
    "customer_value",
    ("customer_id",),
    {
        "customer_id": CUSTOMER_ID,
        "segment": _col(TEXT, "segment (the default grouping for r)"),
        "lifecycle_stage": _col(TEXT, "SPEC §5 stage", nullable=False),
        "contribution_used": _col(FLOAT, "m: annual contribution (prospects: wallet estimate)"),
        "churn_rate": _col(
            FLOAT, "r used (group's, or the fallback)", nullable=False, checks=FRACTION
        ),
        "expected_lifetime_years": _col(
            FLOAT, "T = 1 / r, capped at max_lifetime_years", nullable=False, checks=NON_NEGATIVE
        ),
        "lifetime_source": _col(
            TEXT,
            "which r gave T: the customer's group's own (segment), the whole base's, or the cap",
            nullable=False,
            checks=[pa.Check.isin(["segment", "base", "cap"])],
        ),
        "lifetime_reason": _col(TEXT, "why that r, in words", nullable=False),
        "discount_rate": _col(FLOAT, "i, annual", nullable=False),
        "pvifa": _col(FLOAT, "(1 − (1 + i)^−T) / i", nullable=False),
        "clv_annuity": _col(FLOAT, "seed method: m · PVIFA(i, T) (prospects: less acquisition)"),
        "clv_projection": _col(FLOAT, "seed method year by year over projection_years"),
        "clv_retention": _col(FLOAT, "Gupta & Lehmann: m · ρ / (1 + i − ρ)"),
        "worth_acquiring": _col(BOOL, "prospects: projected CLV exceeds acquisition cost"),
        "p_alive": _col(FLOAT, "BG/NBD P(alive) at D", checks=FRACTION),
        "expected_purchases": _col(
            FLOAT, "BG/NBD purchases expected over the horizon", checks=NON_NEGATIVE
        ),
        "expected_value_per_purchase": _col(FLOAT, "Gamma-Gamma value of one purchase"),
        "clv_probabilistic": _col(
            FLOAT,
            "Σ over months m = 1 … horizon of expected purchases × value per purchase / "
            "(1 + i)^(m/12), months of 365.25/12 days counted at their end",
        ),
        "horizon_months": _col(INT, "probabilistic horizon", nullable=False),
    },
    [],
    "Lifetime value per customer by each SPEC §6 method, with the inputs used.",
)

CUSTOMER_TIERS = _table(
    "customer_tiers",
    ("customer_id", "rule_set"),
    {
        "customer_id": CUSTOMER_ID,
        "rule_set": _col(TEXT, "named rule set that assigned the tier", nullable=False),
        "value_tier": _col(
            TEXT,
            "core, important or general",
            nullable=False,
            checks=[pa.Check.isin(["core", "important", "general"])],
        ),
        "unprofitable": _col(BOOL, "active with CLV ≤ 0 (always general)", nullable=False),
        "lifecycle_stage": _col(TEXT, "SPEC §5 stage", nullable=False),
        "action": _col(TEXT, "recommended action for (tier, stage)", nullable=False),
        "tier_metric": _col(TEXT, "metric or attribute the rule set tiers on", nullable=False),
        "tier_metric_value": _col(TEXT, "its value for the customer"),
        "segment": _col(TEXT, "segment"),
        "region": _col(TEXT, "region"),
        "risk_profile": _col(TEXT, "risk profile (wealth management)"),
        "clv_annuity": _col(FLOAT, "seed-method CLV"),
    },
    [
        _rows(
            "unprofitable_is_general", ~pl.col("unprofitable") | (pl.col("value_tier") == "general")
        )
    ],
    "Value tier and recommended action per customer and rule set (SPEC §8).",
)

CUSTOMER_EQUITY = _table(
    "customer_equity",
    ("group_by", "group_value"),
    {
        "group_by": _col(
            TEXT, "base, segment, value_tier or (with holdings) aum_tier", nullable=False
        ),
        "group_value": _col(TEXT, "value of the grouping"),
        "customers": _col(INT, "active customers", nullable=False, checks=NON_NEGATIVE),
        "churn_rate": _col(
            FLOAT,
            "r used: base and segments their own r from `churn` (the same number), else the "
            "base's or 1 / max_lifetime_years as lifetime_source says; value tiers (no history "
            "a year ago) the mean r of their members' CLVs",
            checks=FRACTION,
        ),
        "avg_lifetime_years": _col(FLOAT, "T = 1 / r, at most max_lifetime_years"),
        "lifetime_source": _col(
            TEXT,
            "which r: the group's own (base, segment), the base's (base), the cap (cap), or "
            "the members' mean (members)",
            checks=[pa.Check.isin(["base", "segment", "cap", "members"])],
        ),
        "lifetime_reason": _col(TEXT, "why that r, in words"),
        "avg_annual_contribution": _col(FLOAT, "Q − C per active customer"),
        "discount_rate": _col(FLOAT, "i"),
        "pvifa": _col(FLOAT, "PVIFA(i, T)"),
        "clv_per_customer": _col(FLOAT, "(Q − C) · PVIFA(i, T)"),
        "customer_equity": _col(FLOAT, "CLV per customer × customers"),
    },
    [],
    "Customer equity per group by the source's four steps (SPEC §7).",
)

RETENTION_ECONOMICS = _table(
    "retention_economics",
    ("group_by", "group_value"),
    {
        "group_by": _col(
            TEXT, "base, segment, value_tier or (with holdings) aum_tier", nullable=False
        ),
        "group_value": _col(TEXT, "value of the grouping"),
        "customers": _col(INT, "active customers", nullable=False, checks=NON_NEGATIVE),
        "churn_rate": _col(FLOAT, "r of the group (as in customer_equity)", checks=FRACTION),
        "avg_lifetime_years": _col(FLOAT, "T = 1 / r"),
        "replacements_per_year": _col(
            FLOAT,
            "r × customers: new customers needed a year to hold the base",
            checks=NON_NEGATIVE,
        ),
        "customers_acquired": _col(
            INT, "customers whose first purchase is in the 365 days ending on D", nullable=False
        ),
        "acquisition_cost_per_customer": _col(
            FLOAT, "mean acquisition cost of those (null without a costs extract)"
        ),
        "acquisition_cost_source": _col(
            TEXT, "group, or base when the group acquired nobody in the last 365 days"
        ),
        "replacement_cost_per_year": _col(
            FLOAT, "replacements_per_year × acquisition_cost_per_customer"
        ),
        "customer_equity": _col(FLOAT, "SPEC §7 equity at r"),
        "equity_churn_minus_5pts": _col(FLOAT, "equity at r − 0.05 (floored at 1 / max lifetime)"),
        "equity_churn_minus_10pts": _col(FLOAT, "equity at r − 0.10 (floored at 1 / max lifetime)"),
        "equity_churn_plus_5pts": _col(FLOAT, "equity at r + 0.05 (at most 1)"),
        "equity_per_churn_point": _col(
            FLOAT, "equity at r − 0.01 minus equity at r: one point less churn"
        ),
    },
    [
        _rows(
            "replacements_within_base",
            pl.col("replacements_per_year") <= pl.col("customers"),
        ),
    ],
    "Retention economics per group: replacements, their cost, equity under churn scenarios "
    "(SPEC §11).",
)

MODEL_FIT = _table(
    "model_fit",
    ("model", "parameter"),
    {
        "model": _col(
            TEXT,
            "bgnbd or gamma_gamma",
            nullable=False,
            checks=[pa.Check.isin(["bgnbd", "gamma_gamma"])],
        ),
        "parameter": _col(TEXT, "parameter name", nullable=False),
        "value": _col(FLOAT, "maximum-likelihood estimate"),
        "log_likelihood": _col(FLOAT, "at the estimate"),
        "customers": _col(INT, "customers the fit used", nullable=False),
        "converged": _col(
            BOOL,
            "largest gradient of the mean log-likelihood (in log-parameters) at most "
            f"{GRADIENT_TOLERANCE:g} and no parameter on its search bound (the optimiser's own "
            "stop flag is not used); false when the model was not fitted",
            nullable=False,
        ),
        "time_unit": _col(TEXT, "days or weeks", nullable=False),
        "message": _col(
            TEXT,
            "converged or not and why, how the optimiser stopped, which columns an unused fit "
            "left null; or why the model was not fitted",
        ),
    },
    [],
    "Fitted BG/NBD and Gamma-Gamma parameters for D (SPEC §6).",
)

MODEL_CALIBRATION = _table(
    "model_calibration",
    ("repeat_purchases_bucket",),
    {
        "repeat_purchases_bucket": _col(
            TEXT, "calibration-period repeat purchases (7+ pooled)", nullable=False
        ),
        "customers": _col(INT, "customers in the bucket", nullable=False),
        "actual_holdout_purchases": _col(FLOAT, "mean purchases observed in the holdout"),
        "predicted_holdout_purchases": _col(
            FLOAT, "mean BG/NBD prediction; null without a usable fit (see message)"
        ),
        "calibration_end": _col(DATE, "last day of the calibration period", nullable=False),
        "holdout_days": _col(INT, "length of the holdout period", nullable=False),
        "message": _col(
            TEXT,
            "the calibration fit's message; why predictions are null when it was not fitted, "
            "did not converge or predicted no finite value",
            nullable=False,
        ),
    },
    [],
    "BG/NBD calibration/holdout validation table (SPEC §6).",
)

AUM_TIERS = ("mass", "affluent", "private_banking")
RETURN_EXPECTATIONS = ("stable", "medium", "high")
HOLDINGS_SHARE = "share of AUM"

CUSTOMER_HOLDINGS = _table(
    "customer_holdings",
    ("customer_id",),
    {
        "customer_id": CUSTOMER_ID,
        "segment": _col(TEXT, "segment from the customers extract"),
        "risk_profile": _col(TEXT, "declared risk profile (customers extract)"),
        "aum": _col(
            FLOAT,
            "Σ balance of the positions of D (latest balance per product, not stale), "
            "liability classes excluded",
            nullable=False,
            checks=NON_NEGATIVE,
        ),
        "aum_tier": _col(
            TEXT,
            "mass, affluent or private_banking (holdings.aum_tiers)",
            nullable=False,
            checks=[pa.Check.isin(AUM_TIERS)],
        ),
        "aum_180d_ago": _col(FLOAT, "AUM of D − 180 by the same rule; null: no position then"),
        "aum_change": _col(FLOAT, "aum / aum_180d_ago − 1; null without an earlier AUM"),
        "liabilities": _col(FLOAT, "Σ balance in liability classes (loans)", nullable=False),
        "products": _col(INT, "products held (balance > 0)", nullable=False, checks=NON_NEGATIVE),
        "asset_classes": _col(
            INT, "asset classes held (balance > 0)", nullable=False, checks=NON_NEGATIVE
        ),
        "asset_class_herfindahl": _col(
            FLOAT, "Σ (share of each asset class)²; 1 = all in one", checks=FRACTION
        ),
        "product_herfindahl": _col(
            FLOAT, "Σ (share of each product)²; 1 = all in one", checks=FRACTION
        ),
        "largest_product_share": _col(
            FLOAT, "largest product's " + HOLDINGS_SHARE, checks=FRACTION
        ),
        "holdings_risk_level": _col(
            FLOAT,
            "balance-weighted mean product risk level (R1–R5)",
            checks=[pa.Check.in_range(1, 5)],
        ),
        "return_expectation": _col(
            TEXT,
            "stable (risk ≤ 2), medium (≤ 3.5) or high",
            checks=[pa.Check.isin(RETURN_EXPECTATIONS)],
        ),
        "tolerated_risk_level": _col(INT, "highest level the profile tolerates; null: unknown"),
        "unsuitable_share": _col(
            FLOAT, HOLDINGS_SHARE + " in products above the tolerated level", checks=FRACTION
        ),
        "suitability_flag": _col(BOOL, "unsuitable_share > 0; null for an unknown profile"),
        "high_liquidity_share": _col(
            FLOAT, HOLDINGS_SHARE + " in high-liquidity products", checks=FRACTION
        ),
        "min_liquid_share": _col(
            FLOAT, "the profile's minimum high-liquidity share", nullable=False, checks=FRACTION
        ),
        "liquidity_gap": _col(BOOL, "high_liquidity_share below min_liquid_share"),
        "stale_products": _col(
            INT,
            "products whose latest balance is older than stale_days (not in AUM)",
            nullable=False,
            checks=NON_NEGATIVE,
        ),
        "last_balance_date": _col(DATE, "newest balance of the positions", nullable=False),
    },
    [
        _rows(
            "flag_iff_unsuitable", pl.col("suitability_flag") == (pl.col("unsuitable_share") > 0)
        ),
        _rows(
            "gap_iff_below_minimum",
            pl.col("liquidity_gap")
            == (pl.col("high_liquidity_share") < pl.col("min_liquid_share")),
        ),
        _rows(
            "largest_share_within_herfindahl",
            pl.col("product_herfindahl") >= pl.col("largest_product_share") ** 2 - 1e-9,
        ),
        _rows(
            "products_hold_the_classes",
            pl.col("products") >= pl.col("asset_classes"),
        ),
    ],
    "Per customer with a position on D: what they hold with us (SPEC §10).",
)

HOLDINGS_MIX = _table(
    "holdings_mix",
    ("customer_id", "dimension", "bucket"),
    {
        "customer_id": CUSTOMER_ID,
        "dimension": _col(
            TEXT,
            "asset_class, liquidity or goal",
            nullable=False,
            checks=[pa.Check.isin(["asset_class", "liquidity", "goal"])],
        ),
        "bucket": _col(
            TEXT, "the class, liquidity level or goal (unspecified: none given)", nullable=False
        ),
        "balance": _col(FLOAT, "Σ balance in the bucket", nullable=False, checks=NON_NEGATIVE),
        "share": _col(FLOAT, HOLDINGS_SHARE + " in the bucket", nullable=False, checks=FRACTION),
    },
    [
        _rows(
            "shares_add_up_to_one",
            (pl.col("share").sum().over("customer_id", "dimension") - 1.0).abs() < 1e-9,
        )
    ],
    "AUM of each customer by asset class, liquidity and goal, positions of D (SPEC §10).",
)

OUTPUT_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    schema.name: schema
    for schema in (
        CUSTOMER_METRICS,
        CHURN,
        COHORT_RETENTION,
        CUSTOMER_VALUE,
        CUSTOMER_TIERS,
        CUSTOMER_EQUITY,
        RETENTION_ECONOMICS,
        MODEL_FIT,
        MODEL_CALIBRATION,
        DATA_QUALITY,
        CUSTOMER_HOLDINGS,
        HOLDINGS_MIX,
    )
}


def polars_schema(table: str) -> dict[str, type[pl.DataType]]:
    """Column name -> Polars dtype of `table`, in the declared order."""
    return {name: column.dtype.type for name, column in OUTPUT_SCHEMAS[table].columns.items()}


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to the declared dtypes, order the columns as declared and validate (data checks too)."""
    shaped = frame.select(
        [pl.col(name).cast(dtype) for name, dtype in polars_schema(table).items()]
    )
    return OUTPUT_SCHEMAS[table].validate(shaped, lazy=True)

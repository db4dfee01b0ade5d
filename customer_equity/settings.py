"""One typed, validated settings object for the whole pipeline.

Loaded from a TOML file (`--config FILE`); every key is optional. Paths are
relative to the config file's folder (or to the working directory when no
file is given). Unknown keys are errors, so a typo never silently falls back
to a default.
"""

from __future__ import annotations

import inspect
import tomllib
import zoneinfo
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from customer_equity.transforms.windows import DAYS_PER_YEAR

ExtractKind = Literal["transactions", "customers", "wallets", "costs", "holdings"]
EXTRACT_KINDS: tuple[ExtractKind, ...] = (
    "transactions",
    "customers",
    "wallets",
    "costs",
    "holdings",
)
# Customers first: the unknown-customer check of the other kinds reads them.
INGEST_ORDER: tuple[ExtractKind, ...] = (
    "customers",
    "transactions",
    "wallets",
    "costs",
    "holdings",
)

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveDays = Annotated[int, Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(Strict):
    inbox: Path = Field(Path("data/inbox"), description="extract folders, one per kind")
    warehouse: Path = Field(Path("data/warehouse.duckdb"), description="the DuckDB file")
    lake: Path = Field(Path("data/lake"), description="root of the Parquet output tables")

    def resolved(self, base: Path) -> Paths:
        return Paths(**{name: (base / value).resolve() for name, value in self})


class ExtractFormat(Strict):
    """How one kind of extract is spelled by the source system."""

    columns: dict[str, str] = Field(
        default_factory=dict, description="source column name -> canonical name (SPEC §2)"
    )
    date_format: str | None = Field(
        default=None,
        description="strptime format tried first; ISO 8601 and YYYYMMDD are always accepted",
    )
    encoding: Literal["utf-8", "gb18030", "gbk"] = Field(
        "utf-8", description="text encoding of CSV extracts (UTF-8 may carry a BOM)"
    )
    delimiter: str = Field(default=",", min_length=1, max_length=1, description="CSV separator")
    extra_columns: Literal["ignore", "keep"] = Field(
        default="ignore", description="columns beyond SPEC §2: dropped, or kept in the warehouse"
    )


class Inbox(Strict):
    """When a file in the inbox is complete enough to read.

    Files with partial-transfer names (`.tmp`, `.part`, `.partial`, `.filepart`,
    `~$…`, dotfiles) are never read. A file modified within `settle_seconds`
    (still being copied) or, with `require_done_marker`, without its
    `<name>.done` file is left for the next run and reported as waiting.
    """

    settle_seconds: Annotated[float, Field(ge=0)] = Field(
        60.0, description="a file modified more recently than this is still arriving: waiting"
    )
    require_done_marker: bool = Field(
        False, description="read a file only once `<file name>.done` exists beside it"
    )


class Extracts(Strict):
    transactions: ExtractFormat = ExtractFormat()
    customers: ExtractFormat = ExtractFormat()
    wallets: ExtractFormat = ExtractFormat()
    costs: ExtractFormat = ExtractFormat()
    holdings: ExtractFormat = ExtractFormat()

    def for_kind(self, kind: ExtractKind) -> ExtractFormat:
        return getattr(self, kind)


class Quality(Strict):
    base_currency: str = Field(
        default="USD",
        min_length=3,
        max_length=3,
        description="rows in other currencies: quarantine",
    )
    future_tolerance_days: Annotated[int, Field(ge=0)] = Field(
        1, description="dates later than the run day plus this: quarantine"
    )
    earliest_date: date = Field(
        date(1900, 1, 1),
        description="dates before this (ERP sentinels such as 0001-01-01, BC dates): quarantine",
    )
    time_zone: str = Field(
        "UTC",
        description="business time zone: a timestamp with a UTC offset is converted to it "
        "before its date is taken; one without an offset is read as written",
    )
    max_abs_amount: Annotated[float, Field(gt=0)] = Field(
        10_000_000.0, description="absurd magnitude bound for amounts and costs: quarantine"
    )
    unknown_customers: Literal["quarantine", "accept"] = Field(
        default="accept",
        description="transactions, costs and holdings of customers missing from a customers "
        "extract (when one exists)",
    )
    pii_columns: tuple[str, ...] = Field(
        default=(
            "name",
            "full_name",
            "email",
            "phone",
            "mobile",
            "address",
            "contact",
            "id_number",
            # Chinese ERP exports: name, phone, mobile, e-mail, address, ID card, contact
            "姓名",
            "电话",
            "手机",
            "邮箱",
            "地址",
            "身份证",
            "联系人",
        ),
        description="source columns dropped on read: never stored, never in outputs",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _iana_zone(value)


def _iana_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from None
    return value


class Metrics(Strict):
    window_days: PositiveDays = Field(DAYS_PER_YEAR, description="W: days ending on D (SPEC §3)")
    frequency_floor_days: PositiveDays = Field(
        30, description="shortest observation a frequency is annualised over"
    )
    default_margin_rate: Fraction = Field(
        0.25, description="margin rate where a transaction has no cost"
    )
    category_margin_rates: dict[str, Fraction] = Field(
        default_factory=dict, description="per-category margin rate where cost is absent"
    )
    churn_after_days: PositiveDays = Field(
        DAYS_PER_YEAR, description="churned when the last purchase is older than this (SPEC §4)"
    )
    target_share: Fraction = Field(
        default=0.3, description="purchase share K assumed for a potential customer's estimate"
    )


class Lifecycle(Strict):
    development_days: PositiveDays = Field(
        180, description="development: first purchase within this many days (SPEC §5)"
    )
    decline_window_days: PositiveDays = Field(
        180, description="length of each half compared by the decline rule"
    )
    decline_drop: Fraction = Field(
        0.3, description="decline: revenue (or AUM) fell by at least this"
    )
    maturity_share: Fraction = Field(0.6, description="maturity: purchase share at least this")
    decline_on: Literal["revenue", "aum"] = Field(
        "revenue",
        description="decline: compare revenue, or (customers with holdings) AUM (SPEC §10)",
    )


class Model(Strict):
    """The probabilistic method (SPEC §6): BG/NBD and Gamma-Gamma, discounted monthly.

    clv_probabilistic = Σ_{m=1..horizon_months} E[purchases in month m] · E[value per
    purchase] / (1 + i)^(m/12): a month is 365.25/12 days (30.44; 4.348 weeks) and its
    purchases count at its end, at the annual rate i compounded to the month. lifetimes
    (0.11) takes a month as 4.345 weeks (30.415 days), so its CLV over the same horizon is
    lower by 0.056 % (CDNOW master cohort; 0.05-0.06 % on the CDNOW sample over 12 to 36
    months); the fitted parameters and every other prediction agree to 1e-6.
    """

    time_unit: Literal["days", "weeks"] = Field(
        "weeks", description="time unit of the BG/NBD fit (parameters are reported in it)"
    )
    monetary: Literal["margin", "revenue"] = Field(
        "margin", description="value per purchase for Gamma-Gamma and monetary_value"
    )
    horizon_months: Annotated[int, Field(gt=0, le=600)] = Field(
        36, description="probabilistic CLV horizon, in months of 365.25/12 days (see above)"
    )
    discount_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.08, description="annual discount rate i of every CLV method (SPEC §6)"
    )


class Value(Strict):
    group_by: Literal["base", "segment"] = Field(
        "segment", description="the group whose churn rate r gives a customer's lifetime T"
    )
    min_group_size: Annotated[int, Field(ge=1)] = Field(
        30, description="groups with fewer customers a year ago use the whole base's r"
    )
    max_lifetime_years: Annotated[float, Field(gt=0)] = Field(20.0, description="cap on T = 1 / r")
    projection_years: Annotated[int, Field(gt=0, le=100)] = Field(
        10, description="horizon of the year-by-year seed-method projection"
    )


Liquidity = Literal["high", "medium", "low"]
RiskLevel = Annotated[int, Field(ge=1, le=5)]
# SPEC §10 asset types (资产类型); a source with other classes configures its own list.
ASSET_CLASSES = ("cash", "bonds", "equities", "funds", "insurance", "real_estate", "other")
# Risk profiles as SPEC §2 names them, in English and as Chinese sources spell them.
PROFILE_ALIASES = {
    "保守": "conservative",
    "稳健": "steady",
    "平衡": "balanced",
    "进取": "aggressive",
}


def _with_aliases(by_profile: dict[str, float]) -> dict[str, float]:
    aliased = {
        alias: by_profile[name] for alias, name in PROFILE_ALIASES.items() if name in by_profile
    }
    return {**by_profile, **aliased}


class AumTiers(Strict):
    """AUM tiers of the wealth view (SPEC §10), in `customer_holdings.aum_tier`.

    mass: AUM below `affluent`; affluent: from `affluent` up to below
    `private_banking`; private_banking: from `private_banking` on. With holdings,
    `customer_equity` is also grouped by them. They are not value tiers: to let
    AUM drive the actions of SPEC §8, a rule set tiers on `aum` with the same
    thresholds (the README's example `[tiers.rule_sets.aum]`), mapping
    private_banking → core, affluent → important, mass → general.
    """

    affluent: Annotated[float, Field(gt=0)] = Field(
        500_000.0, description="AUM from which a customer is affluent (below: mass)"
    )
    private_banking: Annotated[float, Field(gt=0)] = Field(
        6_000_000.0, description="AUM from which a customer is private banking"
    )

    @model_validator(mode="after")
    def _ordered(self) -> AumTiers:
        if self.private_banking <= self.affluent:
            raise ValueError("private_banking must be above affluent")
        return self


class Holdings(Strict):
    """The wealth view (SPEC §10): how holdings are classified and judged.

    Every asset class but the liability classes needs a liquidity and a risk
    level (1–5, the R1–R5 scale); a row's own `liquidity` or `risk_level`
    overrides its class's. Names are compared in lower case; a risk profile
    not in `tolerated_risk_level` has no suitability (null, not a flag), one
    not in `min_liquid_share` needs the default liquid share.
    """

    asset_classes: tuple[str, ...] = Field(
        ASSET_CLASSES, description="asset classes a holdings row may carry (others: quarantine)"
    )
    liability_classes: tuple[str, ...] = Field(
        (),
        description="classes that may have negative balances (loans); not part of AUM",
    )
    class_liquidity: dict[str, Liquidity] = Field(
        default_factory=lambda: {
            "cash": "high",
            "bonds": "medium",
            "equities": "high",
            "funds": "medium",
            "insurance": "low",
            "real_estate": "low",
            "other": "low",
        },
        description="asset class -> liquidity where a row gives none",
    )
    class_risk_level: dict[str, RiskLevel] = Field(
        default_factory=lambda: {
            "cash": 1,
            "bonds": 2,
            "insurance": 2,
            "funds": 3,
            "other": 3,
            "equities": 4,
            "real_estate": 4,
        },
        description="asset class -> product risk level (R1–R5) where a row gives none",
    )
    stale_days: PositiveDays = Field(
        45, description="a product's latest balance older than this (days before D) is ignored"
    )
    tolerated_risk_level: dict[str, RiskLevel] = Field(
        default_factory=lambda: _with_aliases(
            {"conservative": 2, "steady": 3, "balanced": 4, "aggressive": 5}
        ),
        description="risk profile -> highest product risk level it tolerates",
    )
    min_liquid_share: dict[str, Fraction] = Field(
        default_factory=lambda: _with_aliases({"conservative": 0.3}),
        description="risk profile -> minimum share of AUM in high-liquidity products",
    )
    default_min_liquid_share: Fraction = Field(
        0.1, description="minimum high-liquidity share of every other profile (and unknown ones)"
    )
    aum_tiers: AumTiers = AumTiers()

    @model_validator(mode="after")
    def _consistent(self) -> Holdings:
        classes = set(self.asset_classes)
        named = {
            "asset_classes": self.asset_classes,
            "liability_classes": self.liability_classes,
            "class_liquidity": tuple(self.class_liquidity),
            "class_risk_level": tuple(self.class_risk_level),
            "tolerated_risk_level": tuple(self.tolerated_risk_level),
            "min_liquid_share": tuple(self.min_liquid_share),
        }
        for key, names in named.items():
            if any(name != name.strip().lower() or not name.strip() for name in names):
                raise ValueError(f"{key}: names must be non-empty, trimmed and lower case")
        if not classes:
            raise ValueError("asset_classes: give at least one class")
        for key in ("liability_classes", "class_liquidity", "class_risk_level"):
            unknown = sorted(set(named[key]) - classes)
            if unknown:
                raise ValueError(f"{key}: {unknown} are not among asset_classes")
        for key in ("class_liquidity", "class_risk_level"):
            missing = sorted(classes - set(self.liability_classes) - set(named[key]))
            if missing:
                raise ValueError(f"{key}: no value for asset class(es) {missing}")
        return self


# Vocabulary that config keys refer to (SPEC §5, §8); the rules live in transforms/.
STAGES = ("termination", "potential", "development", "decline", "maturity", "growth")
TIERS = ("core", "important", "general")


class TierRule(Strict):
    """How one named rule set assigns the value tier (SPEC §8).

    percentile: rank active customers by `metric` (highest first); the top
    `core` share is core, the next `important` share important.
    threshold: `metric` ≥ `core` is core, ≥ `important` important.
    mapping: a categorical attribute's value -> tier (`values`), others general.
    """

    metric: str = Field(
        "clv_annuity",
        description="column of customer_metrics/customer_value or an attribute (aum: holdings)",
    )
    method: Literal["percentile", "threshold", "mapping"] = Field(
        "percentile", description="how the tier is assigned (see above the table)"
    )
    core: float = Field(0.10, description="percentile: top share; threshold: minimum value")
    important: float = Field(0.30, description="percentile: next share; threshold: minimum")
    values: dict[str, Literal["core", "important", "general"]] = Field(
        default_factory=dict, description="mapping: attribute value -> tier"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TierRule:
        if self.method == "percentile" and not (
            0 <= self.core <= 1 and 0 <= self.important <= 1 and self.core + self.important <= 1
        ):
            raise ValueError("percentile shares must be within [0, 1] and add up to at most 1")
        if self.method == "threshold" and self.core < self.important:
            raise ValueError("threshold: core must be at least important")
        if self.method == "mapping" and not self.values:
            raise ValueError("mapping: give values = { attribute value = tier }")
        return self


DEFAULT_ACTIONS = {
    "core.decline": "win back",
    "important.decline": "win back",
    "general.decline": "let go",
    "core.maturity": "retain",
    "important.maturity": "retain",
    "general.maturity": "maintain",
    "core.growth": "develop",
    "important.growth": "develop",
    "general.growth": "develop",
    "*.development": "onboard",
    "*.potential": "screen",
    "*.termination": "close out",
}


class Tiers(Strict):
    rule_set: str = Field(default="clv", description="the rule set whose tier drives actions")
    rule_sets: dict[str, TierRule] = Field(
        default_factory=lambda: {"clv": TierRule()}, description="named rule sets (table below)"
    )
    actions: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ACTIONS),
        description='"tier.stage" -> action; "*" matches any tier',
    )

    @model_validator(mode="after")
    def _complete(self) -> Tiers:
        if self.rule_set not in self.rule_sets:
            raise ValueError(f"rule_set {self.rule_set!r} is not among {sorted(self.rule_sets)}")
        missing = [
            f"{tier}.{stage}"
            for tier in TIERS
            for stage in STAGES
            if f"{tier}.{stage}" not in self.actions and f"*.{stage}" not in self.actions
        ]
        if missing:
            raise ValueError(f"actions: no action for {missing}")
        return self

    def action(self, tier: str, stage: str) -> str:
        return self.actions.get(f"{tier}.{stage}") or self.actions[f"*.{stage}"]


class Schedule(Strict):
    """When the `nightly` deployment runs (`customer-equity serve` / `deploy`).

    A scheduled run values the calendar day before its scheduled start, read
    in `timezone`: with the default 02:00, the run of 1 March values 28 February.
    """

    cron: str = Field(
        "0 2 * * *", description="five-field cron expression of the nightly run, in `timezone`"
    )
    timezone: str = Field(
        "UTC", description="IANA time zone of `cron` and of the default as-of date"
    )
    lock_wait_seconds: Annotated[float, Field(ge=0)] = Field(
        3600.0,
        description="how long a scheduled or backfill run waits for another run's warehouse lock",
    )

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        # Prefect checks the fields themselves when the deployment is created; this
        # catches the common slip (a seconds field, a missing one) when settings load.
        if len(value.split()) != 5:
            raise ValueError("cron needs five fields: minute hour day-of-month month day-of-week")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _iana_zone(value)


# Peak memory of the bucket step per transaction of the bucket (measured by
# bench/bench_pipeline.py; see README "Scale").
BYTES_PER_BUCKET_TRANSACTION = 1_000


class Engine(Strict):
    """How the run uses the machine: one memory budget that DuckDB and the batches follow."""

    memory_limit: ByteSize = Field(
        "4GiB",
        validate_default=True,
        description='memory budget of one run, e.g. "4GiB"; DuckDB spills beyond its share',
    )

    buckets: Annotated[int, Field(ge=0)] = Field(
        0,
        description="customer-hash buckets the transforms run in; 0: enough to fit the budget",
    )
    bucket_storage: str | None = Field(
        None,
        description="folder or fsspec URL (s3://…) for each run's bucket files; "
        "default: beside the warehouse",
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="fsspec options of bucket_storage, e.g. endpoint_url (secrets: environment)",
    )
    executor: Literal["local", "dask"] = Field(
        "local",
        description="where bucket steps run: this process, one bucket at a time, or Dask",
    )
    scheduler_address: str | None = Field(
        None,
        description='dask: an existing cluster (e.g. "tcp://10.0.0.5:8786"); none: a local one',
    )
    dask_workers: Annotated[int, Field(ge=1)] = Field(
        2, description="dask without scheduler_address: worker processes of the local cluster"
    )

    @property
    def concurrent_buckets(self) -> int:
        """Buckets in memory at once on this machine: one, or one per local Dask worker.

        Workers of an existing cluster have memory of their own: the budget is per worker.
        """
        local_cluster = self.executor == "dask" and self.scheduler_address is None
        return self.dask_workers if local_cluster else 1

    @property
    def transactions_per_bucket(self) -> int:
        """Transactions one bucket may hold: the bucket step's peak is about
        BYTES_PER_BUCKET_TRANSACTION per transaction, and the buckets in memory at
        once share half the budget."""
        share = int(self.memory_limit) // 2 // self.concurrent_buckets
        return max(share // BYTES_PER_BUCKET_TRANSACTION, 10_000)

    @property
    def duckdb_memory_limit(self) -> str:
        """DuckDB's share of the budget (it spills beyond it); the rest is for Polars batches."""
        return f"{max(int(self.memory_limit) * 6 // 10 // 1024**2, 64)}MiB"

    @property
    def ingest_duckdb_memory_limit(self) -> str:
        """DuckDB's share while ingesting: the batches in flight take the rest.

        Measured (bench/bench_ingest.py): DuckDB's buffer pool, the batch being
        parsed, staged and validated, and Python's own heap must stay within the
        budget; DuckDB gets 30 % and spills the file's rows beyond it.
        """
        return f"{max(int(self.memory_limit) * 3 // 10 // 1024**2, 64)}MiB"

    @property
    def ingest_batch_bytes(self) -> int:
        """CSV text per ingest batch: 1/64 of the budget (64 MiB of 4 GiB).

        A batch lives as raw bytes, Arrow text, a Polars frame, its staged copy
        and pandera's copies at once: about ten times its text size was measured.
        """
        return max(int(self.memory_limit) // 64, 1 << 20)


class Settings(Strict):
    paths: Paths = Paths()
    inbox: Inbox = Inbox()
    extracts: Extracts = Extracts()
    quality: Quality = Quality()
    metrics: Metrics = Metrics()
    lifecycle: Lifecycle = Lifecycle()
    model: Model = Model()
    value: Value = Value()
    tiers: Tiers = Tiers()
    holdings: Holdings = Holdings()
    schedule: Schedule = Schedule()
    engine: Engine = Engine()
    demo_as_of: date = Field(
        default=date(2025, 12, 31), description="as-of date of the embedded sample data"
    )

    @model_validator(mode="after")
    def _paths_distinct(self) -> Settings:
        if self.paths.lake == self.paths.inbox:
            raise ValueError("paths.lake and paths.inbox must differ")
        return self


class ConfigError(ValueError):
    """A settings file that cannot be used; the message names the offending key."""


def load_settings(
    config: Path | str | None = None, overrides: Mapping[str, object] | None = None
) -> Settings:
    """Read `config` (TOML), apply dotted-key `overrides`, resolve paths against the file.

    Overrides such as {"model.discount_rate": 0.1} change one run's settings
    (the UI's custom-run form, `--set`); they are validated like the file, so
    an unknown key is an error that names it, and relative paths among them
    are relative to the config file, as in the file.
    """
    data: dict[str, object] = {}
    base = Path.cwd()
    if config is not None:
        config = Path(config)
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {config}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config}: not valid TOML: {exc}") from exc
        base = config.resolve().parent
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        source = f" in {config}" if config else ""
        source += f" with overrides {dict(overrides)}" if overrides else ""
        raise ConfigError(f"invalid settings{source}: {problems}") from exc
    engine = settings.engine
    if engine.bucket_storage is not None and "://" not in engine.bucket_storage:
        local = str((base / engine.bucket_storage).resolve())
        engine = engine.model_copy(update={"bucket_storage": local})
    return settings.model_copy(update={"paths": settings.paths.resolved(base), "engine": engine})


def _set_dotted(data: dict[str, object], dotted: str, value: object) -> None:
    *sections, key = dotted.split(".")
    node = data
    for depth, section in enumerate(sections, start=1):
        child = node.setdefault(section, {})
        if not isinstance(child, dict):
            where = ".".join(sections[:depth])
            raise ConfigError(f"override {dotted!r}: {where!r} is not a settings section")
        node = child
    node[key] = value


def settings_reference() -> str:
    """Markdown reference of every settings key with its type, default and meaning."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `customer_equity/settings.py` by `customer-equity docs`; do not edit.",
        "Every key is optional. Give a file with `--config FILE` (TOML); paths are relative",
        "to that file. An unknown key or a wrong value is an error that names it.",
        "",
    ]

    def render(model: type[BaseModel], prefix: str) -> None:
        rows, nested = [], []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested.append((f"{prefix}{name}", annotation))
                continue
            value_type = get_args(annotation)[-1] if get_origin(annotation) is dict else None
            if isinstance(value_type, type) and issubclass(value_type, BaseModel):
                nested.append((f"{prefix}{name}.<name>", value_type))
            default = field.get_default(call_default_factory=True)
            shown = default.isoformat() if isinstance(default, date) else default
            rows.append(
                f"| `{name}` | {_type_name(annotation)} | `{shown!s}` | {field.description or ''} |"
            )
        if rows:
            lines.extend([f"## `[{prefix.rstrip('.')}]`" if prefix else "## top level", ""])
            if model.__doc__ and model is not Settings:
                lines.extend([inspect.cleandoc(model.__doc__), ""])
            lines.extend(["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""])
        for child_prefix, child in nested:
            render(child, f"{child_prefix}.")

    render(Settings, "")
    return "\n".join(lines)


def _type_name(annotation: object) -> str:
    """A reader's spelling of a type: no `typing.` noise, no `|` (it splits Markdown tables)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " or ".join(f'"{value}"' for value in args)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is dict:
        return f"dict[{_type_name(args[0])}, {_type_name(args[1])}]"
    if origin is tuple:
        return f"tuple[{_type_name(args[0])}, ...]"
    if args:  # a union such as `str | None`
        return " or ".join(_type_name(arg) for arg in args)
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))

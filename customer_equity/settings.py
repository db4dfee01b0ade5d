"""One typed, validated settings object for the whole pipeline.

Loaded from a TOML file (`--config FILE`); every key is optional. Paths are
relative to the config file's folder (or to the working directory when no
file is given). Unknown keys are errors, so a typo never silently falls back
to a default.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ExtractKind = Literal["transactions", "customers", "wallets", "costs"]
EXTRACT_KINDS: tuple[ExtractKind, ...] = ("transactions", "customers", "wallets", "costs")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveDays = Annotated[int, Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(Strict):
    inbox: Path = Path("data/inbox")
    warehouse: Path = Path("data/warehouse.duckdb")
    lake: Path = Path("data/lake")

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
    encoding: Literal["utf-8", "gb18030", "gbk"] = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    extra_columns: Literal["ignore", "keep"] = Field(
        default="ignore", description="columns beyond SPEC §2: dropped, or kept in the warehouse"
    )


class Extracts(Strict):
    transactions: ExtractFormat = ExtractFormat()
    customers: ExtractFormat = ExtractFormat()
    wallets: ExtractFormat = ExtractFormat()
    costs: ExtractFormat = ExtractFormat()

    def for_kind(self, kind: ExtractKind) -> ExtractFormat:
        return getattr(self, kind)


class Quality(Strict):
    base_currency: str = Field(default="USD", min_length=3, max_length=3)
    future_tolerance_days: Annotated[int, Field(ge=0)] = 1
    max_abs_amount: Annotated[float, Field(gt=0)] = 10_000_000.0
    unknown_customers: Literal["quarantine", "accept"] = Field(
        default="accept",
        description="transactions of customers missing from a customers extract (when one exists)",
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
        ),
        description="source columns dropped on read: never stored, never in outputs",
    )


class Metrics(Strict):
    window_days: PositiveDays = 365
    frequency_floor_days: PositiveDays = 30
    default_margin_rate: Fraction = 0.25
    category_margin_rates: dict[str, Fraction] = Field(default_factory=dict)
    churn_after_days: PositiveDays = 365
    target_share: Fraction = Field(
        default=0.3, description="purchase share K assumed for a potential customer's estimate"
    )


class Lifecycle(Strict):
    development_days: PositiveDays = 180
    decline_window_days: PositiveDays = 180
    decline_drop: Fraction = 0.3
    maturity_share: Fraction = 0.6


class Model(Strict):
    time_unit: Literal["days", "weeks"] = "weeks"
    monetary: Literal["margin", "revenue"] = "margin"
    horizon_months: Annotated[int, Field(gt=0, le=600)] = 36
    discount_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.08


class Value(Strict):
    group_by: Literal["base", "segment"] = "segment"
    min_group_size: Annotated[int, Field(ge=1)] = 30
    max_lifetime_years: Annotated[float, Field(gt=0)] = 20.0
    projection_years: Annotated[int, Field(gt=0, le=100)] = 10


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

    metric: str = "clv_annuity"
    method: Literal["percentile", "threshold", "mapping"] = "percentile"
    core: float = 0.10
    important: float = 0.30
    values: dict[str, Literal["core", "important", "general"]] = Field(default_factory=dict)

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
    rule_sets: dict[str, TierRule] = Field(default_factory=lambda: {"clv": TierRule()})
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


class Settings(Strict):
    paths: Paths = Paths()
    extracts: Extracts = Extracts()
    quality: Quality = Quality()
    metrics: Metrics = Metrics()
    lifecycle: Lifecycle = Lifecycle()
    model: Model = Model()
    value: Value = Value()
    tiers: Tiers = Tiers()
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


def load_settings(config: Path | None = None, **overrides: object) -> Settings:
    """Read `config` (TOML) and resolve its paths against the file's folder."""
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
    data.update(overrides)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"invalid settings{f' in {config}' if config else ''}: {problems}"
        ) from exc
    return settings.model_copy(update={"paths": settings.paths.resolved(base)})

"""[holdings] settings (SPEC §10): the defaults SPEC names, and mistakes named by key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from customer_equity.settings import ConfigError, load_settings


def test_defaults_are_the_spec_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    holdings = load_settings().holdings
    assert holdings.asset_classes == (
        "cash", "bonds", "equities", "funds", "insurance", "real_estate", "other"
    )  # fmt: skip
    assert holdings.stale_days == 45
    assert {p: holdings.tolerated_risk_level[p] for p in ("conservative", "steady")} == {
        "conservative": 2,
        "steady": 3,
    }
    assert holdings.tolerated_risk_level["balanced"] == 4
    assert holdings.tolerated_risk_level["aggressive"] == 5
    assert holdings.tolerated_risk_level["保守"] == 2  # the Chinese profile names map alike
    assert holdings.min_liquid_share == {"conservative": 0.3, "保守": 0.3}
    assert holdings.default_min_liquid_share == 0.1
    assert (holdings.aum_tiers.affluent, holdings.aum_tiers.private_banking) == (
        500_000,
        6_000_000,
    )
    assert holdings.liability_classes == ()
    assert load_settings().lifecycle.decline_on == "revenue"


def test_a_bank_adds_a_liability_class(tmp_path: Path) -> None:
    config = tmp_path / "ce.toml"
    config.write_text(
        "[holdings]\n"
        'asset_classes = ["cash", "funds", "loans"]\n'
        'liability_classes = ["loans"]\n'
        'class_liquidity = { cash = "high", funds = "medium" }\n'
        "class_risk_level = { cash = 1, funds = 3 }\n"
    )
    holdings = load_settings(config).holdings
    assert holdings.liability_classes == ("loans",)  # needs neither liquidity nor risk level


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[holdings]\nstale_days = 0\n", "holdings.stale_days"),
        ("[holdings.class_risk_level]\ncash = 6\n", "holdings.class_risk_level.cash"),
        ('[holdings.class_liquidity]\ncash = "instant"\n', "holdings.class_liquidity.cash"),
        ("[holdings.tolerated_risk_level]\nconservative = 0\n", "tolerated_risk_level"),
        ("[holdings.min_liquid_share]\nconservative = 1.5\n", "min_liquid_share"),
        (
            '[holdings]\nasset_classes = ["cash", "crypto"]\nclass_liquidity = { cash = "high" }\n'
            "class_risk_level = { cash = 1 }\n",
            "class_liquidity: no value for asset class(es) ['crypto']",
        ),
        ('[holdings]\nliability_classes = ["loans"]\n', "['loans'] are not among asset_classes"),
        ('[holdings]\nasset_classes = ["Cash"]\n', "lower case"),
        ("[holdings.aum_tiers]\naffluent = 7000000\n", "private_banking must be above"),
        ('[lifecycle]\ndecline_on = "assets"\n', "lifecycle.decline_on"),
    ],
)
def test_a_wrong_holdings_setting_is_named(tmp_path: Path, text: str, named: str) -> None:
    config = tmp_path / "ce.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(config)

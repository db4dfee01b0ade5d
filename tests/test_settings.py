"""Settings: defaults for everything, paths relative to the config file, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from customer_equity.settings import ConfigError, load_settings


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.paths.warehouse == tmp_path / "data" / "warehouse.duckdb"
    assert settings.metrics.window_days == 365
    assert settings.lifecycle.decline_drop == 0.3


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    config = folder / "ce.toml"
    config.write_text('[paths]\nlake = "../lake"\n[metrics]\nwindow_days = 180\n')
    settings = load_settings(config)
    assert settings.paths.lake == tmp_path / "lake"
    assert settings.paths.inbox == folder / "data" / "inbox"
    assert settings.metrics.window_days == 180


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[metrics]\nwindow_dayz = 10\n", "metrics.window_dayz"),
        ("[metrics]\nwindow_days = -1\n", "metrics.window_days"),
        ("[lifecycle]\ndecline_drop = 1.5\n", "lifecycle.decline_drop"),
        ('[extracts.transactions]\nencoding = "latin-9"\n', "extracts.transactions.encoding"),
        ("[metrics\n", "not valid TOML"),
    ],
)
def test_a_wrong_key_or_value_is_named(tmp_path: Path, text: str, named: str) -> None:
    config = tmp_path / "ce.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(config)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")

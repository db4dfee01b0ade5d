"""The command line as a new user meets it: help text, generate, and its summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from customer_equity.cli import app
from customer_equity.generate import SIDECAR_NAME, customers_for_transactions
from tests.conftest import write_config

runner = CliRunner()


def _help(command: str) -> str:
    done = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return re.sub(r"\x1b\[[0-9;]*m", "", done.output)


def test_help_names_values_not_python_types() -> None:
    run = _help("run")
    assert re.search(r"--as-of\s+DATE", run) and re.search(r"--config\s+-c\s+FILE", run)
    assert re.search(r"--wait\s+SECONDS", run)
    backfill = _help("backfill")
    assert re.search(r"--dates\s+DATE,DATE,…", backfill)
    assert re.search(r"--set\s+KEY=VALUE", backfill)
    generate = _help("generate")
    assert re.search(r"--transactions\s+N", generate)
    for text in (run, backfill, generate, _help("report")):
        assert "<str>" not in text and "TEXT" not in text and "%Y" not in text


def test_generate_by_transactions_prints_a_readable_summary(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = runner.invoke(app, ["generate", "--config", str(config), "--transactions", "20000"])
    assert done.exit_code == 0, done.output
    sidecar = json.loads((tmp_path / "inbox" / SIDECAR_NAME).read_text(encoding="utf-8"))
    assert sidecar["customers"] == customers_for_transactions(20_000)
    written = sidecar["counts"]["transactions"]
    assert 18_000 <= written <= 22_000  # about the number asked for
    assert f"{written:,}" in done.output  # thousands separators, in a table
    assert "GenerationReport(" not in done.output and "PosixPath" not in done.output
    assert "next: customer-equity run --as-of 2025-12-31" in done.output


def test_generate_again_is_idempotent_and_other_options_need_force(tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    first = runner.invoke(app, ["generate", "--config", config, "--customers", "50"])
    assert first.exit_code == 0, first.output
    stamp = (tmp_path / "inbox" / "customers" / "customers.csv").stat().st_mtime_ns

    again = runner.invoke(app, ["generate", "--config", config, "--customers", "50"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert (tmp_path / "inbox" / "customers" / "customers.csv").stat().st_mtime_ns == stamp

    other = runner.invoke(app, ["generate", "--config", config, "--customers", "60"])
    assert other.exit_code == 2 and "--force" in other.output
    assert "Traceback" not in other.output

    forced = runner.invoke(app, ["generate", "--config", config, "--customers", "60", "--force"])
    assert forced.exit_code == 0, forced.output
    sidecar = json.loads((tmp_path / "inbox" / SIDECAR_NAME).read_text(encoding="utf-8"))
    assert sidecar["customers"] == 60

    both = runner.invoke(
        app, ["generate", "--config", config, "--customers", "5", "--transactions", "9"]
    )
    assert both.exit_code == 2 and "not both" in both.output


def test_generate_never_deletes_extracts_it_did_not_write(tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    real = tmp_path / "inbox" / "transactions" / "erp_2025-12-31.csv"
    real.parent.mkdir(parents=True)
    real.write_text("transaction_id,customer_id,transaction_date,amount\n", encoding="utf-8")
    done = runner.invoke(app, ["generate", "--config", config, "--customers", "50", "--force"])
    assert done.exit_code == 2 and "did not write" in done.output
    assert real.exists()

"""`customer-equity` command line: every command goes through the same Prefect flows."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from customer_equity.settings import ConfigError, Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(width=120)

DATE_FORMATS = ["%Y-%m-%d"]
ConfigOption = typer.Option(
    None, "--config", "-c", metavar="FILE", help="settings TOML; paths are relative to it"
)
# Prefect's own default (20 s) was too short for its temporary server on a busy 2-core machine.
STARTUP_SECONDS = 180


def _settings(config: Path | None, overrides: dict[str, object] | None = None) -> Settings:
    try:
        return load_settings(config, overrides)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@contextmanager
def prefect_session() -> Iterator[bool]:
    """Settings for the flow runs of one command; yields whether a started server keeps them.

    Gives Prefect's temporary server (a run without PREFECT_API_URL) a generous
    start-up time unless the user chose one (environment, profile, prefect.toml).
    """
    from prefect.settings import (
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        get_current_settings,
        temporary_settings,
    )

    current = get_current_settings()
    chosen = "startup_timeout_seconds" in current.server.ephemeral.model_fields_set
    updates = {} if chosen else {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: STARTUP_SECONDS}
    with temporary_settings(updates=updates):
        yield bool(current.api.url)


def _temporary_server_note() -> None:
    console.print(
        "\n[yellow]PREFECT_API_URL is not set: this run's Prefect records (logs, artifacts) went "
        "to a temporary server that stopped with this command. To keep them, start a server "
        "(make server, or .venv/bin/prefect server start) and export "
        "PREFECT_API_URL=http://127.0.0.1:4200/api before the next run (docs/runbook.md). "
        "The tables, the HTML report and the BI catalog are on disk either way.[/yellow]"
    )


def _date(value: datetime | None) -> date | None:
    return value.date() if value else None


@app.command()
def generate(
    config: Path | None = ConfigOption,
    customers: int | None = typer.Option(
        None, metavar="N", help="buying customers to simulate (default 3,000)"
    ),
    transactions: int | None = typer.Option(
        None, metavar="N", help="instead of --customers: about this many transaction rows"
    ),
    seed: int = typer.Option(42, metavar="N", help="random seed (same seed, same files)"),
    end_date: datetime | None = typer.Option(
        None, formats=DATE_FORMATS, metavar="DATE", help="last day of data (default: demo_as_of)"
    ),
    file_format: str = typer.Option(
        "csv", metavar="csv|parquet", help="format of the transaction extracts"
    ),
    force: bool = typer.Option(
        False, "--force", help="replace the sample extracts of an earlier generate"
    ),
) -> None:
    """Write deterministic sample extracts of all four kinds into the inbox.

    Running it again with the same options does nothing; other options need --force,
    which replaces only the files an earlier generate wrote.
    """
    from customer_equity.generate import (
        SIDECAR_NAME,
        customers_for_transactions,
        generate_extracts,
    )

    settings = _settings(config)
    if customers is not None and transactions is not None:
        console.print("[red]give --customers or --transactions, not both[/red]")
        raise typer.Exit(2)
    buyers = customers_for_transactions(transactions) if transactions else (customers or 3000)
    last_day = _date(end_date) or settings.demo_as_of
    inbox = settings.paths.inbox
    wanted = {
        "customers": buyers,
        "seed": seed,
        "end_date": last_day.isoformat(),
        "file_format": file_format,
    }
    sidecar = inbox / SIDECAR_NAME
    earlier = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else None
    if earlier and {k: earlier.get(k) for k in wanted} == wanted:
        console.print(f"sample extracts with these options are already in {inbox}: nothing to do")
        return
    if earlier and force:
        for name in earlier.get("files", []):
            (inbox / name).unlink(missing_ok=True)
    try:
        report = generate_extracts(
            inbox,
            customers=buyers,
            seed=seed,
            end_date=last_day,
            file_format=file_format,  # type: ignore[arg-type]
        )
    except FileExistsError as exc:
        hint = (
            "pass --force to replace the sample extracts written by an earlier generate"
            if earlier
            else "it holds extracts that generate did not write; use another [paths] inbox"
        )
        console.print(f"[red]{exc}: {hint}[/red]")
        raise typer.Exit(2) from None
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    _print_generated(report, inbox)


def _print_generated(report: Any, inbox: Path) -> None:
    files_per_kind: dict[str, int] = {}
    for path in report.files:
        if path.parent != inbox:
            files_per_kind[path.parent.name] = files_per_kind.get(path.parent.name, 0) + 1
    table = Table(
        "extract", "files", "rows", title=f"Sample extracts in {inbox}", title_justify="left"
    )
    table.columns[1].justify = table.columns[2].justify = "right"
    for kind, rows in report.counts.items():
        table.add_row(kind, f"{files_per_kind.get(kind, 0):,}", f"{rows:,}")
    console.print(table)
    given = report.parameters
    console.print(
        f"{given['customers']:,} buying customers (plus prospects), seed {given['seed']}, "
        f"data up to {given['end_date']}; written in {report.elapsed_seconds:,.1f} s.\n"
        f"next: customer-equity run --as-of {given['end_date']}"
    )


@app.command()
def run(
    as_of: datetime = typer.Option(
        ..., "--as-of", formats=DATE_FORMATS, metavar="DATE", help="as-of date D, YYYY-MM-DD"
    ),
    config: Path | None = ConfigOption,
    wait: float = typer.Option(
        0.0, metavar="SECONDS", help="seconds to wait for a running job's lock"
    ),
    holdout_from: datetime | None = typer.Option(
        None,
        formats=DATE_FORMATS,
        metavar="DATE",
        help="also validate BG/NBD: fit before this date, predict up to --as-of",
    ),
) -> None:
    """Run the nightly flow for one as-of date."""
    settings = _settings(config)
    with prefect_session() as kept:
        from customer_equity.flows.nightly import nightly

        result = nightly(
            as_of=as_of.date(),
            config=str(config) if config else None,
            lock_wait_seconds=wait,
            holdout_from=_date(holdout_from),
        )
    _print_run(result, settings, kept)


@app.command()
def demo(config: Path | None = ConfigOption) -> None:
    """Generate the embedded sample (if the inbox is empty) and run the nightly flow on it.

    Without --config the sample is valued like the README's example config: a
    bank's `aum` rule set beside `clv`, and holders declining on AUM.
    """
    from customer_equity.generate import generate_extracts

    settings = _settings(config)
    inbox = settings.paths.inbox
    overrides: dict[str, object] = {} if config else dict(DEMO_OVERRIDES)
    if not any(inbox.glob("*/*")):
        _print_generated(generate_extracts(inbox, end_date=settings.demo_as_of), inbox)
        # The sample files were just written, and completely: no settle time for them.
        overrides["inbox.settle_seconds"] = 0
    with prefect_session() as kept:
        from customer_equity.flows.nightly import nightly

        result = nightly(
            as_of=settings.demo_as_of,
            config=str(config) if config else None,
            overrides=overrides or None,
        )
    _print_run(result, settings, kept)


# The README's example [lifecycle] and [tiers] (tests/flows/test_wealth.py keeps them equal).
DEMO_OVERRIDES: dict[str, object] = {
    "lifecycle.decline_on": "aum",
    "tiers.rule_sets": {
        "clv": {},
        "aum": {"metric": "aum", "method": "threshold", "core": 6_000_000, "important": 500_000},
    },
}


@app.command()
def report(
    as_of: datetime = typer.Option(
        ..., "--as-of", formats=DATE_FORMATS, metavar="DATE", help="a published as-of date"
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Re-render the HTML report of a published date, the history page and the BI catalog."""
    from customer_equity.catalog import build_catalog
    from customer_equity.report import write_history, write_report

    settings = _settings(config)
    try:
        page = write_report(settings, as_of.date())
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"report:  {page}")
    console.print(f"history: {write_history(settings)}")
    console.print(f"BI catalog: {build_catalog(settings.paths.lake)}")


@app.command()
def docs(
    folder: Path = typer.Option(Path("docs"), metavar="DIR", help="where to write them"),
) -> None:
    """Regenerate the data dictionary and the configuration reference from the code."""
    from customer_equity.docs import write_docs

    for path in write_docs(folder):
        console.print(f"wrote {path}")


def _overrides(pairs: list[str]) -> dict[str, object]:
    """`--set model.discount_rate=0.1` pairs as dotted-key overrides; values are read as TOML."""
    overrides: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            console.print(f"[red]--set {pair!r}: expected KEY=VALUE, e.g. model.discount_rate=0.1")
            raise typer.Exit(2)
        try:
            value: object = tomllib.loads(f"value = {raw}")["value"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string: --set value.group_by=base
        overrides[key.strip()] = value
    return overrides


def _date_list(text: str | None) -> list[date] | None:
    if not text:
        return None
    try:
        return [date.fromisoformat(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        console.print(f"[red]--dates {text!r}: {exc} (expected YYYY-MM-DD,YYYY-MM-DD,…)[/red]")
        raise typer.Exit(2) from None


@app.command()
def backfill(
    start: datetime | None = typer.Option(
        None, formats=DATE_FORMATS, metavar="DATE", help="first as-of date"
    ),
    end: datetime | None = typer.Option(
        None, formats=DATE_FORMATS, metavar="DATE", help="last as-of date (included)"
    ),
    dates: str | None = typer.Option(
        None,
        metavar="DATE,DATE,…",
        help="instead of --start/--end: exactly these dates (e.g. the failed ones)",
    ),
    config: Path | None = ConfigOption,
    wait: float | None = typer.Option(
        None,
        metavar="SECONDS",
        help="seconds each date waits for another run's lock (default: schedule.lock_wait_seconds)",
    ),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="override a setting for these runs (repeatable)"
    ),
) -> None:
    """Run the nightly flow for every as-of date from --start to --end, oldest first.

    The same `backfill` flow as the deployment of that name (`serve`); a failed
    date is reported, the other dates still run, and the exit code is 1; the
    message names the --dates to re-run exactly the failed ones.
    """
    from customer_equity.flows.backfill import BackfillError, backfill_dates

    settings = _settings(config)
    overrides = _overrides(set_) or None
    chosen = _date_list(dates)
    try:  # the flow checks these too; here they fail before a flow run is created
        backfill_dates(_date(start), _date(end), chosen)
        load_settings(config, overrides)
    except (ValueError, ConfigError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    from customer_equity.flows.backfill import backfill as backfill_flow

    try:
        with prefect_session() as kept:
            result = backfill_flow(
                start=_date(start),
                end=_date(end),
                dates=chosen,
                config=str(config) if config else None,
                lock_wait_seconds=settings.schedule.lock_wait_seconds if wait is None else wait,
                overrides=overrides,
            )
    except BackfillError as exc:
        _print_backfill([asdict(o) for o in exc.outcomes])
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _print_backfill(result["dates"])  # type: ignore[arg-type]
    if not kept:
        _temporary_server_note()


def _print_backfill(outcomes: list[dict[str, str]]) -> None:
    table = Table(
        "as of", "status", "customers", "customer equity", "churn rate", "flow run", "message"
    )
    for column in table.columns[2:5]:
        column.justify = "right"
    for outcome in outcomes:
        colour = "green" if outcome["status"] == "completed" else "red"
        table.add_row(
            outcome["as_of"],
            f"[{colour}]{outcome['status']}[/{colour}]",
            outcome.get("customers", ""),
            outcome.get("customer_equity", ""),
            outcome.get("churn_rate", ""),
            outcome["flow_run_id"],
            outcome["message"][:200],
        )
    console.print(table)


@app.command()
def serve(config: Path | None = ConfigOption) -> None:
    """Serve the scheduled `nightly` and the `backfill` deployments until stopped (Ctrl-C).

    Needs a Prefect server to register with: `prefect server start`, then
    `export PREFECT_API_URL=http://127.0.0.1:4200/api` (docs/runbook.md).
    """
    settings = _settings(config)
    with prefect_session() as kept:
        if not kept:
            console.print(
                "[yellow]PREFECT_API_URL is not set: serving against a temporary server that "
                "disappears with this process (no UI to come back to). Start one with "
                "make server (or .venv/bin/prefect server start) and export PREFECT_API_URL "
                "(docs/runbook.md).[/yellow]"
            )
        from customer_equity.flows.deployments import serve as serve_deployments

        serve_deployments(settings, config)


@app.command()
def deploy(
    work_pool: str = typer.Option(
        ..., "--work-pool", "-p", metavar="NAME", help="an existing work pool"
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Register the `nightly` and `backfill` deployments against a work pool (teams).

    Workers of that pool (`prefect worker start --pool NAME`) then run them;
    they need this package installed and the config file at the same path.
    """
    from customer_equity.flows.deployments import deploy as deploy_deployments

    settings = _settings(config)
    try:
        ids = deploy_deployments(settings, config, work_pool)
    except ValueError as exc:  # prefect.deploy reports a missing work pool this way
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"registered {len(ids)} deployment(s) on work pool {work_pool!r}")


def _print_run(result: dict[str, Any], settings: Settings, kept: bool) -> None:
    """What a user wants after a run: the run summary, where the report and the tables went."""
    from customer_equity.catalog import catalog_path
    from customer_equity.flows.artifacts import summary_of
    from customer_equity.summary import print_summary

    print_summary(summary_of(settings, result), console)
    lake = settings.paths.lake
    if "report" in result:
        console.print(f"\n[bold]run report[/bold]: {result['report']}")
        console.print(f"[bold]history[/bold]:    {result['history']}")
    else:
        console.print("\n[yellow]the HTML report was not written (see the log above)[/yellow]")
    console.print(
        f"[bold]BI catalog[/bold]: {catalog_path(lake)}; one view per table over every date, "
        "latest_<table> for the newest. For example:\n"
        f"  .venv/bin/python -c \"import duckdb; duckdb.sql(\\\"attach '{catalog_path(lake)}' "
        'as lake (read_only)\\"); print(duckdb.sql(\\"select lifecycle_stage, count(*) '
        'from lake.latest_customer_metrics group by 1\\"))"'
    )
    if not kept:
        _temporary_server_note()


def main() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    app()

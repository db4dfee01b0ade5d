"""`customer-equity` command line: every command goes through the same Prefect flows."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from customer_equity.settings import ConfigError, Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(width=120)

ConfigOption = typer.Option(None, "--config", "-c", help="settings TOML; paths are relative to it")


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def generate(
    config: Path | None = ConfigOption,
    customers: int = typer.Option(3000, help="customers to simulate"),
    seed: int = typer.Option(42, help="random seed (same seed, same files)"),
    end_date: str | None = typer.Option(None, help="last day of data (default: demo_as_of)"),
    file_format: str = typer.Option("csv", help="csv or parquet transaction extracts"),
) -> None:
    """Write deterministic sample extracts of all four kinds into the inbox."""
    from customer_equity.generate import generate_extracts

    settings = _settings(config)
    last_day = date.fromisoformat(end_date) if end_date else settings.demo_as_of
    report = generate_extracts(
        settings.paths.inbox,
        customers=customers,
        seed=seed,
        end_date=last_day,
        file_format=file_format,  # type: ignore[arg-type]
    )
    console.print(f"wrote sample extracts to {settings.paths.inbox}: {report}")


@app.command()
def run(
    as_of: str = typer.Option(..., "--as-of", help="as-of date D, YYYY-MM-DD"),
    config: Path | None = ConfigOption,
    wait: float = typer.Option(0.0, help="seconds to wait for a running job's lock"),
    holdout_from: str | None = typer.Option(
        None, help="also validate BG/NBD: fit before this date, predict up to --as-of"
    ),
) -> None:
    """Run the nightly flow for one as-of date."""
    from flows.nightly import nightly

    settings = _settings(config)
    result = nightly(
        as_of=date.fromisoformat(as_of),
        config=str(config) if config else None,
        lock_wait_seconds=wait,
        holdout_from=date.fromisoformat(holdout_from) if holdout_from else None,
    )
    _print_summary(result, settings)


@app.command()
def demo(config: Path | None = ConfigOption) -> None:
    """Generate the embedded sample (if the inbox is empty) and run the nightly flow on it."""
    from customer_equity.generate import generate_extracts
    from flows.nightly import nightly

    settings = _settings(config)
    inbox = settings.paths.inbox
    if not any(inbox.glob("*/*")):
        report = generate_extracts(inbox, end_date=settings.demo_as_of)
        console.print(f"generated sample extracts in {inbox} ({report.counts})")
    result = nightly(as_of=settings.demo_as_of, config=str(config) if config else None)
    _print_summary(result, settings)


@app.command()
def docs(folder: Path = typer.Option(Path("docs"), help="where to write them")) -> None:
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


@app.command()
def backfill(
    start: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="first as-of date"),
    end: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="last as-of date (included)"),
    config: Path | None = ConfigOption,
    wait: float | None = typer.Option(
        None,
        help="seconds each date waits for another run's lock (default: schedule.lock_wait_seconds)",
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="override a setting for these runs: KEY=VALUE (repeatable)"
    ),
) -> None:
    """Run the nightly flow for every as-of date from --start to --end, oldest first.

    The same `backfill` flow as the deployment of that name (`serve`); a failed
    date is reported, the other dates still run, and the exit code is 1.
    """
    from flows.backfill import BackfillError, as_of_dates
    from flows.backfill import backfill as backfill_flow

    settings = _settings(config)
    overrides = _overrides(set_) or None
    try:  # the flow checks these too; here they fail before a flow run is created
        as_of_dates(start.date(), end.date())
        load_settings(config, overrides)
    except (ValueError, ConfigError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:
        result = backfill_flow(
            start=start.date(),
            end=end.date(),
            config=str(config) if config else None,
            lock_wait_seconds=settings.schedule.lock_wait_seconds if wait is None else wait,
            overrides=overrides,
        )
    except BackfillError as exc:
        _print_backfill([asdict(o) for o in exc.outcomes])
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _print_backfill(result["dates"])  # type: ignore[arg-type]


def _print_backfill(outcomes: list[dict[str, str]]) -> None:
    table = Table("as of", "status", "flow run", "message")
    for outcome in outcomes:
        colour = "green" if outcome["status"] == "completed" else "red"
        table.add_row(
            outcome["as_of"],
            f"[{colour}]{outcome['status']}[/{colour}]",
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
    from prefect.settings import get_current_settings

    from flows.deployments import serve as serve_deployments

    settings = _settings(config)
    if not get_current_settings().api.url:
        console.print(
            "[yellow]PREFECT_API_URL is not set: serving against a temporary server that "
            "disappears with this process (no UI to come back to). Start one with "
            "`prefect server start` and export PREFECT_API_URL (docs/runbook.md).[/yellow]"
        )
    serve_deployments(settings, config)


@app.command()
def deploy(
    work_pool: str = typer.Option(..., "--work-pool", "-p", help="an existing work pool"),
    config: Path | None = ConfigOption,
) -> None:
    """Register the `nightly` and `backfill` deployments against a work pool (teams).

    Workers of that pool (`prefect worker start --pool NAME`) then run them;
    they need this package installed and the config file at the same path.
    """
    from flows.deployments import deploy as deploy_deployments

    settings = _settings(config)
    try:
        ids = deploy_deployments(settings, config, work_pool)
    except ValueError as exc:  # prefect.deploy reports a missing work pool this way
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"registered {len(ids)} deployment(s) on work pool {work_pool!r}")


QUALITY_COUNTS = ("rows_read", "rows_loaded", "rows_replaced", "rows_duplicate", "rows_quarantined")


def _print_summary(result: dict[str, object], settings: Settings) -> None:
    """What a user wants after a run: what came in, the stages, churn, equity, where it went."""
    import duckdb

    tables: dict[str, str] = result["tables"]  # type: ignore[assignment]

    def partition(table: str) -> str:
        return str(Path(tables[table]) / "*.parquet")

    console.print(f"\n[bold]as of {result['as_of']}[/bold]  (run {result['run_id']})")
    files = Table("extract", "file", "status", "read", "loaded", "replaced", "dup", "quarantined")
    for row in result["files"]:  # type: ignore[union-attr]
        counts = (f"{row[k]:,}" for k in QUALITY_COUNTS)
        files.add_row(row["extract_kind"], row["file_name"], row["status"], *counts)
    console.print(files)

    stages = duckdb.sql(
        "select m.lifecycle_stage, count(*) filter (where t.value_tier = 'core'),"
        " count(*) filter (where t.value_tier = 'important'),"
        " count(*) filter (where t.value_tier = 'general'), count(*), sum(m.revenue) "
        "from read_parquet($metrics) m join read_parquet($tiers) t using (customer_id) "
        "where t.rule_set = $rule_set group by all order by 5 desc",
        params={
            "metrics": partition("customer_metrics"),
            "tiers": partition("customer_tiers"),
            "rule_set": settings.tiers.rule_set,
        },
    ).fetchall()
    stage_table = Table("lifecycle stage", "core", "important", "general", "customers", "revenue W")
    for stage, core, important, general, customers, revenue in stages:
        counts = (f"{n:,}" for n in (core, important, general, customers))
        stage_table.add_row(stage, *counts, f"{revenue:,.0f}")
    console.print(stage_table)

    for rate, lifetime, base, lost in duckdb.sql(
        "select churn_rate, avg_lifetime_years, customers_at_start, customers_lost "
        "from read_parquet($path) where group_by = 'base'",
        params={"path": partition("churn")},
    ).fetchall():
        console.print(
            f"churn rate (whole base): {rate:.1%} ({lost:,} of {base:,} lost); "
            f"average lifetime {lifetime:.1f} years"
            if rate
            else "churn rate: no customer was active a year ago"
        )
    for customers, clv, equity, years, source, reason in duckdb.sql(
        "select customers, clv_per_customer, customer_equity, avg_lifetime_years, "
        "lifetime_source, lifetime_reason from read_parquet($path) where group_by = 'base'",
        params={"path": partition("customer_equity")},
    ).fetchall():
        console.print(
            f"customer equity: {equity:,.0f} ({customers:,} active customers × CLV {clv:,.2f}; "
            f"lifetime {years:.1f} years, {source}: {reason})"
        )

    console.print("\n[bold]outputs[/bold] (Hive-partitioned Parquet):")
    for table, path in tables.items():
        console.print(f"  {table:<18} {path}")
    lake = Path(tables["customer_metrics"]).parents[1]
    console.print(
        '\nread them with: .venv/bin/python -c "import duckdb; print(duckdb.sql('
        f"\\\"select * from read_parquet('{lake}/customer_metrics/*/*.parquet', "
        'hive_partitioning=true) limit 5\\"))"'
    )


def main() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    app()

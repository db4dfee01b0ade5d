"""`customer-equity` command line: every command goes through the same Prefect flows."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from customer_equity.settings import ConfigError, Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

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

    _settings(config)
    result = nightly(
        as_of=date.fromisoformat(as_of),
        config=str(config) if config else None,
        lock_wait_seconds=wait,
        holdout_from=date.fromisoformat(holdout_from) if holdout_from else None,
    )
    _print_summary(result)


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
    _print_summary(result)


@app.command()
def docs(folder: Path = typer.Option(Path("docs"), help="where to write them")) -> None:
    """Regenerate the data dictionary and the configuration reference from the code."""
    from customer_equity.docs import write_docs

    for path in write_docs(folder):
        console.print(f"wrote {path}")


def _print_summary(result: dict[str, object]) -> None:
    import duckdb

    tables: dict[str, str] = result["tables"]  # type: ignore[assignment]
    console.print(f"\n[bold]as of {result['as_of']}[/bold]  (run {result['run_id']})")
    files = Table("extract", "file", "status", "read", "loaded", "replaced", "dup", "quarantined")
    for row in result["files"]:  # type: ignore[union-attr]
        files.add_row(
            row["extract_kind"],
            row["file_name"],
            row["status"],
            *(
                f"{row[k]:,}"
                for k in (
                    "rows_read",
                    "rows_loaded",
                    "rows_replaced",
                    "rows_duplicate",
                    "rows_quarantined",
                )
            ),
        )
    console.print(files)
    metrics = Path(tables["customer_metrics"]) / "*.parquet"
    stages = duckdb.sql(
        "select lifecycle_stage, count(*) as customers, round(sum(revenue), 2) as revenue "
        "from read_parquet($path) group by all order by customers desc",
        params={"path": str(metrics)},
    ).fetchall()
    stage_table = Table("lifecycle stage", "customers", "revenue (W)")
    for stage, customers, revenue in stages:
        stage_table.add_row(stage, f"{customers:,}", f"{revenue:,.2f}")
    console.print(stage_table)
    churn = duckdb.sql(
        "select churn_rate, avg_lifetime_years, customers_at_start, customers_lost "
        "from read_parquet($path) where group_by = 'base'",
        params={"path": str(Path(tables["churn"]) / "*.parquet")},
    ).fetchall()
    for rate, lifetime, base, lost in churn:
        console.print(
            f"churn rate (whole base): {rate:.1%} ({lost:,} of {base:,}); "
            f"average lifetime {lifetime:.1f} years"
            if rate
            else "churn rate: no customers active a year ago"
        )
    console.print("\n[bold]outputs[/bold] (Hive-partitioned Parquet):")
    for table, path in tables.items():
        console.print(f"  {table:<18} {path}")
    lake = Path(tables["customer_metrics"]).parents[1]
    console.print(
        f"\nread them with: duckdb -c \"select * from read_parquet('{lake}/customer_metrics/"
        f"*/*.parquet', hive_partitioning=true) limit 5\""
    )


def main() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    app()

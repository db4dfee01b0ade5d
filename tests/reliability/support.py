"""Helpers of the reliability suite: real files, real processes, table snapshots to compare."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from customer_equity import warehouse
from customer_equity.ingest import FileOutcome, ingest_inbox
from customer_equity.lake import table_names
from customer_equity.settings import EXTRACT_KINDS
from tests.conftest import read_table, settings_of, write_config

AS_OF = date(2025, 12, 31)
# Fixed "now" for the future-date rule, so the tests do not age.
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
CLI = Path(sys.executable).with_name("customer-equity")
TX_HEADER = "transaction_id,customer_id,transaction_date,amount,cost,category,currency"

# Columns that differ between two runs of the same inputs by design (ids, clocks).
VOLATILE_COLUMNS = {
    "_run_id",
    "_loaded_at",
    "_arrived_at",
    "_replaced_by_run",
    "_replaced_at",
    "run_id",
    "processed_at",
    "quarantined_at",
    "released_by_run",
    "released_at",
}
WAREHOUSE_TABLES = (
    *EXTRACT_KINDS,
    *(warehouse.audit_table(kind) for kind in EXTRACT_KINDS),
    "quarantine",
)


@dataclass(frozen=True)
class Baseline:
    """One uninterrupted CLI run: its folder, what it left in lake and warehouse, and every
    checkpoint (`customer_equity.faults`) it passed, in order."""

    root: Path
    lake: dict[str, pl.DataFrame]
    warehouse: dict[str, pl.DataFrame]
    checkpoints: tuple[str, ...]


def new_project(root: Path, config: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_config(root, config)
    return root


def put(root: Path, kind: str, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    """Write one extract file byte for byte (no CSV writer smoothing anything over)."""
    folder = root / "inbox" / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def csv_text(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


def ingest(root: Path, run_id: str = "run-1") -> dict[str, FileOutcome]:
    return {o.file_name: o for o in ingest_inbox(settings_of(root), run_id, NOW)}


def query(root: Path, sql: str, params: Mapping[str, object] | None = None) -> list[tuple]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


def quarantine_of(root: Path) -> list[tuple[str, int, str]]:
    return query(root, "select file_name, line, reason from quarantine order by file_name, line")


# --- real processes ---------------------------------------------------------------------------


def cli_command(root: Path, *extra: str) -> list[str]:
    config = root / "customer-equity.toml"
    return [str(CLI), "run", "--as-of", AS_OF.isoformat(), "--config", str(config), *extra]


def start_run(
    root: Path, env: Mapping[str, str], *extra: str, faults: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start `customer-equity run` for `root` as its own process (its own session)."""
    return subprocess.Popen(
        cli_command(root, *extra),
        env={**env, **(faults or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def run_to_end(
    root: Path, env: Mapping[str, str], *extra: str, faults: Mapping[str, str] | None = None
) -> str:
    """Run the CLI to completion; fail the test with its output when it does not succeed."""
    process = start_run(root, env, *extra, faults=faults)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, f"run failed ({process.returncode}):\n{output[-4000:]}"
    return output


def copy_inbox(source: Path, root: Path) -> Path:
    new_project(root)
    shutil.copytree(source / "inbox", root / "inbox")
    return root


# --- snapshots: what a reader of the lake and of the warehouse sees ----------------------------


def sorted_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in a fixed order: exact columns first, so rows pair up even if floats are noisy."""
    exact = [c for c in frame.columns if frame.schema[c] != pl.Float64]
    return frame.sort([*exact, *(c for c in frame.columns if c not in exact)], nulls_last=True)


def lake_tables(root: Path) -> dict[str, pl.DataFrame]:
    """Every lake table (all partitions), rows sorted; `data_quality` without its run ids."""
    lake = root / "lake"
    tables = {}
    for name in table_names(lake):
        frame = read_table(lake, name)
        if name == "data_quality":
            frame = frame.drop("run_id", "latest_run_id")
        tables[name] = sorted_frame(frame)
    return tables


def warehouse_tables(root: Path) -> dict[str, pl.DataFrame]:
    """Warehouse contents without run ids and clocks, rows sorted.

    The manifest is reduced to what must not depend on crashes: which files
    loaded with which counts, and which failed with which error (a killed run
    and its re-run both record a failed file, once each).
    """
    tables = {}
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        for table in WAREHOUSE_TABLES:
            frame = con.sql(f"select * from {warehouse.quote(table)}").pl()
            tables[table] = sorted_frame(_without_volatile(frame))
        manifest = _without_volatile(con.sql("select * from manifest").pl())
    tables["manifest_loaded"] = sorted_frame(manifest.filter(pl.col("status") == "loaded"))
    tables["manifest_failed"] = sorted_frame(
        manifest.filter(pl.col("status") == "failed").select("file_name", "error").unique()
    )
    return tables


def _without_volatile(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(c for c in frame.columns if c not in VOLATILE_COLUMNS)


def assert_same_tables(actual: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    """Same tables, same columns, same rows; the message names every table that differs."""
    assert sorted(actual) == sorted(expected)
    differing = {}
    for name, frame in expected.items():
        mine = actual[name]
        if mine.columns != frame.columns:
            differing[name] = f"columns {mine.columns} != {frame.columns}"
        elif not mine.equals(frame):
            extra = mine.join(frame, on=mine.columns, how="anti", nulls_equal=True)
            lost = frame.join(mine, on=mine.columns, how="anti", nulls_equal=True)
            differing[name] = (
                f"{mine.height} vs {frame.height} rows; {extra.height} unexpected, "
                f"{lost.height} missing, e.g. {(extra.rows() or lost.rows())[:2]}"
            )
    assert not differing, "tables differ: " + "; ".join(f"{k}: {v}" for k, v in differing.items())


def assert_lake_clean(root: Path) -> None:
    """Every file a lake reader can glob is a complete Parquet file, one per partition."""
    lake = root / "lake"
    for table in (lake / name for name in table_names(lake)):
        for partition in table.iterdir():
            files = list(partition.iterdir())
            assert len(files) == 1, f"{partition}: {[f.name for f in files]}"
            assert files[0].name.startswith("part-") and files[0].suffix == ".parquet"
            pq.read_table(files[0])  # a torn file raises here


# An independent oracle over what was committed (the pipeline checks each file once, inside
# its transaction): every manifest row adds up, skipped and failed files counted nothing,
# quarantine and audit tables hold exactly the rows the manifest says each run put there,
# and every quarantine row released by a run is counted by that run's `released` row.
COMMITTED_ACCOUNTING_SQL = """
with quarantined as (
    select run_id, file_name, file_sha256, count(*) as stored from quarantine group by all
),
released as (
    select released_by_run as run_id, file_name, file_sha256, count(*) as stored
    from quarantine where released_by_run is not null group by all
)
select file_name, 'rows do not add up' from manifest
where rows_read + rows_released
    <> rows_loaded + rows_replaced + rows_duplicate + rows_quarantined
union all
select file_name, status || ' file counted rows' from manifest
where status not in ('loaded', 'released') and rows_read + rows_loaded + rows_replaced
    + rows_duplicate + rows_quarantined + rows_released <> 0
union all
select file_name, 'released file read or quarantined rows' from manifest
where status = 'released' and rows_read + rows_quarantined <> 0
union all
select coalesce(f.file_name, q.file_name),
    'quarantine holds ' || coalesce(q.stored, 0) || ' row(s), manifest says '
    || coalesce(f.rows_quarantined, 0)
from (select * from manifest where status = 'loaded') f
full join quarantined q
    on q.run_id = f.run_id and q.file_name = f.file_name and q.file_sha256 = f.file_sha256
where coalesce(q.stored, 0) <> coalesce(f.rows_quarantined, 0)
union all
select coalesce(f.file_name, r.file_name),
    'quarantine released ' || coalesce(r.stored, 0) || ' row(s), manifest says '
    || coalesce(f.rows_released, 0)
from (select * from manifest where status = 'released') f
full join released r
    on r.run_id = f.run_id and r.file_name = f.file_name and r.file_sha256 = f.file_sha256
where coalesce(r.stored, 0) <> coalesce(f.rows_released, 0)
"""


def assert_warehouse_consistent(root: Path) -> None:
    """After any crash: every committed file adds up, and no row exists without its loaded file."""
    con = warehouse.connect(root / "warehouse.duckdb")
    try:
        problems = con.execute(COMMITTED_ACCOUNTING_SQL).fetchall()
        for kind in EXTRACT_KINDS:
            problems += con.execute(
                f"select run_id, 'audited ' || audited || ', manifest says ' || claimed from ("
                f"select coalesce(a.run_id, m.run_id) as run_id, coalesce(a.n, 0) as audited, "
                f"coalesce(m.n, 0) as claimed from (select _replaced_by_run as run_id, count(*) "
                f"as n from {warehouse.quote(warehouse.audit_table(kind))} group by 1) a "
                f"full join (select run_id, sum(rows_replaced) as n from manifest "
                f"where extract_kind = $kind group by 1) m on a.run_id = m.run_id) "
                f"where audited <> claimed",
                {"kind": kind},
            ).fetchall()
        assert problems == [], f"committed rows do not add up: {problems}"
        orphans = con.sql(
            " union all ".join(
                f"select _file as file_name from {warehouse.quote(kind)}" for kind in EXTRACT_KINDS
            )
            + " union all select file_name from quarantine except "
            "select file_name from manifest where status = 'loaded'"
        ).fetchall()
    finally:
        con.close()
    assert orphans == [], f"rows of files that never committed: {orphans}"


def subprocess_env(api_url: str) -> dict[str, str]:
    """The test's environment, pointed at the session's Prefect API (no server per process)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CUSTOMER_EQ")}
    return {
        **env,
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "COLUMNS": "400",  # rich would wrap messages (and paths) at 80 columns
    }

"""The DuckDB warehouse file: connection, SQL files, tables derived from the schemas, lock.

Identifiers that reach SQL (table and column names) come only from the fixed
schemas in `schemas/`; every value is a bound parameter.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl
import pyarrow

from customer_equity.faults import checkpoint
from customer_equity.schemas.inputs import input_schema
from customer_equity.settings import EXTRACT_KINDS, ExtractKind

# The repository's sql/ folder, as a package resource: read from the checkout or the wheel.
SQL_FILES = resources.files("customer_equity.sql")

DUCKDB_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Float64: "DOUBLE",
    pl.Int64: "BIGINT",
    pl.Boolean: "BOOLEAN",
}

LINEAGE_COLUMNS = {
    "_key": "VARCHAR NOT NULL",
    "_row_hash": "VARCHAR NOT NULL",
    "_file": "VARCHAR NOT NULL",
    "_line": "BIGINT NOT NULL",
    "_run_id": "VARCHAR NOT NULL",
    "_loaded_at": "TIMESTAMPTZ NOT NULL",
    # When the delivery of `_file` that held the row was read: `_loaded_at`, except for a
    # row released from quarantine by a later run (null in rows loaded before this column).
    "_arrived_at": "TIMESTAMPTZ",
    "extra_attributes": "VARCHAR",
}
# Lineage columns that warehouses created before them gain on open (nullable).
ADDED_LINEAGE_COLUMNS = ("_arrived_at",)
AUDIT_COLUMNS = {"_replaced_by_run": "VARCHAR NOT NULL", "_replaced_at": "TIMESTAMPTZ NOT NULL"}


class WarehouseBusyError(RuntimeError):
    """Another run holds the warehouse; nothing was written by this one."""


@cache
def sql_text(name: str) -> str:
    """The text of `sql/<name>.sql` (`name` may name a subfolder: `staging/stg_customers`)."""
    path = SQL_FILES
    for part in f"{name}.sql".split("/"):
        path = path.joinpath(part)  # one part at a time: a namespace package's paths take one
    return path.read_text(encoding="utf-8")


def sql_statements(name: str) -> list[str]:
    """The statements of `sql/<name>.sql`, split at semicolons that end a line."""
    text = "\n".join(
        line for line in sql_text(name).splitlines() if not line.lstrip().startswith("--")
    )
    return [part.strip() for part in text.split(";\n") if part.strip().rstrip(";")]


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _table_ddl(table: str, schema: pa.DataFrameSchema, extra: dict[str, str]) -> str:
    columns = [
        f"{quote(name)} {DUCKDB_TYPES[col.dtype.type]}" for name, col in schema.columns.items()
    ]
    columns += [f"{quote(name)} {sql_type}" for name, sql_type in extra.items()]
    return f"create table if not exists {quote(table)} ({', '.join(columns)})"


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the bookkeeping tables and, per extract kind, the current and audit tables."""
    con.execute(sql_text("warehouse/bookkeeping"))
    con.execute(sql_text("warehouse/migrations"))
    for kind in EXTRACT_KINDS:
        schema = input_schema(kind)
        for table, extra in (
            (kind, LINEAGE_COLUMNS),
            (audit_table(kind), LINEAGE_COLUMNS | AUDIT_COLUMNS),
        ):
            con.execute(_table_ddl(table, schema, extra))
            # A column a schema gained later (e.g. costs.cost_id) joins existing warehouses.
            added = {name: DUCKDB_TYPES[col.dtype.type] for name, col in schema.columns.items()}
            added |= {name: extra[name] for name in ADDED_LINEAGE_COLUMNS}
            for name, sql_type in added.items():
                con.execute(
                    f"alter table {quote(table)} add column if not exists {quote(name)} {sql_type}"
                )


def audit_table(kind: ExtractKind) -> str:
    return f"{kind}_replaced"


def connect(
    path: Path, *, read_only: bool = False, memory_limit: str = "4GB"
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file with its tables and parsing macros in place.

    `memory_limit` is DuckDB's share of the run's budget (`Engine.duckdb_memory_limit`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not read_only and not path.exists():
        _create(path)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set preserve_insertion_order = false")
    # DuckDB takes 80 % of RAM by default; the Polars frames of the same run need
    # room too. Beyond the limit DuckDB spills to a folder beside the warehouse.
    con.execute("set memory_limit = $limit", {"limit": memory_limit})
    con.execute("set temp_directory = $spill", {"spill": str(path.with_suffix(".spill"))})
    con.execute(sql_text("macros"))
    if not read_only:
        ensure_tables(con)
    return con


def _create(path: Path) -> None:
    """Create and initialise a new warehouse under a temporary name, then rename it into place.

    A process killed while DuckDB creates a file can leave one that never opens
    again ("not a valid DuckDB database file"): the half-made file keeps its
    temporary name, and the next run starts over.
    """
    for stale in path.parent.glob(f".{path.name}.creating-*"):
        stale.unlink()
    temporary = path.with_name(f".{path.name}.creating-{os.getpid()}")
    con = duckdb.connect(str(temporary))
    try:
        ensure_tables(con)
    finally:
        con.close()
    checkpoint("warehouse-before-rename", path.name)
    temporary.replace(path)


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """Expose `frame` to SQL as the view `name`, for one scan.

    Registered as a record batch reader: DuckDB 2.0 keeps every registered
    DataFrame or Arrow table alive after `unregister` (measured: +130 MiB per
    1M-row batch, without bound), a reader it releases.
    """
    table = frame.to_arrow()
    con.register(name, pyarrow.RecordBatchReader.from_batches(table.schema, table.to_batches()))
    try:
        yield
    finally:
        con.unregister(name)


@contextmanager
def warehouse_lock(warehouse: Path, *, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold an exclusive OS lock beside the warehouse file for the whole run.

    DuckDB's own file lock only covers one open connection; this lock spans the
    ingest, transform and Parquet writes of a run so that a scheduled run, a
    backfill and a hand-started CLI run can never interleave. The kernel
    releases it when the process dies, so a killed run never leaves it stale.
    """
    lock_path = warehouse.with_name(warehouse.name + ".lock")
    with exclusive_lock(lock_path, f"another run is writing {warehouse}", wait_seconds):
        yield


@contextmanager
def exclusive_lock(lock_path: Path, busy: str, wait_seconds: float) -> Iterator[None]:
    """An OS lock on `lock_path`, waited for up to `wait_seconds`; `busy` starts the error."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    with lock_path.open("a+") as handle:
        busy_seen = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not busy_seen:
                    busy_seen = True
                    checkpoint("lock-busy", lock_path.name)
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise WarehouseBusyError(
                        f"{busy} (lock {lock_path}, held by {holder}); waited {wait_seconds:g} s"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

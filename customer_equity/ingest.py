"""Loading extract files from the inbox into the warehouse, each exactly once.

Per file, in one DuckDB transaction: the file is read in bounded batches
(`customer_equity.extracts`); each batch is mapped to the SPEC §2 names,
staged (`sql/staging/`), validated by pandera as a DataFrame, its bad rows
written to the quarantine and its valid rows appended to a temporary table.
At the end of the file the rows are classified as loaded / replaced /
duplicate against the stored versions (`sql/ingest/classify_batch.sql`),
merged into the current and audit tables (`sql/ingest/merge_batch.sql`), the
accounting identity is checked against the tables themselves, and the file is
recorded in the manifest. A file-level problem fails that file alone, with a
message, and loads nothing; the file stays in the inbox and is retried by the
next run. Memory is bounded by the batch size, not the file size: DuckDB
holds (and spills) the file's rows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from customer_equity import warehouse
from customer_equity.extracts import (
    ASSUMED_ROW_BYTES,
    EXTRA_ATTRIBUTES,
    LINE,
    ColumnPlan,
    ExtractError,
    FastParseRejectedError,
    FileScan,
    TextBatch,
    canonical_batch,
    column_plan,
    discover_extracts,
    exact_csv_batches,
    fast_csv_batches,
    file_unchanged,
    is_parquet,
    open_parquet,
    parquet_batches,
    read_csv_header,
    scan_file,
    utf8_text_file,
)
from customer_equity.faults import checkpoint
from customer_equity.schemas.inputs import (
    CUSTOMER_CHECKED_KINDS,
    KNOWN_CUSTOMER,
    WALLET_OVERLAP,
    InputRules,
    input_schema,
    key_columns,
    releasable_reasons,
    required_columns,
    row_key_when_null,
    typed_columns,
)
from customer_equity.settings import INGEST_ORDER, ExtractKind, Settings
from customer_equity.warehouse import audit_table, quote

__all__ = ["AccountingError", "ExtractError", "FileOutcome", "discover_extracts", "ingest_inbox"]

KEY_SEPARATOR = "chr(31)"
NULL_MARK = "chr(0)"
# Key of a row whose kind allows a null key (costs without cost_id): its own file and line.
ROW_KEY_PREFIX = "chr(30)"
BATCH_TABLE = "batch"
# Batches of a file: fast parser (False) or exact parser (True).
BatchSource = Callable[[bool], Iterator[TextBatch]]
PYTHON_DATE_RANGE = (date.min, date.max)


class AccountingError(RuntimeError):
    """Rows of a file are not all accounted for: a bug, never committed or published."""


@dataclass(frozen=True)
class FileOutcome:
    """One row of the manifest (and of `data_quality`)."""

    extract_kind: str
    file_name: str
    file_sha256: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_replaced: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    rows_released: int = 0

    def accounted(self) -> bool:
        """The accounting identity: every row read or released has exactly one outcome.

        A `released` outcome reads no row: its rows were read (and quarantined) by
        an earlier run, and now each is loaded, replaced or duplicate. Over all
        outcomes of one file, read = loaded + replaced + duplicate + still held.
        """
        return self.rows_read + self.rows_released == (
            self.rows_loaded + self.rows_replaced + self.rows_duplicate + self.rows_quarantined
        )


def ingest_inbox(
    settings: Settings,
    run_id: str,
    now: datetime | None = None,
    progress: Callable[[int, int, FileOutcome], None] | None = None,
    *,
    as_of: date | None = None,
) -> list[FileOutcome]:
    """Load every new extract of the inbox, then release the quarantined rows whose
    reason has cleared; one outcome per file seen and per file with released rows
    (SPEC §9 data_quality). `as_of` is the run's as-of date, kept in the manifest.

    `progress(done, total, outcome)` is called after each file read (for the run log).
    """
    now = now or datetime.now(UTC)
    outcomes: list[FileOutcome] = []
    # Transcoded copies of non-UTF-8 extracts; the run holds the warehouse lock.
    workdir = settings.paths.warehouse.with_name(settings.paths.warehouse.name + ".ingest-tmp")
    shutil.rmtree(workdir, ignore_errors=True)
    con = warehouse.connect(
        settings.paths.warehouse, memory_limit=settings.engine.ingest_duckdb_memory_limit
    )
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        inbox = discover_extracts(settings.paths.inbox, settings.inbox)
        run = RunContext(settings, run_id, now, as_of)
        for kind, path in inbox.ready:
            outcomes.append(_ingest_one(con, kind, path, run, workdir))
            if progress:
                progress(len(outcomes), len(inbox.ready), outcomes[-1])
        for kind, path, _reason in inbox.waiting:
            outcome = FileOutcome(kind, path.name, "", "waiting")
            record_outcome(con, outcome, run)
            outcomes.append(outcome)
        # After every new file: a customers extract of this run can clear held rows.
        for kind in INGEST_ORDER:
            outcomes.extend(QuarantineRelease(con, kind, run).run())
        for outcome in unknown_kind_outcomes(settings.paths.inbox):
            record_outcome(con, outcome, run)
            outcomes.append(outcome)
        checkpoint("ingest-done")
    finally:
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return outcomes


def unknown_kind_outcomes(inbox: Path) -> list[FileOutcome]:
    """A failed outcome per inbox folder that is no extract kind: reported, never skipped silently.

    A misspelt folder (`Holdings/`, `transaction/`) would otherwise wait
    forever unnoticed; its files stay where they are and are not read.
    """
    if not inbox.is_dir():
        return []
    outcomes = []
    for folder in sorted(inbox.iterdir()):
        if not folder.is_dir() or folder.name.startswith(".") or folder.name in INGEST_ORDER:
            continue
        files = sum(1 for path in folder.iterdir() if path.is_file())
        error = (
            f"{folder.name}/: not an extract kind (known: {', '.join(INGEST_ORDER)}); "
            f"its {files} file(s) were not read"
        )
        outcomes.append(FileOutcome(folder.name, f"{folder.name}/", "", "failed", error=error))
    return outcomes


@dataclass(frozen=True)
class RunContext:
    """What every write of one run's ingest is stamped with."""

    settings: Settings
    run_id: str
    now: datetime
    as_of: date | None


def _ingest_one(
    con: duckdb.DuckDBPyConnection,
    kind: ExtractKind,
    path: Path,
    run: RunContext,
    workdir: Path,
) -> FileOutcome:
    """Load, skip or fail one file; a file-level error is recorded, anything else propagates."""
    sha256 = ""  # an unreadable file has no content hash
    try:
        stat = _stat(path)
        scan = scan_file(run.settings.paths.inbox, path)
        sha256 = scan.sha256
        if already_loaded(con, sha256):
            outcome = FileOutcome(kind, path.name, sha256, "skipped")
        else:
            return FileLoad(con, kind, path, scan, stat, run, workdir).run()
    except ExtractError as exc:
        outcome = FileOutcome(kind, path.name, sha256, "failed", error=f"{path.name}: {exc}")
    record_outcome(con, outcome, run)
    return outcome


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except OSError as exc:
        raise ExtractError(f"unreadable file: {exc.strerror}") from None


class FileLoad:
    """One extract file loaded in one transaction (see the module doc)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: ExtractKind,
        path: Path,
        scan: FileScan,
        stat: os.stat_result,
        run: RunContext,
        workdir: Path,
    ) -> None:
        self.con, self.kind, self.path, self.scan, self.stat = con, kind, path, scan, stat
        self.run_context, self.workdir = run, workdir
        self.settings = run.settings
        self.extract_format = self.settings.extracts.for_kind(kind)
        self.checks = RowChecks(con, kind, run)
        self.batch_bytes = self.settings.engine.ingest_batch_bytes

    def run(self) -> FileOutcome:
        plan, batches = self._open()
        try:
            return self._load(plan, batches(False))
        except FastParseRejectedError:
            # Blank lines, quoted line breaks or a structural fault: the exact parser
            # numbers every line (and names the line of a fault).
            return self._load(plan, batches(True))

    def _open(self) -> tuple[ColumnPlan, BatchSource]:
        """The column plan (header checks) and a batch source; no row is read yet."""
        schema = self.checks.schema
        schema_columns = list(schema.columns)
        required = required_columns(schema)
        pii = self.settings.quality.pii_columns
        mapping = self.extract_format.columns
        rows = batch_rows(self.settings)
        if is_parquet(self.path):
            typed = {c: schema.columns[c].dtype.type for c in typed_columns(schema)}
            layout = open_parquet(self.path, typed, mapping)
            plan = column_plan(layout.names, schema_columns, required, self.extract_format, pii)
            text = {s for s, c in plan.renames.items() if c in schema_columns and c not in typed}
            return plan, lambda exact: parquet_batches(layout, rows, text)
        if self.scan.blank:
            raise ExtractError("empty file")
        text_path = utf8_text_file(self.path, self.scan, self.extract_format.encoding, self.workdir)
        delimiter = self.extract_format.delimiter
        header = read_csv_header(text_path, delimiter)
        plan = column_plan(header.names, schema_columns, required, self.extract_format, pii)

        def batches(exact: bool) -> Iterator[TextBatch]:
            if exact:
                return exact_csv_batches(text_path, header, self.scan, delimiter, rows)
            return fast_csv_batches(text_path, header, self.scan, delimiter, self.batch_bytes)

        return plan, batches

    def _load(self, plan: ColumnPlan, batches: Iterator[TextBatch]) -> FileOutcome:
        con, kind, run = self.con, self.kind, self.run_context
        con.execute("begin transaction")
        try:
            before = table_counts(con, kind)
            create_batch_table(con, kind)
            rows_read = rows_quarantined = 0
            for batch in batches:
                read, quarantined = self._load_batch(plan, batch)
                rows_read += read
                rows_quarantined += quarantined
            if rows_read == 0:
                raise ExtractError("header only: the file has no data rows")
            merged = _merge(con, kind, run.run_id, run.now)
            counts = merged.get((self.path.name, run.now), dict.fromkeys(ROW_OUTCOMES, 0))
            outcome = FileOutcome(
                extract_kind=kind,
                file_name=self.path.name,
                file_sha256=self.scan.sha256,
                status="loaded",
                rows_read=rows_read,
                rows_quarantined=rows_quarantined,
                **counts,
            )
            check_file_accounting(outcome, before, table_counts(con, kind))
            if not file_unchanged(self.path, self.stat):
                raise ExtractError("the file changed while it was read; it is retried next run")
            record_outcome(con, outcome, run)
            checkpoint("ingest-before-commit", self.path.name)
            con.execute("commit")
        except BaseException as error:
            _roll_back(con, error, self.settings.paths.warehouse)
            raise
        finally:
            drop_batch_table(con)
        checkpoint("ingest-after-commit", self.path.name)
        return outcome

    def _load_batch(self, plan: ColumnPlan, batch: TextBatch) -> tuple[int, int]:
        """Stage, validate and split one batch; returns (rows read, rows quarantined)."""
        extract = canonical_batch(plan, batch)
        staged, reasons = self.checks.split(extract)
        quarantined = 0
        if reasons.height:
            quarantined = self._quarantine(reasons, extract)
            staged = staged.join(reasons, on=LINE, how="anti")
        append_valid(
            self.con,
            self.checks.schema,
            staged,
            "select *, $file as _file, $now as _arrived_at from valid_rows",
            {"file": self.path.name, "now": self.run_context.now},
        )
        return extract.height, quarantined

    def _quarantine(self, reasons: pl.DataFrame, extract: pl.DataFrame) -> int:
        """Bad rows as delivered (canonical names, PII dropped), with reason, file and line."""
        records = reasons.join(
            extract.select(
                LINE,
                pl.struct(pl.exclude(LINE, EXTRA_ATTRIBUTES)).struct.json_encode().alias("record"),
                EXTRA_ATTRIBUTES,
            ),
            on=LINE,
        )
        run = self.run_context
        with warehouse.registered(self.con, "quarantined_rows", records):
            self.con.execute(
                "insert into quarantine by name select $run_id as run_id, $kind as extract_kind, "
                "$file as file_name, $sha as file_sha256, _line as line, reason, record, "
                "$now as quarantined_at, extra_attributes from quarantined_rows",
                {
                    "run_id": run.run_id,
                    "kind": self.kind,
                    "file": self.path.name,
                    "sha": self.scan.sha256,
                    "now": run.now,
                },
            )
        return records.height


class QuarantineRelease:
    """Held rows of one kind whose reason has cleared, loaded in one transaction.

    The held rows (`sql/ingest/release_candidates.sql`) are read back from their
    quarantine records in batches and checked again exactly as a new file's rows
    would be now; the rows that pass are classified and merged like any load,
    under their original file, line and arrival (so the version rules of SPEC §2
    hold for them too), and their quarantine rows are marked released by this
    run. A row that still fails stays held, untouched. One `released` outcome per
    original delivery: rows_read 0, rows_released = loaded + replaced + duplicate.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, kind: ExtractKind, run: RunContext) -> None:
        self.con, self.kind, self.run_context = con, kind, run

    def run(self) -> list[FileOutcome]:
        con, kind, run = self.con, self.kind, self.run_context
        reasons = releasable_reasons(kind)
        if not reasons:
            return []
        con.execute(
            warehouse.sql_text("ingest/release_candidates"),
            {"kind": kind, "run_id": run.run_id, "reasons": list(reasons)},
        )
        try:
            (candidates,) = con.execute("select count(*) from release_candidates").fetchall()[0]
            if candidates == 0:
                return []
            return self._release(candidates)
        finally:
            con.execute("drop table if exists release_candidates")

    def _release(self, candidates: int) -> list[FileOutcome]:
        con, kind, run = self.con, self.kind, self.run_context
        checks = RowChecks(con, kind, run)
        schema_columns = {name: pl.String for name in checks.schema.columns}
        step = batch_rows(run.settings)
        con.execute("begin transaction")
        try:
            before = table_counts(con, kind)
            create_batch_table(con, kind)
            for first in range(1, candidates + 1, step):
                held = con.sql(
                    "select _row as _line, record, extra_attributes from release_candidates "
                    "where _row between $first and $last",
                    params={"first": first, "last": first + step - 1},
                ).pl()
                extract = held.select(
                    LINE,
                    pl.col("record").str.json_decode(pl.Struct(schema_columns)).struct.unnest(),
                    EXTRA_ATTRIBUTES,
                )
                staged, reasons = checks.split(extract)
                append_valid(
                    con,
                    checks.schema,
                    staged.join(reasons, on=LINE, how="anti"),
                    "select v.* replace (c.line as _line), c.file_name as _file, "
                    "c.quarantined_at as _arrived_at from valid_rows as v "
                    "inner join release_candidates as c on c._row = v._line",
                    {},
                )
            (released,) = con.execute("select count(*) from batch").fetchall()[0]
            if released == 0:
                con.execute("rollback")
                return []
            counts = _merge(con, kind, run.run_id, run.now)
            con.execute(
                warehouse.sql_text("ingest/mark_released"),
                {"kind": kind, "run_id": run.run_id, "now": run.now},
            )
            outcomes = self._outcomes(counts)
            check_file_accounting(_total(outcomes), before, table_counts(con, kind))
            for outcome in outcomes:
                record_outcome(con, outcome, run)
            checkpoint("release-before-commit", kind)
            con.execute("commit")
        except BaseException as error:
            _roll_back(con, error, run.settings.paths.warehouse)
            raise
        finally:
            drop_batch_table(con)
        return outcomes

    def _outcomes(self, counts: dict[tuple[str, datetime], dict[str, int]]) -> list[FileOutcome]:
        """One `released` outcome per original delivery (file name and when it was read)."""
        deliveries = self.con.execute(
            "select distinct file_name, quarantined_at, file_sha256 from release_candidates"
        ).fetchall()
        sha_of = {(name, read_at): sha for name, read_at, sha in deliveries}
        return [
            FileOutcome(
                extract_kind=self.kind,
                file_name=name,
                file_sha256=sha_of[(name, read_at)],
                status="released",
                rows_released=sum(found.values()),
                **found,
            )
            for (name, read_at), found in sorted(counts.items())
        ]


def _total(outcomes: list[FileOutcome]) -> FileOutcome:
    """The outcomes of one transaction summed (for the accounting check against the tables)."""
    first = outcomes[0]
    totals = {
        name: sum(getattr(o, name) for o in outcomes)
        for name in (
            "rows_read",
            "rows_loaded",
            "rows_replaced",
            "rows_duplicate",
            "rows_quarantined",
            "rows_released",
        )
    }
    return FileOutcome(
        first.extract_kind, first.file_name, first.file_sha256, first.status, **totals
    )


def batch_rows(settings: Settings) -> int:
    """Rows per batch for the row-based readers (csv module, Parquet, the quarantine)."""
    return max(settings.engine.ingest_batch_bytes // ASSUMED_ROW_BYTES, 1000)


def create_batch_table(con: duckdb.DuckDBPyConnection, kind: ExtractKind) -> None:
    """The temporary table a load collects its valid rows in, with their lineage."""
    con.execute(
        f"create or replace temp table {BATCH_TABLE} as select * exclude "
        f"(_run_id, _loaded_at) from {quote(kind)} limit 0"
    )


def drop_batch_table(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # after a failed rollback: nothing to drop
        con.execute(f"drop table if exists {BATCH_TABLE}")


class RowChecks:
    """Staging and the row checks of one kind, with the rules in force for this run."""

    def __init__(self, con: duckdb.DuckDBPyConnection, kind: ExtractKind, run: RunContext) -> None:
        self.con, self.kind = con, kind
        self.date_format = run.settings.extracts.for_kind(kind).date_format
        self.rules = input_rules(con, kind, run.settings, run.now)
        self.schema = input_schema(kind, self.rules)
        # Timestamps with a UTC offset are dated in the business time zone (sql/macros.sql).
        con.execute("set TimeZone = $zone", {"zone": run.settings.quality.time_zone})

    def split(self, extract: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(the staged batch, `_line` and reasons of the rows that fail a check)."""
        staged = stage(self.con, self.kind, extract, self.date_format)
        if self.rules.check_known_customers:
            staged = with_known_customers(self.con, staged)
        if self.rules.check_wallet_overlaps:
            staged = with_wallet_overlaps(self.con, staged)
        failures = quarantine_reasons(staged, self.schema)
        if not failures.height:
            return staged, pl.DataFrame(schema={LINE: pl.Int64, "reason": pl.String})
        lines = staged.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("index"), LINE)
        return staged, lines.join(failures, on="index").select(LINE, "reason")


def append_valid(
    con: duckdb.DuckDBPyConnection,
    schema: pa.DataFrameSchema,
    staged: pl.DataFrame,
    lineage_sql: str,
    parameters: dict[str, object],
) -> None:
    """Valid staged rows into the batch table, with key and row hash.

    `lineage_sql` selects the rows of `valid_rows` with their `_file`, `_line`
    and `_arrived_at` (the delivery each row came from).
    """
    business = [*schema.columns, EXTRA_ATTRIBUTES]
    key = _text_of(key_columns(schema))
    if row_key_when_null(schema):
        key = (
            f"coalesce({_sql_list(key_columns(schema))}, "
            f"{ROW_KEY_PREFIX} || _file || {KEY_SEPARATOR} || _line::varchar)"
        )
    with warehouse.registered(con, "valid_rows", staged.select(LINE, *business)):
        con.execute(
            f"insert into {BATCH_TABLE} by name select *, {key} as _key, "
            f"md5({_text_of(business)}) as _row_hash from ({lineage_sql})",
            parameters,
        )


def _sql_list(columns: tuple[str, ...]) -> str:
    """The key columns as one text value, null when any is null."""
    parts = [f"{quote(c)}::varchar" for c in columns]
    return parts[0] if len(parts) == 1 else f"concat_ws({KEY_SEPARATOR}, {', '.join(parts)})"


class WarehouseFullError(OSError):
    """The disk holding the warehouse (or its spill folder) is full; nothing was committed."""


def _roll_back(con: duckdb.DuckDBPyConnection, error: BaseException, path: Path) -> None:
    """Undo the file's transaction; the error that caused it stays the one reported.

    After a write failure DuckDB may refuse the rollback itself ("cannot
    rollback"); that message would hide the cause, so it is only attached as a note.
    A full disk is named as such.
    """
    try:
        con.execute("rollback")
    except duckdb.Error as rollback_error:
        error.add_note(f"(the rollback failed too: {rollback_error})")
    if isinstance(error, duckdb.Error) and "no space left on device" in str(error).lower():
        raise WarehouseFullError(
            f"the disk holding the warehouse {path} (or its spill folder) is full: "
            f"no space left on device; nothing of this file was committed"
        ) from error


def _text_of(columns: list[str] | tuple[str, ...]) -> str:
    """SQL text of several columns, nulls marked, for keys and row hashes (identifiers only)."""
    parts = [f"coalesce({quote(c)}::varchar, {NULL_MARK})" for c in columns]
    return parts[0] if len(parts) == 1 else f"concat_ws({KEY_SEPARATOR}, {', '.join(parts)})"


def stage(
    con: duckdb.DuckDBPyConnection,
    kind: ExtractKind,
    extract: pl.DataFrame,
    date_format: str | None,
) -> pl.DataFrame:
    """Run `sql/staging/stg_<kind>.sql` over the text batch: trims and casts only."""
    with warehouse.registered(con, "extract", extract.drop(EXTRA_ATTRIBUTES)):
        staged = con.sql(
            warehouse.sql_text(f"staging/stg_{kind}"), params={"date_format": date_format}
        ).pl()
    # Python dates span years 1-9999 and pandera reports failures as Python values:
    # a BC date would fail the whole file. Clamped, it still fails the date-range checks.
    staged = staged.with_columns(
        pl.col(name).clip(PYTHON_DATE_RANGE[0], PYTHON_DATE_RANGE[1])
        for name, dtype in staged.schema.items()
        if dtype == pl.Date
    )
    return staged.join(extract.select(LINE, EXTRA_ATTRIBUTES), on=LINE, how="left")


def with_known_customers(con: duckdb.DuckDBPyConnection, staged: pl.DataFrame) -> pl.DataFrame:
    """Add the flag the unknown-customer check reads (the lookup runs in DuckDB)."""
    with warehouse.registered(con, "staged_batch", staged.select(LINE, "customer_id")):
        unknown = con.sql(warehouse.sql_text("ingest/unknown_customers")).pl()[LINE]
    return staged.with_columns(~pl.col(LINE).is_in(unknown.implode()).alias(KNOWN_CUSTOMER))


def with_wallet_overlaps(con: duckdb.DuckDBPyConnection, staged: pl.DataFrame) -> pl.DataFrame:
    """Flag wallet periods that overlap one loaded before them (sql/ingest/overlapping_wallets)."""
    periods = staged.select(LINE, "customer_id", "period_start", "period_end")
    with warehouse.registered(con, "staged_periods", periods):  # the query reads it twice
        con.execute("create or replace temp table staged_batch as select * from staged_periods")
    periods = con.sql(warehouse.sql_text("ingest/overlapping_wallets")).fetchall()
    con.execute("drop table staged_batch")
    overlapping: list[int] = []
    customer_now, kept = None, []  # periods kept so far for one customer, in load order
    for customer, start, end, line, origin in periods:
        if customer != customer_now:
            customer_now, kept = customer, []
        if origin == 2 and any(s != start and s <= end and start <= e for s, e in kept):
            overlapping.append(line)
        else:  # a period with the same start replaces the one it corrects
            kept = [(s, e) for s, e in kept if s != start] + [(start, end)]
    flagged = pl.Series(LINE, overlapping, dtype=pl.Int64)
    return staged.with_columns(pl.col(LINE).is_in(flagged.implode()).alias(WALLET_OVERLAP))


def quarantine_reasons(staged: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    """(row index, reasons) for every row that fails a check; empty when all pass.

    Failures without a row index are schema-level (a column or dtype is wrong):
    the file as a whole is unusable.
    """
    try:
        schema.validate(staged, lazy=True)
    except SchemaErrors as errors:
        failures = errors.failure_cases
    except SchemaError as error:  # non-lazy path is not used, but name it rather than hide it
        raise ExtractError(f"schema error: {error}") from None
    else:
        return pl.DataFrame(schema={"index": pl.Int64, "reason": pl.String})
    schema_level = failures.filter(pl.col("index").is_null())
    if schema_level.height:
        problems = schema_level.select(
            pl.format("{} ({})", pl.col("check"), pl.col("failure_case"))
        ).to_series()
        raise ExtractError("schema-level failure: " + "; ".join(problems.to_list()))
    reason = (
        pl.when(pl.col("check") == "not_nullable")
        .then(pl.format("missing_{}", pl.col("column")))
        .otherwise(pl.col("check"))
    )
    reasons = failures.select(pl.col("index").cast(pl.Int64), reason.alias("reason")).unique()
    # A value that is present but does not parse is reported once, as unparseable.
    unparseable_as_missing = reasons.filter(pl.col("reason").str.starts_with("unparseable_"))
    unparseable_as_missing = unparseable_as_missing.with_columns(
        pl.col("reason").str.replace("^unparseable_", "missing_")
    )
    return (
        reasons.join(unparseable_as_missing, on=["index", "reason"], how="anti")
        .sort("index", "reason")
        .group_by("index", maintain_order=True)
        .agg(pl.col("reason").str.join("; "))
    )


@dataclass(frozen=True)
class TableCounts:
    current: int
    audit: int
    quarantine: int
    held: int  # quarantine rows not released


def table_counts(con: duckdb.DuckDBPyConnection, kind: ExtractKind) -> TableCounts:
    (row,) = con.execute(
        f"select (select count(*) from {quote(kind)}), "
        f"(select count(*) from {quote(audit_table(kind))}), "
        "(select count(*) from quarantine), "
        "(select count(*) from quarantine where released_by_run is null)"
    ).fetchall()
    return TableCounts(*row)


def check_file_accounting(outcome: FileOutcome, before: TableCounts, after: TableCounts) -> None:
    """read + released = loaded + replaced + duplicate + quarantined, measured in the tables.

    The one accounting check of the ingest. A loaded row adds one current row,
    a replaced row one audit row (the version it replaced, or itself when a
    version from a later file is already stored), a quarantined row one
    quarantine row, a released row takes one quarantine row out of the held
    ones; duplicates change nothing. Raised inside the transaction, so a
    violation never commits.
    """
    measured = {
        "rows_loaded": after.current - before.current,
        "rows_replaced": after.audit - before.audit,
        "rows_quarantined": after.quarantine - before.quarantine,
        "rows_released": (after.quarantine - before.quarantine) - (after.held - before.held),
    }
    claimed = {name: getattr(outcome, name) for name in measured}
    if measured != claimed or not outcome.accounted():
        raise AccountingError(
            f"{outcome.file_name}: rows do not add up: {outcome}; the tables changed by {measured}"
        )


Delivery = tuple[str, datetime]
ROW_OUTCOMES = ("rows_loaded", "rows_replaced", "rows_duplicate")


def _merge(
    con: duckdb.DuckDBPyConnection, kind: ExtractKind, run_id: str, now: datetime
) -> dict[Delivery, dict[str, int]]:
    """Classify the batch's rows and apply them to the current and audit tables.

    Returns loaded / replaced / duplicate counts per delivery the rows came from
    (file name, when it was read): one for a file, one or more for a release.
    """
    table, audit = quote(kind), quote(audit_table(kind))
    con.execute(
        f"create or replace temp view stored_version as select _key, _file, "
        f"coalesce(_arrived_at, _loaded_at) as _arrived_at, _line, _row_hash from {table}"
    )
    parameters = {"run_id": run_id, "now": now}
    statements = [
        *warehouse.sql_statements("ingest/classify_batch"),
        *warehouse.sql_statements("ingest/merge_batch"),
    ]
    for statement in statements:
        sql = statement.format(table=table, audit=audit)
        con.execute(sql, {k: v for k, v in parameters.items() if f"${k}" in sql})
    rows = con.execute(
        "select _file, _arrived_at, outcome, count(*) from classified where not is_stored "
        "group by all union all select _file, _arrived_at, 'loaded', count(*) from batch "
        "where _key not in (select _key from contested) group by all"
    ).fetchall()
    for temporary in ("classified", "contested"):
        con.execute(f"drop table {temporary}")
    con.execute("drop view stored_version")
    counts: dict[Delivery, dict[str, int]] = {}
    for file_name, arrived_at, outcome, rows_of in rows:
        found = counts.setdefault((file_name, arrived_at), dict.fromkeys(ROW_OUTCOMES, 0))
        found[f"rows_{outcome}"] += rows_of
    return counts


def input_rules(
    con: duckdb.DuckDBPyConnection, kind: ExtractKind, settings: Settings, now: datetime
) -> InputRules:
    quality = settings.quality
    check_known = False
    if kind in CUSTOMER_CHECKED_KINDS and quality.unknown_customers == "quarantine":
        # No customers extract loaded: nothing to check against.
        check_known = con.execute("select count(*) > 0 from customers").fetchall()[0][0]
    return InputRules(
        base_currency=quality.base_currency,
        max_abs_amount=quality.max_abs_amount,
        latest_allowed_date=now.date() + timedelta(days=quality.future_tolerance_days),
        earliest_allowed_date=quality.earliest_date,
        check_wallet_overlaps=kind == "wallets",
        check_known_customers=check_known,
        holdings=settings.holdings,
    )


def record_outcome(con: duckdb.DuckDBPyConnection, outcome: FileOutcome, run: RunContext) -> None:
    values = asdict(outcome)
    columns = ", ".join(f"${name} as {name}" for name in values)
    con.execute(
        f"insert into manifest by name select {columns}, "
        "$run_id as run_id, $now as processed_at, $as_of as as_of_date",
        {**values, "run_id": run.run_id, "now": run.now, "as_of": run.as_of},
    )


def already_loaded(con: duckdb.DuckDBPyConnection, sha256: str) -> bool:
    found = con.execute(
        "select count(*) from manifest where file_sha256 = $sha and status = 'loaded'",
        {"sha": sha256},
    ).fetchall()
    return found[0][0] > 0

"""Loading extract files from the inbox into the warehouse, each exactly once.

Per file: read the bytes once (hash = identity) -> decode and check the CSV
structure -> map column names -> stage (cast, `sql/staging/`) -> validate
(pandera) -> one DuckDB transaction that writes quarantined rows, classifies
valid rows as loaded / replaced / duplicate (`sql/ingest/`), moves replaced
versions to the audit table, checks that every row is accounted for in the
tables themselves and records the file in the manifest. A file-level problem
fails that file alone, with a message, and loads nothing; the file stays in
the inbox and is retried by the next run.

Line numbers are physical lines of the file (header = line 1), also when a
quoted field spans lines; blank lines are not rows. In a Parquet extract the
"line" is the row number (first row = 1).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from customer_equity import warehouse
from customer_equity.faults import checkpoint
from customer_equity.settings import EXTRACT_KINDS, ExtractFormat, ExtractKind, Settings
from customer_equity.warehouse import audit_table, quote
from schemas.inputs import (
    InputRules,
    input_schema,
    key_columns,
    required_columns,
)

# Customers first: the unknown-customer check of transactions reads them.
INGEST_ORDER: tuple[ExtractKind, ...] = ("customers", "transactions", "wallets", "costs")
EXTRACT_SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet"}
LINE = "_line"
EXTRA_ATTRIBUTES = "extra_attributes"
# Names the loader itself adds to a frame: a source column may not take them.
RESERVED_COLUMNS = frozenset({LINE, EXTRA_ATTRIBUTES})
KEY_SEPARATOR = "\x1f"
NULL_MARK = "\x00"
OTHER_DELIMITERS = (",", ";", "\t", "|")


class ExtractError(ValueError):
    """A file-level problem: the whole file is rejected and nothing of it is loaded.

    Messages name lines, columns and settings, never cell values: they reach
    `data_quality` in the lake, and a customers extract holds PII.
    """


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

    def accounted(self) -> bool:
        return self.rows_read == (
            self.rows_loaded + self.rows_replaced + self.rows_duplicate + self.rows_quarantined
        )


def discover_extracts(inbox: Path) -> list[tuple[ExtractKind, Path]]:
    """Extract files per kind in name order; hidden and partial (`.part`, `.tmp`) files wait."""
    found: list[tuple[ExtractKind, Path]] = []
    for kind in INGEST_ORDER:
        folder = inbox / kind
        if not folder.is_dir():
            continue
        files = sorted(
            path
            for path in folder.iterdir()
            if path.is_file()
            and not path.name.startswith(".")
            and path.suffix.lower() in EXTRACT_SUFFIXES
        )
        found.extend((kind, path) for path in files)
    return found


def read_inbox_file(inbox: Path, path: Path) -> bytes:
    """The file's bytes, read once: what is hashed is exactly what is loaded.

    A symlink that leads out of the inbox is refused: extract names must not
    become a way to read arbitrary files into the warehouse.
    """
    if not path.resolve().is_relative_to(inbox.resolve()):
        raise ExtractError("the file resolves to a path outside the inbox")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ExtractError(f"unreadable file: {exc.strerror}") from None


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def read_extract(
    path: Path, content: bytes, extract_format: ExtractFormat, schema: pa.DataFrameSchema
) -> tuple[pl.DataFrame, pl.Series]:
    """Every column as text, and each row's line in the file (see the module doc)."""
    if EXTRACT_SUFFIXES[path.suffix.lower()] == "parquet":
        return read_parquet_extract(content, schema, extract_format.columns)
    return read_csv_extract(content, extract_format)


def utf8_content(content: bytes, encoding: str) -> bytes:
    """The extract as UTF-8 bytes (without BOM), or an ExtractError naming the problem."""
    if encoding == "utf-8":
        return content.removeprefix(codecs.BOM_UTF8)  # validated while checking the structure
    # GB18030 decodes almost any byte sequence, so UTF-8 read as GB18030 would
    # silently turn into mojibake; non-ASCII text that is valid UTF-8 is UTF-8.
    if content.startswith(codecs.BOM_UTF8) or _is_non_ascii_utf8(content):
        raise ExtractError(
            f"the file is UTF-8 but the configured encoding is {encoding} "
            f'(set extracts.<kind>.encoding = "utf-8")'
        )
    try:
        return content.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ExtractError(f"not valid {encoding} text at line {line}") from None


def _is_non_ascii_utf8(content: bytes) -> bool:
    if content.isascii():
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class CsvLayout:
    """What the CSV structure check learned: header, first line of each record, blank records."""

    header: list[str]
    lines: pl.Series
    blank: pl.Series


def csv_layout(utf8: bytes, delimiter: str, encoding: str) -> CsvLayout:
    """Check the record structure with the `csv` module, which knows each record's line.

    Polars pads a short row with nulls and gives no line numbers, so a file cut
    mid-row would load silently and a quoted field spanning lines would shift
    every line number after it. Every record must have as many fields as the
    header; blank lines are allowed and are not rows. Costs about 1 s per
    million rows, a tenth of the ingest.
    """
    text = io.TextIOWrapper(io.BytesIO(utf8), encoding="utf-8", newline="")
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    lines, blank = array("q"), array("b")
    try:
        header = next(reader, None)
        if header is None or not any(name.strip() for name in header):
            raise ExtractError("empty file")
        width, end = len(header), reader.line_num
        for fields in reader:
            start, end = end + 1, reader.line_num
            is_blank = len(fields) <= 1 and not "".join(fields).strip()
            if len(fields) != width and not is_blank:
                raise ExtractError(
                    f"line {start} has {len(fields)} field(s) but the header has {width} "
                    f"(delimiter {delimiter!r}): the file is truncated or malformed"
                )
            lines.append(start)
            blank.append(is_blank)
    except csv.Error as exc:
        raise ExtractError(f"malformed CSV at line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError:
        raise ExtractError(
            f"not valid {encoding} text at line {_first_undecodable_line(utf8)} "
            "(set extracts.<kind>.encoding if the file is e.g. gb18030)"
        ) from None
    return CsvLayout(
        header=header,
        lines=pl.Series(LINE, np.frombuffer(lines, dtype=np.int64), dtype=pl.Int64),
        blank=pl.Series("blank", np.frombuffer(blank, dtype=np.int8).astype(bool)),
    )


def _first_undecodable_line(content: bytes) -> int:
    """The line of the first byte that is not UTF-8 (the streaming decoder reads in blocks)."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return content[: exc.start].count(b"\n") + 1
    return 1


def read_csv_extract(
    content: bytes, extract_format: ExtractFormat
) -> tuple[pl.DataFrame, pl.Series]:
    if not content.strip():
        raise ExtractError("empty file")
    utf8 = utf8_content(content, extract_format.encoding)
    layout = csv_layout(utf8, extract_format.delimiter, extract_format.encoding)
    names = [name.strip() for name in layout.header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ExtractError(f"column(s) {repeated} appear more than once in the header")
    if layout.lines.len() == 0:
        raise ExtractError("header only: the file has no data rows")
    try:
        frame = pl.read_csv(
            utf8,
            infer_schema=False,
            separator=extract_format.delimiter,
            raise_if_empty=True,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        # The polars message can quote cell values (PII): name the kind of error only.
        raise ExtractError(f"unreadable CSV ({type(exc).__name__})") from None
    if frame.columns != layout.header or frame.height != layout.lines.len():
        # Two readers disagree on the layout (e.g. bare CR line ends): refuse to guess.
        raise ExtractError(
            "ambiguous CSV layout (line endings or quoting): "
            f"{frame.height} rows by polars, {layout.lines.len()} by the csv module"
        )
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    keep = ~layout.blank
    if not keep.any():
        raise ExtractError("header only: the file has no data rows")
    return frame.filter(keep), layout.lines.filter(keep)


def read_parquet_extract(
    content: bytes, schema: pa.DataFrameSchema, mapping: dict[str, str]
) -> tuple[pl.DataFrame, pl.Series]:
    try:
        frame = pl.read_parquet(io.BytesIO(content))
    except Exception as exc:  # any reader failure means the file is unusable as a whole
        raise ExtractError(f"unreadable Parquet: {str(exc).splitlines()[0]}") from None
    check_parquet_types(frame.schema, schema, mapping)
    if frame.height == 0:
        raise ExtractError("header only: the Parquet file has no rows")
    as_text = []
    for name, dtype in frame.schema.items():
        if dtype.is_nested() or dtype == pl.Binary:
            raise ExtractError(f"Parquet column {name!r} is {dtype}: only flat columns load")
        column = pl.col(name)
        as_text.append(column.dt.to_string("%Y-%m-%d") if dtype == pl.Date else column)
    frame = frame.select(expr.cast(pl.String) for expr in as_text)
    return frame, pl.int_range(1, frame.height + 1, dtype=pl.Int64, eager=True).alias(LINE)


def check_parquet_types(
    stored: pl.Schema, schema: pa.DataFrameSchema, mapping: dict[str, str]
) -> None:
    """A typed column stored with an incompatible Parquet type fails the file."""
    wrong = []
    for source_name, dtype in stored.items():
        canonical = mapping.get(source_name, source_name)
        column = schema.columns.get(canonical)
        if column is None or not column.metadata["typed"]:
            continue
        expected = column.dtype.type
        compatible = dtype.is_numeric() if expected == pl.Float64 else dtype.is_temporal()
        if not compatible:
            wrong.append(f"{source_name} is {dtype}, expected {expected}")
    if wrong:
        raise ExtractError("wrong Parquet column types: " + "; ".join(wrong))


def is_pii(column: str, pii_columns: tuple[str, ...]) -> bool:
    """A column whose name contains a PII word (`customer_name`, `E-mail`, `phone_no`, `客户姓名`).

    Matched on letters and digits only (any script), so spelling variants are
    caught too; a false positive only drops an extra column, never a SPEC column.
    """
    name = _letters_and_digits(column)
    return any(word and word in name for word in map(_letters_and_digits, pii_columns))


def _letters_and_digits(text: str) -> str:
    return "".join(character for character in text.casefold() if character.isalnum())


def canonical_frame(
    raw: pl.DataFrame,
    lines: pl.Series,
    schema: pa.DataFrameSchema,
    extract_format: ExtractFormat,
    pii_columns: tuple[str, ...],
) -> pl.DataFrame:
    """Source names mapped to SPEC §2 names, PII dropped, absent optional columns as nulls."""
    mapping = extract_format.columns
    targets = [mapping.get(name, name) for name in raw.columns]
    reserved = sorted(RESERVED_COLUMNS.intersection(targets))
    if reserved:
        raise ExtractError(f"column name(s) {reserved} are reserved by the loader")
    duplicated = sorted({c for c in targets if targets.count(c) > 1})
    if duplicated:
        raise ExtractError(f"column(s) {duplicated} appear twice after the column mapping")
    missing = [c for c in required_columns(schema) if c not in targets]
    if missing:
        shown = json.dumps(mapping) if mapping else "none (canonical names expected)"
        raise ExtractError(
            f"missing required column(s) {missing}; found {raw.columns}"
            f"; column mapping in use: {shown}{_delimiter_hint(raw.columns, extract_format)}"
        )
    renamed = raw.rename(dict(zip(raw.columns, targets, strict=True)))
    kept = renamed.select(
        c for c in renamed.columns if c in schema.columns or not is_pii(c, pii_columns)
    )
    extras = [c for c in kept.columns if c not in schema.columns]
    absent = [c for c in schema.columns if c not in kept.columns]
    frame = kept.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in absent)
    extra_attributes = (
        pl.struct(extras).struct.json_encode()
        if extras and extract_format.extra_columns == "keep"
        else pl.lit(None, dtype=pl.String)
    )
    return frame.select(
        lines.alias(LINE), *schema.columns, extra_attributes.alias(EXTRA_ATTRIBUTES)
    )


def _delimiter_hint(columns: list[str], extract_format: ExtractFormat) -> str:
    if len(columns) != 1:
        return ""
    found = [d for d in OTHER_DELIMITERS if d != extract_format.delimiter and d in columns[0]]
    if not found:
        return ""
    return (
        f"; the header contains {found[0]!r} but the delimiter is "
        f"{extract_format.delimiter!r} (extracts.<kind>.delimiter)"
    )


def stage(
    con: duckdb.DuckDBPyConnection,
    kind: ExtractKind,
    extract: pl.DataFrame,
    date_format: str | None,
) -> pl.DataFrame:
    """Run `sql/staging/stg_<kind>.sql` over the text frame: trims and casts only."""
    con.register("extract", extract)
    try:
        staged = con.sql(
            warehouse.sql_text(f"staging/stg_{kind}"), params={"date_format": date_format}
        ).pl()
    finally:
        con.unregister("extract")
    return staged.join(extract.select(LINE, EXTRA_ATTRIBUTES), on=LINE, how="left")


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


def row_identity(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    """Add `_key` (the key columns) and `_row_text` (every business value) for the merge."""

    def text(columns: list[str] | tuple[str, ...]) -> pl.Expr:
        return pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null(NULL_MARK) for c in columns],
            separator=KEY_SEPARATOR,
        )

    return frame.with_columns(
        text(key_columns(schema)).alias("_key"),
        text([*schema.columns, EXTRA_ATTRIBUTES]).alias("_row_text"),
    )


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    kind: ExtractKind,
    path: Path,
    content: bytes,
    sha256: str,
    settings: Settings,
    run_id: str,
    now: datetime,
) -> FileOutcome:
    """Validate and load one extract in one transaction; raise ExtractError to reject it."""
    extract_format = settings.extracts.for_kind(kind)
    rules = input_rules(con, kind, settings, now)
    schema = input_schema(kind, rules)
    raw, lines = read_extract(path, content, extract_format, schema)
    rows_read = raw.height
    extract = canonical_frame(raw, lines, schema, extract_format, settings.quality.pii_columns)
    # Frames of a large extract take gigabytes each: every one is dropped as soon
    # as the next step has what it needs, so at most two are alive at a time.
    del raw, lines
    staged = stage(con, kind, extract, extract_format.date_format)
    failures = quarantine_reasons(staged, schema)
    staged = staged.with_row_index("index").with_columns(pl.col("index").cast(pl.Int64))
    reasons = staged.select("index", LINE).join(failures, on="index", how="inner")
    quarantined = reasons.select(LINE, "reason").join(
        extract.drop(EXTRA_ATTRIBUTES).select(
            LINE, pl.struct(pl.exclude(LINE)).struct.json_encode().alias("record")
        ),
        on=LINE,
    )
    del extract
    business = [*schema.columns, EXTRA_ATTRIBUTES]
    good = staged.join(failures, on="index", how="anti").select(LINE, *business)
    del staged
    valid = row_identity(good, schema)
    del good
    con.execute("begin transaction")
    try:
        before = table_counts(con, kind)
        counts = _merge(con, kind, path.name, valid, run_id, now)
        con.register("quarantined_rows", quarantined)
        con.execute(
            "insert into quarantine select $run_id, $kind, $file, $sha, _line, reason, record, "
            "$now from quarantined_rows",
            {"run_id": run_id, "kind": kind, "file": path.name, "sha": sha256, "now": now},
        )
        con.unregister("quarantined_rows")
        outcome = FileOutcome(
            extract_kind=kind,
            file_name=path.name,
            file_sha256=sha256,
            status="loaded",
            rows_read=rows_read,
            rows_quarantined=quarantined.height,
            **counts,
        )
        check_file_accounting(outcome, before, table_counts(con, kind))
        record_outcome(con, outcome, run_id, now)
        checkpoint("ingest-before-commit", path.name)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    checkpoint("ingest-after-commit", path.name)
    return outcome


@dataclass(frozen=True)
class TableCounts:
    current: int
    audit: int
    quarantine: int


def table_counts(con: duckdb.DuckDBPyConnection, kind: ExtractKind) -> TableCounts:
    (row,) = con.execute(
        f"select (select count(*) from {quote(kind)}), "
        f"(select count(*) from {quote(audit_table(kind))}), "
        "(select count(*) from quarantine)"
    ).fetchall()
    return TableCounts(*row)


def check_file_accounting(outcome: FileOutcome, before: TableCounts, after: TableCounts) -> None:
    """read = loaded + replaced + duplicate + quarantined, measured in the tables themselves.

    A loaded row adds one current row, a replaced row moves one version to the
    audit table, a quarantined row adds one quarantine row; duplicates change
    nothing. Raised inside the file's transaction, so a violation never commits.
    """
    measured = {
        "rows_loaded": after.current - before.current,
        "rows_replaced": after.audit - before.audit,
        "rows_quarantined": after.quarantine - before.quarantine,
    }
    claimed = {name: getattr(outcome, name) for name in measured}
    if measured != claimed or not outcome.accounted():
        raise AccountingError(
            f"{outcome.file_name}: rows do not add up: {outcome}; the tables changed by {measured}"
        )


def _merge(
    con: duckdb.DuckDBPyConnection,
    kind: ExtractKind,
    file_name: str,
    valid: pl.DataFrame,
    run_id: str,
    now: datetime,
) -> dict[str, int]:
    """Apply the classified batch to the current and audit tables of `kind`."""
    table, audit = quote(kind), quote(audit_table(kind))
    con.register("valid_rows", valid)
    con.execute(
        "create or replace temp table batch as select * exclude (_row_text), "
        "md5(_row_text) as _row_hash from valid_rows"
    )
    con.unregister("valid_rows")
    con.execute(
        f"create or replace temp view stored_version as select _key, _row_hash from {table}"
    )
    con.execute(warehouse.sql_text("ingest/classify_batch"))
    columns = [c for c, *_ in con.execute(f"describe {table}").fetchall()]
    lineage = {"file": file_name, "run_id": run_id, "now": now}
    batch_select = ", ".join(
        {
            "_file": "$file",
            "_run_id": "$run_id",
            "_loaded_at": "$now",
        }.get(c, f"b.{quote(c)}")
        for c in columns
    )
    # Versions that a row of this batch replaced: stored ones (line 0) and earlier lines.
    con.execute(
        f"insert into {audit} select s.*, $run_id, $now from {table} s "
        "where s._key in (select _key from classified where outcome = 'replaced' "
        "and previous_line = 0)",
        {"run_id": run_id, "now": now},
    )
    con.execute(
        f"insert into {audit} select {batch_select}, $run_id, $now from batch b "
        "join classified c on c._key = b._key and c.previous_line = b._line "
        "where c.outcome = 'replaced'",
        lineage,
    )
    con.execute(
        f"delete from {table} where _key in "
        "(select _key from classified where is_final and outcome <> 'duplicate')"
    )
    con.execute(
        f"insert into {table} select {batch_select} from batch b "
        "join classified c on c._key = b._key and c._line = b._line where c.is_final",
        lineage,
    )
    rows = dict(con.execute("select outcome, count(*) from classified group by outcome").fetchall())
    return {
        "rows_loaded": rows.get("loaded", 0),
        "rows_replaced": rows.get("replaced", 0),
        "rows_duplicate": rows.get("duplicate", 0),
    }


def input_rules(
    con: duckdb.DuckDBPyConnection, kind: ExtractKind, settings: Settings, now: datetime
) -> InputRules:
    quality = settings.quality
    known = None
    if kind == "transactions" and quality.unknown_customers == "quarantine":
        customers = con.sql("select customer_id from customers").pl()
        known = customers["customer_id"] if customers.height else None
    return InputRules(
        base_currency=quality.base_currency,
        max_abs_amount=quality.max_abs_amount,
        latest_allowed_date=now.date() + timedelta(days=quality.future_tolerance_days),
        known_customer_ids=known,
    )


def record_outcome(
    con: duckdb.DuckDBPyConnection, outcome: FileOutcome, run_id: str, now: datetime
) -> None:
    values = asdict(outcome)
    con.execute(
        "insert into manifest values ($run_id, $extract_kind, $file_name, $file_sha256, $status, "
        "$rows_read, $rows_loaded, $rows_replaced, $rows_duplicate, $rows_quarantined, $error, "
        "$now)",
        {**values, "run_id": run_id, "now": now},
    )


def already_loaded(con: duckdb.DuckDBPyConnection, sha256: str) -> bool:
    found = con.execute(
        "select count(*) from manifest where file_sha256 = $sha and status = 'loaded'",
        {"sha": sha256},
    ).fetchall()
    return found[0][0] > 0


RUN_ACCOUNTING_SQL = """
with run_files as (select * from manifest where run_id = $run_id),
quarantined as (
    select file_name, file_sha256, count(*) as stored
    from quarantine where run_id = $run_id group by all
)
select file_name, 'rows do not add up' from run_files
where rows_read <> rows_loaded + rows_replaced + rows_duplicate + rows_quarantined
union all
select file_name, status || ' file counted rows' from run_files
where status <> 'loaded' and rows_read + rows_loaded + rows_replaced + rows_duplicate
    + rows_quarantined <> 0
union all
select coalesce(f.file_name, q.file_name),
    'quarantine holds ' || coalesce(q.stored, 0) || ' row(s), manifest says '
    || coalesce(f.rows_quarantined, 0)
from (select * from run_files where status = 'loaded') f
full join quarantined q on q.file_name = f.file_name and q.file_sha256 = f.file_sha256
where coalesce(q.stored, 0) <> coalesce(f.rows_quarantined, 0)
"""


def check_run_accounting(con: duckdb.DuckDBPyConnection, run_id: str, files_seen: int) -> None:
    """End-of-ingestion check over the manifest rows of the run; raises AccountingError.

    Every file seen has one manifest row; every row adds up; skipped and failed
    files loaded nothing; the quarantine and audit tables hold exactly the rows
    the manifest says this run put there.
    """
    run = {"run_id": run_id}
    problems = [
        f"{file_name}: {problem}"
        for file_name, problem in con.execute(RUN_ACCOUNTING_SQL, run).fetchall()
    ]
    ((recorded,),) = con.execute(
        "select count(*) from manifest where run_id = $run_id", run
    ).fetchall()
    if recorded != files_seen:
        problems.append(f"{files_seen} file(s) seen but {recorded} manifest row(s)")
    for kind in EXTRACT_KINDS:
        ((audited, claimed),) = con.execute(
            f"select (select count(*) from {quote(audit_table(kind))} "
            "where _replaced_by_run = $run_id), (select coalesce(sum(rows_replaced), 0) "
            "from manifest where run_id = $run_id and extract_kind = $kind)",
            {**run, "kind": kind},
        ).fetchall()
        if audited != claimed:
            problems.append(f"{kind}: {audited} audited version(s), manifest says {claimed}")
    if problems:
        raise AccountingError(f"run {run_id}: ingestion does not add up: " + "; ".join(problems))


def ingest_inbox(
    settings: Settings,
    run_id: str,
    now: datetime | None = None,
    progress: Callable[[int, int, FileOutcome], None] | None = None,
) -> list[FileOutcome]:
    """Load every new extract of the inbox; one outcome per file seen (SPEC §9 data_quality).

    `progress(done, total, outcome)` is called after each file (for the run log).
    """
    now = now or datetime.now(UTC)
    outcomes: list[FileOutcome] = []
    inbox = settings.paths.inbox
    con = warehouse.connect(
        settings.paths.warehouse, memory_limit=settings.engine.duckdb_memory_limit
    )
    try:
        extracts = list(discover_extracts(inbox))
        for kind, path in extracts:
            outcome = _ingest_one(con, kind, path, settings, run_id, now)
            outcomes.append(outcome)
            if progress:
                progress(len(outcomes), len(extracts), outcome)
        check_run_accounting(con, run_id, len(outcomes))
        checkpoint("ingest-done")
    finally:
        con.close()
    return outcomes


def _ingest_one(
    con: duckdb.DuckDBPyConnection,
    kind: ExtractKind,
    path: Path,
    settings: Settings,
    run_id: str,
    now: datetime,
) -> FileOutcome:
    """Load, skip or fail one file; a file-level error is recorded, anything else propagates."""
    sha256 = ""  # an unreadable file has no content hash
    try:
        content = read_inbox_file(settings.paths.inbox, path)
        sha256 = sha256_of(content)
        if already_loaded(con, sha256):
            outcome = FileOutcome(kind, path.name, sha256, "skipped")
        else:
            return ingest_file(con, kind, path, content, sha256, settings, run_id, now)
    except ExtractError as exc:
        outcome = FileOutcome(kind, path.name, sha256, "failed", error=f"{path.name}: {exc}")
    record_outcome(con, outcome, run_id, now)
    return outcome

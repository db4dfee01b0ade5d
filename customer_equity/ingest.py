"""Loading extract files from the inbox into the warehouse, each exactly once.

Per file: read as text -> map column names -> stage (cast, `sql/staging/`) ->
validate (pandera) -> one DuckDB transaction that writes quarantined rows,
classifies valid rows as loaded / replaced / duplicate (`sql/ingest/`), moves
replaced versions to the audit table and records the file in the manifest.
A file-level problem fails that file alone, with a message, and loads nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from customer_equity import warehouse
from customer_equity.settings import ExtractFormat, ExtractKind, Settings
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
KEY_SEPARATOR = "\x1f"
NULL_MARK = "\x00"


class ExtractError(ValueError):
    """A file-level problem: the whole file is rejected and nothing of it is loaded."""


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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_extract(path: Path, extract_format: ExtractFormat) -> pl.DataFrame:
    """Every column as text plus `_line`, the row's line in the file (header = line 1)."""
    kind_of_file = EXTRACT_SUFFIXES[path.suffix.lower()]
    if kind_of_file == "parquet":
        return _read_parquet_as_text(path)
    data = path.read_bytes()
    if not data.strip():
        raise ExtractError("empty file")
    try:
        text = data.decode(
            "utf-8-sig" if extract_format.encoding == "utf-8" else extract_format.encoding
        )
    except UnicodeDecodeError as exc:
        raise ExtractError(
            f"not valid {extract_format.encoding} text at byte {exc.start} "
            f"(set extracts.<kind>.encoding if the file is e.g. gb18030)"
        ) from None
    try:
        frame = pl.read_csv(
            text.encode("utf-8"),
            infer_schema=False,
            separator=extract_format.delimiter,
            raise_if_empty=True,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise ExtractError(f"unreadable CSV: {str(exc).splitlines()[0]}") from None
    frame = frame.rename({name: name.strip() for name in frame.columns})
    return frame.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))


def _read_parquet_as_text(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # any reader failure means the file is unusable as a whole
        raise ExtractError(f"unreadable Parquet: {str(exc).splitlines()[0]}") from None
    as_text = [
        pl.col(name).dt.to_string("%Y-%m-%d") if dtype == pl.Date else pl.col(name).cast(pl.String)
        for name, dtype in frame.schema.items()
    ]
    return (
        frame.with_columns(as_text)
        .with_row_index(LINE, offset=1)
        .with_columns(pl.col(LINE).cast(pl.Int64))
    )


def check_parquet_types(path: Path, schema: pa.DataFrameSchema, mapping: dict[str, str]) -> None:
    """A typed column stored with an incompatible Parquet type fails the file."""
    if EXTRACT_SUFFIXES[path.suffix.lower()] != "parquet":
        return
    stored = pl.read_parquet_schema(path)
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


def canonical_frame(
    raw: pl.DataFrame,
    schema: pa.DataFrameSchema,
    extract_format: ExtractFormat,
    pii_columns: tuple[str, ...],
) -> pl.DataFrame:
    """Source names mapped to SPEC §2 names, PII dropped, absent optional columns as nulls."""
    mapping = extract_format.columns
    renamed = raw.rename({src: dst for src, dst in mapping.items() if src in raw.columns})
    duplicated = sorted({c for c in renamed.columns if renamed.columns.count(c) > 1})
    if duplicated:
        raise ExtractError(f"column(s) {duplicated} appear twice after the column mapping")
    missing = [c for c in required_columns(schema) if c not in renamed.columns]
    if missing:
        shown = json.dumps(mapping) if mapping else "none (canonical names expected)"
        raise ExtractError(
            f"missing required column(s) {missing}; found {[c for c in raw.columns if c != LINE]}"
            f"; column mapping in use: {shown}"
        )
    if renamed.height == 0:
        raise ExtractError("header only: the file has no data rows")
    pii = {name.lower() for name in pii_columns}
    kept = renamed.select([c for c in renamed.columns if c.lower() not in pii])
    extras = [c for c in kept.columns if c not in schema.columns and c != LINE]
    absent = [c for c in schema.columns if c not in kept.columns]
    frame = kept.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in absent)
    extra_attributes = (
        pl.struct(extras).struct.json_encode()
        if extras and extract_format.extra_columns == "keep"
        else pl.lit(None, dtype=pl.String)
    )
    return frame.select([LINE, *schema.columns]).with_columns(
        extra_attributes.alias("extra_attributes")
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
    return staged.join(extract.select(LINE, "extra_attributes"), on=LINE, how="left")


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
        text([*schema.columns, "extra_attributes"]).alias("_row_text"),
    )


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    kind: ExtractKind,
    path: Path,
    sha256: str,
    settings: Settings,
    run_id: str,
    now: datetime,
) -> FileOutcome:
    """Validate and load one extract in one transaction; raise ExtractError to reject it."""
    extract_format = settings.extracts.for_kind(kind)
    rules = input_rules(con, kind, settings, now)
    schema = input_schema(kind, rules)
    check_parquet_types(path, schema, extract_format.columns)
    raw = read_extract(path, extract_format)
    extract = canonical_frame(raw, schema, extract_format, settings.quality.pii_columns)
    staged = stage(con, kind, extract, extract_format.date_format)
    failures = quarantine_reasons(staged, schema)
    staged = staged.with_row_index("index").with_columns(pl.col("index").cast(pl.Int64))
    bad = staged.join(failures, on="index", how="inner")
    good = staged.join(failures, on="index", how="anti")
    business = [*schema.columns, "extra_attributes"]
    valid = row_identity(good.select(LINE, *business), schema)
    quarantined = bad.select(LINE, "reason").join(
        extract.drop("extra_attributes").select(
            LINE, pl.struct(pl.exclude(LINE)).struct.json_encode().alias("record")
        ),
        on=LINE,
    )
    con.execute("begin transaction")
    try:
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
            rows_read=raw.height,
            rows_quarantined=quarantined.height,
            **counts,
        )
        if not outcome.accounted():
            raise RuntimeError(f"{path.name}: rows do not add up: {outcome}")
        record_outcome(con, outcome, run_id, now)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return outcome


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


def ingest_inbox(settings: Settings, run_id: str, now: datetime | None = None) -> list[FileOutcome]:
    """Load every new extract of the inbox; one outcome per file seen (SPEC §9 data_quality)."""
    now = now or datetime.now(UTC)
    outcomes: list[FileOutcome] = []
    con = warehouse.connect(settings.paths.warehouse)
    try:
        for kind, path in discover_extracts(settings.paths.inbox):
            sha256 = file_sha256(path)
            if already_loaded(con, sha256):
                outcome = FileOutcome(kind, path.name, sha256, "skipped")
                record_outcome(con, outcome, run_id, now)
            else:
                try:
                    outcome = ingest_file(con, kind, path, sha256, settings, run_id, now)
                except ExtractError as exc:
                    outcome = FileOutcome(
                        kind, path.name, sha256, "failed", error=f"{path.name}: {exc}"
                    )
                    record_outcome(con, outcome, run_id, now)
            outcomes.append(outcome)
    finally:
        con.close()
    return outcomes

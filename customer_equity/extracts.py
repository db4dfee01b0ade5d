"""Reading extract files: discovery, hashing, decoding, CSV structure and bounded batches.

Nothing here holds a whole file. A file is read in fixed-size chunks once to
hash it (its identity), once more to check or transcode its encoding, and
then parsed into batches of text columns, each with the physical line of its
rows. Size and mtime are compared before and after, so what was hashed is
what was loaded.

Line numbers are physical lines of the file (header = line 1), also when a
quoted field spans lines; blank lines are not rows. In a Parquet extract the
"line" is the row number (first row = 1).

Two CSV parsers, one contract:
- fast: `pyarrow.csv.open_csv`, all columns as text, in blocks of
  `batch_bytes`. It numbers records, not lines, so it is only trusted when
  records + header = physical lines (no blank lines, no quoted line breaks),
  the file ends with a line end, quotes are balanced and the header is one
  line; it also stops at any record with a wrong field count.
- exact: the `csv` module (strict), streamed in batches; it knows every
  record's first line, tells blank lines from rows and names the line of a
  structural fault. Used when the fast parser is not trusted or refuses the file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from customer_equity.settings import INGEST_ORDER, ExtractFormat, ExtractKind, Inbox

EXTRACT_SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet"}
LINE = "_line"
EXTRA_ATTRIBUTES = "extra_attributes"
# Names the loader itself adds to a frame: a source column may not take them.
RESERVED_COLUMNS = frozenset({LINE, EXTRA_ATTRIBUTES, "_file"})
OTHER_DELIMITERS = (",", ";", "\t", "|")
CHUNK_BYTES = 8 * 2**20
# Rows per batch for the row-based readers (csv module, Parquet): batch_bytes / this.
ASSUMED_ROW_BYTES = 100
# The largest integer a float64 holds exactly: float ids beyond it are already rounded.
EXACT_FLOAT_INTEGER = 2**53


class ExtractError(ValueError):
    """A file-level problem: the whole file is rejected and nothing of it is loaded.

    Messages name lines, columns and settings, never cell values: they reach
    `data_quality` in the lake, and a customers extract holds PII.
    """


class FastParseRejectedError(Exception):
    """The fast CSV parser cannot vouch for this file: parse it again with the exact one."""


PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload")
DONE_SUFFIX = ".done"


@dataclass(frozen=True)
class Discovered:
    """The inbox as one run sees it: files to read, and files left for a later run."""

    ready: list[tuple[ExtractKind, Path]]
    waiting: list[tuple[ExtractKind, Path, str]]


def discover_extracts(
    inbox: Path, rules: Inbox | None = None, now: float | None = None
) -> Discovered:
    """Extract files per kind in name order; half-arrived files wait (SPEC §2).

    Partial-transfer names are not extracts at all. A file modified within the
    settle time, or without its done marker when one is required, waits.
    """
    rules = rules or Inbox(settle_seconds=0)
    now = time.time() if now is None else now
    ready: list[tuple[ExtractKind, Path]] = []
    waiting: list[tuple[ExtractKind, Path, str]] = []
    for kind in INGEST_ORDER:
        folder = inbox / kind
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if _is_extract_name(p.name)):
            if not path.is_file():
                continue
            reason = _why_waiting(path, rules, now)
            if reason:
                waiting.append((kind, path, reason))
            else:
                ready.append((kind, path))
    return Discovered(ready=ready, waiting=waiting)


def _is_extract_name(name: str) -> bool:
    lowered = name.lower()
    if name.startswith((".", "~$")) or lowered.endswith(PARTIAL_SUFFIXES):
        return False
    return Path(lowered).suffix in EXTRACT_SUFFIXES


def _why_waiting(path: Path, rules: Inbox, now: float) -> str | None:
    if rules.require_done_marker and not path.with_name(path.name + DONE_SUFFIX).exists():
        return f"waiting for {path.name}{DONE_SUFFIX}"
    age = now - path.stat().st_mtime
    if age < rules.settle_seconds:
        return f"modified {max(age, 0):.0f} s ago (settle time {rules.settle_seconds:g} s)"
    return None


def is_parquet(path: Path) -> bool:
    return EXTRACT_SUFFIXES[path.suffix.lower()] == "parquet"


@dataclass(frozen=True)
class FileScan:
    """What one pass over the raw bytes learned."""

    sha256: str
    size: int
    newlines: int
    has_quotes: bool
    quotes_balanced: bool
    ends_with_newline: bool
    blank: bool  # only whitespace (and a BOM)
    starts_with_bom: bool

    @property
    def lines(self) -> int:
        """Physical lines: line feeds, plus one for a last line without a line end."""
        return self.newlines + (0 if self.ends_with_newline or self.size == 0 else 1)


def scan_file(inbox: Path, path: Path) -> FileScan:
    """Hash the file and count what the parsers need to know, in one streaming pass.

    A symlink that leads out of the inbox is refused: extract names must not
    become a way to read arbitrary files into the warehouse. A kind folder that
    is itself a link to a directory is the user's choice: its files may live
    there (but not leave it).
    """
    resolved = path.resolve()
    if not (
        resolved.is_relative_to(inbox.resolve()) or resolved.is_relative_to(path.parent.resolve())
    ):
        raise ExtractError("the file resolves to a path outside the inbox")
    digest = hashlib.sha256()
    size = newlines = quotes = 0
    blank, last, first = True, b"", b""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                if not first:
                    first = chunk[:3]
                digest.update(chunk)
                size += len(chunk)
                newlines += chunk.count(b"\n")
                quotes += chunk.count(b'"')
                if (
                    blank
                    and chunk.removeprefix(codecs.BOM_UTF8 if size == len(chunk) else b"").strip()
                ):
                    blank = False
                last = chunk[-1:]
    except OSError as exc:
        raise ExtractError(f"unreadable file: {exc.strerror}") from None
    return FileScan(
        sha256=digest.hexdigest(),
        size=size,
        newlines=newlines,
        has_quotes=quotes > 0,
        quotes_balanced=quotes % 2 == 0,
        ends_with_newline=last == b"\n",
        blank=blank,
        starts_with_bom=first.startswith(codecs.BOM_UTF8),
    )


def utf8_text_file(path: Path, scan: FileScan, encoding: str, workdir: Path) -> Path:
    """A UTF-8 version of the extract: the file itself, or a transcoded copy in `workdir`.

    Streams with incremental decoders; a byte sequence that is not valid in
    the configured encoding fails the file with its line. GB18030 decodes
    almost any byte sequence, so UTF-8 read as GB18030 would silently turn
    into mojibake: non-ASCII text that is valid UTF-8 is UTF-8.
    """
    if encoding == "utf-8":
        _check_utf8(path)
        return path
    if scan.starts_with_bom:
        raise _utf8_not_configured(encoding)
    decoder = codecs.getincrementaldecoder(encoding)()
    utf8_check = codecs.getincrementaldecoder("utf-8")()
    valid_utf8, non_ascii = True, False
    target = workdir / f"{scan.sha256}.utf8.csv"
    offset, newlines = 0, 0
    with path.open("rb") as source, target.open("wb") as sink:
        while True:
            chunk = source.read(CHUNK_BYTES)
            final = not chunk
            if chunk and not chunk.isascii():
                non_ascii = True
            if valid_utf8 and non_ascii:
                try:
                    utf8_check.decode(chunk, final)
                except UnicodeDecodeError:
                    valid_utf8 = False
            pending = len(decoder.getstate()[0])
            try:
                sink.write(decoder.decode(chunk, final).encode("utf-8"))
            except UnicodeDecodeError as exc:
                start = max(exc.start - pending, 0)
                line = newlines + chunk[:start].count(b"\n") + 1
                raise ExtractError(f"not valid {encoding} text at line {line}") from None
            if final:
                break
            offset += len(chunk)
            newlines += chunk.count(b"\n")
    if valid_utf8 and non_ascii:
        target.unlink()
        raise _utf8_not_configured(encoding)
    return target


def _utf8_not_configured(encoding: str) -> ExtractError:
    return ExtractError(
        f"the file is UTF-8 but the configured encoding is {encoding} "
        f'(set extracts.<kind>.encoding = "utf-8")'
    )


def _check_utf8(path: Path) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    with path.open("rb") as source:
        while True:
            chunk = source.read(CHUNK_BYTES)
            final = not chunk
            if chunk.isascii() and not decoder.getstate()[0] and not final:
                newlines += chunk.count(b"\n")
                continue
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk, final)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                line = newlines - pending.count(b"\n") + data[: exc.start].count(b"\n") + 1
                raise ExtractError(
                    f"not valid utf-8 text at line {line} "
                    "(set extracts.<kind>.encoding if the file is e.g. gb18030)"
                ) from None
            if final:
                return
            newlines += chunk.count(b"\n")


@dataclass
class TextBatch:
    """Rows of an extract as text (source column names), with each row's line in the file."""

    frame: pl.DataFrame
    lines: pl.Series


@dataclass
class CsvHeader:
    names: list[str]
    lines: int  # physical lines the header record takes


def read_csv_header(text_path: Path, delimiter: str) -> CsvHeader:
    with text_path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ExtractError(f"malformed CSV at line {reader.line_num}: {exc}") from None
        if header is None or not any(name.strip() for name in header):
            raise ExtractError("empty file")
        names = [name.strip() for name in header]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ExtractError(f"column(s) {repeated} appear more than once in the header")
        return CsvHeader(names=names, lines=reader.line_num)


def fast_csv_batches(
    text_path: Path, header: CsvHeader, scan: FileScan, delimiter: str, batch_bytes: int
) -> Iterator[TextBatch]:
    """Batches from pyarrow's parser; raises FastParseRejectedError when it cannot be trusted.

    The file is cut into chunks of about `batch_bytes` at line ends outside
    quotes (an even number of quote characters before them), and each chunk is
    parsed on its own: pyarrow's streaming reader reads far ahead and held
    several times more memory than the batch it returned.
    """
    if header.lines != 1 or not scan.ends_with_newline or not scan.quotes_balanced:
        raise FastParseRejectedError("layout needs the exact parser")
    names = header.names
    read_options = pa_csv.ReadOptions(column_names=names, block_size=1 << 30)
    parse_options = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=scan.has_quotes)
    convert_options = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    records = 0
    for chunk in _chunks_at_record_ends(text_path, batch_bytes):
        try:
            table = pa_csv.read_csv(
                pa.py_buffer(chunk),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        except pa.ArrowInvalid as exc:  # a wrong field count, …: the exact parser names the line
            raise FastParseRejectedError(str(exc)) from None
        del chunk
        if table.num_rows == 0:
            continue
        first_line = records + 2
        records += table.num_rows
        if records + 1 > scan.lines:
            raise FastParseRejectedError("more records than lines")
        frame = pl.from_arrow(table)
        del table
        assert isinstance(frame, pl.DataFrame)
        yield TextBatch(
            frame=frame,
            lines=pl.int_range(
                first_line, first_line + frame.height, dtype=pl.Int64, eager=True
            ).alias(LINE),
        )
    if records + 1 != scan.lines:
        # Blank lines or quoted line breaks: line numbers need the exact parser.
        raise FastParseRejectedError(f"{records} records but {scan.lines} lines")


def _chunks_at_record_ends(text_path: Path, batch_bytes: int) -> Iterator[bytes]:
    """The data lines (header skipped) in pieces of about `batch_bytes`, cut after a record."""
    with text_path.open("rb") as source:
        source.readline()  # the header, one line (checked by the caller)
        rest = b""
        while chunk := source.read(batch_bytes):
            data = rest + chunk
            cut = _last_record_end(data)
            if cut:
                yield data[:cut]
            rest = data[cut:]
        if rest:
            yield rest


def _last_record_end(data: bytes) -> int:
    """Index after the last line feed that is outside quotes (0: none in `data`).

    `data` starts at a record boundary, so a line feed is outside quotes when
    the quote characters before it are even in number (RFC 4180 doubles them).
    """
    end = data.rfind(b"\n")
    quotes = data.count(b'"', 0, max(end, 0))
    while end >= 0:
        if quotes % 2 == 0:
            return end + 1
        previous = data.rfind(b"\n", 0, end)
        quotes -= data.count(b'"', previous + 1, end)
        end = previous
    return 0


def exact_csv_batches(
    text_path: Path, header: CsvHeader, scan: FileScan, delimiter: str, batch_rows: int
) -> Iterator[TextBatch]:
    """Batches from the `csv` module, which knows each record's first line.

    Every record must have as many fields as the header; blank lines are
    allowed and are not rows. The field size limit is lifted: a long cell in
    a column the pipeline does not use must not reject the file (long used
    cells are a row check, `value_too_long`).
    """
    names = header.names
    width = len(names)
    csv.field_size_limit(2**31 - 1)
    with text_path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        columns: list[list[str | None]] = [[] for _ in names]
        lines: list[int] = []
        try:
            next(reader)
            end = reader.line_num
            for fields in reader:
                start, end = end + 1, reader.line_num
                if len(fields) != width:
                    if len(fields) <= 1 and not "".join(fields).strip():
                        continue  # a blank line is not a row
                    raise ExtractError(
                        f"line {start} has {len(fields)} field(s) but the header has {width} "
                        f"(delimiter {delimiter!r}): the file is truncated or malformed"
                    )
                for column, value in zip(columns, fields, strict=True):
                    column.append(value or None)
                lines.append(start)
                if len(lines) >= batch_rows:
                    yield _text_batch(names, columns, lines)
                    columns, lines = [[] for _ in names], []
        except csv.Error as exc:
            raise ExtractError(f"malformed CSV at line {reader.line_num}: {exc}") from None
        if lines:
            yield _text_batch(names, columns, lines)
        if reader.line_num != scan.lines:
            # Bare CR line ends: the csv module and a line-feed count disagree on lines.
            raise ExtractError(
                "ambiguous CSV layout (line endings or quoting): "
                f"{scan.lines} line(s) by line feeds, {reader.line_num} by the csv module"
            )


def _text_batch(names: list[str], columns: list[list[str | None]], lines: list[int]) -> TextBatch:
    return TextBatch(
        frame=pl.DataFrame(
            {
                name: pl.Series(name, values, dtype=pl.String)
                for name, values in zip(names, columns, strict=True)
            }
        ),
        lines=pl.Series(LINE, lines, dtype=pl.Int64),
    )


@dataclass(frozen=True)
class ParquetLayout:
    names: list[str]
    file: pq.ParquetFile = field(compare=False)


def open_parquet(
    path: Path, typed: dict[str, type[pl.DataType]], mapping: dict[str, str]
) -> ParquetLayout:
    """Open a Parquet extract and check its column types before any row is read."""
    try:
        parquet = pq.ParquetFile(path)
        schema = pl.Schema(pl.from_arrow(parquet.schema_arrow.empty_table()).schema)
    except Exception as exc:  # any reader failure means the file is unusable as a whole
        raise ExtractError(f"unreadable Parquet: {str(exc).splitlines()[0]}") from None
    wrong = []
    for name, dtype in schema.items():
        if dtype.is_nested() or dtype == pl.Binary:
            raise ExtractError(f"Parquet column {name!r} is {dtype}: only flat columns load")
        expected = typed.get(mapping.get(name, name))
        if expected is None:
            continue
        compatible = dtype.is_numeric() if expected == pl.Float64 else dtype.is_temporal()
        if not compatible:
            wrong.append(f"{name} is {dtype}, expected {expected}")
    if wrong:
        raise ExtractError("wrong Parquet column types: " + "; ".join(wrong))
    if parquet.metadata.num_rows == 0:
        raise ExtractError("header only: the Parquet file has no rows")
    return ParquetLayout(names=list(schema.names()), file=parquet)


def parquet_batches(
    layout: ParquetLayout, batch_rows: int, text_columns: set[str]
) -> Iterator[TextBatch]:
    """Every column as text. Integer ids become their integer text; float ids must be integers.

    A float column holding 12345678901234567 would print as 1.2345678901234568e+16
    and merge two customers: a text column (`text_columns`, source names) stored
    as float must hold exact integers below 2^53, or the file fails naming it.
    """
    first = 1
    for batch in layout.file.iter_batches(batch_size=batch_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        as_text = []
        for name, dtype in frame.schema.items():
            column = pl.col(name)
            if dtype == pl.Date:
                as_text.append(column.dt.to_string("%Y-%m-%d"))
            elif dtype.is_float() and name in text_columns:
                _check_integral(frame[name], name)
                as_text.append(column.cast(pl.Int64).cast(pl.String))
            else:
                as_text.append(column.cast(pl.String))
        yield TextBatch(
            frame=frame.select(as_text),
            lines=pl.int_range(first, first + frame.height, dtype=pl.Int64, eager=True).alias(LINE),
        )
        first += frame.height


def _check_integral(values: pl.Series, name: str) -> None:
    present = values.drop_nulls()
    exact = (
        present.is_finite() & (present == present.floor()) & (present.abs() <= EXACT_FLOAT_INTEGER)
    )
    if not exact.all():
        raise ExtractError(
            f"Parquet column {name!r} is a float column holding values that are not exact "
            "integers below 2^53: store identifiers as text or integers"
        )


# --- column mapping ---------------------------------------------------------------------------


def is_pii(column: str, pii_columns: tuple[str, ...]) -> bool:
    """A column whose name contains a PII word (`customer_name`, `E-mail`, `phone_no`, `客户姓名`).

    Matched on letters and digits only (any script), so spelling variants are
    caught too; a false positive only drops an extra column, never a SPEC column.
    """
    name = _letters_and_digits(column)
    return any(word and word in name for word in map(_letters_and_digits, pii_columns))


def _letters_and_digits(text: str) -> str:
    return "".join(character for character in text.casefold() if character.isalnum())


@dataclass(frozen=True)
class ColumnPlan:
    """How source columns become the SPEC §2 columns; decided once from the header."""

    renames: dict[str, str]
    kept: tuple[str, ...]  # canonical names kept from the source (schema columns and extras)
    extras: tuple[str, ...]
    absent: tuple[str, ...]
    schema_columns: tuple[str, ...]
    keep_extras: bool


def column_plan(
    source_names: list[str],
    schema_columns: list[str],
    required: list[str],
    extract_format: ExtractFormat,
    pii_columns: tuple[str, ...],
) -> ColumnPlan:
    """Map names, drop PII, and fail the file for reserved, doubled or missing columns."""
    mapping = extract_format.columns
    targets = [mapping.get(name, name) for name in source_names]
    reserved = sorted(RESERVED_COLUMNS.intersection(targets))
    if reserved:
        raise ExtractError(f"column name(s) {reserved} are reserved by the loader")
    duplicated = sorted({c for c in targets if targets.count(c) > 1})
    if duplicated:
        raise ExtractError(f"column(s) {duplicated} appear twice after the column mapping")
    missing = [c for c in required if c not in targets]
    if missing:
        shown = json.dumps(mapping) if mapping else "none (canonical names expected)"
        raise ExtractError(
            f"missing required column(s) {missing}; found {source_names}"
            f"; column mapping in use: {shown}{_delimiter_hint(source_names, extract_format)}"
        )
    kept = [c for c in targets if c in schema_columns or not is_pii(c, pii_columns)]
    return ColumnPlan(
        renames=dict(zip(source_names, targets, strict=True)),
        kept=tuple(kept),
        extras=tuple(c for c in kept if c not in schema_columns),
        absent=tuple(c for c in schema_columns if c not in kept),
        schema_columns=tuple(schema_columns),
        keep_extras=extract_format.extra_columns == "keep",
    )


def canonical_batch(plan: ColumnPlan, batch: TextBatch) -> pl.DataFrame:
    """`_line`, the schema columns (absent optional ones as nulls), extras as JSON text."""
    frame = batch.frame.rename(plan.renames).select(plan.kept)
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in plan.absent)
    extra_attributes = (
        pl.struct(list(plan.extras)).struct.json_encode()
        if plan.extras and plan.keep_extras
        else pl.lit(None, dtype=pl.String)
    )
    return frame.select(
        batch.lines.alias(LINE), *plan.schema_columns, extra_attributes.alias(EXTRA_ATTRIBUTES)
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


def file_unchanged(path: Path, before: os.stat_result) -> bool:
    after = path.stat()
    return (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

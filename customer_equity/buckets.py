"""Customer-hash buckets in storage: the inputs, partials and output parts of one run.

After ingest, the point-in-time inputs of D are written once from the
warehouse as Parquet, split into buckets by a hash of customer_id, so every
bucket holds all rows of its customers and nothing else. Each bucket step
reads its bucket's files only; what a step hands to the next (measured
customers, partials, group facts, output parts) is written beside them.
Nothing here is a business rule: the steps are `transforms.outputs`.

Storage is a local folder by default, or any fsspec URL (`s3://…`, `gs://…`,
a shared file system) that every worker of a cluster reads and writes; the
warehouse is only ever opened by the process that runs the flow. Layout under
the run's folder (`BucketLayout.root`):

    inputs/<kind>/bucket=<b>/*.parquet   point-in-time rows of the bucket's customers
    measured/bucket=<b>.parquet          customers' own figures (map step 1)
    partials/<name>/bucket=<b>.parquet   per-bucket partials of whole-base figures
    facts/<name>.parquet, facts/models.json   reduced whole-base figures
    candidates, scores/<rule set>, cutoffs/<rule set>.parquet, equity   (tiers, equity)
    tables/<table>/bucket=<b>.parquet    validated output parts, published together
"""

from __future__ import annotations

import io
import json
import math
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import fsspec
import polars as pl
from fsspec.implementations.local import LocalFileSystem

from customer_equity import warehouse
from customer_equity.schemas.inputs import input_schema
from customer_equity.schemas.outputs import conform
from customer_equity.settings import EXTRACT_KINDS, ExtractKind, Settings

DATE_COLUMN: dict[ExtractKind, str] = {
    "transactions": "transaction_date",
    "customers": "created_date",
    "wallets": "period_start",
    "costs": "cost_date",
    "holdings": "balance_date",
}


@dataclass(frozen=True)
class BucketLayout:
    """Where one run's bucket files live and how many buckets there are (small, passable)."""

    root: str  # a local folder or an fsspec URL
    buckets: int
    transactions: int
    storage_options: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.root.rstrip("/").rsplit("/", 1)[-1]

    def filesystem(self) -> fsspec.AbstractFileSystem:
        return _filesystem(self.root, self.storage_options)

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def bucket_file(self, folder: str, bucket: int) -> str:
        return self.path(folder, f"bucket={bucket}.parquet")

    def to_record(self) -> dict[str, object]:
        return asdict(self)


def _filesystem(url: str, options: dict[str, str]) -> fsspec.AbstractFileSystem:
    filesystem, _ = fsspec.core.url_to_fs(url, **options)
    return filesystem


def runs_folder(settings: Settings) -> str:
    """Where runs keep their bucket files: `[engine] bucket_storage`, or beside the warehouse."""
    configured = settings.engine.bucket_storage
    if configured is not None:
        return configured
    warehouse_file = settings.paths.warehouse
    return str(warehouse_file.with_name(warehouse_file.name + ".buckets"))


def bucket_count(transactions: int, settings: Settings) -> int:
    """`[engine] buckets`, or enough buckets that one bucket's rows fit the memory budget."""
    if settings.engine.buckets:
        return settings.engine.buckets
    return max(1, math.ceil(transactions / settings.engine.transactions_per_bucket))


def snapshot(settings: Settings, as_of: date, run_id: str) -> BucketLayout:
    """Write the inputs of D, split into customer-hash buckets, into a fresh run folder.

    DuckDB does the split with its own hash of customer_id (streaming, within
    its memory limit); which bucket a customer lands in changes no output. For
    remote storage the files are written locally first and then uploaded.
    """
    options = dict(settings.engine.storage_options)
    root = "/".join([runs_folder(settings).rstrip("/"), run_id])
    filesystem = _filesystem(root, options)
    if filesystem.exists(root):  # a crashed attempt of this same run
        filesystem.rm(root, recursive=True)
    local = isinstance(filesystem, LocalFileSystem)
    with tempfile.TemporaryDirectory(prefix="customer-equity-snapshot-") as scratch:
        written = Path(root if local else scratch) / "inputs"
        written.mkdir(parents=True)
        con = warehouse.connect(
            settings.paths.warehouse, memory_limit=settings.engine.duckdb_memory_limit
        )
        try:
            ((transactions,),) = con.execute(
                "select count(*) from transactions where transaction_date <= $as_of",
                {"as_of": as_of},
            ).fetchall()
            buckets = bucket_count(transactions, settings)
            for kind in EXTRACT_KINDS:
                columns = ", ".join(warehouse.quote(c) for c in input_schema(kind).columns)
                day = warehouse.quote(DATE_COLUMN[kind])
                con.sql(
                    f"select {columns}, hash(customer_id) % $buckets as bucket "
                    f"from {warehouse.quote(kind)} where {day} is null or {day} <= $as_of",
                    params={"buckets": buckets, "as_of": as_of},
                ).write_parquet(str(written / kind), partition_by=["bucket"])
        finally:
            con.close()
        if not local:
            filesystem.put(str(written), root + "/", recursive=True)
    return BucketLayout(root, buckets, transactions, options)


def _input_schema(kind: ExtractKind) -> dict[str, type[pl.DataType]]:
    return {name: column.dtype.type for name, column in input_schema(kind).columns.items()}


def _read(filesystem: fsspec.AbstractFileSystem, path: str) -> pl.DataFrame:
    with filesystem.open(path, "rb") as handle:
        return pl.read_parquet(handle)


def bucket_inputs(layout: BucketLayout, bucket: int) -> dict[ExtractKind, pl.LazyFrame]:
    """The input tables of one bucket (empty with the right columns where it has none)."""
    filesystem = layout.filesystem()
    frames: dict[ExtractKind, pl.LazyFrame] = {}
    for kind in EXTRACT_KINDS:
        schema = _input_schema(kind)
        pattern = layout.path("inputs", kind, f"bucket={bucket}", "*.parquet")
        files = sorted(filesystem.glob(pattern))
        parts = [_read(filesystem, file).select(schema.keys()).cast(schema) for file in files]
        frames[kind] = (pl.concat(parts) if parts else pl.DataFrame(schema=schema)).lazy()
    return frames


def write_frame(frame: pl.LazyFrame | pl.DataFrame, layout: BucketLayout, path: str) -> None:
    """Write one step's frame for later steps; a reader never sees half a file."""
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    filesystem = layout.filesystem()
    if isinstance(filesystem, LocalFileSystem):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".writing")
        collected.write_parquet(partial, compression="lz4", statistics=False)
        partial.rename(target)
        return
    buffer = io.BytesIO()  # an object store makes an object visible whole, on close
    collected.write_parquet(buffer, compression="lz4", statistics=False)
    filesystem.pipe_file(path, buffer.getvalue())


def read_frame(layout: BucketLayout, path: str) -> pl.DataFrame:
    return _read(layout.filesystem(), path)


def read_buckets(layout: BucketLayout, folder: str) -> pl.LazyFrame:
    """Every bucket's file of a step, concatenated (partials: small by design)."""
    filesystem = layout.filesystem()
    files = sorted(filesystem.glob(layout.path(folder, "bucket=*.parquet")))
    return pl.concat([_read(filesystem, file) for file in files], how="vertical_relaxed").lazy()


def write_output_part(
    frame: pl.LazyFrame | pl.DataFrame, layout: BucketLayout, table: str, bucket: int
) -> int:
    """Validate one bucket's rows of an output table against its schema and keep them; rows."""
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    write_frame(conform(table, collected), layout, layout.bucket_file(f"tables/{table}", bucket))
    return collected.height


def output_tables(layout: BucketLayout) -> list[str]:
    """The output tables the run has parts of."""
    filesystem = layout.filesystem()
    tables = layout.path("tables")
    if not filesystem.exists(tables):
        return []
    return sorted(Path(entry).name for entry in filesystem.ls(tables, detail=False))


def fetch_parts(layout: BucketLayout, table: str, into: Path) -> list[Path]:
    """Move (local storage) or download (remote) a table's parts into `into`, in bucket order.

    Each publication gets new file names, so a reader that listed the previous
    partition finds nothing (and retries) instead of mixing two versions.
    """
    filesystem = layout.filesystem()
    parts = sorted(
        filesystem.glob(layout.path("tables", table, "bucket=*.parquet")),
        key=lambda part: int(Path(part).stem.removeprefix("bucket=")),
    )
    fetched = []
    for number, part in enumerate(parts):
        target = into / f"part-{number:05d}-{uuid.uuid4().hex}.parquet"
        if isinstance(filesystem, LocalFileSystem):
            Path(part).rename(target)
        else:
            filesystem.get_file(part, str(target))
        fetched.append(target)
    return fetched


def write_models(layout: BucketLayout, record: dict[str, object]) -> None:
    filesystem = layout.filesystem()
    filesystem.makedirs(layout.path("facts"), exist_ok=True)
    filesystem.pipe_file(layout.path("facts", "models.json"), json.dumps(record).encode("utf-8"))


def read_models(layout: BucketLayout) -> dict[str, object]:
    return json.loads(layout.filesystem().cat_file(layout.path("facts", "models.json")))


def remove_run(layout: BucketLayout) -> None:
    """The run's bucket files, once everything is published."""
    layout.filesystem().rm(layout.root, recursive=True)


def remove_stale_runs(settings: Settings) -> None:
    """Bucket folders that killed runs left behind (called under the warehouse lock)."""
    folder = runs_folder(settings)
    filesystem = _filesystem(folder, dict(settings.engine.storage_options))
    if filesystem.exists(folder):
        filesystem.rm(folder, recursive=True)

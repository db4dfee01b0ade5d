"""The Parquet lake: one folder per table, Hive partitions `as_of_date=YYYY-MM-DD` (SPEC §9).

A partition is written into a staging folder outside every table's root (on
the same file system), then swapped in with one atomic rename, so a reader
sees the old partition or the new one, never a half-written one, and a killed
run leaves at most a stray staging folder that no reader globs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import polars as pl

from customer_equity.faults import checkpoint
from customer_equity.warehouse import exclusive_lock

PARTITION_KEY = "as_of_date"
STAGING_DIR = ".staging"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
TABLE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def partition_dir(lake: Path, table: str, as_of: date) -> Path:
    # Table names come from code, but a path must never be able to leave the lake.
    if not TABLE_NAME.fullmatch(table):
        raise ValueError(f"not a lake table name: {table!r}")
    return lake / table / f"{PARTITION_KEY}={as_of.isoformat()}"


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS):  # file system without exchange support
        return False
    raise OSError(error, os.strerror(error), str(first))


def write_partition(frame: pl.DataFrame, lake: Path, table: str, as_of: date) -> Path:
    """Replace the `as_of` partition of `table` with `frame`; returns the partition folder.

    The partition key lives in the folder name only (readers derive it with
    hive partitioning); money columns are DOUBLE, dates DATE.
    """
    staging = _new_staging(lake, table, as_of)
    # A new file name per write: a reader that listed the old partition then finds
    # nothing (and retries) instead of mixing the old footer with new pages.
    frame.drop(PARTITION_KEY, strict=False).write_parquet(
        staging / f"part-{uuid.uuid4().hex}.parquet", compression="zstd", statistics=True
    )
    return _swap_in(staging, lake, table, as_of)


def publish_partition(lake: Path, table: str, as_of: date, fill: Callable[[Path], object]) -> Path:
    """Replace the `as_of` partition of `table` with the Parquet files `fill` puts in a folder.

    `fill` writes or moves the files (e.g. the per-bucket parts of one table)
    into the staging folder it is given; the partition then holds them all
    or, until the swap, none of them.
    """
    staging = _new_staging(lake, table, as_of)
    fill(staging)
    return _swap_in(staging, lake, table, as_of)


def _new_staging(lake: Path, table: str, as_of: date) -> Path:
    partition_dir(lake, table, as_of)  # the table name check
    staging = lake / STAGING_DIR / f"{table}-{as_of.isoformat()}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    return staging


def _swap_in(staging: Path, lake: Path, table: str, as_of: date) -> Path:
    """Make the staged folder the partition in one atomic step (see the module doc)."""
    final = partition_dir(lake, table, as_of)
    _fsync_dir(staging)
    checkpoint("lake-before-swap", table)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and _exchange(staging, final):
        shutil.rmtree(staging)  # now holds the previous partition
    elif final.exists():
        trash = lake / STAGING_DIR / f"trash-{uuid.uuid4().hex}"
        final.rename(trash)
        staging.rename(final)
        shutil.rmtree(trash)
    else:
        staging.rename(final)
    _fsync_dir(final.parent)
    checkpoint("lake-after-swap", table)
    return final


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


LOCK_NAME = ".lake.lock"


@contextmanager
def lake_lock(lake: Path, *, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the lake for one run: two warehouses (two configs) may publish into one lake.

    Without it their partition swaps interleave and one run's `clear_staging`
    removes the other's staged files. The lock file sits at the lake root, in
    no table's folder, so no reader globs it.
    """
    with exclusive_lock(lake / LOCK_NAME, f"another run is publishing into {lake}", wait_seconds):
        yield


def clear_staging(lake: Path) -> None:
    """Remove what a killed run left in the staging area (never visible to readers)."""
    staging = lake / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging)


def partition_exists(lake: Path, table: str, as_of: date) -> bool:
    return any(partition_dir(lake, table, as_of).glob("*.parquet"))


def read_partition(
    lake: Path, table: str, as_of: date, columns: list[str] | None = None
) -> pl.DataFrame:
    """One published partition (all columns, or `columns`), without the partition key."""
    return pl.read_parquet(partition_dir(lake, table, as_of) / "*.parquet", columns=columns)


def table_names(lake: Path) -> list[str]:
    """The tables of the lake: folders named like a table holding at least one partition.

    Staging (`.staging`), reports (`_reports`) and the catalog file are not tables.
    """
    if not lake.is_dir():
        return []
    return sorted(
        folder.name
        for folder in lake.iterdir()
        if folder.is_dir()
        and TABLE_NAME.fullmatch(folder.name)
        and any(folder.glob(f"{PARTITION_KEY}=*/*.parquet"))
    )


def published_dates(lake: Path, table: str) -> list[date]:
    """The as-of dates of `table` that have a partition, oldest first."""
    prefix = f"{PARTITION_KEY}="
    return sorted(
        date.fromisoformat(folder.name.removeprefix(prefix))
        for folder in (lake / table).glob(f"{prefix}*")
        if any(folder.glob("*.parquet"))
    )

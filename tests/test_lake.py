"""The Parquet lake: Hive partitions, atomic replacement, readable by DuckDB and Polars."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from customer_equity.lake import STAGING_DIR, partition_dir, write_partition
from tests.conftest import read_table

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


def _frame(scale: float, rows: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": [f"C{i}" for i in range(rows)], "revenue": [scale * i for i in range(rows)]}
    )


def test_partitions_read_back_by_duckdb_and_polars(tmp_path: Path) -> None:
    write_partition(_frame(1.0), tmp_path, "t", D1)
    write_partition(_frame(2.0), tmp_path, "t", D2)
    by_polars = read_table(tmp_path, "t").sort("as_of_date", "customer_id")
    assert by_polars["as_of_date"].to_list() == [D1] * 3 + [D2] * 3
    by_duckdb = duckdb.sql(
        "select as_of_date, sum(revenue) from read_parquet($glob, hive_partitioning = true) "
        "group by 1 order by 1",
        params={"glob": str(tmp_path / "t" / "*" / "*.parquet")},
    ).fetchall()
    assert by_duckdb == [(D1, 3.0), (D2, 6.0)]


def test_rewrite_replaces_only_its_partition(tmp_path: Path) -> None:
    write_partition(_frame(1.0), tmp_path, "t", D1)
    write_partition(_frame(1.0), tmp_path, "t", D2)
    write_partition(_frame(10.0, rows=2), tmp_path, "t", D1)
    table = read_table(tmp_path, "t")
    assert table.filter(pl.col("as_of_date") == D1)["revenue"].to_list() == [0.0, 10.0]
    assert table.filter(pl.col("as_of_date") == D2).height == 3
    assert list((tmp_path / STAGING_DIR).iterdir()) == []
    (data_file,) = partition_dir(tmp_path, "t", D1).iterdir()
    assert data_file.name.startswith("part-") and data_file.suffix == ".parquet"


def test_a_reader_during_rewrites_sees_old_or_new_never_partial(tmp_path: Path) -> None:
    """A read that races a swap may find the listed file gone (retry); it never mixes data."""
    old, new = _frame(1.0, rows=2000), _frame(2.0, rows=2000)
    write_partition(old, tmp_path, "t", D1)
    expected = {old["revenue"].sum(), new["revenue"].sum()}
    seen: list[float] = []
    unexpected: list[Exception] = []
    stop = threading.Event()

    def read_repeatedly() -> None:
        while not stop.is_set():
            try:
                seen.append(read_table(tmp_path, "t")["revenue"].sum())
            except (FileNotFoundError, pl.exceptions.ComputeError) as exc:
                # a listed file swapped away: the reader retries; mixed data would be a bug
                vanished = ("no such file", "expanded paths were empty")
                if not any(text in str(exc).lower() for text in vanished):
                    unexpected.append(exc)

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    for i in range(30):
        write_partition(new if i % 2 == 0 else old, tmp_path, "t", D1)
    stop.set()
    reader.join()
    assert seen, "the reader never completed a read"
    assert set(seen) <= expected
    assert unexpected == []

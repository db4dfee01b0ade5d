"""Issue 6.8: hostile names never reach SQL as code, paths stay inside, PII never lands.

File names, column mappings, currencies and date formats are bound as
parameters or handled in Polars; table and column identifiers come only
from the fixed schemas. Symlinks cannot pull files from outside the inbox
into the warehouse, lake table names cannot leave the lake, and PII columns
of the customers extract are dropped on read.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from customer_equity import warehouse
from customer_equity.lake import write_partition
from tests.reliability.support import (
    TX_HEADER,
    Baseline,
    csv_text,
    ingest,
    new_project,
    put,
    quarantine_of,
    query,
)

HOSTILE = "x'; drop table transactions; --"
HOSTILE_CURRENCY = "';-"  # three characters, as the setting requires
EVERY_TABLE = ("transactions", "customers", "wallets", "costs", "manifest", "quarantine")


def _tables_intact(root: Path) -> None:
    names = {name for (name,) in query(root, "select table_name from information_schema.tables")}
    assert set(EVERY_TABLE) <= names


def _toml(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def test_a_hostile_file_name_is_data_not_sql(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    name = f'{HOSTILE} "; drop table manifest; --.csv'
    put(
        root,
        "transactions",
        name,
        csv_text(TX_HEADER, "T1,C1,2025-03-01,5,1,x,USD", "T2,C1,bad,5,1,x,USD"),
    )
    (outcome,) = ingest(root).values()
    assert (outcome.file_name, outcome.status, outcome.rows_loaded) == (name, "loaded", 1)
    _tables_intact(root)
    assert query(root, "select _file from transactions") == [(name,)]
    assert quarantine_of(root) == [(name, 3, "unparseable_transaction_date")]
    assert query(root, "select file_name from manifest") == [(name,)]


def test_hostile_mapping_currency_and_date_format_are_data_not_sql(tmp_path: Path) -> None:
    source_amount = "amount'); drop table manifest; --"
    hostile_target = 'y"; drop table customers; --'
    hostile_format = "%d.%m.%Y' ; drop table costs; --"
    config = "\n".join(
        [
            "[quality]",
            f"base_currency = {_toml(HOSTILE_CURRENCY)}",
            "[extracts.transactions]",
            'extra_columns = "keep"',
            f"date_format = {_toml(hostile_format)}",
            "[extracts.transactions.columns]",
            f'{_toml(source_amount)} = "amount"',
            f"promo = {_toml(hostile_target)}",
            "",
        ]
    )
    root = new_project(tmp_path, config)
    header = f'transaction_id,customer_id,transaction_date,"{source_amount}",currency,promo'
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(header, "T1,C1,2025-03-01,5,';-,spring", "T2,C1,2025-03-01,5,USD,"),
    )
    (outcome,) = ingest(root).values()
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 1, 1)
    _tables_intact(root)
    assert query(root, "select amount, currency, extra_attributes from transactions") == [
        (5.0, "';-", json.dumps({hostile_target: "spring"}, separators=(",", ":")))
    ]
    assert quarantine_of(root) == [("t.csv", 3, "non_base_currency")]


def test_a_symlink_cannot_pull_a_file_from_outside_the_inbox(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project")
    outside = tmp_path / "secret.csv"
    outside.write_text(csv_text(TX_HEADER, "S1,C1,2025-03-01,5,1,x,USD"), encoding="utf-8")
    folder = root / "inbox" / "transactions"
    folder.mkdir(parents=True)
    (folder / "a-escape.csv").symlink_to(outside)
    inside = put(
        root, "transactions", "real.csv", csv_text(TX_HEADER, "T1,C1,2025-03-01,5,1,x,USD")
    )
    (folder / "b-alias.csv").symlink_to(inside)  # a link within the inbox is fine
    outcomes = ingest(root)
    assert outcomes["a-escape.csv"].status == "failed"
    assert "outside the inbox" in (outcomes["a-escape.csv"].error or "")
    assert outcomes["b-alias.csv"].status == "loaded"
    assert outcomes["real.csv"].status == "skipped"  # same content as the alias, loaded once
    assert query(root, "select transaction_id from transactions") == [("T1",)]


@pytest.mark.parametrize("table", ["../escape", "customer_metrics/../../x", "/tmp/abs", ".staging"])
def test_a_lake_table_name_cannot_leave_the_lake(tmp_path: Path, table: str) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(ValueError, match="not a lake table name"):
        write_partition(pl.DataFrame({"a": [1]}), lake, table, date(2025, 1, 1))
    assert not any(tmp_path.rglob("*.parquet"))


PII_HEADER = "customer_id,segment,name,E-Mail,customer_name,phone_no,Mobile,姓名,手机号码,身份证号"
PII_ANN = (
    "Ann Lee,ann@example.com,Ann L.,+1-555-0101,+1-555-0102,张三,13800000001,110101199001011234"
)
PII_BO = "Bo Li,bo@example.com,Bo L.,+1-555-0201,+1-555-0202,李四,13800000002,110101199001015678"
PII_VALUES = ("Ann L", "Bo L", "example.com", "+1-555", "张三", "李四", "138000000", "1101011990")


def test_pii_columns_never_reach_the_warehouse_even_when_extras_are_kept(tmp_path: Path) -> None:
    """Loaded rows, quarantined records and file-level error messages: no PII anywhere."""
    config = (
        '[extracts.customers]\nextra_columns = "keep"\n'
        "[quality]\npii_columns = "
        '["name", "email", "phone", "mobile", "姓名", "手机", "身份证"]\n'
    )
    root = new_project(tmp_path, config)
    put(root, "customers", "loads.csv", csv_text(PII_HEADER, f"C1,零售,{PII_ANN}"))
    put(root, "customers", "fails.csv", csv_text(PII_HEADER, f"C2,批发,{PII_BO},one too many"))
    put(
        root,
        "customers",
        "quarantined.csv",
        csv_text(f"{PII_HEADER},status", f"C2,批发,{PII_BO},nope"),
    )
    outcomes = ingest(root)
    assert outcomes["loads.csv"].rows_loaded == 1
    assert outcomes["fails.csv"].status == "failed"
    assert outcomes["quarantined.csv"].rows_quarantined == 1
    dump = _warehouse_dump(root / "warehouse.duckdb")
    assert [value for value in PII_VALUES if value in dump] == []
    assert query(root, "select customer_id, segment from customers") == [("C1", "零售")]


def _warehouse_dump(path: Path) -> str:
    """Every value and column name of every warehouse table, as text."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [name for (name,) in con.sql("show tables").fetchall()]
        parts = []
        for table in tables:
            relation = con.sql(f"select * from {warehouse.quote(table)}")
            parts.append(f"{relation.columns} {relation.fetchall()}")
    return "\n".join(parts)


@pytest.mark.slow
def test_pii_of_the_generated_customers_is_in_neither_lake_nor_warehouse(
    baseline: Baseline,
) -> None:
    """The real CLI run of the crash baseline: customers.csv carries name, email and phone."""
    customers = pl.read_csv(
        baseline.root / "inbox" / "customers" / "customers.csv", infer_schema=False
    )
    pii = {value for column in ("name", "email", "phone") for value in customers[column]}
    assert len(pii) > 100
    lake_files = list((baseline.root / "lake").rglob("*.parquet"))
    assert len(lake_files) >= 6
    for path in lake_files:
        raw = path.read_bytes()
        decoded = str(pq.read_table(path).to_pylist())
        for value in ("@example.com", "+1-555-"):
            assert value.encode() not in raw, path
        assert not [value for value in pii if value in decoded], path
    dump = _warehouse_dump(baseline.root / "warehouse.duckdb")
    assert not [value for value in pii if value in dump]
    warehouse_bytes = (baseline.root / "warehouse.duckdb").read_bytes()
    assert b"@example.com" not in warehouse_bytes and b"+1-555-" not in warehouse_bytes

"""Ingestion into a real DuckDB file: load once, corrections audited, bad rows quarantined."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from customer_equity.ingest import FileOutcome, ingest_inbox
from tests.conftest import settings_of, write_config, write_extract


def _tx(tid: str, customer: str, day: str, amount: str, cost: str = "") -> dict[str, str]:
    return {
        "transaction_id": tid,
        "customer_id": customer,
        "transaction_date": day,
        "amount": amount,
        "cost": cost,
    }


def _query(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def _by_file(outcomes: list[FileOutcome]) -> dict[str, FileOutcome]:
    return {o.file_name: o for o in outcomes}


def test_corrections_duplicates_and_accounting(project: Path) -> None:
    write_extract(
        project,
        "transactions",
        "t1.csv",
        [
            _tx("T1", "C1", "2025-03-01", "100", "60"),
            _tx("T2", "C1", "20250302", "50"),  # compact date
            _tx("T3", "C2", "2025-03-03", "10", "5"),
            _tx("T3", "C2", "2025-03-03", "10", "5"),  # same row twice in one file
            _tx("T4", "C2", "2025-03-04", "30", "10"),
            _tx("T4", "C2", "2025-03-04", "35", "10"),  # corrected within the file
        ],
    )
    write_extract(
        project,
        "transactions",
        "t2.csv",
        [
            _tx("T1", "C1", "2025-03-01", "110", "60"),  # correction of t1's T1
            _tx("T2", "C1", "2025-03-02", "50"),  # same values as stored: duplicate
            _tx("T5", "C1", "2025-04-01", "-20", "-12"),  # a return is a normal row
        ],
    )
    outcomes = _by_file(ingest_inbox(settings_of(project), "run-1"))
    first, second = outcomes["t1.csv"], outcomes["t2.csv"]
    assert (first.rows_read, first.rows_loaded, first.rows_replaced, first.rows_duplicate) == (
        6,
        4,
        1,
        1,
    )
    assert (second.rows_read, second.rows_loaded, second.rows_replaced) == (3, 1, 1)
    assert second.rows_duplicate == 1
    assert all(o.accounted() and o.status == "loaded" for o in outcomes.values())

    current = dict(_query(project, "select transaction_id, amount from transactions"))
    assert current == {"T1": 110.0, "T2": 50.0, "T3": 10.0, "T4": 35.0, "T5": -20.0}
    audited = _query(
        project,
        "select transaction_id, amount, _file, _replaced_by_run from transactions_replaced "
        "order by 1",
    )
    assert audited == [("T1", 100.0, "t1.csv", "run-1"), ("T4", 30.0, "t1.csv", "run-1")]
    manifest = _query(project, "select file_name, rows_read, rows_loaded from manifest order by 1")
    assert manifest == [("t1.csv", 6, 4), ("t2.csv", 3, 1)]


def test_second_run_loads_nothing_and_a_renamed_copy_is_skipped(project: Path) -> None:
    path = write_extract(project, "transactions", "t1.csv", [_tx("T1", "C1", "2025-03-01", "1")])
    settings = settings_of(project)
    ingest_inbox(settings, "run-1")
    shutil.copy(path, path.with_name("t1-resent.csv"))
    again = _by_file(ingest_inbox(settings, "run-2"))
    assert {o.status for o in again.values()} == {"skipped"}
    assert _query(project, "select count(*) from transactions") == [(1,)]
    statuses = _query(
        project, "select run_id, status, count(*) from manifest group by all order by 1"
    )
    assert statuses == [("run-1", "loaded", 1), ("run-2", "skipped", 2)]


def test_bad_rows_are_quarantined_with_reason_file_and_line(project: Path) -> None:
    write_config(project, '[quality]\nbase_currency = "CNY"\nmax_abs_amount = 1000\n')
    rows = [
        _tx("T1", "C1", "2025-03-01", "100") | {"currency": "CNY"},
        _tx("", "C1", "2025-03-01", "100") | {"currency": ""},
        _tx("T3", "C1", "not a date", "100") | {"currency": ""},
        _tx("T4", "C1", "2025-03-01", "12,5") | {"currency": ""},
        _tx("T5", "C1", "2025-03-01", "100") | {"currency": "USD"},
        _tx("T6", "C1", "2025-03-01", "5000") | {"currency": ""},
        _tx("T7", "C1", "2099-01-01", "100") | {"currency": ""},
        _tx("T8", "C1", "2025-03-01", "", "40") | {"currency": ""},
    ]
    write_extract(project, "transactions", "t.csv", rows)
    (outcome,) = ingest_inbox(settings_of(project), "run-1")
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (8, 1, 7)
    reasons = dict(_query(project, "select line, reason from quarantine order by line"))
    assert reasons == {
        3: "missing_transaction_id",
        4: "unparseable_transaction_date",
        5: "unparseable_amount",
        6: "non_base_currency",
        7: "amount_out_of_bounds",
        8: "transaction_date_in_future",
        9: "missing_amount",
    }
    record = _query(project, "select record from quarantine where line = 5")[0][0]
    assert '"amount":"12,5"' in record


def test_column_mapping_and_pii_never_stored(project: Path) -> None:
    write_config(
        project,
        '[extracts.customers.columns]\nkundennummer = "customer_id"\nsince = "created_date"\n',
    )
    write_extract(
        project,
        "customers",
        "c.csv",
        [
            {"kundennummer": "C1", "since": "20240105", "name": "Ann", "email": "a@example.com"},
            {"kundennummer": "C2", "since": "2024-02-01", "name": "Bo", "email": "b@example.com"},
        ],
    )
    (outcome,) = ingest_inbox(settings_of(project), "run-1")
    assert outcome.rows_loaded == 2
    assert _query(project, "select customer_id, created_date from customers order by 1") == [
        ("C1", date(2024, 1, 5)),
        ("C2", date(2024, 2, 1)),
    ]
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        dump = str(con.sql("select * from customers").fetchall())
        dump += str(con.sql("select * from quarantine").fetchall())
    assert "Ann" not in dump and "example.com" not in dump


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file"),
        ("transaction_id,customer_id,transaction_date,amount\n", "header only"),
        ("transaction_id;customer_id;transaction_date;amount\nT1;C1;2025-01-01;5\n", "missing"),
        ("id,customer_id,transaction_date\nT1,C1,2025-01-01\n", "['transaction_id', 'amount']"),
    ],
)
def test_file_level_problems_fail_the_file_only(project: Path, content: str, expected: str) -> None:
    folder = project / "inbox" / "transactions"
    folder.mkdir(parents=True)
    (folder / "a-bad.csv").write_text(content, encoding="utf-8")
    write_extract(project, "transactions", "b-good.csv", [_tx("T1", "C1", "2025-03-01", "1")])
    outcomes = _by_file(ingest_inbox(settings_of(project), "run-1"))
    bad = outcomes["a-bad.csv"]
    assert bad.status == "failed"
    assert expected in (bad.error or "")
    assert outcomes["b-good.csv"].status == "loaded"
    assert _query(project, "select count(*) from transactions") == [(1,)]
    assert (folder / "a-bad.csv").exists()


def test_missing_column_message_names_the_mapping(project: Path) -> None:
    write_config(project, '[extracts.transactions.columns]\norder_no = "transaction_id"\n')
    write_extract(project, "transactions", "t.csv", [{"order": "1", "customer_id": "C"}])
    (outcome,) = ingest_inbox(settings_of(project), "run-1")
    assert outcome.status == "failed"
    assert '"order_no": "transaction_id"' in (outcome.error or "")
    assert "transaction_date" in (outcome.error or "")


def test_batches_and_chunk_boundaries_change_nothing(tmp_path: Path) -> None:
    """A file read in many small batches loads exactly what one batch loads.

    40,000 rows with quoted fields (commas and doubled quotes inside) cross
    many 1 MiB chunk boundaries when the budget is 32 MiB (512 KiB batches); every 997th row has
    a bad amount, so its line (row number + 1) must survive the batching.
    """
    header = "transaction_id,customer_id,transaction_date,amount,category"
    rows = [
        f'T{i},C{i % 313},2025-03-01,{"x" if i % 997 == 0 else i % 50},"cat, ""{i % 7}"""'
        for i in range(40_000)
    ]
    content = "\n".join([header, *rows]) + "\n"
    tables = {}
    for budget in ("32MiB", "4GiB"):
        root = tmp_path / budget
        root.mkdir()
        write_config(root, f'[engine]\nmemory_limit = "{budget}"\n')
        folder = root / "inbox" / "transactions"
        folder.mkdir(parents=True)
        (folder / "t.csv").write_text(content, encoding="utf-8")
        (outcome,) = ingest_inbox(settings_of(root), "run-1")
        assert (outcome.rows_read, outcome.rows_quarantined) == (40_000, 41)
        tables[budget] = (
            _query(root, "select transaction_id, _line, category, amount from transactions"),
            _query(root, "select line, reason from quarantine order by line"),
        )
    assert sorted(tables["32MiB"][0]) == sorted(tables["4GiB"][0])
    assert tables["32MiB"][1] == tables["4GiB"][1]
    assert tables["32MiB"][1][:2] == [(2, "unparseable_amount"), (999, "unparseable_amount")]
    assert ("T5", 7, 'cat, "5"', 5.0) in tables["32MiB"][0]

"""Issue 6.3: UTF-8 (with or without BOM), GB18030 and GBK extracts load identically.

A file in another encoding than configured is a file-level error, never
mojibake in the warehouse. GB18030 can decode almost any byte string, so
UTF-8 text declared as GB18030 is caught by recognising it as UTF-8.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.reliability.support import csv_text, ingest, new_project, put, query

CUSTOMERS = csv_text(
    "客户编号,created_date,segment,region,risk_profile,name",
    "C1,2024-01-05,零售,华东,稳健,张三",
    "C2,2024-02-01,批发,华南,进取,李四",
    'C3,2024-03-01,"零售,线上",西北,保守,王五',
)
TRANSACTIONS = csv_text(
    "transaction_id,客户编号,transaction_date,amount,category,channel",
    "T1,C1,2025-03-01,100,办公用品,门店",
    "T2,C2,2025-03-02,-20,家具,电商",
    "T3,C3,2025-03-03,abc,软件,电商",  # quarantined: the record must keep the Chinese text
)
MAPPING = (
    '[extracts.{kind}]\nencoding = "{encoding}"\n'
    '[extracts.{kind}.columns]\n"客户编号" = "customer_id"\n'
)
ENCODINGS = {"utf-8": "utf-8", "utf-8 with BOM": "utf-8-sig", "gb18030": "gb18030", "gbk": "gbk"}
BUSINESS_COLUMNS = {
    "customers": "customer_id, created_date, segment, region, risk_profile, _line",
    "transactions": (
        "transaction_id, customer_id, transaction_date, amount, category, channel, _line"
    ),
}


def _load(root: Path, setting: str, codec: str) -> dict[str, list[tuple]]:
    config = "".join(MAPPING.format(kind=k, encoding=setting) for k in BUSINESS_COLUMNS)
    new_project(root, config)
    put(root, "customers", "客户.csv", CUSTOMERS, encoding=codec)
    put(root, "transactions", "交易.csv", TRANSACTIONS, encoding=codec)
    outcomes = ingest(root)
    assert {o.status for o in outcomes.values()} == {"loaded"}
    tables = {
        kind: query(root, f"select {columns} from {kind} order by 1")
        for kind, columns in BUSINESS_COLUMNS.items()
    }
    tables["quarantine"] = query(root, "select file_name, line, reason, record from quarantine")
    return tables


def test_every_encoding_loads_the_same_rows(tmp_path: Path) -> None:
    loaded = {
        label: _load(tmp_path / codec, "utf-8" if codec.startswith("utf-8") else codec, codec)
        for label, codec in ENCODINGS.items()
    }
    reference = loaded.pop("utf-8")
    for label, tables in loaded.items():
        assert tables == reference, label
    segments = [row[2] for row in reference["customers"]]
    assert segments == ["零售", "批发", "零售,线上"]
    assert [row[4] for row in reference["transactions"]] == ["办公用品", "家具"]
    ((file_name, line, reason, record),) = reference["quarantine"]
    assert (file_name, line, reason) == ("交易.csv", 4, "unparseable_amount")
    assert '"category":"软件"' in record and '"channel":"电商"' in record


CHINESE_CUSTOMERS = csv_text("customer_id,segment", "C1,零售", "C2,批发")


@pytest.mark.parametrize(
    ("content", "configured", "error"),
    [
        (
            CHINESE_CUSTOMERS.encode("gb18030"),
            "utf-8",
            "not valid utf-8 text at line 2 (set extracts.<kind>.encoding",
        ),
        (CHINESE_CUSTOMERS.encode("gbk"), "utf-8", "not valid utf-8 text at line 2"),
        (
            CHINESE_CUSTOMERS.encode("utf-8"),
            "gb18030",
            "the file is UTF-8 but the configured encoding is gb18030",
        ),
        (
            CHINESE_CUSTOMERS.encode("utf-8-sig"),
            "gbk",
            "the file is UTF-8 but the configured encoding is gbk",
        ),
        (
            b"customer_id,segment\nC1,retail\nC2,\x80\x80\n",
            "gb18030",
            "not valid gb18030 text at line 3",
        ),
    ],
    ids=[
        "gb18030-as-utf8",
        "gbk-as-utf8",
        "utf8-as-gb18030",
        "utf8-bom-as-gbk",
        "garbage-as-gb18030",
    ],
)
def test_a_wrong_encoding_fails_the_file_instead_of_storing_mojibake(
    tmp_path: Path, content: bytes, configured: str, error: str
) -> None:
    root = new_project(tmp_path, f'[extracts.customers]\nencoding = "{configured}"\n')
    put(root, "customers", "c.csv", content)
    (outcome,) = ingest(root).values()
    assert outcome.status == "failed"
    assert error in (outcome.error or "")
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from customers").fetchall() == [(0,)]
        assert con.sql("select count(*) from quarantine").fetchall() == [(0,)]

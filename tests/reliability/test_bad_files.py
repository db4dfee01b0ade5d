"""Issue 6.2: a broken file fails alone with a clear error; nothing of it loads, the run goes on.

The failed file stays in the inbox, is marked failed in the manifest (with
the reason) and is tried again by the next run. Messages name lines,
columns and settings, never cell values (they reach `data_quality`).
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from customer_equity import ingest as ingest_module
from customer_equity.extracts import Discovered
from tests.reliability.support import (
    TX_HEADER,
    csv_text,
    ingest,
    new_project,
    put,
    quarantine_of,
    query,
)

GOOD_ROW = "T1,C1,2025-03-01,10,6,software,USD"
GOOD_FILE = csv_text(TX_HEADER, GOOD_ROW)


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


VALID_PARQUET = _parquet(
    pl.DataFrame(
        {
            "transaction_id": ["P1", "P2"],
            "customer_id": ["C1", "C2"],
            "transaction_date": [date(2025, 3, 1), date(2025, 3, 2)],
            "amount": [10.0, 20.0],
        }
    )
)

# name -> (content, expected fragment of the error)
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty.csv": (b"", "empty file"),
    "whitespace.csv": (b"\n \n\t\n", "empty file"),
    "bom-only.csv": (b"\xef\xbb\xbf", "empty file"),
    "header-only.csv": (f"{TX_HEADER}\n".encode(), "header only"),
    "header-and-blank-lines.csv": (f"{TX_HEADER}\n\n\n".encode(), "header only"),
    "cut-mid-row.csv": (
        f"{TX_HEADER}\n{GOOD_ROW}\nT2,C1,2025-0".encode(),
        "line 3 has 3 field(s) but the header has 7",
    ),
    "cut-inside-quotes.csv": (
        f'{TX_HEADER}\n{GOOD_ROW}\nT2,C1,2025-03-02,5,1,"softw'.encode(),
        "malformed CSV at line 3",
    ),
    "too-many-fields.csv": (
        f"{TX_HEADER}\n{GOOD_ROW}\nT2,C1,2025-03-02,5,1,software,USD,extra\n{GOOD_ROW}\n".encode(),
        "line 3 has 8 field(s) but the header has 7",
    ),
    "too-few-fields.csv": (
        f"{TX_HEADER}\nT2,C1,2025-03-02\n{GOOD_ROW}\n".encode(),
        "line 2 has 3 field(s)",
    ),
    "semicolons.csv": (
        TX_HEADER.replace(",", ";").encode() + b"\nT1;C1;2025-03-01;10;6;software;USD\n",
        "the header contains ';' but the delimiter is ','",
    ),
    "missing-columns.csv": (
        b"transaction_id,customer,transaction_date\nT1,C1,2025-03-01\n",
        "missing required column(s) ['customer_id', 'amount']",
    ),
    "repeated-column.csv": (
        b"transaction_id,customer_id,transaction_date,amount,amount\nT1,C1,2025-03-01,1,2\n",
        "column(s) ['amount'] appear more than once",
    ),
    "reserved-column.csv": (
        f"{TX_HEADER},_line\n{GOOD_ROW},7\n".encode(),
        "column name(s) ['_line'] are reserved",
    ),
    "bare-cr-line-ends.csv": (
        f"{TX_HEADER}\r{GOOD_ROW}\r".encode(),
        "ambiguous CSV layout",
    ),
    "binary.csv": (VALID_PARQUET, "not valid utf-8 text at line"),
    "utf16.csv": (GOOD_FILE.encode("utf-16"), "not valid utf-8 text at line 1"),
    "truncated.parquet": (VALID_PARQUET[: len(VALID_PARQUET) // 2], "unreadable Parquet"),
    "not-parquet.parquet": (b"transaction_id\nT7\n", "unreadable Parquet"),
    "amount-as-text.parquet": (
        _parquet(
            pl.DataFrame(
                {
                    "transaction_id": ["P1"],
                    "customer_id": ["C1"],
                    "transaction_date": ["2025-03-01"],
                    "amount": ["10"],
                }
            )
        ),
        "wrong Parquet column types: transaction_date is String",
    ),
    "no-rows.parquet": (
        _parquet(pl.read_parquet(io.BytesIO(VALID_PARQUET)).clear()),
        "has no rows",
    ),
    "nested.parquet": (
        _parquet(pl.read_parquet(io.BytesIO(VALID_PARQUET)).with_columns(tags=pl.lit(["a"]))),
        "column 'tags' is List(String): only flat columns load",
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_broken_file_fails_alone_and_is_retried(tmp_path: Path, name: str) -> None:
    content, expected_error = BAD_FILES[name]
    root = new_project(tmp_path)
    bad = put(root, "transactions", f"a-{name}", content)
    put(root, "transactions", "b-good.csv", GOOD_FILE)
    outcomes = ingest(root)
    failed = outcomes[bad.name]
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith(f"{bad.name}: ")
    assert expected_error in failed.error
    assert (failed.rows_read, failed.rows_loaded, failed.rows_quarantined) == (0, 0, 0)
    assert outcomes["b-good.csv"].status == "loaded"
    assert query(root, "select transaction_id, _file from transactions") == [("T1", "b-good.csv")]
    assert quarantine_of(root) == []
    assert bad.read_bytes() == content  # still in the inbox, untouched
    assert query(
        root, "select status, error from manifest where file_name = $f", {"f": bad.name}
    ) == [("failed", failed.error)]
    again = ingest(root, "run-2")
    assert again[bad.name].status == "failed" and again["b-good.csv"].status == "skipped"


def test_missing_columns_message_names_the_mapping_in_use(tmp_path: Path) -> None:
    root = new_project(tmp_path, '[extracts.transactions.columns]\nbeleg = "transaction_id"\n')
    put(root, "transactions", "t.csv", csv_text("beleg,kunde,datum,betrag", "1,C1,2025-03-01,5"))
    (outcome,) = ingest(root).values()
    assert outcome.error == (
        "t.csv: missing required column(s) ['customer_id', 'transaction_date', 'amount']; "
        "found ['beleg', 'kunde', 'datum', 'betrag']; column mapping in use: "
        '{"beleg": "transaction_id"}'
    )


def test_a_file_that_vanishes_before_it_is_read_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = new_project(tmp_path)
    put(root, "transactions", "b-good.csv", GOOD_FILE)
    ghost = root / "inbox" / "transactions" / "a-gone.csv"
    found = ingest_module.discover_extracts(root / "inbox")
    monkeypatch.setattr(
        ingest_module,
        "discover_extracts",
        lambda inbox, rules: Discovered([("transactions", ghost), *found.ready], []),
    )
    outcomes = ingest(root)
    assert outcomes["a-gone.csv"].status == "failed"
    assert "unreadable file: No such file or directory" in (outcomes["a-gone.csv"].error or "")
    assert outcomes["b-good.csv"].status == "loaded"


def test_a_file_the_process_may_not_read_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permission denied, simulated: the suite may run as root, which reads any file."""
    root = new_project(tmp_path)
    put(root, "transactions", "b-good.csv", GOOD_FILE)
    locked = put(root, "transactions", "a-locked.csv", GOOD_FILE.replace("T1", "T9"))
    open_path = Path.open

    def refuse_locked(path: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return open_path(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse_locked)
    outcomes = ingest(root)
    assert outcomes["a-locked.csv"].error == "a-locked.csv: unreadable file: Permission denied"
    assert (outcomes["a-locked.csv"].status, outcomes["a-locked.csv"].file_sha256) == ("failed", "")
    assert outcomes["b-good.csv"].status == "loaded"


def test_extra_columns_are_kept_or_ignored_as_configured_never_fatal(tmp_path: Path) -> None:
    header = f"{TX_HEADER},store,promo_code"
    rows = [f"{GOOD_ROW},north,SPRING", "T2,C1,2025-03-02,4,2,software,USD,south,"]
    for policy, expected in (
        (
            "keep",
            [{"store": "north", "promo_code": "SPRING"}, {"store": "south", "promo_code": None}],
        ),
        ("ignore", [None, None]),
    ):
        root = new_project(
            tmp_path / policy, f'[extracts.transactions]\nextra_columns = "{policy}"\n'
        )
        put(root, "transactions", "t.csv", csv_text(header, *rows))
        (outcome,) = ingest(root).values()
        assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)
        stored = [
            json.loads(text) if text else None
            for (text,) in query(
                root, "select extra_attributes from transactions order by 1 nulls last"
            )
        ]
        assert sorted(stored, key=str) == sorted(expected, key=str)


def test_a_quoted_field_spanning_lines_keeps_line_numbers_right(tmp_path: Path) -> None:
    """Line numbers are physical lines, also after a multi-line field and blank lines."""
    root = new_project(tmp_path)
    content = (
        f"{TX_HEADER}\n"
        f"{GOOD_ROW}\n"  # line 2
        'T2,C1,2025-03-02,5,1,"office\nsupplies, big\n""deal""",USD\n'  # lines 3-5
        "\n"  # line 6: blank, not a row
        "T3,C1,not-a-date,5,1,software,USD\n"  # line 7
        'T4,C1,2025-03-04,x,1,"two\r\nlines",USD\n'  # lines 8-9
        "T5,C1,2025-03-05,5,1,software,USD\n"  # line 10
    )
    put(root, "transactions", "t.csv", content)
    (outcome,) = ingest(root).values()
    assert quarantine_of(root) == [
        ("t.csv", 7, "unparseable_transaction_date"),
        ("t.csv", 8, "unparseable_amount"),
    ]
    assert outcome.rows_read == 5
    assert query(root, "select _line, category from transactions order by 1") == [
        (2, "software"),
        (3, 'office\nsupplies, big\n"deal"'),
        (10, "software"),
    ]


def test_parquet_rows_are_numbered_from_one(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    frame = pl.read_parquet(io.BytesIO(VALID_PARQUET)).with_columns(
        pl.Series("amount", [10.0, float("nan")])
    )
    put(root, "transactions", "t.parquet", _parquet(frame))
    (outcome,) = ingest(root).values()
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 1)
    assert quarantine_of(root) == [("t.parquet", 2, "unparseable_amount")]

"""Issue 10: extracts as real source systems send them; each case failed before its fix.

Typed ids, sentinel dates, same-day costs, re-deliveries, long cells,
symlinked folders: the row counts added up before, but a business figure
came out wrong. Each test checks that figure, not only the counts.
"""

from __future__ import annotations

import io
import os
import subprocess
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.reliability.support import (
    TX_HEADER,
    csv_text,
    ingest,
    new_project,
    put,
    quarantine_of,
    query,
)


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


# --- item 4: the version from the file that sorts last wins, whatever the arrival order -------

OLD_EXTRACT = csv_text(
    TX_HEADER,
    "T1,C1,2025-03-01,1999.75,1000,software,USD",
    "T2,C1,2025-03-02,50,30,software,USD",
)
NEWER_CORRECTION = csv_text(TX_HEADER, "T1,C1,2025-03-01,1800.00,1000,software,USD")


def test_a_redelivered_old_extract_does_not_undo_a_newer_correction(tmp_path: Path) -> None:
    """The old file comes again with CRLF line ends (new bytes, same rows) after the correction.

    Revenue of C1 must stay 1800 + 50 = 1850; before, the re-sent 1999.75 won
    because whatever loaded last won (revenue 2049.75).
    """
    root = new_project(tmp_path)
    put(root, "transactions", "tx_2025-03-01.csv", OLD_EXTRACT)
    put(root, "transactions", "tx_2025-03-02.csv", NEWER_CORRECTION)
    ingest(root, "run-1")
    assert query(root, "select sum(amount) from transactions") == [(1850.0,)]
    put(root, "transactions", "tx_2025-03-01.csv", OLD_EXTRACT.replace("\n", "\r\n"))
    resent = ingest(root, "run-2")["tx_2025-03-01.csv"]
    assert resent.status == "loaded" and resent.accounted()
    # T1 is superseded on arrival (audited, counted as replaced), T2 equals the stored row.
    assert (resent.rows_read, resent.rows_loaded, resent.rows_replaced, resent.rows_duplicate) == (
        2,
        0,
        1,
        1,
    )
    assert query(root, "select transaction_id, amount, _file from transactions order by 1") == [
        ("T1", 1800.0, "tx_2025-03-02.csv"),
        ("T2", 50.0, "tx_2025-03-01.csv"),
    ]
    assert query(root, "select sum(amount) from transactions") == [(1850.0,)]
    audited = query(
        root,
        "select amount, _file, _replaced_by_run from transactions_replaced order by 3",
    )
    assert audited == [
        (1999.75, "tx_2025-03-01.csv", "run-1"),
        (1999.75, "tx_2025-03-01.csv", "run-2"),
    ]


def test_a_newer_file_arriving_after_an_older_one_still_wins(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    put(root, "transactions", "tx_2025-03-02.csv", NEWER_CORRECTION)
    ingest(root, "run-1")
    put(root, "transactions", "tx_2025-03-01.csv", OLD_EXTRACT)
    late = ingest(root, "run-2")["tx_2025-03-01.csv"]
    assert (late.rows_loaded, late.rows_replaced, late.rows_duplicate) == (1, 1, 0)
    assert query(root, "select transaction_id, amount from transactions order by 1") == [
        ("T1", 1800.0),
        ("T2", 50.0),
    ]


# --- item 1: ids survive byte for byte ---------------------------------------------------------


def test_integer_ids_in_parquet_stay_distinct_customers(tmp_path: Path) -> None:
    """Two 17-digit ids differ in the last digit; as floats both were 1.2345678901234568e+16."""
    root = new_project(tmp_path)
    frame = pl.DataFrame(
        {
            "transaction_id": [90000000000000001, 90000000000000002],
            "customer_id": [12345678901234567, 12345678901234568],
            "transaction_date": [date(2025, 3, 1), date(2025, 3, 2)],
            "amount": [10.0, 20.0],
        }
    )
    put(root, "transactions", "t.parquet", _parquet(frame))
    (outcome,) = ingest(root).values()
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)
    assert query(
        root, "select transaction_id, customer_id, amount from transactions order by 1"
    ) == [
        ("90000000000000001", "12345678901234567", 10.0),
        ("90000000000000002", "12345678901234568", 20.0),
    ]


def test_float_ids_load_as_integers_or_fail_the_file_naming_the_column(tmp_path: Path) -> None:
    def extract(customer_ids: list[float]) -> bytes:
        return _parquet(
            pl.DataFrame(
                {
                    "transaction_id": [f"P{i}" for i in range(len(customer_ids))],
                    "customer_id": customer_ids,
                    "transaction_date": [date(2025, 3, 1)] * len(customer_ids),
                    "amount": [5.0] * len(customer_ids),
                }
            )
        )

    root = new_project(tmp_path)
    put(root, "transactions", "a-integral.parquet", extract([123.0, 4567.0]))
    put(root, "transactions", "b-fraction.parquet", extract([1.5]))
    put(root, "transactions", "c-beyond-2-53.parquet", extract([2.0**53 + 2]))
    outcomes = ingest(root)
    assert outcomes["a-integral.parquet"].rows_loaded == 2
    assert query(root, "select customer_id from transactions order by 1") == [("123",), ("4567",)]
    for name in ("b-fraction.parquet", "c-beyond-2-53.parquet"):
        assert outcomes[name].status == "failed"
        assert "Parquet column 'customer_id' is a float column" in (outcomes[name].error or "")


def test_a_leading_no_break_space_is_part_of_the_id(tmp_path: Path) -> None:
    """Only ASCII blanks are trimmed (documented); a no-break space is data, not padding."""
    root = new_project(tmp_path)
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(TX_HEADER, " T1 ,C1,2025-03-01,5,1,x,USD", "T2,\u00a0C1,2025-03-01,7,1,x,USD"),
    )
    ingest(root)
    assert query(root, "select transaction_id, customer_id from transactions order by 1") == [
        ("T1", "C1"),
        ("T2", "\u00a0C1"),
    ]


# --- item 9: a symlinked kind folder, a long cell in an ignored column --------------------------


def test_a_kind_folder_that_is_a_symlink_to_a_directory_is_read(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project")
    elsewhere = tmp_path / "exports" / "tx"
    elsewhere.mkdir(parents=True)
    (elsewhere / "t.csv").write_text(csv_text(TX_HEADER, "T1,C1,2025-03-01,5,1,x,USD"))
    secret = tmp_path / "secret.csv"
    secret.write_text(csv_text(TX_HEADER, "S1,C1,2025-03-01,5,1,x,USD"))
    (elsewhere / "u-escape.csv").symlink_to(secret)  # leaves the linked folder: refused
    (root / "inbox").mkdir()
    (root / "inbox" / "transactions").symlink_to(elsewhere, target_is_directory=True)
    outcomes = ingest(root)
    assert outcomes["t.csv"].status == "loaded"
    assert outcomes["u-escape.csv"].status == "failed"
    assert "outside the inbox" in (outcomes["u-escape.csv"].error or "")
    assert query(root, "select transaction_id from transactions") == [("T1",)]


@pytest.mark.parametrize("trailing_blank_line", [False, True], ids=["fast", "exact"])
def test_a_long_cell_rejects_only_its_row_and_only_in_a_used_column(
    tmp_path: Path, trailing_blank_line: bool
) -> None:
    """200 KB of notes (ignored column) load; 200 KB in a used column quarantines that row.

    A trailing blank line sends the file through the `csv` module, whose field
    limit (131,072 characters) rejected the whole file before.
    """
    root = new_project(tmp_path)
    long_text = "x" * 200_000
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(
            f"{TX_HEADER},notes",
            f"T1,C1,2025-03-01,5,1,software,USD,{long_text}",
            f"T2,C1,2025-03-01,7,1,{long_text},USD,short",
            "T3,C1,2025-03-01,9,1,software,USD,",
        )
        + ("\n" if trailing_blank_line else ""),
    )
    (outcome,) = ingest(root).values()
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 2, 1)
    assert quarantine_of(root) == [("t.csv", 3, "category_too_long")]
    assert query(root, "select sum(amount) from transactions") == [(14.0,)]


# --- item 2: dates have a lower bound; offsets are dated in the business time zone ------------


def test_sentinel_and_bc_dates_are_quarantined_with_their_own_reason(tmp_path: Path) -> None:
    """One 0001-01-01 row cut C1's CLV by 41 % and grew cohort_retention 325-fold before.

    Loaded, it makes C1's first purchase two thousand years old: the check here
    is that C1's earliest loaded purchase is the real one.
    """
    root = new_project(tmp_path, '[quality]\nearliest_date = "1990-01-01"\n')
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(
            TX_HEADER,
            "T1,C1,2025-03-01,100,60,software,USD",
            "T2,C1,0001-01-01,100,60,software,USD",
            "T3,C1,0044-03-15 (BC),100,60,software,USD",
            "T4,C1,1989-12-31,100,60,software,USD",
            "T5,C1,1990-01-01,100,60,software,USD",
        ),
    )
    put(root, "customers", "c.csv", csv_text("customer_id,created_date", "C1,0001-01-01"))
    outcomes = ingest(root)
    assert quarantine_of(root) == [
        ("c.csv", 2, "created_date_before_earliest"),
        ("t.csv", 3, "transaction_date_before_earliest"),
        ("t.csv", 4, "transaction_date_before_earliest"),
        ("t.csv", 5, "transaction_date_before_earliest"),
    ]
    assert outcomes["t.csv"].rows_loaded == 2
    assert query(root, "select min(transaction_date) from transactions") == [(date(1990, 1, 1),)]


def test_timestamps_with_an_offset_are_dated_in_the_business_time_zone(tmp_path: Path) -> None:
    """23:30 in New York is 04:30 UTC the next day but 20:30 the same day in Los Angeles."""
    root = new_project(tmp_path, '[quality]\ntime_zone = "America/Los_Angeles"\n')
    put(
        root,
        "transactions",
        "t.csv",
        csv_text(
            TX_HEADER,
            "T1,C1,2025-03-01T23:30:00-05:00,10,,,",
            "T2,C1,2025-03-01 23:30:00,10,,,",  # no offset: as written
            "T3,C1,2025-03-02T06:00:00Z,10,,,",
        ),
    )
    ingest(root)
    assert query(root, "select transaction_id, transaction_date from transactions order by 1") == [
        ("T1", date(2025, 3, 1)),
        ("T2", date(2025, 3, 1)),
        ("T3", date(2025, 3, 1)),
    ]


# --- item 3: costs: several on one day all count; cost_id is the key when present -------------

COSTS_HEADER = "customer_id,cost_date,cost_type,amount"


def test_same_day_costs_all_count(tmp_path: Path) -> None:
    """Two service costs (80, 100) and two equal rebates (50, 50) on one day: 280, not 80 + 50."""
    root = new_project(tmp_path)
    put(
        root,
        "costs",
        "costs.csv",
        csv_text(
            COSTS_HEADER,
            "C1,2025-03-01,service,80",
            "C1,2025-03-01,service,100",
            "C1,2025-03-01,rebate,50",
            "C1,2025-03-01,rebate,50",
        ),
    )
    (outcome,) = ingest(root).values()
    assert (outcome.rows_loaded, outcome.rows_replaced, outcome.rows_duplicate) == (4, 0, 0)
    assert query(root, "select sum(amount) from costs where customer_id = 'C1'") == [(280.0,)]


def test_a_cost_id_makes_corrections_and_unknown_customers_follow_the_policy(
    tmp_path: Path,
) -> None:
    root = new_project(tmp_path, '[quality]\nunknown_customers = "quarantine"\n')
    put(root, "customers", "c.csv", csv_text("customer_id", "C1"))
    header = f"cost_id,{COSTS_HEADER}"
    put(
        root,
        "costs",
        "costs-1.csv",
        csv_text(header, "K1,C1,2025-03-01,service,80", "K2,C1,2025-03-01,service,100"),
    )
    put(
        root,
        "costs",
        "costs-2.csv",
        csv_text(
            header,
            "K1,C1,2025-03-01,service,90",  # corrects K1
            "K2,C1,2025-03-01,service,100",  # the same again
            "K3,C9,2025-03-01,service,70",  # C9 is not a known customer
        ),
    )
    outcomes = ingest(root)
    second = outcomes["costs-2.csv"]
    assert (second.rows_replaced, second.rows_duplicate, second.rows_quarantined) == (1, 1, 1)
    assert query(root, "select sum(amount) from costs") == [(190.0,)]
    assert query(root, "select cost_id, amount from costs_replaced") == [("K1", 80.0)]
    assert quarantine_of(root) == [("costs-2.csv", 4, "unknown_customer")]


# --- item 6: half-arrived files are not read -------------------------------------------------

COMPLETE = csv_text(
    TX_HEADER, "T1,C1,2025-03-01,100,60,software,USD", "T2,C1,2025-03-02,1999.75,,,"
)
CUT_IN_LAST_FIELD = COMPLETE[: COMPLETE.index("1999.75") + 3]  # "...,199": the copy stopped


def _age(path: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_a_file_still_being_copied_waits_until_it_settles(tmp_path: Path) -> None:
    """A copy interrupted inside the last field loaded 199 instead of 1999.75 before."""
    root = new_project(tmp_path, "[inbox]\nsettle_seconds = 60\n")
    arriving = put(root, "transactions", "t.csv", CUT_IN_LAST_FIELD)
    _age(arriving, 5)
    (outcome,) = ingest(root, "run-1").values()
    assert (outcome.status, outcome.rows_read) == ("waiting", 0)
    assert query(root, "select count(*) from transactions") == [(0,)]
    put(root, "transactions", "t.csv", COMPLETE)  # the copy resumed and finished
    _age(arriving, 120)
    (outcome,) = ingest(root, "run-2").values()
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)
    assert query(root, "select sum(amount) from transactions") == [(2099.75,)]


def test_partial_transfer_names_are_never_read(tmp_path: Path) -> None:
    root = new_project(tmp_path)
    for name in ("~$t.csv", ".t.csv", "t.csv.part", "t.csv.tmp", "t.csv.partial", "t.filepart"):
        put(root, "transactions", name, COMPLETE)
    put(root, "transactions", "real.csv", csv_text(TX_HEADER, "T9,C1,2025-03-01,5,,,"))
    outcomes = ingest(root)
    assert list(outcomes) == ["real.csv"]
    assert query(root, "select transaction_id from transactions") == [("T9",)]


def test_with_a_done_marker_required_a_file_waits_for_it(tmp_path: Path) -> None:
    root = new_project(tmp_path, "[inbox]\nsettle_seconds = 0\nrequire_done_marker = true\n")
    put(root, "transactions", "t.csv", COMPLETE)
    assert ingest(root, "run-1")["t.csv"].status == "waiting"
    (root / "inbox" / "transactions" / "t.csv.done").touch()
    assert ingest(root, "run-2")["t.csv"].rows_loaded == 2
    assert query(root, "select sum(amount) from transactions") == [(2099.75,)]


# --- item 9: a full disk is reported as a full disk ------------------------------------------


def test_a_full_disk_during_ingest_is_reported_as_such(tmp_path: Path) -> None:
    """The warehouse lives on a 6 MiB file system; the extract needs more.

    Before, the failed write was hidden behind DuckDB's "cannot rollback".
    """
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)], capture_output=True
    )
    assert mounted.returncode == 0, f"this test mounts a tmpfs (needs root): {mounted.stderr!r}"
    try:
        root = new_project(tmp_path / "project")
        config = root / "customer-equity.toml"
        config.write_text(
            config.read_text().replace(
                'warehouse = "warehouse.duckdb"', f'warehouse = "{disk / "warehouse.duckdb"}"'
            )
        )
        rows = [
            f"T{i},C{i % 997},2025-03-01,{i % 500}.25,1,category-{i % 13},USD"
            for i in range(400_000)
        ]
        put(root, "transactions", "t.csv", csv_text(TX_HEADER, *rows))
        with pytest.raises(OSError) as raised:
            ingest(root)
        message = str(raised.value)
        assert "no space left on device" in message.lower()
        assert "is full" in message and "cannot rollback" not in message.split("(the rollback")[0]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


# --- item 10: overlapping wallet periods are not double-counted -------------------------------

WALLETS_HEADER = "customer_id,period_start,period_end,total_purchases"


def test_the_later_loaded_overlapping_wallet_period_is_quarantined(tmp_path: Path) -> None:
    """C1's 2024 wallet is 1000; a second period from July overlapped it and inflated K.

    Only periods that do not overlap stay: C1 keeps exactly one wallet for any day.
    A correction of the same period (same start) is not an overlap.
    """
    root = new_project(tmp_path)
    put(root, "wallets", "w1.csv", csv_text(WALLETS_HEADER, "C1,2024-01-01,2024-12-31,1000"))
    put(
        root,
        "wallets",
        "w2.csv",
        csv_text(
            WALLETS_HEADER,
            "C1,2024-07-01,2025-06-30,1000",  # overlaps the stored 2024 period
            "C1,2024-01-01,2024-12-31,1200",  # corrects the stored 2024 period
            "C2,2024-01-01,2024-06-30,500",
            "C2,2024-06-01,2024-12-31,500",  # overlaps the line before it
            "C2,2024-07-01,2024-12-31,400",
        ),
    )
    outcomes = ingest(root)
    assert quarantine_of(root) == [
        ("w2.csv", 2, "overlapping_wallet_period"),
        ("w2.csv", 5, "overlapping_wallet_period"),
    ]
    assert outcomes["w2.csv"].accounted()
    assert query(
        root, "select customer_id, period_start, total_purchases from wallets order by 1, 2"
    ) == [
        ("C1", date(2024, 1, 1), 1200.0),
        ("C2", date(2024, 1, 1), 500.0),
        ("C2", date(2024, 7, 1), 400.0),
    ]

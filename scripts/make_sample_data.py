"""Regenerate the sample Qlik files under sample_data/cubic/ods_qlik/.

    .venv/bin/python scripts/make_sample_data.py

One table, EDW.SAMPLE: a two-part full load and two change files that exercise updates,
a delete then re-insert, NULL versus empty string, quoting, newlines and emoji.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.samples.qlik import Column, write_table_file

ROOT = Path(__file__).resolve().parent.parent / "sample_data" / "cubic" / "ods_qlik"

COLUMNS = [
    Column("SAMPLE_ID", "INT4", 10, key_pos=1),
    Column("SAMPLE_NAME", "STRING", 100),
    Column("FARE_AMOUNT", "NUMERIC", 0, precision=10, scale=2),
    Column("IS_ACTIVE", "BOOLEAN"),
    Column("EDW_INSERTED_DTM", "DATETIME"),
    Column("EDW_UPDATED_DTM", "DATETIME"),
]


def seq(stamp: str, n: int) -> str:
    return f"{stamp}{n:019d}"


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    t0 = "2021-12-01 11:20:30.4444444"
    write_table_file(
        ROOT,
        "EDW",
        "SAMPLE",
        COLUMNS,
        [
            (1, "Sample 1 🔥", "2.40", True, t0, t0),
            (2, "Sample 2", "1.70", True, t0, t0),
            (3, 'Quoted "name", with comma', "0.00", False, t0, t0),
            (4, "", None, None, t0, None),
            (5, "Two\nlines", "12.25", True, t0, t0),
        ],
        name="LOAD00000001",
    )
    write_table_file(
        ROOT,
        "EDW",
        "SAMPLE",
        COLUMNS,
        [(6, "Sample 6", "3.10", True, t0, t0), (7, "Sample 7", "3.10", True, t0, t0)],
        name="LOAD00000002",
    )
    t1 = "2021-12-01 11:22:33.4440000"
    s1 = "2021120111223344"
    write_table_file(
        ROOT,
        "EDW",
        "SAMPLE",
        COLUMNS,
        [
            (seq(s1, 1), "I", t1, 8, "Sample 8", "5.00", True, t1, t1),
            (seq(s1, 2), "B", t1, 2, "Sample 2", "1.70", True, t0, t0),
            (seq(s1, 2), "U", t1, 2, "Sample 2 (renamed)", "1.70", True, t0, t1),
            (seq(s1, 3), "D", t1, 3, None, None, None, None, None),
            (seq(s1, 4), "U", t1, 4, "first update", "1.00", True, t0, t1),
            (seq(s1, 5), "U", t1, 4, "second update wins", "2.00", True, t0, t1),
        ],
        name="20211201-112233444",
        changes=True,
    )
    t2 = "2021-12-01 12:00:00.1234567"
    s2 = "2021120112000012"
    write_table_file(
        ROOT,
        "EDW",
        "SAMPLE",
        COLUMNS,
        [
            (seq(s2, 6), "I", t2, 3, "Sample 3 is back", "0.50", True, t2, t2),
            (seq(s2, 7), "D", t2, 7, None, None, None, None, None),
            (seq(s2, 8), "U", t2, 9, "update of a key never seen", "9.99", False, t2, t2),
        ],
        name="20211201-120000000",
        changes=True,
        gz=False,
    )


if __name__ == "__main__":
    main()

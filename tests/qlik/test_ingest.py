"""End to end: files in the incoming zone -> current-state rows in Postgres."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from data_platform.batch.cubic_qlik.scan import scan_incoming
from harness.samples.qlik import Column
from tests.qlik.conftest import QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"


def test_full_load_then_changes_reach_the_final_state(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.full_load([(3, "three", T)], part=2)
    sample.changes(
        [
            (seq(1), "I", T, 4, "four", T),
            (seq(2), "B", T, 1, "one", T),
            (seq(2), "U", T, 1, "ONE", T),
            (seq(3), "D", T, 2, None, None),
        ]
    )
    summary = qlik.run()
    assert (summary.scan.new_loads, summary.ingest.archived, summary.ingest.errored) == (3, 3, 0)
    assert sample.rows() == [
        (1, "ONE", datetime(2021, 12, 1, 11, 20, 30)),
        (3, "three", datetime(2021, 12, 1, 11, 20, 30)),
        (4, "four", datetime(2021, 12, 1, 11, 20, 30)),
    ]
    assert set(qlik.statuses().values()) == {"archived"}
    # Every file and its .dfm moved to the archive, in a folder of its load.
    ids = {key.rsplit("/", 1)[1]: load_id for key, load_id in qlik.load_ids().items()}
    first, second, change = (
        ids["LOAD00000001.csv.gz"],
        ids["LOAD00000002.csv.gz"],
        ids["20211201-112233444.csv.gz"],
    )
    assert qlik.keys("incoming") == []
    assert qlik.keys("archive") == [
        f"cubic/ods_qlik/TEST.SAMPLE/load={first}/LOAD00000001.csv.gz",
        f"cubic/ods_qlik/TEST.SAMPLE/load={first}/LOAD00000001.dfm",
        f"cubic/ods_qlik/TEST.SAMPLE/load={second}/LOAD00000002.csv.gz",
        f"cubic/ods_qlik/TEST.SAMPLE/load={second}/LOAD00000002.dfm",
        f"cubic/ods_qlik/TEST.SAMPLE__ct/load={change}/20211201-112233444.csv.gz",
        f"cubic/ods_qlik/TEST.SAMPLE__ct/load={change}/20211201-112233444.dfm",
    ]


def test_datetime_keeps_microseconds_and_rounds_digits_7_to_9(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    qlik.run()
    assert sample.rows() == [
        (1, "one", datetime(2021, 12, 1, 11, 20, 30, 444444)),
        (2, "two", datetime(2021, 12, 1, 11, 20, 30, 0)),
    ]


def test_many_changes_to_one_key_within_and_across_files(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    sample.changes(
        [(seq(n), "U", T, 1, f"v{n}", T) for n in (5, 3, 9, 7)],  # out of order in the file
        name="20211201-000000001",
    )
    sample.changes(
        [(seq(10), "U", T, 1, "v10", T), (seq(11), "U", T, 1, "v11", T)],
        name="20211201-000000002",
    )
    qlik.run()
    assert sample.rows()[0][:2] == (1, "v11")
    schema_rows = sample.lineage()
    assert schema_rows[0][-1] == seq(11)


def test_the_highest_sequence_wins_within_a_file(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.changes([(seq(9), "U", T, 1, "latest", T), (seq(2), "U", T, 1, "older", T)])
    qlik.run()
    assert sample.rows()[0][1] == "latest"


def test_delete_then_reinsert_and_insert_of_an_existing_key(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    sample.changes(
        [
            (seq(1), "D", T, 1, None, None),
            (seq(2), "I", T, 1, "back", T),
            (seq(3), "I", T, 2, "insert over existing", T),
        ]
    )
    qlik.run()
    assert [r[:2] for r in sample.rows()] == [(1, "back"), (2, "insert over existing")]


def test_delete_or_update_of_a_missing_key(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.changes([(seq(1), "D", T, 40, None, None), (seq(2), "U", T, 41, "new via U", T)])
    summary = qlik.run()
    assert summary.ingest.errored == 0
    assert [r[:2] for r in sample.rows()] == [(1, "one"), (2, "two"), (41, "new via U")]


def test_insert_then_delete_in_one_file_leaves_nothing(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.changes([(seq(1), "I", T, 7, "x", T), (seq(2), "D", T, 7, None, None)])
    qlik.run()
    assert [r[0] for r in sample.rows()] == [1, 2]


def test_header_only_change_file(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.changes([])
    summary = qlik.run()
    assert summary.ingest.errored == 0
    assert set(qlik.statuses().values()) == {"archived"}
    assert len(sample.rows()) == 2


def test_null_versus_empty_string_quotes_commas_newlines_emoji(qlik: QlikWorld) -> None:
    table = qlik.table("TEST.TEXTS", [Column("ID", "INT4", key_pos=1), Column("V", "WSTRING", 50)])
    values = [None, "", 'say "hi", then go', "two\nlines\r\nand crlf", "🔥 émoji", " padded "]
    table.full_load([(i, v) for i, v in enumerate(values)])
    table.onboard()
    table.changes([(seq(1), "U", T, 100, ""), (seq(2), "U", T, 101, None)])
    qlik.run()
    assert table.rows() == [*enumerate(values), (100, ""), (101, None)]


def test_composite_keys(qlik: QlikWorld) -> None:
    columns = [
        Column("PRODUCT_ID", "INT8", key_pos=2),
        Column("VERSION", "INT2", key_pos=1),
        Column("PRICE", "NUMERIC", precision=12, scale=2),
    ]
    table = qlik.table("TEST.PRODUCT", columns)
    table.full_load([(1, 1, "1.00"), (1, 2, "2.00"), (2, 1, "3.00")])
    table.onboard()
    table.changes([(seq(1), "U", T, 1, 2, "2.50"), (seq(2), "D", T, 2, 1, None)])
    qlik.run()
    assert table.rows() == [(1, 1, Decimal("1.00")), (1, 2, Decimal("2.50"))]


def test_every_qlik_type_round_trips(qlik: QlikWorld) -> None:
    columns = [
        Column("ID", "INT4", key_pos=1),
        Column("I1", "INT1"),
        Column("I2", "INT2"),
        Column("I8", "INT8"),
        Column("U1", "UINT1"),
        Column("U2", "UINT2"),
        Column("U4", "UINT4"),
        Column("U8", "UINT8"),
        Column("N", "NUMERIC", precision=38, scale=10),
        Column("R4", "REAL4"),
        Column("R8", "REAL8"),
        Column("S", "STRING", 5),
        Column("C", "CLOB"),
        Column("NC", "NCLOB"),
        Column("B", "BYTES", 4),
        Column("BL", "BLOB"),
        Column("D", "DATE"),
        Column("TM", "TIME"),
        Column("DT", "DATETIME"),
        Column("BO", "BOOLEAN"),
    ]
    row = (
        1, -128, -32768, -9223372036854775808, 255, 65535, 4294967295,
        18446744073709551615, "1234567890123456789012345678.0123456789", "1.5", "2.25",
        "abcde", "long text", "ñ", "DEADBEEF", "00ff", "2021-12-01", "23:59:59",
        "2021-12-01 11:20:30.123456789", "true",
    )  # fmt: skip
    table = qlik.table("TEST.TYPES", columns)
    table.full_load([row, (2, *([None] * 19))])
    table.onboard()
    qlik.run()
    got = table.rows()
    assert got[0] == (
        1, -128, -32768, -9223372036854775808, 255, 65535, 4294967295,
        Decimal("18446744073709551615"), Decimal("1234567890123456789012345678.0123456789"),
        1.5, 2.25, "abcde", "long text", "ñ", b"\xde\xad\xbe\xef", b"\x00\xff",
        datetime(2021, 12, 1).date(), datetime(2021, 1, 1, 23, 59, 59).time(),
        datetime(2021, 12, 1, 11, 20, 30, 123457), True,
    )  # fmt: skip
    assert got[1] == (2, *([None] * 19))


def test_raw_tables_keep_text(qlik: QlikWorld) -> None:
    table = qlik.table("TEST.RAW", [Column("ID", "INT4", key_pos=1), Column("X", "INT4")])
    table.full_load([(1, "007")])
    table.onboard(raw=True)
    qlik.run()
    assert table.rows() == [("1", "007")]


def test_new_snapshot_replaces_the_table_and_supersedes_older_changes(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    sample.changes([(seq(1), "I", T, 3, "three", T)], name="20211201-000000001")
    qlik.run()
    assert [r[0] for r in sample.rows()] == [1, 2, 3]
    # A change file that lands late for the old snapshot, then a reload.
    sample.changes([(seq(2), "I", T, 4, "old snapshot change", T)], name="20211201-000000002")
    scan_incoming()
    sample.full_load([(10, "ten", T), (11, "eleven", T)])
    sample.changes([(seq(5), "U", T, 11, "ELEVEN", T)], name="20211202-000000001")
    summary = qlik.run()
    assert summary.scan.new_snapshots == 1
    assert summary.ingest.superseded == 1
    assert sample.rows() == [
        (10, "ten", datetime(2021, 12, 1, 11, 20, 30)),
        (11, "ELEVEN", datetime(2021, 12, 1, 11, 20, 30)),
    ]
    loads = qlik.loads()
    assert [k for k, _, _ in loads].count("cubic/ods_qlik/TEST.SAMPLE/LOAD00000001.csv.gz") == 2
    assert {s for _, s, _ in loads} == {"archived"}


def test_rerunning_changes_nothing(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.changes([(seq(1), "U", T, 1, "x", T)])
    qlik.run()
    before, loads_before = sample.lineage(), qlik.loads()
    second = qlik.run()
    assert (second.scan.new_loads, second.ingest.archived) == (0, 0)
    assert (sample.lineage(), qlik.loads()) == (before, loads_before)


def test_reapplying_an_applied_change_file_changes_nothing(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    first = sample.changes([(seq(1), "U", T, 1, "first", T)], name="20211201-000000001")
    sample.changes([(seq(2), "U", T, 1, "second", T)], name="20211201-000000002")
    qlik.run()
    before = sample.lineage()
    # The vendor sends the first file again (a new object, same content).
    qlik.land(qlik.files / first.removeprefix("cubic/ods_qlik/"))
    summary = qlik.run()
    assert (summary.scan.new_loads, summary.ingest.archived) == (1, 1)
    assert sample.lineage() == before


def test_the_same_flow_on_s3(s3_env: dict[str, str], qlik: QlikWorld, sample: QlikTable) -> None:
    """Through moto's S3 HTTP server: streaming reads, server-side moves, zone prefixes."""
    sample.changes([(seq(1), "U", T, 2, "TWO", T), (seq(2), "D", T, 1, None, None)])
    bad = sample.changes([(seq(3), "I", T, "x", "bad", T)], name="20211201-999999999")
    summary = qlik.run()
    assert (summary.ingest.archived, summary.ingest.errored) == (2, 1)
    assert [r[:2] for r in sample.rows()] == [(2, "TWO")]
    assert bad in qlik.filed("error") and qlik.keys("incoming") == []
    assert len(qlik.filed("archive")) == 4


def test_an_older_change_arriving_after_a_delete_does_not_bring_the_row_back(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    first = sample.changes([(seq(1), "U", T, 1, "first", T)], name="20211201-000000001")
    sample.changes([(seq(2), "D", T, 1, None, None)], name="20211201-000000002")
    qlik.run()
    assert [r[0] for r in sample.rows()] == [2]
    qlik.land(qlik.files / first.removeprefix("cubic/ods_qlik/"))  # sent again, late
    qlik.run()
    assert [r[0] for r in sample.rows()] == [2]
    # A newer insert does bring it back, and clears the tombstone.
    sample.changes([(seq(3), "I", T, 1, "back", T)], name="20211201-000000003")
    qlik.run()
    assert [r[:2] for r in sample.rows()] == [(1, "back"), (2, "two")]
    from sqlalchemy import text

    from data_platform.db.engine import get_engine

    with get_engine().connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM deleted_keys")) == 0


def test_one_file_with_changes_older_and_newer_than_the_tombstones(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    """A file whose changes straddle the newest tombstone: the change older than its
    key's tombstone is held back, the one newer than every tombstone applies (the lookup
    is skipped for it) and clears its key's tombstone."""
    sample.changes(
        [(seq(2), "D", T, 2, None, None), (seq(5), "D", T, 1, None, None)],
        name="20211201-000000001",
    )
    qlik.run()
    assert sample.rows() == []
    sample.changes(
        [(seq(3), "U", T, 1, "older than its delete", T), (seq(6), "I", T, 2, "back", T)],
        name="20211201-000000002",
    )
    qlik.run()
    assert [r[:2] for r in sample.rows()] == [(2, "back")]
    from sqlalchemy import text

    from data_platform.db.engine import get_engine

    with get_engine().connect() as conn:
        kept = conn.execute(text("SELECT key, change_seq FROM deleted_keys")).all()
    assert kept == [([1], seq(5))]


def test_a_new_snapshot_clears_the_tombstones(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.changes([(seq(5), "D", T, 1, None, None)])
    qlik.run()
    qlik.later()
    sample.full_load([(1, "reloaded", T)])
    sample.changes([(seq(1), "U", T, 1, "older seq, newer snapshot", T)], name="20211202-000000001")
    qlik.run()
    assert [r[:2] for r in sample.rows()] == [(1, "older seq, newer snapshot")]

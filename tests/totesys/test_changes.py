"""What the totesys extraction carries, each on a real source database and a real platform:
a transaction committed passes after it stamped its rows, deletes, versions sharing a
millisecond or stamped older than the current one, microseconds, and a table's trouble
(a value Parquet cannot hold, a corrupt file, a NULL) kept to that table."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from data_platform.batch.totesys.connection import connect
from data_platform.batch.totesys.extract import PREFIX, extract
from data_platform.cli.main import cli
from data_platform.run import run_once
from data_platform.settings import reset_settings
from data_platform.storage import get_zone
from tests.totesys.sql import on_platform as _platform
from tests.totesys.sql import on_source as _source


@pytest.fixture
def seeded(platform, seeded: str) -> str:
    extract()
    run_once()
    return seeded


def _errored(key: str) -> str:
    """The key in the error zone of the errored file that was `key` in incoming."""
    name = key.rsplit("/", 1)[1]
    return next(i.key for i in get_zone("error").list("database/totesys/") if i.key.endswith(name))


def test_a_transaction_open_past_several_passes_is_read_when_it_commits(seeded: str) -> None:
    """Stamped a year before the mark, committed three passes later: the horizon waits."""
    held = connect(seeded)
    cur = held.cursor()
    cur.execute(
        "UPDATE sales_order SET units_sold = 4242, last_updated = '2020-01-01 00:00:00.5' "
        "WHERE sales_order_id = 11"
    )
    for n in range(3):  # newer rows commit and are taken meanwhile
        _source(
            seeded,
            "UPDATE sales_order SET units_sold = units_sold + 1, "
            "last_updated = (now() AT TIME ZONE 'UTC') WHERE sales_order_id = %s",
            (20 + n,),
        )
        run_once()
    assert _platform("SELECT units_sold FROM totesys.sales_order WHERE sales_order_id = 11") != [
        (4242,)
    ]
    held.commit()
    held.close()
    run_once()
    assert _platform("SELECT units_sold FROM totesys.sales_order WHERE sales_order_id = 11") == [
        (4242,)
    ]
    assert _platform(
        "SELECT count(*) FROM totesys_history.sales_order "
        "WHERE sales_order_id = 11 AND units_sold = 4242"
    ) == [(1,)]


def test_deletes_leave_the_current_state_and_the_history_records_them(seeded: str) -> None:
    order, transaction, payment = _source(
        seeded,
        "SELECT t.sales_order_id, t.transaction_id, p.payment_id FROM transaction t "
        "JOIN payment p USING (transaction_id) WHERE t.sales_order_id IS NOT NULL "
        "ORDER BY 1 LIMIT 1",
    )[0]
    before = _platform("SELECT count(*) FROM totesys_history.sales_order")
    # An order, its transaction and its payment deleted in one commit.
    conn = connect(seeded)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM payment WHERE payment_id = %s", (payment,))
        cur.execute("DELETE FROM transaction WHERE transaction_id = %s", (transaction,))
        cur.execute("DELETE FROM sales_order WHERE sales_order_id = %s", (order,))
    conn.close()
    summary = run_once()
    found = {t.table: t.deleted for t in summary.source("totesys").land.detail.tables}
    assert {table: n for table, n in found.items() if n} == {
        "sales_order": 1,
        "transaction": 1,
        "payment": 1,
    }
    for table, key in (("sales_order", order), ("transaction", transaction), ("payment", payment)):
        assert _platform(
            f"SELECT count(*) FROM totesys.{table} WHERE {table}_id = :k", {"k": key}
        ) == [(0,)]
        recorded = _platform(
            f"SELECT dp__deleted_at IS NOT NULL FROM totesys_history.{table} "
            f"WHERE {table}_id = :k ORDER BY dp__extracted_at",
            {"k": key},
        )
        assert recorded == [(False,), (True,)]
    # Replaying every file landed so far (an operator re-putting the archive) brings
    # nothing back and records nothing twice.
    archive = get_zone("archive")
    landed = [i.key for i in archive.list("database/totesys/sales_order/")]
    assert len(landed) >= 2
    for n, key in enumerate(sorted(landed)):
        again = f"{PREFIX}sales_order/extracted=29991231T000000.000000Z-again{n}.parquet"
        get_zone("incoming").put(again, io.BytesIO(archive.open(key).read()))
    run_once()
    assert _platform(
        "SELECT count(*) FROM totesys.sales_order WHERE sales_order_id = :k", {"k": order}
    ) == [(0,)]
    assert _platform("SELECT count(*) FROM totesys_history.sales_order") == [(before[0][0] + 1,)]
    # A pass with nothing deleted lands nothing.
    assert run_once().source("totesys").land.detail.landed == 0


def test_a_version_sharing_the_millisecond_and_one_stamped_older_both_become_current(
    seeded: str,
) -> None:
    stamp = datetime(2035, 5, 5, 5, 5, 5, 5000)
    _source(
        seeded,
        "UPDATE sales_order SET units_sold = 1, last_updated = %s WHERE sales_order_id = 30",
        (stamp,),
    )
    run_once()
    # Same millisecond, other content: a second version, and the current one.
    _source(seeded, "UPDATE sales_order SET units_sold = 2 WHERE sales_order_id = 30")
    run_once()
    assert _platform("SELECT units_sold FROM totesys.sales_order WHERE sales_order_id = 30") == [
        (2,)
    ]
    # Committed later with an OLDER stamp (its transaction started earlier): current too.
    _source(
        seeded,
        "UPDATE sales_order SET units_sold = 3, last_updated = '2001-01-01' "
        "WHERE sales_order_id = 30",
    )
    run_once()
    assert _platform(
        "SELECT units_sold, last_updated FROM totesys.sales_order WHERE sales_order_id = 30"
    ) == [(3, datetime(2001, 1, 1))]
    assert _platform(
        "SELECT units_sold FROM totesys_history.sales_order WHERE sales_order_id = 30 "
        "AND dp__deleted_at IS NULL ORDER BY dp__extracted_at"
    )[-3:] == [(1,), (2,), (3,)]


def test_microseconds_are_kept(seeded: str) -> None:
    _source(seeded, "ALTER TABLE sales_order ALTER last_updated TYPE timestamp(6)")
    stamp = datetime(2036, 1, 2, 3, 4, 5, 123456)
    _source(seeded, "UPDATE sales_order SET last_updated = %s WHERE sales_order_id = 40", (stamp,))
    run_once()
    assert _platform("SELECT last_updated FROM totesys.sales_order WHERE sales_order_id = 40") == [
        (stamp,)
    ]
    assert _platform(
        "SELECT count(*) FROM totesys_history.sales_order WHERE last_updated = :s", {"s": stamp}
    ) == [(1,)]


def test_one_tables_trouble_stays_that_tables(seeded: str) -> None:
    """Three tables in trouble at once; the eight others extract and load, `run` exits 1,
    each troubled table has its own alert naming it."""
    # 1. A value Parquet's int32 cannot hold (the source widened a column).
    _source(seeded, "ALTER TABLE design ADD COLUMN dp_test int")  # not read: harmless
    _source(seeded, "ALTER TABLE purchase_order ALTER item_quantity TYPE bigint")
    _source(
        seeded,
        "UPDATE purchase_order SET item_quantity = 3000000000, "
        "last_updated = (now() AT TIME ZONE 'UTC') WHERE purchase_order_id = 1",
    )
    # 2. A NULL where the model declares NOT NULL (the source dropped the constraint).
    _source(seeded, "ALTER TABLE staff ALTER email_address DROP NOT NULL")
    _source(seeded, "UPDATE staff SET email_address = NULL WHERE staff_id = 3")
    # 3. A corrupt Parquet file in incoming.
    corrupt = f"{PREFIX}design/extracted=20000101T000000.000000Z.parquet"
    get_zone("incoming").put(corrupt, io.BytesIO(b"PAR1 this is no parquet PAR1"))
    # And changes in the other tables, which must all arrive.
    _source(
        seeded,
        "UPDATE sales_order SET units_sold = 777, "
        "last_updated = (now() AT TIME ZONE 'UTC') WHERE sales_order_id = 50",
    )
    _source(
        seeded,
        "UPDATE payment SET paid = NOT paid, "
        "last_updated = (now() AT TIME ZONE 'UTC') WHERE payment_id = 5",
    )

    result = CliRunner().invoke(cli, ["run", "--no-transform"])

    assert result.exit_code == 1, result.output
    assert "purchase_order: column item_quantity" in result.output
    assert _platform("SELECT units_sold FROM totesys.sales_order WHERE sales_order_id = 50") == [
        (777,)
    ]
    assert _platform("SELECT paid FROM totesys.payment WHERE payment_id = 5") == _source(
        seeded, "SELECT paid FROM payment WHERE payment_id = 5"
    )
    errors = dict(
        _platform(
            "SELECT t.db_table, l.s3_key || ' | ' || coalesce(l.error_column, '-') || ' | ' "
            "|| coalesce(l.error_line::text, '-') || ' | ' || l.error "
            "FROM loads l JOIN source_tables t ON t.id = l.table_id WHERE l.status = 'errored'"
        )
    )
    assert set(errors) == {"design", "staff"}, errors
    assert errors["design"].startswith(corrupt) and "not a Parquet file" in errors["design"]
    key, column, line, message = errors["staff"].split(" | ")
    assert column == "email_address" and "NULL in a NOT NULL column" in message
    body = io.BytesIO(get_zone("error").open(_errored(key)).read())
    assert pq.read_table(body).to_pylist()[int(line) - 1]["staff_id"] == 3
    alerts = {row[0] for row in _platform("SELECT fingerprint FROM alert_events")}
    assert "land:totesys:purchase_order" in alerts
    loads = dict(_platform("SELECT s3_key, id FROM loads WHERE status = 'errored'"))
    assert {f"load:{i}" for i in loads.values()} <= alerts
    # The purchase order's mark did not move: fixed at the source, it is read then.
    _source(seeded, "UPDATE purchase_order SET item_quantity = 3 WHERE purchase_order_id = 1")
    _source(seeded, "ALTER TABLE purchase_order ALTER item_quantity TYPE integer")
    run_once()
    assert _platform(
        "SELECT item_quantity FROM totesys.purchase_order WHERE purchase_order_id = 1"
    ) == [(3,)]


def test_run_exits_1_after_a_failed_extraction_alone(seeded: str) -> None:
    """No load errors, one table's extraction failed: still never exit 0."""
    _source(seeded, "ALTER TABLE sales_order ALTER units_sold TYPE bigint")
    _source(
        seeded,
        "UPDATE sales_order SET units_sold = 5000000000, "
        "last_updated = (now() AT TIME ZONE 'UTC') WHERE sales_order_id = 70",
    )

    result = CliRunner().invoke(cli, ["run", "--no-transform"])

    assert result.exit_code == 1, result.output
    assert "extraction failed: sales_order: column units_sold" in result.output
    assert _platform("SELECT count(*) FROM loads WHERE status = 'errored'") == [(0,)]


def test_a_value_out_of_range_errors_that_tables_load_with_row_and_column(seeded: str) -> None:
    """A file whose units_sold no PostgreSQL integer holds (written by another tool)."""
    from data_platform.batch.totesys import tables as T
    from data_platform.batch.totesys.extract import schema_of

    table = T.BY_NAME["sales_order"]
    schema = schema_of(table)
    wide = schema.set(schema.get_field_index("units_sold"), pa.field("units_sold", pa.int64()))
    rows = [
        dict(zip(table.names, r, strict=True))
        for r in _platform(
            f"SELECT {', '.join(table.names)} FROM totesys.sales_order "
            "ORDER BY sales_order_id LIMIT 2"
        )
    ]
    for row in rows:
        row["dp__extracted_at"] = datetime(2040, 1, 1, tzinfo=UTC)
        row["dp__deleted"] = False
    rows[1]["units_sold"] = 3_000_000_000
    body = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=wide), body)
    key = f"{PREFIX}sales_order/extracted=20400101T000000.000000Z.parquet"
    get_zone("incoming").put(key, io.BytesIO(body.getvalue()))

    summary = run_once()

    assert summary.source("totesys").ingest.errored == 1
    assert _platform(
        "SELECT error_file, error_line, error_column FROM loads WHERE status = 'errored'"
    ) == [(key, 2, "units_sold")]


def test_a_file_of_the_earlier_extraction_still_loads(seeded: str) -> None:
    """Waiting in incoming at the upgrade: the table's columns only, milliseconds."""
    from data_platform.batch.totesys import tables as T

    names = T.BY_NAME["currency"].names
    stored = _platform(
        "SELECT currency_id, currency_code, created_at, last_updated FROM totesys.currency "
        "WHERE currency_id = 1"
    )
    row = dict(zip(names, stored[0], strict=True))
    row |= {"currency_code": "CHF", "last_updated": datetime(2041, 1, 1, 0, 0, 0, 5000)}
    schema = pa.schema(
        [
            ("currency_id", pa.int32()),
            ("currency_code", pa.string()),
            ("created_at", pa.timestamp("ms")),
            ("last_updated", pa.timestamp("ms")),
        ]
    )
    body = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([row], schema=schema), body)
    key = f"{PREFIX}currency/extracted=20410101T000000.000000Z.parquet"
    get_zone("incoming").put(key, io.BytesIO(body.getvalue()))

    assert run_once().source("totesys").ingest.errored == 0
    assert _platform(
        "SELECT currency_code, dp__extracted_at FROM totesys.currency WHERE currency_id = 1"
    ) == [("CHF", datetime(2041, 1, 1, tzinfo=UTC))]


def test_a_source_without_the_horizon_gets_the_overlap(
    seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pg_current_snapshot (not PostgreSQL 13+): rows by last_updated from the newest
    landed minus the overlap; a row stamped within it is read, one stamped earlier is
    not (the documented loss), and each pass warns. The loss is not silent: the pass's
    verification names the key, and `run` exits 1."""
    from data_platform.batch.totesys import extract as extract_module

    monkeypatch.setattr(extract_module, "HORIZON_QUERY", "SELECT no_such_snapshot_function()")
    monkeypatch.setenv("VERIFY_ON_RUN", "totesys")  # the deep check, after the pass
    reset_settings()
    newest = _platform("SELECT max(last_updated) FROM totesys.sales_order")[0][0]
    for key, stamp in ((80, newest), (81, datetime(2000, 1, 1))):
        _source(
            seeded,
            "UPDATE sales_order SET units_sold = 8181, last_updated = %s WHERE sales_order_id = %s",
            (stamp, key),
        )
    result = CliRunner().invoke(cli, ["run", "--no-transform"])
    assert result.exit_code == 1, result.output
    assert "changes are read by last_updated with an overlap of 0:10:00 only" in result.output
    assert "mismatch key_ranges totesys.sales_order" in result.output
    assert "    different [81]" in result.output
    assert _platform("SELECT sales_order_id FROM totesys.sales_order WHERE units_sold = 8181") == [
        (80,)
    ]


def test_a_parquet_file_damaged_past_its_footer_errors_its_load(seeded: str) -> None:
    """A sound footer, a damaged data page: the load errors naming the file."""
    archive = get_zone("archive")
    landed = next(i.key for i in archive.list("database/totesys/design/"))
    body = bytearray(archive.open(landed).read())
    for at in range(8, len(body) // 2):  # the data pages come first, the footer last
        body[at] ^= 0x5A
    key = f"{PREFIX}design/extracted=20420101T000000.000000Z.parquet"
    get_zone("incoming").put(key, io.BytesIO(bytes(body)))

    summary = run_once()

    assert summary.source("totesys").ingest.errored == 1
    ((file, error),) = _platform("SELECT error_file, error FROM loads WHERE status = 'errored'")
    assert file == key and "corrupt Parquet file" in error, error


def test_a_table_gone_from_the_source_fails_alone_with_its_reason(seeded: str) -> None:
    _source(seeded, "ALTER TABLE design RENAME TO design_old")
    _source(
        seeded,
        "UPDATE sales_order SET units_sold = 909, last_updated = (now() AT TIME ZONE 'UTC') "
        "WHERE sales_order_id = 90",
    )
    result = extract()
    failed = {t.table: t.error for t in result.failed}
    assert list(failed) == ["design"] and 'relation "design" does not exist' in failed["design"]
    run_once()
    assert _platform("SELECT units_sold FROM totesys.sales_order WHERE sales_order_id = 90") == [
        (909,)
    ]

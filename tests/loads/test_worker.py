"""The one worker with a source of its own (no Qlik): order, claim, recovery, errors,
retry, replaced files and failures that are not a file's."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest
from sqlalchemy import Connection, insert, select, text, update

from data_platform.db.engine import get_engine
from data_platform.db.models import Load, LoadStatus, SourceTable
from data_platform.errors import DataPlatformError, LoadError
from data_platform.loads.retry import retry_load
from data_platform.loads.scan import record_new_files
from data_platform.loads.source import PendingLoad, TableLoader
from data_platform.loads.worker import TableWorker, ingest
from data_platform.settings import Settings
from data_platform.storage import get_zone
from tests.db.sources import allow_any_source

PREFIX = "fake/items/"


class FakeLoader(TableLoader):
    """Each file holds integers, one per line; a line `boom` fails the load as a bad
    file, `crash` fails it for another reason. Applied files are noted in order."""

    def __init__(self, worker: TableWorker, source: FakeSource) -> None:
        super().__init__(worker)
        self.source = source

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        return sorted(ready, key=lambda load: load.key, reverse=self.source.reverse)

    def apply(self, conn: Connection, load: PendingLoad) -> int:
        status = conn.scalar(select(Load.status).where(Load.id == load.id))
        self.source.claimed.append(status)
        zone, key, expect = self.worker.source_file(load)
        with zone.open(key, expect) as body:
            lines = body.read().decode().split()
        for number, value in enumerate(lines, start=1):
            if value == "boom":
                raise LoadError("not a number", key=load.key, line=number, load_id=load.id)
            if value == "crash":
                raise RuntimeError("the database went away")
            conn.execute(text("INSERT INTO fake_items VALUES (:v)"), {"v": int(value)})
        self.source.applied.append(load.key.removeprefix(PREFIX))
        return len(lines)


class FakeSource:
    name = "fake"

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.claimed: list[str] = []
        self.reverse = False

    def scan(self) -> int:
        engine = get_engine()
        with engine.begin() as conn:
            table = conn.execute(select(SourceTable).where(SourceTable.source == "fake")).one()
            files = list(get_zone("incoming").list(PREFIX))
            return record_new_files(conn, table, files)

    def companions(self, key: str) -> list[str]:
        return []

    def loader(self, worker: TableWorker) -> FakeLoader:
        return FakeLoader(worker, self)


@pytest.fixture
def fake(platform: Settings) -> FakeSource:
    """A stand-in source of the worker's own, not one of the platform's (whose names the
    database checks since revision 0017: lifted in this test's database)."""
    with get_engine().begin() as conn:
        assert allow_any_source(conn)
        conn.execute(text("CREATE TABLE fake_items (v int)"))
        conn.execute(
            insert(SourceTable).values(
                name="fake__items",
                source="fake",
                s3_prefix=PREFIX,
                db_schema="public",
                db_table="fake_items",
            )
        )
    return FakeSource()


def _land(name: str, *values: object) -> None:
    body = "\n".join(str(v) for v in values).encode()
    get_zone("incoming").put(PREFIX + name, io.BytesIO(body))


def _items() -> list[int]:
    with get_engine().connect() as conn:
        return sorted(conn.scalars(text("SELECT v FROM fake_items")))


def _statuses() -> dict[str, str]:
    with get_engine().connect() as conn:
        rows = conn.execute(select(Load.s3_key, Load.status).order_by(Load.id))
        return {key.removeprefix(PREFIX): status for key, status in rows}


def test_loads_apply_in_the_loaders_order_claimed_and_archived(fake: FakeSource) -> None:
    for name, value in (("b", 2), ("a", 1), ("c", 3)):
        _land(name, value)
    assert fake.scan() == 3
    assert fake.scan() == 0  # recorded once
    fake.reverse = True
    result = ingest(fake)
    assert fake.applied == ["c", "b", "a"]
    assert set(fake.claimed) == {"ingesting"}  # applied while claimed
    assert (result.archived, result.rows) == (3, 3)
    assert _statuses() == {"a": "archived", "b": "archived", "c": "archived"}
    assert [i.key for i in get_zone("incoming").list(PREFIX)] == []
    assert len(list(get_zone("archive").list(PREFIX))) == 3
    assert ingest(fake).archived == 0  # again: nothing to do


def test_a_bad_file_is_errored_and_holds_the_table_until_retried(fake: FakeSource) -> None:
    _land("a", 1)
    _land("b", 2, "boom")
    _land("c", 3)
    fake.scan()
    result = ingest(fake)
    assert fake.applied == ["a"] and result.errors == [f"{PREFIX}b: line 2: not a number (load 2)"]
    assert result.blocked_tables == ["fake__items"]
    assert _statuses() == {"a": "archived", "b": "errored", "c": "ready"}
    assert _items() == [1]  # b rolled back whole
    # The fixed file is put back under the same key: the scan holds it for retry.
    _land("b", 2, 20)
    assert fake.scan() == 0
    with get_engine().connect() as conn:
        load_id = conn.scalar(select(Load.id).where(Load.s3_key == PREFIX + "b"))
    assert retry_load(load_id, lambda key: []) == "using the file put back in incoming"
    ingest(fake)
    assert fake.applied == ["a", "b", "c"]
    assert _items() == [1, 2, 3, 20]


def test_a_load_left_ingesting_by_a_dead_worker_is_recovered(fake: FakeSource) -> None:
    _land("a", 1)
    fake.scan()
    with get_engine().begin() as conn:  # what a worker killed mid-apply leaves
        conn.execute(update(Load).values(status=LoadStatus.INGESTING))
    assert ingest(fake).archived == 1
    assert _items() == [1]


def test_a_failure_that_is_not_the_files_leaves_the_load_ready(fake: FakeSource) -> None:
    _land("a", "crash")
    fake.scan()
    with pytest.raises(DataPlatformError, match="the database went away"):
        ingest(fake)
    assert _statuses() == {"a": "ready"}


def test_a_file_replaced_after_the_scan_is_not_read_under_the_old_load(fake: FakeSource) -> None:
    _land("a", 1)
    fake.scan()
    _land("a", 100)  # replaced before the worker came
    result = ingest(fake)
    assert (result.replaced, result.rows, _items()) == (1, 0, [])
    assert fake.scan() == 1  # the new version is a load of its own
    ingest(fake)
    assert _items() == [100]
    assert list(_statuses().values()) == ["archived"]  # one key, two loads: both archived

"""Several COPY streams over one file: records are cut whole, every stream commits or none
does, and a failure in one stops the others."""

from __future__ import annotations

import csv
import io
import random

import pytest
from psycopg2 import sql

from data_platform.db.engine import get_engine
from data_platform.loads import parallel_copy
from data_platform.loads.parallel_copy import ParallelCopyFailed, copy_in_streams, record_chunks


def _records(rng: random.Random, n: int) -> list[list[str]]:
    """Fields with commas, doubled quotes, newlines and empty strings."""
    pieces = ["plain", "with, comma", 'a "quoted" word', "two\nlines", "", "\r\nCRLF", '""']
    return [[str(i), rng.choice(pieces) * rng.randint(1, 3), rng.choice(pieces)] for i in range(n)]


def _csv(records: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows(records)
    return out.getvalue().encode()


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_chunks_end_at_record_ends_and_lose_nothing(block: int) -> None:
    records = _records(random.Random(block), 500)
    data = _csv(records)
    chunks = list(record_chunks(io.BytesIO(data), '"', block=block))
    assert b"".join(chunks) == data
    # Each chunk parses by itself into whole records: together, the file's records.
    parsed = [row for chunk in chunks for row in csv.reader(io.StringIO(chunk.decode()))]
    assert parsed == records
    if block < len(data):
        assert len(chunks) > 1


def test_a_last_record_without_newline_is_the_last_chunk() -> None:
    data = b'1,"a\nb"\n2,"no newline at the end"'
    assert list(record_chunks(io.BytesIO(data), '"', block=4)) == [
        b'1,"a\nb"\n',
        b'2,"no newline at the end"',
    ]


def test_a_record_longer_than_a_block_is_one_chunk() -> None:
    long = b'1,"' + b"x\n" * 100 + b'"\n'
    data = long + b"2,y\n"
    chunks = list(record_chunks(io.BytesIO(data), '"', block=16))
    assert chunks[0].startswith(long) and b"".join(chunks) == data


@pytest.fixture
def target(platform) -> str:
    with get_engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS streams_test")
        conn.exec_driver_sql("CREATE TABLE streams_test (id int PRIMARY KEY, v text)")
    yield "streams_test"
    with get_engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE streams_test")


def _copy(cur, stream) -> int:
    cur.copy_expert(
        sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(sql.Identifier("streams_test")),
        stream,
        size=1 << 16,
    )
    return cur.rowcount


def _count() -> int:
    with get_engine().connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM streams_test").scalar_one()


def test_streams_each_take_chunks_and_commit(target: str) -> None:
    data = b"".join(f"{i},value {i}\n".encode() for i in range(20_000))
    used: set[int] = set()

    def work(cur, stream) -> int:
        cur.execute("SELECT pg_backend_pid()")
        used.add(cur.fetchone()[0])
        return _copy(cur, stream)

    chunks = record_chunks(io.BytesIO(data), '"', block=4096)
    rows = copy_in_streams(get_engine().raw_connection, 3, chunks, work, settings={})
    assert rows == 20_000 == _count()
    assert len(used) == 3  # three backends, one per stream


def test_one_failing_stream_rolls_every_stream_back(target: str) -> None:
    lines = [f"{i},value {i}\n".encode() for i in range(20_000)]
    lines[15_000] = b"not a number,x\n"
    chunks = record_chunks(io.BytesIO(b"".join(lines)), '"', block=4096)
    with pytest.raises(ParallelCopyFailed, match="invalid input syntax for type integer"):
        copy_in_streams(get_engine().raw_connection, 2, chunks, _copy, settings={})
    assert _count() == 0


def test_a_broken_reader_stops_every_stream(target: str) -> None:
    def chunks():
        yield b"1,a\n"
        yield b"2,b\n"
        raise OSError("corrupt gzip data")

    with pytest.raises(ParallelCopyFailed, match="corrupt gzip"):
        copy_in_streams(get_engine().raw_connection, 2, chunks(), _copy, settings={})
    assert _count() == 0


def test_settings_apply_to_each_stream(target: str) -> None:
    seen: list[str] = []

    def work(cur, stream) -> int:
        cur.execute("SELECT current_setting('work_mem'), current_setting('synchronous_commit')")
        seen.append(cur.fetchone())
        return _copy(cur, stream)

    copy_in_streams(
        get_engine().raw_connection, 2, iter([b"1,a\n", b"2,b\n"]), work,
        settings={"work_mem": "8MB"},
    )  # fmt: skip
    assert seen == [("8MB", "off"), ("8MB", "off")]


@pytest.mark.parametrize(
    "data",
    [
        b'1,"never closed\n' + b"2,x\n" * 5000,  # an unbalanced quote
        b"1,a\r" * 5000,  # CR line ends: no newline at all
    ],
    ids=["unbalanced quote", "CR line ends"],
)
def test_no_record_end_within_the_limit_refuses_streams(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel_copy, "MAX_BLOCKS_PER_RECORD", 4)
    with pytest.raises(ParallelCopyFailed, match="no record end"):
        list(record_chunks(io.BytesIO(data), '"', block=64))


def test_line_endings_that_change_refuse_streams() -> None:
    data = b"1,a\r\n" * 50 + b"2,b\n" * 50
    with pytest.raises(ParallelCopyFailed, match="LF and CRLF"):
        list(record_chunks(io.BytesIO(data), '"', block=64))
    same = b"1,a\r\n" * 100
    assert b"".join(record_chunks(io.BytesIO(same), '"', block=64)) == same


def test_an_interrupt_rolls_every_stream_back_and_goes_on(target: str) -> None:
    def chunks():
        yield b"1,a\n"
        yield b"2,b\n"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_in_streams(get_engine().raw_connection, 2, chunks(), _copy, settings={})
    assert _count() == 0


def test_a_stream_that_stops_reading_early_fails(target: str) -> None:
    def work(cur, stream) -> int:
        return 0  # reads nothing

    chunks = (f"{i},x\n".encode() for i in range(100))
    with pytest.raises(ParallelCopyFailed, match="stopped before the end"):
        copy_in_streams(get_engine().raw_connection, 2, chunks, work, settings={})

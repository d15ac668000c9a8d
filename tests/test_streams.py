"""The stream adaptors: chunks as a raw or buffered stream, a file as chunks, a tee."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator

import pytest

from data_platform import streams


def test_a_chunk_reader_returns_at_most_one_chunk_per_read_and_skips_empty_ones() -> None:
    raw = streams.ChunkReader([b"abc", b"", bytearray(b"de"), memoryview(b"f")])
    assert [raw.read(2), raw.read(5), raw.read(5), raw.read(5)] == [b"ab", b"c", b"de", b"f"]
    assert not raw.exhausted
    assert raw.read(5) == b"" and raw.exhausted


def test_a_reader_fills_each_read_until_the_end_and_reads_lines() -> None:
    buffered = streams.reader(iter([b"one\ntw", b"o\nthr", b"ee"]), 4)
    assert buffered.readline() == b"one\n"
    assert buffered.read(5) == b"two\nt"
    assert buffered.read(100) == b"hree" and buffered.read(1) == b""


def test_the_source_is_read_lazily_and_closed_with_the_stream() -> None:
    taken: list[bytes] = []
    closed: list[bool] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"a" * 10, b"b" * 10, b"c" * 10):
            taken.append(chunk)
            yield chunk

    with streams.reader(chunks(), 8, on_close=lambda: closed.append(True)) as stream:
        assert stream.read(12) == b"a" * 10 + b"bb"
        assert len(taken) == 2  # memory holds one chunk, not the body
    assert closed == [True]


def test_an_error_of_the_chunks_is_raised_by_the_read_that_reaches_it() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"fine"
        raise ValueError("broken")

    raw = streams.ChunkReader(chunks())
    assert raw.read(10) == b"fine"
    with pytest.raises(ValueError, match="broken"):
        raw.read(10)


def test_chunks_of_a_file_and_a_tee_that_hashes_them() -> None:
    body = bytes(range(256)) * 100
    digest = hashlib.sha256()
    chunks = list(streams.tee(streams.chunks_of(io.BytesIO(body), 1000), digest.update))
    assert [len(c) for c in chunks] == [1000] * 25 + [600]
    assert b"".join(chunks) == body
    assert digest.hexdigest() == hashlib.sha256(body).hexdigest()


def test_chunks_made_ahead_come_in_order_and_their_error_in_its_place() -> None:
    def chunks() -> Iterator[bytes]:
        yield from (b"a", b"b", b"c")
        raise ValueError("broken")

    got = []
    with pytest.raises(ValueError, match="broken"):
        for chunk in streams.ahead(chunks(), depth=1):
            got.append(chunk)
    assert got == [b"a", b"b", b"c"]


def test_a_consumer_that_stops_early_stops_the_thread_making_chunks() -> None:
    made = []

    def endless() -> Iterator[bytes]:
        n = 0
        while True:
            n += 1
            made.append(n)
            yield b"x"

    ahead = streams.ahead(endless(), depth=2)
    assert next(ahead) == b"x"
    ahead.close()  # joins the thread: it stopped
    assert not [t for t in threading.enumerate() if t.name == "chunks-ahead"]
    assert len(made) <= 4  # at most depth ahead of the one taken, plus the one held

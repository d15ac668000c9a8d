"""One CSV file COPYed over several connections at once, for the loads that are large.

A single COPY keeps one Postgres backend busy parsing and checking every value while the
client mostly waits, so on a machine with several cores a large file loads faster as
several COPY streams, each fed whole records (`record_chunks`) by one reader. Each stream
has its own connection and transaction, so what they write is only visible to the
caller once they commit: they only write into a table no reader sees yet (a new
snapshot's fresh table, `loads.table_swap`), which the caller swaps in or drops.

This is an optimisation with an exact fallback, never a second set of rules: any failure
(a value COPY refuses, a corrupt stream, a lost connection) aborts every stream and
raises `ParallelCopyFailed`, and the caller loads the file again over its one connection,
which reports the error with its CSV record and column as always.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from psycopg2 import sql

log = logging.getLogger(__name__)

BLOCK = 1 << 20  # bytes read from the file per chunk (about; cut at a record's end)
_DEPTH = 2  # chunks waiting per stream: bounds memory at streams * (_DEPTH + 1) blocks
_EOF = b""


class ParallelCopyFailed(Exception):
    """A stream failed: the caller falls back to one COPY, which names the error."""


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


def record_chunks(source: Readable, quote: str, block: int | None = None) -> Iterator[bytes]:
    """The bytes of `source` (CSV records after the header, doubled-quote escaping) in
    chunks that each end at the end of a record.

    A newline ends a record when an even number of quote characters precede it since the
    last record's end: a quoted field (even one holding newlines) opens and closes with
    one quote each, and a quote inside it is doubled. So the cut is found by counting,
    never by parsing. `block`: bytes per read (default BLOCK); a record longer than that
    makes one longer chunk. The last chunk
    holds whatever follows the last record end (a file without a final newline)."""
    mark = quote.encode()
    size = block or BLOCK
    carry = b""
    while True:
        data = source.read(size)
        if not data:
            break
        data = carry + data if carry else data
        cut = _last_record_end(data, mark)
        if cut < 0:
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut]
    if carry:
        yield carry


def _last_record_end(data: bytes, mark: bytes) -> int:
    """The offset just after the last newline of `data` outside quotes, or -1."""
    quotes_before = data.count(mark)  # quotes in data[:end]
    end = len(data)
    while True:
        newline = data.rfind(b"\n", 0, end)
        if newline < 0:
            return -1
        quotes_before -= data.count(mark, newline, end)
        if quotes_before % 2 == 0:
            return newline + 1
        end = newline


class ChunkQueue:
    """`read(n)` for one COPY stream, over the chunks the reader puts into its queue;
    `None` in the queue means the reader stopped: the stream raises, COPY is abandoned."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_DEPTH)
        self._pending = b""
        self._ended = False
        self.failure = None  # as DataFileReader's: the reader's failure is the caller's

    def read(self, size: int = -1) -> bytes:
        if not self._pending and not self._ended:
            chunk = self.queue.get()
            if chunk is None:
                raise ParallelCopyFailed("stopped: another stream failed")
            if chunk == _EOF:
                self._ended = True
            self._pending = chunk
        if size < 0 or size >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data


Work = Callable[[object, ChunkQueue], int]


def copy_in_streams(
    connect: Callable[[], object],
    streams: int,
    chunks: Iterator[bytes],
    work: Work,
    *,
    settings: dict[str, str],
) -> int:
    """Run `work(cursor, stream)` on `streams` connections at once, feeding them the
    `chunks` in turn, then commit all of them. Returns the sum of what `work` returned
    (the rows each stream wrote).

    `connect` opens a DBAPI connection; `settings` are set for each transaction
    (set_config, local). The streams commit with synchronous_commit off: what they write
    matters only once the caller's own transaction, which commits normally, swaps it in.
    Raises ParallelCopyFailed (the first failure as its cause) after rolling every stream
    back; some may have committed already when the commits themselves fail."""
    connections = []
    try:
        for _ in range(streams):
            connections.append(connect())
    except Exception as exc:
        for conn in connections:
            conn.close()
        raise ParallelCopyFailed(f"cannot open {streams} connections: {exc}") from exc
    feeds = [ChunkQueue() for _ in connections]
    results: list[int | None] = [None] * streams
    failures: list[BaseException] = []
    failed = threading.Event()

    def run(index: int) -> None:
        conn = connections[index]
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("SELECT {}").format(
                        sql.SQL(", ").join(
                            sql.SQL("set_config({}, {}, true)").format(
                                sql.Literal(name), sql.Literal(value)
                            )
                            for name, value in {**settings, "synchronous_commit": "off"}.items()
                        )
                    )
                )
                results[index] = work(cur, feeds[index])
        except BaseException as exc:  # reported to the caller's thread
            failures.append(exc)
            failed.set()

    threads = [
        threading.Thread(target=run, args=(i,), name=f"copy-stream-{i}", daemon=True)
        for i in range(streams)
    ]
    for thread in threads:
        thread.start()
    try:
        try:
            for number, chunk in enumerate(chunks):
                if not _put(feeds[number % streams], chunk, failed):
                    break
            else:
                for feed in feeds:
                    _put(feed, _EOF, failed)
        except BaseException as exc:  # the reader broke (a corrupt gzip stream)
            failures.append(exc)
            failed.set()
        if failed.is_set():
            for feed in feeds:
                _stop(feed)
        for thread in threads:
            thread.join()
        if failures:
            raise ParallelCopyFailed(str(failures[0])) from failures[0]
        for conn in connections:
            conn.commit()
        return sum(r or 0 for r in results)
    except BaseException:
        for feed in feeds:
            _stop(feed)
        for thread in threads:
            thread.join()
        for conn in connections:
            try:
                conn.rollback()
            except Exception:  # a lost connection rolls back by itself
                log.debug("rollback of a copy stream failed", exc_info=True)
        raise
    finally:
        for conn in connections:
            conn.close()


def _put(feed: ChunkQueue, chunk: bytes, failed: threading.Event) -> bool:
    """Queue a chunk for a stream, unless a stream has failed meanwhile."""
    while not failed.is_set():
        try:
            feed.queue.put(chunk, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _stop(feed: ChunkQueue) -> None:
    """Make the stream's next read raise, dropping what it had not read yet."""
    while True:
        try:
            feed.queue.put_nowait(None)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                feed.queue.get_nowait()

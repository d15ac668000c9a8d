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

from psycopg2 import sql

# Imported by name: `streams` is copy_in_streams' count of them.
from data_platform.streams import ChunkReader, SupportsRead

log = logging.getLogger(__name__)

BLOCK = 1 << 20  # bytes read from the file per chunk (about; cut at a record's end)
# A record may span at most this many blocks: beyond, the quotes are unbalanced (or the
# lines end in CR alone) and the file takes one stream, which reports what is wrong.
MAX_BLOCKS_PER_RECORD = 16
_DEPTH = 2  # chunks waiting per stream: bounds memory at streams * (_DEPTH + 1) blocks
_EOF = object()  # end of the chunks
_STOP = object()  # another stream failed: abandon the COPY


class ParallelCopyFailed(Exception):
    """A stream failed: the caller falls back to one COPY, which names the error."""


def record_chunks(source: SupportsRead, quote: str, block: int | None = None) -> Iterator[bytes]:
    """The bytes of `source` (CSV records after the header, doubled-quote escaping) in
    chunks that each end at the end of a record.

    A newline ends a record when an even number of quote characters precede it since the
    last record's end: a quoted field (even one holding newlines) opens and closes with
    one quote each, and a quote inside it is doubled. So the cut is found by counting,
    never by parsing, and each byte is counted once. `block`: bytes per read (default
    BLOCK); a record longer than that makes one longer chunk. The last chunk holds
    whatever follows the last record end (a file without a final newline).

    Every chunk's first record must end like the file's first record (LF or CRLF):
    PostgreSQL takes each COPY stream's line ending from its first record and refuses
    any other, so this keeps one stream's rule for the whole file.

    Raises ParallelCopyFailed for a record longer than MAX_BLOCKS_PER_RECORD blocks (of
    at least 4 kB: memory stays bounded) or a chunk whose first record ends otherwise."""
    mark = quote.encode()
    size = block or BLOCK
    pieces: list[bytes] = []  # read since the last cut, holding no record end
    kept = 0  # their length
    odd = False  # an odd number of quotes in them
    crlf: bool | None = None  # the file's line ending, from its first record
    while True:
        data = source.read(size)
        if not data:
            break
        cut = _last_record_end(data, mark, odd)
        if cut < 0:
            pieces.append(data)
            kept += len(data)
            odd ^= data.count(mark) % 2 == 1
            if kept > MAX_BLOCKS_PER_RECORD * max(size, 4096):
                raise ParallelCopyFailed(
                    f"no record end in {kept} bytes: unbalanced quotes or CR line ends"
                )
            continue
        chunk = b"".join([*pieces, data[:cut]]) if pieces else data[:cut]
        rest = data[cut:]
        pieces, kept, odd = (
            ([rest], len(rest), rest.count(mark) % 2 == 1) if rest else ([], 0, False)
        )
        crlf = _check_line_end(chunk, mark, crlf)
        yield chunk
    if pieces:
        yield b"".join(pieces)


def _last_record_end(data: bytes, mark: bytes, odd: bool) -> int:
    """The offset just after the last newline of `data` outside quotes, or -1; `odd`: the
    data follows an odd number of quotes since the last record end."""
    quotes_before = data.count(mark) + odd  # quotes before data[end]
    end = len(data)
    while True:
        newline = data.rfind(b"\n", 0, end)
        if newline < 0:
            return -1
        quotes_before -= data.count(mark, newline, end)
        if quotes_before % 2 == 0:
            return newline + 1
        end = newline


def _check_line_end(chunk: bytes, mark: bytes, crlf: bool | None) -> bool:
    """The line ending of the chunk's first record (True: CRLF), which must be `crlf`
    when that is known. Raises ParallelCopyFailed otherwise."""
    start = 0
    while True:
        newline = chunk.find(b"\n", start)  # found: the chunk ends with a record end
        if chunk.count(mark, 0, newline) % 2 == 0:
            break
        start = newline + 1
    first = newline > 0 and chunk[newline - 1 : newline] == b"\r"
    if crlf is not None and first != crlf:
        raise ParallelCopyFailed("line endings change within the file (LF and CRLF)")
    return first


class ChunkQueue(ChunkReader):
    """`read(n)` for one COPY stream, over the chunks the reader puts into its queue; the
    end marker ends the stream, the stop marker makes it raise (COPY is abandoned)."""

    failure = None  # as DataFileReader's: the reader's failure is the caller's

    def __init__(self) -> None:
        self.queue: queue.Queue[object] = queue.Queue(maxsize=_DEPTH)
        super().__init__(self._taken())

    @property
    def ended(self) -> bool:
        """Has the stream read every chunk and the end?"""
        return self.exhausted

    def _taken(self) -> Iterator[bytes]:
        while (chunk := self.queue.get()) is not _EOF:
            if chunk is _STOP:
                raise ParallelCopyFailed("stopped: another stream failed")
            assert isinstance(chunk, bytes)
            yield chunk


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
    back; when a commit itself fails, the streams before it stay committed. An interrupt
    (KeyboardInterrupt, SystemExit) stops and rolls back every stream, then goes on."""
    connections: list = []
    feeds = [ChunkQueue() for _ in range(streams)]
    results: list[int | None] = [None] * streams
    failures: list[BaseException] = []
    failed = threading.Event()
    threads: list[threading.Thread] = []

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

    try:
        try:
            for _ in range(streams):
                connections.append(connect())
        except Exception as exc:
            raise ParallelCopyFailed(f"cannot open {streams} connections: {exc}") from exc
        for index in range(streams):
            thread = threading.Thread(target=run, args=(index,), name=f"copy-stream-{index}")
            thread.daemon = True
            thread.start()
            threads.append(thread)
        try:
            for number, chunk in enumerate(chunks):
                if not _put(feeds[number % streams], chunk, failed, threads[number % streams]):
                    break
            else:
                for feed, thread in zip(feeds, threads, strict=True):
                    _put(feed, _EOF, failed, thread)
        except Exception as exc:  # the reader broke (a corrupt gzip stream, no record end)
            failures.append(exc)
            failed.set()
        if failed.is_set():
            for feed in feeds:
                _stop(feed)
        for thread in threads:
            thread.join()
        if not failures and not all(feed.ended for feed in feeds):
            failures.append(ParallelCopyFailed("a stream stopped before the end of its chunks"))
        if failures:
            raise ParallelCopyFailed(str(failures[0])) from failures[0]
        try:
            for conn in connections:
                conn.commit()
        except Exception as exc:
            raise ParallelCopyFailed(f"a stream's commit failed: {exc}") from exc
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


def _put(feed: ChunkQueue, item: object, failed: threading.Event, reader: threading.Thread) -> bool:
    """Queue a chunk (or the end) for a stream, unless a stream has failed meanwhile or
    this one has stopped reading."""
    while not failed.is_set():
        try:
            feed.queue.put(item, timeout=0.1)
            return True
        except queue.Full:
            if not reader.is_alive():
                failed.set()
    return False


def _stop(feed: ChunkQueue) -> None:
    """Make the stream's next read raise, dropping what it had not read yet."""
    while True:
        try:
            feed.queue.put_nowait(_STOP)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                feed.queue.get_nowait()

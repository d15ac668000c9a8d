"""Byte streams adapted, without reading them into memory: the few shapes the loaders,
fetchers and COPY need, built on the standard library's `io` classes.

- `ChunkReader`: an iterable of byte chunks as a raw binary stream (`io.RawIOBase`):
  `read(n)` returns up to n bytes (at most one chunk's), b"" at the end. COPY
  (psycopg2's copy_expert) takes one as it is.
- `reader(chunks)`: the same behind an `io.BufferedReader`, for a consumer that needs
  `read(n)` to return exactly n bytes until the end (S3 uploads take a short read for
  the end of a part), `readline` or `peek`.
- `chunks_of(file, size)`: a file-like object (anything with `read(n)`: an open file, a
  botocore StreamingBody) as an iterator of chunks.
- `tee(chunks, write)`: the chunks unchanged, each handed to `write` as it is taken (a
  file's write, a hash's update, a counter).
- `ahead(chunks, depth)`: the chunks made on a thread of their own, up to `depth` ahead
  of their consumer, so that making them (compiled work that releases the GIL: pyarrow
  parsing and writing CSV) overlaps consuming them (a COPY's server parsing them).

Memory stays flat: one chunk pending, plus the buffer of a `reader` (or `depth` chunks
made ahead).
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

BUFFER = 1 << 16  # bytes a `reader` buffers (io.DEFAULT_BUFFER_SIZE is 8 kB)


class SupportsRead(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ChunkReader(io.RawIOBase):
    """A raw, read-only binary stream over `chunks` (bytes-like objects; empty ones are
    skipped). An error raised by the iterator is raised by the read that reached it.
    `on_close` runs once when the stream closes (close the source)."""

    def __init__(
        self, chunks: Iterable[bytes], *, on_close: Callable[[], object] | None = None
    ) -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self._on_close = on_close
        self.exhausted = False  # every chunk read to its end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.exhausted = True
                return 0
            self._pending = memoryview(chunk).cast("B")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            self._on_close()
        super().close()


def reader(
    chunks: Iterable[bytes],
    buffer_size: int = BUFFER,
    *,
    on_close: Callable[[], object] | None = None,
) -> io.BufferedReader:
    """`chunks` as a buffered binary stream: `read(n)` returns n bytes unless the end
    comes first; `readline` and `peek` work. Closing it runs `on_close`."""
    return io.BufferedReader(ChunkReader(chunks, on_close=on_close), buffer_size)


def chunks_of(source: SupportsRead, size: int = BUFFER) -> Iterator[bytes]:
    """The bytes of `source`, read `size` at a time, until it returns b""."""
    while chunk := source.read(size):
        yield chunk


def tee(chunks: Iterable[bytes], write: Callable[[bytes], object]) -> Iterator[bytes]:
    """`chunks` unchanged, each passed to `write` as it is taken from the iterator."""
    for chunk in chunks:
        write(chunk)
        yield chunk


_END = object()  # `ahead`: no more chunks


def ahead(chunks: Iterable[bytes], depth: int = 2) -> Iterator[bytes]:
    """`chunks` in order, each made on a thread of its own up to `depth` chunks before
    the consumer takes it. What the iterator raises is raised here, at its place in the
    order. A consumer that stops early (closes this generator, or drops it) stops the
    thread at its next chunk; nothing is left running."""
    made: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                made.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
        except BaseException as exc:  # raised again in the consumer, in its place
            put(_Raised(exc))
            return
        put(_END)

    thread = threading.Thread(target=make, name="chunks-ahead", daemon=True)
    thread.start()
    try:
        while (item := made.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


class _Raised:
    """What the chunks' iterator raised, queued in its place (`ahead`)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

"""One worker per table at a time: a session advisory lock on a dedicated connection.

The lock lives as long as the connection: a worker that is killed loses its connection and
with it the lock, so another worker can take the table over and find its stale loads.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def _namespace(name: str) -> int:
    """The first key of our advisory locks, one per kind of thing locked, so they never
    collide with each other's ids or with other users' locks."""
    return zlib.crc32(f"data_platform.{name}".encode()) & 0x7FFFFFFF


@contextmanager
def advisory_lock(engine: Engine, kind: str, item_id: int, *, wait: bool = False) -> Iterator[bool]:
    """Yields True with the lock on (`kind`, `item_id`) held, False if another session
    holds it and `wait` is false; with `wait`, blocks until the holder lets go and always
    yields True. A session lock on a connection of its own: released when the block
    ends, or when a killed process loses its connection."""
    params = {"ns": _namespace(kind), "id": item_id}
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if wait:
            conn.execute(text("SELECT pg_advisory_lock(:ns, :id)"), params)
            got = True
        else:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:ns, :id)"), params))
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), params)


def table_lock(engine: Engine, table_id: int):
    """The lock of one source table's worker (see advisory_lock)."""
    return advisory_lock(engine, "table", table_id)

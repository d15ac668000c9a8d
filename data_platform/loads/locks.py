"""One worker per table at a time: a session advisory lock on a dedicated connection.

The lock lives as long as the connection: a worker that is killed loses its connection and
with it the lock, so another worker can take the table over and find its stale loads.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

# Namespace for our advisory locks (first key), so they never collide with other users'.
_NAMESPACE = zlib.crc32(b"data_platform.table") & 0x7FFFFFFF


@contextmanager
def table_lock(engine: Engine, table_id: int) -> Iterator[bool]:
    """Yields True with the lock held, False if another worker holds it (no waiting)."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        got = conn.scalar(
            text("SELECT pg_try_advisory_lock(:ns, :id)"), {"ns": _NAMESPACE, "id": table_id}
        )
        try:
            yield bool(got)
        finally:
            if got:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": _NAMESPACE, "id": table_id}
                )

"""A test's way past the closed set of source names (revision 0017)."""

from __future__ import annotations

from sqlalchemy import Connection, text

# Every core column naming a source has one: ck_<table>_source_name.
_CHECKS = text(
    "SELECT conrelid::regclass::text, conname FROM pg_constraint "
    "WHERE contype = 'c' AND conname LIKE 'ck\\_%\\_source\\_name'"
)


def allow_any_source(conn: Connection) -> list[str]:
    """Drop the source-name checks in this test's own database (a copy of the template,
    dropped after the test), for a test that needs a source the platform does not have: a
    stand-in source, a hostile name the pages must escape. Returns the constraints
    dropped."""
    checks = conn.execute(_CHECKS).all()
    quote = conn.dialect.identifier_preparer.quote
    for table, name in checks:
        conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}"))
    return [name for _, name in checks]

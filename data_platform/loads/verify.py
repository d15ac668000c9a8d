"""Verifications: a table checked against its source, the result kept.

Each source says how its tables are checked (Qlik: against each new snapshot; DMAP: rows
per dataset against its file; totesys: count and hash per key range against the source
database); what they find is a `Verification`, stored in `verifications` by `record`,
newest last. The operations layer (`data_platform.verify`) runs the checks, alerts on a
mismatch and shows the latest result of each (`latest`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from psycopg2 import sql

from data_platform.errors import DataPlatformError

# Differing keys kept per verification: enough to look at, never the whole table.
KEY_LIMIT = 100


class NotCompared(DataPlatformError):
    """A source's check that its settings do not let compare: Kafka's brokers not set, or
    pedestrian counts fetched from another portal than OPEN_DATA_BASE_URL. Not a failure
    (nothing is known to be wrong, nothing is unreachable): `verify` names the source as
    not verified, with this reason, and its exit code does not change."""


Kind = Literal["missing", "extra", "different"]


@dataclass(frozen=True)
class Verification:
    """One check of `subject` (a table, or a table and dataset) of `source`.

    `differing`: how many keys (or datasets) differ; `keys`: the first KEY_LIMIT of them,
    each `{"key": [...], "kind": "missing" | "extra" | "different"}` (missing: in the
    source, not in the table; extra: in the table, not in the source); `expected`,
    `actual`: the rows the source says and the table holds, where the check counts them."""

    source: str
    check: str
    subject: str
    differing: int = 0
    keys: list[dict] = field(default_factory=list)
    expected: int | None = None
    actual: int | None = None
    table_id: int | None = None
    load_id: int | None = None
    detail: str | None = None
    checked_at: datetime | None = None  # set when read back

    @property
    def verdict(self) -> str:
        return "ok" if self.differing == 0 else "mismatch"

    @property
    def fingerprint_subject(self) -> str:
        """What its alert is named after: `<source>:<check>:<subject>`, stable across runs."""
        return f"{self.source}:{self.check}:{self.subject}"

    def line(self) -> str:
        """One line for a terminal or a log: verdict, check, subject and what differs."""
        counts = (
            f", {self.actual} of {self.expected} row(s)"
            if self.expected is not None and self.actual is not None
            else ""
        )
        found = f": {self.differing} differ" if self.differing else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.verdict:<8} {self.check} {self.subject}{counts}{found}{detail}"

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "check": self.check,
            "subject": self.subject,
            "verdict": self.verdict,
            "expected": self.expected,
            "actual": self.actual,
            "differing": self.differing,
            "keys": self.keys,
            "table_id": self.table_id,
            "load_id": self.load_id,
            "detail": self.detail,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
        }


def record(cur, verification: Verification) -> int:
    """Store `verification` over the psycopg2 cursor `cur` (in its transaction: a
    check made inside a load is kept only if the load commits). Returns its id."""
    cur.execute(
        'INSERT INTO verifications (source, "check", subject, table_id, load_id, verdict, '
        "expected, actual, differing, keys, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s) RETURNING id",
        (
            verification.source,
            verification.check,
            verification.subject,
            verification.table_id,
            verification.load_id,
            verification.verdict,
            verification.expected,
            verification.actual,
            verification.differing,
            json.dumps(verification.keys[:KEY_LIMIT], default=str),
            verification.detail,
        ),
    )
    return cur.fetchone()[0]


def latest(cur, source: str | None = None) -> list[Verification]:
    """The newest verification of each (source, check, subject), by source, check and
    subject; only `source`'s when given. None on a database not yet upgraded to revision
    0019 (`status` and the page still show the rest)."""
    cur.execute("SELECT to_regclass('verifications') IS NOT NULL")
    upgraded = cur.fetchone()
    if not (upgraded and upgraded[0]):
        return []
    cur.execute(
        sql.SQL(
            'SELECT DISTINCT ON (source, "check", subject) source, "check", subject, '
            "differing, keys, expected, actual, table_id, load_id, detail, checked_at "
            'FROM verifications {} ORDER BY source, "check", subject, id DESC'
        ).format(sql.SQL("WHERE source = %s" if source else "")),
        (source,) if source else None,
    )
    return [
        Verification(
            source=row[0],
            check=row[1],
            subject=row[2],
            differing=row[3],
            keys=row[4],
            expected=row[5],
            actual=row[6],
            table_id=row[7],
            load_id=row[8],
            detail=row[9],
            checked_at=row[10],
        )
        for row in cur.fetchall()
    ]

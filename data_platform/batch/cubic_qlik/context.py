"""Applying one Qlik file to its current-state table, inside the caller's transaction:
what every step works over (`ApplyContext`), and the names of a change file's headers.

Every file is COPYed into a staging table typed like the target (`staging`: COPY checks
every value and names its line and column), except DATETIME and binary columns, staged
as text and converted exactly by SQL (`qlik_datetime`, migration 0003; `decode(hex)`),
and checked there (`checks`: keys, hex, NUMERIC fit, integer ranges). Then Postgres does
the set operations:

- `full_load`: a full-load part. The first part of a snapshot goes into a fresh table
  swapped in at commit (`new_snapshot`), else the table is emptied by DELETE and loaded
  in place; a later part is upserted (`loads.dispositions.merge_by_key`). The row read
  last wins when a key appears twice.
- `change_apply`: a change file. The final change per key, key renames (a `B` whose `U`
  has another key deletes the old key), sparse updates (`sparse`: a `U` keeps the
  stored values of the columns it left untouched), tombstones for deletes, then one
  upsert (`merge_by_key`) that only overwrites a row with a newer change.

Key columns may be NULL (a unique index as the key): keys are compared NULL-safely in
every step, and a row whose key is NULL in every part is refused.

Every identifier from a file goes through psycopg2.sql.Identifier; values are bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from psycopg2 import sql

from data_platform.batch.cubic_qlik.dfm import Dfm
from data_platform.batch.cubic_qlik.target import TargetTable
from data_platform.errors import LoadError
from data_platform.loads.copy_csv import NOT_NULL

SEQ = "header__change_seq"
OPER = "header__change_oper"
MASK = "header__change_mask"
ORD = "dp__ord"  # record number in the file (1 = first row after the header)
COUNT = "dp__n"  # changes of the key in the file
KEY_NULL = "key column is empty (NULL)"
# Byte orders of a header__change_mask longer than one byte (source_tables.change_mask_order).
LITTLE_ENDIAN = "little_endian"  # a byte array: the first two hex digits are byte 0 (bits 7..0)
BIG_ENDIAN = "big_endian"  # the hex text as one number: its last digit holds bits 3..0
MASK_ORDERS = (LITTLE_ENDIAN, BIG_ENDIAN)


@dataclass(frozen=True)
class History:
    """Where one load writes its table's history: the history table, the snapshot the
    load belongs to (None: a table of changes only) and that snapshot's first change
    sequence (`qlik_change_seq_at(snapshot, false)`)."""

    schema: str
    name: str
    snapshot_id: int | None
    snapshot_start: str | None

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class ApplyResult:
    rows: int  # rows in the file
    upserted: int = 0
    deleted: int = 0


@dataclass(frozen=True)
class ApplyContext:
    """One data file being applied; `key`, `load_id` and `table_name` feed every error
    message.

    `cur` is a DB-API cursor of the load's transaction. `reopen` opens the file again
    from its start: on the error path, to turn a COPY error's physical line into the CSV
    record and column it belongs to, and to read a large new snapshot in several
    streams, each over a connection from `connect`. `mask_order` is the table's pinned
    byte order of header__change_mask (None: decided per file).

    Raises ValueError for a `mask_order` not in MASK_ORDERS."""

    cur: Any
    target: TargetTable
    dfm: Dfm
    key: str
    load_id: int
    table_name: str
    table_id: int
    sparse_updates: bool = True
    reopen: Callable[[], BinaryIO] | None = None
    raw: bool = False  # a table onboarded with --raw: every column text
    removed: frozenset[str] = frozenset()  # columns recorded as removed at the source
    connect: Callable[[], Any] | None = None  # another connection: a large snapshot in streams
    mask_order: str | None = None
    history: History | None = None  # the table's point-in-time history, when it keeps one

    def __post_init__(self) -> None:
        if self.mask_order is not None and self.mask_order not in MASK_ORDERS:
            raise ValueError(
                f"change mask order must be one of {MASK_ORDERS}, got {self.mask_order!r}"
            )

    def error(self, message: str, line: int | None = None, column: str | None = None) -> LoadError:
        return LoadError(
            message,
            key=self.key,
            line=line,
            column=column,
            table=self.table_name,
            load_id=self.load_id,
        )

    def copy_error(
        self, message: str, line: int | None = None, column: str | None = None
    ) -> LoadError:
        """COPY straight into a table refuses a NULL key itself: say it as the staged
        path's key check does."""
        if message == NOT_NULL and column is not None and column.lower() in self.target.key:
            message = KEY_NULL
        return self.error(message, line, column)

    def source_name(self, db_column: str) -> str:
        """The file's name of a table column (its case), for error messages."""
        for c in self.dfm.data_columns:
            if c.name.lower() == db_column:
                return c.name
        return db_column

    @property
    def log_extra(self) -> dict[str, object]:
        return {"table": self.table_name, "load_id": self.load_id}

    @property
    def has_mask(self) -> bool:
        return any(c.name == MASK for c in self.dfm.header_columns)

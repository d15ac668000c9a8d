"""A Qlik table's own settings in `source_tables`: how its change files are read.

- `sparse_updates`: a U leaves untouched columns as they are (README "Sparse updates").
- `change_mask_order`: the byte order of a `header__change_mask` longer than one byte,
  pinned for the table, or None to decide it per file from the before and after images
  (README "The mask's byte order"; `sparse.decide_mask_order`).

A setting applies to the loads that run after it; an errored load needs `retry`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from data_platform.batch.cubic_qlik.context import MASK_ORDERS
from data_platform.db.engine import get_engine
from data_platform.db.models import SourceTable
from data_platform.errors import ConfigError
from data_platform.loads.tables import resolve_tables

# Marks "leave this setting as it is" apart from None (which unpins the mask order).
KEEP = object()


@dataclass(frozen=True)
class TableSettings:
    name: str  # the platform name, e.g. cubic_ods_qlik__edw_sample
    sparse_updates: bool
    change_mask_order: str | None  # None: decided per file


def set_table(
    table: str,
    *,
    sparse_updates: bool | object = KEEP,
    change_mask_order: str | object | None = KEEP,
    engine: Engine | None = None,
) -> TableSettings:
    """Change the settings given (others are kept) of the Qlik table `table` (any of its
    names) and return them all, as stored.

    Raises UnknownTable (exit 2) for no such table, ConfigError (exit 2) for a table of
    another source or an order other than `little_endian`, `big_endian` or None."""
    if change_mask_order is not KEEP and change_mask_order not in (*MASK_ORDERS, None):
        raise ConfigError(
            f"change mask order {change_mask_order!r}: little_endian, big_endian or auto"
        )
    engine = engine or get_engine()
    with engine.begin() as conn:
        (found,) = resolve_tables(conn, [table])
        if found.source != "cubic_qlik":
            raise ConfigError(f"{found.name} is a {found.source} table, not a Qlik one")
        values = {
            name: value
            for name, value in (
                ("sparse_updates", sparse_updates),
                ("change_mask_order", change_mask_order),
            )
            if value is not KEEP
        }
        if values:
            conn.execute(update(SourceTable).where(SourceTable.id == found.id).values(**values))
        row = conn.execute(
            select(
                SourceTable.name, SourceTable.sparse_updates, SourceTable.change_mask_order
            ).where(SourceTable.id == found.id)
        ).one()
    return TableSettings(*row)

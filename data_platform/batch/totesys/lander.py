"""totesys as a landing of the platform (`data_platform.loads.landing`): `totesys
extract` and `data-platform run` extract through it (`extract.extract`). Items: the
tables; one whose extraction fails is a failed item, the others go on in the same
snapshot. The source unreachable fails the landing as a whole (exit code 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.extract import extract
from data_platform.db.engine import get_engine
from data_platform.db.models import SourceName
from data_platform.loads import marks
from data_platform.loads.landing import LandResult
from data_platform.settings import Settings


def in_use(settings: Settings) -> bool:
    """Does `run` extract? When TOTESYS_DATABASE_URL is set or a table was extracted."""
    if settings.totesys_database_url is not None:
        return True
    with get_engine().connect() as conn:
        return marks.last_marked(conn, T.SOURCE) is not None


@dataclass
class TotesysLander:
    """One extraction pass of `tables` (names; None: all eleven)."""

    tables: list[str] | None = None
    source: SourceName = field(default=T.SOURCE, init=False)

    def every(self, settings: Settings) -> float | None:
        """TOTESYS_LAND_EVERY (default 0: every run), once the source is in use."""
        return settings.totesys_land_every if in_use(settings) else None

    def land(self) -> LandResult:
        result = extract(self.tables)
        return LandResult(
            summary=f"{result.landed} file(s) extracted",
            files=[table.key for table in result.tables if table.key],
            items=[table.table for table in result.tables],
            failures={table.table: table.error for table in result.failed if table.error},
            notes=[f"  extraction failed: {t.table}: {t.error}" for t in result.failed],
            detail=result,
        )

    def position(self, mark: dict[str, Any]) -> str:
        # The transaction horizon when the source has one (the real mark), else the newest
        # last_updated landed (the overlap is read back from it).
        if mark.get("horizon") is not None:
            return f"transaction horizon {mark['horizon']}"
        return f"{mark['updated'].replace('T', ' ')} (key {mark['key']})"

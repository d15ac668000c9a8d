"""A small Qlik world per test: write files like Replicate does, land them in the incoming
zone, onboard tables (revisions in a temp dir), run the platform, read the tables back."""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy import table as sa_table

from data_platform.batch.cubic_qlik.onboarding import OnboardResult, onboard_table
from data_platform.db.engine import get_engine
from data_platform.db.models import Load
from data_platform.run import SourceRun, run_once
from data_platform.settings import Settings, get_settings
from data_platform.storage import get_zone
from harness.samples.qlik import Column, write_table_file

PREFIX = "cubic/ods_qlik/"
LINEAGE = ("dp__load_id", "dp__change_seq")


def seq(n: int, stamp: str = "2021120111223344") -> str:
    """A header__change_seq: 16-digit timestamp + 19-digit change number."""
    return f"{stamp}{n:019d}"


@dataclass
class QlikTable:
    world: QlikWorld
    schema: str
    name: str
    columns: list[Column]
    onboarded: OnboardResult | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def db_table(self) -> tuple[str, str]:
        assert self.onboarded
        return self.onboarded.db_schema, self.onboarded.db_table

    def write(
        self,
        rows: Iterable[Sequence[object]],
        *,
        name: str,
        changes: bool,
        gz: bool = True,
        columns: list[Column] | None = None,
        land: bool = True,
        **kwargs,
    ) -> str:
        path = write_table_file(
            self.world.files,
            self.schema,
            self.name,
            columns or self.columns,
            rows,
            name=name,
            changes=changes,
            gz=gz,
            **kwargs,
        )
        key = f"{PREFIX}{path.relative_to(self.world.files).as_posix()}"
        if land:
            self.world.land(path)
        return key

    def full_load(self, rows, part: int = 1, **kwargs) -> str:
        return self.write(rows, name=f"LOAD{part:08d}", changes=False, **kwargs)

    def changes(self, rows, name: str = "20211201-112233444", **kwargs) -> str:
        return self.write(rows, name=name, changes=True, **kwargs)

    def onboard(self, **kwargs) -> OnboardResult:
        self.onboarded = onboard_table(
            self.qualified, apply=True, versions_dir=self.world.versions, **kwargs
        )
        return self.onboarded

    def rows(self) -> list[tuple]:
        schema, table = self.db_table
        with get_engine().connect() as conn:
            result = conn.execute(
                select(text("*")).select_from(sa_table(table, schema=schema)).order_by(text("1"))
            )
            keep = [i for i, k in enumerate(result.keys()) if k not in LINEAGE]
            return [tuple(_plain(row[i]) for i in keep) for row in result]

    def lineage(self) -> list[tuple]:
        schema, table = self.db_table
        with get_engine().connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    select(text("*"))
                    .select_from(sa_table(table, schema=schema))
                    .order_by(text("1"))
                )
            ]


def _plain(value: object) -> object:
    return bytes(value) if isinstance(value, memoryview) else value


class QlikWorld:
    def __init__(self, root: Path) -> None:
        self.files = root / "files" / "cubic" / "ods_qlik"
        self.files.mkdir(parents=True)
        self.versions = root / "versions"
        self.versions.mkdir()
        self.clock_ahead = 0.0  # seconds the files landed from now on are dated ahead

    def later(self, seconds: float = 1.1) -> None:
        """Date the files landed from now on `seconds` later, as if the test slept that
        long (a reload must be newer, to the second, than the snapshot before it), without
        the wait: on the local store `land` sets their modification time. An S3 endpoint
        dates an object itself, by its upload: there it sleeps."""
        if get_settings().uses_s3:
            time.sleep(seconds)
        else:
            self.clock_ahead += seconds

    def table(self, qualified: str, columns: list[Column]) -> QlikTable:
        schema, _, name = qualified.partition(".")
        return QlikTable(self, schema, name, columns)

    def land(self, data_path: Path) -> None:
        """Put a data file and its .dfm into incoming (the .dfm first, as Replicate does)."""
        incoming = get_zone("incoming")
        dfm = data_path.with_name(data_path.name.split(".")[0] + ".dfm")
        for path in (dfm, data_path):
            if path.exists():
                key = f"{PREFIX}{path.relative_to(self.files).as_posix()}"
                incoming.put(key, io.BytesIO(path.read_bytes()))
                if self.clock_ahead:  # see `later`
                    landed = time.time() + self.clock_ahead
                    os.utime(incoming.store.root / incoming.bucket / key, (landed, landed))

    def land_bytes(self, key: str, data: bytes) -> None:
        get_zone("incoming").put(key, io.BytesIO(data))

    def run(self) -> SourceRun:
        """`data-platform run` once; what it did for the Qlik source."""
        return run_once().source("cubic_qlik")

    def loads(self) -> list[tuple[str, str, str | None]]:
        with get_engine().connect() as conn:
            return [
                (key, status, error)
                for key, status, error in conn.execute(
                    select(Load.s3_key, Load.status, Load.error).order_by(Load.id)
                )
            ]

    def load_ids(self) -> dict[str, int]:
        """Each key's newest load id."""
        with get_engine().connect() as conn:
            return dict(conn.execute(select(Load.s3_key, Load.id).order_by(Load.id)).all())

    def statuses(self) -> dict[str, str]:
        return {key: status for key, status, _ in self.loads()}

    def keys(self, zone: str) -> list[str]:
        return [info.key for info in get_zone(zone).list(PREFIX)]

    def filed(self, zone: str) -> list[str]:
        """The incoming keys of the files in the archive or error zone, without the
        folder that keys them by load (`load=N/`) or landing time (`landed=.../`)."""
        return sorted(re.sub(r"/(load=\d+|landed=[0-9T.]+Z)/", "/", key) for key in self.keys(zone))


@pytest.fixture
def qlik(platform: Settings, tmp_path: Path) -> QlikWorld:
    return QlikWorld(tmp_path / "qlik")


SAMPLE_COLUMNS = [
    Column("SAMPLE_ID", "INT4", 10, key_pos=1),
    Column("SAMPLE_NAME", "STRING", 100),
    Column("EDW_INSERTED_DTM", "DATETIME"),
]


@pytest.fixture
def sample(qlik: QlikWorld) -> QlikTable:
    """TEST.SAMPLE onboarded from its first full load (not yet ingested)."""
    table = qlik.table("TEST.SAMPLE", SAMPLE_COLUMNS)
    table.full_load(
        [(1, "one", "2021-12-01 11:20:30.4444444"), (2, "two", "2021-12-01 11:20:30.0000001")]
    )
    table.onboard()
    return table

"""Qlik ingest benchmark: full load and change apply against raw COPY of the same file.

Everything runs on a private embedded Postgres and a local store in a temporary data home,
so the figures never touch the user's platform. Each measured step runs in a fresh
process, whose peak RSS is the memory figure.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from data_platform.batch.cubic_qlik.writer import Column, write_table_file

SCHEMA, TABLE = "BENCH", "FARES"
COLUMNS = [
    Column("FARE_ID", "INT8", key_pos=1),
    Column("DEVICE_ID", "INT4"),
    Column("PRODUCT", "STRING", 40),
    Column("AMOUNT", "NUMERIC", precision=12, scale=2),
    Column("IS_REFUND", "BOOLEAN"),
    Column("TAPPED_AT", "DATETIME"),
    Column("NOTE", "STRING", 100),
]
STAMP = "2021-12-01 11:20:30.1234567"


def full_load_rows(n: int) -> Iterator[tuple]:
    for i in range(1, n + 1):
        yield (i, i % 5000, f"product {i % 97}", f"{i % 10000}.{i % 100:02d}", i % 17 == 0,
               STAMP, None if i % 10 == 0 else f"note, with \"quotes\" {i}")  # fmt: skip


def change_rows(n: int, keys: int, seed: int = 7) -> Iterator[tuple]:
    """I/U/D/B mix over `keys` keys, many repeated; ordered by change sequence."""
    rng = random.Random(seed)
    for i in range(1, n + 1):
        key = rng.randint(1, keys)
        op = rng.choices("IUDB", weights=(25, 45, 10, 20))[0]
        seq = f"2021120112000000{i:019d}"
        if op == "D":
            yield (seq, op, STAMP, key, None, None, None, None, None, None)
        else:
            yield (seq, op, STAMP, key, key % 5000, f"product {i % 97}", f"{i % 1000}.50",
                   False, STAMP, f"change {i}")  # fmt: skip


@dataclass
class Step:
    name: str
    rows: int
    seconds: float
    peak_rss_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(target, args, queue) -> None:
    try:
        queue.put(("ok", target(*args), _peak_rss_mb()))
    except BaseException as exc:  # report, the parent raises
        queue.put(("error", repr(exc), 0.0))


def in_fresh_process(target, *args) -> tuple[object, float]:
    """Run target(*args) in a spawned interpreter; returns (result, its peak RSS in MB)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(target, args, queue))
    process.start()
    status, value, rss = queue.get()
    process.join()
    if status != "ok":
        raise RuntimeError(f"benchmark step failed: {value}")
    return value, rss


def _configure(home: str) -> None:
    for name in list(os.environ):
        if name.startswith(("DATABASE_", "S3_")):
            del os.environ[name]
    os.environ["DATA_PLATFORM_HOME"] = home
    os.environ["LOG_LEVEL"] = "WARNING"
    from data_platform.settings import reset_settings

    reset_settings()


def raw_copy(home: str, data_path: str, table: str) -> float:
    """Baseline: COPY the same gzip stream into an all-text table with no key."""
    _configure(home)
    from psycopg2 import sql

    from data_platform.db.engine import get_engine
    from data_platform.loads.csv_files import CsvDialect, DataFileReader

    raw = get_engine().raw_connection()
    try:
        with open(data_path, "rb") as source, DataFileReader(source, data_path) as reader:
            header = reader.header(CsvDialect())
            with raw.cursor() as cur:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
                cur.execute(
                    sql.SQL("CREATE TABLE {} ({})").format(
                        sql.Identifier(table),
                        sql.SQL(", ").join(
                            sql.SQL("{} text").format(sql.Identifier(c)) for c in header
                        ),
                    )
                )
                raw.commit()
                started = time.perf_counter()
                cur.copy_expert(
                    sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(sql.Identifier(table)),
                    reader,
                    size=1 << 20,
                )
                raw.commit()
                return time.perf_counter() - started
    finally:
        raw.close()


def ingest_all(home: str) -> float:
    """The platform's own path: the ready loads applied, files archived."""
    _configure(home)
    from data_platform.batch.cubic_qlik.source import ingest_qlik as ingest

    started = time.perf_counter()
    result = ingest()
    elapsed = time.perf_counter() - started
    if result.errored or result.archived == 0:
        raise RuntimeError(f"ingest failed: {result.errors}")
    return elapsed


def setup(home: Path, files: Path, versions: Path, rows: int) -> None:
    _configure(str(home))
    from data_platform.batch.cubic_qlik.onboarding import onboard_table
    from data_platform.db import migrations

    migrations.upgrade()
    path = write_table_file(files, SCHEMA, TABLE, COLUMNS, full_load_rows(10), name="LOAD00000000")
    onboard_table(
        f"{SCHEMA}.{TABLE}", dfm_path=path.with_name("LOAD00000000.dfm"), apply=True,
        versions_dir=versions,
    )  # fmt: skip
    path.unlink()


def land(home: Path, path: Path, files: Path) -> None:
    """Copy a generated file and its .dfm into incoming and record it as a load."""
    _configure(str(home))
    from data_platform.batch.cubic_qlik.dfm import dfm_key
    from data_platform.batch.cubic_qlik.scan import scan_incoming
    from data_platform.storage import get_zone

    incoming = get_zone("incoming")
    key = "cubic/ods_qlik/" + path.relative_to(files).as_posix()
    for name, local in ((dfm_key(key), Path(dfm_key(str(path)))), (key, path)):
        with local.open("rb") as body:
            incoming.put(name, body)
    scan_incoming()


def run_qlik_bench(work: Path, rows: int, echo=print) -> dict[str, Step]:
    home, files, versions = work / "home", work / "files", work / "versions"
    for d in (files, versions):
        d.mkdir(parents=True, exist_ok=True)
    in_fresh_process(setup, home, files, versions, rows)
    steps: dict[str, Step] = {}
    sizes = {"full_load": rows, "full_load_2x": 2 * rows}
    for step, n in sizes.items():
        echo(f"generating a {n:,}-row full load ...")
        path = write_table_file(
            files, SCHEMA, TABLE, COLUMNS, full_load_rows(n), name="LOAD00000001"
        )
        seconds, rss = in_fresh_process(raw_copy, str(home), str(path), "raw_copy")
        steps[f"raw_copy_{step}"] = Step(f"raw COPY ({n:,} rows)", n, seconds, rss)
        if step == "full_load":
            # Kept for the Parquet benchmark, which converts the same file.
            keep = work / "parquet_input"
            keep.mkdir(exist_ok=True)
            for name in (path, path.with_name("LOAD00000001.dfm")):
                shutil.copy(name, keep / name.name)
        in_fresh_process(land, home, path, files)
        seconds, rss = in_fresh_process(ingest_all, str(home))
        steps[step] = Step(f"full load ({n:,} rows)", n, seconds, rss)
        echo(f"  {steps[step].rows_per_second:,.0f} rows/s")
    echo(f"generating {rows:,} changes ...")
    path = write_table_file(files, SCHEMA, TABLE, COLUMNS, change_rows(rows, keys=rows // 2),
                            name="20211201-120000000", changes=True)  # fmt: skip
    seconds, rss = in_fresh_process(raw_copy, str(home), str(path), "raw_copy_changes")
    steps["raw_copy_changes"] = Step(f"raw COPY ({rows:,} changes)", rows, seconds, rss)
    in_fresh_process(land, home, path, files)
    seconds, rss = in_fresh_process(ingest_all, str(home))
    steps["changes"] = Step(f"change apply ({rows:,} changes)", rows, seconds, rss)
    return steps

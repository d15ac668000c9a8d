"""Qlik ingest benchmark: full load and change apply against raw COPY of the same file.

Everything runs on a private embedded Postgres and a local store in a temporary data home,
so the figures never touch the user's platform. Each measured step runs in a fresh
process, whose peak RSS is the memory figure.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import random
import re
import resource
import shutil
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.bench.careful import SCHEMA_IN_LOG as CAREFUL_TABLES
from harness.bench.careful import Peer, careful_compare, careful_load, careful_reset
from harness.samples.qlik import Column, write_table_file

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
# The same table without its DATETIME column: a new snapshot is COPYed straight into
# the table it swaps in, no column left to convert.
PLAIN_TABLE = "FARES_NO_DATETIME"
PLAIN_COLUMNS = [c for c in COLUMNS if c.type != "DATETIME"]


def full_load_rows(n: int) -> Iterator[tuple]:
    for i in range(1, n + 1):
        yield (i, i % 5000, f"product {i % 97}", f"{i % 10000}.{i % 100:02d}", i % 17 == 0,
               STAMP, None if i % 10 == 0 else f"note, with \"quotes\" {i}")  # fmt: skip


def plain_rows(n: int) -> Iterator[tuple]:
    for row in full_load_rows(n):
        yield row[:5] + row[6:]


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
    seconds: float  # the median of the repeats
    peak_rss_mb: float
    # Each repeat's speed against the raw COPY runs bracketing it (mean of before and
    # after): raw COPY seconds / step seconds. Empty for the baseline steps themselves.
    ratios: list[float] = field(default_factory=list)
    # Where the step's time went, seconds by kind of work (median repeat's).
    breakdown: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# Statement kinds in the server log, for the breakdown (first words of the statement).
KINDS = (
    ("COPY", "COPY (read + parse + check)"),
    ("INSERT", "insert / upsert"),
    ("DELETE", "delete / tombstones"),
    ("WITH", "delete / tombstones"),
    ("TRUNCATE", "truncate"),
    ("SELECT", "checks and queries"),
    ("UPDATE", "bookkeeping"),
    ("CREATE", "staging"),
    ("ALTER", "staging"),
    ("DROP", "staging"),
)
_DURATION = re.compile(r"duration: ([0-9.]+) ms\s+statement: (\w+)(.*)")


def statement_seconds(log: Path, start: int) -> dict[str, float]:
    """Seconds per kind of statement logged after byte `start` of the server's log."""
    totals: dict[str, float] = {}
    with log.open("rb") as handle:
        handle.seek(start)
        for line in handle.read().decode("utf-8", "replace").splitlines():
            match = _DURATION.search(line)
            if not match:
                continue
            word, rest = match.group(2).upper(), match.group(3).upper()
            kind = next((label for first, label in KINDS if word == first), "other SQL")
            if word == "CREATE" and " AS SELECT" in rest and "WITH NO DATA" not in rest:
                kind = "dedup (last change per key)"
            elif word == "ALTER" and " ADD CONSTRAINT " in rest:
                kind = "key build (new snapshot)"
            elif (word, " RENAME " in rest) == ("ALTER", True) or (
                word == "DROP"
                and "PG_TEMP." not in rest
                and "DP_STAGE_" not in rest
                and CAREFUL_TABLES not in rest  # the careful loader's staging
            ):
                kind = "swap (new snapshot)"
            totals[kind] = totals.get(kind, 0.0) + float(match.group(1)) / 1000
    return totals


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(target, args, queue) -> None:
    try:
        queue.put(("ok", target(*args), _peak_rss_mb()))
    except BaseException as exc:  # report, the parent raises
        queue.put(("error", repr(exc), 0.0))


def in_fresh_process(target, *args) -> tuple[object, float]:
    """Run target(*args) in a spawned interpreter; returns (result, its peak RSS in MB).

    Raises RuntimeError when the step raised, or when the interpreter ended without a
    word (killed, out of memory, a crash): never waits on a child that is gone."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(target, args, queue))
    process.start()
    while True:
        try:
            status, value, rss = queue.get(timeout=1)
            break
        except queue_module.Empty:
            if not process.is_alive() and queue.empty():
                process.join()
                raise RuntimeError(
                    f"benchmark step {target.__name__} ended without a result "
                    f"(exit code {process.exitcode})"
                ) from None
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


def raw_copy(home: str, data_path: str, table: str, delimiter: str = ",") -> float:
    """Baseline: COPY the same gzip stream into an all-text table with no key."""
    _configure(home)
    from psycopg2 import sql

    from data_platform.db.engine import get_engine
    from data_platform.loads.csv_files import CsvDialect, DataFileReader

    raw = get_engine().raw_connection()
    try:
        with open(data_path, "rb") as source, DataFileReader(source, data_path) as reader:
            header = reader.header(CsvDialect(delimiter=delimiter))
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
                    sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, DELIMITER {})").format(
                        sql.Identifier(table), sql.Literal(delimiter)
                    ),
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
    from sqlalchemy import text

    from data_platform.db.engine import get_engine

    # Every statement's duration in the server log: the step-by-step breakdown.
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ALTER SYSTEM SET log_min_duration_statement = 0"))
        conn.execute(text("SELECT pg_reload_conf()"))
    for table, columns, rows_of in ((TABLE, COLUMNS, full_load_rows),
                                    (PLAIN_TABLE, PLAIN_COLUMNS, plain_rows)):  # fmt: skip
        path = write_table_file(files, SCHEMA, table, columns, rows_of(10), name="LOAD00000000")
        onboard_table(
            f"{SCHEMA}.{table}", dfm_path=path.with_name("LOAD00000000.dfm"), apply=True,
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


def _measure(home: Path, path: Path, files: Path, repeats: int, label: str, unit: str,
             rows: int, raw_table: str, peer: Peer, before=None, land_step=None,
             ingest_step=None, delimiter: str = ",") -> tuple[Step, Step, Step]:  # fmt: skip
    """`repeats` times: raw COPY, the platform's ingest of `path`, raw COPY, the careful
    loader's load of `path` into a fresh table (`peer`), raw COPY again, then the
    careful loader's rows checked against the platform's table (after `before()` set the
    platform's table up, unmeasured). The platform's ratios are to the first two
    raw COPY runs, as before the careful loader joined; the careful loader's to the last
    two. `land_step(home, path, files)` puts the file in incoming and records it,
    `ingest_step(home)` times the ingest (Qlik's by default).
    Returns (baseline step, platform step, careful loader step)."""
    land_step = land_step or land
    ingest_step = ingest_step or ingest_all
    log = home / "postgres" / "log"
    raw_times, times, ratios, rss_seen, breakdowns = [], [], [], [], []
    careful_times, careful_ratios, careful_rss, careful_breakdowns = [], [], [], []
    for _ in range(repeats):
        if before is not None:
            before()
        first, _ = in_fresh_process(raw_copy, str(home), str(path), raw_table, delimiter)
        in_fresh_process(land_step, home, path, files)
        seconds, rss, breakdown = _logged(log, ingest_step, str(home))
        second, _ = in_fresh_process(raw_copy, str(home), str(path), raw_table, delimiter)
        in_fresh_process(careful_reset, str(home), str(path), peer)
        careful, rss_careful, breakdown_careful = _logged(
            log, careful_load, str(home), str(path), peer
        )
        third, _ = in_fresh_process(raw_copy, str(home), str(path), raw_table, delimiter)
        in_fresh_process(careful_compare, str(home), peer)  # the same rows as the platform
        raw = (first + second) / 2
        raw_times.append(raw)
        times.append(seconds)
        ratios.append(raw / seconds)
        rss_seen.append(rss)
        breakdowns.append((seconds, breakdown))
        careful_times.append(careful)
        careful_ratios.append((second + third) / 2 / careful)
        careful_rss.append(rss_careful)
        careful_breakdowns.append((careful, breakdown_careful))
    baseline = Step(f"raw COPY ({rows:,} {unit})", rows, statistics.median(raw_times), 0.0)
    step = Step(f"{label} ({rows:,} {unit})", rows, statistics.median(times), max(rss_seen),
                ratios, _closest(breakdowns))  # fmt: skip
    careful_step = Step(
        f"careful loader, {label} ({rows:,} {unit})", rows, statistics.median(careful_times),
        max(careful_rss), careful_ratios, _closest(careful_breakdowns),
    )  # fmt: skip
    return baseline, step, careful_step


def _logged(log: Path, target, *args) -> tuple[float, float, dict[str, float]]:
    """Run the timed step target(*args) in a fresh process: (its seconds, its peak RSS in
    MB, where its time went: seconds by kind of statement in the server's log, and the
    rest outside SQL)."""
    start = log.stat().st_size if log.exists() else 0
    seconds, rss = in_fresh_process(target, *args)
    breakdown = statement_seconds(log, start) if log.exists() else {}
    breakdown["outside SQL (Python, file move, waits)"] = max(
        0.0, seconds - sum(breakdown.values())
    )
    return seconds, rss, breakdown


def _closest(runs: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
    """The breakdown of the run whose seconds are closest to the median run's."""
    median = statistics.median(seconds for seconds, _ in runs)
    return min(runs, key=lambda pair: abs(pair[0] - median))[1]


def _peer(name: str, table: str) -> Peer:
    """The careful loader's take of a full load of the bench's Qlik `table` (key FARE_ID)."""
    from data_platform.batch.cubic_qlik.naming import DB_SCHEMA, db_table_name

    return Peer(name, (DB_SCHEMA, db_table_name(SCHEMA, table)), ("fare_id",), snapshot=True)


def run_qlik_bench(work: Path, rows: int, echo=print, repeats: int = 2) -> dict[str, Step]:
    """Each platform step bracketed by raw COPY runs of the same file, `repeats` times."""
    home, files, versions = work / "home", work / "files", work / "versions"
    for d in (files, versions):
        d.mkdir(parents=True, exist_ok=True)
    in_fresh_process(setup, home, files, versions, rows)
    steps: dict[str, Step] = {}
    sizes = {"full_load": rows, "full_load_2x": 2 * rows}
    full_paths = {}
    for step, n in sizes.items():
        echo(f"generating a {n:,}-row full load ...")
        path = write_table_file(
            files, SCHEMA, TABLE, COLUMNS, full_load_rows(n), name="LOAD00000001"
        )
        if step == "full_load":
            # Kept for the Parquet benchmark, which converts the same file, and to reset
            # the table before each change apply.
            keep = work / "parquet_input"
            keep.mkdir(exist_ok=True)
            for name in (path, path.with_name("LOAD00000001.dfm")):
                shutil.copy(name, keep / name.name)
            full_paths[step] = keep / "LOAD00000001.csv.gz"
        baseline, measured, careful = _measure(
            home, path, files, repeats, "full load", "rows", n, "raw_copy", _peer(step, TABLE)
        )
        steps[f"raw_copy_{step}"], steps[step], steps[f"careful_{step}"] = (
            baseline, measured, careful
        )  # fmt: skip
        echo(f"  {measured.rows_per_second:,.0f} rows/s")
    echo(f"generating a {rows:,}-row full load without the DATETIME column ...")
    path = write_table_file(
        files, SCHEMA, PLAIN_TABLE, PLAIN_COLUMNS, plain_rows(rows), name="LOAD00000001"
    )
    baseline, measured, careful = _measure(
        home, path, files, repeats, "full load, no DATETIME", "rows", rows, "raw_copy_plain",
        _peer("full_load_plain", PLAIN_TABLE),
    )  # fmt: skip
    steps["raw_copy_full_load_plain"], steps["full_load_plain"] = baseline, measured
    steps["careful_full_load_plain"] = careful
    echo(f"generating {rows:,} changes ...")
    path = write_table_file(files, SCHEMA, TABLE, COLUMNS, change_rows(rows, keys=rows // 2),
                            name="20211201-120000000", changes=True)  # fmt: skip
    full = files / f"{SCHEMA}.{TABLE}" / "LOAD00000001.csv.gz"

    def reset() -> None:
        """The 1x full load again (a new snapshot), so every change apply starts alike."""
        shutil.copy(full_paths["full_load"], full)
        shutil.copy(full_paths["full_load"].with_name("LOAD00000001.dfm"),
                    full.with_name("LOAD00000001.dfm"))  # fmt: skip
        time.sleep(1.1)  # a newer LOAD00000001 than the last: a new snapshot
        in_fresh_process(land, home, full, files)
        in_fresh_process(ingest_all, str(home))

    # The careful loader's table starts from the same full load (loaded carefully).
    peer = replace(
        _peer("changes", TABLE), changes=True, snapshot=False, fill=str(full_paths["full_load"])
    )
    baseline, measured, careful = _measure(
        home, path, files, repeats, "change apply", "changes", rows, "raw_copy_changes", peer,
        reset,
    )  # fmt: skip
    steps["raw_copy_changes"], steps["changes"], steps["careful_changes"] = (
        baseline, measured, careful
    )  # fmt: skip
    echo(f"generating a {rows:,}-row DMAP dataset ...")
    from harness.bench.dmap import (
        DATASET_ID,
        DATASET_TYPE,
        dmap_ingest,
        dmap_land,
        dmap_reset,
        dmap_setup,
        write_dataset,
    )

    dataset = write_dataset(files / "dmap", rows)
    in_fresh_process(dmap_setup, home, dataset, versions)
    from data_platform.batch.cubic_dmap import naming as dmap_naming

    # No key: a dataset's rows are replaced by the file's, as the platform does.
    peer = Peer("dmap", (dmap_naming.DB_SCHEMA, DATASET_TYPE),
                partition=(dmap_naming.DATASET_ID_COLUMN, DATASET_ID))  # fmt: skip
    baseline, measured, careful = _measure(
        home, dataset, files, repeats, "DMAP dataset", "rows", rows, "raw_copy_dmap", peer,
        lambda: in_fresh_process(dmap_reset, home), dmap_land, dmap_ingest,
    )  # fmt: skip
    steps["raw_copy_dmap"], steps["dmap"], steps["careful_dmap"] = baseline, measured, careful
    from harness.bench import pedestrian

    counts = rows * 44 // 10  # 4.4M at the default: the size of the city's legacy export
    echo(f"generating {counts:,} hourly pedestrian counts ...")
    export, counts = pedestrian.write_counts(files / "pedestrian", counts)
    from data_platform.batch.melbourne_pedestrian import naming as pedestrian_naming

    counts_table = pedestrian_naming.COUNTS
    peer = Peer("pedestrian", (pedestrian_naming.DB_SCHEMA, counts_table.name),
                counts_table.key, delimiter=";")  # fmt: skip
    baseline, measured, careful = _measure(
        home, export, files, repeats, "pedestrian counts", "rows", counts, "raw_copy_counts",
        peer, lambda: in_fresh_process(pedestrian.pedestrian_reset, home),
        pedestrian.pedestrian_land, pedestrian.pedestrian_ingest, delimiter=";",
    )  # fmt: skip
    steps["raw_copy_pedestrian"], steps["pedestrian"] = baseline, measured
    steps["careful_pedestrian"] = careful
    echo("building the dbt models over them ...")
    seconds, rss = in_fresh_process(pedestrian.pedestrian_transform, str(home))
    steps["transform"] = Step(f"dbt build over {counts:,} counts", counts, seconds, rss)
    return steps

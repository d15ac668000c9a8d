"""What keeping a Qlik table's point-in-time history costs (doc/qlik-history.md): the
bench's full load and change file (harness.bench.qlik), each applied twice without the
table's history, then twice with it (`keep-history`), every apply in a fresh process.
Not part of `make bench`, which it would lengthen by minutes; run it by hand:

    .venv/bin/python -m harness.bench.history [ROWS] [WORK_DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness.bench import qlik as b
from harness.samples.qlik import write_table_file


def _keep_history(home: str, versions: str) -> None:
    b._configure(home)
    from data_platform.batch.cubic_qlik.onboarding import keep_history
    from data_platform.db import migrations

    keep_history(
        f"{b.SCHEMA}.{b.TABLE}",
        apply=True,
        versions_dir=Path(versions),
        config=migrations.alembic_config(extra_version_dirs=[Path(versions)]),
    )


def history_bench(rows: int, work: Path) -> dict[str, list[tuple[float, float]]]:
    """(full load seconds, change apply seconds) of each repeat, without and with the
    table's history, on `rows` rows and `rows` changes."""
    home, files, versions = work / "home", work / "files", work / "versions"
    for folder in (files, versions):
        folder.mkdir(parents=True, exist_ok=True)
    b.in_fresh_process(b.setup, home, files, versions, rows)
    full = write_table_file(
        files, b.SCHEMA, b.TABLE, b.COLUMNS, b.full_load_rows(rows), name="LOAD00000001"
    )
    kept = work / "kept"
    kept.mkdir(exist_ok=True)
    for path in (full, full.with_name("LOAD00000001.dfm")):
        shutil.copy(path, kept / path.name)
    changes = write_table_file(files, b.SCHEMA, b.TABLE, b.COLUMNS,
                               b.change_rows(rows, keys=rows // 2),
                               name="20211201-120000000", changes=True)  # fmt: skip
    found: dict[str, list[tuple[float, float]]] = {}
    for label in ("without history", "with history"):
        if label == "with history":
            b.in_fresh_process(_keep_history, str(home), str(versions))
        for _ in range(2):
            for name in ("LOAD00000001.csv.gz", "LOAD00000001.dfm"):
                shutil.copy(kept / name, full.with_name(name))
            time.sleep(1.1)  # a newer LOAD00000001 than the last: a new snapshot
            b.in_fresh_process(b.land, home, full, files)
            loaded, _ = b.in_fresh_process(b.ingest_all, str(home))
            b.in_fresh_process(b.land, home, changes, files)
            applied, _ = b.in_fresh_process(b.ingest_all, str(home))
            found.setdefault(label, []).append((loaded, applied))
            print(f"{label}: full load {loaded:.2f} s, change apply {applied:.2f} s", flush=True)
    return found


def main(rows: int = 1_000_000, work_dir: Path | None = None) -> None:
    work = work_dir or Path(tempfile.mkdtemp(prefix="dp-bench-history-"))
    try:
        found = history_bench(rows, work)
    finally:
        if work_dir is None:
            from data_platform.db.embedded import stop

            stop(work / "home")
            shutil.rmtree(work, ignore_errors=True)
    plain, kept = found["without history"], found["with history"]
    for index, step in ((0, "full load (a new snapshot)"), (1, "change apply")):
        before = statistics.median(r[index] for r in plain)
        after = statistics.median(r[index] for r in kept)
        print(f"{step}: {before:.2f} s without history, {after:.2f} s with ({after / before:.1f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m harness.bench.history",
        description="What keeping a Qlik table's point-in-time history costs.",
    )
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000, help="rows and changes")
    parser.add_argument("work_dir", nargs="?", type=Path, help="kept; default: a temporary one")
    given = parser.parse_args()
    main(given.rows, given.work_dir)

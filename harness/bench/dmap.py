"""DMAP dataset load benchmark: a dataset's rows replacing its partition, against raw COPY
of the same file (run by `harness.bench.qlik.run_qlik_bench`, same private server)."""

from __future__ import annotations

import csv
import gzip
import time
from pathlib import Path

DATASET_TYPE = "agg_daily_fareprod"
DATASET_ID = f"{DATASET_TYPE}_20220516"
HEADER = [
    "date",
    "service",
    "day_of_week",
    "rider_class_name",
    "fare_product_type",
    "ride_type_name",
    "count",
    "weekend",
]


def write_dataset(directory: Path, rows: int) -> Path:
    """A gzip CSV of `rows` rows shaped like the vendor's agg_daily_fareprod."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{DATASET_ID}.csv.gz"
    with gzip.open(path, "wt", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow(
                ["2022-05-16", f"service {i % 7}", "Monday", f"class {i % 5}",
                 f"product {i % 97}", "Local Bus", i % 30000, i % 2]
            )  # fmt: skip
    return path


def _configure(home: Path) -> None:
    from harness.bench.qlik import _configure as configure

    configure(str(home))


def dmap_setup(home: Path, dataset: Path, versions: Path) -> None:
    """Onboard the type from the dataset's header (a revision in the bench's versions)."""
    _configure(home)
    from data_platform.batch.cubic_dmap.onboarding import onboard_dataset_type

    onboard_dataset_type(DATASET_TYPE, csv_path=dataset, apply=True, versions_dir=versions)


def dmap_reset(home: Path) -> None:
    """No rows for the dataset yet: every measured load is a new dataset's."""
    _configure(home)
    from sqlalchemy import text

    from data_platform.db.engine import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("TRUNCATE cubic_dmap.agg_daily_fareprod"))


def dmap_land(home: Path, path: Path, files: Path) -> None:
    """The dataset into incoming (as `dmap fetch` lands it), recorded by the DMAP scan."""
    _configure(home)
    from data_platform.batch.cubic_dmap.source import scan_dmap
    from data_platform.storage import get_zone

    with path.open("rb") as body:
        get_zone("incoming").put(f"cubic/dmap/{DATASET_TYPE}/{path.name}", body)
    scan_dmap()


def dmap_ingest(home: str) -> float:
    _configure(Path(home))
    from data_platform.batch.cubic_dmap.source import DMAP
    from data_platform.loads.worker import ingest

    started = time.perf_counter()
    result = ingest(DMAP)
    elapsed = time.perf_counter() - started
    if result.errored or result.archived == 0:
        raise RuntimeError(f"DMAP ingest failed: {result.errors}")
    return elapsed

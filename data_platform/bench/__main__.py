"""`make bench`: speed and memory of the platform's paths, as ratios to baselines measured
in the same run. Usage: python -m data_platform.bench [--rows N] [--keep DIR]"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from data_platform.bench.qlik import run_qlik_bench


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m data_platform.bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per file (default 1M)")
    parser.add_argument("--work-dir", type=Path, help="where to put files (default: a temp dir)")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="dp-bench-"))
    try:
        report(run_qlik_bench(work, args.rows))
        report_parquet(work / "parquet_input", work / "parquet")
    finally:
        if args.work_dir is None:
            from data_platform.db.embedded import stop

            stop(work / "home")
            shutil.rmtree(work, ignore_errors=True)


def report(steps) -> None:
    print()
    print(f"{'step':<34} {'rows/s':>12} {'seconds':>9} {'peak RSS MB':>12}")
    for step in steps.values():
        print(f"{step.name:<34} {step.rows_per_second:>12,.0f} {step.seconds:>9.2f} "
              f"{step.peak_rss_mb:>12.0f}")  # fmt: skip
    full = steps["full_load"].rows_per_second / steps["raw_copy_full_load"].rows_per_second
    changes = steps["changes"].rows_per_second / steps["raw_copy_changes"].rows_per_second
    rss_growth = steps["full_load_2x"].peak_rss_mb / steps["full_load"].peak_rss_mb
    print()
    print(f"full load vs raw COPY:     {full:.2f}x   (target >= 0.8x)")
    print(f"change apply vs raw COPY:  {changes:.2f}x   (target >= 0.5x)")
    print(f"peak RSS, 2x rows vs 1x:   {rss_growth:.2f}x   (flat = 1.0; target < 300 MB)")


def report_parquet(source: Path, work: Path) -> None:
    """The Glue job's conversion on local Spark against single-process pyarrow."""
    from data_platform.bench.parquet import bench_parquet

    figures = bench_parquet(source / "LOAD00000001.csv.gz", source / "LOAD00000001.dfm", work)
    rows = int(figures["rows"])
    print()
    print(f"Parquet from the {rows:,}-row full load (typed):")
    print(f"  local Spark (job code, warm): {figures['spark_rows_per_s']:>12,.0f} rows/s "
          f"({figures['spark_seconds']:.2f} s; first run {figures['spark_cold_seconds']:.2f} s, "
          f"session start {figures['spark_startup_seconds']:.2f} s)")  # fmt: skip
    print(f"  pyarrow, one process:         {figures['pyarrow_rows_per_s']:>12,.0f} rows/s "
          f"({figures['pyarrow_seconds']:.2f} s)")  # fmt: skip
    print(f"  Spark time / pyarrow time:    {figures['ratio']:.2f}")


if __name__ == "__main__":
    main()

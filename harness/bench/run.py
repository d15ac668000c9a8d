"""`make bench`: speed and memory of the platform's paths, as ratios to baselines measured
in the same run. Usage: python -m harness bench [--rows N] [--work-dir DIR] [--repeats N]"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from harness.bench import STEPS
from harness.bench.qlik import run_qlik_bench


def run_bench(
    rows: int = 1_000_000,
    work_dir: Path | None = None,
    repeats: int = 2,
    only: tuple[str, ...] = STEPS,
) -> None:
    """Every benchmark of `only` (STEPS: all of them) on files of `rows` rows, printed as
    it goes: the Qlik, DMAP and pedestrian loads (`repeats` bracketed runs each, the
    careful loader's beside them), the sales warehouse, Kafka taps, the Parquet
    conversion (of the loads' full-load file: `parquet` runs the loads too, unreported)
    and the operations page under 200 readers
    at once. Files go to `work_dir` (kept), else to a temporary directory removed at the
    end with its embedded Postgres servers stopped."""
    work = work_dir or Path(tempfile.mkdtemp(prefix="dp-bench-"))
    try:
        if "loads" in only or "parquet" in only:
            steps = run_qlik_bench(work, rows, repeats=repeats)
            if "loads" in only:
                report(steps)
        from harness.bench.qlik import in_fresh_process

        if "warehouse" in only:
            from harness.bench.warehouse import report_warehouse, warehouse_bench

            figures, _ = in_fresh_process(warehouse_bench, str(work / "home"), rows)
            report_warehouse(figures, rows)
        if "kafka" in only:
            from harness.bench.kafka import MOCK_RETAINS, kafka_bench, report_kafka

            # Three partitions of the mock broker, each keeping MOCK_RETAINS records.
            taps, rss = in_fresh_process(
                kafka_bench, str(work / "home"), min(rows, 3 * MOCK_RETAINS)
            )
            report_kafka(taps, rss)
        if "parquet" in only:
            report_parquet(work / "parquet_input", work / "parquet")
        if "web" in only:
            from harness.bench.web import report_web, web_bench

            report_web(web_bench(work / "web"))
    finally:
        if work_dir is None:
            from data_platform.db.embedded import stop

            for home in (work / "home", work / "web"):
                try:
                    stop(home)
                except Exception as exc:  # the other server is still stopped
                    print(f"could not stop the embedded server of {home}: {exc}")
            shutil.rmtree(work, ignore_errors=True)


def report(steps) -> None:
    """Medians, each ratio against the raw COPY runs that bracketed it, the careful
    loader's beside it and the platform's ratio to the careful loader's, and where the
    time went. Absolute figures depend on the machine; the ratios are the targets."""
    print()
    print(f"{'step (median of repeats)':<58} {'rows/s':>12} {'seconds':>9} {'peak RSS MB':>12}")
    for step in steps.values():
        rss = f"{step.peak_rss_mb:>12.0f}" if step.peak_rss_mb else f"{'':>12}"
        print(f"{step.name:<58} {step.rows_per_second:>12,.0f} {step.seconds:>9.2f} {rss}")
    print()
    for key, label, target in (
        ("full_load", "full load", 0.8),
        ("full_load_2x", "full load, 2x rows", 0.8),
        ("full_load_plain", "full load, no DATETIME", 0.8),
        ("changes", "change apply", 0.5),
        # Issue 24's targets for the other sources.
        ("dmap", "DMAP dataset (new)", 0.6),
        ("pedestrian", "pedestrian counts window", 0.6),
    ):
        platform, careful = steps[key].ratios, steps[f"careful_{key}"].ratios
        _ratio_line(f"{label} vs raw COPY:", platform, target)
        _ratio_line("  careful loader vs raw COPY:", careful)
        # Each repeat's two ratios, each to its own brackets: the machine's drift between
        # the two steps cancels.
        versus = [p / c for p, c in zip(platform, careful, strict=True)]
        _ratio_line("  platform / careful:", versus, 1.0)
    rss_growth = steps["full_load_2x"].peak_rss_mb / steps["full_load"].peak_rss_mb
    print(
        f"{'peak RSS, 2x rows vs 1x:':<30} {rss_growth:.2f}x "
        f"({steps['full_load'].peak_rss_mb:.0f} and {steps['full_load_2x'].peak_rss_mb:.0f} MB; "
        "target < 200 MB and flat)"
    )
    for key in ("full_load", "full_load_plain", "changes", "dmap", "pedestrian"):
        _breakdown(steps[key], steps[f"careful_{key}"])


def _ratio_line(label: str, ratios: list[float], target: float | None = None) -> None:
    """`label`, the median of `ratios` (x), their spread and count, and the target."""
    import statistics

    print(
        f"{label:<30} median {statistics.median(ratios):.2f}x, "
        f"spread {min(ratios):.2f}-{max(ratios):.2f}x over {len(ratios)} bracketed "
        f"run(s)" + (f"   (target >= {target}x)" if target else "")
    )


def _breakdown(step, careful) -> None:
    """Seconds by kind of work of the platform's `step` and the careful loader's, side by
    side, the platform's largest first."""
    print()
    # A large new snapshot loads over several connections at once: their statements'
    # seconds add up to more than the step's own.
    print(f"where the time of {step.name} went (seconds, summed over connections):")
    print(f"  {'':<40} {'platform':>8} {'careful':>8}")
    kinds = sorted(step.breakdown, key=lambda kind: -step.breakdown[kind])
    kinds += sorted(set(careful.breakdown) - set(step.breakdown))
    for kind in kinds:
        cells = [f"{b[kind]:>8.2f}" if kind in b else f"{'':>8}" for b in (step.breakdown,
                 careful.breakdown)]  # fmt: skip
        print(f"  {kind:<40} {' '.join(cells)}")


def report_parquet(source: Path, work: Path) -> None:
    """The Glue job's conversion on local Spark against single-process pyarrow."""
    from harness.bench.parquet import bench_parquet

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

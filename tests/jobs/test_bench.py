"""bench_parquet on a tiny file: both conversions run and write the same table."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.bench.parquet import bench_parquet
from tests.jobs.conftest import Col, write_qlik

pytestmark = [pytest.mark.spark, pytest.mark.slow]

COLUMNS = [
    Col("SAMPLE_ID", "INT8", key=1),
    Col("SAMPLE_NAME", "STRING"),
    Col("AMOUNT", "NUMERIC", 12, 2),
    Col("BIG", "UINT8"),
    Col("RATE", "REAL8"),
    Col("ACTIVE", "BOOLEAN"),
    Col("DAY", "DATE"),
    Col("EDW_INSERTED_DTM", "DATETIME"),
    Col("RAW_BYTES", "BYTES"),
]


def test_bench_on_a_tiny_file(spark, tmp_path: Path) -> None:
    body = "".join(
        f'{i},"Sample {i} 🔥",{i}.{i % 100:02d},{i * 1000},{i / 7},{"true" if i % 2 else "0"},'
        f"2021-12-{1 + i % 28:02d},2021-12-01 11:20:30.{i:06d},{i:04x}\n"
        for i in range(1, 51)
    )
    data = write_qlik(
        tmp_path / "in", "EDW.SAMPLE/LOAD00000001.csv.gz", COLUMNS, body + '51,"",,,,,,,\n'
    )
    figures = bench_parquet(data, data.with_name("LOAD00000001.dfm"), tmp_path / "work")

    assert set(figures) == {
        "rows", "spark_startup_seconds", "spark_cold_seconds", "spark_seconds",
        "spark_rows_per_s", "pyarrow_seconds", "pyarrow_rows_per_s", "ratio",
    }  # fmt: skip
    assert figures["rows"] == 51
    assert all(value > 0 for key, value in figures.items() if key != "spark_startup_seconds")
    assert figures["ratio"] == pytest.approx(figures["spark_seconds"] / figures["pyarrow_seconds"])
    (spark_file,) = (tmp_path / "work/spark").rglob("*.parquet")
    spark_table = pq.ParquetFile(spark_file).read()  # the file alone, no partition columns
    arrow_table = pq.read_table(tmp_path / "work/pyarrow/part-00000.parquet")
    assert spark_table.schema.types == arrow_table.schema.types
    assert spark_table.to_pylist() == arrow_table.to_pylist()

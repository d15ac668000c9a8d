"""Streaming a Parquet data file into COPY: its record batches rendered as CSV by pyarrow.

A Parquet file is read from its footer, so the stream from the store is first spooled to
a temporary file (on disk past a few MB: memory stays flat); then each row group is
turned into CSV (no header; NULL as an empty unquoted field, an empty string as `""`)
and handed to COPY through `read(n)`, like `csv_files.DataFileReader`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from data_platform.errors import LoadError
from data_platform.loads.arrow_csv import COPY_DIALECT, csv_bytes
from data_platform.loads.csv_files import ChunkStream

DIALECT = COPY_DIALECT  # what pyarrow's CSV writer produces
_SPOOL = 8 << 20
_BATCH_ROWS = 50_000


class ParquetCsvReader(ChunkStream):
    """`read(n)` of a Parquet file's rows as CSV, for `copy_csv`. `columns` are the
    file's column names, in order. Raises LoadError when the file is not Parquet."""

    def __init__(self, source: BinaryIO, key: str) -> None:
        super().__init__(self._csv_chunks())  # a generator: it reads nothing yet
        self.key = key
        self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115
        with source:
            shutil.copyfileobj(source, self._spool, 1 << 20)
        self._spool.seek(0)
        try:
            self._file = pq.ParquetFile(self._spool)
        except (pa.ArrowInvalid, OSError) as exc:
            self._spool.close()
            raise LoadError(f"not a Parquet file: {exc}", key=key) from exc
        self.columns: list[str] = self._file.schema_arrow.names
        self.rows = self._file.metadata.num_rows

    def _csv_chunks(self) -> Iterator[bytes]:
        try:
            for batch in self._file.iter_batches(batch_size=_BATCH_ROWS):
                yield csv_bytes(batch)
        except (pa.ArrowException, OSError) as exc:
            # A damaged page past a sound footer: COPY sees its read fail and stops; the
            # reason is kept for the LoadError (copy_csv reads `failure`).
            self.failure = LoadError(f"corrupt Parquet file: {exc}", key=self.key)
            raise

    def close(self) -> None:
        self._spool.close()
        super().close()

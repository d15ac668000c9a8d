"""CSV records converted on the client while the file streams, for COPY.

pyarrow's streaming CSV reader parses the records (compiled, on its own threads), every
column as text, so each value reaches COPY exactly as written; the columns a source
converts with rules PostgreSQL's own parse does not follow (a Qlik DATETIME's digits 7-9,
say) are replaced by their converter's typed result, checked value by value in Arrow's
compute kernels; and Arrow's CSV writer turns each batch back into whole records
(`COPY_DIALECT`) that COPY parses and checks like any other file.

This is an optimisation with an exact fallback, never a second set of rules: a value a
converter cannot take, a record pyarrow cannot read (a wrong field count, bytes that are
not UTF-8) raises, and the caller loads the file the exact way, which names the record
and column as always. Memory stays flat: one block of the file (BLOCK bytes) is parsed,
converted and written at a time, per reader thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from data_platform import streams
from data_platform.loads.csv_files import CsvDialect
from data_platform.streams import SupportsRead

BLOCK = 1 << 19  # bytes of the file parsed per batch (see the docstring: memory)
# What Arrow's CSV writer writes: comma, double quote doubled inside quotes, strings
# always quoted, NULL as an empty unquoted field (COPY's CSV default).
COPY_DIALECT = CsvDialect()

_WRITE = pa_csv.WriteOptions(include_header=False)

Converter = Callable[[pa.Array], pa.Array]


class NotConvertible(Exception):
    """A value the converter cannot take for certain: the caller loads the exact way."""


def can_read(dialect: CsvDialect) -> bool:
    """Does pyarrow's reader read `dialect` as COPY does? A doubled quote inside quotes
    and a one-character delimiter and quote (an escape character is COPY's own)."""
    return dialect.escape is None and len(dialect.delimiter) == 1 and len(dialect.quote) == 1


def converted_chunks(
    source: SupportsRead,
    dialect: CsvDialect,
    column_names: Sequence[str],
    converters: Mapping[str, Converter],
    *,
    block: int = BLOCK,
    numbered: bool = False,
) -> Iterator[bytes]:
    """The records left in `source` (its header already read), `column_names` in file
    order, as CSV bytes in `COPY_DIALECT`, one chunk of whole records per parsed block;
    the columns named in `converters` replaced by what their converter returns for
    them (an Arrow array of the same length: typed, or text).

    Every value is read as text: NULL where the dialect's NULL marker stands unquoted,
    the text itself otherwise (quoted empty text stays empty text), as COPY reads it.
    `numbered`: each record ends with one more field, its number in the file (the
    first record after the header is 1), as an identity column would number them.
    Raises NotConvertible (from a converter), pyarrow.ArrowInvalid for a record pyarrow
    cannot read, or what `source.read` raises."""
    if not can_read(dialect):
        raise NotConvertible("the file's CSV dialect is COPY's own")
    names = list(column_names)
    reader = pa_csv.open_csv(
        streams.reader(streams.chunks_of(source)),  # a file object, which pyarrow wants
        read_options=pa_csv.ReadOptions(column_names=names, block_size=block),
        **as_text(dialect, names),
    )
    out_names = [*names, "record_number"] if numbered else names
    first = 1
    for batch in reader:
        columns = [
            converters[name](column) if name in converters else column
            for name, column in zip(names, batch.columns, strict=True)
        ]
        if numbered:
            columns.append(pa.array(range(first, first + batch.num_rows), pa.int64()))
            first += batch.num_rows
        yield csv_bytes(pa.RecordBatch.from_arrays(columns, names=out_names))


def as_text(dialect: CsvDialect, names: Sequence[str]) -> dict[str, Any]:
    """pyarrow's parse and convert options (`parse_options`, `convert_options`) that read
    a file of `dialect` as COPY does, every column of `names` as text: quoted fields may
    hold newlines; NULL only where the NULL marker stands unquoted."""
    return {
        "parse_options": pa_csv.ParseOptions(
            delimiter=dialect.delimiter,
            quote_char=dialect.quote,
            double_quote=dialect.escape is None,
            escape_char=dialect.escape or False,
            newlines_in_values=True,
        ),
        "convert_options": pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            null_values=[dialect.null_value],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    }


def csv_bytes(batch: pa.RecordBatch) -> bytes:
    """`batch` as CSV records in `COPY_DIALECT`, no header: strings quoted, NULL empty
    and unquoted, an empty string `""`, timestamps `YYYY-MM-DD HH:MM:SS.ffffff`."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(batch, sink, _WRITE)
    return sink.getvalue().to_pybytes()

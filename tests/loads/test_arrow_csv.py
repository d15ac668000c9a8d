"""Records through pyarrow's reader and writer (`loads.arrow_csv`) reach COPY as the file
wrote them: every value of every column, NULL and empty text apart, whatever the
dialect; what pyarrow cannot read raises, for the caller to load the exact way."""

from __future__ import annotations

import io

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest
from psycopg2 import sql

from data_platform.loads import arrow_csv
from data_platform.loads.csv_files import CsvDialect

VALUES = [
    ["1", 'a "quoted", value', ""],  # empty text (quoted)
    ["2", None, "line\nbreak"],  # NULL (unquoted empty)
    ["3", "crlf\r\ninside", "ünïcode 🔥"],
    ["4", "  spaces kept  ", "semi;colon"],
    ["5", "\\N", "back\\slash"],
]


def _file(dialect: CsvDialect) -> bytes:
    """VALUES as a producer writes them: quoted text, NULL as an unquoted marker."""
    q, d = dialect.quote, dialect.delimiter

    def field(value: str | None) -> str:
        if value is None:
            return dialect.null_value
        return q + value.replace(q, q + q) + q

    return "".join(d.join(field(v) for v in row) + "\n" for row in VALUES).encode()


def _copy(cur, table: str, data: bytes, dialect: CsvDialect) -> list[tuple]:
    cur.execute(
        sql.SQL("CREATE TEMP TABLE {} (i text, a text, b text)").format(sql.Identifier(table))
    )
    cur.copy_expert(
        sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, DELIMITER {}, QUOTE {}, NULL {})").format(
            sql.Identifier(table),
            sql.Literal(dialect.delimiter),
            sql.Literal(dialect.quote),
            sql.Literal(dialect.null_value),
        ),
        io.BytesIO(data),
    )
    cur.execute(sql.SQL("SELECT * FROM {} ORDER BY i").format(sql.Identifier(table)))
    return cur.fetchall()


@pytest.mark.parametrize(
    "dialect",
    [CsvDialect(), CsvDialect(delimiter=";"), CsvDialect(quote="'", null_value="NULL")],
    ids=["rfc4180", "semicolon", "single-quote-null-marker"],
)
def test_every_value_reaches_copy_as_the_file_wrote_it(db_url: str, dialect: CsvDialect) -> None:
    data = _file(dialect)
    chunks = arrow_csv.converted_chunks(io.BytesIO(data), dialect, ["i", "a", "b"], {}, block=64)
    written = b"".join(chunks)
    with psycopg2.connect(db_url.replace("+psycopg2", "")) as conn, conn.cursor() as cur:
        original = _copy(cur, "original", data, dialect)
        through_arrow = _copy(cur, "through_arrow", written, arrow_csv.COPY_DIALECT)
    assert original == [tuple(row) for row in VALUES]
    assert through_arrow == original


def test_a_converter_replaces_its_column_only() -> None:
    def upper(values: pa.Array) -> pa.Array:
        return pc.utf8_upper(values)

    data = b'"1","x","y"\n'
    out = b"".join(arrow_csv.converted_chunks(io.BytesIO(data), CsvDialect(), "iab", {"a": upper}))
    assert out == b'"1","X","y"\n'


@pytest.mark.parametrize(
    "data", [b'"1","a"\n', b'"1","\xff","b"\n'], ids=["a missing field", "not utf-8"]
)
def test_what_pyarrow_cannot_read_raises(data: bytes) -> None:
    with pytest.raises(pa.ArrowInvalid):
        b"".join(arrow_csv.converted_chunks(io.BytesIO(data), CsvDialect(), "iab", {}))


def test_an_escape_character_is_left_to_copy() -> None:
    with pytest.raises(arrow_csv.NotConvertible):
        next(arrow_csv.converted_chunks(io.BytesIO(b""), CsvDialect(escape="\\"), "i", {}))


def test_records_numbered_in_file_order_across_blocks() -> None:
    """Each record ends with its number in the file, counted on across pyarrow's blocks
    (64 bytes here: several), records holding line breaks counted once."""
    data = b"".join(
        b'"%d","%s"\n' % (i, b"two\nlines" if i % 3 == 0 else b"x" * 20) for i in range(1, 41)
    )
    chunks = list(
        arrow_csv.converted_chunks(
            io.BytesIO(data), CsvDialect(), "ia", {}, block=64, numbered=True
        )
    )
    assert len(chunks) > 1
    table = pa_csv.read_csv(
        io.BytesIO(b"".join(chunks)),
        read_options=pa_csv.ReadOptions(column_names=["i", "a", "n"]),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
    )
    assert table["n"].to_pylist() == list(range(1, 41))
    assert table["i"].to_pylist() == list(range(1, 41))

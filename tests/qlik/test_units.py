"""Focused unit tests: .dfm parsing, key classification, the file reader."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from data_platform.batch.cubic_qlik.dfm import dfm_key, parse_dfm
from data_platform.batch.cubic_qlik.files import (
    FileKind,
    TablePrefixes,
    classify,
    is_snapshot_start,
)
from data_platform.errors import LoadError
from data_platform.loads.csv_files import CsvDialect, DataFileReader
from harness.samples.qlik import Column, dfm_document


def _doc(**overrides) -> dict:
    doc = dfm_document("EDW", "S", [Column("ID", "INT4", key_pos=1), Column("N", "STRING", 5)],
                       changes=True, file_name="x.csv.gz", record_count=3)  # fmt: skip
    doc.update(overrides)
    return doc


def test_parse_dfm_of_a_change_file() -> None:
    dfm = parse_dfm(json.dumps(_doc()))
    assert dfm.qualified_name == "EDW.S" and dfm.is_change_file
    assert [c.name for c in dfm.header_columns][:2] == ["header__change_seq", "header__change_oper"]
    assert [c.name for c in dfm.key_columns] == ["ID"]
    assert dfm.dialect == CsvDialect()
    assert dfm.record_count == 3


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("dataInfo"), "missing or bad field 'dataInfo'"),
        (
            lambda d: d["dataInfo"]["columns"][3].update(type="MONEY"),
            r"unknown column type\(s\) MONEY",
        ),
        (lambda d: d["dataInfo"].update(columns=[]), "no columns"),
        (lambda d: d["formatInfo"].update(format="json"), "unsupported format 'json'"),
        (lambda d: d["formatInfo"]["options"].update(fieldDelimiter=";;"), "one character"),
        (lambda d: d["formatInfo"]["options"].update(recordDelimiter="|"), "recordDelimiter"),
    ],
)
def test_invalid_dfm(mutate, message: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(LoadError, match=message) as info:
        parse_dfm(json.dumps(doc), key="k.dfm")
    assert str(info.value).startswith("k.dfm: ")


def test_dfm_key() -> None:
    assert dfm_key("a/LOAD00000001.csv.gz") == "a/LOAD00000001.dfm"
    assert dfm_key("a/20211201-112233444.csv") == "a/20211201-112233444.dfm"


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("p/EDW.S/LOAD00000001.csv.gz", FileKind.FULL_LOAD),
        ("p/EDW.S/LOAD00000002.csv", FileKind.FULL_LOAD),
        ("p/EDW.S/LOAD00000001.dfm", FileKind.METADATA),
        ("p/EDW.S__ct/20211201-112233444.csv.gz", FileKind.CHANGES),
        ("p/EDW.S__ct/LOAD00000001.csv.gz", FileKind.UNKNOWN),
        ("p/EDW.S/20211201-112233444.csv.gz", FileKind.UNKNOWN),
        ("p/EDW.S/sub/LOAD00000001.csv.gz", FileKind.UNKNOWN),
        ("p/EDW.SX/LOAD00000001.csv.gz", FileKind.UNKNOWN),
    ],
)
def test_classify(key: str, kind: FileKind) -> None:
    assert classify(TablePrefixes("p/EDW.S/"), key) is kind


def test_snapshot_start() -> None:
    assert is_snapshot_start("p/EDW.S/LOAD00000001.csv.gz")
    assert not is_snapshot_start("p/EDW.S/LOAD00000002.csv.gz")


@pytest.mark.parametrize("compress", [True, False])
def test_reader_splits_the_header_and_streams_the_rest(compress: bool) -> None:
    body = b'"A","B,1"\n1,"x\ny"\n2,z\n'
    data = gzip.compress(body) if compress else body
    with DataFileReader(io.BytesIO(data), "k") as reader:
        assert reader.header(CsvDialect()) == ["A", "B,1"]
        rest = b""
        while chunk := reader.read(3):
            rest += chunk
    assert rest == b'1,"x\ny"\n2,z\n'


def test_reader_reports_the_line_of_a_corrupt_gzip() -> None:
    data = gzip.compress(b"A\n" + b"1\n" * 100_000)
    with DataFileReader(io.BytesIO(data[: len(data) // 2]), "k.csv.gz") as reader:
        reader.header(CsvDialect())
        with pytest.raises(LoadError, match=r"^k.csv.gz: corrupt gzip data after line (\d+)"):
            while reader.read(1 << 16):
                pass
    assert reader.failure is not None and reader.newlines > 1


def test_reader_rejects_an_empty_file() -> None:
    with pytest.raises(LoadError, match="k: line 1: empty file"):
        DataFileReader(io.BytesIO(b""), "k").header(CsvDialect())

"""DMAP end to end from files in incoming to rows: onboarding a type, datasets replaced
by their re-issue, errors that name file, line and column, datasets independent."""

from __future__ import annotations

import csv
import gzip
import io
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from data_platform.batch.cubic_dmap.onboarding import onboard_dataset_type
from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.db.models import Load, SourceTable
from data_platform.run import run_once
from data_platform.settings import Settings
from data_platform.storage import get_zone
from tests.conftest import assert_ruff_clean

TYPE = "agg_daily_fareprod"
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


def _gz_csv(rows: list[list[object]], header: list[str] = HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return gzip.compress(buffer.getvalue().encode())


def _land(dataset_id: str, data: bytes) -> str:
    key = f"cubic/dmap/{TYPE}/{dataset_id}.csv.gz"
    get_zone("incoming").put(key, io.BytesIO(data))
    return key


def _row(day: str, count: int, service: str = "bus") -> list[object]:
    return [day, service, "Mon", "adult", "stored value", "tap", count, 0]


def _rows() -> list[tuple]:
    with get_engine().connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT dataset_id, date, service, count FROM cubic_dmap.agg_daily_fareprod "
                    "ORDER BY dataset_id, date, service"
                )
            )
        ]


def _statuses() -> list[tuple[str, str, str | None]]:
    with get_engine().connect() as conn:
        return [
            (key.rsplit("/", 1)[1], status, error)
            for key, status, error in conn.execute(
                select(Load.s3_key, Load.status, Load.error).order_by(Load.id)
            )
        ]


@pytest.fixture
def onboarded(platform: Settings, tmp_path: Path):
    sample = tmp_path / "sample.csv.gz"
    sample.write_bytes(_gz_csv([_row("2022-05-16", 1)]))
    return onboard_dataset_type(TYPE, csv_path=sample, apply=True, versions_dir=tmp_path / "v")


def test_onboarding_writes_a_reviewed_revision_and_a_typed_commented_table(onboarded) -> None:
    assert onboarded.created and onboarded.path.parent.name == "v"
    assert dict(onboarded.columns) == {
        **{c: "TEXT" for c in HEADER[:6]},
        "count": "BIGINT",
        "weekend": "BIGINT",
    }
    with get_engine().connect() as conn:
        cols = conn.execute(
            text(
                "SELECT column_name, data_type, is_nullable, "
                "col_description('cubic_dmap.agg_daily_fareprod'::regclass, ordinal_position) "
                "FROM information_schema.columns WHERE table_schema = 'cubic_dmap' "
                "AND table_name = 'agg_daily_fareprod' ORDER BY ordinal_position"
            )
        ).all()
        registered = conn.execute(
            select(SourceTable.name, SourceTable.source, SourceTable.s3_prefix).where(
                SourceTable.source == "cubic_dmap"
            )
        ).all()
    assert [c[:3] for c in cols] == [
        *((c, "text", "YES") for c in HEADER[:6]),
        ("count", "bigint", "YES"),
        ("weekend", "bigint", "YES"),
        ("dataset_id", "text", "NO"),
        ("dp__load_id", "bigint", "NO"),
    ]
    assert all(c[3] for c in cols)  # every column commented
    assert cols[6][3] == "DMAP agg_daily_fareprod.count (bigint)"
    assert registered == [
        ("cubic_dmap__agg_daily_fareprod", "cubic_dmap", "cubic/dmap/agg_daily_fareprod/")
    ]
    # Ruff-clean and ruff-formatted as written, where it will be committed.
    assert_ruff_clean(onboarded.path, f"migrations/cubic_dmap/{onboarded.path.name}")
    # Again: nothing new.
    again = onboard_dataset_type(TYPE, versions_dir=onboarded.path.parent)
    assert not again.created and again.revision == onboarded.revision


def test_a_reissued_dataset_replaces_its_rows_and_never_doubles(onboarded) -> None:
    _land("agg_daily_fareprod_20220516", _gz_csv([_row("2022-05-16", 10)]))
    _land(
        "agg_daily_fareprod_20220517",
        _gz_csv([_row("2022-05-17", 20), _row("2022-05-17", 2, "rail")]),
    )
    summary = run_once().source("cubic_dmap")
    assert (summary.scan.new_loads, summary.ingest.archived, summary.ingest.rows) == (2, 2, 3)
    assert _rows() == [
        ("agg_daily_fareprod_20220516", "2022-05-16", "bus", 10),
        ("agg_daily_fareprod_20220517", "2022-05-17", "bus", 20),
        ("agg_daily_fareprod_20220517", "2022-05-17", "rail", 2),
    ]
    # The vendor re-issues the 17th (fetch replaces the file under the same key).
    time.sleep(0.01)
    _land("agg_daily_fareprod_20220517", _gz_csv([_row("2022-05-17", 21)]))
    summary = run_once().source("cubic_dmap")
    assert (summary.scan.new_loads, summary.ingest.archived) == (1, 1)
    assert _rows() == [
        ("agg_daily_fareprod_20220516", "2022-05-16", "bus", 10),
        ("agg_daily_fareprod_20220517", "2022-05-17", "bus", 21),
    ]
    # Running again changes nothing; every file is archived under its load.
    summary = run_once().source("cubic_dmap")
    assert (summary.scan.new_loads, summary.ingest.archived) == (0, 0)
    assert [s for _, s, _ in _statuses()] == ["archived"] * 3
    archived = [i.key for i in get_zone("archive").list("cubic/dmap/")]
    assert len(archived) == 3 and all("/load=" in key for key in archived)
    assert [i.key for i in get_zone("incoming").list("cubic/dmap/")] == []


def test_a_bad_value_names_file_line_and_column_and_other_datasets_go_on(onboarded) -> None:
    _land(
        "agg_daily_fareprod_20220516", _gz_csv([_row("2022-05-16", 1), _row("2022-05-16", "many")])
    )
    _land("agg_daily_fareprod_20220517", _gz_csv([_row("2022-05-17", 2)]))
    summary = run_once().source("cubic_dmap")
    assert (summary.ingest.archived, summary.ingest.errored) == (1, 1)
    assert _statuses()[0] == (
        "agg_daily_fareprod_20220516.csv.gz",
        "errored",
        "cubic/dmap/agg_daily_fareprod/agg_daily_fareprod_20220516.csv.gz: line 3, column count: "
        'invalid input syntax for type bigint: "many" '
        "(table cubic_dmap__agg_daily_fareprod, load 1)",
    )
    # The whole dataset rolled back; the other one loaded.
    assert _rows() == [("agg_daily_fareprod_20220517", "2022-05-17", "bus", 2)]
    # The fixed file put back, the load retried (the command for any source), applied.
    _land("agg_daily_fareprod_20220516", _gz_csv([_row("2022-05-16", 1), _row("2022-05-16", 3)]))
    assert run_once().source("cubic_dmap").scan.new_loads == 0  # held for the retry
    result = CliRunner().invoke(cli, ["retry", "1"])
    assert (result.exit_code, result.stdout) == (
        0,
        "load 1 is ready again (using the file put back in incoming)\n",
    )
    run_once()
    assert [s for _, s, _ in _statuses()] == ["archived", "archived"]
    assert [r[3] for r in _rows()] == [1, 3, 2]


def test_a_type_that_gains_columns_waits_then_evolves_by_one_command(
    onboarded, tmp_path: Path
) -> None:
    key = _land(
        "agg_daily_fareprod_20220516",
        _gz_csv([[*_row("2022-05-16", 1), "x", 5]], [*HEADER, "Zone Name", "count_2"]),
    )
    _land("agg_daily_fareprod_20220517", _gz_csv([_row("2022-05-17", 2)]))
    summary = run_once().source("cubic_dmap")
    assert (summary.ingest.errored, summary.ingest.archived) == (1, 1)  # the other goes on
    error = next(e for k, _, e in _statuses() if k.endswith("20220516.csv.gz"))
    assert error == (
        f"{key}: line 1: schema change: DMAP agg_daily_fareprod differs from table "
        "cubic_dmap.agg_daily_fareprod: Zone Name is new; count_2 is new; nothing was loaded. "
        "Resolve it by a reviewed revision: data-platform dmap evolve-type --type "
        "agg_daily_fareprod --apply (table cubic_dmap__agg_daily_fareprod, load 1)"
    )
    assert _rows() == [("agg_daily_fareprod_20220517", "2022-05-17", "bus", 2)]
    versions = tmp_path / "v"
    out = CliRunner().invoke(
        cli,
        ["dmap", "evolve-type", "--type", TYPE, "--apply", "--versions-dir", str(versions)],
    )
    assert out.exit_code == 0, out.output
    assert "added: zone_name (text) is new" in out.output
    assert "re-queued load(s) 1" in out.output
    (revision,) = versions.glob("*_evolve_dmap_agg_daily_fareprod.py")
    assert_ruff_clean(revision, f"migrations/cubic_dmap/{revision.name}")
    run_once()
    assert {status for _, status, _ in _statuses()} == {"archived"}
    with get_engine().connect() as conn:
        assert conn.execute(
            text(
                "SELECT zone_name, count_2 FROM cubic_dmap.agg_daily_fareprod "
                "WHERE dataset_id = 'agg_daily_fareprod_20220516'"
            )
        ).all() == [("x", "5")]
        comment = conn.scalar(
            text("SELECT col_description('cubic_dmap.agg_daily_fareprod'::regclass, 11)")
        )
    assert comment == "DMAP agg_daily_fareprod.zone_name (text), added later."
    out = CliRunner().invoke(cli, ["dmap", "evolve-type", "--type", TYPE])
    assert out.exit_code == 1 and "nothing to evolve" in out.output


def test_files_that_are_not_datasets_are_left_alone(onboarded) -> None:
    incoming = get_zone("incoming")
    incoming.put(f"cubic/dmap/{TYPE}/notes.txt", io.BytesIO(b"x"))
    incoming.put(f"cubic/dmap/{TYPE}/old/agg_daily_fareprod_20200101.csv.gz", io.BytesIO(b"x"))
    assert run_once().source("cubic_dmap").scan.new_loads == 0
    assert len(list(incoming.list("cubic/dmap/"))) == 2

"""process-new-table: a revision that creates the typed table and registers it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from data_platform.cli.main import cli
from data_platform.db import migrations
from data_platform.db.engine import get_engine
from data_platform.settings import Settings
from harness.samples.qlik import Column, dfm_document
from tests.qlik.conftest import QlikWorld


def _dfm(tmp_path: Path, table: str, columns: list[Column], name: str = "t.dfm") -> Path:
    schema, _, name_ = table.partition(".")
    doc = dfm_document(schema, name_, columns, changes=False, file_name="LOAD00000001.csv.gz",
                       record_count=0)  # fmt: skip
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _invoke(*args: str):
    result = CliRunner().invoke(cli, ["cubic-qlik", "process-new-table", *args])
    return result.exit_code, result.stdout, result.stderr


def test_generated_revision_creates_a_commented_typed_table(
    qlik: QlikWorld, tmp_path: Path
) -> None:
    columns = [Column("ID", "INT8", key_pos=1), Column("AMOUNT", "NUMERIC", precision=9, scale=3),
               Column("WHEN", "DATETIME")]  # fmt: skip
    dfm = _dfm(tmp_path, "EDW.FARE", columns)
    code, out, err = _invoke("--table", "EDW.FARE", "--dfm", str(dfm), "--apply",
                             "--versions-dir", str(qlik.versions))  # fmt: skip
    assert code == 0, err
    assert "creating cubic_ods_qlik.edw_fare" in out and "database upgraded to head" in out
    revision = next(qlik.versions.glob("*_onboard_edw_fare.py")).read_text()
    assert 'SOURCE_TABLE = "EDW.FARE"' in revision
    with get_engine().connect() as conn:
        cols = conn.execute(
            text(
                "SELECT column_name, data_type, numeric_precision, numeric_scale, "
                "col_description('cubic_ods_qlik.edw_fare'::regclass, ordinal_position) "
                "FROM information_schema.columns WHERE table_schema = 'cubic_ods_qlik' "
                "AND table_name = 'edw_fare' ORDER BY ordinal_position"
            )
        ).all()
        comment = conn.scalar(text("SELECT obj_description('cubic_ods_qlik.edw_fare'::regclass)"))
        registered = conn.execute(
            text(
                "SELECT name, source, s3_prefix, db_schema, db_table, is_raw, is_active "
                "FROM source_tables WHERE name = 'cubic_ods_qlik__edw_fare'"
            )
        ).one()
    assert [c[:4] for c in cols] == [
        ("id", "bigint", 64, 0),
        ("amount", "numeric", 9, 3),
        ("when", "timestamp without time zone", None, None),
        ("dp__load_id", "bigint", 64, 0),
        ("dp__change_seq", "character varying", None, None),
    ]
    # Every column says where it comes from: the source column and its declared type, or
    # what the platform keeps in it.
    assert [c[4] for c in cols] == [
        "EDW.FARE.ID (INT8)",
        "EDW.FARE.AMOUNT (NUMERIC(9,3))",
        "EDW.FARE.WHEN (DATETIME)",
        "Lineage: the load (loads.id) that last wrote this row.",
        "Lineage: header__change_seq of the change that last wrote this row; "
        "NULL when it comes from a full load.",
    ]
    assert comment == (
        "Current state of Qlik Replicate source table EDW.FARE (snapshot plus changes). "
        "Files: cubic/ods_qlik/EDW.FARE/"
    )
    assert tuple(registered) == (
        "cubic_ods_qlik__edw_fare", "cubic_qlik", "cubic/ods_qlik/EDW.FARE/",
        "cubic_ods_qlik", "edw_fare", False, True,
    )  # fmt: skip


def test_running_again_changes_nothing_and_says_so(qlik: QlikWorld, tmp_path: Path) -> None:
    dfm = _dfm(tmp_path, "EDW.AGAIN", [Column("ID", "INT4", key_pos=1)])
    args = ("--table", "EDW.AGAIN", "--dfm", str(dfm), "--versions-dir", str(qlik.versions))
    assert _invoke(*args)[0] == 0
    before = sorted(p.name for p in qlik.versions.iterdir())
    code, out, _ = _invoke(*args, "--apply")
    assert code == 0
    assert "EDW.AGAIN is onboarded already (revision" in out and "nothing written" in out
    assert sorted(p.name for p in qlik.versions.iterdir()) == before


def test_reads_the_dfm_from_the_first_full_load_in_incoming(qlik: QlikWorld) -> None:
    table = qlik.table("EDW.LANDED", [Column("ID", "INT4", key_pos=1), Column("X", "REAL8")])
    table.full_load([(1, 1.5)])
    table.full_load([(2, 2.5)], part=2)
    result = table.onboard()
    assert result.created and result.db_table == "edw_landed"
    assert "from cubic/ods_qlik/EDW.LANDED/LOAD00000001.dfm." in result.path.read_text()


def test_table_without_key_is_refused_unless_key_given(qlik: QlikWorld, tmp_path: Path) -> None:
    dfm = _dfm(tmp_path, "EDW.NOKEY", [Column("A", "INT4"), Column("B", "INT4")])
    base = ("--table", "EDW.NOKEY", "--dfm", str(dfm), "--versions-dir", str(qlik.versions))
    code, _, err = _invoke(*base)
    assert code == 1
    assert err == (
        "Error: EDW.NOKEY has no primary key columns (primaryKeyPos) in its .dfm: pass "
        "--key COL[,COL...] to name the columns that identify a row\n"
    )
    assert list(qlik.versions.iterdir()) == []
    code, _, err = _invoke(*base, "--key", "b,A", "--apply")
    assert code == 0, err
    with get_engine().connect() as conn:
        key = conn.scalars(
            text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = 'cubic_ods_qlik.edw_nokey'::regclass AND i.indisunique "
                "AND i.indnullsnotdistinct"
            )
        ).all()
    # A composite key may have NULL parts: a unique NULLS NOT DISTINCT key, not a PK.
    assert sorted(key) == ["a", "b"]


def test_unknown_key_column_is_refused(qlik: QlikWorld, tmp_path: Path) -> None:
    dfm = _dfm(tmp_path, "EDW.K", [Column("A", "INT4")])
    code, _, err = _invoke("--table", "EDW.K", "--dfm", str(dfm), "--key", "nope",
                           "--versions-dir", str(qlik.versions))  # fmt: skip
    assert (code, err) == (1, "Error: --key names unknown column(s): nope\n")


def test_two_sources_mapping_to_one_table_are_refused(qlik: QlikWorld, tmp_path: Path) -> None:
    first = _dfm(tmp_path, "EDW.A_B", [Column("ID", "INT4", key_pos=1)], "1.dfm")
    second = _dfm(tmp_path, "EDW_A.B", [Column("ID", "INT4", key_pos=1)], "2.dfm")
    assert (
        _invoke("--table", "EDW.A_B", "--dfm", str(first), "--versions-dir", str(qlik.versions))[0]
        == 0
    )
    code, _, err = _invoke(
        "--table", "EDW_A.B", "--dfm", str(second), "--versions-dir", str(qlik.versions)
    )
    assert code == 1
    assert err.startswith("Error: EDW_A.B maps to cubic_ods_qlik.edw_a_b, which EDW.A_B (revision ")


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            [Column("ID", "INT4", key_pos=1), Column("id", "INT4")],
            "duplicate column names ID, id",
        ),
        ([Column("ID", "INT4", key_pos=1), Column("DP__LOAD_ID", "INT4")], "reserved for lineage"),
        ([Column("X" * 60, "INT4", key_pos=1)], "longer than 55 bytes"),
    ],
)
def test_bad_column_names_are_refused(
    qlik: QlikWorld, tmp_path: Path, columns: list[Column], message: str
) -> None:
    dfm = _dfm(tmp_path, "EDW.BAD", columns)
    code, _, err = _invoke(
        "--table", "EDW.BAD", "--dfm", str(dfm), "--versions-dir", str(qlik.versions)
    )
    assert code == 1 and message in err


def test_dfm_of_another_table_is_refused(qlik: QlikWorld, tmp_path: Path) -> None:
    dfm = _dfm(tmp_path, "EDW.OTHER", [Column("ID", "INT4", key_pos=1)])
    code, _, err = _invoke(
        "--table", "EDW.MINE", "--dfm", str(dfm), "--versions-dir", str(qlik.versions)
    )
    assert (code, err) == (1, "Error: the .dfm describes EDW.OTHER, not EDW.MINE\n")


def test_no_dfm_in_incoming(qlik: QlikWorld) -> None:
    code, _, err = _invoke("--table", "EDW.NOTHING", "--versions-dir", str(qlik.versions))
    assert code == 1
    assert "no .dfm of a full load (LOADnnnnnnnn.dfm) or of a change file under" in err


def test_revision_downgrades_cleanly(qlik: QlikWorld, platform: Settings, tmp_path: Path) -> None:
    table = qlik.table("EDW.DOWN", [Column("ID", "INT4", key_pos=1)])
    table.full_load([(1,)])
    result = table.onboard()
    config = migrations.alembic_config(extra_version_dirs=[qlik.versions])
    migrations.downgrade("-1", config)
    engine = create_engine(platform.database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('cubic_ods_qlik.edw_down')")) is None
        assert (
            conn.scalar(text("SELECT count(*) FROM source_tables WHERE db_table = 'edw_down'")) == 0
        )
    migrations.upgrade("heads", config)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('cubic_ods_qlik.edw_down')")) is not None
    engine.dispose()
    assert result.revision in migrations.current_revisions(config)


def test_python_m_module(qlik: QlikWorld, platform: Settings, tmp_path: Path) -> None:
    dfm = _dfm(tmp_path, "EDW.MOD", [Column("ID", "INT4", key_pos=1)])
    proc = subprocess.run(
        [sys.executable, "-m", "data_platform.batch.cubic_qlik.process_new_table",
         "--table", "EDW.MOD", "--dfm", str(dfm), "--versions-dir", str(qlik.versions)],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": platform.database_url,
             "DATA_PLATFORM_HOME": str(platform.home)},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "creating cubic_ods_qlik.edw_mod" in proc.stdout


@pytest.mark.parametrize("composite", [False, True])
def test_a_generated_revision_is_ruff_clean_whatever_the_types(
    qlik: QlikWorld, tmp_path: Path, composite: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every Qlik type (a BLOB needs the postgresql dialect, nothing else does), a long
    table and column name, a one-column and a composite key: `ruff check` and
    `ruff format --check` pass on the revision where it is committed, so onboarding one's
    own table keeps `make test` green; written outside the checkout's revision folders,
    the post-write hooks print nothing (long lines are data there too)."""
    from data_platform.batch.cubic_qlik.types import _PG_FIXED
    from tests.conftest import assert_ruff_clean

    long = "A_RATHER_LONG_COLUMN_NAME_THAT_SOURCES_REALLY_USE_X"
    columns = [Column("ID", "INT4", key_pos=1), Column(long, "STRING", 4000)]
    if composite:
        columns.append(Column("PART", "INT8", key_pos=2))
    columns += [Column(f"C_{t}", t) for t in sorted(_PG_FIXED) if t not in ("BYTES", "BLOB")]
    for binary in ([], [Column("C_BLOB", "BLOB")]):
        name = f"EDW.{'C' if composite else 'S'}{len(binary)}_A_TABLE_WITH_A_LONG_NAME"
        dfm = _dfm(tmp_path, name, [*columns, *binary], name=f"{name}.dfm")
        code, _, err = _invoke("--table", name, "--dfm", str(dfm), "--apply",
                               "--versions-dir", str(qlik.versions))  # fmt: skip
        assert code == 0, err
        (path,) = qlik.versions.glob(f"*_onboard_{name.lower().replace('.', '_')}.py")
        assert ("from sqlalchemy.dialects import postgresql" in path.read_text()) == bool(binary)
        assert_ruff_clean(path, f"migrations/cubic_qlik/{path.name}")
    hooks = capfd.readouterr()
    assert "E501" not in hooks.out + hooks.err


def test_source_tables_never_get_generated_keys(qlik: QlikWorld, tmp_path: Path) -> None:
    """An integer key is the source's: no sequence, no identity, no default."""
    for name, keys in (("EDW.ONE_KEY", 1), ("EDW.TWO_KEYS", 2)):
        columns = [Column(f"K{i}", "INT8", key_pos=i) for i in range(1, keys + 1)]
        dfm = _dfm(tmp_path, name, [*columns, Column("V", "INT4")], name=f"{name}.dfm")
        code, _, err = _invoke("--table", name, "--dfm", str(dfm), "--apply",
                               "--versions-dir", str(qlik.versions))  # fmt: skip
        assert code == 0, err
    with get_engine().connect() as conn:
        generated = conn.execute(
            text(
                "SELECT table_name, column_name, column_default, is_identity "
                "FROM information_schema.columns WHERE table_schema = 'cubic_ods_qlik' "
                "AND (column_default IS NOT NULL AND column_name NOT LIKE 'dp\\_\\_%' "
                "OR is_identity = 'YES')"
            )
        ).all()
        sequences = conn.scalar(
            text("SELECT count(*) FROM pg_sequences WHERE schemaname = 'cubic_ods_qlik'")
        )
    assert generated == [] and sequences == 0


def test_an_onboarded_table_is_known_by_any_of_its_names(qlik: QlikWorld, tmp_path: Path) -> None:
    dfm = _dfm(tmp_path, "EDW.NAMED", [Column("ID", "INT4", key_pos=1)])
    code, _, err = _invoke("--table", "EDW.NAMED", "--dfm", str(dfm), "--apply",
                           "--versions-dir", str(qlik.versions))  # fmt: skip
    assert code == 0, err
    for name in ("cubic_ods_qlik.edw_named", "cubic_ods_qlik__edw_named"):
        code, out, err = _invoke("--table", name, "--versions-dir", str(qlik.versions))
        assert code == 0, err
        assert "EDW.NAMED is onboarded already" in out, out
    assert len(list(qlik.versions.glob("*_onboard_edw_named.py"))) == 1

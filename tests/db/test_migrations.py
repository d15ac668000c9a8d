"""Alembic revisions: upgrade, downgrade, upgrade again; no drift from the models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import CheckConstraint, Text, column, create_engine, inspect, table, text
from sqlalchemy.exc import IntegrityError

from data_platform.db import migrations
from data_platform.db.models import SOURCE_NAMES, Base
from tests.demo_world import DemoWorld

REPO = Path(__file__).resolve().parents[2]
METADATA_TABLES = {
    "source_tables",
    "table_snapshots",
    "loads",
    "load_snapshots",
    "dmap_feeds",
    "dmap_datasets",
    "deleted_keys",
    "schema_changes",
    "load_events",
    "landing_marks",
    "landings",
    "alert_events",
    "runs",
    "web_revoked_sessions",
    "web_login_failures",
    "dead_letters",
    "verifications",
}


def _tables(url: str, schema: str | None = None) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names(schema)) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    config = migrations.alembic_config(empty_db_url)
    assert migrations.current_revisions(config) == set()
    migrations.upgrade("head", config)
    assert migrations.current_revisions(config) == migrations.head_revisions(config)
    assert _tables(empty_db_url) == METADATA_TABLES
    # The demo's table is not in the main history.
    assert "edw_sample" not in _tables(empty_db_url, "cubic_ods_qlik")
    migrations.downgrade("base", config)
    assert _tables(empty_db_url) == set()
    migrations.upgrade("head", config)
    assert _tables(empty_db_url) == METADATA_TABLES


def test_every_revision_goes_down_and_up_again(empty_db_url: str) -> None:
    """The stairway: up one, down one, up one, for every revision of the main history."""
    config = migrations.alembic_config(empty_db_url)
    script = ScriptDirectory.from_config(config)
    revisions = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert revisions[0] == "0001" and len(script.get_heads()) == 1
    for revision in revisions:
        migrations.upgrade(revision, config)
        migrations.downgrade("-1", config)
        migrations.upgrade(revision, config)
        assert migrations.current_revisions(config) == {revision}


def test_alembic_upgrade_head_from_the_repository_root(empty_db_url: str) -> None:
    """The command users and the compose workflow type, through alembic's own CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "S3_"))}
    env["DATABASE_URL"] = empty_db_url
    alembic = [sys.executable, "-m", "alembic"]
    done = subprocess.run(
        [*alembic, "upgrade", "head"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    heads = subprocess.run(
        [*alembic, "heads"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert heads.stdout.count("(head)") == 1
    assert _tables(empty_db_url) == METADATA_TABLES
    assert migrations.current_revisions(migrations.alembic_config(empty_db_url)) == (
        migrations.head_revisions(migrations.alembic_config(empty_db_url))
    )


def test_alembic_ini_lists_the_same_locations_as_the_package() -> None:
    config = Config(str(REPO / "alembic.ini"))
    from_ini = [Path(p).resolve() for p in config.get_main_option("version_locations").split(":")]
    assert from_ini == [
        migrations.CORE_VERSIONS_DIR,
        *(REPO / "migrations" / source for source in migrations.SOURCES),
    ]
    # Every location is in the checkout (git keeps no empty folder).
    assert all(path.is_dir() for path in from_ini)
    assert migrations.version_locations() == from_ini


def test_alembic_ini_writes_revisions_as_the_package_does() -> None:
    """`alembic revision` and the onboarding commands name, date and format revisions
    alike: alembic.ini holds the package's options and ruff hooks."""
    config = Config(str(REPO / "alembic.ini"))
    for key, value in migrations.REVISION_OPTIONS.items():
        assert config.get_main_option(key) == value, key
    hooks = config.get_section("post_write_hooks", {})
    hooks.pop("here")  # the ini's own folder, which configparser offers every section
    assert hooks == migrations.ruff_hooks(REPO)


def test_without_ruff_only_writing_a_revision_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A deployment without the linters: its revisions are written unformatted, which
    `status` and the page (they build the same Alembic config) need not say."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ruff" else real(name, *a)
    )
    caplog.set_level("INFO")
    assert migrations.ruff_hooks(REPO) == {"hooks": ""}
    assert "ruff is not installed" not in caplog.text


def test_literal_sql_keeps_every_value_through_op_execute(db_url: str) -> None:
    """A generated revision's `op.execute("...")` holds its values inline: quotes,
    backslashes, percent signs and colons (which text() would take for parameters) reach
    the database unchanged."""
    values = ["it's", "back\\slash", "a :colon", ":b", "x::y", "50%", "100%%", "é"]
    checked = table("literal_check", column("v", Text))
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE literal_check (v text)"))
        for value in values:
            # What Alembic's op.execute(str) does with the revision's text.
            conn.execute(
                text(migrations.literal_sql(checked.insert().values(v=value), conn.dialect))
            )
        assert list(conn.scalars(text("SELECT v FROM literal_check"))) == values
    engine.dispose()


def test_the_demo_has_its_own_history(db_url: str, platform) -> None:
    from data_platform.db.demo_history import DEMO_VERSION_TABLE, demo_config
    from harness.demo import onboard_demo_dmap_types, onboard_demo_tables

    (onboarded,) = onboard_demo_tables()
    (dmap,) = onboard_demo_dmap_types()
    assert not onboarded.created and not dmap.created  # the committed revisions, reused
    assert "edw_sample" in _tables(db_url, "cubic_ods_qlik")
    assert "agg_daily_fareprod" in _tables(db_url, "cubic_dmap")
    assert migrations.current_revisions(demo_config()) == {dmap.revision}
    # The main history neither knows nor minds it.
    config = migrations.alembic_config(db_url)
    assert migrations.current_revisions(config) == migrations.head_revisions(config)
    migrations.upgrade("head", config)
    assert DEMO_VERSION_TABLE in _tables(db_url)


def test_a_new_core_revision_follows_onboarded_tables(
    db_url: str, platform, tmp_path: Path
) -> None:
    """`alembic revision` writes after the head, also when the head is a source's
    revision, and into the core location; a second head is refused."""
    from alembic import command

    from data_platform.batch.cubic_qlik.onboarding import onboard_table
    from harness.samples.qlik import Column, dfm_document

    sources, core = tmp_path / "sources", tmp_path / "core"
    sources.mkdir()
    core.mkdir()
    dfm = tmp_path / "LOAD00000001.dfm"
    doc = dfm_document("EDW", "NEW", [Column("ID", "INT4", key_pos=1)], changes=False,
                       file_name="LOAD00000001.csv.gz", record_count=0)  # fmt: skip
    dfm.write_text(json.dumps(doc))
    onboarded = onboard_table("EDW.NEW", dfm_path=dfm, apply=True, versions_dir=sources)
    assert onboarded.path is not None and onboarded.path.parent == sources
    config = migrations.alembic_config(db_url, [sources, core])
    config.attributes["core_versions_dir"] = core
    written = command.revision(config, "next core change", rev_id="t0006")
    assert Path(written.path).parent == core
    assert written.down_revision == onboarded.revision
    migrations.upgrade("head", config)
    assert migrations.current_revisions(config) == {"t0006"}
    # A revision written beside the history instead of after it: two heads, refused.
    Path(written.path).with_name("t0007_branch.py").write_text(
        'revision = "t0007"\ndown_revision = "0005"\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    with pytest.raises(CommandError, match="2 heads"):
        migrations.upgrade("head", config)


def test_models_and_revisions_do_not_drift(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


# Every schema the platform creates tables in, after the demo sources are onboarded: the
# check below must have seen each of them, or it proves nothing about it.
PLATFORM_SCHEMAS = {
    "public",
    "totesys",
    "totesys_history",
    "pedestrian",
    "cubic_kafka",
    "cubic_ods_qlik",
    "cubic_dmap",
    "analytics",
}
# Alembic's own bookkeeping, not the platform's tables.
VERSION_TABLES = ("alembic_version", "alembic_version_demo")
_UNCOMMENTED = text(
    """
    WITH rel AS (
        SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name, n.nspname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
          -- dbt's own views of each data test's failing rows (store_failures), written
          -- by every build from the test's SQL: no description to persist.
          AND n.nspname <> 'dbt_test_failures'
          AND NOT (n.nspname = 'public' AND c.relname = ANY(:version_tables))
    ), col AS (
        SELECT rel.name || '.' || quote_ident(a.attname) AS name,
               col_description(a.attrelid, a.attnum) AS comment
        FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid
        WHERE a.attnum > 0 AND NOT a.attisdropped
    )
    SELECT 'schemas', string_agg(DISTINCT nspname, ',') FROM rel
    UNION ALL SELECT 'columns', count(*)::text FROM col
    UNION ALL SELECT 'table', name FROM rel WHERE obj_description(oid, 'pg_class') IS NULL
    UNION ALL SELECT 'column', name FROM col WHERE comment IS NULL
    """
)


@pytest.mark.slow  # the run's demo (tests/demo_world.py), shared with the tests that read it
def test_every_table_and_column_is_commented(demo_world: DemoWorld) -> None:
    """Every table, view and column the platform creates, in every schema: the core
    revisions', the source revisions' (totesys, pedestrian, kafka), the tables the
    onboarding commands write (the demo's Qlik table and DMAP type) and the dbt models
    (`persist_docs`: their descriptions), as the demo leaves them: it onboards its
    tables and builds the models."""
    for run in demo_world.runs:
        assert run["exit_code"] == 0, run["stderr"]
    onboarded = [line for line in demo_world.runs[0]["echoed"] if " -> " in line]
    assert any("-> cubic_ods_qlik.edw_sample (" in line for line in onboarded), onboarded
    assert any("-> cubic_dmap.agg_daily_fareprod (" in line for line in onboarded), onboarded
    with demo_world.database() as url:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                found = conn.execute(_UNCOMMENTED, {"version_tables": list(VERSION_TABLES)}).all()
        finally:
            engine.dispose()
    schemas = {name for kind, names in found if kind == "schemas" for name in names.split(",")}
    (columns,) = (int(count) for kind, count in found if kind == "columns")
    assert schemas >= PLATFORM_SCHEMAS
    assert columns > 300  # the check saw the tables' columns, not an empty set
    uncommented = sorted(f"{kind} {name}" for kind, name in found if kind in ("table", "column"))
    assert uncommented == []


def test_status_is_a_closed_set_in_the_database(db_url: str) -> None:
    engine = create_engine(db_url)
    with pytest.raises(IntegrityError, match="ck_loads_load_status"), engine.begin() as conn:
        table_id = conn.scalar(
            text(
                "INSERT INTO source_tables (name, source, s3_prefix) "
                "VALUES ('t', 'cubic_qlik', 'p/') RETURNING id"
            )
        )
        conn.execute(
            text(
                "INSERT INTO loads (table_id, status, s3_key, s3_modified, s3_size) "
                "VALUES (:t, 'done', 'k', now(), 1)"
            ),
            {"t": table_id},
        )
    engine.dispose()


def test_source_names_are_a_closed_set_in_the_database(db_url: str) -> None:
    """Every core column naming a source takes the platform's sources and nothing else
    (revision 0017): the constraints the models declare, commented, in the database; each
    name of SourceName goes in, another does not."""
    from data_platform.run import all_sources

    assert {source.name for source in all_sources()} == set(SOURCE_NAMES)
    declared = {
        (table.name, constraint.name, constraint.comment)
        for table in Base.metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint) and f"{constraint.name}".endswith("source_name")
    }
    engine = create_engine(db_url)
    with engine.connect() as conn:
        # Every core table with a `source` column has one (today source_tables,
        # landing_marks and landings): a new such table without it fails here.
        with_source = set(
            conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND column_name = 'source'"
                )
            )
        )
        assert "source_tables" in with_source
        assert {table for table, _, _ in declared} == with_source
        found = conn.execute(
            text(
                "SELECT conrelid::regclass::text, conname, obj_description(oid, 'pg_constraint') "
                "FROM pg_constraint WHERE contype = 'c' AND conname LIKE '%source\\_name'"
            )
        ).all()
        assert set(found) == declared
        for name in SOURCE_NAMES:
            conn.execute(
                text("INSERT INTO source_tables (name, source, s3_prefix) VALUES (:n, :s, :p)"),
                {"n": f"t_{name}", "s": name, "p": f"p/{name}/"},
            )
        conn.rollback()
    for source in ("dmap", "Cubic_Qlik", ""):
        with (
            pytest.raises(IntegrityError, match="ck_source_tables_source_name"),
            engine.begin() as conn,
        ):
            conn.execute(
                text("INSERT INTO source_tables (name, source, s3_prefix) VALUES ('t', :s, 'p/')"),
                {"s": source},
            )
    engine.dispose()


def test_offline_sql_renders(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from alembic import command

    command.upgrade(migrations.alembic_config(db_url), "head", sql=True)
    out = capsys.readouterr().out
    assert "CREATE TABLE loads" in out
    assert "COMMENT ON TABLE loads" in out


def test_revision_0007_drops_generated_keys_of_tables_onboarded_before(empty_db_url: str) -> None:
    """A table onboarded by an older revision has `DEFAULT nextval(...)` on its key; 0007
    drops the default and its sequence, and leaves other defaults alone."""
    config = migrations.alembic_config(empty_db_url)
    migrations.upgrade("0006", config)
    engine = create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA cubic_ods_qlik"))
        conn.execute(
            text('CREATE TABLE cubic_ods_qlik."old Table" (id serial PRIMARY KEY, v int DEFAULT 7)')
        )
        conn.execute(
            text(
                "INSERT INTO source_tables (name, source, s3_prefix, db_schema, db_table) "
                "VALUES ('cubic_ods_qlik__old', 'cubic_qlik', 'p/', 'cubic_ods_qlik', 'old Table')"
            )
        )
    migrations.upgrade("head", config)
    with engine.connect() as conn:
        defaults = conn.execute(
            text(
                "SELECT column_name, column_default FROM information_schema.columns "
                "WHERE table_schema = 'cubic_ods_qlik' AND table_name = 'old Table' "
                "ORDER BY ordinal_position"
            )
        ).all()
        sequences = conn.scalar(
            text("SELECT count(*) FROM pg_sequences WHERE schemaname = 'cubic_ods_qlik'")
        )
    engine.dispose()
    assert defaults == [("id", None), ("v", "7")]
    assert sequences == 0


def test_revision_0011_resolves_the_alerts_of_loads_no_longer_failed(empty_db_url: str) -> None:
    """Before 0011 a load's alert stayed open after a retry or archive; 0011 ties each load
    alert to its load and resolves those whose load is no longer failed."""
    config = migrations.alembic_config(empty_db_url)
    migrations.upgrade("0010", config)
    engine = create_engine(empty_db_url)
    with engine.begin() as conn:
        table_id = conn.scalar(
            text(
                "INSERT INTO source_tables (name, source, s3_prefix) "
                "VALUES ('t', 'cubic_qlik', 'p/') RETURNING id"
            )
        )
        ids = {}
        for status in ("archived", "errored", "ready"):
            ids[status] = conn.scalar(
                text(
                    "INSERT INTO loads (table_id, status, s3_key, s3_modified, s3_size) "
                    "VALUES (:t, :s, :k, now(), 1) RETURNING id"
                ),
                {"t": table_id, "s": status, "k": f"p/{status}.csv"},
            )
            conn.execute(
                text(
                    "INSERT INTO alert_events (fingerprint, kind, subject, message, channels) "
                    "VALUES (:f, 'load', :s, 'm', 'log')"
                ),
                {"f": f"load:{ids[status]}", "s": str(ids[status])},
            )
    migrations.upgrade("0011", config)
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                text("SELECT load_id, resolved_at IS NULL FROM alert_events ORDER BY load_id")
            ).all()
        )
    engine.dispose()
    assert found == {ids["archived"]: False, ids["errored"]: True, ids["ready"]: False}


def test_revision_0016_moves_the_three_marks_into_landing_marks_and_back(
    empty_db_url: str,
) -> None:
    """totesys' extract_marks, pedestrian.fetch_marks and each DMAP feed's last_updated
    become landing_marks rows (the position as JSON); open fetch/extract alerts are
    resolved; the downgrade puts every mark back as it was."""
    config = migrations.alembic_config(empty_db_url)
    migrations.upgrade("0015", config)
    engine = create_engine(empty_db_url)
    extract = (
        "SELECT source, table_name, mark_updated, mark_key, last_key, rows, extracted_at, "
        "horizon, source_identity FROM extract_marks ORDER BY 2"
    )
    fetch = "SELECT dataset, next_date, last_key, fetched_at FROM pedestrian.fetch_marks"
    feeds = "SELECT relative_url, last_updated FROM dmap_feeds ORDER BY 1"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO extract_marks VALUES "
                "('totesys', 'currency', '2026-11-01 09:00:00.123456', '7', "
                "'database/totesys/currency/extracted=x.parquet', 3, "
                "'2026-11-02 10:00:00+00', 123456789012, 'pg 1 timeline 1 database 5'), "
                "('totesys', 'staff', '2026-11-01 09:00:00', '2', '', 0, "
                "'2026-11-02 10:00:00+00', NULL, NULL)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO pedestrian.fetch_marks VALUES ('counts-id', '2026-10-31', "
                "'open_data/x.csv.gz', '2026-11-01 00:00:00+00')"
            )
        )
        feed = conn.scalar(
            text(
                "INSERT INTO dmap_feeds (relative_url, last_updated, last_fetched_at) VALUES "
                "('/datasetpublicusersapi/aggregations/agg', '2022-05-18 13:39:43.546303', "
                "'2022-05-19 00:00:00+00') RETURNING id"
            )
        )
        conn.execute(text("INSERT INTO dmap_feeds (relative_url) VALUES ('/never/fetched')"))
        conn.execute(
            text(
                "INSERT INTO dmap_datasets (feed_id, type, dataset_id, start_date, end_date, "
                "last_updated, s3_key) VALUES (:f, 'agg', 'agg_20220517', '2022-05-17', "
                "'2022-05-17', '2022-05-18 13:39:43.546303', 'cubic/dmap/agg/agg_20220517.csv.gz')"
            ),
            {"f": feed},
        )
        conn.execute(
            text(
                "INSERT INTO alert_events (fingerprint, kind, subject, message, channels) VALUES "
                "('fetch:cubic_dmap', 'fetch', 'cubic_dmap', 'm', 'log'), "
                "('load:1', 'load', '1', 'm', 'log')"
            )
        )
        before = [conn.execute(text(q)).all() for q in (extract, fetch, feeds)]

    migrations.upgrade("0016", config)
    with engine.connect() as conn:
        marks = conn.execute(
            text("SELECT source, item, mark, last_key, rows FROM landing_marks ORDER BY 1, 2")
        ).all()
        alerts = dict(
            conn.execute(text("SELECT kind, resolved_at IS NULL FROM alert_events")).all()
        )
    assert marks == [
        (
            "cubic_dmap",
            "/datasetpublicusersapi/aggregations/agg",
            {"last_updated": "2022-05-18T13:39:43.546303"},
            "cubic/dmap/agg/agg_20220517.csv.gz",
            None,
        ),
        (
            "melbourne_pedestrian",
            "counts-id",
            {"next_date": "2026-10-31"},
            "open_data/x.csv.gz",
            None,
        ),
        (
            "totesys",
            "currency",
            {
                "updated": "2026-11-01T09:00:00.123456",
                "key": "7",
                "horizon": 123456789012,
                "identity": "pg 1 timeline 1 database 5",
            },
            "database/totesys/currency/extracted=x.parquet",
            3,
        ),
        (
            "totesys",
            "staff",
            {"updated": "2026-11-01T09:00:00", "key": "2", "horizon": None, "identity": None},
            None,
            0,
        ),
    ]
    assert alerts == {"fetch": False, "load": True}  # the retired kind's alert is closed
    assert {"extract_marks", "landing_marks", "landings"} & _tables(empty_db_url) == {
        "landing_marks",
        "landings",
    }
    assert "fetch_marks" not in _tables(empty_db_url, "pedestrian")

    migrations.downgrade("0015", config)
    with engine.connect() as conn:
        after = [conn.execute(text(q)).all() for q in (extract, fetch, feeds)]
    engine.dispose()
    assert after == before

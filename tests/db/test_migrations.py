"""Alembic revisions: upgrade, downgrade, upgrade again; no drift from the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from data_platform.db import migrations
from data_platform.db.models import Base

METADATA_TABLES = {
    "source_tables",
    "table_snapshots",
    "loads",
    "load_snapshots",
    "dmap_feeds",
    "dmap_datasets",
    "deleted_keys",
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
    migrations.upgrade("heads", config)
    assert migrations.current_revisions(config) == migrations.head_revisions(config)
    assert _tables(empty_db_url) == METADATA_TABLES
    assert "edw_sample" in _tables(empty_db_url, "cubic_ods_qlik")
    migrations.downgrade("base", config)
    assert _tables(empty_db_url) == set()
    assert _tables(empty_db_url, "cubic_ods_qlik") == set()
    migrations.upgrade("heads", config)
    assert _tables(empty_db_url) == METADATA_TABLES


def test_models_and_revisions_do_not_drift(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_every_table_and_column_is_commented(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        uncommented_tables = conn.scalars(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version' "
                "AND obj_description(c.oid, 'pg_class') IS NULL"
            )
        ).all()
    engine.dispose()
    assert uncommented_tables == []


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


def test_offline_sql_renders(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from alembic import command

    command.upgrade(migrations.alembic_config(db_url), "heads", sql=True)
    out = capsys.readouterr().out
    assert "CREATE TABLE loads" in out
    assert "COMMENT ON TABLE loads" in out

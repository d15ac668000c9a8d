"""The demo's own migration history: the sample tables' revisions, in `sample_data/migrations/`
of the checkout with a version table of their own, outside the main history
(`alembic upgrade head` never creates the demo's tables).

The demo (`harness/demo.py`, not installed) writes and applies these revisions; the web app
shows them beside the main history's when the database has the demo's version table.
"""

from __future__ import annotations

from alembic.config import Config

from data_platform.db import migrations

REPO_SAMPLE_DIR = migrations.CHECKOUT_ROOT / "sample_data"
DEMO_MIGRATIONS = REPO_SAMPLE_DIR / "migrations"
DEMO_VERSIONS_DIR = DEMO_MIGRATIONS / "cubic_qlik"
DEMO_DMAP_VERSIONS_DIR = DEMO_MIGRATIONS / "cubic_dmap"
DEMO_VERSION_TABLE = "alembic_version_demo"


def demo_config() -> Config:
    """The demo's migration history (run after the main one, which it needs)."""
    return migrations.alembic_config(
        locations=[DEMO_VERSIONS_DIR, DEMO_DMAP_VERSIONS_DIR], version_table=DEMO_VERSION_TABLE
    )

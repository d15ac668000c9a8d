"""Text shared by the revisions onboarding writes (Qlik tables, DMAP types): a generated
revision is self-contained source, so what every one holds is written here once.

Every piece is formatted as `ruff format` keeps it (double quotes, one argument per line,
trailing commas). The revision defines DB_SCHEMA, DB_TABLE and TABLE_NAME itself.
"""

from __future__ import annotations

import json


def py_literal(value: str) -> str:
    """A Python string literal as `ruff format` writes it, for generated revisions:
    double quotes, unless the text holds double quotes and no single ones."""
    if '"' in value and "'" not in value:
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


# The metadata table a revision registers its table in (only the columns it writes).
SOURCE_TABLES = """source_tables = sa.table(
    "source_tables",
    sa.column("name", sa.Text),
    sa.column("source", sa.Text),
    sa.column("s3_prefix", sa.Text),
    sa.column("db_schema", sa.Text),
    sa.column("db_table", sa.Text),
    sa.column("is_raw", sa.Boolean),
)"""

# The end of downgrade(): the registration and the table go.
UNREGISTER = """    op.execute(source_tables.delete().where(source_tables.c.name == TABLE_NAME))
    op.drop_table(DB_TABLE, schema=DB_SCHEMA)"""


def register(source: str, s3_prefix: str, is_raw: bool = False) -> str:
    """The end of upgrade(): the table's row in source_tables."""
    return f"""    op.bulk_insert(
        source_tables,
        [
            {{
                "name": TABLE_NAME,
                "source": {py_literal(source)},
                "s3_prefix": {py_literal(s3_prefix)},
                "db_schema": DB_SCHEMA,
                "db_table": DB_TABLE,
                "is_raw": {is_raw!r},
            }}
        ],
    )"""

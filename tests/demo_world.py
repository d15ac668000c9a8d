"""The demo, run once for every test that reads it (`demo_world`, tests/conftest.py).

`python -m harness demo -v`, then `python -m harness demo` again, as `make demo` runs it: no
DATABASE_URL, so on the embedded PostgreSQL and the local store of a data home of its
own. Kept for the tests: each run's exit code, stdout and stderr and the lines the demo
echoed (one per echo call), and the tables tests/test_demo.py checks, queried right after
the second run, before any test could touch the database. Tests that need the database
itself (the README's commands, the comment check) take it with `DemoWorld.database()`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.shared import held, isolate, platform_command

RUNS = (["demo", "-v"], ["demo"])
# What tests/test_demo.py checks of the tables after the two runs: name -> query.
TABLES = {
    "sample_ids": "SELECT sample_id FROM cubic_ods_qlik.edw_sample ORDER BY 1",
    "datasets": (
        "SELECT dataset_id, count(*), sum(count) FROM cubic_dmap.agg_daily_fareprod "
        "GROUP BY 1 ORDER BY 1"
    ),
    "statuses": (
        "SELECT t.source, l.status, count(*) FROM loads l "
        "JOIN source_tables t ON t.id = l.table_id GROUP BY 1, 2 ORDER BY 1, 2"
    ),
    # The feed's landing mark (revision 0016).
    "dmap_mark": "SELECT (mark->>'last_updated')::timestamp FROM landing_marks "
    "WHERE source = 'cubic_dmap'",
    "hourly_counts": "SELECT count(*) FROM pedestrian.hourly_counts",
    "top10_monthly": "SELECT count(*) FROM analytics.pedestrian_top10_monthly",
    "taps": "SELECT count(*) FROM cubic_kafka.taps",
    # Its passes as the operations page lists them (revision 0021).
    "runs": "SELECT trigger, status, archived, output <> '' FROM runs ORDER BY id",
}


@dataclass(frozen=True)
class DemoWorld:
    folder: Path
    runs: list[dict[str, Any]]  # per run: args, exit_code, stdout, stderr, echoed
    tables: dict[str, list[list[Any]]] | None  # TABLES' rows, values as `_plain` keeps them

    @property
    def home(self) -> Path:
        """The demo's data home (its embedded server, its local store)."""
        return self.folder / "home"

    @contextmanager
    def database(self) -> Iterator[str]:
        """The demo's database URL, its server running, for one test of the run at a
        time; the server is stopped after."""
        with held(self.folder):
            url = platform_command(self.home, "db", "url", "--show-password")
            try:
                yield url.strip()
            finally:
                platform_command(self.home, "db", "stop")


def _plain(value: object) -> object:
    """A value as JSON keeps it: a date as ISO text, a whole Decimal (a sum) as an int."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def make_demo(folder: Path) -> dict[str, Any]:
    """Run the demo twice through the CLI in `folder`; the facts the tests read."""
    import click
    from click.testing import CliRunner
    from sqlalchemy import text

    from data_platform.db.engine import get_engine
    from data_platform.settings import reset_settings
    from harness.cli import cli

    home, work = folder / "home", folder / "work"
    work.mkdir()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    real_echo = click.echo
    echoed: list[str] = []

    def echo(message: Any = None, file: Any = None, nl: bool = True, err: bool = False,
             color: bool | None = None) -> None:  # fmt: skip
        if file is None and not err:
            echoed.append(message)
        real_echo(message, file=file, nl=nl, err=err, color=color)

    runs, tables = [], None
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, home, work)
        patch.setattr(click, "echo", echo)  # the demo's steps: `run_demo(echo=click.echo)`
        try:
            for args in RUNS:
                echoed.clear()
                result = CliRunner().invoke(cli, args)
                # The CLI configured logging for its run; the next starts as this one did.
                root.handlers[:] = handlers
                root.setLevel(level)
                runs.append({"args": args, "exit_code": result.exit_code,
                             "stdout": result.stdout, "stderr": result.stderr,
                             "echoed": list(echoed)})  # fmt: skip
            if all(run["exit_code"] == 0 for run in runs):
                with get_engine().connect() as conn:
                    tables = {
                        name: [[_plain(v) for v in row] for row in conn.execute(text(query))]
                        for name, query in TABLES.items()
                    }
        finally:
            reset_settings()
            platform_command(home, "db", "stop")
    return {"runs": runs, "tables": tables}

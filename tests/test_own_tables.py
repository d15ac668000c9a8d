"""Onboarding a table of one's own keeps the suite green (issue 10): no test may assume
which tables the main history holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The tests that look at the tables, revisions or scans of the whole platform.
SENSITIVE = [
    "tests/db/test_migrations.py",
    "tests/cli/test_cli.py",
    "tests/qlik/test_scan.py",
    "tests/qlik/test_exit_codes.py",
    "tests/dmap/test_ingest.py",
    # (Its other test runs the same demo through the CLI: looking at the output only.)
    "tests/test_demo.py::test_the_demo_runs_both_sources_and_again_changes_nothing",
]
# The venv's `data-platform` script runs the checkout the venv was installed from, not
# this copy: the copy cannot test it.
DESELECTED = ["--deselect", "tests/cli/test_cli.py::test_console_script_and_python_m"]
IGNORED = shutil.ignore_patterns(
    ".venv", ".git", ".data", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info"
)


@pytest.mark.slow
def test_a_table_onboarded_in_the_checkout_keeps_the_suite_green(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=IGNORED)
    dfm = tmp_path / "LOAD00000001.dfm"
    from harness.samples.qlik import Column, dfm_document

    columns = [Column("ID", "INT8", key_pos=1), Column("PAYLOAD", "BLOB")]
    doc = dfm_document("MY", "OWN_TABLE", columns, changes=False,
                       file_name="LOAD00000001.csv.gz", record_count=0)  # fmt: skip
    dfm.write_text(json.dumps(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "MIGRATIONS_"))}
    env["DATA_PLATFORM_HOME"] = str(tmp_path / "home")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        python = [sys.executable, "-m"]
        # As a user would: the command writes into the checkout's migrations/cubic_qlik/.
        command = ["cubic-qlik", "process-new-table", "--table", "MY.OWN_TABLE", "--dfm", str(dfm)]
        onboard = subprocess.run(
            [*python, "data_platform", *command],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert onboard.returncode == 0, onboard.stderr
        (revision,) = (checkout / "migrations" / "cubic_qlik").glob("*_onboard_my_own_table.py")
        lint = subprocess.run(
            [*python, "ruff", "check", "."], cwd=checkout, capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout
        tests = subprocess.run(
            [*python, "pytest", "-q", "-x", "-p", "no:cacheprovider", *SENSITIVE, *DESELECTED],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert tests.returncode == 0, tests.stdout[-6000:]
        assert revision.exists()
    finally:
        # The onboarding command started the data home's embedded server: not left running.
        from data_platform.db.embedded import stop

        stop(tmp_path / "home")

"""The layers of data_platform hold (doc/adr/0012-layers.md): import-linter checks the
repository's `.importlinter` contracts, and a copy of the package with a module that
breaks each of them fails, naming the import at fault."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIG = ".importlinter"
CONTRACTS = (
    "Layers: a module imports only from the layers below its own",
    "Sources: no source imports another",
    "Cycles: none anywhere in the package",
)
# lint-imports's own entry point, run by this interpreter (so its virtualenv's import-linter).
LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command; "
    "sys.exit(lint_imports_command())"
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with `root`'s .importlinter on the data_platform package in `root`
    (first on the path: not the one installed in the virtualenv)."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", str(root / CONFIG)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def verdicts(output: str) -> dict[str, str]:
    """Contract name -> KEPT or BROKEN, from lint-imports's report."""
    return dict(re.findall(r"(?m)^(.+?) (KEPT|BROKEN)\b", output))


def test_the_layers_hold() -> None:
    done = lint_imports(REPO)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert verdicts(report) == dict.fromkeys(CONTRACTS, "KEPT"), report


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the repository's data_platform package and .importlinter in tmp_path."""
    shutil.copytree(
        REPO / "data_platform",
        tmp_path / "data_platform",
        ignore=shutil.ignore_patterns("__pycache__", "static", "templates"),
    )
    shutil.copy(REPO / CONFIG, tmp_path / CONFIG)
    return tmp_path


BREAKS = {
    # The bottom layer reaching for the top one, from inside a function: an import there
    # counts as much as one at the top of the module.
    "loads imports the CLI": (
        {
            "loads/_breaks_layers.py": (
                "def main() -> None:\n    from data_platform.cli.main import cli\n\n    cli()\n"
            )
        },
        CONTRACTS[0],
        [
            "data_platform.loads is not allowed to import data_platform.cli",
            "data_platform.loads._breaks_layers -> data_platform.cli.main (l.2)",
        ],
    ),
    "a source imports another": (
        {"batch/cubic_kafka/_breaks_sources.py": "import data_platform.batch.totesys.tables\n"},
        CONTRACTS[1],
        [
            "data_platform.batch.cubic_kafka is not allowed to import data_platform.batch.totesys",
            "data_platform.batch.cubic_kafka._breaks_sources -> data_platform.batch.totesys.tables",
        ],
    ),
    "two modules import each other": (
        {
            "db/_breaks_cycle_a.py": "from data_platform.db import _breaks_cycle_b\n",
            "db/_breaks_cycle_b.py": "from data_platform.db import _breaks_cycle_a\n",
        },
        CONTRACTS[2],
        [
            "No cycles are allowed in data_platform.db",
            r"re:\._breaks_cycle_[ab] -> \._breaks_cycle_[ab] \(1 import\)",
        ],
    ),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_module_that_breaks_a_contract_fails_the_check(package_copy: Path, case: str) -> None:
    modules, broken, named = BREAKS[case]
    for path, source in modules.items():
        (package_copy / "data_platform" / path).write_text(source)
    done = lint_imports(package_copy)
    report = done.stdout + done.stderr
    assert done.returncode == 1, report
    assert verdicts(report)[broken] == "BROKEN", report
    for text in named:
        if text.startswith("re:"):
            assert re.search(text[3:], report), report
        else:
            assert text in report, report


def test_the_copy_without_a_break_holds(package_copy: Path) -> None:
    """The copy the breaking tests start from passes as the repository does: what fails
    there is the module added, nothing of the copy itself."""
    done = lint_imports(package_copy)
    assert done.returncode == 0, done.stdout + done.stderr

"""The README and the doc/ pages are true: their shell blocks marked `<!-- tested: ... -->`
run as written after `make demo`, from the repository root, on the data home of the run's
demo (`demo_world`: `python -m harness demo -v` and `python -m harness demo`, on its own
embedded PostgreSQL), and the demo's output the README quotes is what the demo prints.
What the pages name (commands, paths, settings, links) is checked without running anything
in test_docs.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo_world import DemoWorld

REPO = Path(__file__).resolve().parent.parent
MARK = "<!-- tested: runs as written after make demo"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
# The pages that keep marked blocks, and how many each keeps.
MARKED = {"README.md": 1, "doc/sources/qlik.md": 1, "doc/glue.md": 1, "doc/operations.md": 1}


def pages() -> list[Path]:
    """The README and every hand-written page of doc/ (not the generated references)."""
    generated = {REPO / "doc" / "cli.md", REPO / "doc" / "configuration.md"}
    found = [REPO / "README.md", *sorted((REPO / "doc").rglob("*.md"))]
    return [page for page in found if page not in generated]


def marked_blocks(page: Path) -> list[str]:
    text = page.read_text()
    blocks = []
    for part in text.split(MARK)[1:]:
        match = BLOCK.search(part)
        assert match and part.index("```sh") < part.index("\n\n"), "a mark precedes its block"
        blocks.append(match.group(1))
    return blocks


def demo_command() -> str:
    """What `make demo` runs after its install, as the README's reader would type it."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no demo target"
    (line,) = recipe.group(1).splitlines()
    return line.strip().replace("$(BIN)/", ".venv/bin/")


def quoted_demo_output() -> list[str]:
    """The lines of the plain ``` blocks of the README's "What the demo shows"."""
    text = (REPO / "README.md").read_text()
    start = text.index("\n## What the demo shows")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = re.findall(r"^```\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("|")]


def _is_subsequence(part: list[str], whole: list[str]) -> bool:
    rest = iter(whole)
    return all(any(cell == other for other in rest) for cell in part)


def printed(quoted: str, output: list[str]) -> bool:
    """Is the quoted line one the demo printed? A table row may leave columns out."""
    if quoted.strip() in (line.strip() for line in output):
        return True
    if set(quoted) <= set("-+ "):  # a table's rule under the header
        return any(set(line) <= set("-+ ") and "+" in line for line in output)
    if "|" not in quoted:
        return False
    return any("|" in line and _is_subsequence(_cells(quoted), _cells(line)) for line in output)


def test_the_pages_mark_the_blocks_they_keep_true() -> None:
    found = {str(page.relative_to(REPO)): len(marked_blocks(page)) for page in pages()}
    assert {page: n for page, n in found.items() if n} == MARKED


def test_the_readme_quotes_demo_output() -> None:
    assert len(quoted_demo_output()) >= 20


def test_printed_matches_whole_lines_and_table_rows_with_columns_left_out() -> None:
    output = ["a | b | c", "--+---+--", "1 | 2 | 3", "== 1. step"]
    assert printed("== 1. step", output) and printed("1 | 3", output)
    assert printed("a | c", output) and printed("--+--", output)
    assert not printed("3 | 1", output) and not printed("== 2. step", output)


@pytest.mark.slow
def test_the_marked_blocks_run_as_written_after_the_demo(demo_world: DemoWorld) -> None:
    venv_bin = Path(sys.executable).parent
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "S3_", "MIGRATIONS_", "DATA_PLATFORM_"))
    }
    # The pages' `.venv/bin/...` is this interpreter's venv; its home is the demo's.
    env.update(
        PATH=f"{venv_bin}:{env['PATH']}",
        DATA_PLATFORM_HOME=str(demo_world.home),
        PYTHONDONTWRITEBYTECODE="1",
    )

    def sh(script: str) -> subprocess.CompletedProcess:
        script = script.replace(".venv/bin/", f"{venv_bin}/")
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,  # psql at its prompt reads end of input and leaves
            capture_output=True,
            text=True,
            timeout=600,
        )

    # demo_world runs the harness's `demo` command in process: what `make demo` runs.
    assert demo_command() == ".venv/bin/python -m harness demo"
    for demo in demo_world.runs:  # `make demo`, twice
        assert demo["exit_code"] == 0, demo["stderr"]
    # The first run's output (`-v` sends logs to stderr only): what the README quotes.
    output = demo_world.runs[0]["stdout"].splitlines()
    assert [line for line in quoted_demo_output() if not printed(line, output)] == []
    with demo_world.database():  # the demo's server, this test's alone; stopped after
        for page in pages():
            for block in marked_blocks(page):
                done = sh(block)
                assert done.returncode == 0, (
                    f"{page.name}:\n{block}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
                )
                # No block lands anything the demo's tables would take as new (the Glue
                # try-out once re-landed the demo's full load: a reload at the next run).
                assert " new load(s)" not in done.stdout or " 0 new load(s)" in done.stdout, (
                    f"{page.name}:\n{block}\n--- stdout\n{done.stdout}"
                )
        scanned = sh(".venv/bin/data-platform run --no-land --no-transform")
        assert scanned.returncode == 0, scanned.stderr
        assert "cubic_qlik: 0 new load(s)" in scanned.stdout, scanned.stdout

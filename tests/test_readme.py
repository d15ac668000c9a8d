"""The README is true: its shell blocks marked `<!-- tested: ... -->` run as written after
`make demo`, from the repository root, on the data home of the run's demo (`demo_world`:
`data-platform demo -v` and `data-platform demo`, on its own embedded PostgreSQL)."""

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


def marked_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = []
    for part in text.split(MARK)[1:]:
        match = BLOCK.search(part)
        assert match and part.index("```sh") < part.index("\n\n"), "a mark precedes its block"
        blocks.append(match.group(1))
    return blocks


def test_the_readme_marks_the_blocks_it_keeps_true() -> None:
    assert len(marked_blocks()) == 3


@pytest.mark.slow
def test_the_readmes_marked_blocks_run_as_written_after_the_demo(demo_world: DemoWorld) -> None:
    venv_bin = Path(sys.executable).parent
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "S3_", "MIGRATIONS_", "DATA_PLATFORM_"))
    }
    # The README's `.venv/bin/...` is this interpreter's venv; its home is the demo's.
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

    for demo in demo_world.runs:  # `make demo`
        assert demo["exit_code"] == 0, demo["stderr"]
    with demo_world.database():  # the demo's server, this test's alone; stopped after
        for block in marked_blocks():
            done = sh(block)
            assert done.returncode == 0, (
                f"{block}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            )

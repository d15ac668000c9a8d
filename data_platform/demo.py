"""The demo: what `make demo` runs, step by step, on the configured platform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from data_platform.db import migrations
from data_platform.errors import ConfigError
from data_platform.status import platform_status
from data_platform.storage.transfer import upload_tree

REPO_SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


def run_demo(sample_dir: Path | None = None, echo: Callable[[str], None] = print) -> None:
    sample_dir = sample_dir or REPO_SAMPLE_DIR
    if not sample_dir.is_dir():
        raise ConfigError(f"no sample data at {sample_dir}: pass --sample-dir")
    echo("== 1. migrate the metadata database")
    migrations.upgrade()
    echo(f"   at {', '.join(sorted(migrations.current_revisions()))}")
    echo(f"== 2. land {sample_dir.name}/ in the incoming zone")
    result = upload_tree(sample_dir, "incoming")
    echo(f"   uploaded {result.uploaded}, already there {result.skipped}")
    echo("== 3. status")
    echo(platform_status().render())

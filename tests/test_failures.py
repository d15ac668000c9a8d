"""Failure paths of issue 8's small things: exit codes of `run`, `--watch` going on, a
DATABASE_URL with an unencoded `@`, partial files a killed writer left behind."""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from data_platform.cli.main import cli
from data_platform.errors import StorageError
from data_platform.settings import Settings, reset_settings
from data_platform.storage import get_zone
from data_platform.storage.local import STALE_PARTIAL_SECONDS


def test_watch_logs_a_failed_pass_and_goes_on(
    platform: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import data_platform.run as run_module

    passes = []

    def run_once(**options):
        passes.append(1)
        if len(passes) == 1:
            raise StorageError("store unreachable")
        raise KeyboardInterrupt  # stands for the operator's Ctrl-C on the second pass

    monkeypatch.setattr(run_module, "run_once", run_once)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    result = CliRunner().invoke(cli, ["run", "--watch", "1"])
    assert len(passes) == 2  # the failed pass did not end the loop
    assert result.exit_code != 0  # the interrupt did
    assert "run failed, next in 1.0s: store unreachable" in result.stderr


def test_database_url_with_an_unencoded_at_is_refused_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cr@t@db.example:5432/platform")
    reset_settings()
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: DATABASE_URL: the user or password holds an unencoded '@': percent-encode it "
        "as %40 (the URL is not shown because it holds the password)\n"
    )
    assert "s3cr" not in result.stderr + result.stdout


def test_partial_file_of_a_killed_writer_is_removed_by_the_next_write(platform: Settings) -> None:
    incoming = get_zone("incoming")
    folder = Path(incoming.store.root) / incoming.bucket / "cubic"
    folder.mkdir(parents=True, exist_ok=True)
    stale, fresh = folder / ".abc.dp-partial", folder / ".def.dp-partial"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - STALE_PARTIAL_SECONDS - 10
    os.utime(stale, (old, old))
    incoming.put("cubic/new.csv", io.BytesIO(b"x"))
    assert not stale.exists()
    assert fresh.exists()  # maybe a live writer's: left alone
    assert [i.key for i in incoming.list("cubic/")] == ["cubic/new.csv"]


def test_watch_prints_each_pass_that_changed_something_with_its_time(
    platform: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import data_platform.run as run_module
    from data_platform.loads.source import IngestResult
    from data_platform.run import RunSummary, SourceRun

    @dataclass
    class Scan:  # a ScanResult is a dataclass (`loads.source.ScanResult`): runs record it
        new_loads: int

        def summary(self) -> str:
            return f"{self.new_loads} new load(s)"

        def notes(self) -> list[str]:
            return []

    passes = iter([1, 0, 0, 2])

    def run_once(**options):
        try:
            new = next(passes)
        except StopIteration:
            raise KeyboardInterrupt from None
        ingest = IngestResult(archived=new)
        return RunSummary([SourceRun("fake", Scan(new), ingest)])

    monkeypatch.setattr(run_module, "run_once", run_once)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    result = CliRunner().invoke(cli, ["run", "--watch", "1"])
    out = result.stdout.splitlines()
    stamps = [line for line in out if line.startswith("[")]
    # Passes 1, 2 (it differs from 1: nothing new) and 4 print; pass 3 repeats pass 2.
    assert len(stamps) == 3, out
    assert (
        out.count("fake: 0 new load(s); archived 0 (0 superseded), errored 0, 0 row(s) applied")
        == 1
    )


def test_a_source_that_stops_leaves_the_others_summary_and_one_error(
    platform: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_platform import run

    class Broken:
        name = "broken"

        def scan(self):
            raise StorageError("bucket gone")

    sources = [Broken(), *run.all_sources()[:1]]
    monkeypatch.setattr(run, "all_sources", lambda: sources)
    result = CliRunner().invoke(cli, ["run", "--no-transform"])
    assert result.exit_code == 4  # storage, the cause's own code
    assert "cubic_qlik" in result.stdout  # the source that ran says what it did
    assert result.stderr.splitlines()[-1] == "Error: bucket gone"  # after the logged lines

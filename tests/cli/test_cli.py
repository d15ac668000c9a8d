"""The CLI through click's runner, and once each as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from data_platform import __version__
from data_platform.cli.main import cli
from data_platform.db.migrations import alembic_config, head_revisions
from data_platform.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_command_groups() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for group in ("db", "storage", "status"):
        assert f"  {group}" in out


def test_the_harness_has_the_demo_and_the_platform_none_of_the_harness() -> None:
    from harness.cli import cli as harness_cli

    done = CliRunner().invoke(harness_cli, ["--help"])
    assert done.exit_code == 0
    for group in ("demo", "bench", "totesys", "kafka"):
        assert f"  {group}" in done.stdout
    for args in (["demo", "-h"], ["bench", "-h"], ["totesys", "seed", "-h"]):
        shown = CliRunner().invoke(harness_cli, args)
        assert shown.exit_code == 0 and "Usage: " in shown.stdout, args
    # The installed CLI runs production only.
    for args in (["demo"], ["bench"], ["totesys", "seed"], ["totesys", "simulate"],
                 ["kafka", "produce-sample"]):  # fmt: skip
        assert run(*args, "-h")[0] == 2, args
    # `make demo` and `make bench` run it from the checkout, as a module.
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "demo", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "Usage: python -m harness demo" in proc.stdout, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["db", "-h"],
        ["db", "upgrade", "-h"],
        ["db", "current", "-h"],
        ["storage", "upload", "-h"],
        ["storage", "ls", "-h"],
        ["status", "-h"],
        ["db", "url", "-h"],
    ],
)
def test_every_command_has_help(args: list[str]) -> None:
    code, out, _ = run(*args)
    assert code == 0
    assert "Usage: " in out


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and __version__ in out


def test_upgrade_current_and_status_on_a_fresh_database(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    heads = sorted(head_revisions(alembic_config(empty_db_url)))
    code, out, _ = run("db", "current")
    assert (code, out.strip()) == (0, f"base (no migrations applied) (behind head {heads[0]})")
    code, out, _ = run("db", "upgrade")
    assert (code, out.strip()) == (0, f"database at {heads[0]}")
    code, out, _ = run("db", "current", "--json")
    assert json.loads(out) == {"current": heads, "heads": heads}
    code, out, _ = run("status", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["at_head"] is True
    # The demo table is not in the main history (tables one onboarded oneself may be).
    assert "cubic_ods_qlik__edw_sample" not in [t["table"] for t in report["tables"]]
    assert report["incoming_objects"] == 0


def test_upload_ls_and_status_show_the_files(platform: Settings, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "cubic/ods_qlik/EDW.X").mkdir(parents=True)
    (src / "cubic/ods_qlik/EDW.X/LOAD00000001.csv").write_text("A\n1\n")
    (src / "top.txt").write_text("t")
    code, out, _ = run("storage", "upload", str(src), "--zone", "incoming", "--prefix", "seed")
    assert (code, out.strip()) == (0, "uploaded 2 file(s), skipped 0 already present")
    _, out, _ = run("storage", "upload", str(src), "--zone", "incoming", "--prefix", "seed")
    assert out.strip() == "uploaded 0 file(s), skipped 2 already present"
    _, out, _ = run("storage", "ls", "--zone", "incoming", "--json")
    keys = [json.loads(line)["key"] for line in out.splitlines()]
    assert keys == ["seed/cubic/ods_qlik/EDW.X/LOAD00000001.csv", "seed/top.txt"]
    code, out, _ = run("status")
    assert code == 0
    assert "unregistered files in incoming (2):" in out


def test_unknown_zone_is_one_line_and_exit_2() -> None:
    code, _, err = run("storage", "ls", "--zone", "landing")
    assert code == 2
    assert err == (
        "Error: unknown zone 'landing' (zones: incoming, archive, error, springboard, operations)\n"
    )


def test_refused_database_is_one_line_and_password_is_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://dp:s3cret@127.0.0.1:1/data_platform")
    code, _, err = run("db", "current")
    assert code == 3
    assert err.startswith("Error: cannot connect to postgresql+psycopg2://dp:***@127.0.0.1:1/")
    assert "s3cret" not in err
    assert err.count("\n") == 1


def test_missing_bucket_is_one_line(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_BUCKET_ARCHIVE", "absent-bucket")
    code, _, err = run("storage", "ls", "--zone", "archive")
    assert (code, err) == (4, "Error: bucket does not exist: s3://absent-bucket\n")


def test_debug_shows_the_traceback() -> None:
    code, _, err = run("--debug", "storage", "ls", "--zone", "landing")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().endswith(
        "Error: unknown zone 'landing' (zones: incoming, archive, error, springboard, operations)"
    )


def _subprocess_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "S3_"))}
    env.update(DATABASE_URL=db_url, DATA_PLATFORM_HOME=str(tmp_path / "home"))
    return env


def test_console_script_and_python_m(db_url: str, tmp_path: Path) -> None:
    env = _subprocess_env(tmp_path, db_url)
    script = Path(sys.executable).parent / "data-platform"
    for argv in (
        [str(script), "db", "current"],
        [sys.executable, "-m", "data_platform", "db", "current"],
    ):
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().endswith("(at head)")
    proc = subprocess.run(
        [str(script), "storage", "ls", "--zone", "nowhere"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: unknown zone 'nowhere'")


def test_alembic_command_line_from_the_repository_root(empty_db_url: str, tmp_path: Path) -> None:
    env = _subprocess_env(tmp_path, empty_db_url)
    alembic = Path(sys.executable).parent / "alembic"
    proc = subprocess.run(
        [str(alembic), "upgrade", "head"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [str(alembic), "current"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    heads = head_revisions(alembic_config(empty_db_url))
    assert proc.stdout.split()[0] in heads


def test_the_cli_reference_is_current() -> None:
    from data_platform.cli.reference import render

    assert (REPO / "doc" / "cli.md").read_text() == render(), (
        "doc/cli.md is stale: python -m data_platform.cli.reference > doc/cli.md"
    )


def test_run_reports_and_exits_1_when_a_load_errors(platform: Settings) -> None:
    from data_platform.storage import get_zone
    from data_platform.storage.transfer import upload_tree
    from harness.demo import REPO_SAMPLE_DIR, onboard_demo_tables

    onboard_demo_tables()
    upload_tree(REPO_SAMPLE_DIR, "incoming")
    code, out, _ = run("run", "--json")
    summary = json.loads(out)["cubic_qlik"]
    assert code == 0
    assert (summary["scan"]["new_loads"], summary["ingest"]["archived"]) == (4, 4)
    bad = "cubic/ods_qlik/EDW.SAMPLE__ct/20211202-000000000.csv"
    dfm = "cubic/ods_qlik/EDW.SAMPLE__ct/20211201-120000000.dfm"
    incoming, archive = get_zone("incoming"), get_zone("archive")
    archived = next(info.key for info in archive.list() if info.key.endswith(dfm.rsplit("/")[-1]))
    with archive.open(archived) as body:
        incoming.put(bad.replace(".csv", ".dfm"), body)
    header = (
        "header__change_seq,header__change_oper,header__timestamp,SAMPLE_ID,SAMPLE_NAME,"
        "FARE_AMOUNT,IS_ACTIVE,EDW_INSERTED_DTM,EDW_UPDATED_DTM\n"
    )
    row = "20211202000000000000000000000000001,U,2021-12-02 00:00:00,1,x,lots,true,,\n"
    import io

    incoming.put(bad, io.BytesIO((header + row).encode()))
    code, out, _ = run("run")
    assert code == 1
    assert f"  error: {bad}: line 2, column FARE_AMOUNT: invalid input syntax" in out

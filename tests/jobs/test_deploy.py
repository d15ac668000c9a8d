"""`deploy glue`: the plan changes nothing, apply makes exactly the plan, against moto."""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile

import pytest
from click.testing import CliRunner

from data_platform.cli.main import cli
from data_platform.errors import ConfigError
from data_platform.jobs.deploy import apply_glue_deploy, package_zip, plan_glue_deploy
from data_platform.jobs.job_input import JobEnv, ZoneLocation
from data_platform.jobs.scripts import aws_s3_dir, repo_root
from data_platform.settings import reset_settings
from data_platform.storage import get_zone

ROLE = "arn:aws:iam::123456789012:role/glue-jobs"
SCRIPT_KEY = "glue_jobs/cubic_ingestion/ingest_incoming.py"
ZIP_KEY = "glue_jobs/lib/data_platform.zip"


def _read(key: str) -> bytes:
    with get_zone("operations").open(key) as body:
        return body.read()


def test_plan_changes_nothing_and_apply_creates_everything(glue, s3_env: dict[str, str]) -> None:
    plan = plan_glue_deploy(role=ROLE, glue=glue)
    assert [(u.key, u.state) for u in plan.uploads] == [(SCRIPT_KEY, "new"), (ZIP_KEY, "new")]
    assert [(j.name, j.action) for j in plan.jobs] == [("ingest_incoming", "create")]
    assert plan.changes == 3
    assert list(get_zone("operations").list()) == []
    assert glue.get_jobs()["Jobs"] == []

    apply_glue_deploy(plan, glue=glue)
    assert _read(SCRIPT_KEY) == (aws_s3_dir() / SCRIPT_KEY).read_bytes()
    names = zipfile.ZipFile(io.BytesIO(_read(ZIP_KEY))).namelist()
    assert "data_platform/batch/cubic_qlik/spark/ingest_incoming.py" in names
    assert "data_platform/batch/cubic_qlik/dfm.py" in names
    job = glue.get_job(JobName="ingest_incoming")["Job"]
    ops = s3_env["operations"]
    assert (job["GlueVersion"], job["Role"]) == ("5.0", ROLE)
    assert job["Command"]["ScriptLocation"] == f"s3://{ops}/{SCRIPT_KEY}"
    assert job["DefaultArguments"]["--extra-py-files"] == f"s3://{ops}/{ZIP_KEY}"
    env = JobEnv.from_json(job["DefaultArguments"]["--ENV"])
    assert env.zones["incoming"] == ZoneLocation(s3_env["incoming"], "dev/incoming/")
    assert env.zones["springboard"] == ZoneLocation(s3_env["springboard"])

    again = plan_glue_deploy(glue=glue)  # no --role: the job keeps its role
    assert again.changes == 0
    assert {u.state for u in again.uploads} == {"unchanged"}
    assert [(j.action, j.changed) for j in again.jobs] == [("unchanged", ())]


def test_changed_settings_plan_and_apply_an_update(
    glue, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_glue_deploy(plan_glue_deploy(role=ROLE, glue=glue), glue=glue)
    monkeypatch.setenv("GLUE_DATABASE_SPRINGBOARD", "lake")
    reset_settings()
    plan = plan_glue_deploy(glue=glue)
    assert [(j.action, j.changed) for j in plan.jobs] == [("update", ("DefaultArguments",))]
    assert plan.changes == 1

    # moto's Glue has no UpdateJob: record the call the real API gets.
    calls: list[dict] = []
    glue.update_job = lambda **kwargs: calls.append(kwargs)
    apply_glue_deploy(plan, glue=glue)
    (call,) = calls
    assert call["JobName"] == "ingest_incoming"
    update = call["JobUpdate"]
    assert (update["Role"], update["GlueVersion"]) == (ROLE, "5.0")
    assert JobEnv.from_json(update["DefaultArguments"]["--ENV"]).glue_database_springboard == "lake"


def test_a_new_job_needs_a_role(glue) -> None:
    with pytest.raises(ConfigError, match="does not exist yet: give --role to create it"):
        plan_glue_deploy(glue=glue)


def test_the_local_store_has_no_glue() -> None:
    with pytest.raises(ConfigError, match="deploy glue needs the zones on S3"):
        plan_glue_deploy()


def test_cli_prints_the_plan_then_applies_it(glue, s3_env: dict[str, str]) -> None:
    ops = f"s3://{s3_env['operations']}/"
    result = CliRunner().invoke(cli, ["deploy", "glue", "--role", ROLE])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"upload new       {SCRIPT_KEY}  (aws/s3/{SCRIPT_KEY})",
        f"upload new       {ZIP_KEY}  (zip of data_platform/)",
        "job    create    ingest_incoming",
        f"3 change(s) planned for {ops}; --apply makes them",
    ]
    assert glue.get_jobs()["Jobs"] == []

    result = CliRunner().invoke(cli, ["deploy", "glue", "--apply", "--role", ROLE])
    assert (result.exit_code, result.stdout.splitlines()[-1]) == (
        0,
        f"applied 3 change(s) to {ops}",
    )

    result = CliRunner().invoke(cli, ["deploy", "glue", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["changes"] == 0


def test_cli_error_is_one_line() -> None:
    result = CliRunner().invoke(cli, ["deploy", "glue"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: deploy glue needs the zones on S3 (set S3_BUCKET_*): the local store has no Glue\n"
    )


def test_package_zip_is_reproducible() -> None:
    package = repo_root() / "data_platform"
    first, second = package_zip(package), package_zip(package)
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == sorted(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_every_glue_script_is_registered_and_stays_thin() -> None:
    from data_platform.jobs.scripts import GLUE_SCRIPTS

    scripts = sorted(p.relative_to(aws_s3_dir()).as_posix() for p in aws_s3_dir().rglob("*.py"))
    assert scripts == sorted(GLUE_SCRIPTS.values())
    for relative in scripts:
        tree = ast.parse((aws_s3_dir() / relative).read_text())
        module = relative.rsplit("/", 1)[-1].removesuffix(".py")
        # After the docstring; a job is a source's Spark code (its `spark/` package).
        statements = [ast.unparse(node) for node in tree.body[1:]]
        assert len(statements) == 3, statements
        assert statements[0] == "import sys"
        assert re.fullmatch(
            rf"from data_platform\.batch\.\w+\.spark\.{module} import main", statements[1]
        )
        assert statements[2] == "main(sys.argv)"

"""What AWS Glue needs from this repository, checked here: the job's imports and CI."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import zipfile

import yaml

from data_platform.jobs.deploy import package_zip
from data_platform.jobs.scripts import repo_root

# Host-side dependencies a Glue 5.0 job does not have (only the zip of data_platform).
NOT_ON_GLUE = ("pydantic", "pydantic_settings", "sqlalchemy", "alembic", "psycopg2", "click")

BLOCKER = f"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {NOT_ON_GLUE!r}:
            raise ImportError(f"{{name}} is not on AWS Glue")
        return None

sys.meta_path.insert(0, Block())
import data_platform.batch.cubic_qlik.spark.ingest_incoming
print("ok")
"""


def test_the_job_imports_without_host_dependencies() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, cwd=repo_root()
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


def test_the_glue_zip_holds_no_harness() -> None:
    """The demo, benchmarks, sample writers, stand-in APIs and broker, seed and simulate
    live in harness/, outside the package: not zipped, and nothing zipped imports them."""
    archive = zipfile.ZipFile(io.BytesIO(package_zip(repo_root() / "data_platform")))
    names = archive.namelist()
    assert {name.split("/")[0] for name in names} == {"data_platform"}
    for gone in ("data_platform/demo.py", "data_platform/bench/", "demo_api.py", "mock_broker"):
        assert not [name for name in names if gone in name], gone
    importers = []
    for name in names:
        if name.endswith(".py"):
            for node in ast.walk(ast.parse(archive.read(name))):
                modules = (
                    [alias.name for alias in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom)
                    else []
                )  # fmt: skip
                importers += [name for module in modules if module.split(".")[0] == "harness"]
    assert importers == []


def test_ci_runs_the_tests_on_pull_requests_and_deploys_main() -> None:
    text = (repo_root() / ".github/workflows/ci.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    test_steps = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "make test" in test_steps
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test"
    assert "refs/heads/main" in deploy["if"] and "push" in deploy["if"]
    assert any("deploy glue --apply" in step.get("run", "") for step in deploy["steps"])
    # Credentials come from repository secrets, never from the file.
    assert "${{ secrets.AWS_ACCESS_KEY_ID }}" in text and "AKIA" not in text

"""Run `dbt build` on the dbt project in `transform/` through dbt's Python API.

The profile is written per run into a private temporary directory from the platform's
settings (DATABASE_URL, else the embedded server). It names the password only as
`env_var('DBT_ENV_SECRET_DP_PASSWORD')`, set for the run alone: dbt scrubs values of
`DBT_ENV_SECRET_*` variables from its messages and logs, so the password is never written
to disk, printed or logged. dbt's target/ and logs/ live under the data home
(`<DATA_PLATFORM_HOME>/dbt/`), never in the checkout. dbt's console output is off; its
events are logged one line each by the `data_platform.transform` logger.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from data_platform.errors import DataPlatformError
from data_platform.settings import get_settings
from data_platform.transform.result import NodeResult, TransformResult

log = logging.getLogger("data_platform.transform")

PROFILE = "data_platform"
TARGET = "platform"
# The schema of the models (dbt_project.yml) and the target's default schema.
SCHEMA = "analytics"
PASSWORD_ENV = "DBT_ENV_SECRET_DP_PASSWORD"
THREADS = 4


class TransformError(DataPlatformError):
    """dbt could not run at all (invalid project, unreadable profile, bad selector)."""


def project_dir() -> Path:
    """The dbt project: `transform/` of the checkout."""
    return Path(__file__).resolve().parent.parent.parent / "transform"


def dbt_home() -> Path:
    """Where dbt's target/ and logs/ go: `dbt/` under the data home."""
    return get_settings().home / "dbt"


def connection() -> tuple[dict[str, Any], str]:
    """The profile's output for the platform's database (no password in it), and the password."""
    from sqlalchemy.engine import make_url

    from data_platform.db.engine import database_url

    url = make_url(database_url())
    host = url.host or url.query.get("host")
    if isinstance(host, tuple):  # a query key given twice
        host = host[0]
    output: dict[str, Any] = {
        "type": "postgres",
        "host": host or "localhost",
        "port": url.port or 5432,
        "user": url.username or "",
        "password": "{{ env_var('" + PASSWORD_ENV + "') }}",
        "dbname": url.database or "",
        "schema": SCHEMA,
        "threads": THREADS,
    }
    for key in ("sslmode", "sslrootcert"):
        value = url.query.get(key)
        if value:
            output[key] = value if isinstance(value, str) else value[0]
    return output, url.password or ""


def _profile_text(output: dict[str, Any]) -> str:
    # JSON is YAML: no YAML writer needed, every value quoted.
    profile = {PROFILE: {"target": TARGET, "outputs": {TARGET: output}}}
    return json.dumps(profile, indent=2) + "\n"


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block only, then restore what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _log_event(event: Any) -> None:
    """One log line per dbt event that matters; the rest at DEBUG, dbt's format dropped."""
    name = event.info.name
    data = event.data
    if name == "LogModelResult":
        node = data.node_info.node_name
        if data.status == "error":
            log.error("model %s failed", node)
        else:
            log.info(
                "model %s built (%s, %.1fs)",
                node,
                data.status,
                data.execution_time,
            )
    elif name == "LogTestResult":
        test = data.name
        if data.status == "pass":
            log.info("test %s passed", test)
        elif data.status == "warn":
            log.warning("test %s warned: %s failing rows", test, data.num_failures)
        elif data.status == "fail":
            log.error("test %s failed: %s failing rows", test, data.num_failures)
        else:
            log.error("test %s errored", test)
    elif name == "SkippingDetails":
        log.warning(
            "%s %s skipped: an upstream node failed",
            data.resource_type,
            data.node_name,
        )
    elif name.startswith("RunResult"):
        return  # the end-of-run recap of the lines above (and of the result's errors)
    elif event.info.level == "warn":
        log.warning("dbt: %s", event.info.msg)
    elif event.info.level in ("info", "error") and log.isEnabledFor(logging.DEBUG):
        log.debug("dbt: %s", event.info.msg)


def parse_vars(text: str, origin: str = "--vars") -> dict[str, Any]:
    """dbt vars from `text`, a YAML (or JSON, which is YAML) mapping such as
    `{footfall_before_start: 2023-01-01}`, read by dbt's own YAML loader as `dbt --vars`
    reads it (so an unquoted date is a date, as in dbt). Empty text: no vars. Raises
    TransformError naming `origin` when the text is not YAML or not a mapping."""
    from dbt.clients.yaml_helper import load_yaml_text
    from dbt_common.exceptions import DbtValidationError

    if not text.strip():
        return {}
    try:
        parsed = load_yaml_text(text)
    except DbtValidationError as exc:
        reason = " ".join(str(exc).split())
        raise TransformError(f"{origin} is not YAML or JSON: {reason}") from None
    if not isinstance(parsed, dict):
        raise TransformError(
            f"{origin} must be a mapping of var names to values, e.g. "
            f"'{{footfall_before_start: 2023-01-01}}', got {text!r}"
        )
    return parsed


def _node_results(run_results: Any) -> list[NodeResult]:
    nodes = []
    for item in getattr(run_results, "results", None) or []:
        node = item.node
        status = getattr(item.status, "value", str(item.status))
        nodes.append(
            NodeResult(
                name=node.name,
                kind=str(getattr(node.resource_type, "value", node.resource_type)),
                status=status,
                failures=item.failures,
                message=item.message,
            )
        )
    return nodes


FULL_BUILD = "last_full_build"  # under dbt_home(): the last build of every model


def _keep_full_build(target: Path, kept: Path) -> None:
    """Copy the results and manifest of a build of every model beside the target, where
    a later `--select` run or a failed one cannot overwrite them (the transform page
    shows this build first). Written whole, then renamed into place."""
    kept.mkdir(parents=True, exist_ok=True)
    for name in ("run_results.json", "manifest.json"):
        source = target / name
        if source.exists():
            partial = kept / f".{name}.partial"
            shutil.copyfile(source, partial)
            partial.replace(kept / name)


def run_transform(
    select: list[str] | None = None,
    *,
    vars: Mapping[str, Any] | str | None = None,
    command: str = "build",
) -> TransformResult:
    """Run `dbt build` (models and their tests, in DAG order) on the platform's database.

    `select`: dbt node selectors (`pedestrian_top10_daily+`, `tag:x`); all when None.
    `vars`: dbt vars, a mapping (e.g. {"footfall_before_start": "2019-03-01"}) or YAML /
    JSON text as `dbt --vars` takes it (`parse_vars`). They override, name by name, those
    of the TRANSFORM_VARS setting, which override dbt_project.yml's: so `data-platform run`
    (which passes none) builds with TRANSFORM_VARS, never undoing what the setting chose.
    `command`: "build", "test" to run the data tests on the tables as they are, or
    "freshness" for dbt's source freshness (`dbt source freshness`: each source table's
    newest landing, as the platform's loads record it, against its thresholds).

    A failing data test or model makes the result not ok; it names each failed node
    and a test's failing rows' count. Raises TransformError when dbt cannot run at all,
    or when `vars` or TRANSFORM_VARS is not a YAML mapping.
    """
    import yaml
    from dbt.cli.main import dbtRunner

    if command not in ("build", "test", "freshness"):
        raise ValueError(f"command must be build, test or freshness, got {command!r}")
    given = parse_vars(vars) if isinstance(vars, str) else dict(vars or {})
    chosen = {**parse_vars(get_settings().transform_vars, "TRANSFORM_VARS"), **given}
    output, password = connection()
    home = dbt_home()
    home.mkdir(parents=True, exist_ok=True)
    args = [
        *(["source", "freshness"] if command == "freshness" else [command]),
        "--project-dir",
        str(project_dir()),
        "--target-path",
        str(home / "target"),
        "--log-path",
        str(home / "logs"),
        "--log-level",
        "none",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]
    for selector in select or []:
        args += ["--select", selector]
    if chosen:
        # YAML, not JSON: a date the YAML gave stays a date for dbt, as with `dbt --vars`.
        args += ["--vars", yaml.safe_dump(chosen, default_flow_style=True).strip()]
    # libpq reads PGOPTIONS: ISO dates whatever the server's default DateStyle.
    pgoptions = " ".join(filter(None, [os.environ.get("PGOPTIONS"), "-c datestyle=ISO"]))
    env = {
        PASSWORD_ENV: password,
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PGOPTIONS": pgoptions,
    }
    with tempfile.TemporaryDirectory(prefix="dp-dbt-profile-") as profiles:
        (Path(profiles) / "profiles.yml").write_text(_profile_text(output))
        log.info("dbt %s on %s", command, project_dir(), extra={"select": select or "all"})
        with _environment(env):
            outcome = dbtRunner(callbacks=[_log_event]).invoke([*args, "--profiles-dir", profiles])
    if outcome.result is None or not hasattr(outcome.result, "results"):
        reason = outcome.exception or "dbt returned no results"
        raise TransformError(f"dbt {command} could not run: {reason}")
    result = TransformResult(nodes=_node_results(outcome.result), success=outcome.success)
    if command == "build" and not select:
        _keep_full_build(home / "target", home / FULL_BUILD)
    for node in result.failed:
        if node.status == "error":
            log.error("%s", node.describe())
    if select and not result.nodes:  # not "ok": the caller refuses it (cli/transform.py)
        log.warning("dbt %s: %s selects no model or test", command, " ".join(select))
    else:
        log.info("%s", result.summary())
    return result

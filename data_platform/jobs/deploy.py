"""Promote the Glue jobs to AWS: `aws/s3/` and a zip of data_platform to the operations
zone, then create or update each Glue job definition.

`plan_glue_deploy` reads what is there and says what would change; `apply_glue_deploy`
makes exactly those changes. Code in the repository is the source of truth: a default
argument edited in the console is reverted by the next deploy.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from data_platform.errors import ConfigError, DataPlatformError
from data_platform.jobs.env import job_env
from data_platform.jobs.scripts import GLUE_SCRIPTS, PACKAGE_ZIP_KEY, aws_s3_dir, repo_root

if TYPE_CHECKING:
    from data_platform.settings import Settings
    from data_platform.storage import ZoneStore

log = logging.getLogger(__name__)

GLUE_VERSION = "5.0"
WORKER_TYPE = "G.1X"
NUMBER_OF_WORKERS = 2
TIMEOUT_MINUTES = 60
# run_springboard starts one run per batch of loads; batches may overlap.
MAX_CONCURRENT_RUNS = 10
# Fields of a job definition this deploy owns and compares.
JOB_FIELDS = (
    "Role",
    "Description",
    "Command",
    "DefaultArguments",
    "GlueVersion",
    "WorkerType",
    "NumberOfWorkers",
    "Timeout",
    "MaxRetries",
    "ExecutionProperty",
)


@dataclass(frozen=True)
class Upload:
    key: str  # in the operations zone
    source: str  # where the bytes come from, for the plan
    body: bytes
    state: Literal["new", "changed", "unchanged"]


@dataclass(frozen=True)
class JobChange:
    name: str
    action: Literal["create", "update", "unchanged"]
    changed: tuple[str, ...]  # fields that differ (update)
    definition: dict[str, Any]  # the whole desired definition, without the name


@dataclass(frozen=True)
class DeployPlan:
    target: str  # the operations zone, e.g. s3://bucket/prefix/
    uploads: tuple[Upload, ...]
    jobs: tuple[JobChange, ...]

    @property
    def changes(self) -> int:
        uploads = sum(upload.state != "unchanged" for upload in self.uploads)
        return uploads + sum(job.action != "unchanged" for job in self.jobs)

    def lines(self) -> list[str]:
        lines = [f"upload {u.state:<9} {u.key}  ({u.source})" for u in self.uploads]
        for job in self.jobs:
            detail = f": {', '.join(job.changed)}" if job.changed else ""
            lines.append(f"job    {job.action:<9} {job.name}{detail}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "changes": self.changes,
            "uploads": [{"key": u.key, "source": u.source, "state": u.state} for u in self.uploads],
            "jobs": [
                {"name": j.name, "action": j.action, "changed": list(j.changed)} for j in self.jobs
            ],
        }


def package_zip(package_dir: Path) -> bytes:
    """The data_platform package as a zip for --extra-py-files.

    Entries are sorted with fixed timestamps, so the same code gives the same bytes and an
    unchanged package plans as unchanged.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package_dir.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(
                path.relative_to(package_dir.parent).as_posix(), date_time=(1980, 1, 1, 0, 0, 0)
            )
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _artifacts() -> list[tuple[str, str, bytes]]:
    """(key, source, bytes) of everything deployed to the operations zone."""
    base = aws_s3_dir()
    files = [
        (path.relative_to(base).as_posix(), f"aws/s3/{path.relative_to(base).as_posix()}")
        for path in sorted(base.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    artifacts = [(key, source, (base / key).read_bytes()) for key, source in files]
    package = package_zip(repo_root() / "data_platform")
    artifacts.append((PACKAGE_ZIP_KEY, "zip of data_platform/", package))
    return artifacts


def _upload_state(zone: ZoneStore, key: str, body: bytes) -> Literal["new", "changed", "unchanged"]:
    existing = zone.head(key)
    if existing is None:
        return "new"
    if existing.size != len(body):
        return "changed"
    with zone.open(key) as current:
        return "unchanged" if current.read() == body else "changed"


def job_definition(name: str, zone: ZoneStore, env_json: str, role: str | None) -> dict[str, Any]:
    return {
        "Role": role,
        "Description": f"data_platform {name} (deployed by data-platform deploy glue)",
        "Command": {
            "Name": "glueetl",
            "ScriptLocation": zone.describe(GLUE_SCRIPTS[name]),
            "PythonVersion": "3",
        },
        "DefaultArguments": {
            "--ENV": env_json,
            "--extra-py-files": zone.describe(PACKAGE_ZIP_KEY),
            "--job-language": "python",
        },
        "GlueVersion": GLUE_VERSION,
        "WorkerType": WORKER_TYPE,
        "NumberOfWorkers": NUMBER_OF_WORKERS,
        "Timeout": TIMEOUT_MINUTES,
        "MaxRetries": 0,
        "ExecutionProperty": {"MaxConcurrentRuns": MAX_CONCURRENT_RUNS},
    }


def _differences(existing: dict[str, Any], desired: dict[str, Any]) -> tuple[str, ...]:
    changed = []
    for field in JOB_FIELDS:
        want, have = desired.get(field), existing.get(field)
        if isinstance(want, dict) and field != "DefaultArguments":
            # Glue may add keys of its own (e.g. Command.Runtime); compare ours only.
            have = {k: (have or {}).get(k) for k in want}
        if want != have:
            changed.append(field)
    return tuple(changed)


def _existing_job(glue: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return glue.get_job(JobName=name)["Job"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
            return None
        raise DataPlatformError(f"Glue get_job {name}: {exc}") from exc
    except BotoCoreError as exc:
        raise DataPlatformError(f"Glue get_job {name}: {exc}") from exc


def _operations_zone(settings: Settings) -> ZoneStore:
    from data_platform.storage import get_zone

    if not settings.uses_s3:
        raise ConfigError(
            "deploy glue needs the zones on S3 (set S3_BUCKET_*): the local store has no Glue"
        )
    return get_zone("operations", settings)


def glue_client() -> Any:
    """boto3's Glue client; AWS_ENDPOINT_URL_GLUE points it elsewhere (tests: moto)."""
    import boto3

    return boto3.client("glue")


def plan_glue_deploy(
    settings: Settings | None = None, *, role: str | None = None, glue: Any | None = None
) -> DeployPlan:
    """What `apply_glue_deploy` would change. Reads only."""
    from data_platform.settings import get_settings

    settings = settings or get_settings()
    zone = _operations_zone(settings)
    glue = glue or glue_client()
    uploads = tuple(
        Upload(key, source, body, _upload_state(zone, key, body))
        for key, source, body in _artifacts()
    )
    env_json = job_env(settings).to_json()
    jobs = []
    for name in GLUE_SCRIPTS:
        existing = _existing_job(glue, name)
        if existing is None:
            if not role:
                raise ConfigError(f"Glue job {name} does not exist yet: give --role to create it")
            jobs.append(JobChange(name, "create", (), job_definition(name, zone, env_json, role)))
            continue
        desired = job_definition(name, zone, env_json, role or existing.get("Role"))
        changed = _differences(existing, desired)
        jobs.append(JobChange(name, "update" if changed else "unchanged", changed, desired))
    return DeployPlan(zone.describe(), uploads, tuple(jobs))


def apply_glue_deploy(
    plan: DeployPlan, settings: Settings | None = None, *, glue: Any | None = None
) -> None:
    """Make the plan's changes: uploads first, so a job never points at a missing script."""
    from botocore.exceptions import BotoCoreError, ClientError

    from data_platform.settings import get_settings

    settings = settings or get_settings()
    zone = _operations_zone(settings)
    glue = glue or glue_client()
    for upload in plan.uploads:
        if upload.state != "unchanged":
            zone.put(upload.key, io.BytesIO(upload.body))
            log.info("uploaded %s", zone.describe(upload.key), extra={"key": upload.key})
    for job in plan.jobs:
        try:
            if job.action == "create":
                glue.create_job(Name=job.name, **job.definition)
            elif job.action == "update":
                glue.update_job(JobName=job.name, JobUpdate=job.definition)
        except (ClientError, BotoCoreError) as exc:
            raise DataPlatformError(f"Glue {job.action} job {job.name}: {exc}") from exc
        if job.action != "unchanged":
            log.info("%sd Glue job %s", job.action, job.name, extra={"job_name": job.name})

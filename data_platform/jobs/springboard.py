"""Hand loads to the `ingest_incoming` job and wait for its answer per load.

The Qlik source (ingest) calls `run_springboard` when SPRINGBOARD_ENABLED is set. Local store:
the aws/ script runs in a subprocess with plain PySpark. S3 on AWS: StartJobRun, then
GetJobRun until the run ends. Either way the job writes its per-load results to the
operations zone and this module reads them back.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from data_platform.errors import ConfigError, JobRunError
from data_platform.jobs.env import job_env, local_job_env
from data_platform.jobs.job_input import JobInput, JobLoad
from data_platform.jobs.scripts import INGEST_INCOMING as JOB_NAME
from data_platform.jobs.scripts import RESULTS_PREFIX, repo_root, script_path

if TYPE_CHECKING:
    from data_platform.settings import Settings

log = logging.getLogger(__name__)

Mode = Literal["local", "aws"]
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "ERROR", "TIMEOUT", "STOPPED", "EXPIRED"})
# Plain PySpark in the subprocess: every core, no web UI.
LOCAL_SUBMIT_ARGS = "--master local[*] --conf spark.ui.enabled=false pyspark-shell"


def springboard_mode(settings: Settings) -> Mode:
    """local on the local store, aws on S3; S3 behind S3_ENDPOINT_URL has neither."""
    if not settings.uses_s3:
        return "local"
    if settings.s3_endpoint_url:
        raise ConfigError(
            "the springboard cannot run here: local Spark reads file:// only and AWS Glue "
            f"cannot reach S3_ENDPOINT_URL={settings.s3_endpoint_url}; run the job in the "
            "Glue container (docker-compose run --rm glue__local gluesparksubmit ...)"
        )
    return "aws"


def run_springboard(
    loads: Sequence[JobLoad],
    settings: Settings | None = None,
    *,
    mode: Mode | None = None,
    timeout_seconds: float = 7200,
    poll_seconds: float = 15,
    glue_client: Any | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str | None]:
    """Convert `loads` to Parquet in the springboard zone with the `ingest_incoming` job.

    Contract:
    - Input: JobLoads with distinct `source_key`s whose data file and .dfm are still in
      the incoming zone (call before archiving or erroring the files). Build them with
      `JobLoad.create(key, table_name, snapshot_time, is_raw=...)`.
    - Returns a dict with exactly the input's source keys, in input order: None when the
      load's partition was written, else a one-line reason naming the file (and line and
      column for a value that does not cast). A failed load writes nothing; a re-run of a
      load replaces its partition and nothing else, so retrying is safe.
    - An empty `loads` returns {} and starts nothing.
    - Raises ConfigError when the springboard cannot run with these settings (S3 behind
      S3_ENDPOINT_URL, duplicate keys, no aws/ checkout), and JobRunError when the run
      failed as a whole: did not start (job not deployed, AWS error), crashed or timed
      out without a result, or answered for other keys. Then no load is to blame: leave
      them to be retried rather than erroring them.
    - Mode: `settings` decide (local store -> "local", S3 -> "aws") unless `mode` is
      given. It does not check SPRINGBOARD_ENABLED; the caller does.
    - Blocks until the run ends: up to `timeout_seconds` (the local subprocess is killed
      then; an AWS run is left running and reported as a JobRunError).
    """
    from data_platform.settings import get_settings

    settings = settings or get_settings()
    job_input = JobInput(tuple(loads))
    if not job_input.loads:
        return {}
    mode = mode or springboard_mode(settings)
    result_key = f"{RESULTS_PREFIX}{JOB_NAME}/{uuid.uuid4().hex}.json"
    if mode == "local":
        failure = _run_local(job_input, settings, result_key, timeout_seconds)
    else:
        failure = _run_aws(
            job_input, settings, result_key, glue_client, timeout_seconds, poll_seconds, sleep
        )
    return _read_results(settings, result_key, job_input, failure)


def _run_local(job_input: JobInput, settings: Settings, result_key: str, timeout: float) -> str:
    """Run the aws/ script with this Python; answers what to say if no result appears."""
    argv = [
        sys.executable,
        str(script_path(JOB_NAME)),
        *("--JOB_NAME", JOB_NAME),
        *("--ENV", local_job_env(settings).to_json()),
        *("--INPUT", job_input.to_json()),
        *("--RESULT_KEY", result_key),
    ]
    environ = dict(os.environ)
    # The script imports data_platform; make the checkout importable even when the
    # package is not installed into this Python.
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(repo_root()), environ.get("PYTHONPATH", "")) if p
    )
    environ.setdefault("PYSPARK_SUBMIT_ARGS", LOCAL_SUBMIT_ARGS)
    ids = {"job_name": JOB_NAME, "loads": len(job_input.loads)}
    log.info("running %s locally", JOB_NAME, extra=ids)
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environ)
    except subprocess.TimeoutExpired as exc:
        raise JobRunError(f"local {JOB_NAME} run did not finish within {timeout:.0f}s") from exc
    log.info(
        "local %s exited %s after %.1fs",
        JOB_NAME,
        done.returncode,
        time.monotonic() - started,
        extra=ids,
    )
    tail = " | ".join(done.stderr.strip().splitlines()[-3:])
    return f"local {JOB_NAME} run exited {done.returncode}: {tail}"


def _run_aws(
    job_input: JobInput,
    settings: Settings,
    result_key: str,
    glue_client: Any | None,
    timeout: float,
    poll: float,
    sleep: Callable[[float], None],
) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    glue = glue_client or _glue_client()
    arguments = {
        "--ENV": job_env(settings).to_json(),
        "--INPUT": job_input.to_json(),
        "--RESULT_KEY": result_key,
    }
    try:
        run_id = glue.start_job_run(JobName=JOB_NAME, Arguments=arguments)["JobRunId"]
    except (ClientError, BotoCoreError) as exc:
        raise JobRunError(
            f"cannot start Glue job {JOB_NAME}: {exc} "
            "(deploy it: data-platform deploy glue --apply)"
        ) from exc
    ids = {"job_name": JOB_NAME, "job_run_id": run_id, "loads": len(job_input.loads)}
    log.info("started Glue job run", extra=ids)
    deadline = time.monotonic() + timeout
    while True:
        try:
            run = glue.get_job_run(JobName=JOB_NAME, RunId=run_id)["JobRun"]
        except (ClientError, BotoCoreError) as exc:
            raise JobRunError(f"Glue job run {run_id}: {exc}") from exc
        state = run["JobRunState"]
        if state in TERMINAL_STATES:
            break
        if time.monotonic() >= deadline:
            raise JobRunError(
                f"Glue job run {run_id} still {state} after {timeout:.0f}s; left running"
            )
        sleep(poll)
    log.info("Glue job run ended %s", state, extra=ids)
    return f"Glue job run {run_id} ended {state}: {run.get('ErrorMessage') or 'no error message'}"


def _glue_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("glue", config=Config(retries={"max_attempts": 5, "mode": "standard"}))


def _read_results(
    settings: Settings, result_key: str, job_input: JobInput, failure: str
) -> dict[str, str | None]:
    from data_platform.storage import get_zone

    zone = get_zone("operations", settings)
    if zone.head(result_key) is None:
        raise JobRunError(f"{failure} (no result at {zone.describe(result_key)})")
    with zone.open(result_key) as body:
        document = json.loads(body.read())
    # The document only carries this run's answer; the job run history stays in Glue/logs.
    zone.delete(result_key)
    results = document.get("results") or {}
    keys = [load.source_key for load in job_input.loads]
    if set(results) != set(keys):
        raise JobRunError(f"{failure}: the result at {result_key} answers for other loads")
    return {key: results[key] for key in keys}

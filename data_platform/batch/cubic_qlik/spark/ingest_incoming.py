"""The `ingest_incoming` Glue job: Qlik loads in the incoming zone -> Parquet in the springboard.

Arguments, as AWS Glue passes them (`--NAME value`), read with awsglue's getResolvedOptions:

  --JOB_NAME     the job's name (Glue passes it; local runs pass it too)
  --ENV          JSON JobEnv: zone buckets and prefixes, catalog databases
  --INPUT        JSON list of JobLoad: source_key, table, is_raw, destination_path,
                 snapshot, identifier, load_id (optional)
  --OBJECT_KEY   instead of --INPUT: one key in the incoming zone, typed, for ad-hoc runs
  --RESULT_KEY   optional: write {"job_name", "results": {source_key: null | error}} to
                 this key in the operations zone (how run_springboard learns the outcome)

`aws/s3/glue_jobs/cubic_ingestion/ingest_incoming.py` calls `main(sys.argv)`; the CLI and
tests call `run(argv)` with the same list.
"""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession

from data_platform.batch.cubic_qlik.spark.convert import run_loads
from data_platform.errors import ConfigError, LoadError
from data_platform.jobs import hadoop_fs
from data_platform.jobs.job_input import JobEnv, JobInput, JobLoad
from data_platform.jobs.runtime import start_runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobArgs:
    job_name: str
    env: JobEnv
    job_input: JobInput | None = None
    object_key: str | None = None
    result_key: str | None = None
    glue_args: dict[str, Any] = field(default_factory=dict)  # all of them, for Job.init


def _given(argv: list[str], name: str) -> bool:
    return any(arg == f"--{name}" or arg.startswith(f"--{name}=") for arg in argv[1:])


def parse_args(argv: list[str]) -> JobArgs:
    """Parse `sys.argv` as Glue passes it (argv[0] is the script; Glue adds its own flags)."""
    from awsglue.utils import GlueArgumentError, getResolvedOptions

    chosen = [name for name in ("INPUT", "OBJECT_KEY") if _given(argv, name)]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --INPUT and --OBJECT_KEY")
    # getResolvedOptions makes every option it is asked for required, so optional ones
    # are asked for only when present.
    options = ["JOB_NAME", "ENV", *chosen, *(["RESULT_KEY"] if _given(argv, "RESULT_KEY") else [])]
    try:
        args = getResolvedOptions(argv, options)
    except GlueArgumentError as exc:
        raise ConfigError(f"job arguments: {exc}") from exc
    return JobArgs(
        job_name=args["JOB_NAME"],
        env=JobEnv.from_json(args["ENV"]),
        job_input=JobInput.from_json(args["INPUT"]) if "INPUT" in chosen else None,
        object_key=args.get("OBJECT_KEY"),
        result_key=args.get("RESULT_KEY"),
        glue_args=args,
    )


def table_name_for_key(key: str) -> str:
    """`cubic/ods_qlik/EDW.SAMPLE__ct/x.csv.gz` -> `cubic_ods_qlik__edw_sample__ct`."""
    *source, table = key.split("/")[:-1] or ["unknown"]
    return "__".join(
        part for part in ("_".join(source).lower(), table.lower().replace(".", "_")) if part
    )


def object_key_load(spark: SparkSession, env: JobEnv, key: str) -> JobLoad:
    """The load for an ad-hoc `--OBJECT_KEY` run, typed.

    Without the metadata database the snapshot is the last-modified time of the table's
    LOAD00000001 file (for a change file, of its table's), else of the object itself.
    """
    directory = posixpath.dirname(key)
    table_dir = directory.removesuffix("__ct")
    first_load = hadoop_fs.glob_files(spark, env.uri("incoming", f"{table_dir}/LOAD00000001.csv*"))
    source = first_load[0] if first_load else env.uri("incoming", key)
    if not hadoop_fs.exists(spark, source):
        raise LoadError(f"no such object: {source}", key=key)
    return JobLoad.create(key, table_name_for_key(key), hadoop_fs.modified_time(spark, source))


def _job_loads(
    spark: SparkSession, args: JobArgs
) -> tuple[tuple[JobLoad, ...], dict[str, str | None]]:
    if args.job_input is not None:
        return args.job_input.loads, {}
    assert args.object_key is not None
    try:
        return (object_key_load(spark, args.env, args.object_key),), {}
    except LoadError as exc:
        return (), {args.object_key: str(exc)}


def write_result(
    spark: SparkSession, env: JobEnv, key: str, job_name: str, results: dict[str, str | None]
) -> None:
    document = json.dumps({"job_name": job_name, "results": results}, indent=1)
    hadoop_fs.write_bytes(spark, env.uri("operations", key), document.encode())


def run(argv: list[str]) -> dict[str, str | None]:
    """Run the job; per source key None (written) or the reason it failed."""
    return run_parsed(parse_args(argv))


def run_parsed(args: JobArgs) -> dict[str, str | None]:
    runtime = start_runtime(args.job_name, args.glue_args, args.env)
    loads, results = _job_loads(runtime.spark, args)
    results.update(run_loads(runtime.spark, args.env, loads))
    if args.result_key:
        write_result(runtime.spark, args.env, args.result_key, args.job_name, results)
    runtime.commit()
    return results


def main(argv: list[str]) -> None:
    """Entry of the Glue script: logs to stderr; raises when any load failed, so the Glue
    job run (or the process) ends as failed."""
    from data_platform import log as platform_log

    platform_log.configure("INFO")
    results = run(argv)
    failed = {key: error for key, error in results.items() if error is not None}
    log.info("%d load(s) written, %d failed", len(results) - len(failed), len(failed))
    if failed:
        first = next(iter(failed.values()))
        raise LoadError(f"{len(failed)} of {len(results)} load(s) failed; first: {first}")

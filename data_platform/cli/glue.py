"""`data-platform glue ...`: run a Glue job's code with local Spark on the local store."""

from __future__ import annotations

import click

from data_platform.cli.options import json_option
from data_platform.jobs.scripts import GLUE_SCRIPTS


@click.group()
def glue() -> None:
    """Spark jobs that AWS Glue runs, here with local PySpark on the local store."""


@glue.command("run")
@click.argument("job", type=click.Choice(sorted(GLUE_SCRIPTS)))
@click.option("--INPUT", "input_json", metavar="JSON", help="JSON list of loads (JobLoad).")
@click.option("--OBJECT_KEY", "object_key", metavar="KEY", help="One key in the incoming zone.")
@json_option
@click.pass_context
def run(
    ctx: click.Context, job: str, input_json: str | None, object_key: str | None, as_json: bool
) -> None:
    """Run JOB's Glue script with local Spark: same arguments, same code as on AWS Glue.

    --ENV is built from the settings (the local store; S3 is refused: local Spark reads
    file:// only). Output goes to the springboard zone.

    \b
    Examples:
      data-platform glue run ingest_incoming \\
          --OBJECT_KEY cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz
      data-platform glue run ingest_incoming --INPUT '[{"source_key":
          "cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz", "table":
          "cubic_ods_qlik__edw_sample", "is_raw": false, "destination_path":
          "cubic/ods_qlik/EDW.SAMPLE/", "snapshot": "20211201T112233Z",
          "identifier": "LOAD00000001.csv.gz"}]'
    """
    import json

    from data_platform.errors import ConfigError, LoadError

    try:
        from data_platform.batch.cubic_qlik.spark import ingest_incoming
        from data_platform.jobs.runtime import local_session
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("pyspark", "py4j"):
            raise
        missing = exc.name.split(".")[0]
        raise ConfigError(
            f"`glue run` needs PySpark ({missing} is not installed) and Java 17: `make "
            "install` installs the full requirements (requirements.txt); `make demo` "
            "installs only the runtime's"
        ) from exc
    from data_platform.jobs.env import local_job_env
    from data_platform.jobs.scripts import script_path
    from data_platform.settings import get_settings

    if input_json is not None and object_key is None:
        source = ["--INPUT", input_json]
    elif object_key is not None and input_json is None:
        source = ["--OBJECT_KEY", object_key]
    else:
        raise click.UsageError("give exactly one of --INPUT and --OBJECT_KEY")
    env = local_job_env(get_settings())
    argv = [str(script_path(job)), "--JOB_NAME", job, "--ENV", env.to_json(), *source]
    args = ingest_incoming.parse_args(argv)  # bad arguments fail before Spark starts
    session = local_session(job)
    # A value that does not cast makes Spark log whole stack traces at ERROR; the job
    # reports each failure in one line, so Spark's own logs show only with --debug.
    session.sparkContext.setLogLevel("WARN" if (ctx.obj or {}).get("debug") else "FATAL")
    results = ingest_incoming.run_parsed(args)
    if as_json:
        click.echo(json.dumps({"results": results}, indent=2))
    else:
        for key, error in results.items():
            click.echo(f"written  {key}" if error is None else f"failed   {error}")
    failed = sum(error is not None for error in results.values())
    if failed:
        raise LoadError(f"{failed} of {len(results)} load(s) failed")


@glue.command("env")
def env() -> None:
    """Print the job's --ENV (JSON) for these settings: zone buckets and prefixes, the local
    store's root or the S3 endpoint, catalog databases. For runs in the Glue container.

    \b
    Example:
      docker-compose run --rm glue__local gluesparksubmit \\
          /data_platform/aws/s3/glue_jobs/cubic_ingestion/ingest_incoming.py \\
          --JOB_NAME ingest_incoming \\
          --ENV "$(docker-compose run --rm -T main__local data-platform glue env)" \\
          --OBJECT_KEY cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz
    """
    from data_platform.jobs.env import job_env
    from data_platform.settings import get_settings

    click.echo(job_env(get_settings()).to_json())

"""The Glue scripts this repository deploys, and where they are in a checkout.

`aws/s3/` mirrors the operations zone: a file at `aws/s3/<path>` is deployed to key
`<path>`. Each Glue job is one script there.
"""

from __future__ import annotations

from pathlib import Path

from data_platform.errors import ConfigError

INGEST_INCOMING = "ingest_incoming"
# Glue job name -> script path under aws/s3/ (and key in the operations zone).
GLUE_SCRIPTS = {
    INGEST_INCOMING: "glue_jobs/cubic_ingestion/ingest_incoming.py",
}
# Key in the operations zone of the zipped data_platform package (--extra-py-files).
PACKAGE_ZIP_KEY = "glue_jobs/lib/data_platform.zip"
# Prefix in the operations zone where job runs leave their result document.
RESULTS_PREFIX = "glue_job_runs/"


def repo_root() -> Path:
    """The checkout holding the data_platform package and aws/s3/."""
    import data_platform

    root = Path(data_platform.__file__).resolve().parent.parent
    if not (root / "aws" / "s3").is_dir():
        raise ConfigError(
            f"no aws/s3/ beside the data_platform package in {root}: running Glue scripts "
            "and deploying them needs a source checkout"
        )
    return root


def aws_s3_dir() -> Path:
    return repo_root() / "aws" / "s3"


def script_path(job_name: str) -> Path:
    if job_name not in GLUE_SCRIPTS:
        raise ConfigError(f"unknown Glue job {job_name!r} (jobs: {', '.join(GLUE_SCRIPTS)})")
    return aws_s3_dir() / GLUE_SCRIPTS[job_name]

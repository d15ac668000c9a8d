"""The job's `--ENV` from this machine's settings: zones as the storage layer sees them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from data_platform.errors import ConfigError
from data_platform.jobs.job_input import JobEnv, ZoneLocation
from data_platform.settings import ZONES

if TYPE_CHECKING:
    from data_platform.settings import Settings

LOCAL_SPARK_NEEDS_LOCAL_STORE = (
    "local Spark reads and writes file:// only, but S3 is configured (S3_BUCKET_*): run the "
    "job in the Glue container (docker-compose run --rm glue__local gluesparksubmit ...) or "
    "on AWS Glue, or unset S3_BUCKET_* to use the local store"
)


def job_env(settings: Settings) -> JobEnv:
    """Every zone at its bucket and prefix; on the local store, its directory root."""
    from data_platform.storage import get_zone
    from data_platform.storage.local import LocalObjectStore

    zones = {name: get_zone(name, settings) for name in ZONES}
    locations = {name: ZoneLocation(zone.bucket, zone.prefix) for name, zone in zones.items()}
    common = {
        "glue_database_incoming": settings.glue_database_incoming,
        "glue_database_springboard": settings.glue_database_springboard,
    }
    if settings.uses_s3:
        return JobEnv(locations, s3_endpoint_url=settings.s3_endpoint_url, **common)
    store = zones["incoming"].store
    assert isinstance(store, LocalObjectStore)
    return JobEnv(locations, local_root=str(store.root.resolve()), **common)


def local_job_env(settings: Settings) -> JobEnv:
    """The env for a run with local Spark, which needs the local store."""
    if settings.uses_s3:
        raise ConfigError(LOCAL_SPARK_NEEDS_LOCAL_STORE)
    return job_env(settings)

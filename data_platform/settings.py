"""Settings, read once on demand from the environment and an optional `.env` file.

Every field is documented one to one in `.env.template`. Nothing here runs at import.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ZONES = ("incoming", "archive", "error", "springboard", "operations")
Zone = Literal["incoming", "archive", "error", "springboard", "operations"]


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Where embedded state lives: the embedded Postgres cluster and the local object store.
    data_platform_home: Path = Path(".data")

    # Unset: an embedded PostgreSQL server under DATA_PLATFORM_HOME.
    database_url: str | None = None
    database_sslmode: str | None = None
    database_sslrootcert: str | None = None

    # Object storage: S3 when any bucket is set, else a local directory store.
    s3_endpoint_url: str | None = None
    s3_bucket_incoming: str | None = None
    s3_bucket_archive: str | None = None
    s3_bucket_error: str | None = None
    s3_bucket_springboard: str | None = None
    s3_bucket_operations: str | None = None
    s3_bucket_prefix_incoming: str = ""
    s3_bucket_prefix_archive: str = ""
    s3_bucket_prefix_error: str = ""
    s3_bucket_prefix_springboard: str = ""
    s3_bucket_prefix_operations: str = ""

    # AWS Glue catalog databases and job settings.
    glue_database_incoming: str = "incoming"
    glue_database_springboard: str = "springboard"
    springboard_enabled: bool = False

    # Where source-table revisions are written and read (one folder per source);
    # unset: `migrations/` of the checkout, else of the working directory.
    migrations_dir: Path | None = None

    # Sources.
    cubic_qlik_prefix: str = "cubic/ods_qlik/"

    # DMAP: the vendor's de-personalised data API (data_platform/batch/cubic_dmap/).
    cubic_dmap_base_url: str | None = None
    # Feeds under /datasetpublicusersapi/ use the public key; the others the controlled one.
    cubic_dmap_public_user_api_key: SecretStr | None = None
    cubic_dmap_controlled_user_api_key: SecretStr | None = None
    # Where fetched datasets land in the incoming zone: <prefix><type>/<dataset_id>.csv.gz.
    cubic_dmap_prefix: str = "cubic/dmap/"
    # Per request: to connect, and between two reads of a response.
    cubic_dmap_timeout_seconds: float = Field(default=60, gt=0)
    # Retries on 429, 5xx, connection errors and timeouts (urllib3's Retry): the first at
    # once, then after backoff * 2, 4, 8, ... seconds (at most 120 s).
    cubic_dmap_retries: int = Field(default=5, ge=0)
    cubic_dmap_backoff_seconds: float = Field(default=1.0, ge=0)
    # Landing by `data-platform run` (data_platform/loads/landing.py): at most every this
    # many seconds since the last landing started (0: every run), when the source is set up.
    # DMAP: when CUBIC_DMAP_BASE_URL is set; hourly, as the vendor publishes daily.
    cubic_dmap_land_every: float = Field(default=3600, ge=0)

    # City of Melbourne open data, an Opendatasoft portal (Explore API v2.1), for the
    # pedestrian counts (data_platform/batch/melbourne_pedestrian/).
    open_data_base_url: str = "https://data.melbourne.vic.gov.au"
    # Optional: raises the portal's quotas. Sent as `Authorization: Apikey <key>`, never
    # in a URL, a log line or an error.
    open_data_api_key: SecretStr | None = None
    # Days before the last day the portal had counts for that every fetch reads again:
    # a portal that publishes late, fills a hole or corrects a past day is caught up.
    open_data_lookback_days: int = Field(default=7, ge=0, le=366)
    # `run` lands the pedestrian counts only when this is set (the portal is public and
    # OPEN_DATA_BASE_URL has a default, so landing it is opt-in), e.g. 3600.
    open_data_land_every: float | None = Field(default=None, ge=0)

    # totesys, the sales business's OLTP database (data_platform/batch/totesys/): the URL
    # `totesys seed`/`simulate` write with; the platform reads it as `totesys_reader`.
    # Unset: a database `totesys` on the platform's own server (embedded or DATABASE_URL's).
    totesys_database_url: str | None = None
    # `run` extracts when TOTESYS_DATABASE_URL is set or a table was extracted before:
    # every run by default.
    totesys_land_every: float = Field(default=0, ge=0)

    # Kafka tap events (data_platform/batch/cubic_kafka/): the brokers, host:port comma list
    # (unset: `kafka consume` refuses to start), and the consumer group that owns offsets.
    kafka_bootstrap_servers: str | None = None
    kafka_group_id: str = "data-platform"
    # The group protocol: `classic` (every Kafka), or `consumer` (KIP-848, Kafka 4.0+: no
    # stop-the-world rebalances; librdkafka's mock cluster needs it to see a member leave).
    kafka_group_protocol: Literal["classic", "consumer"] = "classic"
    # PLAINTEXT locally; Amazon MSK: SASL_SSL with SCRAM-SHA-512 (or SSL for mTLS/TLS).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # A CA bundle (PEM) that verifies the brokers; unset: the system's CAs.
    kafka_ssl_ca_location: Path | None = None
    # Where batches land in the incoming zone:
    # <prefix><topic>/partition=<p>/offsets=<first>-<last>.jsonl.gz.
    kafka_prefix: str = "cubic/kafka/"
    # A partition's open batch is flushed at this many records, or when its first record
    # has waited this many seconds, whichever comes first.
    kafka_max_records: int = Field(default=10000, gt=0)
    kafka_max_seconds: float = Field(default=3600, gt=0)
    # Topics `run` consumes (comma list), each drained as `kafka consume --once` does, when
    # KAFKA_BOOTSTRAP_SERVERS is set; empty: `run` consumes none (a `kafka consume` service
    # does, as docker-compose's consume__local).
    kafka_topics: str = ""
    kafka_land_every: float = Field(default=0, ge=0)

    # dbt vars of every transform (`data-platform transform` and `run`): a YAML or JSON
    # mapping, e.g. {footfall_before_start: 2023-01-01}; `transform --vars` overrides it
    # name by name. Empty: the defaults of transform/dbt_project.yml.
    transform_vars: str = ""

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Memory a load's set operations may use in Postgres (SET LOCAL work_mem).
    load_work_mem: str = Field(default="256MB", pattern=r"^\d+\s*(kB|MB|GB)$")
    # COPY streams (connections) that load a large new snapshot at once; 0: one per core
    # of this machine, at most 4. At most 8: a load holds two connections besides, and
    # the pool has 15. A file is large from this many records (its .dfm's recordCount).
    load_copy_streams: int = Field(default=0, ge=0, le=8)
    load_parallel_min_rows: int = Field(default=200_000, ge=0)

    # Alerts (data_platform/alerts/): each failure is sent once to these channels, a comma
    # list of email, sns, webhook; empty: alerts are only logged.
    alert_channels: str = ""
    # A label in every alert, naming the deployment: local, dev, prod, ...
    alert_environment: str = "local"
    # E-mail over SMTP: STARTTLS unless ALERT_SMTP_STARTTLS=false; a login when a username
    # is set. The CA file (PEM) verifies the server's certificate; unset: the system's CAs.
    alert_smtp_host: str | None = None
    alert_smtp_port: int = Field(default=587, gt=0, lt=65536)
    alert_smtp_username: str | None = None
    alert_smtp_password: SecretStr | None = None
    alert_smtp_starttls: bool = True
    alert_smtp_ca_file: Path | None = None
    alert_email_from: str | None = None
    # Comma list of recipients.
    alert_email_to: str = ""
    # SNS: the topic alerts are published to; region unset: the topic ARN's. The endpoint
    # is for tests and local stacks only.
    alert_sns_topic_arn: str | None = None
    alert_sns_region: str | None = None
    alert_sns_endpoint_url: str | None = None
    # Webhook: the alert POSTed as JSON. A secret: such URLs hold tokens.
    alert_webhook_url: SecretStr | None = None
    # Per channel: seconds to connect and to wait for an answer; retries (webhook, SNS).
    alert_timeout_seconds: float = Field(default=10, gt=0)
    alert_retries: int = Field(default=3, ge=0)

    # The operator's time zone (IANA name): the operations page shows every time in it.
    data_platform_timezone: str = "UTC"
    # Freshness: a table is late when no load of it was archived for this many hours;
    # per table (any of its names) as a JSON object, e.g. {"cubic_dmap__agg_daily_fareprod": 48}.
    freshness_hours: float = Field(default=24, gt=0)
    freshness_hours_by_table: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)

    # The operations page (`data-platform web`). Credentials: a bearer token, and/or a user
    # and password (basic auth, or the login form). Once any is set, every page and /api
    # needs them; `--allow-actions` (retry, run a pass) needs them.
    web_token: SecretStr | None = None
    web_user: str | None = None
    web_password: SecretStr | None = None
    # Signs the login session and CSRF tokens; unset: a new random key per server start
    # (everyone logs in again after a restart).
    web_secret_key: SecretStr | None = None

    @field_validator("data_platform_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "expected an IANA time zone name such as UTC, Europe/London or Australia/Melbourne"
            ) from None
        return value

    @field_validator("freshness_hours_by_table", mode="before")
    @classmethod
    def _freshness_by_table(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return {}
            import json

            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(
                    'expected a JSON object of table name to hours, e.g. {"cubic_kafka__taps": 2}'
                ) from None
        if isinstance(value, dict):
            bad = [name for name, hours in value.items() if not _positive_number(hours)]
            if bad:
                raise ValueError(f"hours must be a number above 0, got {value[bad[0]]!r}")
        return value

    @field_validator("alert_channels", mode="before")
    @classmethod
    def _alert_channels(cls, value: str) -> str:
        if not isinstance(value, str):
            return value
        names = [name.strip().lower() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in ("email", "sns", "webhook")]
        if unknown:
            raise ValueError(f"expected a comma list of email, sns, webhook, got {unknown[0]!r}")
        return ",".join(dict.fromkeys(names))

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper() if isinstance(value, str) else value
        if level not in LOG_LEVELS:
            raise ValueError(f"Input should be one of {', '.join(LOG_LEVELS)}")
        return level

    @property
    def uses_s3(self) -> bool:
        return any(self.bucket(zone) for zone in ZONES)

    def bucket(self, zone: str) -> str | None:
        return getattr(self, f"s3_bucket_{zone}")

    def prefix(self, zone: str) -> str:
        return getattr(self, f"s3_bucket_prefix_{zone}")

    @property
    def home(self) -> Path:
        return self.data_platform_home.expanduser().resolve()


@functools.cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings and everything built from them (tests, CLI overrides)."""
    get_settings.cache_clear()
    from data_platform.db.engine import reset_engine
    from data_platform.storage.zones import reset_storage

    reset_engine()
    reset_storage()

"""Settings, read once on demand from the environment and an optional `.env` file.

Every field carries its documentation (`description`), from which doc/configuration.md is
generated; `.env.template` lists every one with its default. Nothing here runs at import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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
    """Every setting, by its environment variable (the field name in upper case).

    Each field's `description` is its documentation: `doc/configuration.md` is generated
    from them (`python -m data_platform.cli.settings_reference`), and `.env.template`
    lists every one with its default."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- Where embedded state lives ---
    data_platform_home: Path = Field(
        Path(".data"),
        description="Home of the embedded defaults: the embedded PostgreSQL cluster "
        "(`postgres/`), the local object store (`storage/<zone>/`) and dbt's target and "
        "logs (`dbt/`). Unset: the `.data` of the working directory or of the nearest "
        "directory above it that holds the platform's data (`postgres/` or `storage/`), "
        "else a new `./.data`.",
    )

    # --- Metadata database ---
    database_url: str | None = Field(
        None,
        description="The metadata database (SQLAlchemy URL; `postgres://` and "
        "`postgresql://` are taken). Unset: an embedded PostgreSQL 16 server under "
        "DATA_PLATFORM_HOME, started on demand. Its password is masked wherever the URL "
        "is printed or logged.",
    )
    database_sslmode: str | None = Field(
        None,
        description="Added to DATABASE_URL's query as `sslmode`; for RDS: `verify-full`.",
    )
    database_sslrootcert: str | None = Field(
        None,
        description="Added to DATABASE_URL's query as `sslrootcert`; for RDS: the RDS CA bundle.",
    )

    # --- Object storage: S3 when any bucket is set, else a local directory store ---
    s3_endpoint_url: str | None = Field(
        None, description="An S3 API other than AWS's: MinIO or a test server."
    )
    s3_bucket_incoming: str | None = Field(
        None,
        description="The incoming zone's bucket. Setting any `S3_BUCKET_*` puts every zone "
        "on S3 (all five are then required); unset, every zone is "
        "`DATA_PLATFORM_HOME/storage/<zone>/`.",
    )
    s3_bucket_archive: str | None = Field(None, description="The archive zone's bucket.")
    s3_bucket_error: str | None = Field(None, description="The error zone's bucket.")
    s3_bucket_springboard: str | None = Field(
        None, description="The springboard zone's bucket (the Glue job's Parquet)."
    )
    s3_bucket_operations: str | None = Field(
        None, description="The operations zone's bucket (Glue scripts and the package zip)."
    )
    s3_bucket_prefix_incoming: str = Field(
        "", description="A prefix inside the incoming bucket, e.g. `<username>/incoming/`."
    )
    s3_bucket_prefix_archive: str = Field("", description="A prefix inside the archive bucket.")
    s3_bucket_prefix_error: str = Field("", description="A prefix inside the error bucket.")
    s3_bucket_prefix_springboard: str = Field(
        "", description="A prefix inside the springboard bucket."
    )
    s3_bucket_prefix_operations: str = Field(
        "", description="A prefix inside the operations bucket."
    )

    # --- AWS Glue ---
    glue_database_incoming: str = Field(
        "incoming", description="The Glue Data Catalog database of the incoming zone."
    )
    glue_database_springboard: str = Field(
        "springboard", description="The Glue Data Catalog database of the springboard zone."
    )
    springboard_enabled: bool = Field(
        False,
        description="Hand every Qlik load to the Glue job before applying it (Parquet in "
        "the springboard zone): local PySpark on the local store, AWS Glue on S3.",
    )

    # --- Migrations ---
    migrations_dir: Path | None = Field(
        None,
        description="Where source-table revisions are written and read, one folder per "
        "source. Unset: `migrations/` of the checkout, else of the working directory.",
    )

    # --- Sources ---
    cubic_qlik_prefix: str = Field(
        "cubic/ods_qlik/",
        description="Where Qlik Replicate writes in the incoming zone: "
        "`<prefix><SCHEMA.TABLE>/` and `<prefix><SCHEMA.TABLE>__ct/`.",
    )

    cubic_dmap_base_url: str | None = Field(
        None,
        description="The DMAP API's base URL, without the feed path "
        "(e.g. https://dmap.example.com).",
    )
    cubic_dmap_public_user_api_key: SecretStr | None = Field(
        None,
        description="API key of the feeds under /datasetpublicusersapi/, sent in the "
        "`apikey` header, never in a URL or a log.",
    )
    cubic_dmap_controlled_user_api_key: SecretStr | None = Field(
        None,
        description="API key of the other feeds (/datasetcontrolleduserapi/, "
        "/controlledresearchusersapi/), sent in the `apikey` header.",
    )
    cubic_dmap_prefix: str = Field(
        "cubic/dmap/",
        description="Where fetched datasets land in the incoming zone: "
        "`<prefix><type>/<dataset_id>.csv.gz`.",
    )
    cubic_dmap_timeout_seconds: float = Field(
        default=60,
        gt=0,
        description="Per DMAP request: seconds to connect, and between two reads of a response.",
    )
    cubic_dmap_retries: int = Field(
        default=5,
        ge=0,
        description="Retries of a DMAP request on 429, 5xx, connection errors and timeouts "
        "(urllib3's Retry; a Retry-After header is honoured).",
    )
    cubic_dmap_backoff_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Backoff between DMAP retries: the first at once, then after backoff "
        "* 2, 4, 8, ... seconds (at most 120 s; 0: no wait).",
    )
    cubic_dmap_land_every: float = Field(
        default=3600,
        ge=0,
        description="`data-platform run` lands DMAP (fetches every feed) at most every this "
        "many seconds since its last landing started (0: every run), when CUBIC_DMAP_BASE_URL "
        "is set; hourly by default, as the vendor publishes daily.",
    )

    open_data_base_url: str = Field(
        "https://data.melbourne.vic.gov.au",
        description="The City of Melbourne's Opendatasoft portal (Explore API v2.1), for "
        "the pedestrian counts.",
    )
    open_data_api_key: SecretStr | None = Field(
        None,
        description="Optional: raises the portal's quotas. Sent as `Authorization: Apikey "
        "...`, never in a URL, a log line or an error.",
    )
    open_data_lookback_days: int = Field(
        default=7,
        ge=0,
        le=366,
        description="Days before the last day the portal had counts for that every fetch "
        "reads again: a portal that publishes late, fills a hole or corrects a past day is "
        "caught up.",
    )
    open_data_land_every: float | None = Field(
        default=None,
        ge=0,
        description="`data-platform run` lands the pedestrian counts at most every this many "
        "seconds (0: every run). Unset: run never fetches them (the portal is public and "
        "OPEN_DATA_BASE_URL has a default, so landing it is opt-in), e.g. 3600.",
    )

    totesys_database_url: str | None = Field(
        None,
        description="The totesys sales database (the OLTP source), which the platform "
        "reads as the role `totesys_reader` and the harness seeds and simulates. Unset: a "
        "database `totesys` on the platform's own server (embedded or DATABASE_URL's).",
    )
    totesys_land_every: float = Field(
        default=0,
        ge=0,
        description="`data-platform run` extracts totesys at most every this many seconds "
        "(0: every run), when TOTESYS_DATABASE_URL is set or a table was extracted before.",
    )

    kafka_bootstrap_servers: str | None = Field(
        None,
        description="The Kafka brokers, a host:port comma list. Unset: `kafka consume` "
        "refuses to start.",
    )
    kafka_group_id: str = Field(
        "data-platform", description="The consumer group that owns the committed offsets."
    )
    kafka_group_protocol: Literal["classic", "consumer"] = Field(
        "classic",
        description="The group protocol: `classic` (every Kafka), or `consumer` (KIP-848, "
        "Kafka 4.0+: no stop-the-world rebalances; librdkafka's mock cluster needs it to see "
        "a member leave).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] = Field(
        "PLAINTEXT",
        description="PLAINTEXT locally; Amazon MSK: SASL_SSL with SCRAM-SHA-512 (or SSL for "
        "mTLS/TLS).",
    )
    kafka_sasl_mechanism: str | None = Field(
        None, description="The SASL mechanism, e.g. SCRAM-SHA-512 (Amazon MSK)."
    )
    kafka_sasl_username: str | None = Field(None, description="The SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="The SASL password.")
    kafka_ssl_ca_location: Path | None = Field(
        None, description="A CA bundle (PEM) that verifies the brokers; unset: the system's CAs."
    )
    kafka_prefix: str = Field(
        "cubic/kafka/",
        description="Where batches land in the incoming zone: "
        "`<prefix><topic>/partition=<p>/offsets=<first>-<last>.jsonl.gz`.",
    )
    kafka_max_records: int = Field(
        default=10000,
        gt=0,
        description="A partition's open batch is flushed at this many records (or at "
        "KAFKA_MAX_SECONDS, whichever comes first).",
    )
    kafka_max_seconds: float = Field(
        default=3600,
        gt=0,
        description="A partition's open batch is flushed when its first record has waited "
        "this many seconds (or at KAFKA_MAX_RECORDS).",
    )
    kafka_topics: str = Field(
        "",
        description="Topics `data-platform run` consumes (a comma list), each drained as "
        "`kafka consume --once` does, when KAFKA_BOOTSTRAP_SERVERS is set. Empty: run "
        "consumes none (a `kafka consume` service does, as docker-compose's consume__local).",
    )
    kafka_land_every: float = Field(
        default=0,
        ge=0,
        description="`data-platform run` consumes KAFKA_TOPICS at most every this many "
        "seconds (0: every run).",
    )

    # --- dbt ---
    transform_vars: str = Field(
        "",
        description="dbt vars of every transform (`data-platform transform` and `run`): a "
        "YAML or JSON mapping, e.g. {footfall_before_start: 2023-01-01}; `transform --vars` "
        "overrides it name by name. Empty: the defaults of transform/dbt_project.yml.",
    )

    # --- Logging ---
    log_level: str = Field(
        "INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`text`, or `json`: one JSON object per line (with `table` and "
        "`load_id` fields), for containers.",
    )

    # --- Loading ---
    load_work_mem: str = Field(
        default="256MB",
        pattern=r"^\d+\s*(kB|MB|GB)$",
        description="Memory a load's set operations may use in Postgres (SET LOCAL work_mem).",
    )
    # At most 8: a load holds two connections besides its streams, and the pool has 15.
    load_copy_streams: int = Field(
        default=0,
        ge=0,
        le=8,
        description="COPY streams (connections) that load a large new Qlik snapshot at "
        "once; 0: one per core of this machine, at most 4; 1: always one.",
    )
    load_parallel_min_rows: int = Field(
        default=200_000,
        ge=0,
        description="A file is large (COPY streams for a new snapshot, an unlogged stage "
        "for a change file) from this many records (its .dfm's recordCount).",
    )

    # --- Alerts ---
    alert_channels: str = Field(
        "",
        description="Where each failure is sent, once: a comma list of email, sns, "
        "webhook. Empty: alerts are only logged.",
    )
    alert_environment: str = Field(
        "local", description="A label in every alert, naming the deployment: local, dev, prod."
    )
    alert_smtp_host: str | None = Field(None, description="The SMTP server of e-mail alerts.")
    alert_smtp_port: int = Field(default=587, gt=0, lt=65536, description="The SMTP server's port.")
    alert_smtp_username: str | None = Field(None, description="The SMTP login; unset: no login.")
    alert_smtp_password: SecretStr | None = Field(None, description="The SMTP password.")
    alert_smtp_starttls: bool = Field(
        True, description="STARTTLS before the login and the message."
    )
    alert_smtp_ca_file: Path | None = Field(
        None,
        description="A CA bundle (PEM) that verifies the SMTP server's certificate; unset: "
        "the system's CAs.",
    )
    alert_email_from: str | None = Field(None, description="The sender of e-mail alerts.")
    alert_email_to: str = Field("", description="The recipients of e-mail alerts, a comma list.")
    alert_sns_topic_arn: str | None = Field(
        None, description="The SNS topic alerts are published to."
    )
    alert_sns_region: str | None = Field(
        None, description="The SNS topic's region; unset: the topic ARN's."
    )
    alert_sns_endpoint_url: str | None = Field(
        None, description="An SNS endpoint for tests and local stacks only."
    )
    alert_webhook_url: SecretStr | None = Field(
        None,
        description="The URL an alert is POSTed to as JSON. A secret: such URLs hold tokens.",
    )
    alert_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="Per alert channel: seconds to connect and to wait for an answer.",
    )
    alert_retries: int = Field(default=3, ge=0, description="Retries of a webhook or SNS alert.")

    # --- The operations page ---
    data_platform_timezone: str = Field(
        "UTC",
        description="The operator's time zone (an IANA name such as Australia/Melbourne): "
        "the operations page shows every time in it.",
    )
    freshness_hours: float = Field(
        default=24,
        gt=0,
        description="A table is stale when the newest file applied to it landed more than "
        "this many hours ago.",
    )
    freshness_behind_minutes: float = Field(
        default=30,
        gt=0,
        description="A table is behind when a file of it has waited this many minutes "
        "without being applied (its backlog), however fresh its data.",
    )
    verify_on_run: str = Field(
        default="cubic_qlik,cubic_dmap,cubic_kafka,melbourne_pedestrian",
        description="The sources `run` verifies after each pass that changed something, "
        "comma-separated (empty: none). totesys's check reads every row of both sides "
        "(15 s at 1M orders): on demand by default (`data-platform verify`).",
    )
    runs_keep_days: int = Field(
        default=30,
        ge=1,
        description="Days the record of each `run` pass (the runs page, `runs` table) is kept.",
    )
    run_expected_seconds: float = Field(
        default=0,
        ge=0,
        description="A `run` pass that takes longer than this many seconds is alerted "
        "(0: no expectation).",
    )
    freshness_hours_by_table: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=dict,
        description="FRESHNESS_HOURS per table (any of its names), a JSON object, e.g. "
        '{"cubic_dmap__agg_daily_fareprod": 48}.',
    )
    web_allowed_hosts: str = Field(
        default="localhost,127.0.0.1,::1",
        description="Host names the operations page answers to, comma-separated (`*.example.org` "
        "for a domain): a request for another Host is refused (400), against DNS "
        "rebinding and host-header tricks. Add the name it is reached by when not local.",
    )
    web_trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Addresses of the reverse proxies whose X-Forwarded-Proto and "
        "X-Forwarded-For the operations page believes, comma-separated (`*`: any): behind "
        "an HTTPS proxy its cookies are then Secure and the client's address is logged.",
    )
    web_workers: int = Field(
        default=0,
        ge=0,
        description="Worker processes of `data-platform web` (0: one per core, at most 4), "
        "so many readers at once are served by every core.",
    )
    web_token: SecretStr | None = Field(
        None,
        description="A bearer token for the operations page. Once it, or WEB_USER and "
        "WEB_PASSWORD, is set, every page and /api needs credentials; `web "
        "--allow-actions` refuses to start without them.",
    )
    web_user: str | None = Field(
        None, description="A user of the operations page (basic auth or the login form)."
    )
    web_password: SecretStr | None = Field(None, description="WEB_USER's password.")
    web_secret_key: SecretStr | None = Field(
        None,
        description="Signs the page's login session and CSRF tokens; unset: a new random "
        "key per server start (everyone logs in again after a restart).",
    )

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
        """DATA_PLATFORM_HOME when set; else the `.data` of the working directory or of
        the nearest directory above it that holds the platform's data (its `postgres/` or
        `storage/`: a command run from a subdirectory of the project finds the project's
        data, not a new empty home); else `./.data`."""
        if "data_platform_home" in self.model_fields_set or self.data_platform_home != Path(
            ".data"
        ):
            return self.data_platform_home.expanduser().resolve()
        here = Path.cwd().resolve()
        for folder in (here, *here.parents):
            # The platform's own layout, not any `.data` some other tool keeps above.
            if any((folder / ".data" / part).is_dir() for part in ("postgres", "storage")):
                return folder / ".data"
        return here / ".data"


@functools.cache
def get_settings() -> Settings:
    return Settings()


# What is built from the settings and cached (the engine, the storage backends): each
# cache registers its reset here when its module is imported, so that settings, the
# bottom of the platform, imports none of the layers above it.
_resets: list[Callable[[], None]] = []


def on_reset(reset: Callable[[], None]) -> Callable[[], None]:
    """Run `reset` whenever `reset_settings` runs (once per registration; registering it
    again does nothing). Returns `reset`, so it serves as a decorator."""
    if reset not in _resets:
        _resets.append(reset)
    return reset


def reset_settings() -> None:
    """Forget cached settings and everything built from them (tests, CLI overrides): the
    caches registered with `on_reset`, in the order they registered. A cache whose
    module was never imported holds nothing to forget."""
    get_settings.cache_clear()
    for reset in _resets:
        reset()

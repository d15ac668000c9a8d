"""What crosses the process boundary into the Glue job: `--ENV` and `--INPUT`, as JSON.

Both are plain frozen dataclasses with `to_json`/`from_json`; `from_json` refuses unknown
and missing keys so a sender and the job cannot silently disagree on the payload.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from data_platform.errors import ConfigError

SNAPSHOT_FORMAT = "%Y%m%dT%H%M%SZ"
_SNAPSHOT_RE = re.compile(r"^\d{8}T\d{6}Z$")
# Zones the job touches: it reads incoming, writes springboard, reports to operations.
JOB_ZONES = ("incoming", "springboard", "operations")
# The partition column of a load's id (`dp__`, the platform's lineage prefix, so that no
# source column clashes with it).
LOAD_PARTITION = "dp__load_id"


def format_snapshot(moment: datetime) -> str:
    """A snapshot time as its partition value, `20211201T112233Z` (UTC)."""
    if moment.tzinfo is None:
        raise ValueError("snapshot time must be timezone-aware")
    return moment.astimezone(UTC).strftime(SNAPSHOT_FORMAT)


def _check_key(key: str, what: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or "\x00" in key or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"invalid {what} {key!r}")
    return key


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return prefix + "/" if prefix else ""


def _strict_fields(cls: type, doc: Any, what: str) -> dict[str, Any]:
    """Check a decoded JSON object has exactly the dataclass's fields (defaults optional)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(doc).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(doc) - names)
    if unknown:
        raise ConfigError(f"{what} has unknown key(s): {', '.join(unknown)}")
    required = {
        f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
    }
    missing = sorted(required - set(doc))
    if missing:
        raise ConfigError(f"{what} is missing key(s): {', '.join(missing)}")
    return doc


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc}") from exc


@dataclass(frozen=True)
class ZoneLocation:
    bucket: str
    prefix: str = ""  # "" or ending in "/"

    def __post_init__(self) -> None:
        if self.prefix != _normalise_prefix(self.prefix):
            raise ConfigError(f"zone prefix must be '' or end in '/', got {self.prefix!r}")


@dataclass(frozen=True)
class JobEnv:
    """Where the zones are. `--ENV` of the Glue job.

    With `local_root` set, zone `z` is the directory `<local_root>/<bucket>/<prefix>` (the
    local object store) and paths are file://; otherwise buckets are S3 and paths s3a://
    (AWS Glue and the Glue container both read s3a). `s3_endpoint_url` points s3a at MinIO
    or moto instead of AWS.
    """

    zones: dict[str, ZoneLocation]
    glue_database_incoming: str = "incoming"
    glue_database_springboard: str = "springboard"
    local_root: str | None = None
    s3_endpoint_url: str | None = None

    def __post_init__(self) -> None:
        missing = [zone for zone in JOB_ZONES if zone not in self.zones]
        if missing:
            raise ConfigError(f"--ENV has no zone(s) {', '.join(missing)}")
        for name, zone in self.zones.items():
            if not zone.bucket or "/" in zone.bucket:
                raise ConfigError(f"--ENV zone {name!r} has an invalid bucket {zone.bucket!r}")
        if self.local_root is not None and not self.local_root.startswith("/"):
            raise ConfigError(f"--ENV local_root must be absolute, got {self.local_root!r}")

    @property
    def is_local(self) -> bool:
        return self.local_root is not None

    def uri(self, zone: str, key: str = "") -> str:
        """The Hadoop URI of `key` in `zone`. Not percent-encoded: Hadoop's Path takes raw
        paths, and encoding here would be encoded twice."""
        location = self.zones[zone]
        if self.local_root is not None:
            root = self.local_root.rstrip("/")
            return f"file://{root}/{location.bucket}/{location.prefix}{key}"
        return f"s3a://{location.bucket}/{location.prefix}{key}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobEnv:
        doc = _strict_fields(cls, _loads(text, "--ENV"), "--ENV")
        zones_doc = doc["zones"]
        if not isinstance(zones_doc, dict):
            raise ConfigError("--ENV zones must be an object of zone -> {bucket, prefix}")
        zones = {}
        for name, zone in zones_doc.items():
            zone = _strict_fields(ZoneLocation, zone, f"--ENV zone {name!r}")
            zones[name] = ZoneLocation(
                str(zone["bucket"]), _normalise_prefix(zone.get("prefix", ""))
            )
        return cls(**{**doc, "zones": zones})


@dataclass(frozen=True)
class JobLoad:
    """One incoming file to convert.

    Output: `[raw/]<destination_path>snapshot=<snapshot>/identifier=<identifier>/
    dp__load_id=<load_id>/` in the springboard zone, one Parquet partition per load: the
    load, not the file, keys it, so a file landed again under the same key (a reload, a
    re-sent change file) never overwrites or deletes the partition of an earlier load of
    that key. Ad-hoc runs without a load id (`--OBJECT_KEY`, a hand-written `--INPUT`)
    write `.../identifier=<identifier>/` only: keep them out of the pipeline's tables.
    """

    source_key: str  # key in the incoming zone, e.g. cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz
    table: str  # platform table name, e.g. cubic_ods_qlik__edw_sample (for messages and logs)
    is_raw: bool  # True: every column stays a string; False: cast to the .dfm's types
    destination_path: str  # table prefix in the springboard zone, ending in "/"
    snapshot: str  # partition value: the snapshot (full load) time, YYYYMMDDTHHMMSSZ
    identifier: str  # partition value: the file name, e.g. LOAD00000001.csv.gz
    load_id: int | None = None  # partition value: the platform's load (loads.id)

    def __post_init__(self) -> None:
        _check_key(self.source_key, "source_key")
        _check_key(self.destination_path.rstrip("/"), "destination_path")
        if not self.destination_path.endswith("/"):
            raise ConfigError(f"destination_path must end in '/', got {self.destination_path!r}")
        if not _SNAPSHOT_RE.match(self.snapshot):
            raise ConfigError(f"snapshot must look like 20211201T112233Z, got {self.snapshot!r}")
        if not self.identifier or "/" in self.identifier or self.identifier in (".", ".."):
            raise ConfigError(f"invalid identifier {self.identifier!r}")
        if not isinstance(self.is_raw, bool):
            raise ConfigError(f"is_raw must be true or false, got {self.is_raw!r}")
        if self.load_id is not None and (
            isinstance(self.load_id, bool) or not isinstance(self.load_id, int) or self.load_id < 1
        ):
            raise ConfigError(f"load_id must be a positive integer, got {self.load_id!r}")

    @classmethod
    def create(
        cls,
        source_key: str,
        table: str,
        snapshot: datetime,
        *,
        is_raw: bool = False,
        destination_path: str | None = None,
        load_id: int | None = None,
    ) -> JobLoad:
        """A load with the defaults: the destination mirrors the key's directory and the
        identifier is the file name; `load_id` (the platform's load) keys the partition."""
        directory, name = posixpath.split(source_key)
        return cls(
            source_key=source_key,
            table=table,
            is_raw=is_raw,
            destination_path=destination_path or f"{directory}/",
            snapshot=format_snapshot(snapshot),
            identifier=name,
            load_id=load_id,
        )

    @property
    def output_path(self) -> str:
        """The table's base path in the springboard zone (partitions go below it)."""
        return ("raw/" if self.is_raw else "") + self.destination_path

    @property
    def partitions(self) -> dict[str, str]:
        """Partition column -> value, outermost first."""
        values = {"snapshot": self.snapshot, "identifier": self.identifier}
        if self.load_id is not None:
            values[LOAD_PARTITION] = str(self.load_id)
        return values

    @property
    def partition_path(self) -> str:
        return self.output_path + "".join(f"{k}={v}/" for k, v in self.partitions.items())


@dataclass(frozen=True)
class JobInput:
    """`--INPUT` of the Glue job: a JSON list of loads."""

    loads: tuple[JobLoad, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        counts = Counter(load.source_key for load in self.loads)
        duplicates = sorted(key for key, count in counts.items() if count > 1)
        if duplicates:
            raise ConfigError(f"--INPUT lists a source key more than once: {duplicates[0]}")

    def to_json(self) -> str:
        return json.dumps([asdict(load) for load in self.loads])

    @classmethod
    def from_json(cls, text: str) -> JobInput:
        doc = _loads(text, "--INPUT")
        if not isinstance(doc, list):
            raise ConfigError("--INPUT must be a JSON list of loads")
        loads = [
            JobLoad(**_strict_fields(JobLoad, item, f"--INPUT load {index}"))
            for index, item in enumerate(doc)
        ]
        return cls(tuple(loads))

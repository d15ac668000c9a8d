"""The tap event, declared by hand (a stream cannot be crawled), versioned.

Version 1 (reference platform, Streams 3, plus what the vendor's taps carry):

| field     | JSON             | column      | rule                                      |
|-----------|------------------|-------------|-------------------------------------------|
| tapId     | string           | tap_id      | required, not empty                       |
| tokenId   | string           | token_id    | required, not empty                       |
| stopId    | string or number | stop_id     | required (kept as text)                   |
| deviceId  | string or number | device_id   | required (kept as text)                   |
| tapTime   | ISO-8601 string  | tap_time    | required, with a zone (timestamptz)       |
| fare      | integer          | fare_cents  | optional, cents, >= 0                     |
| mode      | string           | mode        | optional                                  |

Any other field is kept, as JSON, in `extra` (a new field never stops a load; promote it
to a column by a reviewed revision and a new version here). A record whose value is not
a JSON object, or that misses or mistypes a required field, goes to the load's
dead-letter file (error zone) with its offset and the reason; the rest of the file loads.
Lineage columns: kafka_topic, kafka_partition, kafka_offset (unique together: a record
delivered twice is one row), kafka_timestamp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

VERSION = 1
REQUIRED_TEXT = {"tapId": "tap_id", "tokenId": "token_id"}
REQUIRED_ID = {"stopId": "stop_id", "deviceId": "device_id"}
DECLARED = {*REQUIRED_TEXT, *REQUIRED_ID, "tapTime", "fare", "mode"}
COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "tap_id",
    "token_id",
    "stop_id",
    "device_id",
    "tap_time",
    "fare_cents",
    "mode",
    "extra",
)


class BadRecord(ValueError):
    """Why a record cannot be a row (its reason, for the dead-letter file)."""


@dataclass(frozen=True)
class Envelope:
    """One consumed record as the consumer wrote it (a line of a batch file)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None  # ms since the epoch, Kafka's
    key: str | None
    value: str | None


def parse_envelope(line: bytes) -> Envelope:
    """Raises BadRecord when the line is not the consumer's envelope."""
    try:
        data = json.loads(line)
        return Envelope(
            str(data["topic"]),
            int(data["partition"]),
            int(data["offset"]),
            None if data.get("timestamp") is None else int(data["timestamp"]),
            data.get("key"),
            data.get("value"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRecord(f"not a consumer envelope: {exc}") from exc


def to_row(envelope: Envelope) -> list[Any]:
    """The row of COLUMNS for a tap event. Raises BadRecord naming the field."""
    if envelope.value is None:
        raise BadRecord("empty value (a tombstone)")
    try:
        event = json.loads(envelope.value)
    except ValueError as exc:
        raise BadRecord(f"value is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise BadRecord(f"value is not a JSON object but {type(event).__name__}")
    row: dict[str, Any] = {}
    for field, column in REQUIRED_TEXT.items():
        value = event.get(field)
        if not isinstance(value, str) or not value.strip():
            raise BadRecord(f"{field}: required text, got {_shown(value)}")
        row[column] = value
    for field, column in REQUIRED_ID.items():
        value = event.get(field)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise BadRecord(f"{field}: required id (text or integer), got {_shown(value)}")
        row[column] = str(value)
    when = event.get("tapTime")
    try:
        moment = datetime.fromisoformat(when) if isinstance(when, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRecord(f"tapTime: required ISO-8601 time with a zone, got {_shown(when)}")
    fare = event.get("fare")
    if fare is not None and (isinstance(fare, bool) or not isinstance(fare, int) or fare < 0):
        raise BadRecord(f"fare: cents, a whole number >= 0, got {_shown(fare)}")
    mode = event.get("mode")
    if mode is not None and not isinstance(mode, str):
        raise BadRecord(f"mode: text, got {_shown(mode)}")
    extra = {k: v for k, v in event.items() if k not in DECLARED}
    stamp = None
    if envelope.timestamp is not None:
        stamp = datetime.fromtimestamp(envelope.timestamp / 1000).astimezone().isoformat()
    return [
        envelope.topic,
        envelope.partition,
        envelope.offset,
        stamp,
        row["tap_id"],
        row["token_id"],
        row["stop_id"],
        row["device_id"],
        moment.isoformat(),
        fare,
        mode,
        json.dumps(extra, ensure_ascii=False) if extra else None,
    ]


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not None else "nothing"
    return text if len(text) <= 60 else text[:57] + "..."

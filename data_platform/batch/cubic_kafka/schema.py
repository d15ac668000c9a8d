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
UTF-8 (the consumer sends its bytes as `value_base64`) or not a JSON object, that misses
or mistypes a required field, or holds text PostgreSQL cannot store (a NUL character, a
lone surrogate such as `\\ud800`: checked here, since neither can even be sent) or a
number JSONB cannot (NaN, Infinity) is a dead letter (the core's
`dead_letters`, revision 0012) with its reason naming the field; the rest of the file
loads. So is a fare past the integer column (2^31 - 1 cents). Whatever else PostgreSQL
refuses is its own check: the loader sends the rows to a stage typed like the table and
isolates, per record, any value it refuses (source.py).
Lineage columns: kafka_topic, kafka_partition, kafka_offset (unique together: a record
delivered twice is one row), kafka_timestamp.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
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
# The record's name for each of COLUMNS (envelope fields, then the event's), for reasons.
FIELDS = (
    "topic",
    "partition",
    "offset",
    "timestamp",
    "tapId",
    "tokenId",
    "stopId",
    "deviceId",
    "tapTime",
    "fare",
    "mode",
    "extra",
)
INT4_MAX = 2**31 - 1  # fare_cents is a PostgreSQL integer
# Kafka's rule for a topic name (kafka.common.internals.Topic): 1-249 of these.
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


class BadRecord(ValueError):
    """Why a record cannot be a row: the reason (naming the field, as `str()`) and the
    field at fault (`field`; None: the record as a whole), for its dead letter."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True)
class Envelope:
    """One consumed record as the consumer wrote it (a line of a batch file)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None  # ms since the epoch, Kafka's
    key: str | None
    value: str | None
    value_base64: str | None = None  # the value's bytes, when they are not UTF-8

    @property
    def record_key(self) -> list[Any]:
        """The record's identity in Kafka, [topic, partition, offset]: its row's key and
        its dead letter's."""
        return [self.topic, self.partition, self.offset]


def parse_envelope(line: bytes) -> Envelope:
    """Raises BadRecord when the line is not the consumer's envelope (a JSON object with
    a Kafka topic name, integer partition and offset, a timestamp in ms or null, key and
    value as text or null)."""
    try:
        data = json.loads(line)
        envelope = Envelope(
            data["topic"],
            int(data["partition"]),
            int(data["offset"]),
            None if data.get("timestamp") is None else int(data["timestamp"]),
            data.get("key"),
            data.get("value"),
            data.get("value_base64"),
        )
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadRecord(f"not a consumer envelope: {exc}") from exc
    if not isinstance(envelope.topic, str) or not _TOPIC.match(envelope.topic):
        raise BadRecord(f"not a consumer envelope: topic {_shown(envelope.topic)}", "topic")
    if envelope.value is not None and not isinstance(envelope.value, str):
        raise BadRecord(f"not a consumer envelope: value {_shown(envelope.value)}", "value")
    if envelope.value_base64 is not None and not isinstance(envelope.value_base64, str):
        raise BadRecord(
            f"not a consumer envelope: value_base64 {_shown(envelope.value_base64)}", "value"
        )
    return envelope


def to_row(envelope: Envelope) -> list[Any]:
    """The row of COLUMNS for a tap event. Raises BadRecord naming the field."""
    if envelope.value_base64 is not None:
        try:
            raw = base64.b64decode(envelope.value_base64, validate=True)
            raw.decode("utf-8")
        except binascii.Error as exc:
            raise BadRecord(f"value_base64: not base64 ({exc})", "value") from exc
        except UnicodeDecodeError as exc:
            raise BadRecord(
                f"value: not UTF-8 text ({exc.reason}: byte 0x{raw[exc.start]:02x} at {exc.start})",
                "value",
            ) from exc
        raise BadRecord("value: sent as bytes (value_base64) although it is UTF-8", "value")
    if envelope.value is None:
        raise BadRecord("empty value (a tombstone)")
    try:
        event = json.loads(envelope.value)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past Python's limit
        raise BadRecord(f"value is not JSON: {exc}", "value") from exc
    if not isinstance(event, dict):
        raise BadRecord(f"value is not a JSON object but {type(event).__name__}", "value")
    row: dict[str, Any] = {}
    for field, column in REQUIRED_TEXT.items():
        value = event.get(field)
        if not isinstance(value, str) or not value.strip():
            raise BadRecord(f"{field}: required text, got {_shown(value)}", field)
        row[column] = storable_text(field, value)
    for field, column in REQUIRED_ID.items():
        value = event.get(field)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise BadRecord(f"{field}: required id (text or integer), got {_shown(value)}", field)
        row[column] = storable_text(field, str(value))
    when = event.get("tapTime")
    try:
        moment = datetime.fromisoformat(when) if isinstance(when, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRecord(
            f"tapTime: required ISO-8601 time with a zone, got {_shown(when)}", "tapTime"
        )
    fare = event.get("fare")
    if fare is not None and (isinstance(fare, bool) or not isinstance(fare, int) or fare < 0):
        raise BadRecord(f"fare: cents, a whole number >= 0, got {_shown(fare)}", "fare")
    if fare is not None and fare > INT4_MAX:
        # Checked here, not left to COPY: isolating a refused record costs a few COPYs
        # (source.py), a comparison costs nothing (README, "Tap events from Kafka").
        raise BadRecord(
            f"fare: {fare} cents is out of range for type integer (fare_cents, at most {INT4_MAX})",
            "fare",
        )
    mode = event.get("mode")
    if mode is not None and not isinstance(mode, str):
        raise BadRecord(f"mode: text, got {_shown(mode)}", "mode")
    if mode is not None:
        storable_text("mode", mode)
    extra = {k: v for k, v in event.items() if k not in DECLARED}
    for name, value in extra.items():
        _storable_json(name, value)
    stamp = None
    if envelope.timestamp is not None:
        try:
            stamp = datetime.fromtimestamp(envelope.timestamp / 1000, UTC).isoformat()
        except (OverflowError, OSError, ValueError) as exc:
            raise BadRecord(
                f"timestamp: {envelope.timestamp} ms is not a time ({exc})", "timestamp"
            ) from exc
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


def storable_text(field: str, value: str) -> str:
    """`value` when PostgreSQL's text (UTF-8) can hold it. Raises BadRecord naming
    `field` for a NUL character (PostgreSQL text cannot hold U+0000) or a lone surrogate
    (U+D800-U+DFFF alone, e.g. from a JSON `\\ud800`: not a character, so no UTF-8 for it).
    Both are checked here, per record, because neither can reach COPY at all: the
    surrogate cannot be encoded, and COPY's error for a NUL names the line, not the field."""
    if "\x00" in value:
        raise BadRecord(
            f"{printable(field)}: a NUL character (\\u0000), which PostgreSQL text cannot "
            f"hold, in {_shown(value)}",
            printable(field),
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRecord(
            f"{printable(field)}: a lone surrogate ({printable(value[exc.start])}), not a "
            f"character: PostgreSQL cannot hold it, in {_shown(value)}",
            printable(field),
        ) from exc
    return value


def _storable_json(field: str, value: Any) -> None:
    """Raises BadRecord when JSONB cannot hold `value` (an unknown field, kept in
    `extra`): text as in `storable_text` (JSONB refuses \\u0000 too), in keys as well,
    or a number JSON has no text for (NaN, Infinity: Python's json reads them, and 1e400
    as Infinity)."""
    storable_text(field, field)
    if isinstance(value, str):
        storable_text(field, value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise BadRecord(
            f"{printable(field)}: {value} is not a JSON number (kept in extra, a jsonb column)",
            printable(field),
        )
    elif isinstance(value, dict):
        for key, item in value.items():
            storable_text(field, key)
            _storable_json(field, item)
    elif isinstance(value, list):
        for item in value:
            _storable_json(field, item)


def printable(text: str) -> str:
    """`text` as PostgreSQL text can hold it, for messages: a NUL shown as `\\u0000` and a
    lone surrogate as `\\udXXX`; anything else as it is."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not None else "nothing"
    text = printable(text)
    return text if len(text) <= 60 else text[:57] + "..."

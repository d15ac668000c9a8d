"""Consumed batch files become rows of cubic_kafka.taps exactly once per offset; bad
records (malformed, or holding a value PostgreSQL refuses) become dead letters with their
reason, once per offset; the rest of the batch loads."""

from __future__ import annotations

import gzip
import io
import json

from sqlalchemy import text

from data_platform.db.engine import get_engine
from data_platform.run import run_once
from data_platform.settings import Settings
from data_platform.storage import get_zone

TOPIC = "taps"


def _tap(i: int, **changes) -> str:
    event = {
        "tapId": f"tap-{i}",
        "tokenId": f"token-{i % 7}",
        "stopId": f"stop-{i % 3}",
        "deviceId": 100 + i % 5,
        "tapTime": f"2026-11-30T08:{i % 60:02d}:00.123Z",
        "fare": 250,
        "mode": "bus",
        **changes,
    }
    return json.dumps({k: v for k, v in event.items() if v is not ...})


def _land(partition: int, first: int, values: list[str | None]) -> str:
    last = first + len(values) - 1
    key = f"cubic/kafka/{TOPIC}/partition={partition}/offsets={first:020d}-{last:020d}.jsonl.gz"
    lines = [
        json.dumps({"topic": TOPIC, "partition": partition, "offset": first + n,
                    "timestamp": 1764489600000 + n, "key": None, "value": value})
        for n, value in enumerate(values)
    ]  # fmt: skip
    get_zone("incoming").put(key, io.BytesIO(gzip.compress(("\n".join(lines) + "\n").encode())))
    return key


def _rows() -> list[tuple]:
    with get_engine().connect() as conn:
        return conn.execute(
            text(
                "SELECT kafka_partition, kafka_offset, tap_id, stop_id, device_id, fare_cents, "
                "extra FROM cubic_kafka.taps ORDER BY 1, 2"
            )
        ).all()


def test_a_batch_loads_and_a_replayed_or_overlapping_file_adds_nothing(platform: Settings) -> None:
    _land(0, 0, [_tap(0), _tap(1), _tap(2)])
    _land(1, 0, [_tap(10)])
    summary = run_once().source("cubic_kafka")
    assert (summary.scan.new_loads, summary.ingest.archived, summary.ingest.rows) == (2, 2, 4)
    assert [r[:5] for r in _rows()] == [
        (0, 0, "tap-0", "stop-0", "100"),
        (0, 1, "tap-1", "stop-1", "101"),
        (0, 2, "tap-2", "stop-2", "102"),
        (1, 0, "tap-10", "stop-1", "100"),
    ]
    # The consumer was killed after the put and before the commit: the same records
    # arrive again, with one more, in a file whose range overlaps the first.
    _land(0, 1, [_tap(1), _tap(2), _tap(3)])
    _land(0, 0, [_tap(0), _tap(1), _tap(2)])  # and the first file replayed as it was
    run_once()
    assert [(p, o) for p, o, *_ in _rows()] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]


def _dead_letters() -> list[tuple]:
    with get_engine().connect() as conn:
        return conn.execute(
            text(
                "SELECT record_key, load_id, line, field, reason, record FROM dead_letters "
                "ORDER BY record_key"
            )
        ).all()


def test_bad_records_are_dead_letters_and_the_rest_loads(platform: Settings) -> None:
    key = _land(
        2,
        40,
        [
            _tap(1),
            "not json",
            json.dumps([1, 2]),
            _tap(2, tapId=...),  # no tapId
            _tap(3, tapTime="yesterday"),
            _tap(4, fare=-5),
            None,  # a tombstone
            _tap(5, colour="red"),  # an unknown field: kept in extra
        ],
    )
    summary = run_once().source("cubic_kafka")
    assert summary.ingest.archived == 1 and summary.ingest.errored == 0
    rows = _rows()
    assert [(o, tap) for _, o, tap, *_ in rows] == [(40, "tap-1"), (47, "tap-5")]
    assert rows[1][6] == {"colour": "red"}
    with get_engine().connect() as conn:
        load_id = conn.scalar(text("SELECT id FROM loads WHERE s3_key = :k"), {"k": key})
    dead = _dead_letters()
    assert [(k, loaded, line, field) for k, loaded, line, field, *_ in dead] == [
        (["taps", 2, 41], load_id, 2, "value"),
        (["taps", 2, 42], load_id, 3, "value"),
        (["taps", 2, 43], load_id, 4, "tapId"),
        (["taps", 2, 44], load_id, 5, "tapTime"),
        (["taps", 2, 45], load_id, 6, "fare"),
        (["taps", 2, 46], load_id, 7, None),
    ]
    assert [reason.split(":")[0] for *_, reason, _ in dead] == [
        "value is not JSON",
        "value is not a JSON object but list",
        "tapId",
        "tapTime",
        "fare",
        "empty value (a tombstone)",
    ]
    assert json.loads(dead[0][5])["offset"] == 41  # the record as the file held it


def test_a_corrupt_file_is_errored_with_its_reason(platform: Settings) -> None:
    key = "cubic/kafka/taps/partition=0/offsets=00000000000000000000-00000000000000000009.jsonl.gz"
    get_zone("incoming").put(key, io.BytesIO(gzip.compress(b'{"topic": "taps"}\n' * 50)[:40]))
    summary = run_once().source("cubic_kafka")
    assert summary.ingest.errored == 1
    assert "corrupt gzip data" in summary.ingest.errors[0]

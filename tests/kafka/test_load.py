"""Consumed batch files become rows of cubic_kafka.taps exactly once per offset; bad
records (malformed, or holding a value PostgreSQL refuses) become dead letters with their
reason, once per offset; the rest of the batch loads."""

from __future__ import annotations

import gzip
import io
import json

import pytest
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


# Each value PostgreSQL cannot hold, in a declared type, and the field its dead letter
# names: text it cannot store at all (checked per record), JSON numbers jsonb has no text
# for, and values the typed stage refuses (PostgreSQL's own check, isolated per record).
POISON = [
    (_tap(0, tapId="tap\u0000nul"), "tapId", "NUL character"),
    (
        '{"tapId": "t", "tokenId": "k", "stopId": "s\\ud800", "deviceId": 1, '
        '"tapTime": "2026-11-30T08:00:00Z"}',
        "stopId",
        "lone surrogate",
    ),
    (_tap(0, mode="b\u0000us"), "mode", "NUL character"),
    (_tap(0, note={"k\u0000": 1}), "note", "NUL character"),
    (_tap(0, deviceId="\udfff"), "deviceId", "lone surrogate"),
    (_tap(0)[:-1] + ', "speed": 1e999}', "speed", "not a JSON number"),
    (_tap(0, fare=2**40), "fare", "out of range for type integer"),
]
# Values only PostgreSQL's own check refuses (a number past its column's type): the
# per-record isolation in COPY, the net for every kind no check above foresaw.
REFUSED = [  # (line index, partition, offset, field, reason, a line break before it)
    (40, 2**40, 40, "partition", "out of range for type integer (PostgreSQL refused it)", True),
    (240, 0, 2**63, "offset", "out of range for type bigint (PostgreSQL refused it)", True),
    (340, 2**40, 340, "partition", "out of range for type integer (PostgreSQL refused it)", False),
    (341, 0, -2**63 - 1, "offset", "out of range for type bigint (PostgreSQL refused it)", False),
]  # fmt: skip


@pytest.mark.parametrize("block", [None, 2000], ids=["one-block", "small-blocks"])
def test_values_postgres_cannot_hold_are_dead_letters_and_the_rest_loads(
    platform: Settings, monkeypatch: pytest.MonkeyPatch, block: int | None
) -> None:
    from data_platform.batch.cubic_kafka import source

    if block:  # many COPY blocks and slices: the isolation at its edges
        monkeypatch.setattr(source, "_BLOCK", block)
        monkeypatch.setattr(source, "_SLICE", 3)
    values: list[str | None] = [_tap(i) for i in range(400)]
    poison_at = {}
    for n, (value, field, reason) in enumerate(POISON):
        at = 17 + n * 47  # spread over the file
        values.insert(at, value)
        poison_at[at] = (field, reason)
    key = _land(3, 0, values)
    lines = gzip.decompress(get_zone("incoming").open(key).read()).decode().splitlines()
    for at, partition, offset, field, reason, line_break in REFUSED:
        if line_break:
            # Just before it a good record with a quoted line break in its CSV: COPY's line
            # numbers may then run ahead of the records (the isolation must not trust them).
            lines[at - 1] = json.dumps(
                {**json.loads(lines[at - 1]), "value": _tap(at, tokenId="a\nb")}
            )
        lines[at] = json.dumps({**json.loads(lines[at]), "partition": partition, "offset": offset})
        poison_at[at] = (field, reason)
    get_zone("incoming").put(key, io.BytesIO(gzip.compress("\n".join(lines).encode())))
    summary = run_once().source("cubic_kafka")
    assert (summary.ingest.archived, summary.ingest.errored) == (1, 0), summary.ingest.errors
    good = 400 - len(REFUSED)
    assert summary.ingest.rows == good
    rows = _rows()
    assert len(rows) == good and not {o for _, o, *_ in rows} & set(poison_at)
    dead = sorted(_dead_letters(), key=lambda d: d[2])  # by line
    assert [(line, field) for _, _, line, field, *_ in dead] == [
        (at + 1, field) for at, (field, _) in sorted(poison_at.items())
    ]
    for (key, _, _, field, reason, record), (_, want) in zip(
        dead, [poison_at[at] for at in sorted(poison_at)], strict=True
    ):
        assert reason.startswith(f"{field}: ") and want in reason, (key, reason)
        envelope = json.loads(record)
        assert [envelope["topic"], envelope["partition"], envelope["offset"]] == key


def test_a_replayed_or_overlapping_file_gives_each_bad_record_one_dead_letter(
    platform: Settings,
) -> None:
    from click.testing import CliRunner

    from data_platform.cli.main import cli

    first = _land(0, 0, [_tap(0), _tap(1, tapId="a\u0000b"), "not json", _tap(3, fare=2**40)])
    run = run_once().source("cubic_kafka")
    assert (run.ingest.rows, run.ingest.dead_letters) == (1, 3)
    assert "  3 record(s) dead-lettered (not rows; the rest of their files loaded)" in (
        "\n".join(run.render_lines())
    )
    # The consumer was killed between the put and the commit: the same records again,
    # with more, in a file whose range overlaps, and the first file replayed as it was.
    overlap = _land(
        0, 1, [_tap(1, tapId="a\u0000b"), "not json", _tap(3, fare=2**40), _tap(4), "{"]
    )
    _land(0, 0, [_tap(0), _tap(1, tapId="a\u0000b"), "not json", _tap(3, fare=2**40)])
    summary = run_once().source("cubic_kafka")
    assert (summary.ingest.archived, summary.ingest.errored) == (2, 0), summary.ingest.errors
    assert summary.ingest.dead_letters == 1  # only the record no earlier load carried
    assert [o for _, o, *_ in _rows()] == [0, 4]
    dead = _dead_letters()
    with get_engine().connect() as conn:
        load_ids = [
            conn.scalar(text("SELECT min(id) FROM loads WHERE s3_key = :k"), {"k": key})
            for key in (first, overlap)
        ]
        assert conn.scalar(text("SELECT count(*) FROM loads")) == 3  # the replay is a load
    assert [(k, loaded, field) for k, loaded, _, field, *_ in dead] == [
        (["taps", 0, 1], load_ids[0], "tapId"),
        (["taps", 0, 2], load_ids[0], "value"),
        (["taps", 0, 3], load_ids[0], "fare"),
        (["taps", 0, 5], load_ids[1], "value"),
    ]

    status = CliRunner().invoke(cli, ["status", "--json"])
    assert status.exit_code == 0, status.output
    (taps,) = [t for t in json.loads(status.output)["tables"] if t["table"] == "cubic_kafka__taps"]
    assert taps["dead_letters"] == 4
    text_status = CliRunner().invoke(cli, ["status"]).output
    assert "  dead letters: 4 record(s)" in text_status
    shown = CliRunner().invoke(cli, ["loads", "show", str(load_ids[0]), "--json"])
    detail = json.loads(shown.output)
    assert detail["dead_letter_count"] == 3
    assert [(d["line"], d["field"]) for d in detail["dead_letters"]] == [
        (2, "tapId"),
        (3, "value"),
        (4, "fare"),
    ]
    shown = CliRunner().invoke(cli, ["loads", "show", str(load_ids[1])]).output
    assert "dead letters: 1 record(s)" in shown and "line 5 ['taps', 0, 5]" in shown

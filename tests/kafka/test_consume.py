"""`kafka consume` on librdkafka's mock cluster: batch files per partition with the right
offset ranges, flushed by count, by time, on revoke, on SIGTERM, at the end of --once;
and nothing lost when a consumer is SIGKILLed between storing a file and committing."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from data_platform.batch.cubic_kafka.consume import batch_key, consume
from data_platform.storage import get_zone
from harness.samples.kafka import produce, record_key, tap_events
from harness.stand_ins.kafka_broker import create_topic

REPO = Path(__file__).resolve().parents[2]
RUN_CLI = Path(__file__).resolve().parent / "run_cli.py"
PREFIX = "cubic/kafka/"


def _files(topic: str) -> dict[str, list[dict]]:
    """Every batch file of `topic` in incoming: key -> its records."""
    zone = get_zone("incoming")
    out = {}
    for info in zone.list(f"{PREFIX}{topic}/"):
        with zone.open(info.key) as body:
            out[info.key] = [json.loads(line) for line in gzip.decompress(body.read()).splitlines()]
    return out


def _ranges(topic: str) -> dict[int, list[tuple[int, int]]]:
    """Per partition, the (first, last) offsets of each file, from the records."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    for records in _files(topic).values():
        offsets = [r["offset"] for r in records]
        assert offsets == list(range(offsets[0], offsets[-1] + 1))
        ranges.setdefault(records[0]["partition"], []).append((offsets[0], offsets[-1]))
    return {p: sorted(r) for p, r in ranges.items()}


def _high(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def _committed(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "data-platform"})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=5)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        consumer.close()


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_flush_by_count_writes_contiguous_files_and_commits_past_them(kafka: str) -> None:
    create_topic(kafka, "taps", 1)
    producer = Producer({"bootstrap.servers": kafka})
    for i in range(23):
        producer.produce("taps", key=f"k{i}", value=json.dumps({"tapId": f"t{i}"}), partition=0)
    producer.produce("taps", value=b"\xff not utf-8", partition=0)  # offset 23
    producer.produce("taps", key=b"gone", value=None, partition=0)  # 24: a tombstone
    producer.flush(5)

    result = consume("taps", max_records=10, once=True)

    assert result.files == [
        batch_key(PREFIX, "taps", 0, 0, 9),
        batch_key(PREFIX, "taps", 0, 10, 19),
        batch_key(PREFIX, "taps", 0, 20, 24),
    ]
    assert result.files[0] == "cubic/kafka/taps/partition=0/offsets=" + "0" * 20 + "-" + (
        "0" * 19 + "9.jsonl.gz"
    )
    assert result.records == 25
    assert result.committed == {0: 25}
    assert _committed(kafka, "taps", 1) == {0: 25}
    records = _files("taps")[result.files[2]]
    assert records[0] == {
        "topic": "taps",
        "partition": 0,
        "offset": 20,
        "timestamp": records[0]["timestamp"],
        "key": "k20",
        "value": '{"tapId": "t20"}',
    }
    assert isinstance(records[0]["timestamp"], int)
    # Not UTF-8: the bytes as they came (base64), not a replaced text that would load.
    assert records[3]["value"] is None
    assert base64.b64decode(records[3]["value_base64"]) == b"\xff not utf-8"
    assert records[4]["key"] == "gone" and records[4]["value"] is None
    assert result.to_dict()["committed"] == {"0": 25}
    assert "consumed 25 records of topic taps into 3 files" in result.render()

    # Consumed already: a second run finds nothing new and writes nothing.
    again = consume("taps", max_records=10, once=True)
    assert (again.records, again.files) == (0, [])


def test_flush_by_time_writes_a_partitions_batch_when_its_first_record_is_old(
    kafka: str,
) -> None:
    create_topic(kafka, "taps", 2)
    produce(kafka, "taps", tap_events(7))
    zone = get_zone("incoming")
    started = time.monotonic()

    def stop() -> bool:
        # Stop once a file exists: it was written by age, the stop flushes only after.
        if time.monotonic() - started > 15:
            raise AssertionError("no batch flushed by time")
        return any(zone.list(f"{PREFIX}taps/"))

    result = consume("taps", max_records=1000, max_seconds=0.5, stop=stop)
    assert result.records == 7
    assert sum(len(r) for r in _files("taps").values()) == 7


def test_several_partitions_each_get_files_with_their_own_offset_ranges(kafka: str) -> None:
    create_topic(kafka, "taps", 3)
    assert produce(kafka, "taps", tap_events(90, bad_every=9)) == 90
    high = _high(kafka, "taps", 3)
    assert all(high.values()) and sum(high.values()) == 90

    result = consume("taps", max_records=8, once=True)

    ranges = _ranges("taps")
    assert sorted(ranges) == [0, 1, 2]
    for partition, spans in ranges.items():
        expected = [
            (first, min(first + 7, high[partition] - 1)) for first in range(0, high[partition], 8)
        ]
        assert spans == expected
    assert result.committed == high
    assert _committed(kafka, "taps", 3) == high
    assert sorted(result.files) == list(_files("taps"))  # listed by key: by offset
    # Malformed events travel as they came: the value is the raw text.
    values = [r["value"] for records in _files("taps").values() for r in records]
    assert sum(1 for v in values if not v.startswith("{") or not v.endswith("}")) >= 2


def test_the_lines_of_a_file_land_in_the_same_partitions_every_time(kafka: str) -> None:
    # The demo and `produce-sample --file` send text lines: keyed by their tokenId like
    # dict events, and keyless (malformed) ones all in one partition, not at random.
    lines = (REPO / "sample_data" / "cubic" / "kafka" / "taps.jsonl").read_text().splitlines()
    placed = []
    for topic in ("first", "second"):
        create_topic(kafka, topic, 3)
        assert produce(kafka, topic, lines) == len(lines)
        consume(topic, once=True)
        placed.append(
            sorted(
                (r["partition"], r["key"] or "", r["value"])
                for f in _files(topic).values()
                for r in f
            )
        )
    assert placed[0] == placed[1] and len(placed[0]) == len(lines)
    by_key: dict[str, set[int]] = {}
    for partition, key, _value in placed[0]:
        by_key.setdefault(key, set()).add(partition)
    assert all(len(partitions) == 1 for partitions in by_key.values())  # one card, one partition
    assert {partition for partition, _, _ in placed[0]} == {0, 1, 2}
    keyless = [line for line in lines if record_key(line) is None]  # not JSON, or no object
    assert keyless and sorted(v for _, key, v in placed[0] if not key) == sorted(keyless)


def test_once_ends_when_every_partition_is_at_its_end(kafka: str) -> None:
    create_topic(kafka, "empty", 3)
    started = time.monotonic()
    result = consume("empty", once=True, idle_seconds=30)
    assert time.monotonic() - started < 10  # the end of the partitions, not the idle time
    assert (result.records, result.files, result.committed) == (0, [], {})


def _cli(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(RUN_CLI), *args],
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _kill_between_put_and_commit(tmp_path: Path, stored: str) -> None:
    """Run `kafka consume --topic taps --once` in a real process and SIGKILL it once its
    file `stored` is in incoming and its offsets are not yet committed (the test-only
    marker KAFKA_TEST_COMMIT_MARKER pauses it there)."""
    marker = tmp_path / "commit-started"
    env = {**os.environ, "KAFKA_TEST_COMMIT_MARKER": str(marker)}
    proc = _cli(["kafka", "consume", "--topic", "taps", "--once"], env, stderr=subprocess.DEVNULL)
    try:
        # Generous: a loaded 2-core CI worker starts the interpreter and joins the group.
        _wait(marker.exists, 90, "the consumer to reach its commit")
        # The file is stored, its offsets not committed: kill it in that gap.
        assert list(_files("taps")) == [stored]
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.stdout.close()


@pytest.mark.slow
def test_sigkill_between_put_and_commit_loses_nothing(kafka: str, platform, tmp_path: Path) -> None:
    create_topic(kafka, "taps", 1)
    produce(kafka, "taps", tap_events(20))
    _kill_between_put_and_commit(tmp_path, batch_key(PREFIX, "taps", 0, 0, 19))
    assert _committed(kafka, "taps", 1) == {}

    # More arrived meanwhile; the rerun reads the uncommitted records again: an
    # overlapping file (documented; the loader's unique offset makes it harmless).
    produce(kafka, "taps", tap_events(5, seed=2))
    # (Once the killed member's session ends: 3 s on the test cluster.)
    result = consume("taps", once=True, idle_seconds=20)
    assert result.files == [batch_key(PREFIX, "taps", 0, 0, 24)]
    assert _ranges("taps") == {0: [(0, 19), (0, 24)]}
    assert _committed(kafka, "taps", 1) == {0: 25}


@pytest.mark.slow
def test_sigterm_flushes_and_commits(kafka: str, platform, tmp_path: Path) -> None:
    create_topic(kafka, "taps", 2)
    produce(kafka, "taps", tap_events(30))
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as log_file:
        proc = _cli(
            ["kafka", "consume", "--topic", "taps", "--json"], dict(os.environ), stderr=log_file
        )
        try:
            _wait(lambda: "assigned partitions" in log_path.read_text(), 30, "an assignment")
            time.sleep(1.5)  # the fetch of what is there (milliseconds on the mock)
            assert _files("taps") == {}  # nothing flushed yet: no limit reached
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, log_path.read_text()
    assert "SIGTERM received" in log_path.read_text()
    result = json.loads(out)
    high = _high(kafka, "taps", 2)
    assert result["records"] == 30
    assert result["committed"] == {str(p): o for p, o in high.items()}
    assert _committed(kafka, "taps", 2) == high
    assert _ranges("taps") == {p: [(0, o - 1)] for p, o in high.items()}


class _Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.threadName, record.getMessage()))

    def said(self, thread: str, text: str) -> int:
        return sum(1 for name, message in list(self.seen) if name == thread and text in message)


@pytest.mark.slow
def test_a_rebalance_flushes_and_commits_what_the_first_consumer_owned(kafka: str) -> None:
    topic, partitions = "taps", 4
    create_topic(kafka, topic, partitions)
    produce(kafka, topic, tap_events(80))
    events = _Events()
    logger = logging.getLogger("data_platform.batch.cubic_kafka.consume")
    logger.addHandler(events)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    stops = {"a": threading.Event(), "b": threading.Event()}
    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            results[name] = consume(
                topic, max_records=1000, max_seconds=1000, stop=stops[name].is_set
            )
        except BaseException as exc:  # reported by the test thread
            results[name] = exc

    threads = {n: threading.Thread(target=run, args=(n,), name=n) for n in stops}
    try:
        threads["a"].start()
        _wait(lambda: events.said("a", "assigned partitions [0, 1, 2, 3]"), 30, "a's assignment")
        time.sleep(1)  # a consumes what is there, holds it in open batches
        assert _files(topic) == {}
        high_before = _high(kafka, topic, partitions)
        threads["b"].start()
        _wait(lambda: events.said("b", "assigned partitions ["), 30, "b's assignment")
        taken = next(
            json.loads(m.removeprefix("assigned partitions "))
            for n, m in events.seen
            if n == "b" and m.startswith("assigned partitions [") and m != "assigned partitions []"
        )
        # a was revoked what b took (incrementally: KIP-848) and stored and committed
        # those partitions' batches then, before b read them: b starts past them.
        assert taken and events.said("a", f"partitions {taken} revoked: flushing them")
        assert _ranges(topic) == {p: [(0, high_before[p] - 1)] for p in taken}
        assert {p: o for p, o in _committed(kafka, topic, partitions).items()} == {
            p: high_before[p] for p in taken
        }
        produce(kafka, topic, tap_events(40, seed=2))
        time.sleep(1.5)
    finally:
        for name in stops:
            stops[name].set()
        for thread in threads.values():
            if thread.is_alive() or thread.ident:
                thread.join(30)
        logger.removeHandler(events)
        logger.setLevel(previous_level)  # later tests see the level they expect
    for name in stops:
        assert not isinstance(results[name], BaseException), results[name]

    # Whatever the timing left uncommitted, a drain picks it up; then every offset is in
    # exactly one file: revoke commits before the next owner starts, so no overlap.
    consume(topic, once=True)
    high = _high(kafka, topic, partitions)
    assert sum(high.values()) == 120
    for partition, spans in _ranges(topic).items():
        covered = [o for first, last in spans for o in range(first, last + 1)]
        assert sorted(covered) == list(range(high[partition])), (partition, spans)
    assert _committed(kafka, topic, partitions) == high


def test_a_put_that_fails_commits_nothing_and_raises_a_storage_error(
    kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_platform.errors import StorageError
    from data_platform.storage.zones import ZoneStore

    create_topic(kafka, "taps", 1)
    produce(kafka, "taps", tap_events(5))

    put, failing = ZoneStore.put, [True]

    def broken(self, key, body):
        if failing:
            raise OSError("No space left on device")
        put(self, key, body)

    monkeypatch.setattr(ZoneStore, "put", broken)
    with pytest.raises(StorageError, match="No space left on device") as caught:
        consume("taps", once=True)
    assert caught.value.exit_code == 4
    assert _committed(kafka, "taps", 1) == {}
    failing.clear()  # storage is back: the same records land, none lost
    assert consume("taps", once=True).files == [batch_key(PREFIX, "taps", 0, 0, 4)]


def test_the_commands_have_help_with_examples() -> None:
    from click.testing import CliRunner

    from data_platform.cli.main import cli
    from harness.cli import cli as harness_cli

    # Through the root command: click keeps the help option a command was first shown with.
    for root, command in ((cli, "consume"), (harness_cli, "produce-sample")):
        done = CliRunner().invoke(root, ["kafka", command, "--help"])
        assert done.exit_code == 0 and "Examples:" in done.output


@pytest.mark.slow
def test_sigkill_between_put_and_commit_with_poison_records_gives_one_row_or_one_dead_letter_each(
    kafka: str, platform, tmp_path: Path
) -> None:
    """The consumer is killed in the gap between storing a batch that holds malformed and
    poison records and committing it; a restarted consumer writes the records again with
    more, into a file whose range overlaps. After the loads: each good record is one row,
    each bad one exactly one dead letter with its reason, and status counts them."""
    from click.testing import CliRunner
    from sqlalchemy import text

    from data_platform.cli.main import cli
    from data_platform.db.engine import get_engine
    from data_platform.run import run_once
    from harness.samples.kafka import POISON_FIELDS

    create_topic(kafka, "taps", 1)
    bad: dict[int, str | None] = {}  # offset -> the field its dead letter names
    offset = 0
    for count in (400, 40):  # before the kill (seed 1), then while it is down (seed 2)
        for i in range(count):
            if (i + 1) % 37 == 0:
                bad[offset] = None  # malformed: not JSON, a list, no stopId, a text fare
            elif (i + 1) % 23 == 0:
                bad[offset] = POISON_FIELDS[(i // 23) % 4]
            offset += 1
    total = offset
    produce(kafka, "taps", tap_events(400, 1, bad_every=37, poison_every=23))

    _kill_between_put_and_commit(tmp_path, batch_key(PREFIX, "taps", 0, 0, 399))
    assert _committed(kafka, "taps", 1) == {}

    produce(kafka, "taps", tap_events(40, 2, bad_every=37, poison_every=23))
    again = _cli(
        ["kafka", "consume", "--topic", "taps", "--once", "--idle-seconds", "20"],
        dict(os.environ),
        stderr=subprocess.DEVNULL,
    )
    # 20 s of idling, the group join and the flush: generous on a loaded 2-core CI worker.
    out, _ = again.communicate(timeout=180)
    assert again.returncode == 0, out
    assert _ranges("taps") == {0: [(0, 399), (0, total - 1)]}  # the overlap
    assert _committed(kafka, "taps", 1) == {0: total}

    summary = run_once().source("cubic_kafka")
    assert (summary.ingest.archived, summary.ingest.errored) == (2, 0), summary.ingest.errors
    with get_engine().connect() as conn:
        rows = conn.execute(text("SELECT kafka_offset FROM cubic_kafka.taps")).scalars().all()
        dead = conn.execute(
            text("SELECT record_key, field, reason FROM dead_letters ORDER BY id")
        ).all()
    assert sorted(rows) == [o for o in range(total) if o not in bad]  # one row each
    assert sorted(key[2] for key, _, _ in dead) == sorted(bad)  # one dead letter each
    assert len(bad) > 20 and any(f is None for f in bad.values())
    for key, field, reason in dead:
        want = bad[key[2]]
        if want is not None:  # a poison record: the field PostgreSQL could not hold
            assert field == want and reason.startswith(f"{want}: "), (key, field, reason)
        else:
            assert reason, key
    status = CliRunner().invoke(cli, ["status", "--json"])
    assert status.exit_code == 0, status.output
    (taps,) = [t for t in json.loads(status.output)["tables"] if t["table"] == "cubic_kafka__taps"]
    assert taps["loads"] == {"archived": 2}
    assert taps["dead_letters"] == len(bad)


def test_a_value_that_is_not_utf8_is_a_dead_letter_not_a_replaced_row(kafka: str, platform) -> None:
    from sqlalchemy import text

    from data_platform.db.engine import get_engine
    from data_platform.run import run_once

    create_topic(kafka, "taps", 1)
    good = json.dumps(next(iter(tap_events(1))))
    producer = Producer({"bootstrap.servers": kafka})
    producer.produce("taps", value=good.encode(), partition=0)
    # A tap whose tapId holds a byte that is not UTF-8 (Latin-1's e acute).
    producer.produce(
        "taps", value=good.replace('"tapId": "', '"tapId": "caf\xe9').encode("latin-1"), partition=0
    )
    producer.flush(5)
    consume("taps", once=True)
    summary = run_once().source("cubic_kafka")
    assert (summary.ingest.archived, summary.ingest.rows, summary.ingest.dead_letters) == (1, 1, 1)
    with get_engine().connect() as conn:
        dead = conn.execute(text("SELECT record_key, field, reason FROM dead_letters")).all()
    assert dead == [
        (
            ["taps", 0, 1],
            "value",
            "value: not UTF-8 text (invalid continuation byte: byte 0xe9 at 14)",
        )
    ]

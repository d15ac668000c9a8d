"""Consume a Kafka topic into batch files in the incoming zone, at least once.

One consumer in the group KAFKA_GROUP_ID (auto commit off, `earliest` for a new group)
keeps one open batch per assigned partition, streamed into a gzip temp file, and flushes
a partition's batch when

- it holds `max_records` records (KAFKA_MAX_RECORDS), or its first record has waited
  `max_seconds` (KAFKA_MAX_SECONDS);
- the partition is revoked (a rebalance: what this consumer owns is flushed and
  committed before another member takes it over);
- `stop()` answers true (the CLI: SIGTERM or Ctrl-C), or, with `once`, when everything
  that was in the topic is consumed: every assigned partition reached its end, or nothing
  new came for `idle_seconds`.

A flush writes the gzip JSON lines file (one line per record: topic, partition, offset,
timestamp in ms or null, key as UTF-8 text with errors replaced, or null; value as
UTF-8 text, or null; a value that is not UTF-8 goes as `value_base64` instead, its bytes
as they came, so the loader dead-letters it rather than load a replaced text; the value
stays a string, the loader decides what parses) under

    <KAFKA_PREFIX><topic>/partition=<p>/offsets=<first:020d>-<last:020d>.jsonl.gz

puts it (a complete object, atomically), and only THEN commits offset last+1 for that
partition, synchronously. Offsets are zero-padded so keys sort by offset.

Nothing is lost, some records may come twice:
- killed between the put and the commit, the next consumer reads the batch again. When
  it flushes the same range (same records, same limits) the key is the same and the put
  replaces the file with the same content; when the range differs (more records had
  arrived, or another limit struck) a second file with overlapping offsets lands. The
  loader keys records on (topic, partition, offset), so the overlap is harmless.
- a put that fails: nothing is committed, the error is raised (StorageError, exit 4);
  the records are read again by the next run.
- partitions lost without a revoke (session timed out): their open batches are dropped
  uncommitted; the member that now owns them reads them again.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from data_platform.errors import ConfigError, DataPlatformError, StorageError
from data_platform.settings import Settings, get_settings

if TYPE_CHECKING:
    from confluent_kafka import Message

log = logging.getLogger(__name__)

# The longest a poll waits, so stop() is checked at least this often (seconds).
_POLL_TIMEOUT = 1.0


class KafkaConsumeError(DataPlatformError):
    """The consumer cannot go on: the brokers refuse it, a commit failed, a fatal error."""


def batch_key(prefix: str, topic: str, partition: int, first: int, last: int) -> str:
    """The incoming-zone key of the batch holding offsets first..last of a partition."""
    return f"{prefix}{topic}/partition={partition}/offsets={first:020d}-{last:020d}.jsonl.gz"


def client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings every client of the platform shares: brokers and security."""
    if not settings.kafka_bootstrap_servers:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is not set: name the Kafka brokers")
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "client.id": "data-platform",
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        config["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password:
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_ca_location:
        config["ssl.ca.location"] = str(settings.kafka_ssl_ca_location)
    return config


@dataclass
class ConsumeResult:
    """What one consume did: records written, the files (keys in incoming) in the order
    written, and per partition the offset committed last (the next one to read)."""

    topic: str
    records: int = 0
    files: list[str] = field(default_factory=list)
    committed: dict[int, int] = field(default_factory=dict)

    def render(self) -> str:
        lines = [
            f"consumed {self.records} record{'s' if self.records != 1 else ''} of topic "
            f"{self.topic} into {len(self.files)} file{'s' if len(self.files) != 1 else ''}"
        ]
        lines += [f"  {key}" for key in self.files]
        for partition, offset in sorted(self.committed.items()):
            lines.append(f"  partition {partition}: committed offset {offset}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "records": self.records,
            "files": list(self.files),
            "committed": {str(p): o for p, o in sorted(self.committed.items())},
        }


class _Batch:
    """The open batch of one partition: records streamed into a gzip temp file."""

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.first: int | None = None
        self.last: int | None = None
        self.count = 0
        self.started = 0.0  # monotonic time of the first record
        self._raw: BinaryIO | None = None
        self._gzip: gzip.GzipFile | None = None

    def add(self, message: Any) -> None:
        if self._raw is None:
            # Lives until the flush (or a discard): the batch owns it, not a `with`.
            self._raw = tempfile.TemporaryFile(prefix="kafka-batch-")  # noqa: SIM115
            self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb")
            self.first = message.offset()
            self.started = time.monotonic()
        kind, stamp = message.timestamp()
        line = {
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "timestamp": stamp if kind != 0 else None,  # 0: TIMESTAMP_NOT_AVAILABLE
            "key": _text(message.key()),
            **_value(message.value()),
        }
        assert self._gzip is not None
        self._gzip.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
        self.last = message.offset()
        self.count += 1

    def due(self, max_records: int, max_seconds: float, now: float) -> bool:
        return self.count >= max_records or (self.count > 0 and now - self.started >= max_seconds)

    def finish(self) -> BinaryIO:
        """Close the gzip stream; the temp file, rewound, for the put."""
        assert self._gzip is not None and self._raw is not None
        self._gzip.close()
        self._raw.seek(0)
        return self._raw

    def discard(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self._raw = self._gzip = None


def _partition(message: Message) -> int:
    """The partition of a record or of a partition's end (librdkafka always names it
    there; confluent_kafka types it optional, for the errors of no partition)."""
    partition = message.partition()
    if partition is None:
        raise KafkaConsumeError("kafka: a message of no partition")
    return partition


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def _value(data: bytes | None) -> dict[str, str | None]:
    """The envelope's value fields: {"value": text or None}, or, for bytes that are not
    UTF-8, {"value": None, "value_base64": the bytes}: replacing them would load an
    altered record without a word."""
    if data is None:
        return {"value": None}
    try:
        return {"value": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"value": None, "value_base64": base64.b64encode(data).decode("ascii")}


class _Consumer:
    """The loop and its state; `consume` is the interface."""

    def __init__(
        self,
        topic: str,
        settings: Settings,
        max_records: int,
        max_seconds: float,
        once: bool,
        idle_seconds: float,
        stop: Callable[[], bool],
        config: dict[str, Any] | None,
    ) -> None:
        from confluent_kafka import Consumer

        from data_platform.storage import get_zone

        self.topic = topic
        self.settings = settings
        self.max_records = max_records
        self.max_seconds = max_seconds
        self.once = once
        self.idle_seconds = idle_seconds
        self.stop = stop
        self.zone = get_zone("incoming", settings)
        self.zone.clean_partials(settings.kafka_prefix)  # what killed consumers left
        self.result = ConsumeResult(topic)
        self.batches: dict[int, _Batch] = {}
        self.assigned: set[int] = set()
        self.at_end: set[int] = set()  # partitions whose end (the high watermark) we reached
        self.ever_assigned = False
        self.broker_errors: list[str] = []
        self.failed = False
        conf = {
            **client_config(settings),
            "group.id": settings.kafka_group_id,
            "group.protocol": settings.kafka_group_protocol,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": once,
            "error_cb": self._on_error,
            "logger": logging.getLogger(f"{__name__}.librdkafka"),
            **(config or {}),
        }
        self.consumer = Consumer(conf)

    # --- callbacks (run inside poll/close, on this thread) ---

    def _on_error(self, error: Any) -> None:
        log.warning("kafka: %s", error.str(), extra={"topic": self.topic})
        if error.fatal():
            self.broker_errors.append(f"fatal: {error.str()}")
        else:
            self.broker_errors.append(error.str())

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        log.info("assigned partitions %s", numbers, extra={"topic": self.topic})
        self.assigned.update(numbers)
        self.at_end.difference_update(numbers)
        self.ever_assigned = True
        self.last_activity = time.monotonic()

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        log.info("partitions %s revoked: flushing them", numbers, extra={"topic": self.topic})
        if not self.failed:
            for number in numbers:
                self._flush(number)
        self._forget(numbers)

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        log.warning(
            "partitions %s lost: their open batches are dropped uncommitted (the new owner "
            "reads them again)",
            numbers,
            extra={"topic": self.topic},
        )
        self._forget(numbers)

    def _forget(self, numbers: list[int]) -> None:
        for number in numbers:
            batch = self.batches.pop(number, None)
            if batch is not None:
                batch.discard()
            self.assigned.discard(number)
            self.at_end.discard(number)

    # --- flushing ---

    def _flush(self, partition: int) -> None:
        """Put the partition's open batch, then commit past it. A failed put commits
        nothing and raises."""
        from confluent_kafka import KafkaException, TopicPartition

        batch = self.batches.get(partition)
        if batch is None or batch.count == 0:
            return
        assert batch.first is not None and batch.last is not None
        key = batch_key(self.settings.kafka_prefix, self.topic, partition, batch.first, batch.last)
        body = batch.finish()
        try:
            self.zone.put(key, body)
        except DataPlatformError:
            self.failed = True
            raise
        except Exception as exc:
            self.failed = True
            raise StorageError(f"cannot store {self.zone.describe(key)}: {exc}") from exc
        finally:
            del self.batches[partition]
            batch.discard()
        extra = {"topic": self.topic, "partition": partition, "key": key}
        log.info(
            "wrote %d records, offsets %d-%d", batch.count, batch.first, batch.last, extra=extra
        )
        self.result.records += batch.count
        self.result.files.append(key)
        offset = batch.last + 1
        try:
            self.consumer.commit(
                offsets=[TopicPartition(self.topic, partition, offset)], asynchronous=False
            )
        except KafkaException as exc:
            self.failed = True
            raise KafkaConsumeError(
                f"{key} is stored but committing offset {offset} of {self.topic} partition "
                f"{partition} failed: {exc.args[0].str() if exc.args else exc} (the records "
                "will be consumed again: harmless, the loader keys them by offset)"
            ) from exc
        self.result.committed[partition] = offset

    def _flush_due(self) -> None:
        now = time.monotonic()
        for partition in sorted(self.batches):
            if self.batches[partition].due(self.max_records, self.max_seconds, now):
                self._flush(partition)

    def _flush_all(self) -> None:
        for partition in sorted(self.batches):
            self._flush(partition)

    # --- the loop ---

    def _poll_timeout(self) -> float:
        """Wake up in time for the next time-based flush."""
        if not self.batches:
            return _POLL_TIMEOUT
        now = time.monotonic()
        soonest = min(b.started + self.max_seconds for b in self.batches.values() if b.count)
        return max(0.0, min(_POLL_TIMEOUT, soonest - now))

    def _done(self) -> bool:
        if self.stop():
            log.info("stop requested: flushing and committing", extra={"topic": self.topic})
            return True
        if not self.once:
            return False
        if self.assigned and self.at_end >= self.assigned:
            return True
        if time.monotonic() - self.last_activity >= self.idle_seconds:
            if not self.ever_assigned and self.broker_errors:
                raise KafkaConsumeError(
                    f"no partition of {self.topic} assigned in {self.idle_seconds:g} s: "
                    f"{self.broker_errors[-1]} (KAFKA_BOOTSTRAP_SERVERS "
                    f"{self.settings.kafka_bootstrap_servers})"
                )
            return True
        return False

    def run(self) -> ConsumeResult:
        from confluent_kafka import KafkaError

        self.last_activity = time.monotonic()
        self.consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not self._done():
                message = self.consumer.poll(self._poll_timeout())
                if message is not None:
                    error = message.error()
                    if error is None:
                        partition = _partition(message)
                        batch = self.batches.get(partition)
                        if batch is None:
                            batch = self.batches[partition] = _Batch(self.topic, partition)
                        batch.add(message)
                        self.at_end.discard(partition)
                        self.last_activity = time.monotonic()
                    elif error.code() == KafkaError._PARTITION_EOF:
                        self.at_end.add(_partition(message))
                    elif error.fatal():
                        raise KafkaConsumeError(f"kafka: {error.str()}")
                    else:
                        log.warning("kafka: %s", error.str(), extra={"topic": self.topic})
                if any(f.startswith("fatal: ") for f in self.broker_errors):
                    raise KafkaConsumeError(f"kafka: {self.broker_errors[-1]}")
                self._flush_due()
            self._flush_all()
        except BaseException:
            self.failed = True
            for batch in self.batches.values():
                batch.discard()
            self.batches.clear()
            raise
        finally:
            # Leaves the group; the revoke it triggers finds nothing open (all flushed,
            # or dropped after a failure: uncommitted, read again next time).
            self.consumer.close()
        return self.result


def consume(
    topic: str,
    *,
    max_records: int | None = None,
    max_seconds: float | None = None,
    once: bool = False,
    stop: Callable[[], bool] | None = None,
    settings: Settings | None = None,
    idle_seconds: float = 10.0,
    config: dict[str, Any] | None = None,
) -> ConsumeResult:
    """Consume `topic` into batch files in the incoming zone until `stop()` is true (or,
    with `once`, until what the topic held is consumed); see the module's doc.

    `max_records`/`max_seconds` default to KAFKA_MAX_RECORDS/KAFKA_MAX_SECONDS.
    `idle_seconds` (with `once`): end after this long without a new record. `config` adds
    or overrides librdkafka consumer settings (tests: faster heartbeats)."""
    settings = settings or get_settings()
    max_records = max_records if max_records is not None else settings.kafka_max_records
    max_seconds = max_seconds if max_seconds is not None else settings.kafka_max_seconds
    if max_records <= 0 or max_seconds <= 0:
        raise ConfigError("max records and max seconds must be positive")
    runner = _Consumer(
        topic,
        settings,
        max_records,
        max_seconds,
        once,
        idle_seconds,
        stop or (lambda: False),
        config,
    )
    return runner.run()

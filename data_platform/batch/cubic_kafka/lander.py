"""Kafka as a landing of the platform (`data_platform.loads.landing`): `kafka consume`
and `data-platform run` (the topics of KAFKA_TOPICS, each drained as `--once` does)
consume through it (`consume.consume`). Items: the topics. Offsets are Kafka's own (the
group's commits), so the source keeps no landing mark; a topic that cannot be consumed
fails the landing as a whole, with its exit code (storage 4, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from data_platform.batch.cubic_kafka.consume import ConsumeResult, consume
from data_platform.batch.cubic_kafka.source import SOURCE
from data_platform.db.models import SourceName
from data_platform.loads.landing import LandResult
from data_platform.settings import Settings, get_settings


def topics_of(settings: Settings) -> list[str]:
    """KAFKA_TOPICS as a list."""
    return [topic.strip() for topic in settings.kafka_topics.split(",") if topic.strip()]


@dataclass
class KafkaLander:
    """Consume `topics` (None: KAFKA_TOPICS) with `settings` (None: the platform's); the
    other fields are `consume`'s. `detail` of its result: topic -> ConsumeResult."""

    topics: list[str] | None = None
    once: bool = True
    stop: Callable[[], bool] | None = None
    settings: Settings | None = None
    max_records: int | None = None
    max_seconds: float | None = None
    idle_seconds: float = 10.0
    config: dict[str, Any] | None = None
    source: SourceName = field(default=SOURCE, init=False)

    def every(self, settings: Settings) -> float | None:
        """KAFKA_LAND_EVERY (default 0: every run), once KAFKA_BOOTSTRAP_SERVERS and
        KAFKA_TOPICS are set."""
        if not settings.kafka_bootstrap_servers or not topics_of(settings):
            return None
        return settings.kafka_land_every

    def land(self) -> LandResult:
        topics = (
            self.topics if self.topics is not None else topics_of(self.settings or get_settings())
        )
        done: dict[str, ConsumeResult] = {}
        for topic in topics:
            done[topic] = consume(
                topic,
                max_records=self.max_records,
                max_seconds=self.max_seconds,
                once=self.once,
                stop=self.stop,
                settings=self.settings,
                idle_seconds=self.idle_seconds,
                config=self.config,
            )
        records = sum(result.records for result in done.values())
        return LandResult(
            summary=f"{records} record(s) consumed",
            files=[key for result in done.values() for key in result.files],
            items=list(done),
            detail=done,
        )

    def position(self, mark: dict[str, Any]) -> str:
        return str(mark)  # no marks: the offsets are the group's, in Kafka

"""A Kafka broker per test: librdkafka's mock cluster (real protocol, real TCP port, reachable
from subprocesses), with KAFKA_BOOTSTRAP_SERVERS pointing at it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from data_platform.settings import reset_settings
from harness.stand_ins.kafka_broker import mock_cluster


@pytest.fixture(autouse=True)
def _no_kafka_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root conftest clears the platform's other variables; KAFKA_* too."""
    for name in list(os.environ):
        if name.startswith("KAFKA_"):
            monkeypatch.delenv(name)
    reset_settings()


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A mock Kafka cluster for this test; KAFKA_BOOTSTRAP_SERVERS is its address. The
    group protocol is KIP-848's (the mock's classic one ignores LeaveGroup), with short
    heartbeats and sessions so that rebalances and a killed member's exit take ~1-3 s."""
    with mock_cluster(session_timeout_ms=3000, heartbeat_interval_ms=300) as bootstrap:
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        monkeypatch.setenv("KAFKA_GROUP_PROTOCOL", "consumer")
        reset_settings()
        yield bootstrap

"""A Kafka broker for tests, the demo and the benchmark: librdkafka's built-in mock cluster.

librdkafka (the C library under confluent-kafka) can run an in-process mock cluster that
speaks the real Kafka protocol on a real TCP port: any client, in any process, produces,
consumes, joins consumer groups and commits offsets through its address. It lives as long
as the client that created it (the "holder"), so `mock_cluster` keeps one alive while its
block runs. The holder is made through librdkafka's C API (ctypes, on the library the
wheel bundles) rather than as a confluent_kafka Producer parsing the address from its log:
the same API then creates topics with a given partition count, which the mock's Kafka
protocol cannot (it has no admin API: CreateTopics is refused):

    with mock_cluster(partitions=3) as bootstrap:
        create_topic(bootstrap, "taps", 3)
        ...  # KAFKA_BOOTSTRAP_SERVERS=bootstrap

It is not a real Kafka (no persistence, one process): the compose file runs apache/kafka
for development against a real broker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _librdkafka() -> ctypes.CDLL:
    """The librdkafka that confluent-kafka's wheel bundles (the mock cluster's C API is not
    wrapped in Python), with the signatures used here."""
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    paths = sorted(libs.glob("librdkafka*.so*"))
    lib = ctypes.CDLL(str(paths[0]) if paths else ctypes.util.find_library("rdkafka"))
    p, s = ctypes.c_void_p, ctypes.c_char_p
    lib.rd_kafka_conf_new.restype = p
    lib.rd_kafka_conf_set.argtypes = [p, s, s, s, ctypes.c_size_t]
    lib.rd_kafka_new.restype = p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, p, s, ctypes.c_size_t]
    lib.rd_kafka_destroy.argtypes = [p]
    lib.rd_kafka_handle_mock_cluster.restype = p
    lib.rd_kafka_handle_mock_cluster.argtypes = [p]
    lib.rd_kafka_mock_cluster_bootstraps.restype = s
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [p]
    lib.rd_kafka_mock_topic_create.argtypes = [p, s, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [p, ctypes.c_int32]
    lib.rd_kafka_mock_set_group_consumer_session_timeout_ms.argtypes = [p, ctypes.c_int]
    lib.rd_kafka_mock_set_group_consumer_heartbeat_interval_ms.argtypes = [p, ctypes.c_int]
    lib.rd_kafka_err2str.restype = s
    return lib


@dataclass
class _Cluster:
    lib: ctypes.CDLL
    handle: int  # rd_kafka_t*, the holder
    mock: int  # rd_kafka_mock_cluster_t*


# Mock clusters alive in this process, by bootstrap address: create_topic uses their C API.
_CLUSTERS: dict[str, _Cluster] = {}
_LOCK = threading.Lock()


@contextmanager
def mock_cluster(
    partitions: int = 3,
    *,
    topics: Iterable[str] = (),
    brokers: int = 1,
    rebalance_delay_ms: int = 0,
    session_timeout_ms: int = 45000,
    heartbeat_interval_ms: int = 5000,
) -> Iterator[str]:
    """Start a mock Kafka cluster; yield its bootstrap servers (`127.0.0.1:PORT`).

    Each of `topics` is created with `partitions` partitions; `create_topic` makes more
    (a topic a client merely asks for is auto-created with librdkafka's default, 4). A
    group's first join waits `rebalance_delay_ms` for more members (Kafka's default is
    3000; 0 here, so tests do not wait). With the KIP-848 protocol (`group.protocol=consumer`,
    KAFKA_GROUP_PROTOCOL), members heartbeat every `heartbeat_interval_ms` and one that
    stops heartbeating (SIGKILL) leaves the group after `session_timeout_ms` (Kafka's
    defaults: 5 s, 45 s). The mock's classic protocol ignores LeaveGroup: a member that
    closed holds up the next join for its whole session timeout, so use `consumer` with it.
    The cluster stops when the block ends."""
    lib = _librdkafka()
    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    for name, value in (("test.mock.num.brokers", str(brokers)), ("log_level", "3")):
        if lib.rd_kafka_conf_set(conf, name.encode(), value.encode(), errstr, 512) != 0:
            raise RuntimeError(f"librdkafka: {errstr.value.decode()}")
    # The holder: a producer whose mock cluster lives until it is destroyed.
    handle = lib.rd_kafka_new(0, conf, errstr, 512)
    if not handle:
        raise RuntimeError(f"librdkafka: {errstr.value.decode()}")
    mock = lib.rd_kafka_handle_mock_cluster(handle)
    address = lib.rd_kafka_mock_cluster_bootstraps(mock).decode()
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms(mock, rebalance_delay_ms)
    lib.rd_kafka_mock_set_group_consumer_session_timeout_ms(mock, session_timeout_ms)
    lib.rd_kafka_mock_set_group_consumer_heartbeat_interval_ms(mock, heartbeat_interval_ms)
    with _LOCK:
        _CLUSTERS[address] = _Cluster(lib, handle, mock)
    log.info("mock Kafka cluster at %s", address)
    try:
        for topic in topics:
            create_topic(address, topic, partitions)
        yield address
    finally:
        with _LOCK:
            _CLUSTERS.pop(address, None)
        lib.rd_kafka_destroy(handle)


def create_topic(
    bootstrap: str,
    topic: str,
    partitions: int,
    *,
    config: dict[str, Any] | None = None,
    timeout: float = 10,
) -> bool:
    """Create `topic` with `partitions` partitions (replication 1) on the cluster at
    `bootstrap`; `config` adds client settings (security). Returns False when it existed."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    with _LOCK:
        cluster = _CLUSTERS.get(bootstrap)
    if cluster is not None:
        code = cluster.lib.rd_kafka_mock_topic_create(cluster.mock, topic.encode(), partitions, 1)
        if code not in (0, KafkaError.TOPIC_ALREADY_EXISTS):
            reason = cluster.lib.rd_kafka_err2str(code).decode()
            raise RuntimeError(f"mock cluster: cannot create topic {topic!r}: {reason}")
        return code == 0
    admin = AdminClient({**(config or {}), "bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        request_timeout=timeout,
    )
    try:
        futures[topic].result(timeout)
    except KafkaException as exc:
        if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise
    return True

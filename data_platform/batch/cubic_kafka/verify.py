"""Kafka tables checked against the brokers (issue 25): every offset the platform's
consumer group committed, from each partition's low watermark, is a row of the topic's
table or a dead letter of it, once every landed file of the topic is applied.

Per partition: the offsets in [low watermark, committed) each must be a row (keyed
topic, partition, offset) or a dead letter (its record key [topic, partition, offset]);
each that is neither is `missing`, named by [topic, partition, offset]. Offsets at or past
the commit are not checked (a batch put before its commit: read again, harmlessly).
Records deleted by the topic's retention before they were consumed cannot be told from
ones never produced: the range starts at the low watermark as it is now.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition
from psycopg2 import sql
from sqlalchemy import Engine

from data_platform.batch.cubic_kafka.consume import client_config
from data_platform.batch.cubic_kafka.lander import topics_of
from data_platform.batch.cubic_kafka.source import SOURCE
from data_platform.db.engine import dbapi_cursor
from data_platform.errors import DataPlatformError
from data_platform.loads.verify import KEY_LIMIT, NotCompared, Verification, record
from data_platform.settings import get_settings

CHECK = "committed_offsets"
TIMEOUT = 10.0  # seconds for each broker request


def verify_kafka(engine: Engine, table: str | None = None) -> list[Verification]:
    """Check and record the table of every topic of KAFKA_TOPICS (or only `table`, as
    `source_tables.name` holds it) whose landed files are all applied; none when Kafka
    is not set up and nothing came from it. Raises NotCompared when tables came from
    Kafka but KAFKA_BOOTSTRAP_SERVERS is not set, DataPlatformError when the brokers
    cannot answer."""
    settings = get_settings()
    if not settings.kafka_bootstrap_servers:
        with engine.connect() as conn, dbapi_cursor(conn) as cur:
            cur.execute(
                "SELECT count(*) FROM source_tables t WHERE t.source = %s AND "
                "t.db_table IS NOT NULL AND EXISTS (SELECT FROM loads l WHERE l.table_id = t.id)",
                (SOURCE,),
            )
            loaded = cur.fetchone()[0]  # type: ignore[index]  # count(*): one row
        if loaded:  # tables that came from Kafka, and no brokers to read the commits from
            raise NotCompared(
                f"KAFKA_BOOTSTRAP_SERVERS is not set: the committed offsets of {loaded} "
                "topic table(s) cannot be read"
            )
        return []
    topics = topics_of(settings)
    if not topics:
        return []
    found: list[Verification] = []
    consumer = Consumer(
        {
            **client_config(settings),
            "group.id": settings.kafka_group_id,
            "enable.auto.commit": False,
        }
    )
    try:
        with engine.begin() as conn, dbapi_cursor(conn) as cur:
            for topic in topics:
                cur.execute(
                    "SELECT t.id, t.name, t.db_schema, t.db_table FROM source_tables t "
                    "WHERE t.source = %s AND t.s3_prefix = %s AND t.db_table IS NOT NULL "
                    "AND (%s IS NULL OR t.name = %s) AND NOT EXISTS (SELECT FROM loads l "
                    "WHERE l.table_id = t.id AND l.status NOT IN ('archived', 'skipped'))",
                    (SOURCE, f"{settings.kafka_prefix}{topic}/", table, table),
                )
                row = cur.fetchone()
                if row is None:
                    continue
                verification = _verify_topic(cur, consumer, topic, *row)
                record(cur, verification)
                found.append(verification)
    finally:
        consumer.close()
    return found


def _verify_topic(
    cur, consumer: Consumer, topic: str, table_id: int, name: str, schema: str, db_table: str
) -> Verification:
    try:
        metadata = consumer.list_topics(topic, timeout=TIMEOUT)
        partitions = sorted(metadata.topics[topic].partitions)
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in partitions], timeout=TIMEOUT
        )
        ranges = []
        for part in committed:
            low, _high = consumer.get_watermark_offsets(
                TopicPartition(topic, part.partition), timeout=TIMEOUT
            )
            if part.offset > low:  # a negative offset: nothing committed yet
                ranges.append((part.partition, low, part.offset))
    except Exception as exc:  # librdkafka's KafkaException, a timeout
        raise DataPlatformError(f"Kafka brokers did not answer for topic {topic}: {exc}") from exc
    target = sql.Identifier(schema, db_table)
    expected = missing = held = 0
    keys: list[dict] = []
    for partition, low, end in ranges:
        expected += end - low
        args = {"topic": topic, "p": partition, "low": low, "end": end, "table_id": table_id}
        query = sql.SQL(
            "WITH present AS ("
            "SELECT kafka_offset AS o FROM {target} WHERE kafka_topic = %(topic)s "
            "AND kafka_partition = %(p)s AND kafka_offset >= %(low)s AND kafka_offset < %(end)s "
            "UNION SELECT (record_key->>2)::bigint FROM dead_letters WHERE table_id = %(table_id)s "
            "AND record_key->>0 = %(topic)s AND (record_key->>1)::int = %(p)s "
            "AND (record_key->>2)::bigint >= %(low)s AND (record_key->>2)::bigint < %(end)s), "
            "gone AS (SELECT o FROM generate_series(%(low)s::bigint, %(end)s::bigint - 1) AS o "
            "EXCEPT SELECT o FROM present) "
            "SELECT (SELECT count(*) FROM present), (SELECT count(*) FROM gone), "
            "(SELECT coalesce(array_agg(o ORDER BY o), '{{}}') FROM "
            "(SELECT o FROM gone ORDER BY o LIMIT %(limit)s) x)"
        ).format(target=target)
        cur.execute(query, {**args, "limit": KEY_LIMIT})
        present, gone, first = cur.fetchone()
        held += present
        missing += gone
        for offset in first:
            if len(keys) < KEY_LIMIT:
                keys.append({"key": [topic, partition, offset], "kind": "missing"})
    return Verification(
        source=SOURCE,
        check=CHECK,
        subject=f"{schema}.{db_table}",
        differing=missing,
        keys=keys,
        expected=expected,
        actual=held,
        table_id=table_id,
        detail=None if not missing else "committed offsets with no row and no dead letter",
    )

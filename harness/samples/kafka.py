"""Sample tap events, the shape of the Cubic tap stream (tapId, tokenId, stopId, deviceId
plus time, fare and mode), for the demo, the README, tests and the benchmark.

`tap_events(n)` gives the same events for the same seed. With `bad_every=k`, every k-th
event is one the loader must refuse or flag: not JSON, JSON that is not an object, or an
object missing a field; those come as `str` (the raw record value), the good ones as dicts.
With `poison_every=k`, every k-th event is a poison record: well-formed JSON of the
declared types holding a value PostgreSQL cannot store (a NUL in tapId, a lone surrogate
in stopId, a fare past the integer range, a number past any float in an extra field).
`produce(bootstrap, topic, events)` sends them, keyed by tokenId (one card's taps stay in
order in one partition), a text event (a file's line) too when it is a JSON object with
one.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

# ~20 stops: (stopId, mode).
STOPS: tuple[tuple[str, str], ...] = tuple(
    [
        (f"place-{name}", "subway")
        for name in (
            "alfcl",
            "davis",
            "portr",
            "harsq",
            "cntsq",
            "knncl",
            "chmnl",
            "pktrm",
            "dwnxg",
            "sstat",
        )
    ]
    + [
        (f"bus-{number}", "bus")
        for number in (
            "1",
            "15",
            "22",
            "28",
            "32",
            "39",
            "57",
            "66",
            "111",
            "116",
        )
    ]
)
FARES = {"subway": (240, 120, 0), "bus": (170, 85, 0)}  # cents: adult, reduced, free
START = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)


def tap_events(
    n: int, seed: int = 1, *, bad_every: int | None = None, poison_every: int | None = None
) -> Iterator[Any]:
    """`n` tap events (dicts); every `bad_every`-th a malformed one (a str), else every
    `poison_every`-th a poison one (`poison`)."""
    rng = random.Random(seed)
    tokens = [f"tok-{rng.getrandbits(48):012x}" for _ in range(max(1, n // 5))]
    devices = {stop: [f"dev-{stop}-{i}" for i in range(1, 4)] for stop, _ in STOPS}
    when = START
    for i in range(n):
        when += timedelta(milliseconds=rng.randint(5, 4000))
        stop, mode = rng.choice(STOPS)
        event = {
            "tapId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "tokenId": rng.choice(tokens),
            "stopId": stop,
            "deviceId": rng.choice(devices[stop]),
            "tapTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "fare": rng.choice(FARES[mode]),
            "mode": mode,
        }
        if bad_every and (i + 1) % bad_every == 0:
            yield _malformed(event, i // bad_every)
        elif poison_every and (i + 1) % poison_every == 0:
            yield poison(event, i // poison_every)
        else:
            yield event


# What each kind of `poison` puts where: the field a dead letter must name.
POISON_FIELDS = ("tapId", "stopId", "fare", "speed")


def poison(event: dict[str, Any], which: int) -> Any:
    """`event` with a value PostgreSQL cannot store, of kind `which % 4` (the field in
    POISON_FIELDS): a NUL character in tapId, a lone surrogate in stopId (JSON
    `\\ud800`), a fare of 2^40 cents (past the integer column), an extra field `speed`
    of 1e999 (JSON, but past any float or JSON number jsonb keeps). A dict, or the raw
    text where JSON dumping cannot write it."""
    kind = which % 4
    if kind == 0:
        return {**event, "tapId": event["tapId"][:8] + "\x00" + event["tapId"][8:]}
    if kind == 1:
        return {**event, "stopId": event["stopId"] + "\ud800"}
    if kind == 2:
        return {**event, "fare": 2**40}
    return json.dumps(event)[:-1] + ', "speed": 1e999}'


def _malformed(event: dict[str, Any], which: int) -> str:
    kind = which % 4
    if kind == 0:
        return json.dumps(event)[:-7]  # cut short: not JSON
    if kind == 1:
        return json.dumps([event["tapId"], event["stopId"]])  # JSON, not an object
    if kind == 2:
        return json.dumps({k: v for k, v in event.items() if k != "stopId"})  # incomplete
    return json.dumps({**event, "fare": "two forty"})  # wrong type


def record_key(event: Any) -> str | None:
    """The record key of an event: its tokenId, read from the JSON of a text event (a
    file's line); None for an event without one (a malformed one)."""
    if isinstance(event, str):
        try:
            event = json.loads(event)
        except ValueError:
            return None
    token = event.get("tokenId") if isinstance(event, dict) else None
    return token if isinstance(token, str) else None


def encode(event: Any) -> bytes:
    """A record value: a dict as JSON, a str (a malformed event, a file's line) as is."""
    return (event if isinstance(event, str) else json.dumps(event)).encode()


def produce(
    bootstrap: str,
    topic: str,
    events: Iterable[Any],
    *,
    config: dict[str, Any] | None = None,
    timeout: float = 30,
) -> int:
    """Send `events` to `topic` (key: `record_key`); wait until every record is
    acknowledged. Returns how many were sent; raises RuntimeError on a failed delivery.

    The partitioner is murmur2 (the Java client's hash of the key) with keyless records
    all in one partition: the same events land in the same partitions every time, where
    librdkafka's default spreads keyless ones at random (a demo whose files vary)."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "partitioner": "murmur2",
            **(config or {}),
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
        }
    )
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error.str())

    sent = 0
    for event in events:
        key = record_key(event)
        while True:
            try:
                producer.produce(topic, value=encode(event), key=key, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        sent += 1
        producer.poll(0)
    left = producer.flush(timeout)
    if left or failures:
        reason = failures[0] if failures else f"{left} not acknowledged in {timeout:g} s"
        raise RuntimeError(f"producing to {topic}: {reason}")
    return sent

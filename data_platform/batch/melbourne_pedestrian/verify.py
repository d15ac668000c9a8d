"""Pedestrian counts checked against the portal's own aggregates (issue 25): per
sensing_date loaded, the portal's records and their total pedestriancount (the Explore
API's records endpoint, `select` and `group_by`: `client.daily_totals`) against the
table's (`portal_records` summed, so the repeated 02:00 hour when clocks go back counts
its two records; `pedestriancount` summed, empty counts left out as the portal's sum
leaves them).

A day the portal changed since it was last fetched (it publishes late) shows as
`different` until the next fetch of its window carries the change: `run` verifies right
after its fetch. Days before the first and after the last loaded are not compared.
"""

from __future__ import annotations

from datetime import date, timedelta

from psycopg2 import sql
from sqlalchemy import Engine

from data_platform.batch.melbourne_pedestrian.client import OpenDataClient, window_where
from data_platform.batch.melbourne_pedestrian.fetch import fetched_from
from data_platform.batch.melbourne_pedestrian.naming import COUNTS, DB_SCHEMA, SOURCE, table_name
from data_platform.db.engine import dbapi_cursor
from data_platform.loads.verify import KEY_LIMIT, NotCompared, Verification, record
from data_platform.settings import Settings, get_settings

CHECK = "daily_totals"


def verify_pedestrian(
    engine: Engine, table: str | None = None, settings: Settings | None = None
) -> list[Verification]:
    """Check and record the hourly counts against the portal at OPEN_DATA_BASE_URL, once
    every landed file of theirs is applied; none when nothing was loaded or `table` is
    another. Raises PedestrianError when the portal cannot answer, NotCompared when it is
    not the one the counts were last fetched from (`fetch.fetched_from`)."""
    settings = settings or get_settings()
    if table not in (None, table_name(COUNTS)):
        return []
    # The table's totals in one short read; no transaction stays open over the portal's
    # answer (retried requests can take minutes).
    with engine.connect() as conn, dbapi_cursor(conn) as cur:
        cur.execute(
            "SELECT t.id FROM source_tables t WHERE t.source = %s AND t.name = %s "
            "AND NOT EXISTS (SELECT FROM loads l WHERE l.table_id = t.id "
            "AND l.status NOT IN ('archived', 'skipped'))",
            (SOURCE, table_name(COUNTS)),
        )
        found = cur.fetchone()
        if found is None:
            return []
        cur.execute(
            sql.SQL(
                "SELECT sensing_date::text, sum(portal_records), sum(pedestriancount) "
                "FROM {} GROUP BY 1 ORDER BY 1"
            ).format(sql.Identifier(DB_SCHEMA, COUNTS.name))
        )
        ours = {day: (int(n), None if total is None else int(total)) for day, n, total in cur}
    if not ours:
        return []
    first = date.fromisoformat(min(ours))
    end = date.fromisoformat(max(ours)) + timedelta(days=1)
    key = settings.open_data_api_key
    with OpenDataClient(
        settings.open_data_base_url, api_key=key.get_secret_value() if key else None
    ) as client:
        fetched = fetched_from(engine)
        if fetched is not None and fetched != client.portal:
            # Another portal's counts (the demo's stand-in, a test portal) against this
            # one would be a mismatch on every day: a comparison that proves nothing.
            raise NotCompared(
                f"{COUNTS.name} was fetched from {fetched}, not from OPEN_DATA_BASE_URL "
                f"({client.portal}): fetch from it first"
            )
        theirs = client.daily_totals(COUNTS, where=window_where(first, end))
    keys = []
    for day in sorted(ours.keys() | theirs.keys()):
        if ours.get(day) == theirs.get(day):
            continue
        kind = "missing" if day not in ours else "extra" if day not in theirs else "different"
        keys.append({"key": [day], "kind": kind, "portal": theirs.get(day), "table": ours.get(day)})
    verification = Verification(
        source=SOURCE,
        check=CHECK,
        subject=f"{DB_SCHEMA}.{COUNTS.name}",
        differing=len(keys),
        keys=keys[:KEY_LIMIT],
        expected=sum(n for n, _ in theirs.values()),
        actual=sum(n for n, _ in ours.values()),
        table_id=found[0],
        detail=None if not keys else "a day's records or total differ from the portal's",
    )
    with engine.begin() as conn, dbapi_cursor(conn) as cur:
        record(cur, verification)
    return [verification]

"""The demo: what `make demo` runs, step by step, on the configured platform."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from unittest.mock import patch

from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy import table as sa_table
from wcwidth import wcswidth

from data_platform import runs
from data_platform.batch.cubic_dmap.fetch import FetchResult
from data_platform.batch.cubic_dmap.onboarding import DmapOnboardResult
from data_platform.batch.cubic_qlik.dfm import dfm_key
from data_platform.batch.cubic_qlik.files import CHANGE_SUFFIX
from data_platform.batch.cubic_qlik.onboarding import OnboardResult, onboard_table
from data_platform.db import migrations
from data_platform.db.demo_history import (
    DEMO_DMAP_VERSIONS_DIR,
    DEMO_VERSIONS_DIR,
    REPO_SAMPLE_DIR,
    demo_config,
)
from data_platform.db.engine import get_engine
from data_platform.db.models import LandingMark, Load
from data_platform.errors import ConfigError, DataPlatformError, exit_code_for
from data_platform.loads.landing import land
from data_platform.run import run_once
from data_platform.settings import get_settings, reset_settings
from data_platform.status import platform_status
from data_platform.storage.transfer import upload_tree

DEMO_API_KEY = "demo-public-key"  # the local demo API's; never a real key
DEMO_DMAP_SAMPLE = REPO_SAMPLE_DIR / "cubic" / "dmap_api"
SHOW_ROWS = 20


def onboard_demo_tables(sample_dir: Path | None = None) -> list[OnboardResult]:
    """Onboard the sample tree's tables in the demo's history (a revision in
    `sample_data/migrations/` is reused, else written there) and apply them."""
    return [
        onboard_table(table, apply=True, versions_dir=DEMO_VERSIONS_DIR, config=demo_config())
        for table in sample_tables(sample_dir or REPO_SAMPLE_DIR)
    ]


def sample_tables(sample_dir: Path) -> list[str]:
    """Source tables present in the sample tree, e.g. ['EDW.SAMPLE']."""
    root = sample_dir / get_settings().cubic_qlik_prefix
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.endswith(CHANGE_SUFFIX)
    )


def onboard_demo_dmap_types() -> list[DmapOnboardResult]:
    """Onboard the sample DMAP type in the demo's history (its committed revision)."""
    from data_platform.batch.cubic_dmap.feeds import dataset_type
    from data_platform.batch.cubic_dmap.onboarding import onboard_dataset_type
    from harness.stand_ins.dmap_api import load_rounds

    feed, rounds = load_rounds()
    first = DEMO_DMAP_SAMPLE / rounds[0][0]["file"]
    return [
        onboard_dataset_type(
            dataset_type(feed),
            csv_path=first,
            apply=True,
            versions_dir=DEMO_DMAP_VERSIONS_DIR,
            config=demo_config(),
        )
    ]


def fetch_demo_round(round_number: int) -> FetchResult:
    """Fetch the sample DMAP feed from a local server playing the vendor's API as it
    published at `round_number` (1: two datasets; 2: one of them re-issued)."""
    from data_platform.batch.cubic_dmap.feeds import add_feed
    from data_platform.batch.cubic_dmap.lander import DmapLander
    from harness.stand_ins.dmap_api import demo_api, load_rounds

    feed, _ = load_rounds()
    add_feed(feed)
    with demo_api(round_number, api_key=DEMO_API_KEY) as base_url:
        settings = get_settings().model_copy(
            update={
                "cubic_dmap_base_url": base_url,
                "cubic_dmap_public_user_api_key": SecretStr(DEMO_API_KEY),
            }
        )
        # The local server cannot serve https links; only the demo allows http.
        return land(DmapLander([feed], settings, allow_http_downloads=True)).detail


DEMO_ORDERS = 2000  # totesys sales orders the demo seeds
KAFKA_TOPIC = "taps"


def fetch_pedestrian_demo():
    """`pedestrian fetch` of the sample's two months from a local server playing the
    city's Opendatasoft API (fixed dates, so every demo shows the same days)."""
    from data_platform.batch.melbourne_pedestrian.lander import PedestrianLander
    from data_platform.batch.melbourne_pedestrian.naming import SOURCE
    from harness.samples import pedestrian as sample
    from harness.stand_ins.pedestrian_api import demo_api

    with get_engine().connect() as conn:
        if conn.scalar(
            text("SELECT EXISTS (SELECT FROM landing_marks WHERE source = :s)"), {"s": SOURCE}
        ):
            # Fetching the same window again would replace its rows with the same rows:
            # nothing to show, and a re-run of the demo lands nothing twice.
            return "the sample counts were fetched by an earlier demo"
    with demo_api() as base_url:
        settings = get_settings().model_copy(update={"open_data_base_url": base_url})
        return land(PedestrianLander(sample.FIRST_DAY, sample.END_DAY, settings)).detail


def recorded_run() -> str:
    """`run_once`'s scan and ingest, recorded in `runs` as a pass of `data-platform run`
    is (the operations page's Runs list shows the demo's passes); what it printed."""
    record = runs.begin("cli")
    try:
        summary = run_once()
    except Exception as exc:
        record.finish(exit_code=exit_code_for(exc), error=exc)
        raise
    text = summary.render()
    record.finish(
        exit_code=summary.exit_code,
        counts=summary.counts(),
        summary={"sources": summary.to_dict()},
        output=text,
    )
    return text


def stand_in_moved(base_url: str) -> None:
    """The demo's portal, started again, answers at another port (`base_url`): the
    counts' mark says so, as it would after a fetch from there, for verify compares the
    counts only with the portal they came from (melbourne_pedestrian.verify)."""
    from data_platform.batch.melbourne_pedestrian.client import portal_of
    from data_platform.batch.melbourne_pedestrian.naming import COUNTS, SOURCE
    from data_platform.loads import marks

    with get_engine().begin() as conn:
        found = conn.execute(
            select(LandingMark.mark, LandingMark.marked_at).where(
                LandingMark.source == SOURCE, LandingMark.item == COUNTS.dataset_id
            )
        ).first()
        if found is not None:  # marked_at stays: the counts were not fetched again
            marks.write_mark(
                conn,
                SOURCE,
                COUNTS.dataset_id,
                {**found.mark, "portal": portal_of(base_url)},
                marked_at=found.marked_at,
            )


def consume_kafka_demo(sample_dir: Path, brokers: ExitStack) -> tuple[str, str | None]:
    """Produce the sample taps into a local mock Kafka cluster (librdkafka's, real
    protocol on a TCP port) and `kafka consume --once` them into incoming; (what it did,
    the cluster's bootstrap address or None when an earlier demo consumed them). The
    cluster lives until `brokers` closes: verify reads the group's commits from it."""
    from data_platform.batch.cubic_kafka.lander import KafkaLander
    from harness.samples.kafka import produce
    from harness.stand_ins.kafka_broker import create_topic, mock_cluster

    lines = (sample_dir / "cubic" / "kafka" / "taps.jsonl").read_text().splitlines()
    with get_engine().connect() as conn:
        if conn.scalar(text("SELECT EXISTS (SELECT FROM cubic_kafka.taps)")):
            # The demo's broker is gone with the last demo: producing again would be
            # new records at the same offsets. The rows would not double, but the
            # files would land again.
            return "the sample taps were consumed and loaded by an earlier demo", None
    bootstrap = brokers.enter_context(mock_cluster(partitions=3))
    create_topic(bootstrap, KAFKA_TOPIC, 3)
    produce(bootstrap, KAFKA_TOPIC, lines)
    settings = get_settings().model_copy(update=kafka_settings(bootstrap))
    lander = KafkaLander([KAFKA_TOPIC], settings=settings, idle_seconds=3)
    result = land(lander).detail[KAFKA_TOPIC]
    done = f"produced {len(lines)} tap(s); " + result.render().replace("\n", "\n   ")
    return done, bootstrap


def kafka_settings(bootstrap: str) -> dict[str, str]:
    """The demo's Kafka settings (field -> value) for its mock cluster at `bootstrap`."""
    return {
        "kafka_bootstrap_servers": bootstrap,
        "kafka_group_protocol": "consumer",
        "kafka_topics": KAFKA_TOPIC,
    }


def taps_per_stop() -> str:
    with get_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT stop_id, count(*) AS taps, sum(fare_cents) AS fares_cents "
                "FROM cubic_kafka.taps GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT :n"
            ),
            {"n": SHOW_ROWS},
        )
        return _table(list(rows.keys()), [tuple(r) for r in rows])


def sales_summary() -> str:
    """Sales by month of order and currency from the star schema (current versions)."""
    with get_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT to_char(d.date_id, 'YYYY-MM') AS month, c.currency_code AS currency, "
                "count(*) AS orders, sum(f.units_sold) AS units, "
                "sum(f.units_sold * f.unit_price) AS sales "
                "FROM analytics.fact_sales_order f "
                "JOIN analytics.dim_date d ON d.date_id = f.created_date "
                "JOIN analytics.dim_currency c ON c.currency_id = f.currency_id "
                "WHERE f.is_current GROUP BY 1, 2 ORDER BY 1 DESC, 2 LIMIT :n"
            ),
            {"n": SHOW_ROWS},
        )
        return _table(list(rows.keys()), [tuple(r) for r in rows])


def pedestrian_rankings() -> list[tuple[str, str]]:
    """(title, table text) of the top 10 of the sample's tie day and tie month."""
    from harness.samples import pedestrian as sample

    year, month = sample.TIE_MONTH
    shown = []
    with get_engine().connect() as conn:
        for title, query, value in (
            (
                f"top 10 places on {sample.TIE_DAY}",
                "SELECT rank, location_id, location_name, pedestrian_count "
                "FROM analytics.pedestrian_top10_daily WHERE sensing_date = :v ORDER BY rank",
                sample.TIE_DAY,
            ),
            (
                f"top 10 places in {year}-{month:02d}",
                "SELECT rank, location_id, location_name, pedestrian_count "
                "FROM analytics.pedestrian_top10_monthly WHERE month_start = :v ORDER BY rank",
                date(year, month, 1),
            ),
        ):
            rows = conn.execute(text(query), {"v": value})
            shown.append((title, _table(list(rows.keys()), [tuple(r) for r in rows])))
    return shown


def run_demo(sample_dir: Path | None = None, echo: Callable[[str], None] = print) -> None:
    """What `make demo` shows: both sources of the vendor, from files to tables."""
    with ExitStack() as stand_ins:  # what must outlive a step (the Kafka broker)
        _steps(sample_dir or REPO_SAMPLE_DIR, echo, stand_ins)


def _steps(sample_dir: Path, echo: Callable[[str], None], stand_ins: ExitStack) -> None:
    if not sample_dir.is_dir():
        raise ConfigError(f"no sample data at {sample_dir}: pass --sample-dir")
    echo("== 1. migrate the metadata database (alembic upgrade head)")
    migrations.upgrade()
    echo(f"   at {', '.join(sorted(migrations.current_revisions()))}")

    qlik_prefix = get_settings().cubic_qlik_prefix
    echo(f"== 2. land the Qlik Replicate files of {sample_dir.name}/ in the incoming zone")
    with get_engine().connect() as conn:
        # Files ingested by an earlier run were moved to the archive: landing them again
        # would make new loads of the same files.
        landed = {name for key in conn.scalars(select(Load.s3_key)) for name in (key, dfm_key(key))}
    result = upload_tree(sample_dir / qlik_prefix, "incoming", prefix=qlik_prefix, skip=landed)
    echo(f"   uploaded {result.uploaded}, already there or ingested {result.skipped}")

    echo("== 3. fetch DMAP datasets from a local server playing the vendor's API")
    echo("   " + fetch_demo_round(1).render().replace("\n", "\n   "))

    echo("== 3b. fetch pedestrian counts from a local server playing the city's open-data API")
    fetched = fetch_pedestrian_demo()
    echo("   " + (fetched if isinstance(fetched, str) else fetched.render()).replace("\n", "\n   "))

    echo("== 3c. seed the totesys sales database and extract it (totesys seed, extract)")
    from data_platform.batch.totesys.lander import TotesysLander
    from harness.totesys.seed import seed

    echo("   " + seed(orders=DEMO_ORDERS).render().replace("\n", "\n   "))
    echo("   " + land(TotesysLander()).detail.render().splitlines()[0])

    echo("== 3d. produce sample taps into a local Kafka broker and consume them (kafka consume)")
    consumed, bootstrap = consume_kafka_demo(sample_dir, stand_ins)
    echo("   " + consumed)

    echo("== 4. onboard the sample tables (the demo's own revisions)")
    shown: list[tuple[str, str]] = []  # the demo's tables, not others of the database
    for onboarded in onboard_demo_tables(sample_dir):
        state = "new revision" if onboarded.created else "already onboarded by"
        target = f"{onboarded.db_schema}.{onboarded.db_table}"
        echo(f"   {onboarded.source_table} -> {target} ({state} {onboarded.revision})")
        shown.append((onboarded.db_schema, onboarded.db_table))
    for dmap in onboard_demo_dmap_types():
        state = "new revision" if dmap.created else "already onboarded by"
        target = f"{dmap.db_schema}.{dmap.db_table}"
        echo(f"   DMAP {dmap.dataset_type} -> {target} ({state} {dmap.revision})")
        shown.append((dmap.db_schema, dmap.db_table))

    echo("== 5. scan and ingest every source (data-platform run)")
    echo("   " + recorded_run().replace("\n", "\n   "))

    echo("== 6. the vendor re-issues a dataset: fetch and run again")
    echo("   " + fetch_demo_round(2).render().replace("\n", "\n   "))
    echo("   " + recorded_run().replace("\n", "\n   "))

    echo("== 7. current state")
    with get_engine().connect() as conn:
        for schema, table in shown:
            echo(f"-- {schema}.{table}")
            rows = conn.execute(
                select(text("*"))
                .select_from(sa_table(table, schema=schema))
                .order_by(text("1"))
                .limit(SHOW_ROWS)
            )
            echo(_table(list(rows.keys()), [tuple(r) for r in rows]))

    echo("== 8. transform: dbt models and data tests (data-platform transform)")
    from data_platform.transform import run_transform

    transformed = run_transform()
    echo("   " + transformed.summary())
    if not transformed.ok:
        raise DataPlatformError(f"transform failed: {transformed.summary()}")
    for title, shown_table in pedestrian_rankings():
        echo(f"-- {title}")
        echo(shown_table)
    echo("-- totesys sales by month and currency (star schema, latest months)")
    echo(sales_summary())
    echo("-- tap events per stop (cubic_kafka.taps)")
    echo(taps_per_stop())

    echo("== 9. verify every table against its source (data-platform verify)")
    from data_platform.verify import verify, verify_lines
    from harness.stand_ins.pedestrian_api import demo_api

    # The counts came from the stand-in portal: it answers its own aggregates again. The
    # taps' commits are in this demo's broker (an earlier demo's ended with it).
    with demo_api() as base_url:
        stand_in_moved(base_url)
        stand_ins_env = {"OPEN_DATA_BASE_URL": base_url}
        if bootstrap is not None:
            stand_ins_env.update({k.upper(): v for k, v in kafka_settings(bootstrap).items()})
        with patch.dict(os.environ, stand_ins_env):
            reset_settings()
            try:
                verified = verify()
            finally:
                reset_settings()
        reset_settings()
    echo("   " + "\n   ".join(verify_lines(verified) or ["nothing to verify yet"]))
    if verified.mismatched or verified.failures:
        raise RuntimeError("a table differs from its source, or could not be verified")

    echo("== 10. status")
    echo(platform_status().render())


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as psql prints them (t/f), spelled out
    return str(value).replace("\n", "\\n")


def _table(header: list[str], rows: list[tuple]) -> str:
    """Rows as aligned text, by display width (an emoji or a CJK character takes two
    columns of a terminal), so wide characters do not shift the columns after them."""
    cells = [header] + [[_cell(v) for v in r] for r in rows]
    widths = [max(wcswidth(row[i]) for row in cells) for i in range(len(header))]

    def pad(text: str, width: int) -> str:
        return text + " " * (width - wcswidth(text))

    lines = [" | ".join(pad(c, w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)

"""The sales warehouse end to end at scale: seed N sales orders in the totesys source,
extract, load and build the star schema, then update N/100 orders and time until the
new versions are in fact_sales_order (run by `run_qlik_bench`, same private server)."""

from __future__ import annotations

import time


def _configure(home: str) -> None:
    from harness.bench.qlik import _configure as configure

    configure(home)


def _pass() -> dict[str, float]:
    """One platform pass for totesys: extract, ingest, transform (seconds of each)."""
    from data_platform.batch.totesys.lander import TotesysLander
    from data_platform.batch.totesys.source import TOTESYS, scan_totesys
    from data_platform.loads.landing import land
    from data_platform.loads.worker import ingest
    from data_platform.transform import run_transform

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    landed = land(TotesysLander())  # extract, then record the files as loads
    if landed.failed:
        raise RuntimeError("; ".join(f"{t}: {why}" for t, why in landed.failures.items()))
    scan_totesys()
    seconds["extract"] = time.perf_counter() - started
    started = time.perf_counter()
    result = ingest(TOTESYS)
    if result.errored:
        raise RuntimeError(f"ingest failed: {result.errors}")
    seconds["ingest"] = time.perf_counter() - started
    started = time.perf_counter()
    built = run_transform(["path:models/warehouse"])
    if not built.ok:
        raise RuntimeError(built.summary())
    seconds["dbt build"] = time.perf_counter() - started
    return seconds


def warehouse_bench(home: str, orders: int) -> dict[str, float]:
    """Seconds of: seeding, the first pass (everything), and the pass after
    `orders // 100` updates, per stage; plus the facts' row counts."""
    _configure(home)
    from sqlalchemy import text

    from data_platform.db import migrations
    from data_platform.db.engine import get_engine
    from harness.totesys.seed import seed
    from harness.totesys.simulate import apply_updates

    with get_engine().connect() as conn:
        migrated = conn.scalar(text("SELECT to_regclass('public.landing_marks') IS NOT NULL"))
    if not migrated:  # a home of its own (the test); under `make bench`, migrated already
        migrations.upgrade()
    figures: dict[str, float] = {}
    started = time.perf_counter()
    seed(orders=orders, reset=True)
    figures["seed"] = time.perf_counter() - started
    for stage, seconds in _pass().items():
        figures[f"first {stage}"] = seconds
    updates = max(1, orders // 100)
    figures["updates"] = apply_updates(updates)
    started = time.perf_counter()
    for stage, seconds in _pass().items():
        figures[f"update {stage}"] = seconds
    figures["updates visible after"] = time.perf_counter() - started
    with get_engine().connect() as conn:
        figures["fact rows"] = conn.scalar(text("SELECT count(*) FROM analytics.fact_sales_order"))
        figures["current fact rows"] = conn.scalar(
            text("SELECT count(*) FROM analytics.fact_sales_order WHERE is_current")
        )
    return figures


def report_warehouse(figures: dict[str, float], orders: int) -> None:
    print()
    print(f"sales warehouse, {orders:,} sales orders seeded (seconds):")
    for name, value in figures.items():
        shown = (
            f"{value:,.0f}"
            if name in ("updates", "fact rows", "current fact rows")
            else (f"{value:.2f}")
        )
        print(f"  {name:<28} {shown:>12}")

"""`/metrics`: the platform's state for Prometheus, through its maintained client library
(prometheus_client), read from the metadata database at each scrape (a custom collector:
nothing is counted in this process, so every web worker and every restart answers the
same).

Metrics (labels in braces; every table by its platform name):

- `data_platform_loads{source, table, status}`: loads by status.
- `data_platform_rows_applied{source, table}`: records the table's archived loads applied.
- `data_platform_table_rows{source, table}`: rows in the current-state table now (exact,
  or Postgres's estimate for a large one).
- `data_platform_backlog_loads{source, table}`: loads waiting (ready or in flight).
- `data_platform_data_age_seconds{source, table}`: since a load of the table was last
  archived; absent when none was.
- `data_platform_table_late{source, table}`: 1 when the table is later than its
  freshness expectation, or failed.
- `data_platform_verification_mismatch{source, check, subject}` and
  `data_platform_verification_differing{...}`: the newest result of each check.
- `data_platform_alerts_open{kind}`: alerts sent and not resolved.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from data_platform.db.engine import get_engine
from data_platform.settings import Settings
from data_platform.web import queries

# Loads not finished: the table's backlog.
WAITING = ("ready", "ingesting", "ready_for_archiving", "archiving", "ready_for_erroring",
           "erroring")  # fmt: skip


class PlatformCollector(Collector):
    """Collects the overview (`queries.overview`) as metrics at each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        data = queries.overview(self.settings)
        table_labels = ["source", "table"]
        loads = GaugeMetricFamily(
            "data_platform_loads", "Loads by status.", labels=[*table_labels, "status"]
        )
        applied = GaugeMetricFamily(
            "data_platform_rows_applied",
            "Records the table's archived loads applied.",
            labels=table_labels,
        )
        rows = GaugeMetricFamily(
            "data_platform_table_rows", "Rows in the current-state table now.", labels=table_labels
        )
        backlog = GaugeMetricFamily(
            "data_platform_backlog_loads",
            "Loads waiting (ready or in flight).",
            labels=table_labels,
        )
        age = GaugeMetricFamily(
            "data_platform_data_age_seconds",
            "Seconds since a load of the table was last archived.",
            labels=table_labels,
        )
        late = GaugeMetricFamily(
            "data_platform_table_late",
            "1 when the table is later than its freshness expectation, or failed.",
            labels=table_labels,
        )
        for table in data.tables:
            labels = [table.source, table.name]
            for status, count in sorted(table.loads.items()):
                loads.add_metric([*labels, status], count)
            applied.add_metric(labels, table.rows_applied)
            if table.rows is not None:
                rows.add_metric(labels, table.rows.value)
            backlog.add_metric(labels, sum(table.loads.get(s, 0) for s in WAITING))
            if table.age_seconds is not None:
                age.add_metric(labels, table.age_seconds)
            late.add_metric(labels, int(table.state in ("failed", "late")))
        yield from (loads, applied, rows, backlog, age, late)

        check_labels = ["source", "check", "subject"]
        mismatch = GaugeMetricFamily(
            "data_platform_verification_mismatch",
            "1 when the newest result of the check is a mismatch.",
            labels=check_labels,
        )
        differing = GaugeMetricFamily(
            "data_platform_verification_differing",
            "Keys (or datasets) the newest result of the check found different.",
            labels=check_labels,
        )
        for verification in data.verifications:
            labels = [verification.source, verification.check, verification.subject]
            mismatch.add_metric(labels, int(verification.verdict != "ok"))
            differing.add_metric(labels, verification.differing)
        yield from (mismatch, differing)

        alerts = GaugeMetricFamily(
            "data_platform_alerts_open", "Alerts sent and not resolved.", labels=["kind"]
        )
        with get_engine().connect() as conn:
            counted = conn.execute(
                text(
                    "SELECT kind, count(*) FROM alert_events WHERE resolved_at IS NULL "
                    "GROUP BY kind ORDER BY kind"
                )
            ).all()
        for kind, count in counted:
            alerts.add_metric([kind], count)
        yield alerts

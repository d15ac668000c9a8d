"""`/metrics`: the platform's state for Prometheus, through its maintained client library
(prometheus_client), read from the metadata database at each scrape (a custom collector:
nothing is counted in this process, so every web worker and every restart answers the
same).

Metrics (labels in braces; every table by its platform name):

- `data_platform_loads{source, table, status}`: loads by status.
- `data_platform_rows_applied{source, table}`: records the table's archived loads applied.
- `data_platform_table_rows{source, table}`: rows in the current-state table now (exact,
  or Postgres's estimate for a large one).
- `data_platform_backlog_loads{source, table}`, `data_platform_backlog_bytes{...}`,
  `data_platform_oldest_waiting_seconds{...}`: its files waiting, their bytes, and how
  long the oldest has waited (`loads.freshness`).
- `data_platform_data_age_seconds{source, table}`: since the newest file applied to it
  landed; absent when none was.
- `data_platform_table_late{source, table}`: 1 when the table is failed, stale or behind.
- `data_platform_verification_mismatch{source, check, subject}` and
  `data_platform_verification_differing{...}`: the newest result of each check.
- `data_platform_alerts_open{kind}`: alerts sent and not resolved.
- `data_platform_runs{trigger,status}`, `data_platform_run_seconds{trigger}` (a summary:
  count and sum of the finished passes' durations), `data_platform_run_last_seconds
  {trigger}`: the passes of `run` recorded in `runs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from data_platform.db.engine import get_engine
from data_platform.db.models import Run
from data_platform.runs import last_seconds
from data_platform.web.model import Overview


class PlatformCollector(Collector):
    """Collects the overview (`queries.overview`, through the app's `overview`) as metrics
    at each scrape."""

    def __init__(self, overview: Callable[[], Overview]) -> None:
        self.overview = overview  # the app's, shared with the readers of the page

    def collect(self) -> Iterator[Metric]:
        data = self.overview()
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
            "Seconds since the newest file applied to the table landed.",
            labels=table_labels,
        )
        late = GaugeMetricFamily(
            "data_platform_table_late",
            "1 when the table is later than its freshness expectation, or failed.",
            labels=table_labels,
        )
        backlog_bytes = GaugeMetricFamily(
            "data_platform_backlog_bytes", "Bytes of the files waiting.", labels=table_labels
        )
        oldest = GaugeMetricFamily(
            "data_platform_oldest_waiting_seconds",
            "Seconds the oldest waiting file has waited since it landed.",
            labels=table_labels,
        )
        for table in data.tables:
            labels = [table.source, table.name]
            backlog_bytes.add_metric(labels, table.backlog_bytes)
            if table.oldest_waiting_seconds is not None:
                oldest.add_metric(labels, table.oldest_waiting_seconds)
            for status, count in sorted(table.loads.items()):
                loads.add_metric([*labels, status], count)
            applied.add_metric(labels, table.rows_applied)
            if table.rows is not None:
                rows.add_metric(labels, table.rows.value)
            backlog.add_metric(labels, table.backlog_files)
            if table.age_seconds is not None:
                age.add_metric(labels, table.age_seconds)
            late.add_metric(labels, int(table.state in ("failed", "late", "behind")))
        yield from (loads, applied, rows, backlog, backlog_bytes, oldest, age, late)

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
            passes = conn.execute(
                select(
                    Run.trigger, Run.status, func.count(), func.coalesce(func.sum(Run.seconds), 0)
                )
                .group_by(Run.trigger, Run.status)
                .order_by(Run.trigger, Run.status)
            ).all()
            last = last_seconds(conn)
        for kind, count in counted:
            alerts.add_metric([kind], count)
        yield alerts

        runs = GaugeMetricFamily(
            "data_platform_runs",
            "Passes of `run` kept (RUNS_KEEP_DAYS), by how they were run and ended.",
            labels=["trigger", "status"],
        )
        durations = SummaryMetricFamily(
            "data_platform_run_seconds",
            "Durations of the finished passes of `run` kept (RUNS_KEEP_DAYS).",
            labels=["trigger"],
        )
        totals: dict[str, tuple[int, float]] = {}
        for trigger, status, count, seconds in passes:
            runs.add_metric([trigger, status], count)
            if status != "running":
                done, total = totals.get(trigger, (0, 0.0))
                totals[trigger] = (done + count, total + float(seconds or 0))
        for trigger, (count, total) in sorted(totals.items()):
            durations.add_metric([trigger], count_value=count, sum_value=total)
        last_pass = GaugeMetricFamily(
            "data_platform_run_last_seconds",
            "How long the last finished pass of `run` took.",
            labels=["trigger"],
        )
        for trigger, seconds in sorted(last.items()):
            if seconds is not None:
                last_pass.add_metric([trigger], seconds)
        yield from (runs, durations, last_pass)

"""The platform's own failures reach the notifier once each: an errored load through
`data-platform run`, run twice, sends one e-mail through a real SMTP server."""

from __future__ import annotations

import gzip
import io
from datetime import date, datetime

from click.testing import CliRunner

from data_platform.batch.melbourne_pedestrian import naming
from data_platform.cli.main import cli
from data_platform.storage import get_zone
from tests.alerts.test_notify import configure, smtp, smtp_env, tls_files  # noqa: F401


def test_an_errored_load_sends_exactly_one_email(monkeypatch, platform, smtp) -> None:  # noqa: F811
    configure(monkeypatch, alert_channels="email", alert_environment="test", **smtp_env(smtp))
    key = naming.counts_key(date(2026, 11, 1), date(2026, 11, 2), datetime(2026, 11, 30))
    header = ";".join(naming.COUNT_COLUMNS)
    bad = "1;1;2026-11-01;0;1;1;many;S1;x"
    get_zone("incoming").put(key, io.BytesIO(gzip.compress(f"{header}\n{bad}\n".encode())))
    runner = CliRunner()
    first = runner.invoke(cli, ["run", "--no-transform"])
    second = runner.invoke(cli, ["run", "--no-transform"])  # the load is still errored
    assert first.exit_code == 1 and second.exit_code == 0, (first.output, second.output)
    (mail,) = smtp.messages
    assert b"load failed" in mail and b"line 2, column pedestriancount" in mail


def test_a_transform_alerts_its_failed_nodes_and_clears_the_passed(monkeypatch) -> None:
    """`alert_transform` takes the transformation's node results as they are (alerts
    import nothing of the transformation, their peer)."""
    from data_platform.alerts import hooks
    from data_platform.transform import NodeResult

    sent, cleared = [], []
    monkeypatch.setattr(hooks, "notify", lambda *args, **kw: sent.append(args))
    monkeypatch.setattr(hooks, "resolve", lambda names, **kw: cleared.append(list(names)))
    hooks.alert_transform(
        [
            NodeResult("not_null_id", "test", "fail", failures=3),
            NodeResult("daily_totals", "model", "success"),
        ]
    )
    failed = "test not_null_id failed: 3 failing rows"
    assert sent == [("transform", "dbt test not_null_id", failed)]
    assert cleared == [["transform:dbt model daily_totals"]]

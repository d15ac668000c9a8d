"""An alert lives as long as its cause (issue 22, item 15), end to end through
`data-platform run`, `retry` and `loads skip`, a real SMTP server, the operations page's
API, and real faults: a totesys source that refuses connections, and an S3 endpoint (a
local proxy in front of moto's server) that answers 503 for one source's prefix."""

from __future__ import annotations

import email
import email.policy
import gzip
import http.client
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from data_platform.batch.melbourne_pedestrian import naming
from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.db.models import AlertEvent, Load, LoadStatus
from data_platform.settings import get_settings
from data_platform.storage import get_zone
from tests.alerts.test_notify import configure, smtp, smtp_env, tls_files  # noqa: F401
from tests.conftest import _free_port

HEADER = ";".join(naming.COUNT_COLUMNS)
BAD_ROW = "1;1;2026-11-01;0;1;1;many;S1;x"  # pedestriancount is not a number
GOOD_ROW = "1;1;2026-11-01;0;1;1;2;S1;x"


def put_counts(key: str, row: str) -> None:
    get_zone("incoming").put(key, io.BytesIO(gzip.compress(f"{HEADER}\n{row}\n".encode())))


def counts_key(day: int) -> str:
    first = date(2026, 11, day)
    return naming.counts_key(first, date(2026, 11, day + 1), datetime(2026, 11, 30))


def load_of(key: str) -> tuple[int, str]:
    with get_engine().connect() as conn:
        load_id, status = conn.execute(select(Load.id, Load.status).where(Load.s3_key == key)).one()
    return load_id, status


def alert_rows(fingerprint_prefix: str) -> list[tuple[str, bool]]:
    """(fingerprint, open) of every alert recorded under the prefix, oldest first."""
    with get_engine().connect() as conn:
        return [
            (fp, resolved is None)
            for fp, resolved in conn.execute(
                select(AlertEvent.fingerprint, AlertEvent.resolved_at)
                .where(AlertEvent.fingerprint.startswith(fingerprint_prefix))
                .order_by(AlertEvent.id)
            )
        ]


def open_on_the_page() -> list[tuple[str, str]]:
    """The operations page's open alerts (its JSON API), as (kind, subject)."""
    from data_platform.web.app import create_app

    with TestClient(create_app(get_settings())) as client:
        data = client.get("/api/overview").json()
    return [(alert["kind"], alert["subject"]) for alert in data["alerts"]]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_a_retried_load_that_fails_again_alerts_again_and_its_archive_resolves_it(
    monkeypatch,
    platform,
    smtp,  # noqa: F811
) -> None:
    configure(monkeypatch, alert_channels="email", alert_environment="test", **smtp_env(smtp))
    key = counts_key(1)
    put_counts(key, BAD_ROW)

    assert invoke("run", "--no-transform")[0] == 1
    load_id, status = load_of(key)
    assert status == LoadStatus.ERRORED and len(smtp.messages) == 1
    assert open_on_the_page() == [("load", str(load_id))]

    # Retried: the failure's alert is resolved with the retry, and the page shows none.
    assert invoke("retry", str(load_id))[0] == 0
    assert alert_rows(f"load:{load_id}") == [(f"load:{load_id}", False)]
    assert open_on_the_page() == []

    # It fails again: a new failure, a new e-mail (not swallowed by the first one's row).
    assert invoke("run", "--no-transform")[0] == 1
    assert len(smtp.messages) == 2
    assert b"load failed: %d" % load_id in smtp.messages[1]
    assert b"column pedestriancount" in smtp.messages[1]
    assert open_on_the_page() == [("load", str(load_id))]

    # Fixed, retried, archived: nothing open, no further mail.
    put_counts(key, GOOD_ROW)
    assert invoke("retry", str(load_id))[0] == 0
    code, output = invoke("run", "--no-transform")
    assert code == 0, output
    assert load_of(key)[1] == LoadStatus.ARCHIVED
    assert alert_rows(f"load:{load_id}") == [(f"load:{load_id}", False)] * 2
    assert open_on_the_page() == []
    assert len(smtp.messages) == 2


def test_a_skipped_load_has_no_open_alert(monkeypatch, platform) -> None:
    configure(monkeypatch, alert_channels="")  # only logged, still recorded
    key = counts_key(3)
    put_counts(key, BAD_ROW)
    assert invoke("run", "--no-transform")[0] == 1
    load_id, _ = load_of(key)
    assert open_on_the_page() == [("load", str(load_id))]
    code, output = invoke("loads", "skip", str(load_id), "--reason", "resent as another file")
    assert code == 0, output
    assert open_on_the_page() == []
    assert alert_rows(f"load:{load_id}") == [(f"load:{load_id}", False)]


# --- run-level: one source down, then a second one ------------------------------------------


@dataclass
class S3Proxy:
    """A local HTTP server in front of moto's: passes every request on, except a listing
    whose prefix holds `refuse`, which it answers as S3 does when it sheds load (503)."""

    url: str
    refuse: str | None = None


_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@pytest.fixture
def s3_proxy(s3_env, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Proxy]:
    upstream = urlsplit(moto_endpoint)
    port = _free_port()
    proxy = S3Proxy(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the CLI's stderr is asserted on
            pass

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            prefixes = parse_qs(urlsplit(self.path).query).get("prefix", [])
            if proxy.refuse and any(proxy.refuse in prefix for prefix in prefixes):
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(_SLOW_DOWN)))
                self.end_headers()
                self.wfile.write(_SLOW_DOWN)
                return
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                conn.request(self.command, self.path, body, dict(self.headers))
                response = conn.getresponse()
                data = response.read()
            finally:
                conn.close()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", response.getheader("Content-Length", "0"))
                self.end_headers()
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("S3_ENDPOINT_URL", proxy.url)
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def titles(messages: list[bytes]) -> list[str]:
    """The Subject of each e-mail, unfolded."""
    return [
        str(email.message_from_bytes(message, policy=email.policy.default)["Subject"])
        for message in messages
    ]


def test_a_second_source_stopping_while_the_first_is_down_alerts_too(
    monkeypatch,
    platform,
    smtp,  # noqa: F811
    s3_proxy: S3Proxy,
) -> None:
    closed = _free_port()  # nothing listens there: connection refused
    configure(
        monkeypatch,
        alert_channels="email",
        alert_environment="test",
        totesys_database_url=f"postgresql://owner:pw@127.0.0.1:{closed}/totesys",
        **smtp_env(smtp),
    )

    # 1. totesys's landing fails (its source refuses connections): the landing's alert
    #    (the files already in incoming are still loaded); the others run.
    code, output = invoke("run", "--no-transform")
    assert code == 3, output
    assert alert_rows("land:") == [("land:totesys", True)]
    assert alert_rows("run:") == []
    assert len(smtp.messages) == 1

    # 2. While totesys is still down, cubic_dmap stops too (S3 answers 503 to its listing):
    #    alerted, although totesys's alert is open.
    s3_proxy.refuse = "cubic/dmap/"
    code, output = invoke("run", "--no-transform")
    assert code == 4, output  # the most specific code of the causes: storage
    assert alert_rows("land:") == [("land:totesys", True)]
    assert alert_rows("run:") == [("run:cubic_dmap:storage SlowDown", True)]
    sent = titles(smtp.messages)
    assert len(sent) == 2, sent
    assert sent[0].startswith("[data-platform test] land failed: totesys: totesys source unrea")
    assert sent[1].startswith("[data-platform test] run failed: cubic_dmap: S3 error on s3://")
    page = open_on_the_page()
    assert {subject.split(":")[0] for kind, subject in page if kind in ("run", "land")} == {
        "totesys",
        "cubic_dmap",
    }

    # 3. S3 answers again: cubic_dmap's pass succeeds and resolves its alert; totesys's
    #    stays open and is not sent again.
    s3_proxy.refuse = None
    assert invoke("run", "--no-transform")[0] == 3
    assert alert_rows("land:") == [("land:totesys", True)]
    assert alert_rows("run:") == [("run:cubic_dmap:storage SlowDown", False)]
    assert len(smtp.messages) == 2

    # 4. cubic_dmap stops again: its cause came back, a new alert.
    s3_proxy.refuse = "cubic/dmap/"
    assert invoke("run", "--no-transform")[0] == 4
    assert len(smtp.messages) == 3
    assert [open_ for _, open_ in alert_rows("run:cubic_dmap")] == [False, True]


def test_the_cause_class_names_the_kind_of_failure_not_its_text(db_url: str) -> None:
    """Two attempts that fail alike get one class, whatever their messages; the platform's
    wrapping errors are seen through."""
    import psycopg2
    import sqlalchemy as sa

    from data_platform.alerts import cause_class
    from data_platform.errors import DatabaseError, JobRunError

    def refused() -> BaseException:
        try:
            psycopg2.connect(host="127.0.0.1", port=_free_port(), dbname="x", connect_timeout=5)
        except psycopg2.Error as exc:
            try:
                raise DatabaseError(f"totesys source unreachable: {exc}") from exc
            except DatabaseError as wrapped:
                return wrapped
        raise AssertionError("connected")

    engine = sa.create_engine(db_url)
    try:
        with pytest.raises(sa.exc.ProgrammingError) as missing, engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))
    finally:
        engine.dispose()
    assert cause_class(refused()) == cause_class(refused()) == "database connection"
    assert cause_class(missing.value) == "database undefined_table"
    assert cause_class(JobRunError("Glue job run jr_1 FAILED")) == "JobRunError"

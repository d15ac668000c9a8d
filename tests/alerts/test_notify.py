"""Alerts end to end: a real SMTP server (aiosmtpd, STARTTLS required, AUTH), SNS on
moto's HTTP server (read back through a subscribed SQS queue), a webhook on
pytest-httpserver, and alert_events in a real migrated Postgres."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from data_platform.alerts import Delivery, fingerprint_for, notify, resolve
from data_platform.alerts.channels import SNS_SUBJECT_MAX, sns_subject
from data_platform.settings import Settings, get_settings, reset_settings
from tests.conftest import REPO, _free_port

SMTP_USER = "alerts"
SECRETS = {
    "ALERT_SMTP_PASSWORD": "smtp-SECRET-pass",
    "OPEN_DATA_API_KEY": "odk-SECRET-1",
    "CUBIC_DMAP_PUBLIC_USER_API_KEY": "dmap-SECRET-2",
}
WEBHOOK_TOKEN = "tok-SECRET-3"
PG_PASSWORD = "pg-SECRET-4"
SIGNATURE = "sig-SECRET-5"
AWS_SECRET = "aws-SECRET-6"


@pytest.fixture(autouse=True)
def _no_alert_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ALERT_"):
            monkeypatch.delenv(name)
    reset_settings()


def configure(monkeypatch: pytest.MonkeyPatch, **values: str) -> Settings:
    for name, value in values.items():
        monkeypatch.setenv(name.upper(), value)
    reset_settings()
    return get_settings()


def rows(db_url: str) -> list[dict]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            result = conn.execute(
                sa.text("SELECT fingerprint, kind, subject, message, channels FROM alert_events")
            )
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


# --- SMTP: a real server with STARTTLS and AUTH ---------------------------------------------


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1 and localhost: (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    folder = tmp_path_factory.mktemp("tls")

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("alerts test CA"))
        .issuer_name(name("alerts test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class Smtp:
    port: int
    ca_file: Path
    messages: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


@pytest.fixture
def smtp(tls_files: tuple[Path, Path, Path]) -> Iterator[Smtp]:
    """An SMTP server that refuses mail before STARTTLS and AUTH before TLS; the login is
    SMTP_USER with the ALERT_SMTP_PASSWORD of SECRETS."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    ca_file, cert, key = tls_files
    server = Smtp(port=_free_port(), ca_file=ca_file)

    class Handler:
        async def handle_DATA(self, _server, _session, envelope) -> str:
            server.messages.append(envelope.original_content or envelope.content)
            return "250 OK"

    def authenticator(_server, _session, _envelope, _mechanism, auth_data) -> AuthResult:
        ok = (
            auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SECRETS["ALERT_SMTP_PASSWORD"]
        )
        if ok:
            server.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=server.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    )
    controller.start()
    yield server
    controller.stop()


def smtp_env(server: Smtp) -> dict[str, str]:
    return {
        "alert_smtp_host": "127.0.0.1",
        "alert_smtp_port": str(server.port),
        "alert_smtp_username": SMTP_USER,
        "alert_smtp_password": SECRETS["ALERT_SMTP_PASSWORD"],
        "alert_smtp_ca_file": str(server.ca_file),
        "alert_email_from": "platform@example.org",
        "alert_email_to": "oncall@example.org, data@example.org",
    }


# --- SNS on moto's server, read back from an SQS queue subscribed to the topic -------------


@dataclass
class Sns:
    topic_arn: str
    received: Callable[[], list[dict]]


@pytest.fixture
def sns(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Sns:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    region = "eu-west-2"
    client = boto3.client("sns", region_name=region, endpoint_url=moto_endpoint)
    sqs = boto3.client("sqs", region_name=region, endpoint_url=moto_endpoint)
    run = uuid.uuid4().hex[:8]
    topic_arn = client.create_topic(Name=f"alerts-{run}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alerts-{run}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    client.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict]:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    return Sns(topic_arn, received)


def sns_env(topic: Sns, moto_endpoint: str) -> dict[str, str]:
    # No region: it comes from the topic's ARN.
    return {"alert_sns_topic_arn": topic.topic_arn, "alert_sns_endpoint_url": moto_endpoint}


def webhook_env(httpserver) -> dict[str, str]:
    return {"alert_webhook_url": httpserver.url_for(f"/hook/{WEBHOOK_TOKEN}")}


def webhook_bodies(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


# --- the cases ----------------------------------------------------------------------------


def test_one_alert_per_failure_on_every_channel(
    monkeypatch, platform, db_url, smtp, sns, moto_endpoint, httpserver
) -> None:
    httpserver.expect_request(f"/hook/{WEBHOOK_TOKEN}", method="POST").respond_with_json({})
    configure(
        monkeypatch,
        alert_channels="email, sns,webhook",
        alert_environment="test",
        **smtp_env(smtp),
        **sns_env(sns, moto_endpoint),
        **webhook_env(httpserver),
    )

    first = notify("load", "42", "orders.csv: line 3, column id: not an integer (load 42)")

    assert first.new and first.recorded and not first.suppressed
    assert first.fingerprint == "load:42" == fingerprint_for("load", "42")
    assert first.channels == {
        "email": Delivery.SENT,
        "sns": Delivery.SENT,
        "webhook": Delivery.SENT,
    }
    assert smtp.logins == [SMTP_USER]
    (mail,) = smtp.messages
    assert b"Subject: [data-platform test] load failed: 42" in mail
    assert b"To: oncall@example.org, data@example.org" in mail
    assert b"Environment: test" in mail and b"not an integer" in mail
    (published,) = sns.received()
    assert published["Subject"] == "[data-platform test] load failed: 42"
    assert "Kind: load" in published["Message"]
    (posted,) = webhook_bodies(httpserver)
    assert posted["kind"] == "load" and posted["subject"] == "42"
    assert posted["environment"] == "test" and posted["fingerprint"] == "load:42"
    dt.datetime.fromisoformat(posted["time"])
    assert rows(db_url)[0]["channels"] == "email=sent,sns=sent,webhook=sent"

    # Again, through another engine: the row in the database suppresses it.
    other = sa.create_engine(db_url)
    try:
        again = notify("load", "42", "orders.csv: line 4, ...", engine=other)
    finally:
        other.dispose()
    assert again.suppressed and again.channels == dict.fromkeys(
        ("email", "sns", "webhook"), Delivery.SUPPRESSED
    )

    # And from another process.
    code = (
        "from data_platform.alerts import notify; "
        "o = notify('load', '42', 'still failing'); print(o.new, dict(o.channels))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert done.stdout.strip().startswith("False {'email': <Delivery.SUPPRESSED")

    assert len(smtp.messages) == 1
    assert sns.received() == []
    assert len(httpserver.log) == 1
    assert len(rows(db_url)) == 1


def test_resolve_lets_a_recurrence_alert_again(monkeypatch, platform, httpserver) -> None:
    httpserver.expect_request(f"/hook/{WEBHOOK_TOKEN}", method="POST").respond_with_json({})
    configure(monkeypatch, alert_channels="webhook", **webhook_env(httpserver))

    assert notify("load", "42", "bad row").new
    assert notify("load", "420", "bad row").new
    assert notify("transform", "pedestrian:not_null_id", "1 row", fingerprint=None).new
    assert notify("transform", "pedestrian:rank_range", "2 rows").new
    assert notify("load", "42", "bad row").suppressed

    assert resolve("load:42") == 1  # not load 420
    assert notify("load", "420", "bad row").suppressed
    assert notify("load", "42", "bad row again").new
    # A prefix clears everything below it, and only at a `:` boundary.
    assert resolve("transform:pedestrian") == 2
    assert resolve("transform:pedestrian") == 0
    assert notify("transform", "pedestrian:rank_range", "2 rows").new
    assert len(httpserver.log) == 6


def test_a_failing_channel_does_not_stop_the_others(
    monkeypatch, platform, db_url, httpserver, caplog
) -> None:
    httpserver.expect_request(f"/hook/{WEBHOOK_TOKEN}", method="POST").respond_with_json({})
    configure(
        monkeypatch,
        alert_channels="email,webhook",
        alert_smtp_host="127.0.0.1",
        alert_smtp_port=str(_free_port()),  # nothing listens
        alert_smtp_password=SECRETS["ALERT_SMTP_PASSWORD"],
        alert_email_from="platform@example.org",
        alert_email_to="oncall@example.org",
        alert_timeout_seconds="2",
        **webhook_env(httpserver),
    )
    with caplog.at_level(logging.INFO, logger="data_platform.alerts"):
        outcome = notify("land", "cubic_dmap:/tap_events", "HTTP 503")

    assert outcome.channels == {"email": Delivery.FAILED, "webhook": Delivery.SENT}
    assert outcome.failed == ("email",) and outcome.sent == ("webhook",)
    assert outcome.recorded
    (line,) = [r.getMessage() for r in caplog.records if "channel" in r.getMessage()]
    assert line.startswith("alert channel email failed: ConnectionRefusedError")
    assert "\n" not in line
    assert len(httpserver.log) == 1
    assert rows(db_url)[0]["channels"] == "email=failed,webhook=sent"


def test_incomplete_channel_settings_fail_that_channel_only(
    monkeypatch, platform, httpserver, caplog
) -> None:
    httpserver.expect_request(f"/hook/{WEBHOOK_TOKEN}", method="POST").respond_with_json({})
    configure(monkeypatch, alert_channels="sns,email,webhook", **webhook_env(httpserver))
    with caplog.at_level(logging.WARNING, logger="data_platform.alerts"):
        outcome = notify("run", "totesys", "boom")
    assert outcome.channels == {
        "sns": Delivery.FAILED,
        "email": Delivery.FAILED,
        "webhook": Delivery.SENT,
    }
    messages = [r.getMessage() for r in caplog.records]
    assert "alert channel sns failed: ConfigError: SNS alerts need ALERT_SNS_TOPIC_ARN" in messages
    assert (
        "alert channel email failed: ConfigError: e-mail alerts need ALERT_SMTP_HOST, "
        "ALERT_EMAIL_FROM, ALERT_EMAIL_TO"
    ) in messages


def test_when_every_channel_failed_the_next_occurrence_tries_again(
    monkeypatch, platform, db_url, httpserver
) -> None:
    httpserver.expect_request(f"/hook/{WEBHOOK_TOKEN}").respond_with_data("no", status=500)
    configure(monkeypatch, alert_channels="webhook", alert_retries="0", **webhook_env(httpserver))

    first = notify("land", "totesys:sales_order", "connection refused")
    assert first.channels == {"webhook": Delivery.FAILED} and not first.recorded
    assert rows(db_url) == []
    second = notify("land", "totesys:sales_order", "connection refused")
    assert second.new and second.channels == {"webhook": Delivery.FAILED}


def test_the_webhook_retries_a_5xx(monkeypatch, platform, httpserver) -> None:
    path = f"/hook/{WEBHOOK_TOKEN}"
    httpserver.expect_oneshot_request(path).respond_with_data("busy", status=503)
    httpserver.expect_request(path).respond_with_json({})
    configure(monkeypatch, alert_channels="webhook", alert_retries="2", **webhook_env(httpserver))

    assert notify("run", "pedestrian", "failed").channels == {"webhook": Delivery.SENT}
    assert len(httpserver.log) == 2


def test_no_secret_in_any_sent_text(
    monkeypatch, platform, db_url, smtp, sns, moto_endpoint, httpserver, caplog
) -> None:
    httpserver.expect_request(f"/hook/{WEBHOOK_TOKEN}", method="POST").respond_with_json({})
    settings = configure(
        monkeypatch,
        alert_channels="email,sns,webhook",
        **smtp_env(smtp),
        **sns_env(sns, moto_endpoint),
        **webhook_env(httpserver),
        **SECRETS,
    )
    webhook_url = settings.alert_webhook_url.get_secret_value()
    leaked = [*SECRETS.values(), WEBHOOK_TOKEN, PG_PASSWORD, SIGNATURE, AWS_SECRET]
    message = (
        f"cannot connect to postgresql://etl:{PG_PASSWORD}@db:5432/totesys\n"
        f"keys {' '.join(SECRETS.values())}; webhook {webhook_url}\n"
        f"download https://bucket.example/x.csv.gz?X-Amz-Signature={SIGNATURE}\n"
        f"aws {AWS_SECRET}"
    )
    with caplog.at_level(logging.DEBUG):
        outcome = notify("land", f"open data {SECRETS['OPEN_DATA_API_KEY']}", message)
    assert set(outcome.channels.values()) == {Delivery.SENT}

    (mail,) = smtp.messages
    (published,) = sns.received()
    (posted,) = webhook_bodies(httpserver)
    (row,) = rows(db_url)
    texts = {
        "email": mail.decode(),
        "sns": published["Subject"] + published["Message"],
        "webhook": json.dumps(posted),
        "alert_events": json.dumps(row),
        "log": caplog.text,
    }
    for where, text in texts.items():
        for secret in leaked:
            assert secret not in text, f"{secret} in {where}"
    assert "postgresql://etl:***@db:5432/totesys" in posted["message"]
    assert "x.csv.gz?…" in posted["message"]
    assert posted["subject"] == "open data ***"
    assert outcome.fingerprint == "land:open data ***"


def test_no_channels_means_logged_only(monkeypatch, platform, db_url, caplog) -> None:
    configure(monkeypatch, alert_environment="dev")
    with caplog.at_level(logging.INFO, logger="data_platform.alerts"):
        first = notify("transform", "pedestrian", "2 data tests failed\nnot_null_id")
        again = notify("transform", "pedestrian", "2 data tests failed")
    assert first.new and first.recorded and first.channels == {}
    assert again.suppressed
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "[data-platform dev] transform failed: pedestrian: 2 data tests failed"
    ]
    assert errors[0].alert == "transform:pedestrian"
    assert rows(db_url)[0]["channels"] == "log"


def test_an_unreachable_database_still_sends(monkeypatch, httpserver, caplog) -> None:
    httpserver.expect_request(f"/hook/{WEBHOOK_TOKEN}", method="POST").respond_with_json({})
    url = f"postgresql+psycopg2://etl:{PG_PASSWORD}@127.0.0.1:{_free_port()}/none"
    configure(monkeypatch, database_url=url, alert_channels="webhook", **webhook_env(httpserver))
    with caplog.at_level(logging.WARNING, logger="data_platform.alerts"):
        outcome = notify("run", "qlik", f"database down (password {PG_PASSWORD} refused?)")
    assert outcome.new and not outcome.recorded
    assert outcome.channels == {"webhook": Delivery.SENT}
    assert "alert not recorded, sent anyway: OperationalError" in caplog.text
    (posted,) = webhook_bodies(httpserver)
    assert posted["message"] == "database down (password *** refused?)"
    assert PG_PASSWORD not in caplog.text


def test_sns_subjects_fit_the_limit(monkeypatch, platform, sns, moto_endpoint) -> None:
    assert sns_subject("load failed: ünïcode\nline") == "load failed: ?n?code?line"
    long = sns_subject("x" * 300)
    assert len(long) == SNS_SUBJECT_MAX and long.endswith("...")
    configure(monkeypatch, alert_channels="sns", **sns_env(sns, moto_endpoint))
    assert notify("load", "t" * 200, "long").channels == {"sns": Delivery.SENT}
    (published,) = sns.received()
    assert len(published["Subject"]) == SNS_SUBJECT_MAX


def test_unknown_kinds_and_channels_are_refused(monkeypatch) -> None:
    with pytest.raises(ValueError, match="'lod' is not a valid AlertKind"):
        notify("lod", "42", "x")
    monkeypatch.setenv("ALERT_CHANNELS", "email,pager")
    with pytest.raises(ValidationError, match="got 'pager'"):
        Settings()
    monkeypatch.setenv("ALERT_CHANNELS", " Email , SNS,email ")
    assert Settings().alert_channels == "email,sns"

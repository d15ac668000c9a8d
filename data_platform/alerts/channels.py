"""Where alerts go: e-mail (SMTP, STARTTLS, login), SNS (publish to a topic) and a webhook
(JSON POST with retries). Each channel's `send` raises on failure; `notify` logs that and
carries on with the others."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import urlsplit

import requests

from data_platform.alerts.model import Alert
from data_platform.errors import ConfigError
from data_platform.http import retrying_session
from data_platform.settings import Settings

# SNS refuses a Subject longer than this, or with control or non-ASCII characters.
SNS_SUBJECT_MAX = 100
CHANNELS = ("email", "sns", "webhook")


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


def configured(settings: Settings) -> list[str]:
    """The channels of ALERT_CHANNELS, in order."""
    return [name for name in settings.alert_channels.split(",") if name]


def build(name: str, settings: Settings) -> Channel:
    """The channel called `name`, from settings. Raises ConfigError naming the missing
    setting."""
    if name == "email":
        return EmailChannel(settings)
    if name == "sns":
        return SnsChannel(settings)
    if name == "webhook":
        return WebhookChannel(settings)
    raise ConfigError(f"ALERT_CHANNELS: unknown channel {name!r}")


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        missing = [
            env
            for env, value in (
                ("ALERT_SMTP_HOST", settings.alert_smtp_host),
                ("ALERT_EMAIL_FROM", settings.alert_email_from),
                ("ALERT_EMAIL_TO", _comma_list(settings.alert_email_to)),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"e-mail alerts need {', '.join(missing)}")
        self.settings = settings

    def message(self, alert: Alert) -> EmailMessage:
        s = self.settings
        msg = EmailMessage()
        msg["Subject"] = alert.title
        msg["From"] = s.alert_email_from
        msg["To"] = ", ".join(_comma_list(s.alert_email_to))
        msg["Date"] = formatdate(alert.time.timestamp(), localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="data-platform")
        msg.set_content(alert.text)
        return msg

    def send(self, alert: Alert) -> None:
        s = self.settings
        assert s.alert_smtp_host  # checked in __init__
        with smtplib.SMTP(
            s.alert_smtp_host, s.alert_smtp_port, timeout=s.alert_timeout_seconds
        ) as smtp:
            if s.alert_smtp_starttls:
                cafile = str(s.alert_smtp_ca_file) if s.alert_smtp_ca_file else None
                smtp.starttls(context=ssl.create_default_context(cafile=cafile))
            if s.alert_smtp_username:
                password = s.alert_smtp_password.get_secret_value() if s.alert_smtp_password else ""
                smtp.login(s.alert_smtp_username, password)
            smtp.send_message(self.message(alert))


def sns_subject(title: str) -> str:
    """`title` as SNS accepts a Subject: printable ASCII, one line, at most 100 chars."""
    text = "".join(c if " " <= c <= "~" else "?" for c in title).strip() or "alert"
    return text if len(text) <= SNS_SUBJECT_MAX else text[: SNS_SUBJECT_MAX - 3] + "..."


class SnsChannel:
    name = "sns"

    def __init__(self, settings: Settings) -> None:
        arn = settings.alert_sns_topic_arn
        if not arn:
            raise ConfigError("SNS alerts need ALERT_SNS_TOPIC_ARN")
        parts = arn.split(":")
        region = settings.alert_sns_region or (parts[3] if len(parts) > 5 else None)
        if not region:
            raise ConfigError(
                "ALERT_SNS_TOPIC_ARN is not arn:aws:sns:REGION:ACCOUNT:NAME; set ALERT_SNS_REGION"
            )
        self.topic_arn = arn
        self.region = region
        self.settings = settings

    def send(self, alert: Alert) -> None:
        import boto3
        from botocore.config import Config

        s = self.settings
        client = boto3.client(
            "sns",
            region_name=self.region,
            endpoint_url=s.alert_sns_endpoint_url,
            config=Config(
                connect_timeout=s.alert_timeout_seconds,
                read_timeout=s.alert_timeout_seconds,
                retries={"max_attempts": s.alert_retries + 1, "mode": "standard"},
            ),
        )
        client.publish(
            TopicArn=self.topic_arn, Subject=sns_subject(alert.title), Message=alert.text
        )


class WebhookChannel:
    name = "webhook"

    def __init__(self, settings: Settings) -> None:
        if not settings.alert_webhook_url or not settings.alert_webhook_url.get_secret_value():
            raise ConfigError("webhook alerts need ALERT_WEBHOOK_URL")
        self.url = settings.alert_webhook_url.get_secret_value()
        _hide_in_urllib3_logs(self.url)
        self.timeout = settings.alert_timeout_seconds
        # POST is not retried by default: an alert sent twice beats one never sent.
        self.session = retrying_session(
            retries=settings.alert_retries, backoff=0.5, methods=("POST",)
        )

    def send(self, alert: Alert) -> None:
        try:
            with self.session:
                response = self.session.post(
                    self.url,
                    json=alert.to_json(),
                    timeout=(self.timeout, self.timeout),
                    # The URL is a secret: never send the alert on to where a redirect points.
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            # Not the exception's text: it holds the URL's path, which may be the token.
            raise WebhookError(_describe(exc)) from None
        with response:
            if not 200 <= response.status_code < 300:
                raise WebhookError(f"HTTP {response.status_code}")


class WebhookError(Exception):
    """The webhook refused or could not be reached; the message never holds its URL."""


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.exceptions.RetryError):
        return "gave up retrying (HTTP 429 or 5xx)"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


class _HideWebhook(logging.Filter):
    """urllib3 logs the request path (retry warnings, debug lines): a webhook's path is
    its token, so it is replaced by `/***` (DMAP's filter hides only query strings)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for secret in sorted(self.secrets, key=len, reverse=True):
            hidden = hidden.replace(secret, "/***")
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


_HIDE_WEBHOOK = _HideWebhook()


def _hide_in_urllib3_logs(url: str) -> None:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if path in ("", "/"):
        return
    _HIDE_WEBHOOK.secrets.add(path)
    for name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry"):
        logger = logging.getLogger(name)
        if _HIDE_WEBHOOK not in logger.filters:
            logger.addFilter(_HIDE_WEBHOOK)

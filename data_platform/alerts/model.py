"""What an alert is, and what became of it: the kinds of failure, one rendered alert, and
the outcome per channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class AlertKind(StrEnum):
    """What failed: a load (file into a table), a landing (a fetch from a source API, an
    extraction from a source database, a topic consumed: files put into incoming), a
    transformation (dbt), a whole run, a table found unequal to its source (`verify`), or
    a table behind or stale (`fresh`).
    (`fetch` and `extract`, the landing kinds before revision 0016, are closed by it: no
    alert of theirs is open.)"""

    LOAD = "load"
    LAND = "land"
    TRANSFORM = "transform"
    RUN = "run"
    VERIFY = "verify"
    FRESH = "fresh"


class Delivery(StrEnum):
    """What one channel did with an alert."""

    SENT = "sent"
    # Not sent: this failure was already alerted (its fingerprint is in alert_events).
    SUPPRESSED = "suppressed"
    FAILED = "failed"


@dataclass(frozen=True)
class Alert:
    """One alert as every channel sends it; subject and message already scrubbed."""

    environment: str
    kind: AlertKind
    subject: str
    message: str
    time: datetime
    fingerprint: str

    @property
    def title(self) -> str:
        """One line: `[data-platform local] load failed: <subject>`."""
        return f"[data-platform {self.environment}] {self.kind} failed: {self.subject}"

    @property
    def text(self) -> str:
        """The body: who, what, when, then the failure's own text."""
        return (
            f"Environment: {self.environment}\n"
            f"Kind: {self.kind}\n"
            f"Subject: {self.subject}\n"
            f"Time: {self.time.isoformat(timespec='seconds')}\n"
            f"Fingerprint: {self.fingerprint}\n"
            f"\n{self.message}\n"
        )

    def to_json(self) -> dict[str, str]:
        """The webhook's payload; `text` is what chat webhooks (Slack, Teams) display."""
        return {
            "environment": self.environment,
            "kind": str(self.kind),
            "subject": self.subject,
            "message": self.message,
            "time": self.time.isoformat(),
            "fingerprint": self.fingerprint,
            "text": f"{self.title}\n{self.message}",
        }


@dataclass(frozen=True)
class AlertOutcome:
    """What `notify` did.

    `new`: the first alert of this failure (False: suppressed, already alerted).
    `recorded`: its row is in alert_events (False when the database could not be reached,
    the alert then sent anyway, or when every channel failed: the row is removed so that
    the next occurrence tries again). `channels`: each configured channel's delivery;
    empty when no channel is configured (the alert was only logged)."""

    fingerprint: str
    new: bool
    recorded: bool
    channels: dict[str, Delivery] = field(default_factory=dict)

    @property
    def suppressed(self) -> bool:
        return not self.new

    @property
    def sent(self) -> tuple[str, ...]:
        return tuple(c for c, d in self.channels.items() if d is Delivery.SENT)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c for c, d in self.channels.items() if d is Delivery.FAILED)

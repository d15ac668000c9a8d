"""Alerts: every failure of the platform (a load, a landing, a transformation or a run)
is sent once to the configured channels (e-mail, SNS, webhook) or only logged.

    from data_platform.alerts import notify, resolve

    notify("load", str(load.id), str(error), load_id=load.id)  # first time: sent; again: suppressed
    resolve("load:42")  # cleared: a recurrence alerts again

A load's alert carries its ``load_id``: the load's retry, skip or archive resolves it
(``loads.state.transition``); an alert without it stays open until ``resolve``.
The load machinery (``data_platform.loads``) never imports this package: it publishes
events (``loads.hooks``) that ``register_alerts`` subscribes to at a process's startup.
"""

from data_platform.alerts.hooks import (
    alert_landing,
    alert_load,
    alert_run,
    alert_whole_run,
    cause_class,
    register_alerts,
)
from data_platform.alerts.model import Alert, AlertKind, AlertOutcome, Delivery
from data_platform.alerts.notify import fingerprint_for, notify, resolve
from data_platform.alerts.scrub import scrub, secrets

__all__ = [
    "Alert",
    "AlertKind",
    "AlertOutcome",
    "Delivery",
    "alert_landing",
    "alert_load",
    "alert_run",
    "alert_whole_run",
    "cause_class",
    "fingerprint_for",
    "notify",
    "register_alerts",
    "resolve",
    "scrub",
    "secrets",
]

"""A transform's failures as alerts: one per failing model or data test, cleared when a
later build passes it (so a recurrence alerts again)."""

from __future__ import annotations

from data_platform.transform.result import TransformResult


def alert_transform(result: TransformResult) -> None:
    """Alert on each failed node of `result`; clear the alerts of the nodes that passed."""
    from data_platform.alerts import notify, resolve

    passed = []
    for node in result.nodes:
        subject = f"dbt {node.kind} {node.name}"
        if node.failed:
            notify("transform", subject, node.describe())
        else:
            passed.append(f"transform:{subject}")
    resolve(passed)  # one statement for the hundreds of nodes that passed

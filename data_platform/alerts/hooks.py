"""The alerts of the platform's commands that are not loads: one per failing fetch or
extraction, cleared when the next attempt succeeds (so a recurrence alerts again)."""

from __future__ import annotations

from data_platform.alerts.notify import notify, resolve


def alert_fetch(source: str, failed: bool, report: str) -> None:
    """After a fetch of `source` (cubic_dmap, melbourne_pedestrian): alert when it
    `failed`, with its `report`; else clear an earlier alert."""
    if failed:
        notify("fetch", source, report)
    else:
        resolve(f"fetch:{source}")


def alert_extract(source: str, table: str, error: str | None) -> None:
    """After the extraction of one table of a database source."""
    if error:
        notify("extract", f"{source}:{table}", error)
    else:
        resolve(f"extract:{source}:{table}")

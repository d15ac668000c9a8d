"""Declared column types of DMAP dataset types; any other column is text.

The aggregation types' columns and types are the reference platform's
(`reference-platform.md`, "Files"): counts are integers (stored as bigint), averages
floats. Transactional types (22 to 169 columns) are not declared: their columns stay
text until a type is known for sure (the reference's lesson: crawler-guessed types
broke queries).
"""

from __future__ import annotations

INT = "BIGINT"
FLOAT = "DOUBLE PRECISION"
TEXT = "TEXT"

DECLARED: dict[str, dict[str, str]] = {
    "agg_average_boardings_by_day_type_month": {"boardings_entries": FLOAT, "year": INT},
    "agg_boardings_fareprod_mode_month": {"year": INT, "count": INT},
    "agg_total_boardings_month_mode": {"year": INT, "boardings_entries": INT},
    "agg_daily_fareprod": {"count": INT, "weekend": INT},
    "agg_daily_fareprod_route": {"count": INT},
    "agg_daily_fareprod_station": {"count": INT},
    "agg_daily_transfers_route": {"transfer_taps_from_route": INT},
    "agg_daily_transfers_station": {"transfer_taps_at_station": INT},
    "agg_hourly_entry_exit_count": {"hour": INT, "entries": INT, "exits": INT},
}


def column_type(dataset_type: str, column: str) -> str:
    """The Postgres type of `column` of `dataset_type`: declared, else TEXT."""
    return DECLARED.get(dataset_type, {}).get(column, TEXT)

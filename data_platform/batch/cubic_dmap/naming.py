"""Names of DMAP things: the source, its schema, a dataset type's table, prefix and keys."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from data_platform.settings import get_settings

if TYPE_CHECKING:
    from data_platform.db.models import SourceName

SOURCE: Final[SourceName] = "cubic_dmap"
DB_SCHEMA = "cubic_dmap"
DATASET_ID_COLUMN = "dataset_id"
LOAD_ID_COLUMN = "dp__load_id"
SUFFIX = ".csv.gz"
_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def check_type(dataset_type: str) -> str:
    """A dataset type as the vendor names it (`agg_daily_fareprod`), else ValueError."""
    if not _TYPE.match(dataset_type):
        raise ValueError(
            f"not a DMAP dataset type: {dataset_type!r} (lower-case letters, digits, _)"
        )
    return dataset_type


def table_name(dataset_type: str) -> str:
    """The platform name of a type's table, e.g. cubic_dmap__agg_daily_fareprod."""
    return f"{SOURCE}__{check_type(dataset_type)}"


def type_prefix(dataset_type: str) -> str:
    """Where a type's files land in incoming: cubic/dmap/<type>/."""
    return f"{get_settings().cubic_dmap_prefix}{check_type(dataset_type)}/"


def dataset_id_of(key: str, prefix: str) -> str | None:
    """`cubic/dmap/<type>/<dataset_id>.csv.gz` -> dataset_id; None for any other key
    under `prefix` (a subfolder, another suffix)."""
    name = key[len(prefix) :] if key.startswith(prefix) else ""
    if "/" in name or not name.endswith(SUFFIX) or len(name) == len(SUFFIX):
        return None
    return name[: -len(SUFFIX)]


def column_name(header: str) -> str:
    """A CSV header's Postgres column: lower case, runs of other characters as `_`."""
    name = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    return name or "column"

"""DMAP feeds: their path shapes, the API key each takes, and adding one to dmap_feeds.

A feed is a path after the vendor's base URL; its last segment is the dataset type:

    /datasetpublicusersapi/aggregations/<type>       public user key
    /datasetcontrolleduserapi/transactional/<type>   controlled user key
    /controlledresearchusersapi/<section>/<type>     controlled user key (older deployments)
"""

from __future__ import annotations

import re
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from data_platform.batch.cubic_dmap import naming
from data_platform.batch.cubic_dmap.client import DmapError
from data_platform.db.engine import get_engine
from data_platform.db.models import DmapFeed
from data_platform.errors import ConfigError
from data_platform.settings import Settings, get_settings

KeyKind = Literal["public", "controlled"]

# The last segment; checked further by naming.check_type (the ingest side's rule, as the
# type names the files' prefix and the table).
_TYPE = r"(?P<type>[^/]+)"
_SHAPES: tuple[tuple[re.Pattern[str], KeyKind], ...] = (
    (re.compile(rf"/datasetpublicusersapi/aggregations/{_TYPE}"), "public"),
    (re.compile(rf"/datasetcontrolleduserapi/transactional/{_TYPE}"), "controlled"),
    (
        re.compile(rf"/controlledresearchusersapi/(aggregations|transactional)/{_TYPE}"),
        "controlled",
    ),
)
SHAPES_HELP = (
    "/datasetpublicusersapi/aggregations/<type>, /datasetcontrolleduserapi/transactional/<type> "
    "or /controlledresearchusersapi/{aggregations,transactional}/<type>"
)
KEY_SETTINGS: dict[KeyKind, str] = {
    "public": "cubic_dmap_public_user_api_key",
    "controlled": "cubic_dmap_controlled_user_api_key",
}


def _match(relative_url: str) -> tuple[str, KeyKind]:
    for pattern, kind in _SHAPES:
        found = pattern.fullmatch(relative_url)
        if found:
            try:
                return naming.check_type(found["type"]), kind
            except ValueError as exc:
                raise DmapError(f"feed {relative_url}: {exc}") from None
    raise DmapError(f"not a DMAP feed path: {relative_url!r} (expected {SHAPES_HELP})")


def dataset_type(relative_url: str) -> str:
    """The feed's dataset type, its last path segment:
    `/datasetpublicusersapi/aggregations/agg_x` -> `agg_x`. Raises DmapError for a path
    of another shape."""
    return _match(relative_url)[0]


def key_kind(relative_url: str) -> KeyKind:
    """Which API key the feed takes: `public` under /datasetpublicusersapi/, else
    `controlled`. Raises DmapError for a path of another shape."""
    return _match(relative_url)[1]


def api_key_for(relative_url: str, settings: Settings | None = None) -> str:
    """The API key for the feed's path, from CUBIC_DMAP_PUBLIC_USER_API_KEY or
    CUBIC_DMAP_CONTROLLED_USER_API_KEY. Raises ConfigError when that one is not set
    (the message names the variable, never a value), DmapError for a bad path."""
    settings = settings or get_settings()
    kind = key_kind(relative_url)
    name = KEY_SETTINGS[kind]
    secret = getattr(settings, name)
    if secret is None or not secret.get_secret_value():
        raise ConfigError(f"{name.upper()} is not set (feed {relative_url} takes the {kind} key)")
    return secret.get_secret_value()


def add_feed(relative_url: str, active: bool = True) -> tuple[int, bool]:
    """Register a feed, or set `is_active` on the one registered under this path.

    Returns (dmap_feeds id, created). Idempotent: a second call changes nothing but
    `is_active` to what it asks. Raises DmapError for a path of another shape."""
    dataset_type(relative_url)  # validates the shape, hence the key kind
    with get_engine().begin() as conn:
        # Look first: a conflicting insert would use up an id each time.
        feed_id = conn.scalar(select(DmapFeed.id).where(DmapFeed.relative_url == relative_url))
        if feed_id is None:
            feed_id = conn.scalar(
                insert(DmapFeed)
                .values(relative_url=relative_url, is_active=active)
                .on_conflict_do_nothing(index_elements=[DmapFeed.relative_url])
                .returning(DmapFeed.id)
            )
            if feed_id is not None:
                return feed_id, True
            # Added by another process meanwhile: the conflict says it is there.
            feed_id = conn.execute(
                select(DmapFeed.id).where(DmapFeed.relative_url == relative_url)
            ).scalar_one()
        conn.execute(
            update(DmapFeed)
            .where(DmapFeed.id == feed_id, DmapFeed.is_active.is_not(active))
            .values(is_active=active)
        )
        return feed_id, False

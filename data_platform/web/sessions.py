"""What the operations page keeps of logins in the database (revision 0022), so that every
worker process agrees: sessions ended by Log out, and failed logins by client address
(too many within LOGIN_WINDOW_SECONDS and the next attempts are refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from data_platform.db.engine import get_engine
from data_platform.db.models import LoginFailure, RevokedSession

LOGIN_ATTEMPTS = 5  # failed logins from one address ...
LOGIN_WINDOW_SECONDS = 60  # ... within this window: the next attempts get 429


def revoke(sid: str, expires_at: datetime) -> None:
    """End session `sid` (which would expire at `expires_at`), and forget the ended
    sessions that have expired since."""
    with get_engine().begin() as conn:
        conn.execute(delete(RevokedSession).where(RevokedSession.expires_at < func.now()))
        conn.execute(
            pg_insert(RevokedSession)
            .values(sid=sid, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[RevokedSession.sid])
        )


def is_revoked(sid: str) -> bool:
    """Was session `sid` ended by Log out?"""
    with get_engine().connect() as conn:
        return conn.scalar(select(RevokedSession.sid).where(RevokedSession.sid == sid)) is not None


def refused_for(client: str) -> int | None:
    """Seconds until `client` may try to log in again, None when it may now: it failed
    LOGIN_ATTEMPTS times within the last LOGIN_WINDOW_SECONDS."""
    since = datetime.now(UTC) - timedelta(seconds=LOGIN_WINDOW_SECONDS)
    with get_engine().connect() as conn:
        failures = list(
            conn.scalars(
                select(LoginFailure.at)
                .where(LoginFailure.client == client, LoginFailure.at > since)
                .order_by(LoginFailure.at.desc())
                .limit(LOGIN_ATTEMPTS)
            )
        )
    if len(failures) < LOGIN_ATTEMPTS:
        return None
    oldest = failures[-1]
    return max(1, int((oldest - since).total_seconds()) + 1)


def record_failure(client: str) -> None:
    """A failed login from `client`; failures older than the window go."""
    since = datetime.now(UTC) - timedelta(seconds=LOGIN_WINDOW_SECONDS)
    with get_engine().begin() as conn:
        conn.execute(delete(LoginFailure).where(LoginFailure.at <= since))
        conn.execute(insert(LoginFailure).values(client=client))

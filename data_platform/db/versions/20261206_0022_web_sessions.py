"""The operations page's sessions ended by Log out, and its failed logins

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 03:28:48.882791+00:00

`web_revoked_sessions`: a login session ended by Log out (its random id, sealed in the
cookie), refused until it would have expired. `web_login_failures`: failed logins by
client address, so that too many within a minute are refused (429) whichever worker
process answers. Written by Alembic's autogenerate from `db.models`. Downgrade drops both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_login_failures",
        sa.Column(
            "id",
            sa.BigInteger(),
            sa.Identity(always=False),
            nullable=False,
            comment="The failure's id.",
        ),
        sa.Column("client", sa.Text(), nullable=False, comment="The client's address."),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When it failed.",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_login_failures")),
        comment="Failed logins to the operations page, by client address: too many within a minute and the next attempts are refused (429) until it passes.",
    )
    op.create_index(
        "ix_web_login_failures_client_at", "web_login_failures", ["client", "at"], unique=False
    )
    op.create_table(
        "web_revoked_sessions",
        sa.Column(
            "sid",
            sa.Text(),
            nullable=False,
            comment="The session's random id, sealed in its cookie.",
        ),
        sa.Column(
            "revoked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When it logged out.",
        ),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the session would have expired.",
        ),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_web_revoked_sessions")),
        comment="Login sessions of the operations page ended by Log out: a session cookie naming one is refused until it would have expired anyway (then the row goes).",
    )


def downgrade() -> None:
    op.drop_table("web_revoked_sessions")
    op.drop_index("ix_web_login_failures_client_at", table_name="web_login_failures")
    op.drop_table("web_login_failures")

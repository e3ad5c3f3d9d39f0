"""pauses of tasks (since when, by whom and why), single-occurrence changes, calendar feeds

Revision ID: 0006_calendar
Revises: 0006_onair
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from onair.store.schema import Instant

revision = "0006_calendar"
down_revision = "0006_onair"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("scope", sa.String(length=160), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", Instant(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("digest", name=op.f("uq_calendar_feeds_digest")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", Instant(), nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("pause_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("changes")
        batch_op.drop_column("pause_note")
        batch_op.drop_column("paused_by")
        batch_op.drop_column("paused_at")

"""the as-run log

Revision ID: 0006_onair
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from onair.store.schema import Instant

revision = "0006_onair"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "asrun",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("output", sa.String(length=128), nullable=False),
        sa.Column("planned_at", Instant(), nullable=False),
        sa.Column("first_audio_at", Instant(), nullable=True),
        sa.Column("lateness", sa.Float(), nullable=True),
        sa.Column("seconds_aired", sa.Float(), nullable=False),
        sa.Column("offset_seconds", sa.Float(), nullable=False),
        sa.Column("end_reason", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("ended_at", Instant(), nullable=False),
        sa.Column("subject", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asrun")),
    )
    op.create_index(op.f("ix_asrun_planned_at"), "asrun", ["planned_at"], unique=False)
    op.create_index(
        op.f("ix_asrun_owner_planned_at"), "asrun", ["owner", "planned_at"], unique=False
    )
    op.create_index(op.f("ix_asrun_ended_at"), "asrun", ["ended_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_asrun_ended_at"), table_name="asrun")
    op.drop_index(op.f("ix_asrun_owner_planned_at"), table_name="asrun")
    op.drop_index(op.f("ix_asrun_planned_at"), table_name="asrun")
    op.drop_table("asrun")

"""resources held by tasks (admission)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from onair.store.schema import Instant

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tasks added before hold nothing: their spans were never computed, and a play task's
    # duration depends on media that may have changed since.
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resource", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("hold", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("held_from", Instant(), nullable=True))
        batch_op.add_column(sa.Column("held_until", Instant(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_tasks_resource_held_from"), ["resource", "held_from"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_resource_held_from"))
        batch_op.drop_column("held_until")
        batch_op.drop_column("held_from")
        batch_op.drop_column("hold")
        batch_op.drop_column("resource")

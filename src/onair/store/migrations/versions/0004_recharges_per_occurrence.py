"""credit recharges keyed by task occurrence

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credit_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurrence", sa.Uuid(), nullable=True))
    # Recharges recorded before were keyed by their run: that run is their occurrence's key.
    op.execute("UPDATE credit_transactions SET occurrence = run_id")
    with op.batch_alter_table("credit_transactions", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_credit_transactions_occurrence_user_id"), ["occurrence", "user_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("credit_transactions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_credit_transactions_occurrence_user_id"), type_="unique"
        )
        batch_op.drop_column("occurrence")

"""interval_counters.answered_untimed: answers whose wait is unknown (their offer was never seen).

They count in "answered" and in handle time, never in ASA or service level (docs/metrics.md);
a column so that history sums them in SQL like every other count.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interval_counters") as batch:
        batch.add_column(
            sa.Column("answered_untimed", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("interval_counters") as batch:
        batch.drop_column("answered_untimed")

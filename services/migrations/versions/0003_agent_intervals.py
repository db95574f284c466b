"""agent_intervals: each agent's time per state per 15-minute interval (logged-in time).

Cost per handled contact and contacts per logged-in hour need agents' logged-in time after the
agent state logs in Redis expire (8 days); the history writer rolls it here from those logs.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATES = ("logged_in", "available", "on_contact", "wrap_up", "not_ready")


def upgrade() -> None:
    op.create_table(
        "agent_intervals",
        sa.Column("start_s", sa.BigInteger(), primary_key=True),
        sa.Column("agent", sa.String(128), primary_key=True),
        *(
            sa.Column(f"{state}_ms", sa.BigInteger(), nullable=False, server_default="0")
            for state in STATES
        ),
        sa.Column("extra", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("updated_s", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_agent_intervals_start", "agent_intervals", ["start_s"])


def downgrade() -> None:
    op.drop_index("ix_agent_intervals_start", table_name="agent_intervals")
    op.drop_table("agent_intervals")

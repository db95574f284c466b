"""interval_counters: raw counters per 15-minute interval and scope.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen here: later changes to services.intervals need a migration of their own.
COUNTERS = (
    "offered",
    "queued",
    "answered",
    "answer_wait_ms",
    "abandoned",
    "abandoned_queue",
    "abandoned_ivr",
    "abandon_wait_ms",
    "timed_out",
    "handled",
    "handle_ms",
    "transferred",
    "escalated",
    "resolved",
    "resolved_fc",
    "resolution_ms",
    "csat_n",
    "csat_sat",
    "nps_n",
    "nps_pro",
    "nps_det",
    "fcrm_n",
    "fcrm_ok",
    "aw_0",
    "aw_1",
    "aw_2",
    "aw_3",
    "aw_4",
    "aw_5",
    "aw_6",
    "aw_7",
    "aw_8",
    "aw_9",
    "aw_10",
    "aw_11",
    "aw_12",
    "aw_13",
    "aw_14",
    "aw_15",
    "aw_16",
    "aw_17",
    "aw_18",
    "aw_19",
    "qw_0",
    "qw_1",
    "qw_2",
    "qw_3",
    "qw_4",
    "qw_5",
    "qw_6",
    "qw_7",
    "qw_8",
    "qw_9",
    "qw_10",
    "qw_11",
    "qw_12",
    "qw_13",
    "qw_14",
    "qw_15",
    "qw_16",
    "qw_17",
    "qw_18",
    "qw_19",
    "iw_0",
    "iw_1",
    "iw_2",
    "iw_3",
    "iw_4",
    "iw_5",
    "iw_6",
    "iw_7",
    "iw_8",
    "iw_9",
    "iw_10",
    "iw_11",
    "iw_12",
    "iw_13",
    "iw_14",
    "iw_15",
    "iw_16",
    "iw_17",
    "iw_18",
    "iw_19",
)


def upgrade() -> None:
    op.create_table(
        "interval_counters",
        sa.Column("start_s", sa.BigInteger, primary_key=True),
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("kind", sa.String(2), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False, server_default=""),
        sa.Column("queue", sa.String(128), nullable=False, server_default=""),
        sa.Column("agent", sa.String(128), nullable=False, server_default=""),
        *(sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in COUNTERS),
        sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
        sa.Column("updated_s", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_interval_kind_start", "interval_counters", ["kind", "start_s"])


def downgrade() -> None:
    op.drop_index("ix_interval_kind_start", "interval_counters")
    op.drop_table("interval_counters")

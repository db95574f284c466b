"""contacts: one row per contact, rolled from its fact sheet (drill-down and per-contact export).

The interval rows say how many; these say which contacts, with their times, wait, handle time
and outcome, so a figure can be checked contact by contact and exported (docs/contacts.md).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMES = (
    "offered_ms",
    "queued_ms",
    "answered_ms",
    "abandoned_ms",
    "timed_out_ms",
    "completed_ms",
    "resolved_ms",
)
INDEXES = {
    "ix_contacts_start": ["start_ms"],
    "ix_contacts_channel_start": ["channel", "start_ms"],
    "ix_contacts_queue_start": ["queue", "start_ms"],
    "ix_contacts_customer_start": ["customer", "start_ms"],
}


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("contact", sa.String(256), primary_key=True),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False, server_default=""),
        sa.Column("queue", sa.String(128), nullable=False, server_default=""),
        sa.Column("agent", sa.String(128), nullable=False, server_default=""),
        sa.Column("customer", sa.String(256), nullable=False, server_default=""),
        *(sa.Column(name, sa.BigInteger(), nullable=True) for name in TIMES),
        sa.Column("abandon_stage", sa.String(128), nullable=True),
        sa.Column("wait_ms", sa.BigInteger(), nullable=True),
        sa.Column("handle_ms", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("first_contact", sa.Boolean(), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("nps", sa.Integer(), nullable=True),
        sa.Column("updated_s", sa.BigInteger(), nullable=False),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "contacts", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="contacts")
    op.drop_table("contacts")

"""contacts.issue: the contact's issue type, so measured FCR's repeats can be listed.

Measured FCR groups a customer's contacts by issue type (docs/metrics.md#resolution); the
drill-down of its repeats needs the issue beside the customer key (docs/contacts.md).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("issue", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("issue")

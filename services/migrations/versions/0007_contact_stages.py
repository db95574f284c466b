"""contacts.stages: the IVR and bot stages each contact went through, for its timeline.

A supervisor reading the contacts behind a figure sees where each caller went before the
queue (docs/contacts.md): `{"stage": first entry ms, ...}` in the order entered.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("stages", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("stages")

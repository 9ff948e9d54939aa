"""orders.trigger_price: the trigger of a conditional (exchange-side stop) order, NULL for every other order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from live.db.types import Money

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("trigger_price", Money(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch table copy would drop `orders`, cascading
    # to order_events and tripping the fills foreign key.
    with op.batch_alter_table("orders", recreate="never") as batch:
        batch.drop_column("trigger_price")

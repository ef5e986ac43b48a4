"""A task's step that failed with a fault that passes by itself (a wallet without gas, a gateway that timed out)
waits and is tried again with backoff: ``task.wait_reason``, ``task.retry_at`` and ``task.retries``.

Written to match what autogenerate makes from the model (a test compares them on SQLite and PostgreSQL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, no batch: on SQLite a batch would copy and drop ``task``, which the tables referencing it
    # forbid. ``retries`` keeps its server default (the model declares it too), so existing rows read 0.
    op.add_column("task", sa.Column("wait_reason", sa.Text(), nullable=True))
    op.add_column("task", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("task", sa.Column("retries", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("task", "retries")
    op.drop_column("task", "retry_at")
    op.drop_column("task", "wait_reason")

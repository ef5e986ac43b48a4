"""Tasks whose spec is being read (``orchestrator.adapters.sql.models.SpecRead``): marked before the read, so a spec
that crashed the process is quarantined on restart instead of crashing it again.

Written to match what autogenerate makes from the model (a test compares them on SQLite and PostgreSQL).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spec_read",
        sa.Column("board", sa.String(length=64), nullable=False),
        sa.Column("board_task_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reading", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("board", "board_task_id", name=op.f("pk_spec_read")),
    )


def downgrade() -> None:
    op.drop_table("spec_read")

"""Each task's running model spend (``orchestrator.adapters.sql.spend.TaskSpend``), written as every model call returns,
so an agent run a crash cut short still has its usage and cost attributed to the task.

Written to match what autogenerate makes from the model (a test compares them on SQLite and PostgreSQL).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_spend",
        sa.Column("task", sa.String(length=160), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("cost", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("task", name=op.f("pk_task_spend")),
    )


def downgrade() -> None:
    op.drop_table("task_spend")

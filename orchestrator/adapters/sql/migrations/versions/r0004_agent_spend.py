"""Agents' daily spend (tokens and cost per agent per UTC day), read by the daily budgets
(``orchestrator.adapters.sql.spend``).

Written to match what autogenerate makes from ``AgentSpend`` (a test compares them on SQLite and PostgreSQL).
``cost`` is decimal text: exact on both backends.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 17:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_spend",
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("agent", "day", name=op.f("pk_agent_spend")),
    )


def downgrade() -> None:
    op.drop_table("agent_spend")

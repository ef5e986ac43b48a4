"""Coordination held by the database for a fleet of processes: named leases (``lease``: the single-process
service's guard, model endpoints' slots), and the model endpoints' per-minute counts (``endpoint_window``) and
waiting agents (``endpoint_waiter``).

Written to match what autogenerate makes from the models (``tests/test_store.py`` compares them on SQLite and
PostgreSQL).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 21:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lease",
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lease")),
    )
    op.create_table(
        "endpoint_window",
        sa.Column("endpoint", sa.String(length=360), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("waits", sa.Integer(), nullable=False),
        sa.Column("wait_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "minute", name=op.f("pk_endpoint_window")),
    )
    op.create_table(
        "endpoint_waiter",
        sa.Column("waiter", sa.String(length=200), nullable=False),
        sa.Column("endpoint", sa.String(length=360), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("task", sa.String(length=400), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("waiter", name=op.f("pk_endpoint_waiter")),
    )
    op.create_index(op.f("ix_endpoint_waiter_endpoint"), "endpoint_waiter", ["endpoint"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_endpoint_waiter_endpoint"), table_name="endpoint_waiter")
    op.drop_table("endpoint_waiter")
    op.drop_table("endpoint_window")
    op.drop_table("lease")

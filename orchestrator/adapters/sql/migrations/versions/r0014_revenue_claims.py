"""The revenue side of the P&L: ``revenue_claim``, one row per project pool's ``RevenueClaimed`` event paid to one
of the fleet's agents (unique per transaction, pool and token, so recording a claim again changes nothing), and
``pool_holding``, each agent's shares and still-claimable revenue per pool and token as last read from the chain.

Written to match what autogenerate makes from the models (``tests/test_store.py`` compares them on SQLite and
PostgreSQL).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 22:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revenue_claim",
        sa.Column("pool", sa.String(length=42), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.String(length=78), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revenue_claim")),
        sa.UniqueConstraint("tx_hash", "pool", "token", name=op.f("uq_revenue_claim_tx_hash_pool_token")),
    )
    with op.batch_alter_table("revenue_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revenue_claim_agent"), ["agent"], unique=False)
        batch_op.create_index(batch_op.f("ix_revenue_claim_pool"), ["pool"], unique=False)
    op.create_table(
        "pool_holding",
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("pool", sa.String(length=42), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("shares", sa.String(length=78), nullable=False),
        sa.Column("claimable", sa.String(length=78), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent", "pool", "token", name=op.f("pk_pool_holding")),
    )


def downgrade() -> None:
    op.drop_table("pool_holding")
    with op.batch_alter_table("revenue_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revenue_claim_pool"))
        batch_op.drop_index(batch_op.f("ix_revenue_claim_agent"))
    op.drop_table("revenue_claim")

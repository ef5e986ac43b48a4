"""The wallet journal (``wallets.journal``): nonce counters, signed transactions, daily spend ledgers, audit log.

Written to match what autogenerate makes from those models (``tests/test_store.py`` compares them on SQLite and
PostgreSQL). By hand: the partial unique index on live nonces (``status != 'dropped'``) on both dialects, and
triggers that make ``wallet_audit`` append-only like ``task_event`` (PostgreSQL reuses r0001's trigger function).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 17:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = ("wallet_audit",)
LIVE_NONCE = "status != 'dropped'"


def _create_append_only_triggers() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in APPEND_ONLY_TABLES:
        if postgres:  # deworker_append_only() is created by r0001
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION deworker_append_only()"
            )
            continue
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only_triggers() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in APPEND_ONLY_TABLES:
        if postgres:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            continue
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_append_only_{verb}")


def upgrade() -> None:
    op.create_table(
        "wallet_nonce",
        sa.Column("wallet", sa.String(length=42), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("wallet", "chain_id", name=op.f("pk_wallet_nonce")),
    )
    op.create_table(
        "wallet_tx",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wallet", sa.String(length=42), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("to", sa.String(length=42), nullable=True),
        sa.Column("selector", sa.String(length=10), nullable=True),
        sa.Column("value", sa.String(length=80), nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=False),
        sa.Column("max_fee_per_gas", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mined_block", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("effective_gas_price", sa.String(length=80), nullable=True),
        sa.Column("spend_day", sa.String(length=10), nullable=False),
        sa.Column("spend_gas", sa.String(length=80), nullable=False),
        sa.Column("spend_value", sa.String(length=80), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=True),
        sa.Column("token_amount", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_tx")),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_wallet_tx_tx_hash")),
    )
    with op.batch_alter_table("wallet_tx", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wallet_tx_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_wallet_tx_wallet"), ["wallet"], unique=False)
        # one live transaction per (wallet, chain, nonce); a dropped row frees its nonce
        batch_op.create_index(
            "uq_wallet_tx_live_nonce",
            ["wallet", "chain_id", "nonce"],
            unique=True,
            sqlite_where=sa.text(LIVE_NONCE),
            postgresql_where=sa.text(LIVE_NONCE),
        )

    op.create_table(
        "wallet_spend",
        sa.Column("scope", sa.String(length=42), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("asset", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("scope", "chain_id", "day", "asset", name=op.f("pk_wallet_spend")),
    )
    op.create_table(
        "wallet_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("wallet", sa.String(length=42), nullable=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("detail", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_audit")),
    )
    with op.batch_alter_table("wallet_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wallet_audit_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_wallet_audit_wallet"), ["wallet"], unique=False)

    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("wallet_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallet_audit_wallet"))
        batch_op.drop_index(batch_op.f("ix_wallet_audit_kind"))
    op.drop_table("wallet_audit")
    op.drop_table("wallet_spend")
    with op.batch_alter_table("wallet_tx", schema=None) as batch_op:
        batch_op.drop_index("uq_wallet_tx_live_nonce", sqlite_where=sa.text(LIVE_NONCE))
        batch_op.drop_index(batch_op.f("ix_wallet_tx_wallet"))
        batch_op.drop_index(batch_op.f("ix_wallet_tx_status"))
    op.drop_table("wallet_tx")
    op.drop_table("wallet_nonce")

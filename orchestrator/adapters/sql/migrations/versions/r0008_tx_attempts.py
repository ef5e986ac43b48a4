"""Several attempts per nonce in the wallet journal (fee replacements and cancellations): ``wallet_tx`` gains
``attempt``, ``sent_block`` and ``expires_at``, and the partial unique index on live nonces leaves out replaced
attempts as well as dropped ones (``wallets.journal.LIVE_NONCE``).

Written to match what autogenerate makes from the model (``tests/test_store.py`` compares them on SQLite and
PostgreSQL); the index is rebuilt by hand on both dialects.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_LIVE_NONCE = "status != 'dropped'"
LIVE_NONCE = "status NOT IN ('dropped', 'replaced')"


def _live_nonce_index(batch_op: BatchOperations, where: str) -> None:
    batch_op.create_index(
        "uq_wallet_tx_live_nonce",
        ["wallet", "chain_id", "nonce"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("wallet_tx", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("sent_block", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.BigInteger(), nullable=True))
        batch_op.drop_index("uq_wallet_tx_live_nonce", sqlite_where=sa.text(OLD_LIVE_NONCE))
        _live_nonce_index(batch_op, LIVE_NONCE)
    with op.batch_alter_table("wallet_tx", schema=None) as batch_op:
        batch_op.alter_column("attempt", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("wallet_tx", schema=None) as batch_op:
        batch_op.drop_index("uq_wallet_tx_live_nonce", sqlite_where=sa.text(LIVE_NONCE))
        _live_nonce_index(batch_op, OLD_LIVE_NONCE)
        batch_op.drop_column("expires_at")
        batch_op.drop_column("sent_block")
        batch_op.drop_column("attempt")

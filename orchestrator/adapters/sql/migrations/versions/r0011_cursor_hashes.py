"""Board cursors remember the block they stopped at: ``board.poll_cursor_hash`` and ``board.payout_cursor_hash``
(the hash of block ``cursor - 1``, the last one read) and ``board.checkpoints`` (recent ``[number, hash]`` pairs
of such blocks), so that a poll detects a reorg of blocks it already read and rewinds to the last common block.

Written to match what autogenerate makes from the model (a test compares them on SQLite and PostgreSQL).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, no batch (as in 0010). Existing cursors have no hash: the first poll after the upgrade
    # reads on without a check and saves one.
    op.add_column("board", sa.Column("poll_cursor_hash", sa.String(length=66), nullable=True))
    op.add_column("board", sa.Column("payout_cursor_hash", sa.String(length=66), nullable=True))
    op.add_column("board", sa.Column("checkpoints", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("board", "checkpoints")
    op.drop_column("board", "payout_cursor_hash")
    op.drop_column("board", "poll_cursor_hash")

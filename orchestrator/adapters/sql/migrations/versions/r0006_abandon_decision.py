"""Review decisions: ``reject`` now sends the task back to its agent to start over, and giving a task up is the new
``abandon``. Reviews recorded as ``reject`` before this revision gave the task up, so they become ``abandon``
(data only; the column is text).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE review SET decision = 'abandon' WHERE decision = 'reject'")


def downgrade() -> None:
    # A start-over rejection has no equivalent before 0006; it reads back as a change request.
    op.execute("UPDATE review SET decision = 'request_changes' WHERE decision = 'reject'")
    op.execute("UPDATE review SET decision = 'reject' WHERE decision = 'abandon'")

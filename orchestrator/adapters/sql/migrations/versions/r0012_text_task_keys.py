"""A task's key on its board and a board's cursors become text, so a board whose tasks are not numbered (or whose
cursor is not a block number) fits the same tables: ``task.board_task_id``, ``reward.board_task_id`` and
``spec_read.board_task_id`` become ``task_key`` (with their unique constraints renamed), ``board.poll_cursor`` and
``board.payout_cursor`` become text. Existing rows are kept: an integer becomes its decimal text (and back on
downgrade).

Written to match what autogenerate makes from the model (``tests/test_store.py`` compares them on SQLite and
PostgreSQL). On SQLite a column's type changes by copying its table (batch mode); ``task`` is referenced by other
tables' foreign keys, and SQLite refuses to drop a referenced table while they are enforced, so they are switched
off for the copy (outside a transaction: SQLite ignores the pragma inside one) and checked afterwards.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 02:30:00.000000
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.String(length=128)
TABLES_WITH_UNIQUE_KEY = ("task", "reward")


@contextmanager
def _copyable_tables() -> Iterator[None]:
    """SQLite: foreign keys off while tables are copied, then on again and checked; elsewhere nothing."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
    yield
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=ON")
    broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"revision 0012 left rows whose foreign key points nowhere: {broken}")


def _to_text(column: str) -> str:
    return f"{column}::text"


def upgrade() -> None:
    with _copyable_tables():
        for table in TABLES_WITH_UNIQUE_KEY:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_constraint(op.f(f"uq_{table}_board_board_task_id"), type_="unique")
                batch_op.alter_column(
                    "board_task_id",
                    new_column_name="task_key",
                    existing_type=sa.BigInteger(),
                    type_=KEY,
                    existing_nullable=False,
                    postgresql_using=_to_text("board_task_id"),
                )
            # a second batch: in the first, the renamed column is not yet there for a constraint to name
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.create_unique_constraint(op.f(f"uq_{table}_board_task_key"), ["board", "task_key"])
        with op.batch_alter_table("spec_read", schema=None) as batch_op:
            batch_op.alter_column(
                "board_task_id",
                new_column_name="task_key",
                existing_type=sa.BigInteger(),
                type_=KEY,
                existing_nullable=False,
                postgresql_using=_to_text("board_task_id"),
            )
        with op.batch_alter_table("board", schema=None) as batch_op:
            for cursor in ("poll_cursor", "payout_cursor"):
                batch_op.alter_column(
                    cursor,
                    existing_type=sa.BigInteger(),
                    type_=KEY,
                    existing_nullable=True,
                    postgresql_using=_to_text(cursor),
                )


def downgrade() -> None:
    # Keys and cursors written by a board with non-numeric ones cannot go back: the cast fails and nothing changes.
    with _copyable_tables():
        with op.batch_alter_table("board", schema=None) as batch_op:
            for cursor in ("poll_cursor", "payout_cursor"):
                batch_op.alter_column(
                    cursor,
                    existing_type=KEY,
                    type_=sa.BigInteger(),
                    existing_nullable=True,
                    postgresql_using=f"{cursor}::bigint",
                )
        with op.batch_alter_table("spec_read", schema=None) as batch_op:
            batch_op.alter_column(
                "task_key",
                new_column_name="board_task_id",
                existing_type=KEY,
                type_=sa.BigInteger(),
                existing_nullable=False,
                postgresql_using="task_key::bigint",
            )
        for table in reversed(TABLES_WITH_UNIQUE_KEY):
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_constraint(op.f(f"uq_{table}_board_task_key"), type_="unique")
                batch_op.alter_column(
                    "task_key",
                    new_column_name="board_task_id",
                    existing_type=KEY,
                    type_=sa.BigInteger(),
                    existing_nullable=False,
                    postgresql_using="task_key::bigint",
                )
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.create_unique_constraint(op.f(f"uq_{table}_board_board_task_id"), ["board", "board_task_id"])

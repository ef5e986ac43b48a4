"""``SqlCursors``: the boards a worker reads and where it stopped reading them (``orchestrator.ports.repos.Cursors``).

A cursor is text: what the board's adapter gives as the place to read on from. The TaskBoard contract's cursors are
block numbers in decimal, and for those two more rules hold: a cursor never moves backwards unless rewound (a slow
worker saving an older cursor leaves the newer one in place), and each saved cursor's block hash is kept as a
checkpoint for finding the last common block after a reorg. A cursor that is not a decimal number is saved as given.
"""

from __future__ import annotations

from sqlmodel import col, select

from orchestrator.adapters.sql.base import SqlRepository, T
from orchestrator.adapters.sql.errors import RecordNotFound
from orchestrator.adapters.sql.models import Board, BoardPublic

#: Checkpoints kept per board: enough to find the last common block of any reorg the cursors may see (a poll
#: per cycle saves one; 32 cycles back is deeper than any reorg a confirmed chain has had).
MAX_CHECKPOINTS = 32


def _with_checkpoint(
    checkpoints: list[list[int | str]] | None, number: int, block_hash: str, *, rewind: bool
) -> list[list[int | str]]:
    """``checkpoints`` (oldest first) with block ``number`` at ``block_hash``: a pair for the same number is
    replaced; on a ``rewind`` the pairs above it go (those blocks were replaced); the newest ``MAX_CHECKPOINTS``
    are kept."""
    kept = [c for c in checkpoints or [] if int(c[0]) != number and not (rewind and int(c[0]) > number)]
    kept.append([number, block_hash])
    kept.sort(key=lambda c: int(c[0]))
    return kept[-MAX_CHECKPOINTS:]


def _block_number(cursor: str) -> int | None:
    """The block number a cursor is, or None for a cursor of another kind."""
    return int(cursor) if cursor.isascii() and cursor.isdecimal() else None


def _moves_on(current: str, cursor: str, *, rewind: bool) -> bool:
    """Whether ``cursor`` replaces ``current``: block numbers only forwards (or on a rewind), others always."""
    old, new = _block_number(current), _block_number(cursor)
    if old is None or new is None:
        return current != cursor
    return new > old or (rewind and new != old)


class SqlCursors(SqlRepository[T]):
    """Boards and their poll/payout cursors, with block-hash checkpoints."""

    def ensure_board(self, *, name: str, kind: str) -> BoardPublic:
        """The board's row, created without cursors if missing."""
        with self._transaction(f"registering board {name!r}") as s:
            board = s.get(Board, name)
            if board is None:
                board = Board(name=name, kind=kind)
                s.add(board)
                s.flush()
            return BoardPublic.model_validate(board)

    def board(self, *, name: str) -> BoardPublic | None:
        """The board's row with its cursors, or None if it was never registered."""
        with self._transaction(f"reading board {name!r}", reads_only=True) as s:
            board = s.get(Board, name)
            return None if board is None else BoardPublic.model_validate(board)

    def set_poll_cursor(self, *, board: str, cursor: str, block_hash: str | None = None, rewind: bool = False) -> str:
        """Save the next block to poll for tasks, with ``block_hash``, the hash of block ``cursor - 1`` as it was
        read (kept in the board's checkpoints too); returns the stored cursor. Never moves backwards (a slow worker
        saving an older cursor leaves the newer one in place) unless ``rewind``: a reorg replaced blocks already
        read, and the poll read them again from the last common block."""
        return self._set_cursor(board=board, column="poll_cursor", cursor=cursor, block_hash=block_hash, rewind=rewind)

    def set_payout_cursor(self, *, board: str, cursor: str, block_hash: str | None = None, rewind: bool = False) -> str:
        """Save the next block to poll for payouts (see ``set_poll_cursor``)."""
        return self._set_cursor(
            board=board, column="payout_cursor", cursor=cursor, block_hash=block_hash, rewind=rewind
        )

    def _set_cursor(self, *, board: str, column: str, cursor: str, block_hash: str | None, rewind: bool) -> str:
        with self._transaction(f"saving {column} of board {board!r}") as s:
            row = s.exec(select(Board).where(col(Board.name) == board).with_for_update()).one_or_none()
            if row is None:
                raise RecordNotFound(f"board {board!r} is not registered", hint="call Store.ensure_board first")
            current: str | None = getattr(row, column)
            if current is not None and not _moves_on(current, cursor, rewind=rewind):
                return current
            setattr(row, column, cursor)
            setattr(row, f"{column}_hash", block_hash)
            number = _block_number(cursor)
            if block_hash is not None and number is not None:
                row.checkpoints = _with_checkpoint(row.checkpoints, number - 1, block_hash, rewind=rewind)
            return cursor

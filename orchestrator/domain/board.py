"""What boards report: a task as a board lists it, a rejection, a payout. Pure values (standard library only)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from orchestrator.domain.specs import TaskSpec


class BoardStatus(enum.IntEnum):
    """The TaskBoard contract's status codes."""

    OPEN = 1
    CLAIMED = 2
    SUBMITTED = 3
    APPROVED = 4
    CANCELLED = 5


@dataclass(frozen=True, slots=True)
class BoardTask:
    """A task as a board reports it. ``spec`` is None exactly when ``quarantine_reason`` is set."""

    board: str
    task_id: int
    poster: str
    token: str
    reward: int  # token base units
    deadline: int  # unix seconds
    reviewer: str
    spec_cid: str
    status: BoardStatus
    claimant: str | None = None
    claim_expires: int = 0
    artifact_cid: str | None = None
    spec: TaskSpec | None = None
    quarantine_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A DAO reviewer's rejection of a submission, as the board recorded it."""

    board: str
    task_id: int
    reviewer: str
    reason: str
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Payout:
    """A reward paid by a board to an agent's wallet."""

    board: str
    task_id: int
    recipient: str
    token: str
    amount: int
    tx_hash: str
    block_number: int

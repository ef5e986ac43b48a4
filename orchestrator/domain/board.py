"""What boards report: a task as a board lists it, a rejection, a payout. Pure values (standard library only)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from orchestrator.domain.specs import TaskSpec


class BoardPhase(enum.StrEnum):
    """Where a task stands on its board, in words every kind of board maps onto (the board's own name for its
    state is ``BoardTask.status_text``). The service decides on phases only, never on a board's status codes."""

    OPEN = "open"  # anyone may take it (a TaskBoard task nobody claimed; a job market's job awaiting a provider)
    HELD = "held"  # given to ``claimant``: claimed, or assigned and funded; work may be delivered
    DELIVERED = "delivered"  # ``claimant`` delivered ``artifact_cid``; the DAO's decision is pending
    SETTLED = "settled"  # the delivery was accepted and paid
    CLOSED = "closed"  # over without payment to anyone: cancelled, expired, refunded


@dataclass(frozen=True, slots=True)
class BoardTask:
    """A task as a board reports it. ``spec`` is None exactly when ``quarantine_reason`` is set."""

    board: str
    key: str  # the task's id on its board, as text (a board decides what its ids look like)
    poster: str
    token: str
    reward: int  # token base units
    deadline: int  # unix seconds
    reviewer: str
    spec_cid: str
    phase: BoardPhase
    status_text: str  # the board's own name for the task's state, for people ("CLAIMED", "Funded", ...)
    claimant: str | None = None  # who holds it: the claimant, or the provider a job market assigned
    claim_expires: int = 0  # when the hold ends by itself (unix seconds)
    artifact_cid: str | None = None
    spec: TaskSpec | None = None
    quarantine_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A DAO reviewer's rejection of a submission, as the board recorded it."""

    board: str
    key: str
    reviewer: str
    reason: str
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Payout:
    """A reward paid by a board to an agent's wallet."""

    board: str
    key: str
    recipient: str
    token: str
    amount: int
    tx_hash: str
    block_number: int

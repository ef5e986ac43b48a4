"""The pure domain core: the task lifecycle as a transition table, and the value types the ports exchange.

Must not import any adapter (web3, httpx, sqlalchemy, langchain, ...): standard library and pydantic only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from orchestrator.errors import LifecycleError
from orchestrator.untrusted import NO_CONTROL_CHARS_PATTERN


class TaskState(enum.StrEnum):
    """Where a task stands in Deworker's own lifecycle (not the board's status)."""

    DISCOVERED = "DISCOVERED"
    CLAIMING = "CLAIMING"
    CLAIMED = "CLAIMED"
    PRODUCING = "PRODUCING"
    PRODUCED = "PRODUCED"
    AWAITING_REVIEW = "AWAITING_REVIEW"
    APPROVED = "APPROVED"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    PAID = "PAID"
    # exits
    SKIPPED = "SKIPPED"  # not for us (no matching agent, not worth it): reason recorded
    QUARANTINED = "QUARANTINED"  # bad input (malformed/oversized/unreachable spec): reason recorded
    LOST = "LOST"  # another worker claimed it first; never retried
    ABANDONED = "ABANDONED"  # we released the claim, or it expired
    REJECTED = "REJECTED"  # the DAO's reviewer rejected the submission
    FAILED = "FAILED"  # an error we could not recover from: error recorded


S = TaskState

#: Every allowed transition. Anything not listed raises ``LifecycleError``. Tested exhaustively.
TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    # DISCOVERED -> SUBMITTED: a database that did not see it happen finds our own wallet's submission on the
    # board (a fresh db.url with the same wallets): imported as ours, nothing sent.
    S.DISCOVERED: frozenset({S.CLAIMING, S.SUBMITTED, S.SKIPPED, S.QUARANTINED, S.LOST}),
    # CLAIMING -> ABANDONED: the claim was still pending when it stopped being worth it; a cancellation took its
    # nonce, so no claim of ours is on the board.
    S.CLAIMING: frozenset({S.CLAIMED, S.LOST, S.FAILED, S.ABANDONED}),
    S.CLAIMED: frozenset({S.PRODUCING, S.ABANDONED}),
    S.PRODUCING: frozenset({S.PRODUCED, S.FAILED, S.ABANDONED}),
    # PRODUCED -> APPROVED is the automatic review policy; -> AWAITING_REVIEW is the human one.
    S.PRODUCED: frozenset({S.AWAITING_REVIEW, S.APPROVED, S.FAILED, S.ABANDONED}),
    # AWAITING_REVIEW -> PRODUCING is a reviewer's rejection with feedback: the agent revises.
    S.AWAITING_REVIEW: frozenset({S.APPROVED, S.PRODUCING, S.ABANDONED}),
    S.APPROVED: frozenset({S.SUBMITTING, S.ABANDONED}),
    # SUBMITTING -> ABANDONED: the claim expired before the submit transaction mined.
    S.SUBMITTING: frozenset({S.SUBMITTED, S.FAILED, S.ABANDONED}),
    # SUBMITTED -> CLAIMING: the DAO rejected the submission with a reason and the task is open again: the agent
    # claims it again and revises with that reason as feedback (``review.dao_resubmissions`` times at most).
    # SUBMITTED -> ABANDONED: a reorg removed the task's post from the board (``reconcile``): nothing to be paid for.
    S.SUBMITTED: frozenset({S.PAID, S.REJECTED, S.CLAIMING, S.ABANDONED}),
    # PAID -> SUBMITTED: a reorg removed the payout from the chain (``reconcile``, never by itself): the reward is
    # un-credited until the payout mines again. PAID is still terminal: nothing else moves a paid task.
    S.PAID: frozenset({S.SUBMITTED}),
    S.SKIPPED: frozenset(),
    S.QUARANTINED: frozenset(),
    S.LOST: frozenset(),
    S.ABANDONED: frozenset(),
    S.REJECTED: frozenset(),
    # FAILED -> CLAIMING / SUBMITTING: only an operator's `deworker tasks retry`, after checking the board.
    S.FAILED: frozenset({S.CLAIMING, S.SUBMITTING}),
}

#: States nothing moves a task out of by itself. FAILED is one: only an operator's retry leaves it; PAID another:
#: only a reorg that removed the payout does.
TERMINAL_STATES: frozenset[TaskState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt) | {S.FAILED, S.PAID}


def check_transition(current: TaskState, new: TaskState) -> None:
    """Raise ``LifecycleError`` unless ``current -> new`` is in the transition table."""
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal state)"
        raise LifecycleError(
            f"task cannot go from {current} to {new}; allowed from {current}: {allowed}",
            hint="this is a bug in the caller, or the database was edited by hand",
        )


# ------------------------------------------------------------------------------------------------- task specs


class DeliverableKind(enum.StrEnum):
    """What the DAO expects back."""

    TEXT = "text"
    MARKDOWN = "markdown"
    CODE = "code"
    DATA = "data"


#: A relative path inside an artifact or workspace: no absolute paths, no ``..``, no empty segments.
RelPath = Annotated[
    str,
    StringConstraints(max_length=128, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$"),
]


#: Text in a spec: anything but control characters other than newline and tab (``untrusted.CONTROL_CHARS``).
SpecText = Annotated[str, StringConstraints(pattern=NO_CONTROL_CHARS_PATTERN)]


class Deliverable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DeliverableKind
    format: SpecText | None = Field(default=None, max_length=64, description="e.g. 'python', 'json', 'csv'")
    filename: RelPath | None = Field(default=None, description="main file the artifact must contain")


class AcceptanceTests(BaseModel):
    """Executable acceptance tests shipped inside the spec; run by the agent's self-check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runner: Literal["pytest"] = "pytest"
    files: dict[RelPath, SpecText] = Field(min_length=1, max_length=20, description="relative path -> file content")


class TaskSpec(BaseModel):
    """A task spec document (stored by CID, referenced from the board). Schema: ``deworker/task-spec@1``.

    The JSON Schema published at ``orchestrator/schemas/task-spec.schema.json`` is generated from this model
    (a test keeps them in sync).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, title="Deworker task spec")

    schema_: Literal["deworker/task-spec@1"] = Field(
        default="deworker/task-spec@1", alias="schema", description="schema id and version"
    )
    title: SpecText = Field(min_length=1, max_length=200)
    description: SpecText = Field(min_length=1, max_length=20_000)
    deliverable: Deliverable
    skills: list[SpecText] = Field(min_length=1, max_length=20)
    acceptance: list[SpecText] = Field(min_length=1, max_length=50, description="criteria a reviewer checks")
    acceptance_tests: AcceptanceTests | None = None
    max_artifact_bytes: int = Field(
        default=1_048_576, ge=1, le=104_857_600, description="the artifact may not be larger than this"
    )


#: A spec document larger than this is quarantined unread (can be lowered in config: ``board.max_spec_bytes``).
MAX_SPEC_BYTES = 262_144


# ------------------------------------------------------------------------------------------- board value types


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

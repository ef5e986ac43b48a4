"""The task lifecycle: Deworker's own states and the transition table every state change is checked against.

Pure: standard library only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from orchestrator.domain.errors import LifecycleError


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

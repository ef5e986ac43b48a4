"""The review policy: what a reviewer can decide, where each decision sends a task, and which artifacts the
automatic review approves in each ``review.mode``. Pure: standard library only.

A task reaches APPROVED only through a review: a human's ``APPROVE`` decision, or the automatic one for a mode
and self-check listed in ``AUTO_APPROVE``. The database adapter applies these tables; it does not define them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Literal

from orchestrator.domain.lifecycle import TaskState

#: ``review.mode``: a human decides every artifact, the automatic review approves every one, or only those whose
#: acceptance tests passed (the others wait for a human).
ReviewMode = Literal["human", "auto", "auto_if_tests_pass"]


class SelfCheck(enum.StrEnum):
    """The agent's own check of an artifact (acceptance tests)."""

    PASSED = "passed"
    FAILED = "failed"
    NONE = "none"  # the spec had no acceptance tests


class ReviewDecision(enum.StrEnum):
    """A reviewer's decision on one artifact."""

    APPROVE = "approve"  # -> APPROVED: the artifact will be submitted
    REQUEST_CHANGES = "request_changes"  # -> PRODUCING: the agent edits its artifact with the feedback
    REJECT = "reject"  # -> PRODUCING: the artifact is thrown away; the agent starts over, told why
    ABANDON = "abandon"  # -> ABANDONED: we give the task up (the claim gets released)


#: The state each review decision moves a task to.
DECISION_TARGETS: Mapping[ReviewDecision, TaskState] = {
    ReviewDecision.APPROVE: TaskState.APPROVED,
    ReviewDecision.REQUEST_CHANGES: TaskState.PRODUCING,
    ReviewDecision.REJECT: TaskState.PRODUCING,
    ReviewDecision.ABANDON: TaskState.ABANDONED,
}
#: Decisions that send the task back to its agent: they need feedback and count as a revision.
REVISING = frozenset({ReviewDecision.REQUEST_CHANGES, ReviewDecision.REJECT})
#: The self-checks the automatic review approves, per review mode (the others wait for a human).
AUTO_APPROVE: Mapping[ReviewMode, frozenset[SelfCheck]] = {
    "auto": frozenset(SelfCheck),
    "auto_if_tests_pass": frozenset({SelfCheck.PASSED}),
    "human": frozenset(),
}


def is_review_decision(before: TaskState, to: TaskState) -> bool:
    """Whether ``before -> to`` is a review decision, which only a review may make (a human's decision bound to the
    artifact's CID, or the automatic review): every move to APPROVED, and sending a task under review back to its
    agent. A plain transition of these is refused."""
    return to is TaskState.APPROVED or (before is TaskState.AWAITING_REVIEW and to is TaskState.PRODUCING)

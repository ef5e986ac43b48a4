"""The lifecycle transition table, exhaustively: every (from, to) pair either is in the table or raises."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.domain.errors import DeworkerError, LifecycleError
from orchestrator.domain.lifecycle import TERMINAL_STATES, TRANSITIONS, TaskState, check_transition

S = TaskState


@pytest.mark.parametrize(("current", "new"), list(itertools.product(TaskState, TaskState)))
def test_every_pair_is_allowed_exactly_when_listed(current: TaskState, new: TaskState) -> None:
    if new in TRANSITIONS[current]:
        check_transition(current, new)
    else:
        with pytest.raises(LifecycleError) as info:
            check_transition(current, new)
        assert str(current) in str(info.value) and str(new) in str(info.value)
        assert isinstance(info.value, DeworkerError) and not info.value.retryable


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(TaskState)


def test_terminal_states_are_the_exits_and_paid() -> None:
    assert {S.PAID, S.SKIPPED, S.QUARANTINED, S.LOST, S.ABANDONED, S.REJECTED, S.FAILED} == TERMINAL_STATES


def test_happy_path_is_a_walk_through_the_table() -> None:
    path = [
        S.DISCOVERED,
        S.CLAIMING,
        S.CLAIMED,
        S.PRODUCING,
        S.PRODUCED,
        S.AWAITING_REVIEW,
        S.APPROVED,
        S.SUBMITTING,
        S.SUBMITTED,
        S.PAID,
    ]
    for a, b in itertools.pairwise(path):
        check_transition(a, b)


def test_every_state_reaches_a_terminal_state() -> None:
    for start in TaskState:
        seen, todo = set(), [start]
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            todo.extend(TRANSITIONS[s])
        assert seen & TERMINAL_STATES, f"{start} can never finish"


def test_money_steps_cannot_be_entered_twice() -> None:
    # A task holding a claim can never go back to CLAIMING, nor to SUBMITTING but from APPROVED. The one way back
    # to CLAIMING is from SUBMITTED: the DAO rejected the submission, which reopened the task on the board (our
    # claim is gone), and the agent claims it again to revise. FAILED goes back only by an operator's retry, which
    # checks the board first; and the claim and submit steps then resolve from the chain before sending, as after
    # a crash (a task they did not just move is never sent blindly).
    for s in TaskState:
        if s not in {S.DISCOVERED, S.SUBMITTED, S.FAILED}:
            assert S.CLAIMING not in TRANSITIONS[s]
        if s not in {S.APPROVED, S.FAILED}:
            assert S.SUBMITTING not in TRANSITIONS[s]


def test_only_a_review_approves_or_sends_a_reviewed_task_back() -> None:
    from orchestrator.domain.review import DECISION_TARGETS, is_review_decision

    decided = {(b, t) for b, targets in TRANSITIONS.items() for t in targets if is_review_decision(b, t)}
    assert decided == {
        (TaskState.PRODUCED, TaskState.APPROVED),
        (TaskState.AWAITING_REVIEW, TaskState.APPROVED),
        (TaskState.AWAITING_REVIEW, TaskState.PRODUCING),
    }
    # every decision's target from AWAITING_REVIEW except giving up is one of them
    assert {t for t in DECISION_TARGETS.values() if t is not TaskState.ABANDONED} == {
        TaskState.APPROVED,
        TaskState.PRODUCING,
    }

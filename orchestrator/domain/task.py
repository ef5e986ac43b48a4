"""``Task``: a task as the orchestrator works on it, whatever stores it. A frozen value: a change is a new ``Task``
returned by the repository that made it (``orchestrator.ports.repos.Tasks``). Pure (standard library + pydantic
through ``TaskSpec``); the SQL adapter maps its rows to it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import TaskSpec


class RunStatus(enum.StrEnum):
    """How an agent run ended."""

    PRODUCED = "produced"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the process died during the run: usage and cost recovered from the spend ledger


@dataclass(frozen=True, slots=True)
class Task:
    """One task of one board, with where it is in the lifecycle.

    ``id`` is ours; ``task_key`` is the task's key on ``board`` (text: boards number or name their tasks as they
    like). ``spec`` is the parsed spec, None exactly when it was quarantined. ``version`` is bumped by every
    change: pass it as ``expect_version`` to a repository write so that a task another worker moved meanwhile is
    not moved again. ``retry_at``/``wait_reason``/``retries`` say that the current step waits after a passing
    fault (cleared by the next transition).
    """

    id: int
    board: str
    task_key: str
    spec_cid: str
    spec: TaskSpec | None
    title: str | None
    token: str
    reward: int  # token base units
    deadline: int  # unix seconds
    state: TaskState
    state_reason: str | None
    agent_name: str | None
    claim_tx_hash: str | None
    submit_tx_hash: str | None
    artifact_cid: str | None  # the current artifact
    revision_count: int
    wait_reason: str | None
    retry_at: datetime | None
    retries: int
    created_at: datetime
    updated_at: datetime
    version: int

"""The task-board port. Standard library and the domain only."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from orchestrator.domain.board import BoardTask, Payout, Rejection
from orchestrator.domain.specs import TaskSpec
from orchestrator.ports.chain import Receipt, Signer

#: What an agent does on a board that costs gas and must never happen twice.
BoardAction = Literal["claim", "submit"]


@runtime_checkable
class TaskBoard(Protocol):
    """A DAO task board. Adapters: ``OnchainTaskBoard`` (our TaskBoard contract)."""

    name: str

    def poll(self, cursor: int) -> tuple[list[BoardTask], int]:
        """Tasks posted since ``cursor`` (an opaque resume point), specs not read yet, and the next cursor."""
        ...

    def read_spec(self, task: BoardTask) -> TaskSpec:
        """Fetch and validate the spec of a task ``poll`` returned. ``SpecError`` (with the reason) quarantines
        the task; a retryable error means the spec may be readable later. Reading is a step of its own so that
        the caller can mark the task first: a spec that crashes the reader must not be read again."""
        ...

    def status(self, task_id: int) -> BoardTask:
        """The task as the board sees it now."""
        ...

    def claim(self, task_id: int, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        """Claim the task for ``wallet``'s address (pointless after ``expires_at``, chain time)."""
        ...

    def release(self, task_id: int, *, wallet: Signer) -> Receipt: ...

    def submit(self, task_id: int, artifact_cid: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        """Deliver ``artifact_cid`` (pointless after ``expires_at``, chain time)."""
        ...

    def payouts(self, cursor: int) -> tuple[list[Payout], int]:
        """Rewards paid since ``cursor``, and the next cursor."""
        ...

    def rejection(self, task_id: int, *, from_block: int) -> Rejection | None:
        """The latest rejection of the task's submission since ``from_block`` (None: none)."""
        ...

    def action_tx(self, task_id: int, action: BoardAction, *, actor: str, from_block: int) -> str | None:
        """The transaction in which ``actor`` last made ``action`` on the task since ``from_block`` (None: none).
        Lets a restarted service attribute the gas of a claim or submission it finds confirmed on the board."""
        ...

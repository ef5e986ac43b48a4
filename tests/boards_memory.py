"""``MemoryBoard``: a second, small kind of board, in memory, for the board port's conformance suite.

It shows what adding a kind of board takes: this module and one line in ``orchestrator.adapters.boards.registry``
(``KINDS["memory"] = "tests.boards_memory:from_settings"``, which the suite adds for its run). Unlike the TaskBoard,
its keys are not numbers ("t100", "t101", ...), its cursor counts events (not blocks), and a rejection closes the
task instead of reopening it, so the suite's checks cannot rely on the TaskBoard's choices. The DAO's side
(``post``, ``approve``, ``reject``) is plain methods: there is no chain under it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from orchestrator.adapters.boards.registry import BoardSettings
from orchestrator.domain.board import BoardPhase, BoardTask, Payout, Rejection
from orchestrator.domain.errors import ClaimGone, TaskNotFound, TaskTaken
from orchestrator.domain.specs import TaskSpec, parse_spec
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.board import BoardAction, BoardCall, BoardCapabilities
from orchestrator.ports.chain import Chain, Receipt, Signer


@dataclass
class _Event:
    kind: str  # posted | paid | rejected | claim | submit
    key: str
    actor: str = ""
    amount: int = 0
    reason: str = ""
    tx_hash: str = ""


class MemoryBoard:
    """Tasks, holds and payments in memory; every change is an event, and a cursor is an event count."""

    capabilities = BoardCapabilities(reopens_on_rejection=False, block_cursors=False)

    def __init__(self, *, name: str, store: ArtifactStore, token: str, max_spec_bytes: int = 262_144) -> None:
        self.name = name
        self.store = store
        self.token = token
        self.max_spec_bytes = max_spec_bytes
        self._tasks: dict[str, BoardTask] = {}
        self._events: list[_Event] = []

    # --------------------------------------------------------------------------------------- the DAO's side

    def post(self, spec_cid: str, *, reward: int, deadline: int, poster: str) -> str:
        key = f"t{100 + len(self._tasks)}"
        self._tasks[key] = BoardTask(
            board=self.name, key=key, poster=poster, token=self.token, reward=reward, deadline=deadline,
            reviewer=poster, spec_cid=spec_cid, phase=BoardPhase.OPEN, status_text="open",
        )  # fmt: skip
        self._event("posted", key, poster)
        return key

    def approve(self, key: str) -> str:
        task = self._get(key, BoardPhase.DELIVERED)
        assert task.claimant is not None
        self._tasks[key] = replace(task, phase=BoardPhase.SETTLED, status_text="paid")
        return self._event("paid", key, task.claimant, amount=task.reward).tx_hash

    def reject(self, key: str, reason: str) -> None:
        task = self._get(key, BoardPhase.DELIVERED)
        self._tasks[key] = replace(task, phase=BoardPhase.CLOSED, status_text="rejected")
        self._event("rejected", key, task.reviewer, reason=reason)

    # ----------------------------------------------------------------------------------------- the port

    def calls(self) -> Sequence[BoardCall]:
        return []  # no contract: a wallet calls nothing here

    def first_cursor(self, start_block: int) -> str:
        return "0"  # no blocks here: the first event

    def poll(self, cursor: str) -> tuple[list[BoardTask], str]:
        start = int(cursor)
        posted = [self._tasks[e.key] for e in self._events[start:] if e.kind == "posted"]
        return [replace(t, phase=BoardPhase.OPEN, status_text="open") for t in posted], str(len(self._events))

    def read_spec(self, task: BoardTask) -> TaskSpec:
        raw = self.store.get_bytes(task.spec_cid, max_bytes=self.max_spec_bytes)
        return parse_spec(raw, max_bytes=self.max_spec_bytes)

    def status(self, key: str) -> BoardTask:
        if key not in self._tasks:
            raise TaskNotFound(f"board {self.name!r} has no task {key[:80]!r}")
        return self._tasks[key]

    def claim(self, key: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        task = self.status(key)
        if task.phase is not BoardPhase.OPEN:
            raise TaskTaken(f"task {key} is {task.status_text}")
        self._tasks[key] = replace(
            task, phase=BoardPhase.HELD, status_text="claimed", claimant=wallet.address, claim_expires=task.deadline
        )
        return self._receipt(self._event("claim", key, wallet.address))

    def release(self, key: str, *, wallet: Signer) -> Receipt:
        task = self._held_by(key, wallet)
        self._tasks[key] = replace(task, phase=BoardPhase.OPEN, status_text="open", claimant=None, claim_expires=0)
        return self._receipt(self._event("release", key, wallet.address))

    def deliver(self, key: str, artifact_cid: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        task = self._held_by(key, wallet)
        self._tasks[key] = replace(task, phase=BoardPhase.DELIVERED, status_text="delivered", artifact_cid=artifact_cid)
        return self._receipt(self._event("submit", key, wallet.address))

    def payouts(self, cursor: str) -> tuple[list[Payout], str]:
        paid = [
            Payout(self.name, e.key, e.actor, self.token, e.amount, e.tx_hash, n)
            for n, e in enumerate(self._events)
            if n >= int(cursor) and e.kind == "paid"
        ]
        return paid, str(len(self._events))

    def rejection(self, key: str, *, since: str) -> Rejection | None:
        for e in reversed(self._events[int(since) :]):
            if e.kind == "rejected" and e.key == key:
                return Rejection(self.name, key, e.actor, e.reason, e.tx_hash)
        return None

    def action_tx(self, key: str, action: BoardAction, *, actor: str, since: str) -> str | None:
        for e in reversed(self._events[int(since) :]):
            if e.kind == action and e.key == key and e.actor.lower() == actor.lower():
                return e.tx_hash
        return None

    # ----------------------------------------------------------------------------------------- helpers

    def _get(self, key: str, phase: BoardPhase) -> BoardTask:
        task = self.status(key)
        assert task.phase is phase, f"task {key} is {task.status_text}"
        return task

    def _held_by(self, key: str, wallet: Signer) -> BoardTask:
        task = self.status(key)
        if task.phase is not BoardPhase.HELD or (task.claimant or "").lower() != wallet.address.lower():
            raise ClaimGone(f"task {key} is not held by {wallet.address}")
        return task

    def _event(self, kind: str, key: str, actor: str, *, amount: int = 0, reason: str = "") -> _Event:
        tx_hash = "0x" + hashlib.sha256(f"{len(self._events)}:{kind}:{key}".encode()).hexdigest()
        event = _Event(kind, key, actor, amount, reason, tx_hash)
        self._events.append(event)
        return event

    def _receipt(self, event: _Event) -> Receipt:
        return Receipt(
            tx_hash=event.tx_hash, block_number=len(self._events), status=1, gas_used=0, effective_gas_price=0
        )


def from_settings(settings: BoardSettings, chain: Chain, artifacts: ArtifactStore) -> MemoryBoard:
    """The registry's factory for ``kind: memory`` (the token is the entry's ``options["token"]``)."""
    return MemoryBoard(
        name=settings.name,
        store=artifacts,
        token=str(settings.options["token"]),
        max_spec_bytes=settings.max_spec_bytes,
    )

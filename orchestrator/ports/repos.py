"""The repositories the application keeps its state in, one port per concern: ``Tasks`` (discovery, version-checked
transitions, waits, spec-read marks, board-driven imports), ``Runs`` (agent runs and their artifacts), ``Reviews``
(decisions, including the automatic gate and the DAO's rejection), ``Ledger`` (rewards, costs), ``Cursors``
(boards and where their reading stopped) and ``Agents``. The SQL adapter (``orchestrator.adapters.sql``)
implements each (``repositories(engine)``).

Tasks are the domain ``Task``. Other records are read through the small read-only protocols below (what the
application reads of them); inputs are protocols too, so the application builds them from its own values.

Shared rules: every write that moves a task takes ``expect_version`` (the ``Task.version`` it decided on) and
raises ``Conflict`` when another worker moved it first; writes meant to be repeated after a crash are
idempotent (discovery per board and task key, rewards per board and task key, gas per transaction hash), and
return whether they were new. Standard library and domain types only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from orchestrator.domain.board import BoardTask, Payout
from orchestrator.domain.ledger import CostKind
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.review import ReviewDecision, SelfCheck
from orchestrator.domain.task import RunStatus, Task

# ------------------------------------------------------------------------------------------- records, read-only


class SpecReadMark(Protocol):
    """A task's spec-read mark as it was before ``begin_spec_read``: ``reading`` means an earlier read died."""

    @property
    def attempts(self) -> int: ...
    @property
    def reading(self) -> bool: ...
    @property
    def last_error(self) -> str | None: ...


class TaskEventRecord(Protocol):
    """One line of a task's history."""

    @property
    def from_state(self) -> TaskState | None: ...
    @property
    def to_state(self) -> TaskState: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def actor(self) -> str: ...
    @property
    def tx_hash(self) -> str | None: ...
    @property
    def cid(self) -> str | None: ...
    @property
    def at(self) -> datetime: ...


class NewRun(Protocol):
    """A finished agent run to record (its attempt number is assigned by the repository)."""

    @property
    def task_id(self) -> int: ...
    @property
    def agent(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def finished_at(self) -> datetime: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def cost_usd_micro(self) -> int: ...
    @property
    def error(self) -> str | None: ...


class RunRecord(NewRun, Protocol):
    """A recorded run."""

    @property
    def id(self) -> int: ...
    @property
    def attempt(self) -> int: ...


class ReviewRecord(Protocol):
    """A decision on one artifact of a task."""

    @property
    def task_id(self) -> int: ...
    @property
    def artifact_cid(self) -> str: ...
    @property
    def decision(self) -> ReviewDecision: ...
    @property
    def feedback(self) -> str | None: ...
    @property
    def reviewer(self) -> str: ...
    @property
    def at(self) -> datetime: ...


class RewardRecord(Protocol):
    """A payout a board made, as recorded (``task_id`` None for a payout to our address on a task not ours)."""

    @property
    def id(self) -> int: ...
    @property
    def board(self) -> str: ...
    @property
    def task_key(self) -> str: ...
    @property
    def task_id(self) -> int | None: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def recipient(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def tx_hash(self) -> str: ...
    @property
    def block_number(self) -> int: ...


class CostRecord(Protocol):
    """A cost: gas in wei (with its transaction) or LLM usage in micro-USD."""

    @property
    def task_id(self) -> int | None: ...
    @property
    def agent(self) -> str: ...
    @property
    def kind(self) -> CostKind: ...
    @property
    def amount(self) -> int: ...
    @property
    def tx_hash(self) -> str | None: ...


class BoardCursors(Protocol):
    """A registered board and where its reading stopped: the cursors and the block hashes they were saved with."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def poll_cursor(self) -> str | None: ...
    @property
    def payout_cursor(self) -> str | None: ...
    @property
    def poll_cursor_hash(self) -> str | None: ...
    @property
    def payout_cursor_hash(self) -> str | None: ...
    @property
    def checkpoints(self) -> Sequence[Sequence[int | str]] | None: ...


class AgentProfile(Protocol):
    """An agent as registered: its name (the key), its wallet's address, skills, whether it takes work."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def skills(self) -> Sequence[str]: ...
    @property
    def enabled(self) -> bool: ...


# ------------------------------------------------------------------------------------------------- the ports


@runtime_checkable
class Tasks(Protocol):
    """Tasks found on boards and their lifecycle."""

    def begin_spec_read(self, *, board: str, task_key: str) -> SpecReadMark:
        """Mark the task's spec as being read, durably; returns the mark as it was before."""
        ...

    def spec_read_failed(self, *, board: str, task_key: str, error: str) -> None:
        """The read ended without a verdict: the task is read again next poll."""
        ...

    def end_spec_read(self, *, board: str, task_key: str) -> None:
        """Clear the mark of a task now stored."""
        ...

    def upsert_discovered(self, *, board_task: BoardTask, actor: str = ...) -> tuple[Task, bool]:
        """Store a task seen on a board (QUARANTINED at once when its spec was); returns it and whether it is new."""
        ...

    def get_task(self, *, task_id: int) -> Task:
        """The task; ``RecordNotFound`` if there is none."""
        ...

    def find_task(self, *, board: str, task_key: str) -> Task | None:
        """The task ``board`` knows as ``task_key``, or None."""
        ...

    def tasks(self, *, state: TaskState | None = None) -> list[Task]:
        """All tasks, or those in ``state``, oldest first."""
        ...

    def resumable(self) -> list[Task]:
        """Tasks in a non-terminal state, oldest first."""
        ...

    def task_events(self, *, task_id: int) -> Sequence[TaskEventRecord]:
        """The task's history, in order."""
        ...

    def transition(
        self,
        *,
        task_id: int,
        to: TaskState,
        actor: str,
        reason: str | None = None,
        tx_hash: str | None = None,
        cid: str | None = None,
        agent: str | None = None,
        expect_version: int | None = None,
        gas_wei: int | None = None,
        via: TaskState | None = None,
    ) -> Task:
        """Move a task to ``to`` (through ``via`` first, if given) with its event, atomically; ``gas_wei`` is
        recorded as the agent's gas cost of ``tx_hash`` in the same transaction. ``LifecycleError`` for a move the
        table forbids, ``Conflict`` when not at ``expect_version``, ``ReviewRefused`` for a review's move."""
        ...

    def wait(self, *, task_id: int, reason: str, retry_at: datetime, expect_version: int | None = None) -> Task:
        """The current step failed with a passing fault: not tried again before ``retry_at``."""
        ...

    def import_submitted(
        self, *, task_id: int, agent: str, artifact_cid: str, reason: str, expect_version: int | None = None
    ) -> Task:
        """DISCOVERED -> SUBMITTED for a task the board shows submitted by one of our wallets. Nothing is sent."""
        ...


@runtime_checkable
class Runs(Protocol):
    """Agent runs and what they produced."""

    def record_run(self, *, run: NewRun, spend_key: str | None = None) -> RunRecord:
        """Record a finished run and its LLM cost (attributed from the spend ledger's total for ``spend_key``)."""
        ...

    def settle_unrecorded_run(self, *, task_id: int, spend_key: str, agent: str) -> RunRecord | None:
        """Record the usage the spend ledger holds beyond the task's runs as an INTERRUPTED run, or None."""
        ...

    def record_produced(
        self,
        *,
        run: NewRun,
        cid: str,
        manifest: dict[str, Any],
        self_check: SelfCheck,
        actor: str,
        expect_version: int | None = None,
        spend_key: str | None = None,
    ) -> Task:
        """A successful run, its artifact and PRODUCING -> PRODUCED, in one transaction."""
        ...


@runtime_checkable
class Reviews(Protocol):
    """Decisions on tasks' artifacts. ``max_revisions`` caps the changes reviewers may request on one task."""

    max_revisions: int

    def auto_review(
        self,
        *,
        task_id: int,
        approve: Collection[SelfCheck],
        reason: str,
        reviewer: str = ...,
        actor: str = ...,
        expect_version: int | None = None,
    ) -> Task:
        """The review gate of a PRODUCED task: approved when its self-check is in ``approve``, else
        AWAITING_REVIEW with ``reason``."""
        ...

    def rework_rejected(self, *, task_id: int, reviewer: str, reason: str, expect_version: int | None = None) -> Task:
        """The DAO rejected the submission: a change request on it and SUBMITTED -> CLAIMING (a revision)."""
        ...

    def reviews(self, *, task_id: int) -> Sequence[ReviewRecord]:
        """Every decision on the task, oldest first."""
        ...


@runtime_checkable
class Ledger(Protocol):
    """Money in (rewards) and out (gas, LLM usage)."""

    def record_reward(self, *, payout: Payout, actor: str = ...) -> tuple[RewardRecord, bool]:
        """Record a payout (SUBMITTED -> PAID with it); returns it and whether it is new."""
        ...

    def rewards(self, *, from_block: int = 0) -> Sequence[RewardRecord]:
        """Recorded payouts mined in ``from_block`` or later, oldest first."""
        ...

    def uncredit_reward(self, *, reward_id: int, reason: str, actor: str = ...) -> Task | None:
        """A payout a reorg removed: its reward goes and its task moves PAID -> SUBMITTED, in one transaction."""
        ...

    def record_cost(
        self,
        *,
        agent: str,
        kind: CostKind,
        amount: int,
        task_id: int | None = None,
        tx_hash: str | None = None,
    ) -> tuple[CostRecord, bool]:
        """Record a cost (gas: idempotent per ``tx_hash``); returns it and whether it is new."""
        ...


@runtime_checkable
class Cursors(Protocol):
    """Boards and where their reading stopped. A cursor is the board adapter's text; block-number cursors never
    move backwards unless ``rewind``."""

    def ensure_board(self, *, name: str, kind: str) -> BoardCursors:
        """The board, registered without cursors if it was not."""
        ...

    def board(self, *, name: str) -> BoardCursors | None:
        """The board with its cursors, or None."""
        ...

    def set_poll_cursor(self, *, board: str, cursor: str, block_hash: str | None = None, rewind: bool = False) -> str:
        """Save where to poll for tasks next (with the hash of the block before it); returns the stored cursor."""
        ...

    def set_payout_cursor(self, *, board: str, cursor: str, block_hash: str | None = None, rewind: bool = False) -> str:
        """Save where to poll for payouts next (see ``set_poll_cursor``)."""
        ...


@runtime_checkable
class Agents(Protocol):
    """The fleet's agents, by name."""

    def upsert_agent(self, *, agent: AgentProfile) -> AgentProfile:
        """Create the agent, or update its address, skills and enabled flag."""
        ...

    def agents(self, *, enabled_only: bool = False) -> Sequence[AgentProfile]:
        """Registered agents by name."""
        ...


@dataclass(frozen=True, slots=True)
class Repositories:
    """Every repository the application works through, one per concern (the SQL adapter's ``repositories()``
    builds them over one database)."""

    tasks: Tasks
    runs: Runs
    reviews: Reviews
    ledger: Ledger
    cursors: Cursors
    agents: Agents


@dataclass(frozen=True, slots=True)
class RunValues:
    """A finished agent run to record (``NewRun``)."""

    task_id: int
    agent: str
    started_at: datetime
    finished_at: datetime
    status: RunStatus
    prompt_tokens: int
    completion_tokens: int
    cost_usd_micro: int
    error: str | None


@dataclass(frozen=True, slots=True)
class AgentValues:
    """An agent to register (``AgentProfile``)."""

    name: str
    address: str
    skills: Sequence[str]
    enabled: bool = True

"""What every SQL repository shares: the engine, the clock and settings, transactions whose errors become the
store's exception tree, and the guarded writes on a ``task`` row (every repository that moves a task moves it
here: one checked transition, one version bump, one event, in the caller's transaction).

Each change to a task updates its row and appends a ``task_event`` row in the same transaction. The update is
guarded by the row's ``version`` (optimistic locking) on top of the row lock taken when the task is read
(``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two workers can never both move a
task: pass ``expect_version`` (the version you decided on) and the loser gets ``Conflict``.

Commits that precede a side effect (CLAIMING, SUBMITTING, cursors, review decisions, exits) wait for the disk; those
the orchestrator re-derives after a power loss (``REDERIVABLE_STATES``, runs, artifacts, gas, discovered tasks and
payouts before their cursor) skip the fsync (``db.relax``); a process crash loses neither.

Repositories return the task as their ``task_out`` maps the row (the domain ``Task`` for the ports, ``TaskPublic``
for the entry layer's ``Store``) and other records as ``XPublic`` models, detached from any session.
Must not import the orchestrator's services or any adapter other than SQLAlchemy/SQLModel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from orchestrator.adapters.sql.db import insert_of, transaction, translate
from orchestrator.adapters.sql.errors import Conflict, RecordNotFound, ReviewRefused, StaleReview, StoreError
from orchestrator.adapters.sql.models import Cost, CostKind, EventKind, TaskEvent, TaskPublic
from orchestrator.adapters.sql.models import Task as TaskRow
from orchestrator.domain.lifecycle import TaskState, check_transition
from orchestrator.domain.review import is_review_decision
from orchestrator.domain.specs import TaskSpec
from orchestrator.domain.task import Task

log = logging.getLogger(__name__)

S = TaskState

#: What a repository returns for a task: the domain ``Task`` or the entry layer's ``TaskPublic``.
T = TypeVar("T")

#: States whose entry the orchestrator re-derives if a power loss drops it, so their commit skips the fsync:
#: CLAIMED and SUBMITTED from the board (a CLAIMING/SUBMITTING task is resolved from the chain), PRODUCING and
#: PRODUCED by running the agent again. States entered before a side effect (CLAIMING, SUBMITTING), the review
#: states (a human's decision) and the exits stay durable. A later durable commit makes earlier ones durable too.
REDERIVABLE_STATES = frozenset({S.CLAIMED, S.PRODUCING, S.PRODUCED, S.SUBMITTED})
_CLAIM_TX_STATES = frozenset({S.CLAIMING, S.CLAIMED})
_SUBMIT_TX_STATES = frozenset({S.SUBMITTING, S.SUBMITTED})


def usd(micro: int) -> str:
    """Micro-USD as dollars for a log line: 16200 -> 0.0162."""
    return f"{Decimal(micro) / 1_000_000:f}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def task_from_row(row: TaskRow) -> Task:
    """The domain ``Task`` of a row; its spec parsed once, here (it was validated when the task was stored)."""
    assert row.id is not None
    return Task(
        id=row.id,
        board=row.board,
        task_key=row.task_key,
        spec_cid=row.spec_cid,
        spec=None if row.spec is None else TaskSpec.model_validate(row.spec),
        title=row.title,
        token=row.token,
        reward=row.reward,
        deadline=row.deadline,
        state=TaskState(row.state),
        state_reason=row.state_reason,
        agent_name=row.agent_name,
        claim_tx_hash=row.claim_tx_hash,
        submit_tx_hash=row.submit_tx_hash,
        artifact_cid=row.artifact_cid,
        revision_count=row.revision_count,
        wait_reason=row.wait_reason,
        retry_at=row.retry_at,
        retries=row.retries,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def public_from_row(row: TaskRow) -> TaskPublic:
    """The entry layer's read model of a row."""
    return TaskPublic.model_validate(row)


class SqlRepository(Generic[T]):
    """One concern's repository over an ``Engine`` (see the module docstring).

    ``max_revisions`` caps how many times reviewers may request changes on one task; ``clock`` gives the time
    written into rows (tests pass a fake one); ``amount_text`` writes a token amount into reasons people read
    (the bootstrap passes ``TokenBook.format``: ``30 DWR``; without it, base units and the token's address).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        task_out: Callable[[TaskRow], T],
        max_revisions: int = 3,
        clock: Callable[[], datetime] = utcnow,
        amount_text: Callable[[int, str], str] | None = None,
    ) -> None:
        self._engine = engine
        self._out = task_out
        self.max_revisions = max_revisions
        self._clock = clock
        self.amount_text = amount_text or (lambda amount, token: f"{amount} base units of {token}")

    @property
    def engine(self) -> Engine:
        """The engine the repository writes through (the web app's aggregate queries read the same database)."""
        return self._engine

    @contextmanager
    def _transaction(self, doing: str, *, durable: bool = True, reads_only: bool = False) -> Iterator[Session]:
        """``db.transaction``, its errors translated into the store's (``doing`` says what failed)."""
        try:
            with transaction(self._engine, durable=durable, reads_only=reads_only) as session:
                yield session
        except SQLAlchemyError as exc:
            raise translate(exc, doing=doing) from exc
        except OverflowError as exc:  # sqlite3 refuses an int beyond 64 bits before SQLAlchemy sees the statement
            raise StoreError(f"{doing}: a number is too large for the database ({exc})") from exc

    @staticmethod
    def _task(s: Session, task_id: int, *, lock: bool = False) -> TaskRow:
        query = select(TaskRow).where(col(TaskRow.id) == task_id)
        task = s.exec(query.with_for_update() if lock else query).one_or_none()
        if task is None:
            raise RecordNotFound(f"no task with id {task_id}", hint="list tasks with `deworker tasks`")
        return task

    def _locked(self, s: Session, task_id: int, expect_version: int | None) -> TaskRow:
        """The task, row-locked, checked to be at ``expect_version`` (if given)."""
        task = self._task(s, task_id, lock=True)
        if expect_version is not None and task.version != expect_version:
            raise Conflict(
                f"task {task_id} is at version {task.version} ({task.state}), not {expect_version}: "
                "another worker changed it first",
                hint="reload the task and decide again; do not retry blindly",
            )
        return task

    def _move(
        self,
        s: Session,
        task: TaskRow,
        to: TaskState,
        actor: str,
        reason: str | None = None,
        *,
        tx_hash: str | None = None,
        cid: str | None = None,
        agent: str | None = None,
    ) -> None:
        """One checked transition of a task locked in ``s``, with its event (see ``SqlTasks.transition``)."""
        assert task.id is not None
        before = task.state
        check_transition(before, to)
        if is_review_decision(before, to):
            raise ReviewRefused(
                f"task {task.id}: {before} -> {to} is a review decision",
                hint="decide with `deworker review approve`, `request-changes` or `reject` (or the review web app), "
                "which bind the decision to the artifact CID and the reviewer",
            )
        if to in _SUBMIT_TX_STATES and cid is not None and cid != task.artifact_cid:
            raise StaleReview(
                f"task {task.id}: submitting {cid}, but the approved artifact is {task.artifact_cid}",
                hint="submit the task's artifact_cid: only that one was approved",
            )
        values: dict[str, Any] = {"state": to, "state_reason": reason}
        if agent is not None:
            values["agent_name"] = agent
        if tx_hash is not None and to in _CLAIM_TX_STATES:
            values["claim_tx_hash"] = tx_hash
        if tx_hash is not None and to in _SUBMIT_TX_STATES:
            values["submit_tx_hash"] = tx_hash
        self._guarded_update(s, task, values)
        s.add(self._event(task.id, EventKind.TRANSITION, before, to, actor, reason, tx_hash=tx_hash, cid=cid))

    def _add_gas(self, s: Session, task: TaskRow, *, amount: int, tx_hash: str) -> None:
        """The task's agent's gas cost of ``tx_hash``, unless that hash has one already (then a differing amount is
        logged, not raised: the step it is recorded with must not fail for it)."""
        if task.agent_name is None:
            raise StoreError(f"task {task.id} has no agent to charge the gas of {tx_hash} to")
        row = {
            "task_id": task.id,
            "agent": task.agent_name,
            "kind": CostKind.GAS,
            "amount": amount,
            "tx_hash": tx_hash,
            "at": self._clock(),
        }
        result = s.connection().execute(insert_of(s, Cost).values(**row).on_conflict_do_nothing())
        if result.rowcount == 1:
            return
        existing = s.exec(select(Cost).where(col(Cost.tx_hash) == tx_hash)).one()
        if (existing.agent, existing.kind, existing.amount, existing.task_id) != (
            task.agent_name,
            CostKind.GAS,
            amount,
            task.id,
        ):
            log.warning(
                "gas of %s was already recorded differently (%s wei for %r); kept that record",
                tx_hash,
                existing.amount,
                existing.agent,
            )

    def _guarded_update(self, s: Session, task: TaskRow, values: dict[str, Any]) -> None:
        """Apply ``values`` to the task only if nobody changed it since it was read; bump its version. ``task``
        then shows the new values (as stored: the session does not write them again)."""
        assert task.id is not None
        if "state" in values:  # a step that moved on no longer waits
            values = {"wait_reason": None, "retry_at": None, "retries": 0, **values}
        values = {**values, "version": task.version + 1, "updated_at": self._clock()}
        result = s.connection().execute(
            update(TaskRow).where(col(TaskRow.id) == task.id, col(TaskRow.version) == task.version).values(**values)
        )
        if result.rowcount != 1:
            raise Conflict(
                f"task {task.id} changed while this worker was updating it",
                hint="reload the task and decide again; do not retry blindly",
            )
        for key, value in values.items():
            set_committed_value(task, key, value)

    def _event(
        self,
        task_id: int,
        kind: EventKind,
        from_state: TaskState | None,
        to_state: TaskState,
        actor: str,
        reason: str | None = None,
        *,
        tx_hash: str | None = None,
        cid: str | None = None,
    ) -> TaskEvent:
        return TaskEvent(
            task_id=task_id,
            kind=kind,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            actor=actor,
            tx_hash=tx_hash,
            cid=cid,
            at=self._clock(),
        )

"""``SqlTasks``: tasks found on boards and their lifecycle (``orchestrator.ports.repos.Tasks``): discovery
(idempotent per board and task key), spec-read marks, version-checked transitions, waits after passing faults, and
the board-driven imports. See ``base`` for the guarded writes and durability.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from orchestrator.adapters.sql.base import REDERIVABLE_STATES, S, SqlRepository, T
from orchestrator.adapters.sql.errors import DuplicateRecord, StoreError
from orchestrator.adapters.sql.models import EventKind, SpecRead, SpecReadPublic, TaskEvent, TaskEventPublic
from orchestrator.adapters.sql.models import Task as TaskRow
from orchestrator.domain.board import BoardTask
from orchestrator.domain.lifecycle import TERMINAL_STATES, TaskState, check_transition


class SqlTasks(SqlRepository[T]):
    """The ``task`` table and its events."""

    def begin_spec_read(self, *, board: str, task_key: str) -> SpecReadPublic:
        """Mark the task's spec as being read (durably: the mark must outlive a crash during the read). Returns the
        mark as it was before: ``reading`` set means an earlier read never finished — the process died in it."""
        with self._transaction(f"marking the spec of task {board}/{task_key} as being read") as s:
            row = s.get(SpecRead, (board, task_key))
            if row is None:
                row = SpecRead(board=board, task_key=task_key, updated_at=self._clock())
                s.add(row)
            before = SpecReadPublic(attempts=row.attempts, reading=row.reading, last_error=row.last_error)
            row.attempts += 1
            row.reading = True
            row.updated_at = self._clock()
            return before

    def spec_read_failed(self, *, board: str, task_key: str, error: str) -> None:
        """The read ended without a verdict (the store may answer later): the task is read again next poll."""
        with self._transaction(f"recording a failed read of task {board}/{task_key}'s spec") as s:
            row = s.get(SpecRead, (board, task_key))
            if row is not None:
                row.reading = False
                row.last_error = error
                row.updated_at = self._clock()

    def end_spec_read(self, *, board: str, task_key: str) -> None:
        """Clear the ``begin_spec_read`` mark of a task now stored (a mark left by a crash just before this is
        harmless: a stored task's spec is never read again)."""
        with self._transaction(f"clearing the spec-read mark of task {board}/{task_key}", durable=False) as s:
            row = s.get(SpecRead, (board, task_key))
            if row is not None:
                s.delete(row)

    def upsert_discovered(self, *, board_task: BoardTask, actor: str = "poller") -> tuple[T, bool]:
        """Store a task seen on a board; returns it and whether it is new. Seeing it again changes nothing.

        A task whose spec was quarantined is stored and moved to QUARANTINED with the reason, in one transaction.
        """
        bt = board_task
        now = self._clock()
        task = TaskRow(
            board=bt.board,
            task_key=bt.key,
            title=bt.spec.title if bt.spec else None,
            spec_cid=bt.spec_cid,
            spec=bt.spec.model_dump(mode="json", by_alias=True) if bt.spec else None,
            token=bt.token,
            reward=bt.reward,
            deadline=bt.deadline,
            state=S.DISCOVERED,
            created_at=now,
            updated_at=now,
        )
        try:
            # not durable: the poll cursor saved after it is, and a lost task is polled again from the older cursor
            with self._transaction(f"storing task {bt.board}/{bt.key}", durable=False) as s:
                existing = s.exec(
                    select(TaskRow).where(col(TaskRow.board) == bt.board, col(TaskRow.task_key) == bt.key)
                ).one_or_none()
                if existing is not None:
                    return self._out(existing), False
                s.add(task)
                s.flush()
                assert task.id is not None
                s.add(self._event(task.id, EventKind.DISCOVERED, None, S.DISCOVERED, actor=actor, cid=bt.spec_cid))
                if bt.quarantine_reason is not None:
                    check_transition(S.DISCOVERED, S.QUARANTINED)
                    task.state = S.QUARANTINED
                    task.state_reason = bt.quarantine_reason
                    task.version += 1
                    s.add(
                        self._event(
                            task.id, EventKind.TRANSITION, S.DISCOVERED, S.QUARANTINED, actor, bt.quarantine_reason
                        )
                    )
                return self._out(task), True
        except DuplicateRecord:
            # another worker stored it between our read and our insert: theirs is the one
            raced = self.find_task(board=bt.board, task_key=bt.key)
            if raced is None:
                raise
            return raced, False

    def get_task(self, *, task_id: int) -> T:
        """The task with this id; ``RecordNotFound`` if there is none."""
        with self._transaction(f"reading task {task_id}", reads_only=True) as s:
            return self._out(self._task(s, task_id))

    def find_task(self, *, board: str, task_key: str) -> T | None:
        """The task a board knows as ``task_key``, or None."""
        with self._transaction(f"reading task {board}/{task_key}", reads_only=True) as s:
            task = s.exec(
                select(TaskRow).where(col(TaskRow.board) == board, col(TaskRow.task_key) == task_key)
            ).one_or_none()
            return None if task is None else self._out(task)

    def tasks(self, *, state: TaskState | None = None) -> list[T]:
        """All tasks, or those in ``state``, oldest first."""
        query = select(TaskRow).order_by(col(TaskRow.id))
        if state is not None:
            query = query.where(col(TaskRow.state) == state)
        with self._transaction("listing tasks", reads_only=True) as s:
            return [self._out(t) for t in s.exec(query)]

    def resumable(self) -> list[T]:
        """Tasks in a non-terminal state, oldest first: what a restarted orchestrator picks up again."""
        with self._transaction("listing resumable tasks", reads_only=True) as s:
            query = select(TaskRow).where(col(TaskRow.state).not_in(TERMINAL_STATES)).order_by(col(TaskRow.id))
            return [self._out(t) for t in s.exec(query)]

    def wait(self, *, task_id: int, reason: str, retry_at: datetime, expect_version: int | None = None) -> T:
        """Record that the task's current step failed with a fault that passes by itself: it is not tried again
        before ``retry_at``, and ``reason`` says why it waits. The state does not change; the next transition
        clears the wait. Raises ``Conflict`` if the task moved meanwhile."""
        with self._transaction(f"recording why task {task_id} waits", durable=False) as s:
            task = self._locked(s, task_id, expect_version)
            values = {"wait_reason": reason, "retry_at": retry_at, "retries": task.retries + 1}
            self._guarded_update(s, task, values)
            return self._out(task)

    def task_events(self, *, task_id: int) -> list[TaskEventPublic]:
        """The task's history, in the order it happened."""
        with self._transaction(f"reading events of task {task_id}", reads_only=True) as s:
            query = select(TaskEvent).where(col(TaskEvent.task_id) == task_id).order_by(col(TaskEvent.id))
            return [TaskEventPublic.model_validate(e) for e in s.exec(query)]

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
    ) -> T:
        """Move a task to ``to`` and append the event, atomically.

        ``reason`` becomes the task's ``state_reason`` (skips, quarantines, failures must give one). ``tx_hash`` of
        a claim or submit transaction is kept on the task when moving to CLAIMING/CLAIMED or
        SUBMITTING/SUBMITTED; ``agent`` sets the task's agent (on CLAIMING). ``cid`` is recorded in the event; when
        submitting it must be the task's approved artifact. ``gas_wei`` is the fee ``tx_hash`` paid: it is recorded
        as the task's agent's gas cost in the same transaction, idempotently by hash (a cost already stored for
        that hash is kept, and never fails the transition). With ``via``, the task moves through that state first
        (e.g. CLAIMED on the way to PRODUCING): two checked transitions, two events, one transaction; ``reason``,
        ``tx_hash`` and ``cid`` belong to the step into ``via``.

        Raises ``LifecycleError`` for a transition the table does not allow, ``Conflict`` when the task's version
        is not ``expect_version`` (someone else moved it first), ``ReviewRefused`` for a transition only a review
        may make (anything to APPROVED, or AWAITING_REVIEW -> PRODUCING): use ``record_review``.
        """
        to = TaskState(to)
        if gas_wei is not None and tx_hash is None:
            raise StoreError(f"task {task_id}: a gas cost needs the tx_hash it paid for")
        durable = to not in REDERIVABLE_STATES or (via is not None and via not in REDERIVABLE_STATES)
        with self._transaction(f"moving task {task_id} to {to}", durable=durable) as s:
            task = self._locked(s, task_id, expect_version)
            if via is not None:
                self._move(s, task, TaskState(via), actor, reason, tx_hash=tx_hash, cid=cid, agent=agent)
                self._move(s, task, to, actor)
            else:
                self._move(s, task, to, actor, reason, tx_hash=tx_hash, cid=cid, agent=agent)
            if gas_wei is not None:
                assert tx_hash is not None
                self._add_gas(s, task, amount=gas_wei, tx_hash=tx_hash)
            return self._out(task)

    def import_submitted(
        self, *, task_id: int, agent: str, artifact_cid: str, reason: str, expect_version: int | None = None
    ) -> T:
        """A DISCOVERED task the board shows submitted (or already paid) by one of our own wallets — found by a
        database that did not see it happen: DISCOVERED -> SUBMITTED with that agent and the submitted CID, so
        the payout, when it is (or was) made, is collected as ours. Nothing is sent."""
        with self._transaction(f"importing task {task_id} from the board") as s:
            task = self._locked(s, task_id, expect_version)
            self._guarded_update(s, task, {"agent_name": agent, "artifact_cid": artifact_cid})
            self._move(s, task, S.SUBMITTED, "importer", reason, cid=artifact_cid)
            return self._out(task)

    def count_by_state(self) -> dict[TaskState, int]:
        """How many tasks are in each lifecycle state (states with none are left out)."""
        with self._transaction("counting tasks", reads_only=True) as s:
            rows = s.exec(select(TaskRow.state, func.count()).group_by(col(TaskRow.state))).all()
            return {TaskState(state): int(n) for state, n in rows}

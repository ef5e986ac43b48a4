"""``Store``: the orchestrator's persistent state behind keyword-only methods, over one SQLAlchemy ``Engine``.

Every change to a task (its state, its current artifact, a review decision, a payout) updates the ``task`` row
and appends a ``task_event`` row in the same database transaction. Each such update is guarded by the row's
``version`` (optimistic locking) on top of the row lock taken when the task is read (``SELECT ... FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two workers can never both move a task: pass ``expect_version``
(the version you decided on) and the loser gets ``Conflict``.

Commits that precede a side effect (CLAIMING, SUBMITTING, cursors, review decisions, exits) wait for the disk; those
the orchestrator re-derives after a power loss (``REDERIVABLE_STATES``, runs, artifacts, gas, discovered tasks and
payouts before their cursor) skip the fsync (``db.relax``); a process crash loses neither.

Methods return ``XPublic`` models, detached from any session. Writes meant to be repeated after a crash are
idempotent: discovery per (board, board task id), artifacts per (task, CID), rewards per (board, board task id),
gas costs per transaction hash.

Must not import the orchestrator's services or any adapter other than SQLAlchemy/SQLModel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from orchestrator.adapters.sql.db import read_only, relax, translate
from orchestrator.adapters.sql.errors import (
    Conflict,
    DuplicateRecord,
    RecordNotFound,
    ReviewRefused,
    StaleReview,
    StoreError,
)
from orchestrator.adapters.sql.models import (
    Agent,
    AgentCreate,
    AgentPublic,
    Artifact,
    ArtifactPublic,
    Board,
    BoardPublic,
    Cost,
    CostKind,
    CostPublic,
    EventKind,
    Review,
    ReviewPublic,
    Reward,
    RewardPublic,
    Run,
    RunCreate,
    RunPublic,
    RunStatus,
    SpecRead,
    SpecReadPublic,
    Task,
    TaskEvent,
    TaskEventPublic,
    TaskPublic,
)
from orchestrator.adapters.sql.queries import Queries
from orchestrator.adapters.sql.spend import TaskSpend
from orchestrator.domain.board import BoardTask, Payout
from orchestrator.domain.lifecycle import TERMINAL_STATES, TRANSITIONS, TaskState, check_transition
from orchestrator.domain.money import PnL
from orchestrator.domain.review import DECISION_TARGETS, REVISING, ReviewDecision, SelfCheck

log = logging.getLogger(__name__)

S = TaskState


#: States whose entry the orchestrator re-derives if a power loss drops it, so their commit skips the fsync:
#: CLAIMED and SUBMITTED from the board (a CLAIMING/SUBMITTING task is resolved from the chain), PRODUCING and
#: PRODUCED by running the agent again. States entered before a side effect (CLAIMING, SUBMITTING), the review
#: states (a human's decision) and the exits stay durable. A later durable commit makes earlier ones durable too.
REDERIVABLE_STATES = frozenset({S.CLAIMED, S.PRODUCING, S.PRODUCED, S.SUBMITTED})
_CLAIM_TX_STATES = frozenset({S.CLAIMING, S.CLAIMED})
_SUBMIT_TX_STATES = frozenset({S.SUBMITTING, S.SUBMITTED})


#: Checkpoints kept per board: enough to find the last common block of any reorg the cursors may see (a poll
#: per cycle saves one; 32 cycles back is deeper than any reorg a confirmed chain has had).
MAX_CHECKPOINTS = 32


def _with_checkpoint(
    checkpoints: list[list[int | str]] | None, number: int, block_hash: str, *, rewind: bool
) -> list[list[int | str]]:
    """``checkpoints`` (oldest first) with block ``number`` at ``block_hash``: a pair for the same number is
    replaced; on a ``rewind`` the pairs above it go (those blocks were replaced); the newest ``MAX_CHECKPOINTS``
    are kept."""
    kept = [c for c in checkpoints or [] if int(c[0]) != number and not (rewind and int(c[0]) > number)]
    kept.append([number, block_hash])
    kept.sort(key=lambda c: int(c[0]))
    return kept[-MAX_CHECKPOINTS:]


def _usd(micro: int) -> str:
    """Micro-USD as dollars for a log line: 16200 -> 0.0162."""
    return f"{Decimal(micro) / 1_000_000:f}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PendingReview:
    """A task awaiting a human decision, with the artifact the reviewer must be shown and earlier decisions."""

    task: TaskPublic
    artifact: ArtifactPublic
    history: list[ReviewPublic]


class Store:
    """The orchestrator's database. Build it in the bootstrap: ``Store(make_engine(url))`` after ``migrate``.

    ``max_revisions`` caps how many times reviewers may request changes on one task; ``clock`` gives the time
    written into rows (tests pass a fake one); ``amount_text`` writes a token amount into reasons people read
    (the bootstrap passes ``TokenBook.format``: ``30 DWR``; without it, base units and the token's address).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_revisions: int = 3,
        clock: Callable[[], datetime] = _utcnow,
        amount_text: Callable[[int, str], str] | None = None,
    ) -> None:
        self._engine = engine
        self.max_revisions = max_revisions
        self._clock = clock
        self.amount_text = amount_text or (lambda amount, token: f"{amount} base units of {token}")

    @property
    def engine(self) -> Engine:
        """The engine the store writes through (the web app's aggregate queries read the same database)."""
        return self._engine

    @contextmanager
    def _session(self, doing: str, *, durable: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises. ``durable=False`` commits
        without waiting for the disk (``db.relax``): only for records re-derived after losing them."""
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                if not durable:
                    relax(session)
                yield session
        except SQLAlchemyError as exc:
            raise translate(exc, doing=doing) from exc
        except OverflowError as exc:  # sqlite3 refuses an int beyond 64 bits before SQLAlchemy sees the statement
            raise StoreError(f"{doing}: a number is too large for the database ({exc})") from exc

    @contextmanager
    def _reading(self, doing: str) -> Iterator[Session]:
        """A transaction that only reads (``db.read_only``: no write lock on SQLite)."""
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                read_only(session)
                yield session
        except SQLAlchemyError as exc:
            raise translate(exc, doing=doing) from exc

    # ------------------------------------------------------------------------------------------------ boards

    def ensure_board(self, *, name: str, kind: str) -> BoardPublic:
        """The board's row, created without cursors if missing."""
        with self._session(f"registering board {name!r}") as s:
            board = s.get(Board, name)
            if board is None:
                board = Board(name=name, kind=kind)
                s.add(board)
                s.flush()
            return BoardPublic.model_validate(board)

    def board(self, *, name: str) -> BoardPublic | None:
        """The board's row with its cursors, or None if it was never registered."""
        with self._reading(f"reading board {name!r}") as s:
            board = s.get(Board, name)
            return None if board is None else BoardPublic.model_validate(board)

    def set_poll_cursor(self, *, board: str, cursor: int, block_hash: str | None = None, rewind: bool = False) -> int:
        """Save the next block to poll for tasks, with ``block_hash``, the hash of block ``cursor - 1`` as it was
        read (kept in the board's checkpoints too); returns the stored cursor. Never moves backwards (a slow worker
        saving an older cursor leaves the newer one in place) unless ``rewind``: a reorg replaced blocks already
        read, and the poll read them again from the last common block."""
        return self._set_cursor(board=board, column="poll_cursor", cursor=cursor, block_hash=block_hash, rewind=rewind)

    def set_payout_cursor(self, *, board: str, cursor: int, block_hash: str | None = None, rewind: bool = False) -> int:
        """Save the next block to poll for payouts (see ``set_poll_cursor``)."""
        return self._set_cursor(
            board=board, column="payout_cursor", cursor=cursor, block_hash=block_hash, rewind=rewind
        )

    def _set_cursor(self, *, board: str, column: str, cursor: int, block_hash: str | None, rewind: bool) -> int:
        with self._session(f"saving {column} of board {board!r}") as s:
            row = s.exec(select(Board).where(col(Board.name) == board).with_for_update()).one_or_none()
            if row is None:
                raise RecordNotFound(f"board {board!r} is not registered", hint="call Store.ensure_board first")
            current: int | None = getattr(row, column)
            if current is None or cursor > current or (rewind and cursor != current):
                setattr(row, column, cursor)
                setattr(row, f"{column}_hash", block_hash)
                current = cursor
                if block_hash is not None:
                    row.checkpoints = _with_checkpoint(row.checkpoints, cursor - 1, block_hash, rewind=rewind)
            return current

    # ------------------------------------------------------------------------------------------------- tasks

    def begin_spec_read(self, *, board: str, board_task_id: int) -> SpecReadPublic:
        """Mark the task's spec as being read (durably: the mark must outlive a crash during the read). Returns the
        mark as it was before: ``reading`` set means an earlier read never finished — the process died in it."""
        with self._session(f"marking the spec of task {board}/{board_task_id} as being read") as s:
            row = s.get(SpecRead, (board, board_task_id))
            if row is None:
                row = SpecRead(board=board, board_task_id=board_task_id, updated_at=self._clock())
                s.add(row)
            before = SpecReadPublic(attempts=row.attempts, reading=row.reading, last_error=row.last_error)
            row.attempts += 1
            row.reading = True
            row.updated_at = self._clock()
            return before

    def spec_read_failed(self, *, board: str, board_task_id: int, error: str) -> None:
        """The read ended without a verdict (the store may answer later): the task is read again next poll."""
        with self._session(f"recording a failed read of task {board}/{board_task_id}'s spec") as s:
            row = s.get(SpecRead, (board, board_task_id))
            if row is not None:
                row.reading = False
                row.last_error = error
                row.updated_at = self._clock()

    def end_spec_read(self, *, board: str, board_task_id: int) -> None:
        """Clear the ``begin_spec_read`` mark of a task now stored (a mark left by a crash just before this is
        harmless: a stored task's spec is never read again)."""
        with self._session(f"clearing the spec-read mark of task {board}/{board_task_id}", durable=False) as s:
            row = s.get(SpecRead, (board, board_task_id))
            if row is not None:
                s.delete(row)

    def upsert_discovered(self, *, board_task: BoardTask, actor: str = "poller") -> tuple[TaskPublic, bool]:
        """Store a task seen on a board; returns it and whether it is new. Seeing it again changes nothing.

        A task whose spec was quarantined is stored and moved to QUARANTINED with the reason, in one transaction.
        """
        bt = board_task
        now = self._clock()
        task = Task(
            board=bt.board,
            board_task_id=int(bt.key),
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
            with self._session(f"storing task {bt.board}/{bt.key}", durable=False) as s:
                existing = s.exec(
                    select(Task).where(col(Task.board) == bt.board, col(Task.board_task_id) == int(bt.key))
                ).one_or_none()
                if existing is not None:
                    return TaskPublic.model_validate(existing), False
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
                return TaskPublic.model_validate(task), True
        except DuplicateRecord:
            # another worker stored it between our read and our insert: theirs is the one
            raced = self.find_task(board=bt.board, board_task_id=int(bt.key))
            if raced is None:
                raise
            return raced, False

    def get_task(self, *, task_id: int) -> TaskPublic:
        """The task with this id; ``RecordNotFound`` if there is none."""
        with self._reading(f"reading task {task_id}") as s:
            return TaskPublic.model_validate(self._task(s, task_id))

    def find_task(self, *, board: str, board_task_id: int) -> TaskPublic | None:
        """The task a board knows as ``board_task_id``, or None."""
        with self._reading(f"reading task {board}/{board_task_id}") as s:
            task = s.exec(
                select(Task).where(col(Task.board) == board, col(Task.board_task_id) == board_task_id)
            ).one_or_none()
            return None if task is None else TaskPublic.model_validate(task)

    def tasks(self, *, state: TaskState | None = None) -> list[TaskPublic]:
        """All tasks, or those in ``state``, oldest first."""
        query = select(Task).order_by(col(Task.id))
        if state is not None:
            query = query.where(col(Task.state) == state)
        with self._reading("listing tasks") as s:
            return [TaskPublic.model_validate(t) for t in s.exec(query)]

    def resumable(self) -> list[TaskPublic]:
        """Tasks in a non-terminal state, oldest first: what a restarted orchestrator picks up again."""
        with self._reading("listing resumable tasks") as s:
            query = select(Task).where(col(Task.state).not_in(TERMINAL_STATES)).order_by(col(Task.id))
            return [TaskPublic.model_validate(t) for t in s.exec(query)]

    def wait(self, *, task_id: int, reason: str, retry_at: datetime, expect_version: int | None = None) -> TaskPublic:
        """Record that the task's current step failed with a fault that passes by itself: it is not tried again
        before ``retry_at``, and ``reason`` says why it waits. The state does not change; the next transition
        clears the wait. Raises ``Conflict`` if the task moved meanwhile."""
        with self._session(f"recording why task {task_id} waits", durable=False) as s:
            task = self._locked(s, task_id, expect_version)
            values = {"wait_reason": reason, "retry_at": retry_at, "retries": task.retries + 1}
            self._guarded_update(s, task, values)
            return TaskPublic.model_validate(task)

    def task_events(self, *, task_id: int) -> list[TaskEventPublic]:
        """The task's history, in the order it happened."""
        with self._reading(f"reading events of task {task_id}") as s:
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
    ) -> TaskPublic:
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
        with self._session(f"moving task {task_id} to {to}", durable=durable) as s:
            task = self._locked(s, task_id, expect_version)
            if via is not None:
                self._move(s, task, TaskState(via), actor, reason, tx_hash=tx_hash, cid=cid, agent=agent)
                self._move(s, task, to, actor)
            else:
                self._move(s, task, to, actor, reason, tx_hash=tx_hash, cid=cid, agent=agent)
            if gas_wei is not None:
                assert tx_hash is not None
                self._add_gas(s, task, amount=gas_wei, tx_hash=tx_hash)
            return TaskPublic.model_validate(task)

    # ---------------------------------------------------------------------------------------------- agents

    def upsert_agent(self, *, agent: AgentCreate) -> AgentPublic:
        """Create the agent, or update its address, skills and enabled flag (the name is the key)."""
        with self._session(f"saving agent {agent.name!r}") as s:
            row = s.exec(select(Agent).where(col(Agent.name) == agent.name).with_for_update()).one_or_none()
            if row is None:
                row = Agent.model_validate(agent)
                s.add(row)
            else:
                row.sqlmodel_update(agent.model_dump(exclude={"name"}))
            s.flush()
            return AgentPublic.model_validate(row)

    def agents(self, *, enabled_only: bool = False) -> list[AgentPublic]:
        """Registered agents by name."""
        query = select(Agent).order_by(col(Agent.name))
        if enabled_only:
            query = query.where(col(Agent.enabled).is_(True))
        with self._reading("listing agents") as s:
            return [AgentPublic.model_validate(a) for a in s.exec(query)]

    # ------------------------------------------------------------------------------------- runs, artifacts

    def record_run(self, *, run: RunCreate, spend_key: str | None = None) -> RunPublic:
        """Record a finished agent run (its attempt number is assigned here) and its LLM cost as a cost row.

        With ``spend_key`` (the task's key in the spend ledger, ``<board>:<board task id>``) and a ledger total for
        it, the run's tokens and cost are what the ledger holds beyond the task's earlier runs, so every run's
        share adds up to the ledger exactly; without one, the run's own figures are used."""
        with self._session(f"recording a run of task {run.task_id}", durable=False) as s:  # a lost run runs again
            self._task(s, run.task_id, lock=True)  # serializes attempt numbering per task
            return RunPublic.model_validate(self._add_run(s, run, spend_key))

    def settle_unrecorded_run(self, *, task_id: int, spend_key: str, agent: str) -> RunPublic | None:
        """Record, as an INTERRUPTED run, the model usage the spend ledger holds for the task beyond its recorded
        runs: a run the process died in (or after, before recording it) still costs what its calls cost. Call it
        before running the task's agent again and before giving the task up. Returns the run, or None."""
        with self._reading(f"reading the model spend of task {task_id}") as s:  # the usual case: no write lock
            if not any(self._unattributed(s, task_id, spend_key) or ()):
                return None
        with self._session(f"settling an interrupted run of task {task_id}", durable=False) as s:
            task = self._task(s, task_id, lock=True)
            left = self._unattributed(s, task_id, spend_key)
            if left is None or not any(left):
                return None
            run = RunCreate(
                task_id=task_id,
                agent=agent,
                started_at=task.updated_at,  # at the latest when it entered PRODUCING
                finished_at=self._clock(),
                status=RunStatus.INTERRUPTED,
                prompt_tokens=left[0],
                completion_tokens=left[1],
                cost_usd_micro=left[2],
                error="the process stopped during this run; its model usage is from the spend ledger",
            )
            log.warning(
                "task %s: an interrupted agent run's usage recovered from the spend ledger: %d prompt and %d "
                "completion tokens, $%s",
                task_id,
                left[0],
                left[1],
                _usd(left[2]),
            )
            return RunPublic.model_validate(self._add_run(s, run))

    def _unattributed(self, s: Session, task_id: int, spend_key: str) -> tuple[int, int, int] | None:
        """What the spend ledger holds for the task beyond its recorded runs: (prompt tokens, completion tokens,
        micro-USD), or None when the ledger has no total for it (an in-memory ledger) or holds less than the runs
        recorded (figures that cannot be reconciled: the runs' own are kept)."""
        total = s.get(TaskSpend, spend_key)
        if total is None:
            return None
        recorded = s.exec(
            select(
                func.coalesce(func.sum(Run.prompt_tokens), 0),
                func.coalesce(func.sum(Run.completion_tokens), 0),
                func.coalesce(func.sum(Run.cost_usd_micro), 0),
            ).where(col(Run.task_id) == task_id)
        ).one()
        # floor of the exact running total: the runs' micro-USD shares always sum to it, never drifting by rounding
        micro = int((total.cost * 1_000_000).to_integral_value(rounding=ROUND_FLOOR))
        left = (
            total.prompt_tokens - int(recorded[0]),
            total.completion_tokens - int(recorded[1]),
            micro - int(recorded[2]),
        )
        return None if min(left) < 0 else left

    def _add_run(self, s: Session, run: RunCreate, spend_key: str | None = None) -> Run:
        """``record_run`` with the task locked in ``s``."""
        if spend_key is not None:
            left = self._unattributed(s, run.task_id, spend_key)
            if left is not None:
                update = dict(zip(("prompt_tokens", "completion_tokens", "cost_usd_micro"), left, strict=True))
                run = run.model_copy(update=update)
        previous = s.exec(select(func.count()).select_from(Run).where(col(Run.task_id) == run.task_id)).one()
        row = Run.model_validate(run, update={"attempt": previous + 1})
        s.add(row)
        s.flush()
        if run.cost_usd_micro:
            s.add(
                Cost(
                    task_id=run.task_id,
                    run_id=row.id,
                    agent=run.agent,
                    kind=CostKind.LLM,
                    amount=run.cost_usd_micro,
                    at=run.finished_at,
                )
            )
        return row

    def runs(self, *, task_id: int) -> list[RunPublic]:
        """The task's runs, first attempt first."""
        with self._reading(f"listing runs of task {task_id}") as s:
            query = select(Run).where(col(Run.task_id) == task_id).order_by(col(Run.attempt))
            return [RunPublic.model_validate(r) for r in s.exec(query)]

    def record_artifact(
        self, *, task_id: int, cid: str, manifest: dict[str, Any], self_check: SelfCheck, actor: str
    ) -> ArtifactPublic:
        """Make ``cid`` the task's current artifact (the task must be PRODUCING). Recording the same CID again
        returns the stored row; it becomes current again if a newer one had replaced it."""
        with self._session(f"recording artifact {cid} of task {task_id}", durable=False) as s:  # PRODUCING: re-run
            task = self._task(s, task_id, lock=True)
            row = self._set_artifact(s, task, cid=cid, manifest=manifest, self_check=self_check, actor=actor)
            s.flush()
            return ArtifactPublic.model_validate(row)

    def record_produced(
        self,
        *,
        run: RunCreate,
        cid: str,
        manifest: dict[str, Any],
        self_check: SelfCheck,
        actor: str,
        expect_version: int | None = None,
        spend_key: str | None = None,
    ) -> TaskPublic:
        """A successful run's outcome in one transaction: ``record_run`` (``spend_key`` as there), ``record_artifact``
        and PRODUCING -> PRODUCED (with ``cid`` in the event). Returns the task. Not durable: a lost run is run
        again."""
        task_id = run.task_id
        with self._session(f"recording the product of task {task_id}", durable=False) as s:
            task = self._locked(s, task_id, expect_version)
            self._add_run(s, run, spend_key)
            self._set_artifact(s, task, cid=cid, manifest=manifest, self_check=self_check, actor=actor)
            self._move(s, task, S.PRODUCED, actor, cid=cid)
            return TaskPublic.model_validate(task)

    def _set_artifact(
        self, s: Session, task: Task, *, cid: str, manifest: dict[str, Any], self_check: SelfCheck, actor: str
    ) -> Artifact:
        """``record_artifact`` with the task locked in ``s``."""
        assert task.id is not None
        if task.state is not S.PRODUCING:
            raise StoreError(
                f"task {task.id} is {task.state}: artifacts are recorded only while PRODUCING",
                hint="move the task to PRODUCING first (a revision starts with a reviewer's request_changes)",
            )
        row = s.exec(select(Artifact).where(col(Artifact.task_id) == task.id, col(Artifact.cid) == cid)).one_or_none()
        if row is None:
            row = Artifact(
                task_id=task.id,
                cid=cid,
                revision=task.revision_count,
                manifest=manifest,
                self_check=self_check,
                created_at=self._clock(),
            )
            s.add(row)
        if task.artifact_cid != cid:
            self._guarded_update(s, task, {"artifact_cid": cid})
            s.add(self._event(task.id, EventKind.ARTIFACT, task.state, task.state, actor, cid=cid))
        return row

    def artifacts(self, *, task_id: int) -> list[ArtifactPublic]:
        """Every artifact the task had, oldest first."""
        with self._reading(f"listing artifacts of task {task_id}") as s:
            query = select(Artifact).where(col(Artifact.task_id) == task_id).order_by(col(Artifact.id))
            return [ArtifactPublic.model_validate(a) for a in s.exec(query)]

    # -------------------------------------------------------------------------------------------- reviews

    def record_review(
        self,
        *,
        task_id: int,
        artifact_cid: str,
        decision: ReviewDecision,
        reviewer: str,
        feedback: str | None = None,
    ) -> ReviewPublic:
        """Decide on the artifact ``artifact_cid`` the reviewer was shown, and move the task accordingly.

        APPROVE -> APPROVED (from AWAITING_REVIEW, or from PRODUCED for the automatic policy);
        REQUEST_CHANGES -> PRODUCING with the feedback (the agent edits its artifact) and REJECT -> PRODUCING with
        the feedback (the agent starts over), each a revision (count + 1, at most ``max_revisions``);
        ABANDON -> ABANDONED. Raises ``StaleReview`` when ``artifact_cid`` is not the task's current artifact,
        ``ReviewRefused`` when the task is not awaiting this decision or feedback is missing.
        """
        with self._session(f"recording a review of task {task_id}") as s:
            task = self._task(s, task_id, lock=True)
            review = self._decide(s, task, artifact_cid, decision, reviewer, feedback)
            s.flush()
            return ReviewPublic.model_validate(review)

    def auto_review(
        self,
        *,
        task_id: int,
        approve: Collection[SelfCheck],
        reason: str,
        reviewer: str = "auto",
        actor: str = "review-gate",
        expect_version: int | None = None,
    ) -> TaskPublic:
        """The review gate for a PRODUCED task, in one transaction: APPROVE its current artifact as ``reviewer``
        (like ``record_review``) when the artifact's self-check is in ``approve``, else move it to AWAITING_REVIEW
        with ``reason`` (a human decides). Returns the task."""
        with self._session(f"reviewing task {task_id}") as s:
            task = self._locked(s, task_id, expect_version)
            artifact = s.exec(
                select(Artifact).where(col(Artifact.task_id) == task_id, col(Artifact.cid) == task.artifact_cid)
            ).one_or_none()
            if artifact is None:
                raise StoreError(f"task {task_id} is {task.state} without a recorded artifact {task.artifact_cid}")
            if artifact.self_check in approve:
                self._decide(s, task, artifact.cid, ReviewDecision.APPROVE, reviewer, None)
            else:
                self._move(s, task, S.AWAITING_REVIEW, actor, reason)
            return TaskPublic.model_validate(task)

    def _decide(
        self,
        s: Session,
        task: Task,
        artifact_cid: str,
        decision: ReviewDecision,
        reviewer: str,
        feedback: str | None,
    ) -> Review:
        """``record_review`` on a task locked in ``s``."""
        assert task.id is not None
        target = DECISION_TARGETS[decision]
        before = task.state
        if task.artifact_cid != artifact_cid:
            raise StaleReview(
                f"task {task.id}: the review is of artifact {artifact_cid}, "
                f"but the current artifact is {task.artifact_cid}",
                hint="reload the review list and review the current artifact",
            )
        if target not in TRANSITIONS[before]:
            raise ReviewRefused(f"task {task.id} is {before}: it is not awaiting a decision to {decision}")
        values: dict[str, Any] = {"state": target, "state_reason": feedback}
        if decision in REVISING:
            if not feedback or not feedback.strip():
                what = "requesting changes" if decision is ReviewDecision.REQUEST_CHANGES else "rejecting"
                raise ReviewRefused(
                    f"{what} needs feedback: the agent revises with it", hint="say what the agent should change"
                )
            if task.revision_count >= self.max_revisions:
                raise ReviewRefused(
                    f"task {task.id} has had {task.revision_count} revisions, the limit",
                    hint="approve the artifact or abandon the task",
                )
            values["revision_count"] = task.revision_count + 1
        self._guarded_update(s, task, values)
        review = Review(
            task_id=task.id,
            artifact_cid=artifact_cid,
            decision=decision,
            feedback=feedback,
            reviewer=reviewer,
            at=self._clock(),
        )
        s.add(review)
        # the audit line names the decision: reject and request_changes both lead to PRODUCING
        note = f"{decision.value}: {feedback}" if feedback else decision.value
        s.add(self._event(task.id, EventKind.REVIEW, before, target, reviewer, note, cid=artifact_cid))
        return review

    def rework_rejected(
        self, *, task_id: int, reviewer: str, reason: str, expect_version: int | None = None
    ) -> TaskPublic:
        """The DAO's reviewer rejected the submission and the task is open again: record the rejection as a
        change request on the submitted artifact (``reviewer`` is the DAO reviewer's address, shown as
        ``dao:<address>``; ``reason`` becomes the agent's feedback) and move SUBMITTED -> CLAIMING (revision count
        + 1), in one transaction. ``ReviewRefused`` when the task has used its ``max_revisions``."""
        with self._session(f"reworking task {task_id} after the DAO's rejection") as s:
            task = self._locked(s, task_id, expect_version)
            assert task.id is not None and task.artifact_cid is not None
            if task.revision_count >= self.max_revisions:
                raise ReviewRefused(f"task {task_id} has had {task.revision_count} revisions, the limit")
            actor = f"dao:{reviewer}"
            self._move(s, task, S.CLAIMING, actor, f"the DAO rejected the submission: {reason}")
            self._guarded_update(s, task, {"revision_count": task.revision_count + 1})
            s.add(
                Review(
                    task_id=task.id,
                    artifact_cid=task.artifact_cid,
                    decision=ReviewDecision.REQUEST_CHANGES,
                    feedback=reason,
                    reviewer=actor,
                    at=self._clock(),
                )
            )
            return TaskPublic.model_validate(task)

    def import_submitted(
        self, *, task_id: int, agent: str, artifact_cid: str, reason: str, expect_version: int | None = None
    ) -> TaskPublic:
        """A DISCOVERED task the board shows submitted (or already paid) by one of our own wallets — found by a
        database that did not see it happen: DISCOVERED -> SUBMITTED with that agent and the submitted CID, so
        the payout, when it is (or was) made, is collected as ours. Nothing is sent."""
        with self._session(f"importing task {task_id} from the board") as s:
            task = self._locked(s, task_id, expect_version)
            self._guarded_update(s, task, {"agent_name": agent, "artifact_cid": artifact_cid})
            self._move(s, task, S.SUBMITTED, "importer", reason, cid=artifact_cid)
            return TaskPublic.model_validate(task)

    def reviews(self, *, task_id: int) -> list[ReviewPublic]:
        """Every decision on the task, oldest first."""
        with self._reading(f"listing reviews of task {task_id}") as s:
            query = select(Review).where(col(Review.task_id) == task_id).order_by(col(Review.id))
            return [ReviewPublic.model_validate(r) for r in s.exec(query)]

    def count_by_state(self) -> dict[TaskState, int]:
        """How many tasks are in each lifecycle state (states with none are left out)."""
        with self._reading("counting tasks") as s:
            rows = s.exec(select(Task.state, func.count()).group_by(col(Task.state))).all()
            return {TaskState(state): int(n) for state, n in rows}

    def pending_reviews(self, *, limit: int | None = None, offset: int = 0) -> list[PendingReview]:
        """Tasks awaiting a human decision, the longest-waiting first, each with its current artifact;
        ``limit`` of them from ``offset``."""
        with self._reading("listing pending reviews") as s:
            query = (
                select(Task).where(col(Task.state) == S.AWAITING_REVIEW).order_by(col(Task.updated_at), col(Task.id))
            )
            tasks = s.exec(query.offset(offset).limit(limit)).all()
            ids = [t.id for t in tasks]
            artifacts = {(a.task_id, a.cid): a for a in s.exec(select(Artifact).where(col(Artifact.task_id).in_(ids)))}
            history: dict[int, list[ReviewPublic]] = {}
            for r in s.exec(select(Review).where(col(Review.task_id).in_(ids)).order_by(col(Review.id))):
                history.setdefault(r.task_id, []).append(ReviewPublic.model_validate(r))
            out = []
            for t in tasks:
                assert t.id is not None
                artifact = artifacts.get((t.id, t.artifact_cid or ""))
                if artifact is None:
                    raise StoreError(f"task {t.id} awaits review but has no recorded artifact {t.artifact_cid}")
                out.append(
                    PendingReview(
                        task=TaskPublic.model_validate(t),
                        artifact=ArtifactPublic.model_validate(artifact),
                        history=history.get(t.id, []),
                    )
                )
            return out

    # ------------------------------------------------------------------------------------- money: in, out

    def record_reward(self, *, payout: Payout, actor: str = "collector") -> tuple[RewardPublic, bool]:
        """Record a board's payout; returns it and whether it is new. The same payout again changes nothing.

        A SUBMITTED task moves to PAID in the same transaction. Raises ``DuplicateRecord`` when the task already
        has a different payout, ``RecordNotFound`` when neither the task nor the recipient is ours.
        """
        p = payout
        try:
            # not durable: the payout cursor saved after it is; a lost payout is collected again
            with self._session(f"recording the payout of {p.board}/{p.key}", durable=False) as s:
                existing = self._reward(s, p)
                if existing is not None:
                    return self._same_reward(existing, p), False
                task = s.exec(
                    select(Task)
                    .where(col(Task.board) == p.board, col(Task.board_task_id) == int(p.key))
                    .with_for_update()
                ).one_or_none()
                agent = task.agent_name if task is not None else None
                if agent is None:
                    agent = s.exec(
                        select(Agent.name).where(func.lower(col(Agent.address)) == p.recipient.lower())
                    ).first()
                if task is None and agent is None:
                    raise RecordNotFound(
                        f"payout {p.tx_hash} for {p.board}/{p.key} to {p.recipient}: neither the task nor the "
                        "recipient is ours",
                        hint="record only payouts to the fleet's agent addresses",
                    )
                reward = Reward(
                    board=p.board,
                    board_task_id=int(p.key),
                    task_id=None if task is None else task.id,
                    agent=agent,
                    recipient=p.recipient,
                    token=p.token,
                    amount=p.amount,
                    tx_hash=p.tx_hash,
                    block_number=p.block_number,
                    at=self._clock(),
                )
                s.add(reward)
                if task is not None:
                    assert task.id is not None
                    before = task.state
                    after = S.PAID if S.PAID in TRANSITIONS[before] else before
                    reason = f"paid {self.amount_text(p.amount, p.token)} in block {p.block_number}"
                    if after is not before:
                        self._guarded_update(s, task, {"state": after, "state_reason": reason})
                    s.add(self._event(task.id, EventKind.REWARD, before, after, actor, reason, tx_hash=p.tx_hash))
                s.flush()
                return RewardPublic.model_validate(reward), True
        except DuplicateRecord:
            with self._reading(f"reading the payout of {p.board}/{p.key}") as s:
                existing = self._reward(s, p)
                if existing is None:
                    raise
                return self._same_reward(existing, p), False

    def rewards(self, *, from_block: int = 0) -> list[RewardPublic]:
        """Recorded payouts mined in block ``from_block`` or later, oldest first."""
        with self._reading("listing rewards") as s:
            query = select(Reward).where(col(Reward.block_number) >= from_block).order_by(col(Reward.block_number))
            return [RewardPublic.model_validate(r) for r in s.exec(query)]

    def uncredit_reward(self, *, reward_id: int, reason: str, actor: str = "reconciler") -> TaskPublic | None:
        """A payout a reorg removed from the chain: delete its reward row and move its task PAID -> SUBMITTED with
        an event, in one transaction, so that the rewards equal what the chain paid; ``collect`` records the payout
        again when it reappears. Returns the task (``None`` for a payout to one of our addresses on a task that is
        not ours, or a reward already gone)."""
        with self._session(f"un-crediting reward {reward_id}") as s:
            reward = s.get(Reward, reward_id, with_for_update=True)
            if reward is None:
                return None
            task = self._task(s, reward.task_id, lock=True) if reward.task_id is not None else None
            tx_hash = reward.tx_hash
            s.delete(reward)
            if task is None:
                return None
            assert task.id is not None
            before = task.state
            after = S.SUBMITTED if before is S.PAID else before
            if after is not before:
                check_transition(before, after)
                self._guarded_update(s, task, {"state": after, "state_reason": reason})
            s.add(self._event(task.id, EventKind.REWARD, before, after, actor, reason, tx_hash=tx_hash))
            s.flush()
            return TaskPublic.model_validate(task)

    @staticmethod
    def _reward(s: Session, p: Payout) -> Reward | None:
        return s.exec(
            select(Reward).where(col(Reward.board) == p.board, col(Reward.board_task_id) == int(p.key))
        ).one_or_none()

    @staticmethod
    def _same_reward(existing: Reward, p: Payout) -> RewardPublic:
        if (existing.tx_hash, existing.amount, existing.token) != (p.tx_hash, p.amount, p.token):
            raise DuplicateRecord(
                f"task {p.board}/{p.key} was already paid {existing.amount} of {existing.token} in "
                f"{existing.tx_hash}; now a payout of {p.amount} in {p.tx_hash}",
                hint="a board pays a task once: check the board's events for a reorg or a second board",
            )
        return RewardPublic.model_validate(existing)

    def record_cost(
        self,
        *,
        agent: str,
        kind: CostKind,
        amount: int,
        task_id: int | None = None,
        tx_hash: str | None = None,
    ) -> tuple[CostPublic, bool]:
        """Record a cost: gas in wei (``tx_hash`` required; the same transaction again changes nothing) or LLM
        usage in micro-USD (``record_run`` does that for runs). Returns it and whether it is new."""
        if (kind is CostKind.GAS) != (tx_hash is not None):
            raise StoreError(f"a {kind} cost {'needs' if kind is CostKind.GAS else 'cannot have'} a tx_hash")
        row = Cost(task_id=task_id, agent=agent, kind=kind, amount=amount, tx_hash=tx_hash, at=self._clock())
        try:
            # gas is recorded after the receipt, as the step's record; the task's next durable commit flushes it
            with self._session(f"recording a {kind} cost of {agent!r}", durable=kind is not CostKind.GAS) as s:
                if tx_hash is not None:
                    existing = s.exec(select(Cost).where(col(Cost.tx_hash) == tx_hash)).one_or_none()
                    if existing is not None:
                        return self._same_cost(existing, row), False
                s.add(row)
                s.flush()
                return CostPublic.model_validate(row), True
        except DuplicateRecord:
            with self._reading(f"reading the cost of {tx_hash}") as s:
                existing = s.exec(select(Cost).where(col(Cost.tx_hash) == tx_hash)).one_or_none()
                if existing is None:
                    raise
                return self._same_cost(existing, row), False

    @staticmethod
    def _same_cost(existing: Cost, new: Cost) -> CostPublic:
        if (existing.agent, existing.kind, existing.amount, existing.task_id) != (
            new.agent,
            new.kind,
            new.amount,
            new.task_id,
        ):
            raise DuplicateRecord(
                f"transaction {existing.tx_hash} already has a {existing.kind} cost of {existing.amount} "
                f"for {existing.agent!r}; now {new.amount} for {new.agent!r}"
            )
        return CostPublic.model_validate(existing)

    def pnl_by_agent(self) -> dict[str, PnL]:
        """Rewards received minus gas and LLM cost, per agent name, per currency (see ``PnL``): summed in SQL."""
        return self._queries().pnl_by_agent()

    def pnl_by_task(self) -> dict[int, PnL]:
        """Rewards received minus gas and LLM cost, per task id, per currency. Costs not tied to a task (e.g.
        a sweep's gas) are left out: they appear in ``pnl_by_agent`` only."""
        return self._queries().pnl_by_task()

    def _queries(self) -> Queries:
        return Queries(self._engine)

    # ------------------------------------------------------------------------------------------- internals

    @staticmethod
    def _task(s: Session, task_id: int, *, lock: bool = False) -> Task:
        query = select(Task).where(col(Task.id) == task_id)
        task = s.exec(query.with_for_update() if lock else query).one_or_none()
        if task is None:
            raise RecordNotFound(f"no task with id {task_id}", hint="list tasks with `deworker tasks`")
        return task

    def _locked(self, s: Session, task_id: int, expect_version: int | None) -> Task:
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
        task: Task,
        to: TaskState,
        actor: str,
        reason: str | None = None,
        *,
        tx_hash: str | None = None,
        cid: str | None = None,
        agent: str | None = None,
    ) -> None:
        """One checked transition of a task locked in ``s``, with its event (see ``transition``)."""
        assert task.id is not None
        before = task.state
        check_transition(before, to)
        if to is S.APPROVED or (before is S.AWAITING_REVIEW and to is S.PRODUCING):
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

    def _add_gas(self, s: Session, task: Task, *, amount: int, tx_hash: str) -> None:
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
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        result = s.connection().execute(insert(Cost).values(**row).on_conflict_do_nothing())
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

    def _guarded_update(self, s: Session, task: Task, values: dict[str, Any]) -> None:
        """Apply ``values`` to the task only if nobody changed it since it was read; bump its version. ``task``
        then shows the new values (as stored: the session does not write them again)."""
        assert task.id is not None
        if "state" in values:  # a step that moved on no longer waits
            values = {"wait_reason": None, "retry_at": None, "retries": 0, **values}
        values = {**values, "version": task.version + 1, "updated_at": self._clock()}
        result = s.connection().execute(
            update(Task).where(col(Task.id) == task.id, col(Task.version) == task.version).values(**values)
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

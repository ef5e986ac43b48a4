"""The store on both backends: SQLite and PostgreSQL, an empty, migrated database per test (``db_engine`` in
conftest). Migrations build every schema.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from agents.ports import Usage
from orchestrator.adapters.sql import (
    AgentCreate,
    Conflict,
    CostKind,
    DbSpendLedger,
    DuplicateRecord,
    EventKind,
    RecordNotFound,
    ReviewDecision,
    ReviewRefused,
    RunCreate,
    RunStatus,
    SelfCheck,
    StaleReview,
    Store,
    StoreError,
    StoreUnavailable,
    make_engine,
    migrate,
)
from orchestrator.adapters.sql.base import REDERIVABLE_STATES
from orchestrator.adapters.sql.cursors import MAX_CHECKPOINTS
from orchestrator.adapters.sql.db import alembic_config, relax, target_metadata
from orchestrator.adapters.sql.models import Task
from orchestrator.domain.board import BoardPhase, BoardTask, Payout
from orchestrator.domain.errors import DeworkerError, LifecycleError
from orchestrator.domain.lifecycle import TERMINAL_STATES, TRANSITIONS, TaskState
from orchestrator.domain.specs import Deliverable, DeliverableKind, TaskSpec

S = TaskState
STORE_TABLES = ("board", "task", "task_event", "agent", "run", "artifact", "review", "reward", "cost")
WALLET_TABLES = ("wallet_nonce", "wallet_tx", "wallet_spend", "wallet_audit")  # revision 0003 (wallets.journal)
TOKEN = "0x" + "70" * 20
ADDR_A = "0x" + "aa" * 20
ADDR_B = "0x" + "bb" * 20
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


# ---------------------------------------------------------------------------------------------------- fixtures


@dataclass
class Backend:
    name: str  # the dialect: "sqlite" or "postgresql"
    url: str  # for more engines on the same database
    engine: Engine


@pytest.fixture
def backend(db_engine: Engine) -> Backend:
    """A migrated, empty database on each backend (``db_engine``)."""
    return Backend(db_engine.dialect.name, db_engine.url.render_as_string(hide_password=False), db_engine)


@dataclass
class Clock:
    """A fake clock: every reading is one second after the previous one."""

    now: datetime = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(backend: Backend, clock: Clock) -> Store:
    return Store(backend.engine, max_revisions=2, clock=clock)


def board_task(task_id: int, *, board: str = "main", quarantine: str | None = None, reward: int = 10**18) -> BoardTask:
    spec = None
    if quarantine is None:
        spec = TaskSpec(
            title=f"task {task_id}",
            description="write release notes",
            deliverable=Deliverable(kind=DeliverableKind.MARKDOWN),
            skills=["writing"],
            acceptance=["mentions every change"],
        )
    return BoardTask(
        board=board,
        key=str(task_id),
        poster=ADDR_B,
        token=TOKEN,
        reward=reward,
        deadline=1_900_000_000,
        reviewer=ADDR_B,
        spec_cid=f"bafyspec{task_id}",
        phase=BoardPhase.OPEN,
        status_text="OPEN",
        spec=spec,
        quarantine_reason=quarantine,
    )


def new_task(store: Store, board_task_id: int = 1) -> int:
    task, _ = store.upsert_discovered(board_task=board_task(board_task_id))
    return task.id


def force_state(engine: Engine, task_id: int, state: TaskState, **values: Any) -> None:
    """Test setup only: put a task in ``state`` without going through the lifecycle."""
    with engine.begin() as conn:
        conn.execute(update(Task).where(Task.id == task_id).values(state=state, **values))  # type: ignore[arg-type]


def snapshot(engine: Engine) -> tuple[list[Any], int]:
    """Every task row and the number of events."""
    with engine.connect() as conn:
        tasks = [tuple(r) for r in conn.execute(text("SELECT * FROM task ORDER BY id"))]
        events = conn.execute(text("SELECT count(*) FROM task_event")).scalar_one()
    return tasks, events


def to_review(store: Store, task_id: int, cid: str) -> None:
    """Drive a task from DISCOVERED, CLAIMING, CLAIMED or PRODUCING to AWAITING_REVIEW with artifact ``cid``."""
    state = store.get_task(task_id=task_id).state
    if state is S.DISCOVERED:
        state = store.transition(task_id=task_id, to=S.CLAIMING, actor="w1", agent="alice").state
    if state is S.CLAIMING:
        state = store.transition(task_id=task_id, to=S.CLAIMED, actor="w1", tx_hash=tx(task_id)).state
    if state is S.CLAIMED:
        store.transition(task_id=task_id, to=S.PRODUCING, actor="w1")
    store.record_artifact(
        task_id=task_id, cid=cid, manifest={"files": ["a.md"]}, self_check=SelfCheck.PASSED, actor="alice"
    )
    store.transition(task_id=task_id, to=S.PRODUCED, actor="w1", cid=cid)
    store.transition(task_id=task_id, to=S.AWAITING_REVIEW, actor="w1")


# -------------------------------------------------------------------------------------------------- schema


def test_migrated_schema_matches_the_models(backend: Backend) -> None:
    # every table of every module (store, agent spend, review app, wallet journal) against the migrations
    with backend.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, target_metadata()) == []
    assert {*STORE_TABLES, *WALLET_TABLES, "agent_spend"} <= set(target_metadata().tables)


def test_migrate_is_repeatable_and_reversible(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'm.db'}")  # the folder is created
    migrate(engine)
    migrate(engine)
    command.downgrade(alembic_config(engine), "base")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'task'")).scalar_one() == 0
    migrate(engine)
    store = Store(engine)
    assert store.tasks() == []
    engine.dispose()


def test_reviews_that_gave_a_task_up_become_abandon_decisions(tmp_path: Path) -> None:
    # before 0006 "reject" meant "give the task up"; now it means "start over", so old rows are renamed
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    command.upgrade(alembic_config(engine), "0005")
    store = Store(engine, max_revisions=2)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:  # rows as the schema of 0005 holds them (today's models have more columns)
        conn.execute(text("INSERT INTO board (name, kind) VALUES ('main', 'OnchainTaskBoard')"))
        task_id = conn.execute(
            text(
                "INSERT INTO task (board, board_task_id, spec_cid, token, reward, deadline, state, revision_count, "
                "created_at, updated_at, version) VALUES ('main', 1, 'bafkspec', :token, '1', 0, "
                "'AWAITING_REVIEW', 0, :at, :at, 1) RETURNING id"
            ),
            {"token": "0x" + "11" * 20, "at": at},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO review (task_id, artifact_cid, decision, feedback, reviewer, at) "
                "VALUES (:t, 'bafyv1', 'reject', 'off-topic', 'carol', :at)"
            ),
            {"t": task_id, "at": datetime(2026, 11, 1, tzinfo=UTC)},
        )
    migrate(engine)
    assert [r.decision for r in store.reviews(task_id=task_id)] == [ReviewDecision.ABANDON]
    command.downgrade(alembic_config(engine), "0005")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT decision FROM review")).scalars().all() == ["reject"]
    engine.dispose()


def test_integer_task_ids_and_cursors_become_text_keys(backend: Backend) -> None:
    # before 0012 a task's id on its board and the board's cursors were integers; rows written then are kept
    config = alembic_config(backend.engine)
    command.downgrade(config, "0011")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    big = 2**63 - 1  # the largest BIGINT: its text must be exact
    with backend.engine.begin() as conn:  # rows as the schema of 0011 holds them
        conn.execute(text("INSERT INTO board (name, kind, poll_cursor, payout_cursor) VALUES ('main', 'x', 41, 7)"))
        task_id = conn.execute(
            text(
                "INSERT INTO task (board, board_task_id, spec_cid, token, reward, deadline, state, revision_count, "
                "retries, created_at, updated_at, version) VALUES ('main', :key, 'bafkspec', :token, '5', 0, "
                "'PAID', 0, 0, :at, :at, 3) RETURNING id"
            ),
            {"key": big, "token": TOKEN, "at": at},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO task_event (task_id, kind, to_state, actor, at) "
                "VALUES (:t, 'discovered', 'PAID', 'p', :at)"
            ),
            {"t": task_id, "at": at},
        )
        conn.execute(
            text(
                "INSERT INTO reward (board, board_task_id, task_id, recipient, token, amount, tx_hash, block_number, "
                "at) VALUES ('main', :key, :t, :addr, :token, '5', :tx, 40, :at)"
            ),
            {"key": big, "t": task_id, "addr": ADDR_A, "token": TOKEN, "tx": tx(1), "at": at},
        )
        conn.execute(
            text(
                "INSERT INTO spec_read (board, board_task_id, attempts, reading, updated_at) "
                "VALUES ('main', 3, 1, true, :at)"
            ),
            {"at": at},
        )
    migrate(backend.engine)
    store = Store(backend.engine)
    task = store.get_task(task_id=task_id)
    assert (task.task_key, task.state, task.version) == (str(big), S.PAID, 3)
    assert store.find_task(board="main", task_key=str(big)) == task
    assert [(r.task_key, r.task_id, r.amount) for r in store.rewards()] == [(str(big), task_id, 5)]
    assert [e.kind for e in store.task_events(task_id=task_id)] == [EventKind.DISCOVERED]
    assert store.begin_spec_read(board="main", task_key="3").reading  # the mark kept its key
    board = store.board(name="main")
    assert board is not None and (board.poll_cursor, board.payout_cursor) == ("41", "7")
    assert store.set_poll_cursor(board="main", cursor="42") == "42"  # still ordered as a block number
    assert store.set_poll_cursor(board="main", cursor="9") == "42"
    with backend.engine.connect() as conn:  # the same schema as a database built at head
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, target_metadata()) == []
    command.downgrade(config, "0011")  # and back: decimal text becomes the integer again
    with backend.engine.connect() as conn:
        assert conn.execute(text("SELECT board_task_id FROM task")).scalar_one() == big
        assert conn.execute(text("SELECT poll_cursor FROM board")).scalar_one() == 42
    migrate(backend.engine)


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() > 0
    engine.dispose()


@pytest.mark.parametrize("url", ["not a url", "mysql://root@localhost/x"])
def test_make_engine_refuses_bad_urls(url: str) -> None:
    with pytest.raises(StoreError, match="sqlite:///"):
        make_engine(url)


def test_unreachable_postgres_is_a_retryable_error() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    with pytest.raises(StoreUnavailable) as info:
        migrate(engine)
    assert info.value.retryable


def test_task_events_are_append_only(backend: Backend, store: Store) -> None:
    new_task(store)
    for sql in ("UPDATE task_event SET actor = 'mallory'", "DELETE FROM task_event"):
        with pytest.raises(SQLAlchemyError, match="append-only"), backend.engine.begin() as conn:
            conn.execute(text(sql))


# ----------------------------------------------------------------------------------------------- discovery


def test_discovery_is_idempotent(store: Store) -> None:
    first, created = store.upsert_discovered(board_task=board_task(7))
    again, created_again = store.upsert_discovered(board_task=board_task(7))
    assert (created, created_again) == (True, False)
    assert again == first
    assert first.state is S.DISCOVERED and first.title == "task 7" and first.reward == 10**18
    assert first.spec is not None and first.spec["schema"] == "deworker/task-spec@1"
    assert [(e.kind, e.from_state, e.to_state) for e in store.task_events(task_id=first.id)] == [
        (EventKind.DISCOVERED, None, S.DISCOVERED)
    ]
    other_board, created_other = store.upsert_discovered(board_task=board_task(7, board="second"))
    assert created_other and other_board.id != first.id


def test_quarantined_task_is_stored_with_its_reason(store: Store) -> None:
    task, _ = store.upsert_discovered(board_task=board_task(3, quarantine="spec larger than 262144 bytes"))
    assert (task.state, task.state_reason, task.title) == (S.QUARANTINED, "spec larger than 262144 bytes", None)
    events = store.task_events(task_id=task.id)
    assert [(e.from_state, e.to_state, e.reason) for e in events] == [
        (None, S.DISCOVERED, None),
        (S.DISCOVERED, S.QUARANTINED, "spec larger than 262144 bytes"),
    ]
    assert store.resumable() == []


def test_concurrent_discovery_stores_the_task_once(backend: Backend, clock: Clock) -> None:
    engines = [make_engine(backend.url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    results: list[bool] = []

    def discover(engine: Engine) -> None:
        barrier.wait()
        results.append(Store(engine, clock=clock).upsert_discovered(board_task=board_task(9))[1])

    run_threads([lambda e=e: discover(e) for e in engines])  # type: ignore[misc]
    for e in engines:
        e.dispose()
    assert sorted(results) == [False, False, False, True]
    assert len(Store(backend.engine).tasks()) == 1


# ---------------------------------------------------------------------------------------------- transitions


def test_a_task_goes_through_its_whole_lifecycle(store: Store) -> None:
    task_id = new_task(store)
    claimed = store.transition(task_id=task_id, to=S.CLAIMING, actor="w1", agent="alice", tx_hash=tx(1))
    assert (claimed.agent_name, claimed.claim_tx_hash, claimed.version) == ("alice", tx(1), 2)
    to_review(store, task_id, "bafyart1")
    store.record_review(task_id=task_id, artifact_cid="bafyart1", decision=ReviewDecision.APPROVE, reviewer="carol")
    with pytest.raises(StaleReview):
        store.transition(task_id=task_id, to=S.SUBMITTING, actor="w1", cid="bafyother")
    store.transition(task_id=task_id, to=S.SUBMITTING, actor="w1", cid="bafyart1", tx_hash=tx(2))
    done = store.transition(task_id=task_id, to=S.SUBMITTED, actor="w1", tx_hash=tx(2))
    assert done.submit_tx_hash == tx(2) and done.artifact_cid == "bafyart1"
    store.record_reward(payout=Payout("main", str(1), ADDR_A, TOKEN, 10**18, tx(3), 99))
    final = store.get_task(task_id=task_id)
    assert final.state is S.PAID
    states = [e.to_state for e in store.task_events(task_id=task_id)]
    assert states == [
        S.DISCOVERED, S.CLAIMING, S.CLAIMED, S.PRODUCING, S.PRODUCING, S.PRODUCED, S.AWAITING_REVIEW,
        S.APPROVED, S.SUBMITTING, S.SUBMITTED, S.PAID,
    ]  # fmt: skip
    assert final.version == len(states)  # every change bumped the version exactly once
    assert store.resumable() == []


def test_every_illegal_transition_is_refused_and_changes_nothing(backend: Backend, store: Store) -> None:
    ids = {}
    for n, state in enumerate(TaskState, start=1):
        ids[state] = new_task(store, n)
        force_state(backend.engine, ids[state], state)
    before = snapshot(backend.engine)
    refused = 0
    for state, task_id in ids.items():
        for to in TaskState:
            if to in TRANSITIONS[state]:
                continue
            with pytest.raises(LifecycleError, match=f"from {state} to {to}"):
                store.transition(task_id=task_id, to=to, actor="w1", reason="nope", tx_hash=tx(1), agent="x")
            refused += 1
    assert refused == len(TaskState) ** 2 - sum(len(v) for v in TRANSITIONS.values())
    assert snapshot(backend.engine) == before


def test_review_decisions_cannot_be_made_by_transition(store: Store) -> None:
    task_id = new_task(store)
    to_review(store, task_id, "bafyart1")
    for to in (S.APPROVED, S.PRODUCING):
        with pytest.raises(ReviewRefused, match="deworker review approve"):
            store.transition(task_id=task_id, to=to, actor="w1")
    assert store.get_task(task_id=task_id).state is S.AWAITING_REVIEW


def test_unknown_task_is_reported(store: Store) -> None:
    with pytest.raises(RecordNotFound):
        store.transition(task_id=404, to=S.CLAIMING, actor="w1")


def test_state_and_event_are_written_in_one_transaction(backend: Backend, store: Store) -> None:
    task_id = new_task(store)
    before = snapshot(backend.engine)
    seen: list[str] = []

    def fail_on_event_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)
        if statement.startswith("INSERT INTO task_event"):
            raise RuntimeError("power cut")

    event.listen(backend.engine, "before_cursor_execute", fail_on_event_insert)
    try:
        with pytest.raises(RuntimeError, match="power cut"):
            store.transition(task_id=task_id, to=S.SKIPPED, actor="w1", reason="no agent has the skills")
    finally:
        event.remove(backend.engine, "before_cursor_execute", fail_on_event_insert)
    assert any(sql.startswith("UPDATE task SET state") for sql in seen)  # the state was written before the failure
    assert snapshot(backend.engine) == before
    skipped = store.transition(task_id=task_id, to=S.SKIPPED, actor="w1", reason="no agent has the skills")
    assert skipped.state_reason == "no agent has the skills"
    assert store.task_events(task_id=task_id)[-1].reason == "no agent has the skills"


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)


def test_concurrent_transitions_exactly_one_wins(backend: Backend, clock: Clock) -> None:
    """Two workers, each with its own engine, race to move the same task: one wins, the other gets Conflict."""
    main = Store(backend.engine, clock=clock)
    engines = [make_engine(backend.url) for _ in range(2)]

    def worker(engine: Engine, to: TaskState, task_id: int, version: int, barrier: threading.Barrier) -> object:
        barrier.wait()
        try:
            return Store(engine, clock=clock).transition(task_id=task_id, to=to, actor=str(to), expect_version=version)
        except DeworkerError as exc:
            return exc

    try:
        for round_ in range(5):
            task_id = new_task(main, 100 + round_)
            version = main.transition(task_id=task_id, to=S.CLAIMING, actor="w0").version
            barrier = threading.Barrier(2)
            with ThreadPoolExecutor(2) as pool:
                futures = [
                    pool.submit(worker, engine, to, task_id, version, barrier)
                    for engine, to in zip(engines, (S.CLAIMED, S.LOST), strict=True)
                ]
                outcomes = [f.result(timeout=30) for f in futures]
            errors = [o for o in outcomes if isinstance(o, Exception)]
            assert len(errors) == 1 and isinstance(errors[0], Conflict), outcomes
            events = main.task_events(task_id=task_id)
            assert [e.to_state for e in events][:2] == [S.DISCOVERED, S.CLAIMING] and len(events) == 3
            assert main.get_task(task_id=task_id).state is events[-1].to_state
    finally:
        for e in engines:
            e.dispose()


def test_concurrent_transitions_without_expected_version_still_write_one_event(backend: Backend) -> None:
    engines = [make_engine(backend.url) for _ in range(2)]
    task_id = new_task(Store(backend.engine))
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def worker(engine: Engine) -> None:
        barrier.wait()
        try:
            outcomes.append(Store(engine).transition(task_id=task_id, to=S.CLAIMING, actor="w"))
        except DeworkerError as exc:
            outcomes.append(exc)

    run_threads([lambda e=e: worker(e) for e in engines])  # type: ignore[misc]
    for e in engines:
        e.dispose()
    # the loser sees the winner's state (CLAIMING -> CLAIMING is not a transition)
    assert sum(isinstance(o, LifecycleError | Conflict) for o in outcomes) == 1
    assert len(Store(backend.engine).task_events(task_id=task_id)) == 2


def test_the_version_guard_catches_a_change_the_row_lock_missed(backend: Backend, store: Store) -> None:
    """Belt and braces: if the row changed between the read and the update (a lock that did not hold, a hand
    edit), the version-guarded UPDATE matches nothing and the transition fails as a whole."""
    task_id = new_task(store)

    def bump_version_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE task SET state"):
            cursor.execute("UPDATE task SET version = version + 100")

    event.listen(backend.engine, "before_cursor_execute", bump_version_first)
    try:
        with pytest.raises(Conflict, match="changed while"):
            store.transition(task_id=task_id, to=S.CLAIMING, actor="w1")
    finally:
        event.remove(backend.engine, "before_cursor_execute", bump_version_first)
    task = store.get_task(task_id=task_id)
    assert (task.state, task.version, len(store.task_events(task_id=task_id))) == (S.DISCOVERED, 1, 1)


def test_stale_version_is_a_conflict(store: Store) -> None:
    task_id = new_task(store)
    seen = store.get_task(task_id=task_id)
    store.transition(task_id=task_id, to=S.CLAIMING, actor="w1")
    with pytest.raises(Conflict, match="another worker"):
        store.transition(task_id=task_id, to=S.SKIPPED, actor="w2", reason="x", expect_version=seen.version)


# ---------------------------------------------------------------------------------------------------- reviews


def test_an_approval_is_bound_to_the_artifact_it_was_shown(store: Store) -> None:
    task_id = new_task(store)
    to_review(store, task_id, "bafyv1")
    store.record_review(
        task_id=task_id,
        artifact_cid="bafyv1",
        decision=ReviewDecision.REQUEST_CHANGES,
        reviewer="carol",
        feedback="add a summary",
    )
    revising = store.get_task(task_id=task_id)
    assert (revising.state, revising.state_reason, revising.revision_count) == (S.PRODUCING, "add a summary", 1)
    to_review(store, task_id, "bafyv2")
    before = store.get_task(task_id=task_id)
    with pytest.raises(StaleReview, match="current artifact is bafyv2"):
        store.record_review(task_id=task_id, artifact_cid="bafyv1", decision=ReviewDecision.APPROVE, reviewer="dave")
    assert store.get_task(task_id=task_id) == before
    review = store.record_review(
        task_id=task_id, artifact_cid="bafyv2", decision=ReviewDecision.APPROVE, reviewer="carol"
    )
    assert review.artifact_cid == "bafyv2"
    assert [(r.decision, r.artifact_cid, r.reviewer) for r in store.reviews(task_id=task_id)] == [
        (ReviewDecision.REQUEST_CHANGES, "bafyv1", "carol"),
        (ReviewDecision.APPROVE, "bafyv2", "carol"),
    ]
    audit = [e for e in store.task_events(task_id=task_id) if e.kind is EventKind.REVIEW]
    assert [(e.actor, e.cid, e.to_state, e.reason) for e in audit] == [
        ("carol", "bafyv1", S.PRODUCING, "request_changes: add a summary"),
        ("carol", "bafyv2", S.APPROVED, "approve"),
    ]
    assert [a.revision for a in store.artifacts(task_id=task_id)] == [0, 1]
    with pytest.raises(ReviewRefused, match="not awaiting"):  # approving twice
        store.record_review(task_id=task_id, artifact_cid="bafyv2", decision=ReviewDecision.APPROVE, reviewer="x")


def test_review_refusals(store: Store) -> None:
    task_id = new_task(store)
    to_review(store, task_id, "bafyv1")
    with pytest.raises(ReviewRefused, match="feedback"):
        store.record_review(
            task_id=task_id, artifact_cid="bafyv1", decision=ReviewDecision.REQUEST_CHANGES, reviewer="c"
        )
    for n in (1, 2):  # max_revisions=2
        store.record_review(
            task_id=task_id,
            artifact_cid=f"bafyv{n}",
            decision=ReviewDecision.REQUEST_CHANGES,
            reviewer="c",
            feedback="again",
        )
        to_review(store, task_id, f"bafyv{n + 1}")
    with pytest.raises(ReviewRefused, match="limit"):
        store.record_review(
            task_id=task_id, artifact_cid="bafyv3", decision=ReviewDecision.REQUEST_CHANGES, reviewer="c", feedback="x"
        )
    with pytest.raises(ReviewRefused, match="limit"):  # a rejection is a revision too
        store.record_review(
            task_id=task_id, artifact_cid="bafyv3", decision=ReviewDecision.REJECT, reviewer="c", feedback="x"
        )
    abandoned = store.record_review(
        task_id=task_id, artifact_cid="bafyv3", decision=ReviewDecision.ABANDON, reviewer="c", feedback="off-topic"
    )
    assert abandoned.decision is ReviewDecision.ABANDON
    task = store.get_task(task_id=task_id)
    assert (task.state, task.state_reason) == (S.ABANDONED, "off-topic")


def test_a_rejection_sends_the_task_back_with_its_reason(store: Store) -> None:
    task_id = new_task(store)
    to_review(store, task_id, "bafyv1")
    for blank in (None, "", "  \n"):
        with pytest.raises(ReviewRefused, match="rejecting needs feedback"):
            store.record_review(
                task_id=task_id, artifact_cid="bafyv1", decision=ReviewDecision.REJECT, reviewer="c", feedback=blank
            )
    rejected = store.record_review(
        task_id=task_id, artifact_cid="bafyv1", decision=ReviewDecision.REJECT, reviewer="c", feedback="wrong topic"
    )
    assert rejected.decision is ReviewDecision.REJECT
    task = store.get_task(task_id=task_id)
    assert (task.state, task.state_reason, task.revision_count) == (S.PRODUCING, "wrong topic", 1)


def test_automatic_approval_from_produced(store: Store) -> None:
    task_id = new_task(store)
    to_review(store, task_id, "bafyv1")
    other = new_task(store, 2)
    store.transition(task_id=other, to=S.CLAIMING, actor="w1")
    store.transition(task_id=other, to=S.CLAIMED, actor="w1")
    store.transition(task_id=other, to=S.PRODUCING, actor="w1")
    store.record_artifact(task_id=other, cid="bafyauto", manifest={}, self_check=SelfCheck.NONE, actor="bob")
    store.transition(task_id=other, to=S.PRODUCED, actor="w1")
    store.record_review(task_id=other, artifact_cid="bafyauto", decision=ReviewDecision.APPROVE, reviewer="auto-policy")
    assert store.get_task(task_id=other).state is S.APPROVED


def test_artifacts_are_recorded_idempotently_and_only_while_producing(backend: Backend, store: Store) -> None:
    task_id = new_task(store)
    with pytest.raises(StoreError, match="only while PRODUCING"):
        store.record_artifact(task_id=task_id, cid="bafy1", manifest={}, self_check=SelfCheck.NONE, actor="a")
    force_state(backend.engine, task_id, S.PRODUCING)
    first = store.record_artifact(
        task_id=task_id, cid="bafy1", manifest={"k": 1}, self_check=SelfCheck.FAILED, actor="a"
    )
    again = store.record_artifact(
        task_id=task_id, cid="bafy1", manifest={"k": 1}, self_check=SelfCheck.FAILED, actor="a"
    )
    assert again == first and first.manifest == {"k": 1} and first.self_check is SelfCheck.FAILED
    assert [e.kind for e in store.task_events(task_id=task_id)].count(EventKind.ARTIFACT) == 1


def test_pending_reviews_oldest_first(store: Store, clock: Clock) -> None:
    first, second = new_task(store, 1), new_task(store, 2)
    to_review(store, second, "bafysecond")  # created later, but waits longer
    clock.now += timedelta(hours=1)
    to_review(store, first, "bafyfirst")
    pending = store.pending_reviews()
    assert [(p.task.id, p.artifact.cid) for p in pending] == [(second, "bafysecond"), (first, "bafyfirst")]
    store.record_review(task_id=second, artifact_cid="bafysecond", decision=ReviewDecision.APPROVE, reviewer="c")
    assert [p.task.id for p in store.pending_reviews()] == [first]


def test_pending_reviews_page_and_counts_by_state(store: Store, clock: Clock) -> None:
    ids = [new_task(store, n) for n in range(1, 6)]
    for n, task_id in enumerate(ids):
        clock.now += timedelta(minutes=1)
        to_review(store, task_id, f"bafy{n}")
    assert [p.task.id for p in store.pending_reviews(limit=2)] == ids[:2]
    assert [p.task.id for p in store.pending_reviews(limit=2, offset=2)] == ids[2:4]
    assert [p.task.id for p in store.pending_reviews(offset=4)] == ids[4:]
    new_task(store, 99)
    assert store.count_by_state() == {S.AWAITING_REVIEW: 5, S.DISCOVERED: 1}


# ------------------------------------------------------------------------------------------------------ money


def test_rewards_are_recorded_once(backend: Backend, store: Store) -> None:
    store.upsert_agent(agent=AgentCreate(name="alice", address=ADDR_A, skills=["writing"]))
    task_id = new_task(store)
    force_state(backend.engine, task_id, S.SUBMITTED, agent_name="alice")
    payout = Payout("main", str(1), ADDR_A, TOKEN, 2**255, tx(5), 42)  # more than 64 bits survives exactly
    reward, created = store.record_reward(payout=payout)
    again, created_again = store.record_reward(payout=payout)
    assert (created, created_again) == (True, False) and again == reward
    assert (reward.amount, reward.agent, reward.task_id) == (2**255, "alice", task_id)
    assert store.get_task(task_id=task_id).state is S.PAID
    assert [e.kind for e in store.task_events(task_id=task_id)].count(EventKind.REWARD) == 1
    with pytest.raises(DuplicateRecord, match="already paid"):
        store.record_reward(payout=Payout("main", str(1), ADDR_A, TOKEN, 5, tx(6), 43))
    # one transaction may pay several tasks (a DAO batching its approvals); the recipient identifies the agent
    batched, created = store.record_reward(
        payout=Payout("main", str(77), ADDR_A.upper().replace("0X", "0x"), TOKEN, 1, tx(5), 42)
    )
    assert created and batched.agent == "alice" and batched.task_id is None
    with pytest.raises(RecordNotFound, match="neither the task nor the recipient"):
        store.record_reward(payout=Payout("main", str(78), ADDR_B, TOKEN, 1, tx(7), 44))


def test_a_payout_removed_by_a_reorg_is_uncredited_then_recorded_again(backend: Backend, store: Store) -> None:
    store.upsert_agent(agent=AgentCreate(name="alice", address=ADDR_A, skills=["writing"]))
    task_id = new_task(store)
    force_state(backend.engine, task_id, S.SUBMITTED, agent_name="alice")
    reward, _ = store.record_reward(payout=Payout("main", str(1), ADDR_A, TOKEN, 9, tx(5), 42))
    assert [r.id for r in store.rewards(from_block=42)] == [reward.id] and store.rewards(from_block=43) == []
    task = store.uncredit_reward(reward_id=reward.id, reason="payout gone (a reorg)")
    assert task is not None and task.state is S.SUBMITTED and store.rewards() == []
    last = store.task_events(task_id=task_id)[-1]
    assert (last.kind, last.from_state, last.to_state, last.tx_hash) == (EventKind.REWARD, S.PAID, S.SUBMITTED, tx(5))
    assert store.uncredit_reward(reward_id=reward.id, reason="again") is None  # gone already: nothing changes
    again, created = store.record_reward(payout=Payout("main", str(1), ADDR_A, TOKEN, 9, tx(9), 44))  # mined again
    assert created and again.tx_hash == tx(9) and store.get_task(task_id=task_id).state is S.PAID


def test_cursors_keep_the_hash_of_their_block_and_recent_checkpoints(store: Store) -> None:
    store.ensure_board(name="main", kind="onchain")
    for cursor in range(1, 41):
        store.set_poll_cursor(board="main", cursor=str(cursor), block_hash=tx(cursor - 1))
    store.set_payout_cursor(board="main", cursor="40", block_hash=tx(39))
    saved = store.board(name="main")
    assert saved is not None and (saved.poll_cursor, saved.poll_cursor_hash) == ("40", tx(39))
    assert saved.payout_cursor_hash == tx(39)
    assert saved.checkpoints is not None and len(saved.checkpoints) == MAX_CHECKPOINTS  # the newest only
    assert saved.checkpoints[-1] == [39, tx(39)] and saved.checkpoints[0] == [39 - MAX_CHECKPOINTS + 1, tx(8)]
    assert store.set_poll_cursor(board="main", cursor="30", block_hash=tx(99)) == "40"  # not backwards by itself
    # a rewind after a reorg: the cursor goes back, checkpoints above its block go (those blocks were replaced)
    assert store.set_poll_cursor(board="main", cursor="30", block_hash=tx(99), rewind=True) == "30"
    saved = store.board(name="main")
    assert saved is not None and (saved.poll_cursor, saved.poll_cursor_hash) == ("30", tx(99))
    assert saved.checkpoints is not None and saved.checkpoints[-1] == [29, tx(99)]
    assert all(int(n) <= 29 for n, _ in saved.checkpoints)


def test_a_cursor_that_is_not_a_block_number_is_saved_as_given(store: Store) -> None:
    # a board whose cursor is opaque text (a page token): no order to keep, no block to checkpoint
    store.ensure_board(name="main", kind="market")
    assert store.set_poll_cursor(board="main", cursor="page-b", block_hash=tx(1)) == "page-b"
    assert store.set_poll_cursor(board="main", cursor="page-a") == "page-a"
    saved = store.board(name="main")
    assert saved is not None and (saved.poll_cursor, saved.checkpoints) == ("page-a", None)


def test_reward_for_a_task_not_yet_marked_submitted_keeps_its_state(backend: Backend, store: Store) -> None:
    task_id = new_task(store)
    force_state(backend.engine, task_id, S.SUBMITTING, agent_name="alice")
    store.record_reward(payout=Payout("main", str(1), ADDR_A, TOKEN, 3, tx(8), 50))
    assert store.get_task(task_id=task_id).state is S.SUBMITTING
    last = store.task_events(task_id=task_id)[-1]
    assert (last.kind, last.from_state, last.to_state) == (EventKind.REWARD, S.SUBMITTING, S.SUBMITTING)


def test_profit_and_loss_per_agent_and_task_per_currency(backend: Backend, store: Store) -> None:
    t1, t2 = new_task(store, 1), new_task(store, 2)
    for task_id, agent in ((t1, "alice"), (t2, "bob")):
        force_state(backend.engine, task_id, S.SUBMITTED, agent_name=agent)
    store.record_reward(payout=Payout("main", str(1), ADDR_A, TOKEN, 5 * 10**20, tx(1), 10))
    store.record_reward(payout=Payout("main", str(2), ADDR_B, TOKEN, 10**18, tx(2), 11))
    store.record_cost(agent="alice", kind=CostKind.GAS, amount=21_000 * 10**9, task_id=t1, tx_hash=tx(11))
    store.record_cost(agent="alice", kind=CostKind.GAS, amount=50_000 * 10**9, task_id=t1, tx_hash=tx(12))
    _, created = store.record_cost(agent="alice", kind=CostKind.GAS, amount=50_000 * 10**9, task_id=t1, tx_hash=tx(12))
    assert not created  # the same transaction's gas counts once
    with pytest.raises(DuplicateRecord):
        store.record_cost(agent="bob", kind=CostKind.GAS, amount=1, task_id=t2, tx_hash=tx(12))
    store.record_cost(agent="alice", kind=CostKind.GAS, amount=7, tx_hash=tx(13))  # a sweep: no task
    store.record_cost(agent="bob", kind=CostKind.LLM, amount=1_500, task_id=t2)
    store.record_run(
        run=RunCreate(
            task_id=t1,
            agent="alice",
            started_at=T0,
            finished_at=T0 + timedelta(seconds=30),
            status=RunStatus.PRODUCED,
            prompt_tokens=1000,
            completion_tokens=200,
            cost_usd_micro=2_500,
        )
    )
    with pytest.raises(StoreError, match="needs a tx_hash"):
        store.record_cost(agent="bob", kind=CostKind.GAS, amount=1)

    by_agent = store.pnl_by_agent()
    assert by_agent["alice"].net() == {TOKEN: 5 * 10**20, "wei": -(71_000 * 10**9 + 7), "usd_micro": -2_500}
    assert by_agent["bob"].net() == {TOKEN: 10**18, "usd_micro": -1_500}
    by_task = store.pnl_by_task()
    assert by_task[t1].net() == {TOKEN: 5 * 10**20, "wei": -71_000 * 10**9, "usd_micro": -2_500}
    assert by_task[t2].net() == {TOKEN: 10**18, "usd_micro": -1_500}


def test_revenue_claims_are_recorded_once_per_claim_and_kept_apart_from_bounties(
    backend: Backend, store: Store
) -> None:
    """Pool revenue sits in its own table, per agent, pool and token: the same claim (transaction, pool, token)
    recorded again changes nothing, a different amount for it is refused, and the P&L keeps it apart from
    bounties (``PnL.revenue``) while ``net`` adds both."""
    pool_a, pool_b = "0x" + "aa" * 20, "0x" + "bb" * 20
    t1 = new_task(store, 1)
    force_state(backend.engine, t1, S.SUBMITTED, agent_name="alice")
    store.record_reward(payout=Payout("main", str(1), ADDR_A, TOKEN, 5 * 10**20, tx(1), 10))
    claim = dict(
        agent="alice", pool=pool_a, token=TOKEN, holder=ADDR_A, amount=3 * 10**20, tx_hash=tx(2), block_number=12
    )
    _, created = store.record_revenue_claim(**claim)  # type: ignore[arg-type]
    assert created
    _, created = store.record_revenue_claim(**claim)  # type: ignore[arg-type]
    assert not created
    with pytest.raises(DuplicateRecord, match="revenue claim"):
        store.record_revenue_claim(**{**claim, "amount": 1})  # type: ignore[arg-type]
    store.record_revenue_claim(**{**claim, "pool": pool_b, "amount": 7})  # type: ignore[arg-type]
    store.record_revenue_claim(**{**claim, "agent": "bob", "holder": ADDR_B, "tx_hash": tx(3), "amount": 2**200})  # type: ignore[arg-type]

    assert len(store.revenue_claims()) == 3
    by_agent = store.pnl_by_agent()
    assert by_agent["alice"].rewards == {TOKEN: 5 * 10**20}
    assert by_agent["alice"].revenue == {(pool_a, TOKEN): 3 * 10**20, (pool_b, TOKEN): 7}
    assert by_agent["alice"].net() == {TOKEN: 8 * 10**20 + 7}
    assert by_agent["bob"].revenue == {(pool_a, TOKEN): 2**200}  # exact beyond 64 bits
    assert store.pnl_by_task()[t1].revenue == {}  # revenue belongs to an agent and a project, not a task


def test_pool_holdings_are_a_snapshot_replaced_per_agent(store: Store) -> None:
    """Each read of an agent's holdings replaces its rows (a pool it left drops out) and leaves other agents'
    alone; amounts beyond 64 bits are exact."""
    pool_a, pool_b = "0x" + "aa" * 20, "0x" + "bb" * 20
    store.record_holdings(agent="alice", holder=ADDR_A, holdings=[(pool_a, TOKEN, 30, 2**200), (pool_b, TOKEN, 5, 0)])
    store.record_holdings(agent="bob", holder=ADDR_B, holdings=[(pool_a, TOKEN, 10, 7)])
    rows = [(h.agent, h.pool, h.shares, h.claimable) for h in store.holdings()]
    assert rows == [("alice", pool_a, 30, 2**200), ("alice", pool_b, 5, 0), ("bob", pool_a, 10, 7)]
    store.record_holdings(agent="alice", holder=ADDR_A, holdings=[(pool_a, TOKEN, 40, 0)])
    rows = [(h.agent, h.pool, h.shares, h.claimable) for h in store.holdings()]
    assert rows == [("alice", pool_a, 40, 0), ("bob", pool_a, 10, 7)]
    assert all(h.holder == (ADDR_A if h.agent == "alice" else ADDR_B) for h in store.holdings())


def test_runs_are_numbered_per_task(store: Store) -> None:
    task_id = new_task(store)
    run = RunCreate(
        task_id=task_id, agent="alice", started_at=T0, finished_at=T0, status=RunStatus.FAILED, error="timeout"
    )
    attempts = [store.record_run(run=run).attempt for _ in range(3)]
    assert attempts == [1, 2, 3]
    assert [r.error for r in store.runs(task_id=task_id)] == ["timeout"] * 3
    assert store.pnl_by_task() == {}  # a run without cost records none


def test_run_costs_are_shares_of_the_ledger_total(
    backend: Backend, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = new_task(store)
    ledger, key = DbSpendLedger(backend.engine), "main:1"
    call = Usage(prompt_tokens=100, completion_tokens=20, calls=1)
    run = RunCreate(task_id=task_id, agent="alice", started_at=T0, finished_at=T0, status=RunStatus.PRODUCED)
    assert store.settle_unrecorded_run(task_id=task_id, spend_key=key, agent="alice") is None  # no ledger row
    ledger.record("alice", task=key, usage=call, cost=Decimal("0.0000275"))  # a run the process died in
    with caplog.at_level(logging.WARNING, logger="orchestrator.adapters.sql.runs"):
        settled = store.settle_unrecorded_run(task_id=task_id, spend_key=key, agent="alice")
    assert settled is not None and settled.status is RunStatus.INTERRUPTED
    assert (settled.prompt_tokens, settled.completion_tokens, settled.cost_usd_micro) == (100, 20, 27)
    # one readable line, not a tuple such as (100, 20, 27) (issue 15 item 3)
    assert caplog.messages[-1].endswith("from the spend ledger: 100 prompt and 20 completion tokens, $0.000027")
    assert store.settle_unrecorded_run(task_id=task_id, spend_key=key, agent="alice") is None  # settled once
    for _ in range(2):
        ledger.record("alice", task=key, usage=call, cost=Decimal("0.0000275"))
    # the run's own figures (from its manifest) give way to its share of the total
    shared = store.record_run(run=run.model_copy(update={"cost_usd_micro": 55}), spend_key=key)
    assert (shared.prompt_tokens, shared.completion_tokens, shared.cost_usd_micro) == (200, 40, 55)
    assert store.pnl_by_task()[task_id].llm_usd_micro == 82  # floor(82.5): the shares never drift
    alone = store.record_run(run=run.model_copy(update={"cost_usd_micro": 7}), spend_key=None)
    assert alone.cost_usd_micro == 7  # no ledger (an in-memory one): the run's own figures


# ------------------------------------------------------------------------------------------- recovery, cursors


def test_resumable_tasks_are_the_non_terminal_ones(backend: Backend, store: Store) -> None:
    ids = {}
    for n, state in enumerate(TaskState, start=1):
        ids[state] = new_task(store, n)
        force_state(backend.engine, ids[state], state)
    resumable = store.resumable()
    assert {t.state for t in resumable} == set(TaskState) - TERMINAL_STATES
    assert [t.id for t in resumable] == sorted(t.id for t in resumable)
    assert [t.id for t in store.tasks(state=S.LOST)] == [ids[S.LOST]]


def test_cursors_move_forward_only(store: Store) -> None:
    with pytest.raises(RecordNotFound, match="ensure_board"):
        store.set_poll_cursor(board="main", cursor="5")
    board = store.ensure_board(name="main", kind="onchain")
    assert (board.poll_cursor, board.payout_cursor) == (None, None)
    assert store.ensure_board(name="main", kind="onchain") == board
    assert store.set_poll_cursor(board="main", cursor="100") == "100"
    assert store.set_poll_cursor(board="main", cursor="90") == "100"  # a slow worker cannot rewind it
    assert store.set_payout_cursor(board="main", cursor="7") == "7"
    saved = store.board(name="main")
    assert saved is not None and (saved.poll_cursor, saved.payout_cursor) == ("100", "7")
    assert store.board(name="other") is None


def test_agents_are_upserted_by_name(store: Store) -> None:
    store.upsert_agent(agent=AgentCreate(name="alice", address=ADDR_A, skills=["writing"]))
    store.upsert_agent(agent=AgentCreate(name="bob", address=ADDR_B, enabled=False))
    updated = store.upsert_agent(agent=AgentCreate(name="alice", address=ADDR_B, skills=["code"]))
    assert (updated.address, updated.skills) == (ADDR_B, ["code"])
    assert [a.name for a in store.agents()] == ["alice", "bob"]
    assert [a.name for a in store.agents(enabled_only=True)] == ["alice"]


def test_timestamps_are_utc_and_naive_ones_refused(backend: Backend, store: Store) -> None:
    task = store.get_task(task_id=new_task(store))
    assert task.created_at.tzinfo is not None and task.created_at.utcoffset() == timedelta(0)
    naive = Store(backend.engine, clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(StoreError, match="naive datetime"):
        naive.upsert_discovered(board_task=board_task(2))


# ------------------------------------------------------------------------------------------------- durability


def _sync_level(session: Session, backend: str) -> str:
    if backend == "sqlite":
        return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[session.execute(text("PRAGMA synchronous")).scalar_one()]
    return str(session.execute(text("SHOW synchronous_commit")).scalar_one())


def test_relax_skips_the_fsync_of_one_transaction_only(backend: Backend) -> None:
    durable, relaxed = ("FULL", "NORMAL") if backend.name == "sqlite" else ("on", "off")
    with Session(backend.engine) as s, s.begin():
        relax(s)
        assert _sync_level(s, backend.name) == relaxed
    for _ in range(3):  # the pooled connection goes back to durable commits
        with Session(backend.engine) as s, s.begin():
            assert _sync_level(s, backend.name) == durable


def _commit_levels(engine: Engine) -> list[str]:
    """Records the SQLite synchronous level each transaction begins with (what its commit will use)."""
    levels: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            levels.append(conn.info["synchronous"])

    event.listen(engine, "before_cursor_execute", before)
    return levels


def test_only_rederivable_records_commit_without_fsync(tmp_path: Path) -> None:
    """Steps that precede a transaction (CLAIMING, SUBMITTING) and cursors wait for the disk; what the
    orchestrator re-derives from the chain or by re-running (CLAIMED, PRODUCING, PRODUCED, SUBMITTED, gas, runs,
    artifacts, discovered tasks before their cursor) does not."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    store = Store(engine)
    store.ensure_board(name="main", kind="onchain")
    levels = _commit_levels(engine)

    def level_of(action: Callable[[], object]) -> str:
        levels.clear()
        action()
        assert levels, "no transaction began"
        return levels[-1]

    task_id = 0

    def discover() -> None:
        nonlocal task_id
        task_id = new_task(store)

    assert level_of(discover) == "NORMAL"
    assert level_of(lambda: store.set_poll_cursor(board="main", cursor="10")) == "FULL"
    assert level_of(lambda: store.transition(task_id=task_id, to=S.CLAIMING, actor="m", agent="a")) == "FULL"
    assert (
        level_of(lambda: store.record_cost(agent="a", kind=CostKind.GAS, amount=1, task_id=task_id, tx_hash=tx(1)))
        == "NORMAL"
    )
    for state in (S.CLAIMED, S.PRODUCING):
        assert state in REDERIVABLE_STATES
        assert level_of(lambda state=state: store.transition(task_id=task_id, to=state, actor="a")) == "NORMAL"
    assert (
        level_of(
            lambda: store.record_artifact(
                task_id=task_id, cid="bafyart", manifest={}, self_check=SelfCheck.PASSED, actor="a"
            )
        )
        == "NORMAL"
    )
    assert level_of(lambda: store.transition(task_id=task_id, to=S.PRODUCED, actor="a", cid="bafyart")) == "NORMAL"
    assert (
        level_of(
            lambda: store.record_review(
                task_id=task_id, artifact_cid="bafyart", decision=ReviewDecision.APPROVE, reviewer="auto"
            )
        )
        == "FULL"
    )
    assert level_of(lambda: store.transition(task_id=task_id, to=S.SUBMITTING, actor="a", cid="bafyart")) == "FULL"
    assert level_of(lambda: store.transition(task_id=task_id, to=S.SUBMITTED, actor="a", cid="bafyart")) == "NORMAL"
    assert level_of(lambda: store.set_payout_cursor(board="main", cursor="1")) == "FULL"  # the default stays durable
    engine.dispose()
    reopened = Store(make_engine(f"sqlite:///{tmp_path / 'store.db'}"))
    assert reopened.get_task(task_id=task_id).state is S.SUBMITTED  # relaxed commits are commits


def _begins(engine: Engine) -> list[str]:
    """Records every BEGIN statement SQLite runs."""
    begins: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    return begins


def test_pure_reads_take_no_write_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    store = Store(engine)
    task_id = new_task(store)
    begins = _begins(engine)
    store.get_task(task_id=task_id)
    store.tasks()
    store.resumable()
    store.task_events(task_id=task_id)
    assert begins == ["BEGIN"] * 4
    begins.clear()
    store.transition(task_id=task_id, to=S.CLAIMING, actor="m", agent="alice")
    assert begins == ["BEGIN IMMEDIATE"]
    # a writer holding the lock does not block a reader
    with engine.connect() as writer:
        writer.execute(text("UPDATE task SET title = title"))  # BEGIN IMMEDIATE: holds the write lock
        assert store.get_task(task_id=task_id).state is S.CLAIMING
        writer.rollback()
    engine.dispose()


# ------------------------------------------------------------------------------------- combined transactions


def _claiming(store: Store, board_task_id: int = 1) -> int:
    task_id = new_task(store, board_task_id)
    store.transition(task_id=task_id, to=S.CLAIMING, actor="m", agent="alice")
    return task_id


def test_gas_is_recorded_with_the_transition(backend: Backend, store: Store) -> None:
    task_id = _claiming(store)
    task = store.transition(task_id=task_id, to=S.CLAIMED, actor="alice", tx_hash=tx(1), gas_wei=21_000)
    assert task.state is S.CLAIMED and task.claim_tx_hash == tx(1)
    assert store.pnl_by_task()[task_id].gas_wei == 21_000
    assert store.pnl_by_agent()["alice"].gas_wei == 21_000
    with pytest.raises(StoreError, match="needs the tx_hash"):
        store.transition(task_id=task_id, to=S.PRODUCING, actor="alice", gas_wei=1)
    # a transition that fails records no gas: both are one transaction
    other = _claiming(store, 2)
    stale = store.get_task(task_id=other).version - 1
    with pytest.raises(Conflict):
        store.transition(task_id=other, to=S.CLAIMED, actor="alice", tx_hash=tx(2), gas_wei=5, expect_version=stale)
    assert other not in store.pnl_by_task()
    assert store.get_task(task_id=other).state is S.CLAIMING


def test_a_gas_hash_recorded_before_does_not_break_the_transition(backend: Backend, store: Store) -> None:
    task_id = _claiming(store)
    store.record_cost(agent="alice", kind=CostKind.GAS, amount=7, task_id=task_id, tx_hash=tx(1))
    task = store.transition(task_id=task_id, to=S.CLAIMED, actor="alice", tx_hash=tx(1), gas_wei=7)
    assert task.state is S.CLAIMED
    # a differing amount for the same hash keeps the first record and still moves the task
    task = store.transition(task_id=task_id, to=S.PRODUCING, actor="alice", tx_hash=tx(1), gas_wei=99)
    assert task.state is S.PRODUCING
    assert store.pnl_by_task()[task_id].gas_wei == 7


def test_transition_via_a_state_writes_both_steps_in_one_transaction(backend: Backend, store: Store) -> None:
    task_id = _claiming(store)
    before = store.get_task(task_id=task_id)
    task = store.transition(
        task_id=task_id,
        via=S.CLAIMED,
        to=S.PRODUCING,
        actor="alice",
        reason="claimed",
        tx_hash=tx(3),
        gas_wei=11,
        expect_version=before.version,
    )
    assert task.state is S.PRODUCING and task.claim_tx_hash == tx(3) and task.version == before.version + 2
    assert task == store.get_task(task_id=task_id)  # what is returned is what is stored
    claimed, producing = store.task_events(task_id=task_id)[-2:]
    assert (claimed.from_state, claimed.to_state, claimed.tx_hash, claimed.reason) == (
        S.CLAIMING,
        S.CLAIMED,
        tx(3),
        "claimed",
    )
    assert (producing.from_state, producing.to_state, producing.tx_hash) == (S.CLAIMED, S.PRODUCING, None)
    assert store.pnl_by_task()[task_id].gas_wei == 11
    # each step is checked: an illegal second step changes nothing
    tasks, events = snapshot(backend.engine)
    with pytest.raises(LifecycleError):
        store.transition(task_id=task_id, via=S.PRODUCED, to=S.SUBMITTING, actor="alice")
    assert snapshot(backend.engine) == (tasks, events)


def _run(task_id: int, cost: int = 0) -> RunCreate:
    return RunCreate(
        task_id=task_id,
        agent="alice",
        started_at=T0,
        finished_at=T0,
        status=RunStatus.PRODUCED,
        prompt_tokens=10,
        completion_tokens=5,
        cost_usd_micro=cost,
    )


def test_a_product_is_recorded_in_one_transaction(backend: Backend, store: Store) -> None:
    task_id = _claiming(store)
    store.transition(task_id=task_id, via=S.CLAIMED, to=S.PRODUCING, actor="alice", tx_hash=tx(1))
    task = store.record_produced(
        run=_run(task_id, cost=300),
        cid="bafyart",
        manifest={"files": ["a.md"]},
        self_check=SelfCheck.NONE,
        actor="alice",
    )
    assert task.state is S.PRODUCED and task.artifact_cid == "bafyart"
    assert [r.attempt for r in store.runs(task_id=task_id)] == [1]
    assert [a.cid for a in store.artifacts(task_id=task_id)] == ["bafyart"]
    assert store.pnl_by_task()[task_id].llm_usd_micro == 300
    kinds = [(e.kind, e.to_state, e.cid) for e in store.task_events(task_id=task_id)[-2:]]
    assert kinds == [(EventKind.ARTIFACT, S.PRODUCING, "bafyart"), (EventKind.TRANSITION, S.PRODUCED, "bafyart")]
    # not PRODUCING: nothing of it is recorded
    tasks, events = snapshot(backend.engine)
    with pytest.raises(StoreError, match="only while PRODUCING"):
        store.record_produced(run=_run(task_id), cid="bafyother", manifest={}, self_check=SelfCheck.NONE, actor="alice")
    assert snapshot(backend.engine) == (tasks, events)
    assert len(store.runs(task_id=task_id)) == 1


def test_automatic_review_in_one_transaction(store: Store) -> None:
    approved, held = _claiming(store), _claiming(store, 2)
    for task_id, check in ((approved, SelfCheck.PASSED), (held, SelfCheck.NONE)):
        store.transition(task_id=task_id, via=S.CLAIMED, to=S.PRODUCING, actor="alice", tx_hash=tx(task_id))
        store.record_produced(run=_run(task_id), cid=f"bafy{task_id}", manifest={}, self_check=check, actor="alice")
    passed = frozenset({SelfCheck.PASSED})
    task = store.auto_review(task_id=approved, approve=passed, reason="review.mode is auto_if_tests_pass")
    assert task.state is S.APPROVED
    (review,) = store.reviews(task_id=approved)
    assert (review.decision, review.reviewer, review.artifact_cid) == (
        ReviewDecision.APPROVE,
        "auto",
        f"bafy{approved}",
    )
    task = store.auto_review(task_id=held, approve=passed, reason="review.mode is auto_if_tests_pass")
    assert task.state is S.AWAITING_REVIEW and task.state_reason == "review.mode is auto_if_tests_pass"
    assert store.reviews(task_id=held) == []
    with pytest.raises(ReviewRefused):  # only a PRODUCED task passes the gate
        store.auto_review(task_id=approved, approve=passed, reason="again")
    with pytest.raises(Conflict):
        store.auto_review(task_id=held, approve=passed, reason="stale", expect_version=0)


def test_a_reserve_reads_the_days_ledger_and_inserts_it_only_once(tmp_path: Path) -> None:
    from eth_account import Account

    from orchestrator.adapters.chain.tx import sign_eip1559
    from orchestrator.ports.chain import Fees
    from wallets.journal import FLEET, NATIVE, Journal, Limit, Spend

    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    journal, account = Journal(engine), Account.create()
    wallet = account.address
    journal.ensure_nonce(wallet, 1, 0)
    limits = [Limit(wallet, NATIVE, 10**18, "wallet_daily_cap_wei"), Limit(FLEET, NATIVE, 10**18, "fleet")]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: statements.append(statement))

    def reserve() -> None:
        journal.reserve(
            wallet=wallet,
            chain_id=1,
            spend=Spend(21_000),
            limits=limits,
            sign=lambda nonce: sign_eip1559(
                account, chain_id=1, nonce=nonce, to=wallet, data=b"", value=0, gas=21_000, fees=Fees(1, 1)
            ),
            selector=None,
            now=T0,
        )

    def ledger_inserts() -> int:
        return sum(s.startswith("INSERT INTO wallet_spend") for s in statements)

    reserve()
    assert ledger_inserts() == 2  # the wallet's and the fleet's row of the day
    statements.clear()
    reserve()
    assert ledger_inserts() == 0
    assert journal.spent(scope=FLEET, chain_id=1, day=T0.date()) == 2 * 21_000
    engine.dispose()

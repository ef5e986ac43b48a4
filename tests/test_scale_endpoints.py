"""Model endpoints as shared, limited resources (``endpoints:``): the database gate on SQLite and PostgreSQL —
concurrency across gates of separate engines (what separate workers are), per-minute request and token rates, a
dead holder's slot lapsing and its late hand-back fenced, the longest waiter served first — and an agent that
waits for its endpoint, its wait counted against the task's time budget and shown by ``deworker status``."""

from __future__ import annotations

import http.server
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agents.config import LOCAL_SERVER_SLOTS, Budgets, EndpointLimit, ModelEndpoint, endpoint_limit
from agents.endpoints import Endpoint, endpoint_key
from agents.langchain_agent import LangChainAgent, chat_model
from agents.ports import AgentStatus, AgentTask
from orchestrator.adapters.sql.endpoints import DbEndpointGate
from orchestrator.adapters.sql.leases import Holder
from orchestrator.domain.errors import ConfigError
from orchestrator.entry.config import load_config
from tests.conftest import reopen
from tests.test_agents import HAIKU, TEXT_SPEC, openai_server, profile  # noqa: F401  (openai_server: a fixture)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _endpoint(**limit: int) -> Endpoint:
    return Endpoint(key="http://models.example/v1 m", limit=EndpointLimit(**limit))  # type: ignore[arg-type]


def test_the_concurrency_limit_holds_across_gates_of_separate_engines(db_engine: Engine) -> None:
    """Two gates, each with its own engine and holder (as two worker processes have), share one endpoint's two
    slots: six threads calling through them never have more than two calls in flight, and all six get through."""
    other = reopen(db_engine)
    gates = [
        DbEndpointGate(db_engine, holder=Holder("a", 1, "a:1:x")),
        DbEndpointGate(other, holder=Holder("b", 2, "b:2:y")),
    ]
    endpoint = _endpoint(concurrency=2)
    lock, in_flight, peak, done = threading.Lock(), [0], [0], []

    def call(i: int) -> None:
        gate = gates[i % 2]
        ticket = gate.enter(endpoint, agent=f"agent{i}", task=f"t{i}", timeout=60, hold=60)
        assert ticket is not None
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.1)  # a call that takes a while, so the others queue behind it
        with lock:
            in_flight[0] -= 1
        gate.leave(ticket, tokens=10)
        done.append(i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert sorted(done) == list(range(6))
    assert peak[0] == 2
    (status,) = gates[0].status()
    assert (status.slots, status.in_use, status.waiting, status.requests, status.tokens) == (2, 0, 0, 6, 60)
    assert status.waits >= 4 and status.wait_seconds > 0  # four of them had to wait for a slot


def test_a_full_endpoint_makes_the_caller_wait_until_its_timeout(db_engine: Engine) -> None:
    gate = DbEndpointGate(db_engine, holder=Holder("a", 1, "a:1:x"))
    other = DbEndpointGate(db_engine, holder=Holder("b", 2, "b:2:y"))
    endpoint = _endpoint(concurrency=1)
    held = gate.enter(endpoint, agent="ada", task="t1", timeout=5, hold=60)
    assert held is not None
    assert other.enter(endpoint, agent="bob", task="t2", timeout=0.3, hold=60) is None  # no pass in time
    gate.leave(held, tokens=0)
    assert other.enter(endpoint, agent="bob", task="t2", timeout=0.3, hold=60) is not None
    (status,) = gate.status()
    assert status.waiting == 0  # the waiter that gave up left no row behind


def test_requests_and_tokens_per_minute(db_engine: Engine) -> None:
    clock = Clock()
    gate = DbEndpointGate(db_engine, clock=clock, poll=0.01, max_poll=0.02)
    by_requests = _endpoint(requests_per_minute=2)
    for _ in range(2):
        ticket = gate.enter(by_requests, agent="ada", task="t", timeout=1, hold=60)
        assert ticket is not None and ticket.slot is None  # rates only: no slot is held
        gate.leave(ticket, tokens=0)
    assert gate.enter(by_requests, agent="ada", task="t", timeout=0.1, hold=60) is None  # third in this minute
    clock.advance(60)
    assert gate.enter(by_requests, agent="ada", task="t", timeout=0.1, hold=60) is not None  # the next minute

    by_tokens = Endpoint(key="http://other.example/v1 m", limit=EndpointLimit(tokens_per_minute=100))
    ticket = gate.enter(by_tokens, agent="ada", task="t", timeout=1, hold=60)
    assert ticket is not None
    gate.leave(ticket, tokens=100)  # the call used the minute's tokens
    assert gate.enter(by_tokens, agent="ada", task="t", timeout=0.1, hold=60) is None
    clock.advance(60)
    assert gate.enter(by_tokens, agent="ada", task="t", timeout=0.1, hold=60) is not None


def test_a_dead_holders_slot_lapses_and_its_late_hand_back_is_fenced(db_engine: Engine) -> None:
    clock = Clock()
    dead = DbEndpointGate(db_engine, clock=clock, holder=Holder("a", 1, "a:1:x"))
    alive = DbEndpointGate(db_engine, clock=clock, holder=Holder("b", 2, "b:2:y"), poll=0.01, max_poll=0.02)
    endpoint = _endpoint(concurrency=1)
    lost = dead.enter(endpoint, agent="ada", task="t1", timeout=1, hold=30)
    assert lost is not None
    assert alive.enter(endpoint, agent="bob", task="t2", timeout=0.1, hold=30) is None
    clock.advance(31)  # the first holder's process died mid-call: its slot lapses after its hold
    taken = alive.enter(endpoint, agent="bob", task="t2", timeout=1, hold=30)
    assert taken is not None and taken.token == lost.token + 1
    dead.leave(lost, tokens=0)  # the dead call's late hand-back must not free bob's slot
    (status,) = alive.status()
    assert status.in_use == 1
    assert alive.enter(endpoint, agent="cy", task="t3", timeout=0.1, hold=30) is None


def test_the_longest_waiter_is_served_first(db_engine: Engine) -> None:
    gate = DbEndpointGate(db_engine, holder=Holder("a", 1, "a:1:x"))
    endpoint = _endpoint(concurrency=1)
    first = gate.enter(endpoint, agent="ada", task="t0", timeout=5, hold=60)
    assert first is not None
    order: list[str] = []

    def wait(name: str) -> None:
        ticket = gate.enter(endpoint, agent=name, task=name, timeout=60, hold=60)
        assert ticket is not None
        order.append(name)
        time.sleep(0.05)
        gate.leave(ticket, tokens=0)

    threads = []
    for name in ("w1", "w2", "w3"):
        t = threading.Thread(target=wait, args=(name,))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 30
        while gate.status()[0].waiting < len(threads) and time.monotonic() < deadline:
            time.sleep(0.01)  # each waiter is registered before the next one comes
    gate.leave(first, tokens=0)
    for t in threads:
        t.join()
    assert order == ["w1", "w2", "w3"]


def test_endpoint_limits_from_config(tmp_path: Path) -> None:
    embedded = ModelEndpoint()
    remote = ModelEndpoint(base_url="https://api.example/v1", model="big")  # type: ignore[arg-type]
    assert endpoint_limit([], embedded) == EndpointLimit(concurrency=LOCAL_SERVER_SLOTS)  # what its server serves
    assert endpoint_limit([], remote) is None  # a hosted API without an entry: no limit of ours
    by_url = EndpointLimit(base_url="https://api.example/v1", requests_per_minute=500)  # type: ignore[arg-type]
    by_model = EndpointLimit(base_url="https://api.example/v1", model="big", concurrency=8)  # type: ignore[arg-type]
    assert endpoint_limit([by_url, by_model], remote) == by_model  # the entry naming the model wins
    rate_only = EndpointLimit(requests_per_minute=30)
    assert endpoint_limit([rate_only], embedded) == EndpointLimit(
        requests_per_minute=30, concurrency=LOCAL_SERVER_SLOTS
    )
    assert endpoint_key("http://127.0.0.1:8080/v1/", "m", host="box") == "box/http://127.0.0.1:8080/v1 m"
    assert endpoint_key("https://api.example/v1", "m", host="box") == "https://api.example/v1 m"

    path = tmp_path / "config.yaml"
    path.write_text("endpoints:\n  - {concurrency: 2}\n  - {concurrency: 3}\n")
    with pytest.raises(ConfigError) as twice:
        load_config(path)
    assert "endpoints lists one endpoint twice: embedded (any model)" in str(twice.value)


def _agent(server: http.server.ThreadingHTTPServer, gate: DbEndpointGate, budgets: Budgets) -> LangChainAgent:
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    ep = ModelEndpoint(base_url=base, model="test-model", tool_choice_auto=False, max_tokens=64, retries=0)  # type: ignore[arg-type]
    return LangChainAgent(
        profile(model=ep, budgets=budgets),
        chat_model(ep, base_url=base, api_key="sk-test"),
        gate=gate,
        endpoint=Endpoint(key=endpoint_key(base, "test-model"), limit=EndpointLimit(concurrency=1)),
    )


def test_an_agent_waits_for_its_endpoint_within_its_time_budget(
    db_engine: Engine,
    tmp_path: Path,
    openai_server: http.server.ThreadingHTTPServer,  # noqa: F811
) -> None:
    """Another worker holds the endpoint's only slot: the agent waits, and its wait is its task's time — with 1 s
    of budget it stops, naming the endpoint, without having sent a request; once the slot is free it produces."""
    gate = DbEndpointGate(db_engine)
    agent = _agent(openai_server, gate, Budgets(max_seconds_per_task=1.0))
    assert agent.endpoint is not None
    other = DbEndpointGate(db_engine, holder=Holder("elsewhere", 99, "elsewhere:99:z"))
    held = other.enter(agent.endpoint, agent="bob", task="b:1", timeout=1, hold=60)
    assert held is not None
    result = agent.run(AgentTask("main:1", TEXT_SPEC), tmp_path / "t1")
    assert result.status is AgentStatus.FAILED
    assert "for the model endpoint" in (result.reason or "") and "max_seconds_per_task" in (result.reason or "")
    assert openai_server.requests == []  # type: ignore[attr-defined]
    (status,) = gate.status()
    assert status.in_use == 1 and status.waiting == 0

    other.leave(held, tokens=0)
    openai_server.script.append(HAIKU)  # type: ignore[attr-defined]
    produced = _agent(openai_server, gate, Budgets()).run(AgentTask("main:2", TEXT_SPEC), tmp_path / "t2")
    assert produced.status is AgentStatus.PRODUCED, produced.reason
    (status,) = gate.status()
    assert status.requests == 2 and status.tokens > 0 and status.in_use == 0


def test_deworker_status_shows_the_endpoints_slots_and_waiters(tmp_path: Path) -> None:
    import json

    from orchestrator.adapters.sql import AgentCreate, Store, make_engine, migrate
    from orchestrator.domain.lifecycle import TaskState
    from tests.test_cli import deworker
    from tests.test_store import board_task

    engine = make_engine(f"sqlite:///{tmp_path / '.deworker' / 'deworker.db'}")
    migrate(engine)
    store = Store(engine)
    store.upsert_agent(agent=AgentCreate(name="ada", address="0x" + "11" * 20, skills=["writing"]))
    task, _ = store.upsert_discovered(board_task=board_task(1))
    store.transition(task_id=task.id, to=TaskState.CLAIMING, actor="worker", agent="ada")  # one task at the claim
    gate = DbEndpointGate(engine)
    endpoint = _endpoint(concurrency=1)
    held = gate.enter(endpoint, agent="ada", task="main:1", timeout=1, hold=300)
    assert held is not None
    waiter = threading.Thread(
        target=gate.enter, args=(endpoint,), kwargs=dict(agent="bob", task="main:2", timeout=120, hold=300)
    )
    waiter.start()
    try:
        deadline = time.monotonic() + 30
        while gate.status()[0].waiting == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        shown = deworker("status", "--wide", cwd=tmp_path).stdout
        assert "Model endpoints" in shown and "http://models.example/v1 m" in shown, shown
        assert "1/1" in shown and "1 (longest" in shown, shown
        assert "service: not running" in shown and "queue (tasks per step): CLAIMING 1" in shown, shown
        status = json.loads(deworker("status", "--json", cwd=tmp_path).stdout)
        (row,) = status["endpoints"]
        assert (row["slots"], row["in_use"], row["waiting"], row["requests"]) == (1, 1, 1, 1)
        assert status["queue"]["CLAIMING"] == 1 and status["service"] is None
    finally:
        gate.leave(held, tokens=0)  # bob gets the slot and the thread ends
        waiter.join()
        engine.dispose()


def test_compact_folds_old_minutes_and_keeps_every_sum(db_engine: Engine) -> None:
    """Three days of calls, one a minute-row each hour: ``compact`` folds the minutes older than a day into one
    history row per endpoint. The all-time sums (what /metrics reports, counters that must never go down) and the
    last hour's status are the same before and after; the table keeps a day of minutes plus that row."""
    from sqlalchemy import func, select

    from orchestrator.adapters.sql.endpoints import HISTORY, EndpointWindow

    clock = Clock()
    gate = DbEndpointGate(db_engine, clock=clock)
    endpoint = _endpoint(requests_per_minute=1000)
    for _ in range(72):
        ticket = gate.enter(endpoint, agent="ada", task="t", timeout=1, hold=60)
        assert ticket is not None
        gate.leave(ticket, tokens=7)
        clock.advance(3600)

    def sums() -> tuple[int, int, int]:
        with db_engine.connect() as c:
            count, requests, tokens = c.execute(
                select(func.count(), func.sum(EndpointWindow.requests), func.sum(EndpointWindow.tokens))
            ).one()
        return int(count), int(requests), int(tokens)

    recent = gate.status(hours=2)
    assert sums() == (72, 72, 72 * 7)
    assert gate.compact() == 48  # hours 0-47: older than a day (the clock is 72 h after the first call)
    count, requests, tokens = sums()
    assert (requests, tokens) == (72, 72 * 7) and count == 24 + 1  # the last day's minutes + the history row
    assert gate.status(hours=2) == recent
    with db_engine.connect() as c:
        history = c.execute(select(EndpointWindow.requests).where(EndpointWindow.minute == HISTORY)).scalar_one()
    assert history == 48
    assert gate.compact() == 0  # nothing older left: a second run folds nothing and changes nothing
    assert sums() == (25, 72, 72 * 7)

"""``FleetMetrics``: the counters operators scrape (Prometheus), read from the orchestrator's database — so every
process that serves them (the review app, any worker) reports the same fleet-wide totals, and a restart resets
nothing.

Each sample is a name, labels and a value; ``orchestrator.entry.metrics`` writes them in Prometheus' text format.
One read-only transaction per snapshot, a handful of grouped queries (the tables have the columns indexed that are
grouped on, or are small): tasks by state, transitions by target state, agent runs by status, tasks waiting out a
passing fault and their tries, wallet transactions by status, gas and LLM cost (exact sums), LLM tokens, and each
model endpoint's requests, tokens, waits and time waited, slots in use and agents waiting now.

Must not import the orchestrator's services.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from orchestrator.adapters.sql.base import utcnow
from orchestrator.adapters.sql.db import transaction, translate
from orchestrator.adapters.sql.endpoints import SLOT_PREFIX, EndpointWaiter, EndpointWindow
from orchestrator.adapters.sql.leases import LeaseRow
from orchestrator.adapters.sql.models import EventKind, Run, TaskEvent
from orchestrator.adapters.sql.models import Task as TaskRow
from orchestrator.adapters.sql.queries import Queries
from orchestrator.adapters.sql.spend import TaskSpend
from orchestrator.domain.lifecycle import TaskState


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family: its samples as (labels, value)."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    samples: tuple[tuple[tuple[tuple[str, str], ...], float], ...]


def _one(name: str, kind: str, help: str, value: float) -> Metric:
    return Metric(name, kind, help, (((), value),))


def _by(name: str, kind: str, help: str, label: str, values: dict[str, float]) -> Metric:
    return Metric(name, kind, help, tuple(((((label, k),), v) for k, v in sorted(values.items()))))


class FleetMetrics:
    """The fleet's counters and gauges from the database (see the module docstring)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._queries = Queries(engine)
        self._clock = clock

    def snapshot(self) -> list[Metric]:
        from wallets.journal import WalletTx  # the journal's table: read here for the counts only

        now = self._clock()
        try:
            with transaction(self._engine, reads_only=True) as s:
                states = {st.value: 0.0 for st in TaskState}
                for state, n in s.execute(select(col(TaskRow.state), func.count()).group_by(col(TaskRow.state))).all():
                    states[str(state)] = float(n)
                steps = {
                    str(to): float(n)
                    for to, n in s.execute(
                        select(col(TaskEvent.to_state), func.count())
                        .where(col(TaskEvent.kind) == EventKind.TRANSITION)
                        .group_by(col(TaskEvent.to_state))
                    ).all()
                }
                runs = {
                    str(st): float(n)
                    for st, n in s.execute(select(col(Run.status), func.count()).group_by(col(Run.status)))
                }
                waiting, tries = s.execute(
                    select(func.count(), func.coalesce(func.sum(TaskRow.retries), 0)).where(
                        col(TaskRow.wait_reason).is_not(None)
                    )
                ).one()
                txs = {
                    str(st): float(n)
                    for st, n in s.execute(
                        select(col(WalletTx.status), func.count()).group_by(col(WalletTx.status))
                    ).all()
                }
                prompt, completion, calls = s.execute(
                    select(
                        func.coalesce(func.sum(TaskSpend.prompt_tokens), 0),
                        func.coalesce(func.sum(TaskSpend.completion_tokens), 0),
                        func.coalesce(func.sum(TaskSpend.calls), 0),
                    )
                ).one()
                windows = s.execute(
                    select(
                        col(EndpointWindow.endpoint),
                        func.sum(EndpointWindow.requests),
                        func.sum(EndpointWindow.tokens),
                        func.sum(EndpointWindow.waits),
                        func.sum(EndpointWindow.wait_ms),
                    ).group_by(col(EndpointWindow.endpoint))
                ).all()
                waiters: dict[str, int] = dict(
                    s.execute(
                        select(col(EndpointWaiter.endpoint), func.count())
                        .where(col(EndpointWaiter.expires_at) > now)
                        .group_by(col(EndpointWaiter.endpoint))
                    ).all()
                )
                in_use: dict[str, float] = {}
                for row in s.execute(select(LeaseRow).where(col(LeaseRow.name).startswith(SLOT_PREFIX))).scalars():
                    key = row.name[len(SLOT_PREFIX) :].rsplit("#", 1)[0]
                    alive = row.holder is not None and row.expires_at is not None and row.expires_at > now
                    in_use[key] = in_use.get(key, 0.0) + float(alive)
        except SQLAlchemyError as exc:
            raise translate(exc, doing="reading the fleet's metrics") from exc
        pnl = self._queries.pnl_by_agent()
        gas = sum(p.gas_wei for p in pnl.values())
        llm_micro = sum(p.llm_usd_micro for p in pnl.values())
        endpoints = {str(r[0]): r for r in windows}
        keys = sorted(set(endpoints) | set(in_use) | {str(k) for k in waiters})

        def per_endpoint(index: int, scale: float = 1.0) -> dict[str, float]:
            return {k: float(endpoints[k][index] or 0) * scale if k in endpoints else 0.0 for k in keys}

        return [
            _by("deworker_tasks", "gauge", "Tasks in each lifecycle state.", "state", states),
            _by(
                "deworker_task_steps_total",
                "counter",
                "Lifecycle transitions, by the state entered.",
                "to_state",
                steps,
            ),
            _by(
                "deworker_task_failures_total",
                "counter",
                "Tasks that entered FAILED or QUARANTINED.",
                "state",
                {k: steps.get(k, 0.0) for k in (TaskState.FAILED.value, TaskState.QUARANTINED.value)},
            ),
            _by("deworker_agent_runs_total", "counter", "Agent runs, by how they ended.", "status", runs),
            _one("deworker_tasks_waiting", "gauge", "Tasks waiting out a passing fault before a retry.", waiting),
            _one("deworker_task_retries", "gauge", "Tries so far of the tasks waiting to be retried.", float(tries)),
            _by("deworker_transactions_total", "counter", "Signed wallet transactions, by status.", "status", txs),
            _one("deworker_gas_wei_total", "counter", "Gas paid by the agents' wallets, in wei.", float(gas)),
            _by(
                "deworker_llm_tokens_total",
                "counter",
                "LLM tokens used by agent runs.",
                "kind",
                {"prompt": float(prompt), "completion": float(completion)},
            ),
            _one("deworker_llm_calls_total", "counter", "LLM calls made by agent runs.", float(calls)),
            _one("deworker_llm_cost_usd_total", "counter", "LLM cost of agent runs, in USD.", llm_micro / 1e6),
            _by(
                "deworker_endpoint_requests_total", "counter", "Model calls per endpoint.", "endpoint", per_endpoint(1)
            ),
            _by("deworker_endpoint_tokens_total", "counter", "Tokens per endpoint.", "endpoint", per_endpoint(2)),
            _by(
                "deworker_endpoint_waits_total",
                "counter",
                "Calls that waited for their endpoint's limit.",
                "endpoint",
                per_endpoint(3),
            ),
            _by(
                "deworker_endpoint_wait_seconds_total",
                "counter",
                "Time agents waited for their endpoint's limit.",
                "endpoint",
                per_endpoint(4, 1 / 1000),
            ),
            _by(
                "deworker_endpoint_slots_in_use",
                "gauge",
                "Endpoint slots held by a call now.",
                "endpoint",
                {k: in_use.get(k, 0.0) for k in keys},
            ),
            _by(
                "deworker_endpoint_waiting",
                "gauge",
                "Agents waiting for their endpoint now.",
                "endpoint",
                {k: float(waiters.get(k, 0)) for k in keys},
            ),
        ]

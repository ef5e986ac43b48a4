"""``Queries``: the read side of dashboards and long lists, as aggregate SQL over one ``Engine`` — counts per
lifecycle state and per agent, P&L sums per agent, money received and spent per day, and task lists a page at a
time. Nothing here loads every task (or every reward) into memory; ``Store`` stays the place for writes and for
reads of one task.

Exact sums of ``U256`` columns. Amounts are decimal text (see ``types.U256``), and SQLite's integers stop at
2**63 (9.2 tokens of 18 decimals), so ``SUM(CAST(amount AS INTEGER))`` would be wrong there. Instead each amount
is left-padded to 81 digits and cut into nine 9-digit chunks; SQL sums every chunk (each sum fits in 64 bits for
up to 9 billion rows) and Python puts the chunks back together. The same SQL runs on SQLite and PostgreSQL.

Days are UTC calendar days (``YYYY-MM-DD``), computed in SQL.

Must not import the orchestrator's services or any adapter other than SQLAlchemy/SQLModel.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, String, cast, func, literal, select, type_coerce
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from orchestrator.adapters.sql.db import translate
from orchestrator.adapters.sql.models import Cost, CostKind, RevenueClaim, Reward, Task, TaskPublic
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.money import PnL

#: Digits per chunk of an exact sum, and chunks per amount: 9 x 9 = 81 >= 78 digits of 2**256.
CHUNK_DIGITS = 9
CHUNKS = 9
_PAD = "0" * (CHUNK_DIGITS * CHUNKS)


def exact_sum_columns(amount: Any) -> list[ColumnElement[Any]]:
    """SUMs of the 9-digit chunks of a ``U256`` column, most significant first (see the module docstring).
    Combine the row's values with ``combine``."""
    text = type_coerce(amount, String)  # the stored text, not U256's int
    width = CHUNK_DIGITS * CHUNKS
    padded = func.substr(literal(_PAD, String) + text, func.length(text) + 1, width)
    return [func.sum(cast(func.substr(padded, 1 + i * CHUNK_DIGITS, CHUNK_DIGITS), BigInteger)) for i in range(CHUNKS)]


def combine(chunk_sums: Sequence[Any]) -> int:
    """The exact total from the chunk sums ``exact_sum_columns`` selected (None = no rows = 0)."""
    total = 0
    for value in chunk_sums:
        total = total * 10**CHUNK_DIGITS + int(value or 0)
    return total


def _utc_day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of a ``UtcDateTime`` column as ``YYYY-MM-DD`` text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(type_coerce(column, String), 1, 10)  # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a task list and how many tasks the whole list has."""

    tasks: list[TaskPublic]
    total: int


@dataclass(slots=True)
class DayMoney:
    """What came in and went out on one UTC day: rewards per token (base units), gas (wei), LLM cost (micro-USD)."""

    day: date
    rewards: dict[str, int] = field(default_factory=dict)  # bounties
    gas_wei: int = 0
    llm_usd_micro: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # project pools' revenue claimed, per token

    def received(self) -> dict[str, int]:
        """Bounties plus pool revenue, per token (what the earnings charts draw)."""
        out = dict(self.rewards)
        for token, amount in self.revenue.items():
            out[token] = out.get(token, 0) + amount
        return out


class Queries:
    """Aggregate and paginated reads over the store's tables. Build it next to ``Store``, over the same engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _connect(self, doing: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise translate(exc, doing=doing) from exc

    # ------------------------------------------------------------------------------------------------- tasks

    def count_tasks(self, *, state: TaskState | None = None) -> int:
        """How many tasks there are (in ``state``, if given)."""
        query = select(func.count()).select_from(Task)
        if state is not None:
            query = query.where(col(Task.state) == state)
        with self._connect("counting tasks") as conn:
            return int(conn.execute(query).scalar_one())

    def tasks_by_state(self) -> dict[TaskState, int]:
        """How many tasks are in each lifecycle state (states with none are left out)."""
        query = select(col(Task.state), func.count()).group_by(col(Task.state))
        with self._connect("counting tasks per state") as conn:
            return {TaskState(state): int(n) for state, n in conn.execute(query)}

    def tasks_by_agent(self) -> dict[str, dict[TaskState, int]]:
        """Per agent name, how many of its tasks are in each state (tasks without an agent are left out)."""
        query = (
            select(col(Task.agent_name), col(Task.state), func.count())
            .where(col(Task.agent_name).is_not(None))
            .group_by(col(Task.agent_name), col(Task.state))
        )
        out: dict[str, dict[TaskState, int]] = {}
        with self._connect("counting tasks per agent") as conn:
            for agent, state, n in conn.execute(query):
                if agent is not None:  # filtered out in SQL; this tells the type checker
                    out.setdefault(agent, {})[TaskState(state)] = int(n)
        return out

    def task_page(self, *, state: TaskState | None = None, limit: int, offset: int = 0) -> TaskPage:
        """Tasks, the newest first (by id), ``limit`` of them from ``offset``, and the list's total."""
        query = select(Task).order_by(col(Task.id).desc()).limit(limit).offset(offset)
        if state is not None:
            query = query.where(col(Task.state) == state)
        total = self.count_tasks(state=state)
        with self._connect("listing tasks") as conn:
            rows = conn.execute(query).mappings().all()
        return TaskPage(tasks=[TaskPublic.model_validate(dict(r)) for r in rows], total=total)

    # ------------------------------------------------------------------------------------------------- money

    def pnl_by_agent(self) -> dict[str, PnL]:
        """Rewards received minus gas and LLM cost, per agent name, per currency (see ``PnL``), with the project
        pools' revenue each agent claimed apart (``PnL.revenue``, per pool and token)."""
        out = self._pnl(col(Reward.agent), col(Cost.agent), "per agent")
        for agent, per_pool in self.revenue_by_agent().items():
            out.setdefault(agent, PnL()).revenue.update(per_pool)
        return dict(sorted(out.items()))

    def revenue_by_agent(self) -> dict[str, dict[tuple[str, str], int]]:
        """Revenue the project pools paid each agent: agent -> (pool, token) -> base units (``revenue_claim``)."""
        query = select(
            col(RevenueClaim.agent),
            col(RevenueClaim.pool),
            col(RevenueClaim.token),
            *exact_sum_columns(col(RevenueClaim.amount)),
        ).group_by(col(RevenueClaim.agent), col(RevenueClaim.pool), col(RevenueClaim.token))
        out: dict[str, dict[tuple[str, str], int]] = {}
        with self._connect("summing revenue claims per agent") as conn:
            for agent, pool, token, *chunks in conn.execute(query):
                out.setdefault(agent, {})[(pool, token)] = combine(chunks)
        return out

    def pnl_by_task(self) -> dict[int, PnL]:
        """Rewards received minus gas and LLM cost, per task id, per currency. Costs not tied to a task (e.g. a
        sweep's gas) are left out: they appear in ``pnl_by_agent`` only."""
        return self._pnl(col(Reward.task_id), col(Cost.task_id), "per task")

    def _pnl(self, reward_key: Any, cost_key: Any, per: str) -> dict[Any, PnL]:
        rewards = (
            select(reward_key, col(Reward.token), *exact_sum_columns(col(Reward.amount)))
            .where(reward_key.is_not(None))
            .group_by(reward_key, col(Reward.token))
        )
        costs = (
            select(cost_key, col(Cost.kind), *exact_sum_columns(col(Cost.amount)))
            .where(cost_key.is_not(None))
            .group_by(cost_key, col(Cost.kind))
        )
        out: dict[Any, PnL] = {}
        with self._connect(f"summing rewards and costs {per}") as conn:
            for key, token, *chunks in conn.execute(rewards):
                out.setdefault(key, PnL()).rewards[token] = combine(chunks)
            for key, kind, *chunks in conn.execute(costs):
                pnl = out.setdefault(key, PnL())
                if CostKind(kind) is CostKind.GAS:
                    pnl.gas_wei += combine(chunks)
                else:
                    pnl.llm_usd_micro += combine(chunks)
        return dict(sorted(out.items()))

    def money_by_day(self, *, since: date | None = None) -> list[DayMoney]:
        """Per UTC day (oldest first; days with nothing are left out): rewards received per token, from the
        reward table (what was paid, not what tasks promised), pool revenue claimed per token (``revenue_claim``), and
        gas and LLM cost spent."""
        dialect = self._engine.dialect.name
        reward_day = _utc_day(col(Reward.at), dialect)
        cost_day = _utc_day(col(Cost.at), dialect)
        rewards = select(reward_day, col(Reward.token), *exact_sum_columns(col(Reward.amount))).group_by(
            reward_day, col(Reward.token)
        )
        costs = select(cost_day, col(Cost.kind), *exact_sum_columns(col(Cost.amount))).group_by(
            cost_day, col(Cost.kind)
        )
        revenue_day = _utc_day(col(RevenueClaim.at), dialect)
        revenue = select(revenue_day, col(RevenueClaim.token), *exact_sum_columns(col(RevenueClaim.amount))).group_by(
            revenue_day, col(RevenueClaim.token)
        )
        if since is not None:
            rewards = rewards.where(reward_day >= since.isoformat())
            costs = costs.where(cost_day >= since.isoformat())
            revenue = revenue.where(revenue_day >= since.isoformat())
        days: dict[str, DayMoney] = {}
        with self._connect("summing rewards and costs per day") as conn:
            for day, token, *chunks in conn.execute(rewards):
                entry = days.setdefault(day, DayMoney(day=date.fromisoformat(day)))
                entry.rewards[token] = combine(chunks)
            for day, kind, *chunks in conn.execute(costs):
                entry = days.setdefault(day, DayMoney(day=date.fromisoformat(day)))
                if CostKind(kind) is CostKind.GAS:
                    entry.gas_wei += combine(chunks)
                else:
                    entry.llm_usd_micro += combine(chunks)
            for day, token, *chunks in conn.execute(revenue):
                entry = days.setdefault(day, DayMoney(day=date.fromisoformat(day)))
                entry.revenue[token] = combine(chunks)
        return [days[d] for d in sorted(days)]

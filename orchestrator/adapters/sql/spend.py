"""``DbSpendLedger``: the agents' per-day spend (tokens and cost per agent per UTC day) in the orchestrator's
database, so daily budgets survive a restart and hold across processes sharing one database; and each task's
running total (``task_spend``), written in the same transaction as each model call is recorded, from which the
store attributes every agent run's cost — including a run a crash cut short (``Store.settle_unrecorded_run``).

It implements ``agents.budget.SpendLedger`` (a structural ``Protocol``; of ``agents`` only the ``Usage`` value type
is imported).
``record`` is one transaction: insert the day's row if missing (``ON CONFLICT DO NOTHING``), lock it
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every transaction from ``make_engine`` is ``BEGIN IMMEDIATE``),
add, write back — the same insert-ignore + locked update the wallet journal uses. Costs are ``Decimal`` and stored
as decimal text, so sums are exact on both backends (SQLite has no exact numeric type).

The tables are created by the Alembic revisions ``r0004_agent_spend`` and ``r0007_task_spend``. Needs an engine
from ``make_engine``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, String
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, select

from agents.ports import Usage
from orchestrator.adapters.sql.db import insert_of, translate

#: ``<board name>:<board task id>``: a 64-character name and a uint256 in decimal fit.
TASK_KEY_LEN = 160


class DecimalText(TypeDecorator[Decimal]):
    """An exact ``Decimal``, stored as plain decimal text (never exponent notation)."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        return None if value is None else format(Decimal(value), "f")

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class AgentSpend(SQLModel, table=True):
    """What one agent spent on one UTC day: tokens as the model APIs reported them, and their cost."""

    __tablename__ = "agent_spend"

    agent: str = Field(primary_key=True, max_length=64)
    day: date = Field(primary_key=True)
    tokens: int = Field(default=0, sa_type=BigInteger)
    cost: Decimal = Field(default=Decimal(0), sa_type=DecimalText)


class TaskSpend(SQLModel, table=True):
    """What the model calls of one task have used in total, over all its runs (keyed by ``AgentTask.task_id``,
    ``<board>:<board task id>``)."""

    __tablename__ = "task_spend"

    task: str = Field(primary_key=True, max_length=TASK_KEY_LEN)
    prompt_tokens: int = Field(default=0, sa_type=BigInteger)
    completion_tokens: int = Field(default=0, sa_type=BigInteger)
    calls: int = Field(default=0)
    cost: Decimal = Field(default=Decimal(0), sa_type=DecimalText)


def _utc_today() -> date:
    return datetime.now(UTC).date()


class DbSpendLedger:
    """A ``SpendLedger`` in the ``agent_spend`` table. Thread- and process-safe (a transaction per call)."""

    def __init__(self, engine: Engine, *, today: Callable[[], date] = _utc_today) -> None:
        self._engine = engine
        self._today = today

    def __repr__(self) -> str:
        return f"DbSpendLedger({self._engine.url.render_as_string(hide_password=True)!r})"

    def spent_today(self, agent: str) -> tuple[int, Decimal]:
        try:
            with Session(self._engine) as session:
                row = session.get(AgentSpend, (agent, self._today()))
                return (0, Decimal(0)) if row is None else (row.tokens, row.cost)
        except SQLAlchemyError as exc:
            raise translate(exc, doing=f"reading agent {agent!r}'s spend today") from exc

    def spent_on(self, task: str) -> tuple[Usage, Decimal]:
        try:
            with Session(self._engine) as session:
                row = session.get(TaskSpend, task)
        except SQLAlchemyError as exc:
            raise translate(exc, doing=f"reading the spend of task {task!r}") from exc
        if row is None:
            return Usage(), Decimal(0)
        usage = Usage(prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens, calls=row.calls)
        return usage, row.cost

    def record(self, agent: str, *, task: str, usage: Usage, cost: Decimal) -> None:
        day = self._today()
        try:
            with Session(self._engine) as session, session.begin():
                session.execute(
                    insert_of(session, AgentSpend)
                    .values(agent=agent, day=day, tokens=0, cost=Decimal(0))
                    .on_conflict_do_nothing()
                )
                session.execute(
                    insert_of(session, TaskSpend)
                    .values(task=task, prompt_tokens=0, completion_tokens=0, calls=0, cost=Decimal(0))
                    .on_conflict_do_nothing()
                )
                row = session.exec(
                    select(AgentSpend).where(AgentSpend.agent == agent, AgentSpend.day == day).with_for_update()
                ).one()
                row.tokens += usage.total_tokens
                row.cost += cost
                total = session.exec(select(TaskSpend).where(TaskSpend.task == task).with_for_update()).one()
                total.prompt_tokens += usage.prompt_tokens
                total.completion_tokens += usage.completion_tokens
                total.calls += usage.calls
                total.cost += cost
        except SQLAlchemyError as exc:
            raise translate(exc, doing=f"recording agent {agent!r}'s spend") from exc

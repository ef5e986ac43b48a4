"""Budgets of one task run, and the per-day spend ledger they are checked against.

``TaskBudget.check()`` runs before every model call and raises ``BudgetExceeded`` naming the budget that is used
up; ``record()`` adds a call's usage (as the API reported it) to the task and to the day. The ledger also keeps a
running total per task (``spent_on``), written as each call returns: the orchestrator attributes a run's cost from
it, so a run cut short by a crash still has its model usage accounted for. The ledger is a port:
``InMemorySpendLedger`` serves one process (tests, one-off runs); ``orchestrator.adapters.sql.DbSpendLedger`` keeps the
days in the orchestrator's database, so daily budgets survive restarts and hold across processes (the service and
the demo use it).

Must not import LangChain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol

from agents.config import Budgets, ModelPrice
from agents.errors import BudgetExceeded
from agents.ports import Usage


class SpendLedger(Protocol):
    """Tokens and cost per agent per UTC day, and in total per task (``AgentTask.task_id``)."""

    def spent_today(self, agent: str) -> tuple[int, Decimal]: ...

    def spent_on(self, task: str) -> tuple[Usage, Decimal]: ...

    def record(self, agent: str, *, task: str, usage: Usage, cost: Decimal) -> None: ...


class InMemorySpendLedger:
    """A ``SpendLedger`` in memory (thread-safe; forgotten when the process exits)."""

    def __init__(self, today: Callable[[], date] = lambda: datetime.now(UTC).date()) -> None:
        self._today = today
        self._spent: dict[tuple[str, date], tuple[int, Decimal]] = {}
        self._tasks: dict[str, tuple[Usage, Decimal]] = {}
        self._lock = threading.Lock()

    def spent_today(self, agent: str) -> tuple[int, Decimal]:
        with self._lock:
            return self._spent.get((agent, self._today()), (0, Decimal(0)))

    def spent_on(self, task: str) -> tuple[Usage, Decimal]:
        with self._lock:
            return self._tasks.get(task, (Usage(), Decimal(0)))

    def record(self, agent: str, *, task: str, usage: Usage, cost: Decimal) -> None:
        with self._lock:
            key = (agent, self._today())
            old_tokens, old_cost = self._spent.get(key, (0, Decimal(0)))
            self._spent[key] = (old_tokens + usage.total_tokens, old_cost + cost)
            old_usage, old_task_cost = self._tasks.get(task, (Usage(), Decimal(0)))
            self._tasks[task] = (old_usage + usage, old_task_cost + cost)


class TaskBudget:
    """What one task run has used, checked against the profile's ``Budgets`` and the agent's day."""

    def __init__(
        self,
        budgets: Budgets,
        *,
        agent: str,
        task: str,
        price: ModelPrice | None,
        ledger: SpendLedger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budgets = budgets
        self.agent = agent
        self.task = task
        self.price = price
        self.ledger = ledger
        self._clock = clock
        self._deadline = clock() + budgets.max_seconds_per_task
        self.usage = Usage()
        self.cost = Decimal(0)
        self._lock = threading.Lock()  # best-of-n candidates may record from several threads

    def remaining_seconds(self) -> float:
        return self._deadline - self._clock()

    def check(self) -> None:
        """Raise ``BudgetExceeded`` if any budget is used up."""
        b = self.budgets
        if self.remaining_seconds() <= 0:
            raise BudgetExceeded(
                f"task time budget of {b.max_seconds_per_task:g} s is used up", budget="budgets.max_seconds_per_task"
            )
        if b.max_tokens_per_task is not None and self.usage.total_tokens >= b.max_tokens_per_task:
            raise BudgetExceeded(
                f"task token budget used up: {self.usage.total_tokens:,} of {b.max_tokens_per_task:,} tokens",
                budget="budgets.max_tokens_per_task",
            )
        if b.max_cost_per_task is not None and self.cost >= b.max_cost_per_task:
            raise BudgetExceeded(
                f"task cost budget used up: {self.cost:.6f} of {b.max_cost_per_task}",
                budget="budgets.max_cost_per_task",
            )
        day_tokens, day_cost = self.ledger.spent_today(self.agent)
        if b.max_tokens_per_day is not None and day_tokens >= b.max_tokens_per_day:
            raise BudgetExceeded(
                f"agent {self.agent!r} used its daily token budget ({day_tokens:,} of {b.max_tokens_per_day:,})",
                budget="budgets.max_tokens_per_day",
            )
        if b.max_cost_per_day is not None and day_cost >= b.max_cost_per_day:
            raise BudgetExceeded(
                f"agent {self.agent!r} used its daily cost budget ({day_cost:.6f} of {b.max_cost_per_day})",
                budget="budgets.max_cost_per_day",
            )

    def completion_cap(self, default: int) -> int:
        """Completion tokens to allow in the next call: ``default``, lowered to what the task budget has left."""
        if self.budgets.max_tokens_per_task is None:
            return default
        return max(1, min(default, self.budgets.max_tokens_per_task - self.usage.total_tokens))

    def record(self, usage: Usage) -> Decimal:
        """Add one call's usage; returns its cost."""
        cost = Decimal(0)
        if self.price is not None:
            cost = self.price.cost(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        with self._lock:
            self.usage = self.usage + usage
            self.cost += cost
            self.ledger.record(self.agent, task=self.task, usage=usage, cost=cost)
        return cost

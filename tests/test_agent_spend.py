"""``DbSpendLedger`` on SQLite and PostgreSQL: daily budgets survive a restart (a new ledger and a new engine on
the same database), concurrent records from separate connections sum exactly, days roll over in UTC, and the
migration matches the model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from agents.budget import SpendLedger
from agents.config import Budgets, ModelEndpoint, ModelPrice
from agents.langchain_agent import LangChainAgent
from agents.ports import AgentStatus, AgentTask, Usage
from orchestrator.adapters.sql import DbSpendLedger, migrate
from tests.conftest import reopen
from tests.test_agents import TEXT_SPEC, fake, profile, submit


def test_it_is_a_spend_ledger(db_engine: Engine) -> None:
    ledger: SpendLedger = DbSpendLedger(db_engine)
    assert ledger.spent_today("nobody") == (0, Decimal(0))
    assert ledger.spent_on("main:404") == (Usage(), Decimal(0))


def test_daily_cost_cap_holds_across_a_restart(db_engine: Engine, tmp_path: Path) -> None:
    name = "alice"
    price = ModelPrice(input_per_mtok=Decimal("1000"), output_per_mtok=Decimal("1000"))  # 0.12 per call below
    p = profile(
        name=name, model=ModelEndpoint(tool_choice_auto=False), budgets=Budgets(max_cost_per_day=Decimal("0.2"))
    )

    def run(ledger: DbSpendLedger, task: str) -> Any:
        agent = LangChainAgent(p, fake(submit({"haiku.md": "x"})), price=price, ledger=ledger)
        return agent.run(AgentTask(task, TEXT_SPEC), tmp_path / task)

    assert run(DbSpendLedger(db_engine), "a").status is AgentStatus.PRODUCED
    assert run(DbSpendLedger(db_engine), "b").status is AgentStatus.PRODUCED  # 0.12 < 0.2: allowed to start

    restarted = reopen(db_engine)  # a new process: new engine, new ledger, nothing in memory
    migrate(restarted)  # which migrates on start
    try:
        ledger = DbSpendLedger(restarted)
        assert ledger.spent_today(name) == (240, Decimal("0.24"))
        refused = run(ledger, "c")
        assert refused.status is AgentStatus.FAILED and refused.usage.calls == 0
        assert refused.reason is not None and "daily cost budget" in refused.reason
        assert "budgets.max_cost_per_day" in refused.reason
    finally:
        restarted.dispose()


def test_the_day_rolls_over_in_utc(db_engine: Engine) -> None:
    name = "alice"
    day = [date(2026, 3, 1)]
    ledger = DbSpendLedger(db_engine, today=lambda: day[0])
    ledger.record(name, task="main:1", usage=Usage(prompt_tokens=10), cost=Decimal("0.5"))
    day[0] = date(2026, 3, 2)
    assert ledger.spent_today(name) == (0, Decimal(0))
    ledger.record(name, task="main:1", usage=Usage(completion_tokens=1), cost=Decimal("0.1"))
    assert ledger.spent_today(name) == (1, Decimal("0.1"))
    day[0] = date(2026, 3, 1)
    assert ledger.spent_today(name) == (10, Decimal("0.5"))


SEVEN = Usage(prompt_tokens=5, completion_tokens=2, calls=1)


def test_concurrent_records_sum_exactly(db_engine: Engine) -> None:
    """Writers on two engines (separate connection pools, like two processes) and many threads: no lost update,
    and no float rounding (0.1 + 0.2 != 0.3 in binary floating point)."""
    name = "alice"
    other = reopen(db_engine)
    ledgers = [DbSpendLedger(db_engine), DbSpendLedger(other)]
    amounts = [Decimal("0.1"), Decimal("0.2"), Decimal("0.000015")]
    jobs = [(ledgers[i % 2], amounts[i % 3]) for i in range(120)]
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda job: job[0].record(name, task="main:7", usage=SEVEN, cost=job[1]), jobs))
        assert ledgers[0].spent_today(name) == (7 * 120, sum((cost for _, cost in jobs), Decimal(0)))
        assert ledgers[1].spent_today(name)[1] == Decimal("12.0006")
        assert ledgers[1].spent_on("main:7") == (
            Usage(prompt_tokens=600, completion_tokens=240, calls=120),
            Decimal("12.0006"),
        )
    finally:
        other.dispose()

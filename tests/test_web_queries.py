"""``orchestrator.adapters.sql.queries.Queries`` on SQLite and PostgreSQL: counts per state and per agent, task pages,
exact P&L sums of 256-bit amounts (checked against the amounts put in, to the last unit), and money per
UTC day from the reward and cost tables. Plus ``TokenBook``'s display of amounts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text

from orchestrator.adapters.sql import AgentCreate, CostKind, Store
from orchestrator.adapters.sql.queries import Queries, combine, exact_sum_columns
from orchestrator.domain.board import Payout
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.money import TokenBook, TokenInfo, whole_text
from tests.conftest import reopen
from tests.test_store import board_task, tx

S = TaskState
ALICE, BOB = "0x" + "aa" * 20, "0x" + "bb" * 20
TOKEN_A, TOKEN_B = "0x" + "70" * 20, "0x" + "71" * 20
BIG = 2**256 - 1  # the largest amount a U256 column holds


def test_exact_sums_of_huge_amounts(db_engine: Engine) -> None:
    when = [datetime(2026, 3, 1, 23, 59, tzinfo=UTC)]
    store = Store(db_engine, clock=lambda: when[0])
    store.upsert_agent(agent=AgentCreate(name="alice", address=ALICE))
    store.upsert_agent(agent=AgentCreate(name="bob", address=BOB))
    # payouts of tasks that are not ours, to our agents' addresses: no task lifecycle needed
    amounts = [BIG // 3, BIG // 3, 10**18 + 1, 7]
    for i, amount in enumerate(amounts):
        store.record_reward(payout=Payout("other", str(i), ALICE, TOKEN_A, amount, tx(i), 100 + i))
    when[0] = datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC)  # the next UTC day, one minute later
    store.record_reward(payout=Payout("other", str(10), BOB, TOKEN_B, 2**200, tx(10), 110))
    store.record_reward(payout=Payout("other", str(11), ALICE, TOKEN_B, 5, tx(11), 111))
    store.record_cost(agent="alice", kind=CostKind.GAS, amount=2**70, tx_hash=tx(20))
    store.record_cost(agent="alice", kind=CostKind.GAS, amount=2**70 + 1, tx_hash=tx(21))
    store.record_cost(agent="bob", kind=CostKind.LLM, amount=4_200)
    store.record_cost(agent="bob", kind=CostKind.LLM, amount=800)

    queries = Queries(db_engine)
    pnl = queries.pnl_by_agent()
    assert pnl == store.pnl_by_agent()  # the Store's P&L is these SQL sums
    assert pnl["alice"].rewards == {TOKEN_A: sum(amounts), TOKEN_B: 5} and pnl["alice"].gas_wei == 2**71 + 1
    assert pnl["bob"].rewards == {TOKEN_B: 2**200} and pnl["bob"].llm_usd_micro == 5_000

    first, second = queries.money_by_day()
    assert first.day == date(2026, 3, 1) and first.rewards == {TOKEN_A: sum(amounts)}
    assert (first.gas_wei, first.llm_usd_micro) == (0, 0)
    assert second.day == date(2026, 3, 2) and second.rewards == {TOKEN_B: 2**200 + 5}
    assert (second.gas_wei, second.llm_usd_micro) == (2**71 + 1, 5_000)
    assert [d.day for d in queries.money_by_day(since=date(2026, 3, 2))] == [date(2026, 3, 2)]


def test_an_amount_of_2_to_the_256_minus_1_sums_exactly(db_engine: Engine) -> None:
    from sqlalchemy import select
    from sqlmodel import col

    from orchestrator.adapters.sql.models import Reward

    store = Store(db_engine)
    store.upsert_agent(agent=AgentCreate(name="alice", address=ALICE))
    store.record_reward(payout=Payout("other", str(1), ALICE, TOKEN_A, BIG, tx(1), 1))
    with db_engine.connect() as conn:
        chunks = conn.execute(select(*exact_sum_columns(col(Reward.amount)))).one()
        empty = conn.execute(select(*exact_sum_columns(col(Reward.amount))).where(col(Reward.id) < 0)).one()
    assert combine(chunks) == BIG and combine(empty) == 0


def test_counts_and_pages(db_engine: Engine) -> None:
    store = Store(db_engine)
    for n in range(1, 6):
        store.upsert_discovered(board_task=board_task(n))
    store.upsert_discovered(board_task=board_task(6, quarantine="bad json"))
    store.transition(task_id=1, to=S.CLAIMING, actor="w", agent="alice")
    store.transition(task_id=2, to=S.CLAIMING, actor="w", agent="alice")
    store.transition(task_id=2, to=S.CLAIMED, actor="w", tx_hash=tx(2))
    store.transition(task_id=3, to=S.CLAIMING, actor="w", agent="bob")

    queries = Queries(db_engine)
    assert queries.tasks_by_state() == {S.DISCOVERED: 2, S.CLAIMING: 2, S.CLAIMED: 1, S.QUARANTINED: 1}
    assert queries.tasks_by_state() == store.count_by_state()
    assert queries.tasks_by_agent() == {"alice": {S.CLAIMING: 1, S.CLAIMED: 1}, "bob": {S.CLAIMING: 1}}
    assert queries.count_tasks() == 6 and queries.count_tasks(state=S.CLAIMING) == 2
    page = queries.task_page(limit=4, offset=0)
    assert [t.id for t in page.tasks] == [6, 5, 4, 3] and page.total == 6
    assert page.tasks[0] == store.get_task(task_id=6)  # the same TaskPublic as the Store returns
    assert [t.id for t in queries.task_page(limit=4, offset=4).tasks] == [2, 1]
    claiming = queries.task_page(state=S.CLAIMING, limit=10)
    assert [t.id for t in claiming.tasks] == [3, 1] and claiming.total == 2
    assert queries.task_page(state=S.PAID, limit=10).tasks == []


def test_days_are_utc_days(db_engine: Engine) -> None:
    """23:30 in New York is the next UTC day: the bucket follows UTC, whatever the database session's zone."""
    when = [datetime(2026, 5, 1, 23, 30, tzinfo=UTC) + timedelta(hours=4)]  # = 2026-05-02 03:30 UTC
    store = Store(db_engine, clock=lambda: when[0])
    store.upsert_agent(agent=AgentCreate(name="alice", address=ALICE))
    store.record_reward(payout=Payout("other", str(1), ALICE, TOKEN_A, 10, tx(1), 1))
    (day,) = Queries(db_engine).money_by_day()
    assert day.day == date(2026, 5, 2)
    if db_engine.dialect.name == "postgresql":
        new_york = reopen(db_engine, TimeZone="America/New_York")
        try:
            with new_york.connect() as conn:
                assert conn.execute(text("SHOW TimeZone")).scalar_one() == "America/New_York"
            (day,) = Queries(new_york).money_by_day()
            assert day.day == date(2026, 5, 2)
        finally:
            new_york.dispose()


def test_token_book_formats_known_and_unknown_tokens() -> None:
    book = TokenBook([TokenInfo(TOKEN_A, "DWR", 18), TokenInfo(TOKEN_B.upper().replace("0X", "0x"), "USDC", 6)])
    assert book.format(5 * 10**18, TOKEN_A.upper().replace("0X", "0x")) == "5 DWR"  # addresses match in any case
    assert book.format(1_234_567_890, TOKEN_B) == "1,234.5679 USDC"
    assert book.format(12, TOKEN_B) == "0.000012 USDC"
    assert book.format(1, TOKEN_A) == "<0.00000001 DWR"
    assert book.format(1_234_567, "0x" + "99" * 20) == "1,234,567 units of 0x9999…9999"
    assert book.whole(15 * 10**17, TOKEN_A) == Decimal("1.5") and book.whole(1, "0x" + "99" * 20) is None
    assert whole_text(Decimal(0)) == "0" and len(book) == 2

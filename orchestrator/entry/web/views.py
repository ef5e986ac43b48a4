"""What the pages and the API show, assembled from ``Store`` reads: inbox rows, the fleet summary, a task's
history. Plain dataclasses and pydantic models, shared by ``routes.pages`` and ``routes.api``.

Must not import the web framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from orchestrator.adapters.sql import (
    AgentPublic,
    ArtifactPublic,
    PendingReview,
    PnL,
    ReviewPublic,
    RunPublic,
    Store,
    TaskEventPublic,
    TaskPublic,
)
from orchestrator.adapters.sql.queries import Queries
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.money import TokenBook
from orchestrator.entry.web.chart import Earning

#: Lifecycle states in the order a task goes through them, exits last: the dashboard's columns.
STATE_ORDER: tuple[TaskState, ...] = tuple(TaskState)
ACTIVE_STATES = frozenset(
    {
        TaskState.CLAIMING,
        TaskState.CLAIMED,
        TaskState.PRODUCING,
        TaskState.PRODUCED,
        TaskState.AWAITING_REVIEW,
        TaskState.APPROVED,
        TaskState.SUBMITTING,
    }
)


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    """The parts of an agent's ``manifest.json`` a reviewer wants to see; missing fields are None."""

    agent: str | None
    model: str | None
    cost_usd: Decimal | None
    tokens: int | None
    summary: str | None
    self_check_output: str | None
    feedback: str | None

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> ManifestInfo:
        usage = manifest.get("usage") if isinstance(manifest.get("usage"), dict) else {}
        check = manifest.get("self_check") if isinstance(manifest.get("self_check"), dict) else {}
        assert isinstance(usage, dict) and isinstance(check, dict)
        tokens = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        return cls(
            agent=_text(manifest.get("agent")),
            model=_text(manifest.get("model")),
            cost_usd=_decimal(manifest.get("cost")),
            tokens=sum(tokens) if all(isinstance(t, int) for t in tokens) and any(tokens) else None,
            summary=_text(manifest.get("summary")),
            self_check_output=_text(check.get("output")),
            feedback=_text(manifest.get("feedback")),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One row of the inbox."""

    task: TaskPublic
    artifact: ArtifactPublic
    history: list[ReviewPublic]
    info: ManifestInfo

    @classmethod
    def of(cls, pending: PendingReview) -> InboxItem:
        return cls(pending.task, pending.artifact, pending.history, ManifestInfo.of(pending.artifact.manifest))


#: Rows per page of the inbox and the task list.
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of a list a page shows: ``start`` (0-based), ``size``, and how many there are in all."""

    number: int
    size: int
    total: int

    @property
    def start(self) -> int:
        return (self.number - 1) * self.size

    @property
    def end(self) -> int:
        return min(self.start + self.size, self.total)

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))


def inbox(store: Store, queries: Queries, *, page: int = 1, size: int = PAGE_SIZE) -> tuple[list[InboxItem], Page]:
    """One page of the artifacts awaiting review, the longest-waiting first."""
    total = queries.count_tasks(state=TaskState.AWAITING_REVIEW)
    where = Page(number=max(1, min(page, -(-total // size) or 1)), size=size, total=total)
    return [InboxItem.of(p) for p in store.pending_reviews(limit=size, offset=where.start)], where


def inbox_signature(items: list[InboxItem]) -> str:
    """The inbox rows as ``id:cid`` in order: equal signatures, same page (a new revision changes its CID)."""
    return " ".join(f"{item.task.id}:{item.artifact.cid}" for item in items)


def task_list(
    queries: Queries, *, state: TaskState | None = None, page: int = 1, size: int = PAGE_SIZE
) -> tuple[list[TaskPublic], Page]:
    """One page of tasks (in ``state``, if given), the newest first. A page past the end shows the last one."""
    total = queries.count_tasks(state=state)
    where = Page(number=max(1, min(page, -(-total // size) or 1)), size=size, total=total)
    return queries.task_page(state=state, limit=size, offset=where.start).tasks, where


class AgentRow(BaseModel):
    """An agent with what it is doing now."""

    agent: AgentPublic
    active_tasks: int
    tasks_by_state: dict[TaskState, int]


class PnLRow(BaseModel):
    """One agent's profit and loss, per currency (token base units, gas wei, LLM micro-USD)."""

    agent: str
    rewards: dict[str, int]  # bounties
    gas_wei: int
    llm_usd_micro: int
    revenue: dict[str, int] = {}  # project pools' revenue claimed, per token (summed over pools)
    revenue_by_pool: dict[str, dict[str, int]] = {}  # pool -> token -> base units


class DayMoneyRow(BaseModel):
    """One UTC day: rewards received per token (base units, from the reward table), gas (wei), LLM cost
    (micro-USD)."""

    day: date
    rewards: dict[str, int]  # bounties
    gas_wei: int
    llm_usd_micro: int
    revenue: dict[str, int] = {}  # pool revenue claimed, per token


class TokenRow(BaseModel):
    """A token the app knows how to show (from ``wallets.tokens`` and the DAO's reward token)."""

    address: str
    symbol: str
    decimals: int


class FleetSummary(BaseModel):
    """The dashboard: agents, tasks per lifecycle state, P&L per agent, money in and out per day."""

    agents: list[AgentRow]
    tasks_by_state: dict[TaskState, int]
    pnl: list[PnLRow]
    days: list[DayMoneyRow]  # oldest first; days with nothing received or spent are left out
    tokens: list[TokenRow]  # metadata of the tokens above that are known; others are raw base units


def fleet(store: Store, queries: Queries, tokens: TokenBook) -> FleetSummary:
    """The fleet's state, from aggregate queries: no task, reward or cost row is loaded one by one."""
    by_state = queries.tasks_by_state()
    per_agent = queries.tasks_by_agent()
    agents = [
        AgentRow(
            agent=a,
            active_tasks=sum(n for s, n in per_agent.get(a.name, {}).items() if s in ACTIVE_STATES),
            tasks_by_state=per_agent.get(a.name, {}),
        )
        for a in store.agents()
    ]
    pnl = [_pnl_row(name, p) for name, p in queries.pnl_by_agent().items()]
    days = [
        DayMoneyRow(day=d.day, rewards=d.rewards, gas_wei=d.gas_wei, llm_usd_micro=d.llm_usd_micro, revenue=d.revenue)
        for d in queries.money_by_day()
    ]
    seen = {token.lower() for row in days for token in (*row.rewards, *row.revenue)} | {
        token.lower() for row in pnl for token in (*row.rewards, *row.revenue)
    }
    return FleetSummary(
        agents=agents,
        tasks_by_state={s: by_state[s] for s in STATE_ORDER if by_state.get(s)},
        pnl=pnl,
        days=days,
        tokens=[
            TokenRow(address=t.address, symbol=t.symbol, decimals=t.decimals)
            for t in tokens.known()
            if t.address.lower() in seen
        ],
    )


def _pnl_row(agent: str, p: PnL) -> PnLRow:
    revenue: dict[str, int] = {}
    by_pool: dict[str, dict[str, int]] = {}
    for (pool, token), amount in p.revenue.items():
        revenue[token] = revenue.get(token, 0) + amount
        by_pool.setdefault(pool, {})[token] = amount
    return PnLRow(
        agent=agent,
        rewards=dict(p.rewards),
        gas_wei=p.gas_wei,
        llm_usd_micro=p.llm_usd_micro,
        revenue=revenue,
        revenue_by_pool=by_pool,
    )


@dataclass(frozen=True, slots=True)
class EarningSeries:
    """One token's daily receipts for the chart: whole tokens when the token is known, base units otherwise."""

    token: str
    unit: str  # the symbol, or "units"
    points: list[Earning]
    total: int  # base units


def _whole_or_units(tokens: TokenBook, units: int, token: str) -> Decimal:
    """Whole tokens for a known token, base units for an unknown one (the chart then says "raw base units")."""
    whole = tokens.whole(units, token)
    return Decimal(units) if whole is None else whole


def earnings(summary: FleetSummary, tokens: TokenBook) -> list[EarningSeries]:
    """Received per token and UTC day, bounties (the reward table) plus pool revenue (the revenue_claim table), one
    series per token, largest total first when the token is unknown and alphabetical by symbol otherwise."""
    per_token: dict[str, list[tuple[date, int]]] = {}
    for row in summary.days:
        received = dict(row.rewards)
        for token, amount in row.revenue.items():
            received[token] = received.get(token, 0) + amount
        for token, amount in received.items():
            per_token.setdefault(token, []).append((row.day, amount))
    out: list[EarningSeries] = []
    for token, amounts in per_token.items():
        info = tokens.get(token)
        points = [
            Earning(at=datetime.combine(day, time.min, tzinfo=UTC), amount=_whole_or_units(tokens, units, token))
            for day, units in amounts
        ]
        total = sum(units for _, units in amounts)
        out.append(EarningSeries(token=token, unit=info.symbol if info else "units", points=points, total=total))
    out.sort(key=lambda e: (tokens.get(e.token) is None, e.unit, -e.total))
    return out


class TaskDetail(BaseModel):
    """A task with its whole trail: events (with transaction hashes and CIDs), artifacts, decisions, and the
    agent's runs (tokens and LLM cost of each)."""

    task: TaskPublic
    events: list[TaskEventPublic]
    artifacts: list[ArtifactPublic]
    reviews: list[ReviewPublic]
    runs: list[RunPublic]


def task_detail(store: Store, task_id: int) -> TaskDetail:
    """``RecordNotFound`` if there is no such task."""
    task = store.get_task(task_id=task_id)
    return TaskDetail(
        task=task,
        events=store.task_events(task_id=task_id),
        artifacts=store.artifacts(task_id=task_id),
        reviews=store.reviews(task_id=task_id),
        runs=store.runs(task_id=task_id),
    )


def previous_artifact(artifacts: list[ArtifactPublic], cid: str | None) -> ArtifactPublic | None:
    """The artifact recorded just before ``cid`` (what a revision is diffed against), or None."""
    cids = [a.cid for a in artifacts]
    if cid not in cids:
        return None
    i = cids.index(cid)
    return artifacts[i - 1] if i > 0 else None

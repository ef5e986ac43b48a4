"""What the pages and the API show, assembled from ``Store`` reads: inbox rows, the fleet summary, a task's
history. Plain dataclasses and pydantic models, shared by ``routes.pages`` and ``routes.api``.

Must not import the web framework.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from orchestrator.domain import TaskState
from orchestrator.store import (
    AgentPublic,
    ArtifactPublic,
    PendingReview,
    PnL,
    ReviewPublic,
    Store,
    TaskEventPublic,
    TaskPublic,
)
from orchestrator.web.chart import Earning

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


def inbox(store: Store, *, page: int = 1, size: int = PAGE_SIZE) -> tuple[list[InboxItem], Page]:
    """One page of the artifacts awaiting review, the longest-waiting first."""
    total = store.count_by_state().get(TaskState.AWAITING_REVIEW, 0)
    where = Page(number=max(1, min(page, -(-total // size) or 1)), size=size, total=total)
    return [InboxItem.of(p) for p in store.pending_reviews(limit=size, offset=where.start)], where


class AgentRow(BaseModel):
    """An agent with what it is doing now."""

    agent: AgentPublic
    active_tasks: int
    tasks_by_state: dict[TaskState, int]


class PnLRow(BaseModel):
    """One agent's profit and loss, per currency (token base units, gas wei, LLM micro-USD)."""

    agent: str
    rewards: dict[str, int]
    gas_wei: int
    llm_usd_micro: int


class FleetSummary(BaseModel):
    """The dashboard: agents, tasks per lifecycle state, P&L per agent, paid rewards over time."""

    agents: list[AgentRow]
    tasks_by_state: dict[TaskState, int]
    pnl: list[PnLRow]
    paid: list[tuple[datetime, str, int]]  # (when, token, base units), oldest first


def fleet(store: Store) -> FleetSummary:
    """The fleet's state from the store.

    Earnings over time come from PAID tasks (reward, token, time of the last change): ``Store`` has no reward
    listing yet, and a PAID task's reward is what the board escrowed and paid.
    """
    tasks = store.tasks()
    by_state = Counter(t.state for t in tasks)
    per_agent: dict[str, Counter[TaskState]] = {}
    for t in tasks:
        if t.agent_name is not None:
            per_agent.setdefault(t.agent_name, Counter())[t.state] += 1
    agents = [
        AgentRow(
            agent=a,
            active_tasks=sum(n for s, n in per_agent.get(a.name, Counter()).items() if s in ACTIVE_STATES),
            tasks_by_state=dict(per_agent.get(a.name, Counter())),
        )
        for a in store.agents()
    ]
    pnl = [_pnl_row(name, p) for name, p in sorted(store.pnl_by_agent().items())]
    paid = sorted((t.updated_at, t.token, t.reward) for t in tasks if t.state is TaskState.PAID)
    return FleetSummary(
        agents=agents, tasks_by_state={s: by_state[s] for s in STATE_ORDER if by_state[s]}, pnl=pnl, paid=paid
    )


def _pnl_row(agent: str, p: PnL) -> PnLRow:
    return PnLRow(agent=agent, rewards=dict(p.rewards), gas_wei=p.gas_wei, llm_usd_micro=p.llm_usd_micro)


def earnings(summary: FleetSummary, *, decimals: int) -> dict[str, list[Earning]]:
    """Paid rewards per token, in whole tokens."""
    out: dict[str, list[Earning]] = {}
    scale = Decimal(10) ** decimals
    for at, token, amount in summary.paid:
        out.setdefault(token, []).append(Earning(at=at, amount=Decimal(amount) / scale))
    return out


class TaskDetail(BaseModel):
    """A task with its whole trail: events (with transaction hashes and CIDs), artifacts and decisions."""

    task: TaskPublic
    events: list[TaskEventPublic]
    artifacts: list[ArtifactPublic]
    reviews: list[ReviewPublic]


def task_detail(store: Store, task_id: int) -> TaskDetail:
    """``RecordNotFound`` if there is no such task."""
    task = store.get_task(task_id=task_id)
    return TaskDetail(
        task=task,
        events=store.task_events(task_id=task_id),
        artifacts=store.artifacts(task_id=task_id),
        reviews=store.reviews(task_id=task_id),
    )


def previous_artifact(artifacts: list[ArtifactPublic], cid: str | None) -> ArtifactPublic | None:
    """The artifact recorded just before ``cid`` (what a revision is diffed against), or None."""
    cids = [a.cid for a in artifacts]
    if cid not in cids:
        return None
    i = cids.index(cid)
    return artifacts[i - 1] if i > 0 else None

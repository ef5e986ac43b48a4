"""``Store``: every SQL repository bundled behind one object, for the entry layer (CLI, web app, demo), which reads
tasks as ``TaskPublic``; and ``repositories``: the same repositories on the ports (``orchestrator.ports.repos``),
which return the domain ``Task``, for the application.

The repositories, one per concern: ``SqlCursors`` (boards, cursors), ``SqlTasks`` (discovery, transitions, waits),
``SqlRuns`` (runs, artifacts), ``SqlReviews`` (decisions), ``SqlLedger`` (rewards, costs, P&L), ``SqlAgents``;
what they share (transactions, guarded task writes, durability) is in ``base``.

Writes meant to be repeated after a crash are idempotent: discovery per (board, task key), artifacts per (task,
CID), rewards per (board, task key), gas costs per transaction hash.

Must not import the orchestrator's services or any adapter other than SQLAlchemy/SQLModel.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine

from orchestrator.adapters.sql.agents import SqlAgents
from orchestrator.adapters.sql.base import public_from_row, task_from_row, utcnow
from orchestrator.adapters.sql.cursors import SqlCursors
from orchestrator.adapters.sql.ledger import SqlLedger
from orchestrator.adapters.sql.models import TaskPublic
from orchestrator.adapters.sql.reviews import PendingReview, SqlReviews
from orchestrator.adapters.sql.runs import SqlRuns
from orchestrator.adapters.sql.tasks import SqlTasks
from orchestrator.domain.task import Task
from orchestrator.ports.repos import Repositories

R = TypeVar("R")

__all__ = ["PendingReview", "Store", "repositories"]


class Store(
    SqlCursors[TaskPublic],
    SqlTasks[TaskPublic],
    SqlRuns[TaskPublic],
    SqlReviews[TaskPublic],
    SqlLedger[TaskPublic],
    SqlAgents[TaskPublic],
):
    """The orchestrator's database, every repository in one. Build it in the bootstrap: ``Store(make_engine(url))``
    after ``migrate``. The settings are ``SqlRepository``'s."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_revisions: int = 3,
        clock: Callable[[], datetime] = utcnow,
        amount_text: Callable[[int, str], str] | None = None,
    ) -> None:
        super().__init__(
            engine, task_out=public_from_row, max_revisions=max_revisions, clock=clock, amount_text=amount_text
        )


def repositories(
    engine: Engine,
    *,
    max_revisions: int = 3,
    clock: Callable[[], datetime] = utcnow,
    amount_text: Callable[[int, str], str] | None = None,
) -> Repositories:
    """Every repository over ``engine``, with the same settings as ``Store``."""

    def build(cls: Callable[..., R]) -> R:
        return cls(engine, task_out=task_from_row, max_revisions=max_revisions, clock=clock, amount_text=amount_text)

    return Repositories(
        tasks=build(SqlTasks[Task]),
        runs=build(SqlRuns[Task]),
        reviews=build(SqlReviews[Task]),
        ledger=build(SqlLedger[Task]),
        cursors=build(SqlCursors[Task]),
        agents=build(SqlAgents[Task]),
    )

"""Deworker's database: SQLModel tables, Alembic migrations and the ``Store`` repository.

Build it in the bootstrap, never at import::

    engine = make_engine(config.db_url)
    migrate(engine)
    store = Store(engine)
"""

from orchestrator.store.db import make_engine, migrate
from orchestrator.store.errors import (
    Conflict,
    DuplicateRecord,
    RecordNotFound,
    ReviewRefused,
    StaleReview,
    StoreError,
    StoreUnavailable,
)
from orchestrator.store.models import (
    AgentCreate,
    AgentPublic,
    ArtifactPublic,
    BoardPublic,
    CostKind,
    CostPublic,
    EventKind,
    ReviewDecision,
    ReviewPublic,
    RewardPublic,
    RunCreate,
    RunPublic,
    RunStatus,
    SelfCheck,
    SpecReadPublic,
    TaskEventPublic,
    TaskPublic,
)
from orchestrator.store.repo import USD_MICRO, WEI, PendingReview, PnL, Store
from orchestrator.store.spend import AgentSpend, DbSpendLedger

__all__ = [
    "USD_MICRO",
    "WEI",
    "AgentCreate",
    "AgentPublic",
    "AgentSpend",
    "ArtifactPublic",
    "BoardPublic",
    "Conflict",
    "CostKind",
    "CostPublic",
    "DbSpendLedger",
    "DuplicateRecord",
    "EventKind",
    "PendingReview",
    "PnL",
    "RecordNotFound",
    "ReviewDecision",
    "ReviewPublic",
    "ReviewRefused",
    "RewardPublic",
    "RunCreate",
    "RunPublic",
    "RunStatus",
    "SelfCheck",
    "SpecReadPublic",
    "StaleReview",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TaskEventPublic",
    "TaskPublic",
    "make_engine",
    "migrate",
]

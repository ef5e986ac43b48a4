"""Deworker's database: SQLModel tables, Alembic migrations and the ``Store`` repository.

Build it in the bootstrap, never at import::

    engine = make_engine(config.db_url)
    migrate(engine)
    store = Store(engine)
"""

from orchestrator.adapters.sql.db import make_engine, migrate
from orchestrator.adapters.sql.errors import (
    Conflict,
    DuplicateRecord,
    RecordNotFound,
    ReviewRefused,
    StaleReview,
    StoreError,
    StoreUnavailable,
)
from orchestrator.adapters.sql.models import (
    AgentCreate,
    AgentPublic,
    ArtifactPublic,
    BoardPublic,
    CostKind,
    CostPublic,
    EventKind,
    ReviewPublic,
    RewardPublic,
    RunCreate,
    RunPublic,
    RunStatus,
    SpecReadPublic,
    TaskEventPublic,
    TaskPublic,
)
from orchestrator.adapters.sql.repo import PendingReview, Store
from orchestrator.adapters.sql.spend import AgentSpend, DbSpendLedger
from orchestrator.domain.money import USD_MICRO, WEI, PnL
from orchestrator.domain.review import ReviewDecision, SelfCheck

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

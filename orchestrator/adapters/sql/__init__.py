"""Deworker's database: SQLModel tables, Alembic migrations, the repositories (one per concern, each implementing
its port in ``orchestrator.ports.repos``) and ``Store``, all of them in one for the entry layer.

Build them in the bootstrap, never at import::

    engine = make_engine(config.db_url)
    migrate(engine)
    store = Store(engine)  # the entry layer: tasks as ``TaskPublic``
    repos = repositories(engine)  # the application's ports: tasks as the domain ``Task``
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
from orchestrator.adapters.sql.repo import PendingReview, Store, repositories
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
    "repositories",
]

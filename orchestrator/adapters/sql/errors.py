"""The repositories' errors (``StoreError`` and below), defined in ``orchestrator.domain.errors`` with the rest of
the tree because every repository adapter raises them; re-exported here for the SQL adapter's callers.

An illegal lifecycle transition raises ``orchestrator.domain.errors.LifecycleError`` (from ``domain.check_transition``),
not a ``StoreError``: it is a bug in the caller, not a database problem.
SQLAlchemy exceptions never leave ``orchestrator.adapters.sql``: they are translated into this tree.
"""

from __future__ import annotations

from orchestrator.domain.errors import (
    Conflict,
    DuplicateRecord,
    LeaseHeld,
    RecordNotFound,
    ReviewRefused,
    StaleReview,
    StoreError,
    StoreUnavailable,
)

__all__ = [
    "Conflict",
    "DuplicateRecord",
    "LeaseHeld",
    "RecordNotFound",
    "ReviewRefused",
    "StaleReview",
    "StoreError",
    "StoreUnavailable",
]

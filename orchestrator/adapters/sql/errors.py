"""The store branch of Deworker's exception tree (``StoreError`` and below), drawn with every other branch in
``orchestrator.domain.errors``.

An illegal lifecycle transition raises ``orchestrator.domain.errors.LifecycleError`` (from ``domain.check_transition``),
not a ``StoreError``: it is a bug in the caller, not a database problem.
SQLAlchemy exceptions never leave ``orchestrator.adapters.sql``: they are translated into this tree.
"""

from __future__ import annotations

from orchestrator.domain.errors import DeworkerError


class StoreError(DeworkerError):
    """The database refused or failed an operation."""


class StoreUnavailable(StoreError):
    """The database cannot be reached, or stayed locked longer than the busy timeout. Safe to retry."""

    retryable = True


class RecordNotFound(StoreError):
    """No record with this key."""


class Conflict(StoreError):
    """Another worker changed the task first. Never retried blindly: reload the task and decide again."""


class StaleReview(StoreError):
    """The reviewer saw an artifact that is no longer the task's current one (approving an older revision does not
    approve a newer one)."""


class ReviewRefused(StoreError):
    """A review decision that cannot be taken now: feedback missing, or the revision limit reached."""


class DuplicateRecord(StoreError):
    """A record that must be unique (a reward per task, a gas cost per transaction) disagrees with the stored one."""

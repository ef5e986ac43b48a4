"""The one exception tree of Deworker.

Every error raised above an adapter's edge is a ``DeworkerError``; library exceptions (web3, httpx, sqlalchemy,
pydantic) are translated where they happen (``raise ChainError(...) from exc``) and never leak upward.

::

    DeworkerError                       retryable=False unless stated
    ├── ConfigError                     bad or missing configuration: names the key, what was expected, the fix
    ├── ChainError
    │   ├── ChainUnavailable            retryable: connection refused, timeout, HTTP 429/5xx, -32005
    │   ├── InsufficientFunds           retryable: the sender cannot pay the gas yet (a top-up fixes it)
    │   ├── TransactionReverted         the EVM reverted; carries the decoded reason
    │   └── LogQueryTooLarge            the node refused a log range as too large (the caller splits it)
    ├── BoardError
    │   ├── TaskNotFound                the board has no task with this key
    │   ├── TaskTaken                   someone else holds the task, or it is not open: a lost race, never retried
    │   └── ClaimGone                   our claim or assignment is gone (expired, another holder)
    ├── DocumentRefused                 a document from outside breaks a parsing limit or a text rule
    │   └── SpecError                   a task spec is malformed, oversized, unreachable: the task is quarantined
    ├── ArtifactError
    │   ├── ArtifactNotFound            no source holds it (every gateway answered 404)
    │   ├── ArtifactUnavailable         retryable: no source could answer now (timeouts, wrong bytes, refused)
    │   ├── ArtifactTooLarge            larger than the caller's limit (checked before reading the content)
    │   └── ArtifactCorrupt             stored bytes do not hash to the CID asked for
    └── LifecycleError                  a task state transition the lifecycle table does not allow

Messages say what happened *and* what to do about it. They never contain key material.
"""

from __future__ import annotations


class DeworkerError(Exception):
    """Root of every error Deworker raises on purpose.

    ``retryable`` tells the scheduler whether the same step may succeed if simply tried again later.
    ``hint`` is the fix, shown to the user on its own line.
    """

    retryable: bool = False

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (fix: {self.hint})"
        return self.message


class ConfigError(DeworkerError):
    """Configuration is missing or wrong. ``key`` is the dotted config key, e.g. ``chain.rpc_url``."""

    def __init__(
        self, message: str, *, key: str | None = None, source: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.source = source


class ChainError(DeworkerError):
    """Something failed talking to, or on, the chain."""


class ChainUnavailable(ChainError):
    """A transient fault reaching the node (connection, timeout, rate limit). Safe to retry."""

    retryable = True
    #: the last fault alone ("HTTP 503 Service Unavailable"), without which node and method (for health tables)
    fault: str | None = None


class InsufficientFunds(ChainError):
    """The node refused a transaction because the sender cannot pay its gas (and value). It passes by itself
    once the wallet is topped up (the fleet's upkeep does that), so the step is retried with backoff."""

    retryable = True


class TransactionReverted(ChainError):
    """The EVM reverted a call or transaction. Never retried: the same input reverts again."""

    def __init__(self, reason: str, *, tx_hash: str | None = None, hint: str | None = None) -> None:
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"reverted: {reason}{where}", hint=hint)
        self.reason = reason
        self.tx_hash = tx_hash


class LogQueryTooLarge(ChainError):
    """The node refused a log query because the range holds too many results."""

    retryable = True


class BoardError(DeworkerError):
    """A task-board operation failed."""


class TaskNotFound(BoardError):
    """No task with this id on this board."""


class TaskTaken(BoardError):
    """The board gave the task to someone else, or it is not open any more: a lost race. Never retried."""


class ClaimGone(BoardError):
    """The task is no longer held by the wallet acting on it (the claim expired, or another holder has it)."""


class DocumentRefused(DeworkerError):
    """A document from outside (a spec, a manifest, a CAR file) breaks a parsing limit (size, nesting, counts,
    string length) or a text rule (control characters, surrogates). The message names the limit or the field."""


class SpecError(DocumentRefused):
    """A task spec is malformed, too large, of the wrong schema or unreachable. The task gets quarantined."""


class ArtifactError(DeworkerError):
    """Artifact store failure."""


class ArtifactNotFound(ArtifactError):
    """The store holds no content for this CID."""


class ArtifactUnavailable(ArtifactError):
    """No source could answer now (timeouts, refused connections, wrong bytes): worth trying again later."""

    retryable = True


class ArtifactTooLarge(ArtifactError):
    """The content is larger than the limit the caller set."""


class ArtifactCorrupt(ArtifactError):
    """Stored content does not hash to the CID it is filed under."""


class LifecycleError(DeworkerError):
    """A task state transition that the lifecycle table does not allow."""

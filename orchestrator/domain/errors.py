"""The one exception tree of Deworker, drawn here once for every layer.

Every error raised above an adapter's edge is a ``DeworkerError``; library exceptions (web3, httpx, sqlalchemy,
pydantic) are translated where they happen (``raise ChainError(...) from exc``) and never leak upward. A class
may live in its own layer's module (an adapter's errors next to the adapter; the domain imports none of them):
the module is in brackets. ``retryable`` is False unless the line starts with "retryable". tests/test_errors.py
checks this drawing against the classes: every project exception is in it, under the base drawn, in the module
drawn, and nothing drawn is missing.

::

    DeworkerError [orchestrator.domain.errors]
    ├── ConfigError [orchestrator.domain.errors]  bad or missing configuration: names the key, expected value, fix
    ├── ChainError [orchestrator.domain.errors]
    │   ├── ChainUnavailable [orchestrator.domain.errors]  retryable: refused, timeout, HTTP 429/5xx, -32005
    │   │   └── _TransientFault [orchestrator.adapters.chain.rpc]  retryable: one failed attempt, inside the
    │   │                                   retries; what is left of it once they are used up is a ChainUnavailable
    │   ├── InsufficientFunds [orchestrator.domain.errors]  retryable: the sender cannot pay the gas yet (top-up)
    │   ├── TransactionReverted [orchestrator.domain.errors]  the EVM reverted; carries the decoded reason
    │   ├── LogQueryTooLarge [orchestrator.domain.errors]  retryable: a log range too large (the caller splits it)
    │   ├── NonceTooLow [orchestrator.adapters.chain.base]  the nonce is used by another transaction: re-sign
    │   ├── ReceiptTimeout [orchestrator.adapters.chain.base]  retryable: no receipt yet; look again, never re-sign
    │   ├── AnvilNotFound [orchestrator.adapters.chain.anvil]  the anvil binary is not installed (hint: how)
    │   └── AnvilFailed [orchestrator.adapters.chain.anvil]  anvil did not start, or stopped answering
    ├── BoardError [orchestrator.domain.errors]
    │   ├── TaskNotFound [orchestrator.domain.errors]  the board has no task with this key
    │   ├── TaskTaken [orchestrator.domain.errors]  someone else holds it, or it is not open: a lost race
    │   ├── ClaimGone [orchestrator.domain.errors]  our claim or assignment is gone (expired, another holder)
    │   ├── WrongTaskState [orchestrator.entry.dao]  the task is not in the state a DAO action needs
    │   ├── NotAllowed [orchestrator.entry.dao]  the DAO account is not the task's reviewer or poster
    │   ├── JobRefused [orchestrator.entry.market]  an ERC-8183 job's state or roles refuse the action: none sent
    │   └── BidRefused [orchestrator.entry.bids]  a bid on an open job is refused (signature, job, amount): not kept
    │       └── BidRateLimited [orchestrator.entry.bids]  retryable: too many bids from one client or bidder
    ├── CannotPay [orchestrator.entry.dao]  the DAO account lacks the tokens or the gas: nothing was sent
    ├── DocumentRefused [orchestrator.domain.errors]  a document from outside breaks a parsing limit or text rule
    │   └── SpecError [orchestrator.domain.errors]  a task spec is malformed, oversized, unreachable: quarantined
    ├── ArtifactError [orchestrator.domain.errors]
    │   ├── ArtifactNotFound [orchestrator.domain.errors]  no source holds it (every gateway answered 404)
    │   ├── ArtifactUnavailable [orchestrator.domain.errors]  retryable: no source could answer now
    │   ├── ArtifactTooLarge [orchestrator.domain.errors]  over the caller's limit (checked before reading it)
    │   └── ArtifactCorrupt [orchestrator.domain.errors]  stored bytes do not hash to the CID asked for
    ├── _GatewayFailed [orchestrator.adapters.artifacts.gateway]  one gateway could not serve a request; its
    │   │                               ``kind`` decides the ArtifactError raised once every gateway failed
    │   └── _CarRefused [orchestrator.adapters.artifacts.gateway]  it serves no CARs: read its blocks one by one
    ├── GatewayRefusal [orchestrator.adapters.artifacts.gateway_server]  our gateway answers a request 400/406
    ├── LifecycleError [orchestrator.domain.errors]  a task state transition the lifecycle table does not allow
    ├── StoreError [orchestrator.domain.errors]  the database refused or failed an operation
    │   ├── StoreUnavailable [orchestrator.domain.errors]  retryable: cannot connect, or locked too long
    │   ├── RecordNotFound [orchestrator.domain.errors]  no task (or run, ...) with this id
    │   ├── Conflict [orchestrator.domain.errors]  another worker changed the row first: reload, decide again
    │   ├── StaleReview [orchestrator.domain.errors]  the review saw an artifact no longer the current one
    │   ├── ReviewRefused [orchestrator.domain.errors]  not possible now (no feedback, revision limit)
    │   ├── DuplicateRecord [orchestrator.domain.errors]  a unique record disagrees with the stored one
    │   └── LeaseHeld [orchestrator.domain.errors]  another live process holds a lease this one needs (a second
    │                                   single-process `deworker run` on one database), or this one lost its own
    ├── WalletError [wallets.errors]
    │   ├── KeystoreError [wallets.errors]  a keystore file is missing, malformed, loosely permissioned, or exists
    │   │   └── WrongPassphrase [wallets.errors]  the passphrase does not open the keystore (the MAC differs)
    │   ├── PolicyDenied [wallets.errors]  the policy gate refused a transaction before signing; ``rule`` says why
    │   └── JournalError [wallets.errors]  the journal cannot be read or written, or disagrees with itself
    │       ├── NonceDrift [wallets.errors]  retryable: another transaction took our nonce; the journal is repaired
    │       ├── TxUncertain [wallets.errors]  a journaled transaction may or may not have reached the node
    │       └── TxExpired [wallets.errors]  its purpose expired before it mined: a cancellation took its nonce
    │                                   (or, not yet sent, it was never signed)
    ├── AgentError [agents.errors]  an agent could not turn a spec into an artifact
    │   ├── BudgetExceeded [agents.errors]  a token, cost or time budget (per task or per day) is used up
    │   ├── ModelUnavailable [agents.errors]  retryable: the model endpoint kept failing (429, 5xx, timeout)
    │   ├── ModelRequestRejected [agents.errors]  the endpoint refused the request itself (400, 401, 404)
    │   ├── LocalModelError [agents.errors]  the embedded model server cannot be found, installed or started
    │   ├── ToolError [agents.errors]  a tool refused or failed; the LangChain wrapper turns it into text
    │   │   └── ToolRefused [agents.errors]  a safety rule refused the call (path traversal, SSRF, size caps)
    │   └── _NoSubmission [agents.langchain_agent]  an attempt ended without a valid submit_artifact call
    ├── SolidityToolchainMissing [contracts.solidity]  npm solc / OpenZeppelin are not installed (make solc-oz)
    └── LoginRequired [orchestrator.entry.web.auth]  a page needs a browser session: the app redirects to /login

Only ``tools.langchain`` turns a ``ToolError`` into text for the model; every other layer raises. SQLAlchemy
exceptions never leave ``orchestrator.adapters.sql``. An illegal lifecycle transition is a ``LifecycleError`` (a
bug in the caller), not a ``StoreError``. Messages say what happened *and* what to do about it (``hint``). They
never contain key material, passphrases or raw signed transactions: a wallet is named by its name and address,
a transaction by its hash.
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


# ----------------------------------------------------------------------------------- repositories (ports/repos.py)
# Raised by every repository adapter (the SQL one translates SQLAlchemy's errors into these).


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


class LeaseHeld(StoreError):
    """Another live process holds a lease in the database that this one needs (the single-process service's), or
    this process lost its own (its heartbeat lapsed and another took it over). Not retried: say who holds it."""

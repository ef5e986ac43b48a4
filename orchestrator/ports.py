"""Ports: the narrow interfaces the core talks to. Adapters implement them; the core never imports an adapter.

Must not import web3, httpx, sqlalchemy or any other adapter library: only the standard library and the domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from orchestrator.domain import BoardTask, Payout, Rejection, TaskSpec

# --------------------------------------------------------------------------------------------------------- chain


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One EVM log, as the node returned it. ``topics[0]`` is the event signature hash."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """A mined transaction's receipt. ``status`` is 1 on success (reverted transactions raise instead)."""

    tx_hash: str
    block_number: int
    status: int
    gas_used: int
    effective_gas_price: int
    logs: tuple[LogEntry, ...] = field(default=())

    @property
    def fee_wei(self) -> int:
        """What the sender paid for gas, in wei."""
        return self.gas_used * self.effective_gas_price


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fee parameters to put in a transaction."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block as the node sees it now: its number, hash (0x-hex) and timestamp (seconds)."""

    number: int
    hash: str
    timestamp: int


@runtime_checkable
class Chain(Protocol):
    """An EVM chain reached through a node (in-process py-evm, or JSON-RPC) or several nodes of one chain.

    Adapters: ``EthTesterChain``, ``RpcChain``, ``MultiRpcChain`` (fails over between nodes, broadcasts
    transactions to all). Transient faults raise ``ChainUnavailable`` (after the adapter's own bounded retries);
    reverts raise ``TransactionReverted`` and are never retried.
    """

    @property
    def chain_id(self) -> int: ...

    def block_number(self) -> int: ...

    def block(self, number: int | None = None) -> BlockRef:
        """Block ``number`` (``None``: the latest) as the node sees it now; ``ChainError`` if it has none."""
        ...

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        """``eth_call`` at the latest block. Reverts raise ``TransactionReverted`` with the decoded reason."""
        ...

    def estimate_gas(self, *, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        """Gas estimate; a transaction that would revert raises ``TransactionReverted``."""
        ...

    def fees(self) -> Fees: ...

    def nonce(self, address: str, *, pending: bool = True) -> int: ...

    def balance(self, address: str) -> int: ...

    def send_raw(self, raw_tx: bytes) -> str:
        """Broadcast a signed transaction; returns its hash as 0x-hex."""
        ...

    def wait_receipt(self, tx_hash: str, *, timeout: float = 120.0) -> Receipt:
        """Wait for the receipt; a mined-but-reverted transaction raises ``TransactionReverted``."""
        ...

    def transaction_known(self, tx_hash: str) -> bool:
        """Whether the node has this transaction, pending or mined (a dropped one it has forgotten: no)."""
        ...

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt if mined, else ``None``. Does not raise on reverted transactions."""
        ...

    def get_logs(
        self, *, address: str, topics: Sequence[bytes | None] | None, from_block: int, to_block: int
    ) -> list[LogEntry]:
        """Logs in ``[from_block, to_block]``, fetched in bounded ranges, split further when the node refuses."""
        ...


@runtime_checkable
class Signer(Protocol):
    """Something that signs and sends transactions from one address: a dev key in tests and the DAO tools, an
    agent's policy-gated wallet in the fleet. Only the orchestrator holds one; agents never do."""

    @property
    def address(self) -> str: ...

    def send(
        self,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        expires_at: int | None = None,
    ) -> Receipt:
        """Sign, send and wait for the receipt. Reverts raise ``TransactionReverted``. ``expires_at`` (chain time,
        seconds): after it the transaction is pointless; one still pending then is cancelled rather than mined."""
        ...


# --------------------------------------------------------------------------------------------------- artifacts


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed storage. CIDs are CIDv1 with raw leaves, identical to ``ipfs add --cid-version=1
    --raw-leaves``. Adapters: ``LocalArtifactStore``, and the
    remote kinds of ``orchestrator.artifacts`` that keep a local store as their cache."""

    def put_bytes(self, data: bytes) -> str: ...

    def put_path(self, path: Path) -> str:
        """Add a file or a directory (recursively, as a UnixFS directory); return the root CID."""
        ...

    def get_bytes(self, cid: str, *, max_bytes: int | None = None) -> bytes:
        """Content of a file CID, verified against the CID. Raises ``ArtifactNotFound``/``ArtifactCorrupt``, and
        ``ArtifactTooLarge`` before reading anything when the file is larger than ``max_bytes``."""
        ...

    def get_path(self, cid: str, dest: Path) -> Path:
        """Write a file or directory CID to ``dest``, verifying every block on the way."""
        ...

    def has(self, cid: str) -> bool: ...

    def publish(self, cid: str) -> None:
        """Make a DAG this store holds reachable by other parties (Kubo: add and pin it); a no-op for a store
        others already read from. Idempotent. ``ArtifactUnavailable`` when the remote cannot be reached now."""
        ...

    def confirm_published(self, cid: str) -> bool:
        """Read the DAG back through the configured gateways, bypassing every local copy, each block verified.
        True when one gateway served all of it, False when no gateway is configured; raises
        ``ArtifactUnavailable`` (retryable) when none could, with each gateway's reason."""
        ...


# ------------------------------------------------------------------------------------------------------ boards


#: What an agent does on a board that costs gas and must never happen twice.
BoardAction = Literal["claim", "submit"]


@runtime_checkable
class TaskBoard(Protocol):
    """A DAO task board. Adapters: ``OnchainTaskBoard`` (our TaskBoard contract)."""

    name: str

    def poll(self, cursor: int) -> tuple[list[BoardTask], int]:
        """Tasks posted since ``cursor`` (an opaque resume point), specs not read yet, and the next cursor."""
        ...

    def read_spec(self, task: BoardTask) -> TaskSpec:
        """Fetch and validate the spec of a task ``poll`` returned. ``SpecError`` (with the reason) quarantines
        the task; a retryable error means the spec may be readable later. Reading is a step of its own so that
        the caller can mark the task first: a spec that crashes the reader must not be read again."""
        ...

    def status(self, task_id: int) -> BoardTask:
        """The task as the board sees it now."""
        ...

    def claim(self, task_id: int, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        """Claim the task for ``wallet``'s address (pointless after ``expires_at``, chain time)."""
        ...

    def release(self, task_id: int, *, wallet: Signer) -> Receipt: ...

    def submit(self, task_id: int, artifact_cid: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        """Deliver ``artifact_cid`` (pointless after ``expires_at``, chain time)."""
        ...

    def payouts(self, cursor: int) -> tuple[list[Payout], int]:
        """Rewards paid since ``cursor``, and the next cursor."""
        ...

    def rejection(self, task_id: int, *, from_block: int) -> Rejection | None:
        """The latest rejection of the task's submission since ``from_block`` (None: none)."""
        ...

    def action_tx(self, task_id: int, action: BoardAction, *, actor: str, from_block: int) -> str | None:
        """The transaction in which ``actor`` last made ``action`` on the task since ``from_block`` (None: none).
        Lets a restarted service attribute the gas of a claim or submission it finds confirmed on the board."""
        ...

"""The chain port: an EVM chain reached through one or more nodes, and the signer that sends transactions.

Must not import web3 or any other adapter library: standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


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

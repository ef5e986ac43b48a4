"""Logic shared by the ``Chain`` adapters: revert decoding, bounded log queries, receipt waiting.

``BaseChain`` implements the parts of the ``Chain`` port that do not depend on how the node is reached
(``get_logs`` chunking and splitting, ``wait_receipt`` polling, idempotent ``send_raw``); ``EthTesterChain``
and ``RpcChain`` fill in a handful of hooks. Adapter code: must not import web3, eth-tester/py-evm or httpx
(each concrete adapter imports its own backend), nor anything above the ports (services, database, LangChain).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from eth_utils.address import is_hex_address, to_checksum_address
from eth_utils.crypto import keccak

from orchestrator.domain.errors import ChainError, LogQueryTooLarge, TransactionReverted
from orchestrator.ports.chain import BlockRef, Fees, LogEntry, Receipt

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

# Solidity's panic codes (https://docs.soliditylang.org/en/latest/control-structures.html#panic-via-assert-and-error-via-require)
PANIC_CODES: dict[int, str] = {
    0x00: "generic compiler panic",
    0x01: "assert(false)",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupted storage byte array",
    0x31: "pop() on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory (allocation too large)",
    0x51: "call to a zero-initialized internal function",
}

DEFAULT_MAX_LOG_RANGE = 2000
REVERT_HINT = "the same call reverts again with the same inputs and state: fix the arguments or the state first"


#: What to do about ``InsufficientFunds``: a person funds the wallet, or the fleet's upkeep tops it up.
FUND_HINT = "fund the wallet (`deworker wallet fund NAME`, or let the fleet's gas top-up do it); the step is retried"


class NonceTooLow(ChainError):
    """The node refused a transaction because its nonce is already used (or a different transaction holds it).

    ``BaseChain.send_raw`` raises it only when the very transaction sent is *not* known to the node, so
    re-signing with a fresh nonce cannot send the same thing twice.
    """


class ReceiptTimeout(ChainError):
    """No receipt within the wait. The transaction may still be mined: look it up again, do not re-sign."""

    retryable = True


@dataclass(frozen=True, slots=True)
class DevAccount:
    """A funded development account of a local chain. ``private_key`` is left out of ``repr``/``str``."""

    address: str
    private_key: bytes = field(repr=False)


# -------------------------------------------------------------------------------------------- value checks


def preview(value: object, keep: int = 10) -> str:
    """A short, safe rendering of a caller-supplied value for error messages (never echo long secrets)."""
    text = repr(value)
    if len(text) <= keep + 2:
        return text
    return f"{text[:keep]}... ({len(text)} chars)"


def checksum_address(address: str) -> str:
    """``address`` in EIP-55 checksum form; ``ChainError`` if it is not a 20-byte hex address."""
    if not isinstance(address, str) or not is_hex_address(address):
        raise ChainError(
            f"not an EVM address: {preview(address)}",
            hint="pass a 0x-prefixed 20-byte hex address (40 hex digits)",
        )
    return to_checksum_address(address)


def normalize_tx_hash(tx_hash: str) -> str:
    """``tx_hash`` as lowercase 0x-hex of 32 bytes; ``ChainError`` otherwise."""
    text = tx_hash.lower() if isinstance(tx_hash, str) else ""
    body = text[2:] if text.startswith("0x") else text
    if len(body) != 64 or any(c not in "0123456789abcdef" for c in body):
        raise ChainError(f"not a transaction hash: {preview(tx_hash)}", hint="pass 0x followed by 64 hex digits")
    return "0x" + body


def tx_hash_of(raw_tx: bytes) -> str:
    """The hash of a signed, serialized transaction (what the node will call it)."""
    return "0x" + keccak(raw_tx).hex()


def check_topics(topics: Sequence[bytes | None] | None) -> tuple[bytes | None, ...]:
    """Validate a positional topic filter: each entry is 32 bytes or ``None`` (any), at most four."""
    if topics is None:
        return ()
    checked = tuple(topics)
    if len(checked) > 4:
        raise ChainError(f"a log filter has at most 4 topics, got {len(checked)}")
    for topic in checked:
        if topic is not None and (not isinstance(topic, bytes) or len(topic) != 32):
            raise ChainError(
                f"a topic must be 32 bytes or None, got {preview(topic)}",
                hint="use the keccak hash / padded value",
            )
    return checked


# ------------------------------------------------------------------------------------------ revert reasons


def _word(data: bytes, offset: int) -> int | None:
    if offset < 0 or offset + 32 > len(data):
        return None
    return int.from_bytes(data[offset : offset + 32], "big")


def decode_revert_reason(data: bytes) -> str:
    """A readable reason for EVM revert data; never raises.

    ``Error(string)`` gives the string, ``Panic(uint256)`` its code and meaning, anything else the
    custom-error selector with (a prefix of) the raw data. Vyper's bare ``assert`` and overflow checks revert
    with no data.
    """
    if not data:
        return "no reason given (empty revert data)"
    selector, body = data[:4], data[4:]
    if selector == ERROR_SELECTOR:
        offset = _word(body, 0)
        length = _word(body, offset) if offset is not None else None
        if offset is not None and length is not None and offset + 32 + length <= len(body):
            return body[offset + 32 : offset + 32 + length].decode("utf-8", errors="replace")
    elif selector == PANIC_SELECTOR:
        code = _word(body, 0)
        if code is not None:
            return f"Panic(0x{code:02x}): {PANIC_CODES.get(code, 'unknown panic code')}"
    hex_data = data.hex()
    shown = hex_data if len(hex_data) <= 200 else hex_data[:200] + "..."
    return f"custom error 0x{selector.hex()} (revert data 0x{shown})"


def explain_mined_failure(replay: str | None, *, gas_limit: int, gas_used: int, block_number: int) -> str:
    """The reason to report for a mined transaction with status 0, given what its replay said (``None``: the
    replay succeeded). A transaction that used all its gas ran out of it, or hit an invalid opcode."""
    if gas_used >= gas_limit:
        if replay is None or any(oog in replay.lower() for oog in ("out of gas", "outofgas", "oog")):
            return f"out of gas (used all {gas_limit} gas given)"
        return f"{replay} (used all {gas_limit} gas given)"
    if replay is None:
        return f"reverted in block {block_number}, but a replay on the parent block succeeds"
    return replay


# ------------------------------------------------------------------------------------------ the base class


class BaseChain(ABC):
    """Shared half of the ``Chain`` port; subclasses implement the abstract methods (see the module doc)."""

    #: first and longest pause between receipt polls, in seconds (an in-process chain needs none); once receipts
    #: have been seen, ``wait_receipt`` first waits the typical time one took (``receipt_latency``) before polling
    receipt_poll_initial: float = 0.02
    receipt_poll_min: float = 0.001
    receipt_poll_max: float = 0.5

    def __init__(self, *, max_log_range: int = DEFAULT_MAX_LOG_RANGE) -> None:
        self.max_log_range = max_log_range
        self.receipt_latency: float | None = None

    @property
    def max_log_range(self) -> int:
        """Most blocks asked for in one log query; longer ranges are fetched in chunks of this size."""
        return self._max_log_range

    @max_log_range.setter
    def max_log_range(self, value: int) -> None:
        if not isinstance(value, int) or value < 1:
            raise ChainError(f"max_log_range must be a positive integer, got {value!r}")
        self._max_log_range = value

    # ---------------------------------------------------------------------------------- the port, per adapter

    @property
    @abstractmethod
    def chain_id(self) -> int: ...

    @abstractmethod
    def block_number(self) -> int: ...

    @abstractmethod
    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes: ...

    @abstractmethod
    def estimate_gas(self, *, sender: str, to: str | None, data: bytes, value: int = 0) -> int: ...

    @abstractmethod
    def fees(self) -> Fees: ...

    @abstractmethod
    def nonce(self, address: str, *, pending: bool = True) -> int: ...

    @abstractmethod
    def balance(self, address: str) -> int: ...

    @abstractmethod
    def receipt(self, tx_hash: str) -> Receipt | None: ...

    # ----------------------------------------------------------------------------------------- hooks

    @abstractmethod
    def _send_raw(self, raw_tx: bytes) -> str:
        """Broadcast; raise ``NonceTooLow`` when the node says the nonce is used or the tx is known."""

    @abstractmethod
    def transaction_known(self, tx_hash: str) -> bool:
        """Whether the node has this transaction (pending or mined)."""

    @abstractmethod
    def block(self, number: int | None = None) -> BlockRef:
        """Block ``number`` (``None``: the latest); ``ChainError`` if the node has no such block."""

    @abstractmethod
    def _revert_reason(self, tx_hash: str, receipt: Receipt) -> str:
        """Why a mined transaction reverted: replay it on the state it ran on and decode the revert data."""

    @abstractmethod
    def _fetch_logs(
        self, address: str, topics: tuple[bytes | None, ...], from_block: int, to_block: int
    ) -> list[LogEntry]:
        """One log query; raise ``LogQueryTooLarge`` if the node refuses the range as too large."""

    # ----------------------------------------------------------------------------------- shared behaviour

    def send_raw(self, raw_tx: bytes) -> str:
        """Broadcast a signed transaction; returns its hash as 0x-hex.

        Idempotent: re-sending a transaction the node already has (a retry after a lost answer) returns its
        hash instead of failing with "nonce too low" / "already known".
        """
        if not isinstance(raw_tx, bytes | bytearray) or not raw_tx:
            raise ChainError("send_raw needs the signed transaction as non-empty bytes")
        raw = bytes(raw_tx)
        try:
            return self._send_raw(raw)
        except NonceTooLow:
            tx_hash = tx_hash_of(raw)
            if self.transaction_known(tx_hash):
                return tx_hash
            raise

    def wait_receipt(self, tx_hash: str, *, timeout: float = 120.0) -> Receipt:
        """Wait for the receipt; a mined-but-reverted transaction raises ``TransactionReverted``."""
        tx_hash = normalize_tx_hash(tx_hash)
        started = time.monotonic()
        deadline = started + timeout
        pause = self._first_receipt_pause()
        if pause > 0:
            time.sleep(min(pause, timeout))
        delay = pause or self.receipt_poll_initial
        missed_at = 0.0
        while True:
            polled_at = time.monotonic() - started
            receipt = self.receipt(tx_hash)
            if receipt is not None:
                # the receipt appeared between the last miss and this poll: learn the middle, which shrinks when
                # we wait too long and grows when we poll too early (the time polled alone would only ever grow)
                self._learn_receipt_latency((missed_at + polled_at) / 2)
                if receipt.status == 1:
                    return receipt
                raise TransactionReverted(self._revert_reason(tx_hash, receipt), tx_hash=tx_hash, hint=REVERT_HINT)
            missed_at = polled_at
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReceiptTimeout(
                    f"transaction {tx_hash} has no receipt after {timeout:g} s",
                    hint="it may still be mined: wait_receipt again later; if it stays pending, check its "
                    "fees and that the node (or its mempool) still has it; do not re-sign with a new nonce",
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, self.receipt_poll_max)

    def _first_receipt_pause(self) -> float:
        """How long to wait before the first receipt poll: 0 (poll at once) until receipts are known to take
        longer than ``receipt_poll_min``. A local node mines in a few milliseconds: polling at once and then after
        a fixed 20 ms cost a pipeline on anvil more than the node itself did."""
        learned = self.receipt_latency
        if learned is None or self.receipt_poll_initial == 0 or learned < self.receipt_poll_min:
            return 0.0
        return min(learned, self.receipt_poll_max)

    def _learn_receipt_latency(self, seconds: float) -> None:
        """Moving average of how long receipts took to appear (threads may race here: any recent value does)."""
        previous = self.receipt_latency
        self.receipt_latency = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    def get_logs(
        self, *, address: str, topics: Sequence[bytes | None] | None, from_block: int, to_block: int
    ) -> list[LogEntry]:
        """Logs in ``[from_block, to_block]``, sorted by (block, log index).

        Fetched in chunks of at most ``max_log_range`` blocks; a chunk the node refuses as too large is split
        in halves, down to single blocks (a single block still refused raises ``LogQueryTooLarge``).
        """
        address = checksum_address(address)
        checked_topics = check_topics(topics)
        if from_block < 0 or to_block < 0:
            raise ChainError(f"block numbers must be >= 0, got {from_block}..{to_block}")
        logs: list[LogEntry] = []
        for start in range(from_block, to_block + 1, self.max_log_range):
            end = min(start + self.max_log_range - 1, to_block)
            logs.extend(self._fetch_logs_splitting(address, checked_topics, start, end))
        logs.sort(key=lambda log: (log.block_number, log.log_index))
        return logs

    def _fetch_logs_splitting(
        self, address: str, topics: tuple[bytes | None, ...], from_block: int, to_block: int
    ) -> list[LogEntry]:
        found: list[LogEntry] = []
        pending = [(from_block, to_block)]  # a stack, left half on top, so ranges are fetched in order
        while pending:
            start, end = pending.pop()
            try:
                found.extend(self._fetch_logs(address, topics, start, end))
            except LogQueryTooLarge as exc:
                if start == end:
                    raise LogQueryTooLarge(
                        f"the node refuses the logs of block {start} alone as too large: {exc.message}",
                        hint="use a node without a result limit for this contract (or narrow the topics)",
                    ) from exc
                middle = (start + end) // 2
                pending.append((middle + 1, end))
                pending.append((start, middle))
        return found

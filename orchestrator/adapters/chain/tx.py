"""``TxSender``: build, sign locally and send EIP-1559 transactions for one key, over any ``Chain``.

Every field is filled here (nonce from a local counter, gas, fees, chain id), so a transaction costs one
``send_raw`` and a receipt poll instead of the ~13 calls of web3's ``transact()``. The key stays inside the
eth-account ``LocalAccount``: it is never printed, logged or put in an exception.

Adapter code: must not import web3, eth-tester or httpx (it talks to the ``Chain`` port only), nor anything
above the ports.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from orchestrator.adapters.chain.base import NonceTooLow, checksum_address, tx_hash_of
from orchestrator.domain.errors import ChainError, ChainUnavailable
from orchestrator.ports.chain import Chain, Fees, Receipt

DEFAULT_GAS_MARGIN = 1.2
MIN_GAS = 21_000


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A signed transaction, ready to persist before broadcasting (re-broadcasting it is harmless)."""

    tx_hash: str
    sender: str
    nonce: int
    to: str | None
    value: int
    gas: int
    fees: Fees
    raw: bytes = field(repr=False)

    @property
    def contract_address(self) -> str | None:
        """For a deployment (``to`` is None), the address the contract will have."""
        if self.to is not None:
            return None
        return contract_address(self.sender, self.nonce)


@dataclass(frozen=True, slots=True)
class TxFields:
    """The fields of a signed type-2 transaction that a replacement keeps or raises."""

    chain_id: int
    nonce: int
    to: str | None
    value: int
    data: bytes
    gas: int
    fees: Fees


def decode_eip1559(raw: bytes) -> TxFields:
    """The fields of a signed EIP-1559 transaction (``0x02 || rlp([chainId, nonce, tip, maxFee, gas, to, value,
    data, accessList, v, r, s])``); ``ChainError`` for anything else."""
    if not raw or raw[0] != 2:
        raise ChainError("not a signed EIP-1559 (type 2) transaction")
    try:
        items = rlp.decode(bytes(raw[1:]))
        chain_id, nonce, tip, max_fee, gas, to, value, data = items[:8]
    except (rlp.exceptions.DecodingError, ValueError, TypeError):
        raise ChainError("cannot decode the signed transaction") from None

    def num(b: bytes) -> int:
        return int.from_bytes(b, "big")

    return TxFields(
        chain_id=num(chain_id),
        nonce=num(nonce),
        to=to_checksum_address(to) if to else None,
        value=num(value),
        data=bytes(data),
        gas=num(gas),
        fees=Fees(max_fee_per_gas=num(max_fee), max_priority_fee_per_gas=num(tip)),
    )


def contract_address(deployer: str, nonce: int) -> str:
    """Address of the contract ``deployer`` creates with its transaction number ``nonce`` (CREATE)."""
    encoded = rlp.encode([to_canonical_address(deployer), nonce])
    return to_checksum_address(keccak(encoded)[12:])


def sign_eip1559(
    account: LocalAccount,
    *,
    chain_id: int,
    nonce: int,
    to: str | None,
    data: bytes,
    value: int,
    gas: int,
    fees: Fees,
) -> SignedTx:
    """Sign a type-2 (EIP-1559) transaction with every field given explicitly; ``to=None`` deploys a contract.

    The one place Deworker signs: ``TxSender`` and the agents' journaled wallets both call it.
    """
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "value": value,
        "data": bytes(data),
        "gas": gas,
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
    }
    if to is not None:
        tx["to"] = to
    try:
        signed = account.sign_transaction(tx)
    # eth-account raises assorted errors for bad fields; name the kind, never echo anything that could hold the key
    except Exception as exc:
        raise ChainError(f"cannot sign the transaction: {type(exc).__name__}") from None
    raw = bytes(signed.raw_transaction)
    sender = to_checksum_address(account.address)
    return SignedTx(
        tx_hash=tx_hash_of(raw), sender=sender, nonce=nonce, to=to, value=value, gas=gas, fees=fees, raw=raw
    )


class TxSender:
    """Send transactions from one local key.

    Nonces come from a local counter, synced from the chain's pending nonce on first use, after any failed
    broadcast and when the node answers "nonce too low" (then the transaction is re-signed once with the fresh
    nonce; the node-side check in ``Chain.send_raw`` guarantees the first one was not accepted). A lock makes
    reserve-sign-broadcast atomic per sender, so threads sharing a sender get contiguous nonces in order. Use
    one ``TxSender`` per key per process.

    Gas is ``estimate_gas * gas_margin`` unless given. Fees are ``Chain.fees()``, cached for ``fee_ttl``
    seconds (the max fee is twice the base fee plus the tip, which absorbs several blocks of base-fee growth).
    """

    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        *,
        gas_margin: float = DEFAULT_GAS_MARGIN,
        fee_ttl: float = 2.0,
        receipt_timeout: float = 120.0,
    ) -> None:
        if gas_margin < 1.0:
            raise ChainError(f"gas_margin must be >= 1.0, got {gas_margin}")
        self.chain = chain
        self._account = account
        self.address: str = to_checksum_address(account.address)
        self.gas_margin = gas_margin
        self.fee_ttl = fee_ttl
        self.receipt_timeout = receipt_timeout
        self._lock = threading.RLock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._fees: Fees | None = None
        self._fees_at = 0.0

    def __repr__(self) -> str:
        return f"TxSender({self.address}, next_nonce={self._next_nonce})"

    # ------------------------------------------------------------------------------------------------ nonces

    def resync(self) -> int:
        """Reload the next nonce from the chain (pending count) and return it."""
        with self._lock:
            self._next_nonce = self.chain.nonce(self.address, pending=True)
            return self._next_nonce

    def next_nonce(self) -> int:
        """The nonce the next transaction will get."""
        with self._lock:
            return self._next_nonce if self._next_nonce is not None else self.resync()

    # --------------------------------------------------------------------------------------- build and sign

    def fees(self) -> Fees:
        """Current fees, cached for ``fee_ttl`` seconds."""
        now = time.monotonic()
        cached = self._fees
        if cached is not None and now - self._fees_at < self.fee_ttl:
            return cached
        fresh = self.chain.fees()
        self._fees, self._fees_at = fresh, now
        return fresh

    def gas_for(self, to: str | None, data: bytes = b"", *, value: int = 0) -> int:
        """Gas to give a transaction: the node's estimate times ``gas_margin``. A revert raises here."""
        estimate = self.chain.estimate_gas(sender=self.address, to=to, data=data, value=value)
        return max(MIN_GAS, int(estimate * self.gas_margin))

    def sign(
        self,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        fees: Fees | None = None,
    ) -> SignedTx:
        """Fill every field, reserve the next nonce and sign. Broadcast the result with ``broadcast``, in
        nonce order; a signed transaction that is never broadcast leaves a nonce gap until ``resync``."""
        to, gas, fees = self._prepare(to, data, value=value, gas=gas, fees=fees)
        with self._lock:
            nonce = self.next_nonce()
            signed = self._sign(to, data, value=value, gas=gas, fees=fees, nonce=nonce)
            self._next_nonce = nonce + 1
            return signed

    def broadcast(self, signed: SignedTx) -> str:
        """Send a signed transaction (idempotent: an already-known transaction returns its hash)."""
        try:
            return self.chain.send_raw(signed.raw)
        except ChainUnavailable as exc:
            with self._lock:
                self._next_nonce = None
            raise ChainUnavailable(
                f"{exc.message}; transaction {signed.tx_hash} (nonce {signed.nonce}) may or may not have "
                "reached the node",
                hint="broadcast the same signed transaction again once the node answers (never re-sign it)",
            ) from exc
        except ChainError:
            with self._lock:
                self._next_nonce = None
            raise

    def wait(self, tx_hash: str, *, timeout: float | None = None) -> Receipt:
        """The receipt; a reverted transaction raises ``TransactionReverted`` with the reason."""
        return self.chain.wait_receipt(tx_hash, timeout=self.receipt_timeout if timeout is None else timeout)

    # ------------------------------------------------------------------------------------- one-call sending

    def send(
        self,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        fees: Fees | None = None,
        timeout: float | None = None,
        expires_at: int | None = None,
    ) -> Receipt:
        """Sign, broadcast and wait for the receipt. A revert, in the gas estimate or mined (explicit
        ``gas``), raises ``TransactionReverted``; an estimate revert uses no nonce. ``expires_at`` (chain time):
        nothing is sent once it has passed (this plain sender never replaces a pending transaction; the agents'
        journaled wallets do)."""
        if expires_at is not None and self.chain.block().timestamp >= expires_at:
            raise ChainError(f"not sent: its purpose expired at chain time {expires_at}")
        signed = self._send(to, data, value=value, gas=gas, fees=fees)
        return self.wait(signed.tx_hash, timeout=timeout)

    def deploy(
        self,
        bytecode: bytes,
        args: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        timeout: float | None = None,
    ) -> str:
        """Deploy ``bytecode`` with ABI-encoded constructor ``args``; returns the new contract's address."""
        signed = self._send(None, bytes(bytecode) + bytes(args), value=value, gas=gas, fees=None)
        self.wait(signed.tx_hash, timeout=timeout)
        return contract_address(signed.sender, signed.nonce)

    # ------------------------------------------------------------------------------------------ internals

    def _send(self, to: str | None, data: bytes, *, value: int, gas: int | None, fees: Fees | None) -> SignedTx:
        to, gas, fees = self._prepare(to, data, value=value, gas=gas, fees=fees)
        with self._lock:
            for attempt in (1, 2):
                nonce = self.next_nonce()
                signed = self._sign(to, data, value=value, gas=gas, fees=fees, nonce=nonce)
                try:
                    self.broadcast(signed)
                except NonceTooLow:
                    if attempt == 2:
                        raise
                    self.resync()
                    continue
                self._next_nonce = nonce + 1
                return signed
        raise AssertionError("unreachable")  # pragma: no cover

    def _prepare(
        self, to: str | None, data: bytes, *, value: int, gas: int | None, fees: Fees | None
    ) -> tuple[str | None, int, Fees]:
        to = checksum_address(to) if to is not None else None
        if value < 0:
            raise ChainError(f"value must be >= 0 wei, got {value}")
        if gas is None:
            gas = self.gas_for(to, data, value=value)
        if self._chain_id is None:
            self._chain_id = self.chain.chain_id
        return to, gas, fees if fees is not None else self.fees()

    def _sign(self, to: str | None, data: bytes, *, value: int, gas: int, fees: Fees, nonce: int) -> SignedTx:
        assert self._chain_id is not None  # set by _prepare
        return sign_eip1559(
            self._account, chain_id=self._chain_id, nonce=nonce, to=to, data=data, value=value, gas=gas, fees=fees
        )

"""``KeystoreWallet``: an agent's wallet as a ``Signer`` — policy gate, journaled nonce, sign, broadcast, receipt.

``send`` runs, in order: the static policy rules; the gas estimate and the gas rule; then, under a per-wallet
lock, ``Journal.reserve`` (nonce row locked, daily caps booked, signed, raw bytes journaled, one commit) and the
broadcast of exactly those bytes; then it waits for the receipt and settles the journal row. The lock keeps
broadcasts in nonce order within a process (the in-process chain refuses gaps); the database lock keeps nonces
unique across processes.

Node answers are resolved without ever signing a new transaction: "already known" / "known transaction" /
"nonce too low" for our own bytes is success (``Chain.send_raw`` looks for our hash); "nonce too low" while the
node does not know our hash means another transaction took the nonce: the row is marked dropped and the
counter repaired (``NonceDrift``). A node that does not answer leaves the row pending (``TxUncertain``);
``recover()`` re-broadcasts it or finds its receipt.

``boundary`` is an observation hook called at ``"journaled"`` (committed, not yet broadcast) and
``"broadcast"`` (sent, receipt not yet recorded); the crash tests kill the process there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from eth_account.signers.local import LocalAccount

from orchestrator.chain import NonceTooLow, SignedTx
from orchestrator.chain.base import checksum_address
from orchestrator.chain.tx import sign_eip1559
from orchestrator.errors import ChainError, ChainUnavailable, TransactionReverted
from orchestrator.ports import Chain, Fees, Receipt
from wallets.errors import JournalError, NonceDrift, PolicyDenied, TxUncertain
from wallets.journal import Journal, TxStatus, WalletTx
from wallets.policy import PolicyGate

DEFAULT_GAS_MARGIN = 1.2
MIN_GAS = 21_000
Boundary = Callable[[str, WalletTx], None]


@dataclass
class RecoveryReport:
    """What ``recover()`` did, by transaction hash."""

    recorded: list[str] = field(default_factory=list)
    rebroadcast: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    drift: int = 0
    next_nonce: int | None = None


class KeystoreWallet:
    """One agent's wallet: a ``Signer`` whose every transaction passes the policy gate and the journal.

    The account (decrypted once by ``Keystore.unlock``) never leaves this object: ``repr`` shows the name and
    address only.
    """

    _locks: ClassVar[dict[tuple[str, int], threading.RLock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        name: str,
        account: LocalAccount,
        chain: Chain,
        journal: Journal,
        gate: PolicyGate,
        receipt_timeout: float = 120.0,
        gas_margin: float = DEFAULT_GAS_MARGIN,
        fee_ttl: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        boundary: Boundary | None = None,
    ) -> None:
        self.name = name
        self._account = account
        self.chain = chain
        self.journal = journal
        self.gate = gate
        self.receipt_timeout = receipt_timeout
        self.gas_margin = gas_margin
        self.fee_ttl = fee_ttl
        self.clock = clock
        self.boundary = boundary
        self._address = checksum_address(account.address)
        self._chain_id: int | None = None
        self._fees: Fees | None = None
        self._fees_at = 0.0
        self._nonce_ready = False

    def __repr__(self) -> str:
        return f"KeystoreWallet({self.name!r}, {self._address})"

    @property
    def address(self) -> str:
        return self._address

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.chain.chain_id
        return self._chain_id

    @property
    def _lock(self) -> threading.RLock:
        key = (self._address, self.chain_id)
        with self._locks_guard:
            return self._locks.setdefault(key, threading.RLock())

    # ---------------------------------------------------------------------------------------------- sending

    def send(self, to: str | None, data: bytes = b"", *, value: int = 0, gas: int | None = None) -> Receipt:
        """Gate, journal, sign, broadcast and wait (the ``Signer`` port). Reverts raise ``TransactionReverted``."""
        row = self.submit(to, data, value=value, gas=gas)
        return self.wait(row.tx_hash)

    def submit(self, to: str | None, data: bytes = b"", *, value: int = 0, gas: int | None = None) -> WalletTx:
        """Everything ``send`` does except waiting for the receipt; returns the journal row."""
        data = bytes(data)
        try:
            verdict = self.gate.check(chain_id=self.chain_id, to=to, data=data, value=value, gas=gas)
            target = checksum_address(to) if to is not None else None
            if gas is None:
                estimate = self.chain.estimate_gas(sender=self._address, to=target, data=data, value=value)
                gas = max(MIN_GAS, int(estimate * self.gas_margin))
                self.gate.check_gas(gas)
            fees = self.fees()
            with self._lock:
                self._ensure_nonce()
                row = self.journal.reserve(
                    wallet=self._address,
                    chain_id=self.chain_id,
                    spend=verdict.spend(gas * fees.max_fee_per_gas),
                    limits=self.gate.limits(self._address),
                    sign=lambda nonce: self._sign(target, data, value=value, gas=gas, fees=fees, nonce=nonce),
                    selector=verdict.selector,
                    now=self.clock(),
                )
                self._notify("journaled", row)
                self._broadcast(row)
        except PolicyDenied as exc:
            self.journal.audit(
                "policy_denied",
                wallet=self._address,
                chain_id=self.chain_id,
                rule=exc.rule,
                detail={"to": to, "selector": "0x" + data[:4].hex() if data else None, "value": str(value)},
            )
            raise
        self._notify("broadcast", row)
        return row

    def wait(self, tx_hash: str, *, timeout: float | None = None) -> Receipt:
        """Wait for the receipt and record it; a revert is recorded, then raised as ``TransactionReverted``."""
        try:
            receipt = self.chain.wait_receipt(tx_hash, timeout=self.receipt_timeout if timeout is None else timeout)
        except TransactionReverted:
            mined = self.chain.receipt(tx_hash)
            if mined is not None:
                self.journal.record_receipt(tx_hash, mined)
            raise
        self.journal.record_receipt(tx_hash, receipt)
        return receipt

    def _notify(self, point: str, row: WalletTx) -> None:
        if self.boundary is not None:
            self.boundary(point, row)

    def fees(self) -> Fees:
        """The fees the next transaction will be signed with (cached for ``fee_ttl`` seconds)."""
        now = time.monotonic()
        if self._fees is None or now - self._fees_at >= self.fee_ttl:
            self._fees, self._fees_at = self.chain.fees(), now
        return self._fees

    def _ensure_nonce(self) -> None:
        if not self._nonce_ready:
            self.journal.ensure_nonce(self._address, self.chain_id, self.chain.nonce(self._address, pending=True))
            self._nonce_ready = True

    def _sign(self, to: str | None, data: bytes, *, value: int, gas: int, fees: Fees, nonce: int) -> SignedTx:
        return sign_eip1559(
            self._account, chain_id=self.chain_id, nonce=nonce, to=to, data=data, value=value, gas=gas, fees=fees
        )

    def _broadcast(self, row: WalletTx) -> None:
        """Send the journaled bytes; resolve every answer without signing anything new."""
        try:
            self.chain.send_raw(row.raw_tx)
        except NonceTooLow:
            if self._record_if_mined(row.tx_hash):
                return
            self.journal.mark_dropped(
                row.tx_hash, reason=f"nonce {row.nonce} was taken by another transaction", release_nonce=False
            )
            drift = self._reconcile_nonce(RecoveryReport())
            raise NonceDrift(
                f"wallet {self.name} ({self._address}): nonce {row.nonce} was already used by a transaction that "
                f"is not in the journal; transaction {row.tx_hash} was not sent and the nonce counter moved by "
                f"{drift}",
                hint="send again (a new transaction with the next nonce); find out who else uses this key",
            ) from None
        except ChainUnavailable as exc:
            raise TxUncertain(
                f"transaction {row.tx_hash} (wallet {self.name}, nonce {row.nonce}) is journaled but the node did "
                f"not answer: {exc.message}",
                tx_hash=row.tx_hash,
                hint="do not send it again: recover() re-broadcasts the same bytes once the node answers",
            ) from exc
        except ChainError as exc:
            self.journal.mark_dropped(row.tx_hash, reason=f"refused by the node: {exc.message}", release_nonce=True)
            raise

    def _record_if_mined(self, tx_hash: str) -> bool:
        receipt = self.chain.receipt(tx_hash)
        if receipt is None:
            return False
        self.journal.record_receipt(tx_hash, receipt)
        return True

    # ----------------------------------------------------------------------------------------- recovery

    def recover(self, *, wait: bool = True) -> RecoveryReport:
        """Start-up recovery: settle every pending journal row (receipt found, or the same raw bytes
        re-broadcast, or dropped when another transaction took its nonce), then detect and repair nonce drift.
        With ``wait``, wait for the re-broadcast transactions' receipts."""
        report = RecoveryReport()
        with self._lock:
            self._ensure_nonce()
            for row in self.journal.transactions(wallet=self._address, chain_id=self.chain_id, status=TxStatus.PENDING):
                self._settle(row, report)
            self._reconcile_nonce(report)
        if wait:
            for tx_hash in report.rebroadcast:
                try:
                    self.wait(tx_hash)
                except TransactionReverted:
                    continue  # recorded as reverted by wait()
        return report

    def _settle(self, row: WalletTx, report: RecoveryReport) -> None:
        if self._record_if_mined(row.tx_hash):
            report.recorded.append(row.tx_hash)
            return
        try:
            self.chain.send_raw(row.raw_tx)
        except NonceTooLow:
            if self._record_if_mined(row.tx_hash):
                report.recorded.append(row.tx_hash)
                return
            self.journal.mark_dropped(
                row.tx_hash, reason=f"nonce {row.nonce} was taken by another transaction", release_nonce=False
            )
            report.dropped.append(row.tx_hash)
            return
        except ChainUnavailable:
            raise
        except ChainError as exc:
            self.journal.mark_dropped(
                row.tx_hash, reason=f"refused on re-broadcast: {exc.message}", release_nonce=False
            )
            report.dropped.append(row.tx_hash)
            return
        report.rebroadcast.append(row.tx_hash)

    def nonce_drift(self) -> int:
        """The chain's pending nonce minus the journal's next nonce: > 0 the chain is ahead (someone else used
        the key), < 0 we are ahead (journaled transactions the node does not have)."""
        self._ensure_nonce()
        ours = self.journal.next_nonce(self._address, self.chain_id)
        assert ours is not None
        return self.chain.nonce(self._address, pending=True) - ours

    def repair_nonce(self) -> RecoveryReport:
        """Detect drift and repair it in one cycle (also part of ``recover()``)."""
        report = RecoveryReport()
        with self._lock:
            self._ensure_nonce()
            self._reconcile_nonce(report)
        return report

    def _reconcile_nonce(self, report: RecoveryReport) -> int:
        chain_next = self.chain.nonce(self._address, pending=True)
        ours = self.journal.next_nonce(self._address, self.chain_id)
        assert ours is not None
        report.drift = chain_next - ours
        report.next_nonce = ours
        if chain_next == ours:
            return 0
        if chain_next > ours:
            # someone else used the key: our pending rows below the chain's nonce either mined or lost their slot
            for row in self.journal.transactions(wallet=self._address, chain_id=self.chain_id, status=TxStatus.PENDING):
                if row.nonce < chain_next and not self._record_if_mined(row.tx_hash):
                    self.journal.mark_dropped(
                        row.tx_hash, reason=f"nonce {row.nonce} was taken by another transaction", release_nonce=False
                    )
                    report.dropped.append(row.tx_hash)
            new_next = chain_next
        else:
            # we are ahead: re-broadcast the journaled transactions the node lacks, in nonce order, up to the
            # first nonce we hold no pending transaction for; from there on, the chain's count is the truth
            new_next = ours
            for nonce in range(chain_next, ours):
                held = self.journal.live_at(self._address, self.chain_id, nonce)
                if held is not None and held.status != TxStatus.PENDING:
                    raise JournalError(
                        f"wallet {self.name}: the chain's nonce is {chain_next}, but transaction {held.tx_hash} with "
                        f"nonce {nonce} is recorded as {held.status}",
                        hint="the chain reorganized or was reset: inspect the journal before sending more",
                    )
                if held is None:
                    new_next = nonce
                    break
                self._settle(held, report)
                if held.tx_hash in report.dropped:
                    new_next = nonce
                    break
            for row in self.journal.transactions(wallet=self._address, chain_id=self.chain_id, status=TxStatus.PENDING):
                if row.nonce >= new_next:
                    self.journal.mark_dropped(
                        row.tx_hash, reason=f"superseded: no transaction holds nonce {new_next}", release_nonce=False
                    )
                    report.dropped.append(row.tx_hash)
        self.journal.set_next_nonce(
            self._address, self.chain_id, new_next, reason=f"drift {report.drift:+d} (chain {chain_next}, ours {ours})"
        )
        self.journal.audit(
            "nonce_drift",
            wallet=self._address,
            chain_id=self.chain_id,
            detail={"chain": chain_next, "journal": ours, "repaired_to": new_next},
        )
        report.next_nonce = new_next
        return new_next - ours

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

Stuck transactions. ``wait`` polls the receipt in slices of ``check_interval`` seconds and, between them, looks
after the nonce's pending attempt: one the node has forgotten (dropped from its pool) is re-broadcast as the same
bytes; one older than ``replace_after_seconds`` *and* ``replace_after_blocks`` blocks (a stopped chain mines no
blocks, so it replaces nothing) is replaced at the same nonce with both fee fields raised by ``fee_bump`` (at least;
more if the market moved: the fresh ``Chain.fees()`` quote), through the policy gate (the fee cap, the daily caps:
``Journal.replace`` books the difference). A pending attempt whose ``expires_at`` (chain time) has passed is
replaced by a zero-value transfer to the wallet itself instead, so its nonce is freed without running a doomed
call; ``wait`` then raises ``TxExpired``. Every attempt stays in the journal with its raw bytes; whichever mines is
recorded, the others are ``replaced``.

``boundary`` is an observation hook called at ``"journaled"`` (committed, not yet broadcast), ``"broadcast"``
(sent, receipt not yet recorded) and ``"replacing"`` (a replacement committed, not yet broadcast); the crash
tests kill the process there.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from eth_abi.abi import encode
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from orchestrator.adapters.chain import NonceTooLow, ReceiptTimeout, SignedTx
from orchestrator.adapters.chain.base import checksum_address
from orchestrator.adapters.chain.tx import decode_eip1559, sign_eip1559
from orchestrator.domain.errors import ChainError, ChainUnavailable, InsufficientFunds, TransactionReverted
from orchestrator.ports.chain import Chain, Fees, Receipt
from orchestrator.ports.wallet import RecoveryReport
from wallets.errors import JournalError, NonceDrift, PolicyDenied, TxExpired, TxUncertain
from wallets.journal import Journal, TxStatus, WalletTx
from wallets.policy import PolicyGate, Verdict

log = logging.getLogger(__name__)

DEFAULT_GAS_MARGIN = 1.2
MIN_GAS = 21_000
#: geth refuses a replacement that raises either fee field by less than 10%; OpenZeppelin's relayer bumps more
DEFAULT_FEE_BUMP = 0.125
Boundary = Callable[[str, WalletTx], None]


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
        replace_after_seconds: float = 60.0,
        replace_after_blocks: int = 3,
        fee_bump: float = DEFAULT_FEE_BUMP,
        check_interval: float = 1.0,
    ) -> None:
        if fee_bump < 0.1:
            raise JournalError(f"fee_bump must be at least 0.1 (nodes refuse smaller replacements), got {fee_bump}")
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
        self.replace_after_seconds = replace_after_seconds
        self.replace_after_blocks = replace_after_blocks
        self.fee_bump = fee_bump
        self.check_interval = check_interval
        self._denied: dict[str, float] = {}  # replacements the gate refused: when, to retry only after a while
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

    def sign_bid(self, board: str, job_id: int, amount: int) -> bytes:
        """The EIP-191 signature of a bid on an open ERC-8183 job (the ``BidSigner`` port): the wallet builds the
        message itself, ``keccak256(abi.encode(chainId, board, jobId, amount))``, so this signs bids and nothing
        else, and only for a board the policy gate knows (a configured board). No transaction, no journal row."""
        target = checksum_address(board)
        if target not in self.gate.boards:
            raise PolicyDenied(f"{target} is not a configured board: no bid is signed for it", rule="allow_list")
        if amount <= 0 or job_id <= 0:
            raise PolicyDenied(f"bid of {amount} on job {job_id}: both must be positive", rule="allow_list")
        digest = keccak(encode(["uint256", "address", "uint256", "uint256"], [self.chain_id, target, job_id, amount]))
        signed = self._account.sign_message(encode_defunct(primitive=digest))
        log.info("wallet %s signed a bid of %d on job %d of %s", self.name, amount, job_id, target)
        return bytes(signed.signature)

    def send(
        self,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        expires_at: int | None = None,
    ) -> Receipt:
        """Gate, journal, sign, broadcast and wait (the ``Signer`` port). Reverts raise ``TransactionReverted``;
        a transaction still pending when the chain's clock passes ``expires_at`` is cancelled (``TxExpired``)."""
        row = self.submit(to, data, value=value, gas=gas, expires_at=expires_at)
        return self.wait(row.tx_hash)

    def submit(
        self,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        expires_at: int | None = None,
    ) -> WalletTx:
        """Everything ``send`` does except waiting for the receipt; returns the journal row."""
        data = bytes(data)
        try:
            verdict = self.gate.check(
                chain_id=self.chain_id, to=to, data=data, value=value, gas=gas, wallet=self._address
            )
            target = checksum_address(to) if to is not None else None
            if expires_at is not None:
                now = self.chain.block().timestamp
                if now >= expires_at:
                    raise TxExpired(
                        f"wallet {self.name}: not sent, its purpose expired at chain time {expires_at} (now {now})",
                        hint="nothing was signed; the task this was for is past its window",
                    )
            if gas is None:
                estimate = self.chain.estimate_gas(sender=self._address, to=target, data=data, value=value)
                gas = max(MIN_GAS, int(estimate * self.gas_margin))
                self.gate.check_gas(gas)
            fees = self.fees()
            self.gate.check_fee(self.chain_id, fees.max_fee_per_gas)
            sent_block = self.chain.block_number()
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
                    sent_block=sent_block,
                    expires_at=expires_at,
                )
                self._notify("journaled", row)
                self._broadcast(row)
        except InsufficientFunds as exc:
            raise InsufficientFunds(
                f"wallet {self.name} ({self._address}) cannot pay for this transaction: {exc.message}", hint=exc.hint
            ) from exc
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
        """Wait for whichever attempt at ``tx_hash``'s nonce mines and record it (the module doc says how stuck
        and dropped attempts are looked after meanwhile). A revert is recorded, then raised as
        ``TransactionReverted``; a cancellation that mined raises ``TxExpired``; no receipt in ``timeout``
        seconds (default ``receipt_timeout``) raises ``ReceiptTimeout`` (the attempts stay journaled)."""
        limit = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        original = self.journal.get(tx_hash)
        while True:
            current = self.journal.live_at(self._address, self.chain_id, original.nonce)
            if current is None or current.status != TxStatus.PENDING:
                return self._recorded(original, current)
            slice_ = max(0.0, min(deadline - time.monotonic(), self.check_interval))
            try:
                receipt = self.chain.wait_receipt(current.tx_hash, timeout=slice_)
                mined = current
            except ReceiptTimeout:
                found = self._mined_attempt(original.nonce)
                if found is None:
                    if time.monotonic() >= deadline:
                        raise ReceiptTimeout(
                            f"transaction {current.tx_hash} (wallet {self.name}, nonce {current.nonce}, attempt "
                            f"{current.attempt}) has no receipt after {limit:g} s",
                            hint="it stays journaled: recover() or the next wait re-broadcasts or replaces it",
                        ) from None
                    self._look_after(current)
                    continue
                mined, receipt = found
            except TransactionReverted:
                self._record_if_mined(current.tx_hash)
                raise
            return self._finish(original, mined, receipt)

    def _finish(self, original: WalletTx, mined: WalletTx, receipt: Receipt) -> Receipt:
        self.journal.record_receipt(mined.tx_hash, receipt)
        if receipt.status != 1:
            self.chain.wait_receipt(mined.tx_hash, timeout=0.0)  # raises TransactionReverted with the reason
        if self._is_cancel(mined) and not self._is_cancel(original):
            raise TxExpired(
                f"transaction {original.tx_hash} (wallet {self.name}, nonce {original.nonce}) expired while pending: "
                f"a zero-value transfer to itself ({mined.tx_hash}) took its nonce, so nothing of it ran",
                tx_hash=original.tx_hash,
            )
        return receipt

    def _recorded(self, original: WalletTx, current: WalletTx | None) -> Receipt:
        """The nonce was settled elsewhere (another thread, ``recover``): its outcome, as ``wait`` reports it."""
        if current is None:
            raise NonceDrift(
                f"transaction {original.tx_hash} (wallet {self.name}, nonce {original.nonce}) was dropped: "
                "another transaction took its nonce",
                hint="send again (a new transaction with the next nonce)",
            )
        receipt = self.chain.receipt(current.tx_hash)
        if receipt is None:
            raise JournalError(f"transaction {current.tx_hash} is recorded as {current.status} but has no receipt")
        return self._finish(original, current, receipt)

    def _mined_attempt(self, nonce: int) -> tuple[WalletTx, Receipt] | None:
        """The attempt at ``nonce`` that the chain mined, with its receipt; newest attempt first."""
        for row in reversed(self.journal.attempts(self._address, self.chain_id, nonce)):
            if row.status in (TxStatus.PENDING, TxStatus.REPLACED):
                receipt = self.chain.receipt(row.tx_hash)
                if receipt is not None:
                    return row, receipt
        return None

    def _is_cancel(self, row: WalletTx) -> bool:
        return row.to == self._address and row.selector is None and row.value == 0

    def _look_after(self, row: WalletTx) -> None:
        """Between receipt polls: re-broadcast a pending attempt the node forgot; replace a stuck one."""
        if not self.chain.transaction_known(row.tx_hash):
            # dropped from the node's pool (a restart, eviction, anvil_dropTransaction, a reorg): the same bytes
            self.journal.audit("rebroadcast", wallet=self._address, chain_id=self.chain_id, tx_hash=row.tx_hash)
            with self._lock:
                try:
                    self.chain.send_raw(row.raw_tx)
                    return
                except NonceTooLow:
                    if self._record_any_attempt(row.nonce):
                        return
                    self._broadcast(row)  # the nonce went to another transaction: drop and repair, as on sending
                    return
                except ChainUnavailable:
                    return  # the next check tries again
                except ChainError:
                    pass  # refused as it is (its max fee is below the base fee, say: nodes evict those): replace it
            if not self._recently_denied(row):
                self.replace(row)
            return
        if self._stuck(row):
            self.replace(row)

    def _recently_denied(self, row: WalletTx) -> bool:
        """The gate refused to replace ``row`` less than ``replace_after_seconds`` ago (not asked again yet)."""
        denied = self._denied.get(row.tx_hash)
        return denied is not None and time.monotonic() - denied < self.replace_after_seconds

    def _stuck(self, row: WalletTx) -> bool:
        if self._recently_denied(row):
            return False
        age = (self.clock() - row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC)).total_seconds()
        if age < self.replace_after_seconds:
            return False
        if row.sent_block is None or self.replace_after_blocks == 0:
            return True
        return self.chain.block_number() - row.sent_block >= self.replace_after_blocks

    def replace(self, row: WalletTx) -> WalletTx | None:
        """Replace the pending attempt ``row`` at its nonce: the same call with both fee fields raised by at least
        ``fee_bump``, or, when its ``expires_at`` passed, a zero-value transfer to this wallet (a cancellation).
        Through the policy gate: a refusal is audited and ``None`` returned (the old attempt stays pending).
        Returns the new attempt, or ``None`` if there is none (refused by the gate or the node)."""
        fields = decode_eip1559(row.raw_tx)
        expired = row.expires_at is not None and self.chain.block().timestamp >= row.expires_at
        cancel = expired or self._is_cancel(row)
        fresh = self.chain.fees()
        tip = max(_bumped(fields.fees.max_priority_fee_per_gas, self.fee_bump), fresh.max_priority_fee_per_gas)
        max_fee = max(_bumped(fields.fees.max_fee_per_gas, self.fee_bump), fresh.max_fee_per_gas, tip)
        fees = Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)
        to, data, value, gas = (
            (self._address, b"", 0, MIN_GAS) if cancel else (fields.to, fields.data, fields.value, fields.gas)
        )
        why = "its purpose expired: freeing the nonce" if expired and not self._is_cancel(row) else "stuck"
        try:
            verdict: Verdict = (
                self.gate.check_cancel(chain_id=self.chain_id, wallet=self._address, to=to, data=data, value=value)
                if cancel
                else self.gate.check(
                    chain_id=self.chain_id, to=to, data=data, value=value, gas=gas, wallet=self._address
                )
            )
            self.gate.check_fee(self.chain_id, max_fee)
            with self._lock:
                new = self.journal.replace(
                    row.tx_hash,
                    spend=verdict.spend(gas * max_fee),
                    limits=self.gate.limits(self._address),
                    sign=lambda nonce: self._sign(to, data, value=value, gas=gas, fees=fees, nonce=nonce),
                    now=self.clock(),
                    sent_block=self.chain.block_number(),
                    selector=verdict.selector,
                    reason=f"{why} (attempt {row.attempt} since block {row.sent_block})",
                )
                self._notify("replacing", new)
                try:
                    self.chain.send_raw(new.raw_tx)
                except ChainUnavailable:
                    return new  # journaled: the next check (or recover) broadcasts the same bytes
                except ChainError as exc:  # "replacement underpriced", or the nonce is spent: keep the old one
                    self.journal.undo_replacement(new.tx_hash, reason=f"refused by the node: {exc.message}")
                    return None
        except PolicyDenied as exc:
            self._denied[row.tx_hash] = time.monotonic()
            self.journal.audit(
                "policy_denied",
                wallet=self._address,
                chain_id=self.chain_id,
                rule=exc.rule,
                tx_hash=row.tx_hash,
                detail={"replacement_of": row.tx_hash, "max_fee_per_gas": str(max_fee)},
            )
            log.warning("wallet %s: replacing %s refused: %s", self.name, row.tx_hash, exc)
            return None
        log.info("wallet %s: nonce %s %s: attempt %s is %s", self.name, row.nonce, why, new.attempt, new.tx_hash)
        return new

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

    def _record_any_attempt(self, nonce: int) -> bool:
        found = self._mined_attempt(nonce)
        if found is None:
            return False
        self.journal.record_receipt(found[0].tx_hash, found[1])
        return True

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
            self._unmine_reorged(report)
            for row in self.journal.transactions(wallet=self._address, chain_id=self.chain_id, status=TxStatus.PENDING):
                self._settle(row, report)
            self._reconcile_nonce(report)
        if wait:
            for tx_hash in report.rebroadcast:
                try:
                    self.wait(tx_hash)
                except (TransactionReverted, TxExpired):
                    continue  # recorded by wait(): reverted, or a cancellation took the nonce
        return report

    def _unmine_reorged(self, report: RecoveryReport) -> None:
        """Find our transactions that a reorg took off the chain: a mined (or reverted) journal row whose nonce
        is at or above the chain's latest nonce for this wallet cannot be on the chain any more, unless the node
        is behind (its head below the row's block: left alone) or the reorg mined it again (a receipt: kept).
        The rest are journaled pending again, and the settle loop re-broadcasts their same raw bytes in nonce
        order, exactly as after a crash: nothing is signed again, so no second claim or submit can exist.
        One nonce query and one indexed journal query when nothing was reorganized."""
        chain_next = self.chain.nonce(self._address, pending=False)
        rows = self.journal.settled_from(self._address, self.chain_id, chain_next)
        if not rows:
            return
        head = self.chain.block_number()
        for row in rows:
            if row.mined_block is not None and head < row.mined_block:
                continue  # a node behind the block that mined it, not a reorg
            receipt = self.chain.receipt(row.tx_hash)
            if receipt is not None:
                continue
            log.warning(
                "wallet %s: transaction %s (nonce %s, block %s) is gone from the chain (a reorg): re-broadcasting it",
                self.name,
                row.tx_hash,
                row.nonce,
                row.mined_block,
            )
            self.journal.unmine(row.tx_hash, reason=f"block {row.mined_block} was reorganized away")
            report.reorged.append(row.tx_hash)

    def _settle(self, row: WalletTx, report: RecoveryReport) -> None:
        found = self._mined_attempt(row.nonce)
        if found is not None:
            self.journal.record_receipt(found[0].tx_hash, found[1])
            report.recorded.append(found[0].tx_hash)
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
                if row.nonce < chain_next and not self._record_any_attempt(row.nonce):
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


def _bumped(value: int, bump: float) -> int:
    """``value`` raised by ``bump`` (a fraction), rounded up, and by at least 1 wei."""
    return max(value + 1, math.ceil(value * (1 + bump)))

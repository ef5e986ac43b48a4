"""``EthTesterChain``: the ``Chain`` port on an in-process py-evm chain (eth-tester), the default one.

Transactions are sent and mined through eth-tester with auto-mine on (one transaction per block; auto-mine off
rejects a second raw transaction from the same sender). Receipts, logs, calls and gas estimates go to py-evm
directly: eth-tester finds a transaction by scanning every block back from the head, so a receipt at depth 400
costs ~170 ms and ``get_logs`` over 500 blocks a minute, while py-evm's own transaction index and per-block
blooms keep both flat; and py-evm keeps the raw revert data that eth-tester reduces to a string.

Adapter code: must not import web3 or httpx, nor anything above the ports.
"""

from __future__ import annotations

import re
import threading
from typing import Any, cast

from eth.abc import BlockHeaderAPI, ChainAPI, ComputationAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.exceptions import HeaderNotFound, Revert, TransactionNotFound, VMError
from eth.vm.spoof import SpoofTransaction
from eth_bloom.bloom import BloomFilter
from eth_tester import EthereumTester, PyEVMBackend
from eth_typing import Address, BlockNumber, Hash32
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError

from orchestrator.adapters.chain.base import (
    DEFAULT_MAX_LOG_RANGE,
    FUND_HINT,
    BaseChain,
    DevAccount,
    NonceTooLow,
    checksum_address,
    decode_revert_reason,
    explain_mined_failure,
    normalize_tx_hash,
)
from orchestrator.domain.errors import ChainError, InsufficientFunds, TransactionReverted
from orchestrator.ports.chain import BlockRef, Fees, LogEntry, Receipt

GWEI = 10**9
#: Gas a value-carrying CALL forwards on top of the caller's limit; geth adds it to its first estimate too.
CALL_STIPEND = 2_300


class EthTesterChain(BaseChain):
    """An in-process EVM chain (py-evm, prague rules) with ``num_accounts`` funded dev accounts.

    Every transaction is mined into its own block as soon as it is sent. Thread-safe: one lock serializes
    access to the in-process chain. ``time_travel`` and ``mine`` are test helpers.
    """

    receipt_poll_initial = 0.0  # the receipt exists as soon as send_raw returns

    def __init__(
        self,
        *,
        num_accounts: int = 10,
        max_log_range: int = DEFAULT_MAX_LOG_RANGE,
        priority_fee: int = GWEI,
    ) -> None:
        super().__init__(max_log_range=max_log_range)
        self._lock = threading.RLock()
        # eth-tester's default accounts: private keys 1..num_accounts, 1,000,000 ETH each
        self._backend = PyEVMBackend(genesis_state=PyEVMBackend.generate_genesis_state(num_accounts=num_accounts))
        self._tester = EthereumTester(backend=self._backend, auto_mine_transactions=True)
        self._priority_fee = priority_fee

    def __repr__(self) -> str:
        return f"EthTesterChain(chain_id={self.chain_id}, block={self.block_number()})"

    @property
    def _chain(self) -> ChainAPI:
        # read through the backend each time: eth-tester may swap the chain object (snapshots, reset)
        chain: ChainAPI = self._backend.chain
        return chain

    # --------------------------------------------------------------------------------------- dev helpers

    def dev_accounts(self) -> list[DevAccount]:
        """The pre-funded accounts (1,000,000 ETH each) with their private keys, for demos and tests."""
        return [
            DevAccount(address=to_checksum_address(key.public_key.to_canonical_address()), private_key=key.to_bytes())
            for key in self._backend.account_keys
        ]

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` empty blocks; returns the new block number."""
        if blocks < 1:
            raise ChainError(f"mine needs a positive number of blocks, got {blocks}")
        with self._lock:
            self._tester.mine_blocks(blocks)
            return self.block_number()

    def time_travel(self, seconds: int) -> int:
        """Mine a block whose timestamp is ``seconds`` after the latest one; returns that timestamp."""
        if seconds < 1:
            raise ChainError(f"time_travel needs a positive number of seconds, got {seconds}")
        with self._lock:
            target = int(self._chain.get_canonical_head().timestamp) + seconds
            # eth-tester's time_travel(t) mines a block stamped t - 1 (and mines nothing when t equals the
            # pending block's timestamp), so ask for one second more
            self._tester.time_travel(target + 1)
            return int(self._chain.get_canonical_head().timestamp)

    def latest_timestamp(self) -> int:
        """Timestamp of the latest mined block."""
        with self._lock:
            return int(self._chain.get_canonical_head().timestamp)

    # ------------------------------------------------------------------------------------------ the port

    @property
    def chain_id(self) -> int:
        return int(self._chain.chain_id)

    def block_number(self) -> int:
        with self._lock:
            return int(self._chain.get_canonical_head().block_number)

    def block(self, number: int | None = None) -> BlockRef:
        with self._lock:
            chain = self._chain
            try:
                header = (
                    chain.get_canonical_head()
                    if number is None
                    else chain.get_canonical_block_header_by_number(BlockNumber(number))
                )
            except HeaderNotFound:
                raise ChainError(f"the chain has no block {number}") from None
            return BlockRef(
                number=int(header.block_number), hash="0x" + header.hash.hex(), timestamp=int(header.timestamp)
            )

    def balance(self, address: str) -> int:
        with self._lock:
            state = self._chain.get_vm(self._chain.get_canonical_head()).state
            return int(state.get_balance(to_canonical_address(checksum_address(address))))

    def nonce(self, address: str, *, pending: bool = True) -> int:
        # auto-mine leaves nothing pending, so the pending and latest nonce are the same
        with self._lock:
            state = self._chain.get_vm(self._chain.get_canonical_head()).state
            return int(state.get_nonce(to_canonical_address(checksum_address(address))))

    def fees(self) -> Fees:
        with self._lock:
            base_fee = int(self._chain.get_block().header.base_fee_per_gas or 0)  # the block being built
        return Fees(max_fee_per_gas=2 * base_fee + self._priority_fee, max_priority_fee_per_gas=self._priority_fee)

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        with self._lock:
            head = self._chain.get_canonical_head()
            return self._execute(sender=sender, to=to, data=data, value=0, gas=None, header=head)

    def estimate_gas(self, *, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        """The gas the transaction needs, found the way geth finds it: one run at the block gas limit (a revert
        or halt raises here), then one at what that run consumed plus a call stipend, times 64/63 (the share a
        CALL withholds). Only if that second run fails, py-evm's binary search: its ~13 runs per estimate made
        estimates half of the orchestrator pipeline's time on this chain."""
        with self._lock:
            head = self._chain.get_canonical_head()
            spoof = self._spoof(sender=sender, to=to, data=data, value=value, gas=None, header=head)
            try:
                with self._chain.get_vm(head).in_costless_state() as state:
                    optimistic = _optimistic_gas(state, spoof)
                if optimistic is not None:
                    return optimistic
                return int(self._chain.estimate_gas(spoof, head))
            except Revert as exc:
                raise TransactionReverted(_revert_data_reason(exc)) from exc
            except VMError as exc:
                raise TransactionReverted(_vm_error_reason(exc)) from exc
            except EthValidationError as exc:
                if "balance" in str(exc).lower() or "insufficient funds" in str(exc).lower():
                    raise _insufficient_funds(str(exc)) from exc
                raise ChainError(f"gas estimate refused: {exc}") from exc

    def _send_raw(self, raw_tx: bytes) -> str:
        with self._lock:
            try:
                tx_hash: str = self._tester.send_raw_transaction("0x" + raw_tx.hex())
            except EthValidationError as exc:
                raise _map_send_error(str(exc)) from exc
            except Exception as exc:  # eth-tester raises assorted library errors for malformed input
                raise ChainError(f"transaction refused: {type(exc).__name__}: {exc}") from exc
            return tx_hash.lower()

    def transaction_known(self, tx_hash: str) -> bool:
        return self.receipt(tx_hash) is not None  # nothing stays pending with auto-mine

    def receipt(self, tx_hash: str) -> Receipt | None:
        raw_hash = bytes.fromhex(normalize_tx_hash(tx_hash)[2:])
        with self._lock:
            chain = self._chain
            try:
                block_number, index = chain.get_canonical_transaction_index(Hash32(raw_hash))
                tx = chain.get_canonical_transaction_by_index(block_number, index)
            except (TransactionNotFound, HeaderNotFound):
                return None
            if tx.hash != raw_hash:  # a stale index entry after a snapshot revert
                return None
            header = chain.get_canonical_block_header_by_number(block_number)
            receipts = self._block_receipts(header)
        own = receipts[index]
        previous_gas = receipts[index - 1].gas_used if index > 0 else 0
        first_log_index = sum(len(r.logs) for r in receipts[:index])
        base_fee = int(header.base_fee_per_gas or 0)
        tx_hash = "0x" + raw_hash.hex()
        return Receipt(
            tx_hash=tx_hash,
            block_number=int(block_number),
            status=1 if own.state_root == b"\x01" else 0,
            gas_used=int(own.gas_used - previous_gas),
            effective_gas_price=min(int(tx.max_fee_per_gas), base_fee + int(tx.max_priority_fee_per_gas)),
            logs=tuple(
                _log_entry(log, int(block_number), tx_hash, first_log_index + i) for i, log in enumerate(own.logs)
            ),
        )

    def _revert_reason(self, tx_hash: str, receipt: Receipt) -> str:
        raw_hash = bytes.fromhex(tx_hash[2:])
        replay: str | None = None
        with self._lock:
            chain = self._chain
            tx = chain.get_canonical_transaction(Hash32(raw_hash))
            parent = chain.get_canonical_block_header_by_number(BlockNumber(receipt.block_number - 1))
            try:
                self._execute(
                    sender=to_checksum_address(tx.sender),
                    to=to_checksum_address(tx.to) if tx.to else None,
                    data=bytes(tx.data),
                    value=int(tx.value),
                    gas=int(tx.gas),
                    header=parent,
                )
            except TransactionReverted as exc:
                replay = exc.reason
        return explain_mined_failure(
            replay, gas_limit=int(tx.gas), gas_used=receipt.gas_used, block_number=receipt.block_number
        )

    def _fetch_logs(
        self, address: str, topics: tuple[bytes | None, ...], from_block: int, to_block: int
    ) -> list[LogEntry]:
        wanted_address = to_canonical_address(address)
        wanted_topics = [(i, int.from_bytes(t, "big")) for i, t in enumerate(topics) if t is not None]
        probes = [wanted_address] + [t for t in topics if t is not None]
        found: list[LogEntry] = []
        with self._lock:
            chain = self._chain
            head = int(chain.get_canonical_head().block_number)
            for number in range(from_block, min(to_block, head) + 1):
                header = chain.get_canonical_block_header_by_number(BlockNumber(number))
                bloom = BloomFilter(int(header.bloom))
                if not all(probe in bloom for probe in probes):
                    continue
                receipts = self._block_receipts(header)
                tx_hashes = chain.chaindb.get_block_transaction_hashes(header)
                log_index = 0
                for receipt, raw_hash in zip(receipts, tx_hashes, strict=True):
                    for log in receipt.logs:
                        if log.address == wanted_address and all(
                            i < len(log.topics) and log.topics[i] == t for i, t in wanted_topics
                        ):
                            found.append(_log_entry(log, number, "0x" + raw_hash.hex(), log_index))
                        log_index += 1
        return found

    # ------------------------------------------------------------------------------------------ internals

    def _block_receipts(self, header: BlockHeaderAPI) -> tuple[ReceiptAPI, ...]:
        chain = self._chain
        vm_class = chain.get_vm_class_for_block_number(header.block_number)
        return tuple(chain.chaindb.get_receipts(header, vm_class.get_receipt_builder()))

    def _spoof(
        self,
        *,
        sender: str | None,
        to: str | None,
        data: bytes,
        value: int,
        gas: int | None,
        header: BlockHeaderAPI,
    ) -> Any:
        vm = self._chain.get_vm(header)
        sender_bytes = to_canonical_address(checksum_address(sender)) if sender else Address(b"\x00" * 20)
        unsigned = vm.create_unsigned_transaction(
            nonce=vm.state.get_nonce(sender_bytes),
            gas_price=0,
            gas=gas if gas is not None else header.gas_limit,
            to=to_canonical_address(checksum_address(to)) if to else Address(b""),  # b"" creates a contract
            value=value,
            data=bytes(data),
        )
        return SpoofTransaction(unsigned, from_=sender_bytes)

    def _execute(
        self,
        *,
        sender: str | None,
        to: str | None,
        data: bytes,
        value: int,
        gas: int | None,
        header: BlockHeaderAPI,
    ) -> bytes:
        """Run a call on the state after ``header``, changing nothing; reverts raise TransactionReverted."""
        spoof = self._spoof(sender=sender, to=to, data=data, value=value, gas=gas, header=header)
        try:
            return bytes(self._chain.get_transaction_result(spoof, header))
        except Revert as exc:
            raise TransactionReverted(_revert_data_reason(exc), hint=None) from exc
        except VMError as exc:
            raise TransactionReverted(_vm_error_reason(exc)) from exc
        except EthValidationError as exc:
            raise ChainError(f"call refused: {exc}") from exc


def _run_costless(state: StateAPI, tx: Any, gas: int) -> ComputationAPI:
    """Run ``tx`` with a ``gas`` limit on ``state`` and undo it; the computation tells how it went."""
    snapshot = state.snapshot()
    try:
        return state.apply_transaction(cast(SignedTransactionAPI, SpoofTransaction(tx, gas=gas, gas_price=0)))
    finally:
        state.revert(snapshot)


def _optimistic_gas(state: StateAPI, tx: Any) -> int | None:
    """Geth's estimate shortcut: a gas limit verified by a run, or ``None`` when the caller must search.
    A revert or halt at the block gas limit raises its ``VMError``."""
    first = _run_costless(state, tx, state.gas_limit)
    if first.is_error:
        raise first.error
    consumed = max(state.gas_limit - first.get_gas_remaining(), first.data_floor_gas or 0)
    intrinsic = int(tx.intrinsic_gas)
    if consumed <= intrinsic:
        return intrinsic  # no code ran (a plain transfer): the intrinsic gas is exact
    limit = min(state.gas_limit, (consumed + CALL_STIPEND) * 64 // 63)
    try:
        second = _run_costless(state, tx, limit)
    except EthValidationError:
        return None  # a rule on the limit itself (e.g. the calldata floor): let the search find it
    return None if second.is_error else limit


def _revert_data_reason(exc: Revert) -> str:
    data = exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else b""
    return decode_revert_reason(data)


def _vm_error_reason(exc: VMError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _insufficient_funds(message: str) -> InsufficientFunds:
    """geth's wording, with py-evm's detail (its ``Sender b'...'`` is the address as raw bytes: left out)."""
    detail = re.sub(r"Sender b(['\"]).*?\1 ", "", message)
    return InsufficientFunds(f"insufficient funds for gas * price + value ({detail})", hint=FUND_HINT)


def _map_send_error(message: str) -> ChainError:
    lowered = message.lower()
    if "invalid transaction nonce" in lowered:
        # "Invalid transaction nonce: Expected 2, but got 1"
        try:
            expected = int(lowered.split("expected")[1].split(",")[0])
            got = int(lowered.split("got")[1].strip(" ."))
        except (IndexError, ValueError):
            expected = got = 0
        if got < expected:
            return NonceTooLow(f"nonce too low: {message}", hint="resync the nonce from the chain")
        return ChainError(
            f"nonce too high: {message}",
            hint="the in-process chain cannot queue transactions: send nonces in order, without gaps",
        )
    if "balance" in lowered or "insufficient funds" in lowered:
        return _insufficient_funds(message)
    return ChainError(f"transaction refused: {message}")


def _log_entry(log: Any, block_number: int, tx_hash: str, log_index: int) -> LogEntry:
    return LogEntry(
        address=to_checksum_address(log.address),
        topics=tuple(int(t).to_bytes(32, "big") for t in log.topics),
        data=bytes(log.data),
        block_number=block_number,
        tx_hash=tx_hash,
        log_index=log_index,
    )

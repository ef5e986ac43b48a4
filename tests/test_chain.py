"""The ``Chain`` port's contract, run against every adapter, plus what only ``RpcChain`` and ``AnvilProcess``
do.

Every test taking ``chain``/``chain_env`` runs three times: on a fresh in-process ``EthTesterChain``, on an
``RpcChain`` talking to a real anvil node (rolled back after each test), and on a ``MultiRpcChain`` of that one
node (what ``chain.rpc_url`` builds; failover over several nodes is in ``tests/test_rpc_failover.py``). The
``RpcChain`` fault tests put a real HTTP proxy on 127.0.0.1 between the adapter and anvil that answers
429/503/JSON-RPC errors on cue and counts requests.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from eth_abi.abi import decode, encode
from eth_account import Account
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

import orchestrator.adapters.chain.anvil as anvil_module
from orchestrator.adapters.chain import (
    AnvilFailed,
    AnvilNotFound,
    AnvilProcess,
    DetachedAnvil,
    DevAccount,
    EthTesterChain,
    NonceTooLow,
    ReceiptTimeout,
    RpcChain,
    TxSender,
    decode_revert_reason,
    find_anvil,
)
from orchestrator.domain.errors import (
    ChainError,
    ChainUnavailable,
    InsufficientFunds,
    LogQueryTooLarge,
    TransactionReverted,
)
from orchestrator.ports.chain import Chain, LogEntry, Receipt
from tests.conftest import ChainEnv, make_chain_env, require


@pytest.fixture(
    params=[
        "ethtester",
        pytest.param("anvil", marks=pytest.mark.anvil),
        pytest.param("anvil-pool", marks=pytest.mark.anvil),
    ]
)
def chain_env(request: pytest.FixtureRequest) -> Iterator[ChainEnv]:
    """The conftest's ``chain_env``, plus the node pool: the port's contract holds for every adapter."""
    yield from make_chain_env(request, request.param)


REPO = Path(__file__).resolve().parents[1]
TOKEN_JSON = REPO / "contracts" / "build" / "RewardToken.json"
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
SUPPLY = 10**24
DEAD = "0x000000000000000000000000000000000000dEaD"

# A 10-byte contract that reverts with its calldata as the revert data, so each revert payload can be tested
# on both chains without a compiler: CALLDATACOPY(0, 0, CALLDATASIZE); REVERT(0, CALLDATASIZE).
REVERTER_RUNTIME = bytes.fromhex("366000600037366000fd")
REVERTER_INIT = bytes.fromhex(f"60{len(REVERTER_RUNTIME):02x}600c60003960{len(REVERTER_RUNTIME):02x}6000f3")
REVERTER_CODE = REVERTER_INIT + REVERTER_RUNTIME
INVALID_OPCODE_CODE = bytes.fromhex("6001600c60003960016000f3fe")  # runtime: the INVALID opcode (0xfe)


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _error_string(message: str) -> bytes:
    return _selector("Error(string)") + encode(["string"], [message])


def _panic(code: int) -> bytes:
    return _selector("Panic(uint256)") + encode(["uint256"], [code])


def _topic(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _transfer(to: str, amount: int) -> bytes:
    return _selector("transfer(address,uint256)") + encode(["address", "uint256"], [to, amount])


def _balance_of(chain: Chain, token: str, owner: str) -> int:
    out = chain.call(token, _selector("balanceOf(address)") + encode(["address"], [owner]))
    return int(decode(["uint256"], out)[0])


@pytest.fixture(scope="session")
def token_artifact() -> dict[str, Any]:
    require(TOKEN_JSON.exists(), f"{TOKEN_JSON} is missing: run `python contracts/compile.py`")
    artifact: dict[str, Any] = json.loads(TOKEN_JSON.read_text())
    return artifact


def _deploy_token(sender: TxSender, artifact: dict[str, Any], supply: int = SUPPLY) -> str:
    args = encode(["string", "string", "uint8", "uint256"], ["Reward", "RWD", 18, supply])
    return sender.deploy(bytes.fromhex(artifact["bytecode"].removeprefix("0x")), args)


# ================================================================================ the contract, both adapters


def test_chain_id_and_block_number(chain_env: ChainEnv) -> None:
    chain = chain_env.chain
    assert isinstance(chain, Chain)
    assert chain.chain_id == chain_env.expected_chain_id
    start = chain.block_number()
    chain_env.sender().send(DEAD, value=1, gas=21_000)
    assert chain.block_number() == start + 1  # auto-mine: one block per transaction


def test_value_transfer_moves_balance_and_charges_the_fee(chain_env: ChainEnv) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    recipient = Account.create().address
    before = chain.balance(sender.address)
    receipt = sender.send(recipient, value=10**15)
    assert receipt.status == 1 and receipt.gas_used == 21_000
    assert chain.balance(recipient) == 10**15
    assert chain.balance(sender.address) == before - 10**15 - receipt.fee_wei


def test_nonce_counts_sent_transactions(chain_env: ChainEnv) -> None:
    chain, sender = chain_env.chain, chain_env.sender(1)
    start = chain.nonce(sender.address)
    assert chain.nonce(sender.address, pending=False) == start
    for _ in range(3):
        sender.send(DEAD, value=1, gas=21_000)
    assert chain.nonce(sender.address) == chain.nonce(sender.address, pending=False) == start + 3
    assert sender.next_nonce() == start + 3


def test_twenty_back_to_back_transactions_get_contiguous_nonces(chain_env: ChainEnv) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    start = chain.nonce(sender.address)
    signed = [sender.sign(DEAD, value=i + 1, gas=21_000) for i in range(20)]
    hashes = [sender.broadcast(tx) for tx in signed]
    receipts = [chain.wait_receipt(h, timeout=10) for h in hashes]
    assert [tx.nonce for tx in signed] == list(range(start, start + 20))
    assert hashes == [tx.tx_hash for tx in signed]
    assert all(r.status == 1 for r in receipts)
    assert [r.block_number for r in receipts] == sorted(r.block_number for r in receipts)
    assert chain.nonce(sender.address) == start + 20


def test_threads_sharing_a_sender_never_reuse_a_nonce(chain_env: ChainEnv) -> None:
    chain, sender = chain_env.chain, chain_env.sender(2)
    start = chain.nonce(sender.address)
    with ThreadPoolExecutor(max_workers=4) as pool:
        receipts = list(pool.map(lambda i: sender.send(DEAD, value=i + 1, gas=21_000), range(20)))
    assert len({r.tx_hash for r in receipts}) == 20 and all(r.status == 1 for r in receipts)
    assert chain.nonce(sender.address) == start + 20


def test_receipt_lookup_matches_the_waited_receipt(chain_env: ChainEnv) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    waited = sender.send(DEAD, value=5, gas=21_000)
    assert chain.receipt(waited.tx_hash) == waited
    assert chain.receipt(waited.tx_hash.upper().replace("0X", "0x")) == waited
    assert waited.effective_gas_price > 0 and waited.fee_wei == 21_000 * waited.effective_gas_price
    assert chain.receipt("0x" + "ab" * 32) is None


def test_wait_receipt_of_an_unknown_transaction_times_out(chain: Chain) -> None:
    with pytest.raises(ReceiptTimeout) as info:
        chain.wait_receipt("0x" + "cd" * 32, timeout=0.2)
    assert info.value.retryable and "0x" + "cd" * 32 in str(info.value)


def test_fees_are_eip1559_and_accepted(chain_env: ChainEnv) -> None:
    fees = chain_env.chain.fees()
    assert fees.max_fee_per_gas > fees.max_priority_fee_per_gas > 0
    receipt = chain_env.sender().send(DEAD, value=1, gas=21_000, fees=fees)
    assert fees.max_priority_fee_per_gas <= receipt.effective_gas_price <= fees.max_fee_per_gas


def test_deploy_returns_the_contract_address(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    token = _deploy_token(sender, token_artifact)
    assert _balance_of(chain, token, sender.address) == SUPPLY
    name = chain.call(token, _selector("name()"))
    assert decode(["string"], name)[0] == "Reward"


def test_call_with_sender_and_revert(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    chain, owner = chain_env.chain, chain_env.sender()
    token = _deploy_token(owner, token_artifact)
    assert decode(["bool"], chain.call(token, _transfer(DEAD, 1), sender=owner.address))[0] is True
    with pytest.raises(TransactionReverted) as info:
        chain.call(token, _transfer(DEAD, 1), sender=chain_env.accounts[3].address)
    assert info.value.reason == "erc20: transfer amount exceeds balance"
    assert not info.value.retryable and info.value.tx_hash is None


def test_revert_in_gas_estimate_raises_and_uses_no_nonce(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    token = _deploy_token(sender, token_artifact)
    nonce = chain.nonce(sender.address)
    with pytest.raises(TransactionReverted) as info:
        sender.send(token, _transfer(DEAD, SUPPLY + 1))
    assert info.value.reason == "erc20: transfer amount exceeds balance"
    assert chain.nonce(sender.address) == nonce == sender.next_nonce()
    assert sender.send(token, _transfer(DEAD, 7)).status == 1
    assert chain.nonce(sender.address) == nonce + 1


def test_mined_revert_raises_with_the_reason(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    token = _deploy_token(sender, token_artifact)
    nonce = chain.nonce(sender.address)
    with pytest.raises(TransactionReverted) as info:
        sender.send(token, _transfer(DEAD, SUPPLY + 1), gas=200_000)  # explicit gas: no estimate, so it is mined
    assert info.value.reason == "erc20: transfer amount exceeds balance"
    assert info.value.tx_hash is not None and info.value.hint
    receipt = chain.receipt(info.value.tx_hash)
    assert receipt is not None and receipt.status == 0 and 21_000 < receipt.gas_used < 200_000
    assert chain.nonce(sender.address) == nonce + 1  # a mined revert uses its nonce and its gas
    assert sender.send(token, _transfer(DEAD, 1)).status == 1


REVERT_CASES = [
    pytest.param(_error_string("not allowed"), "not allowed", id="error-string"),
    pytest.param(_panic(0x11), "Panic(0x11): arithmetic overflow or underflow", id="panic-overflow"),
    pytest.param(_panic(0x12), "Panic(0x12): division or modulo by zero", id="panic-div-zero"),
    pytest.param(b"", "no reason given (empty revert data)", id="empty"),
    pytest.param(_selector("Unauthorized(address)") + bytes(32), "custom error 0x8e4a23d6", id="custom-error"),
]


@pytest.fixture
def reverter(chain_env: ChainEnv) -> str:
    address: str = chain_env.sender().deploy(REVERTER_CODE)
    return address


@pytest.mark.parametrize(("payload", "reason"), REVERT_CASES)
def test_revert_reasons_in_call_and_estimate(chain_env: ChainEnv, reverter: str, payload: bytes, reason: str) -> None:
    chain = chain_env.chain
    with pytest.raises(TransactionReverted) as called:
        chain.call(reverter, payload)
    with pytest.raises(TransactionReverted) as estimated:
        chain.estimate_gas(sender=chain_env.accounts[0].address, to=reverter, data=payload)
    assert called.value.reason.startswith(reason)
    assert estimated.value.reason == called.value.reason


@pytest.mark.parametrize(("payload", "reason"), REVERT_CASES[1:2] + REVERT_CASES[3:4])
def test_mined_revert_reasons(chain_env: ChainEnv, reverter: str, payload: bytes, reason: str) -> None:
    with pytest.raises(TransactionReverted) as info:
        chain_env.sender().send(reverter, payload, gas=60_000)
    assert info.value.reason == reason


def test_mined_out_of_gas_is_reported(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    sender = chain_env.sender()
    token = _deploy_token(sender, token_artifact)
    with pytest.raises(TransactionReverted) as info:
        sender.send(token, _transfer(DEAD, 1), gas=23_000)
    assert info.value.reason == "out of gas (used all 23000 gas given)"


def test_an_invalid_opcode_is_a_revert_too(chain_env: ChainEnv) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    broken = sender.deploy(INVALID_OPCODE_CODE, gas=100_000)
    with pytest.raises(TransactionReverted):
        chain.call(broken, b"")
    with pytest.raises(TransactionReverted):
        chain.estimate_gas(sender=sender.address, to=broken, data=b"")
    with pytest.raises(TransactionReverted) as mined:
        sender.send(broken, b"", gas=50_000)
    assert mined.value.reason.endswith("(used all 50000 gas given)")
    assert "invalid" in mined.value.reason.lower()


def test_gas_estimate_is_enough_and_tight(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    token = _deploy_token(sender, token_artifact)
    assert chain.estimate_gas(sender=sender.address, to=DEAD, data=b"", value=1) == 21_000
    fresh = "0x" + "42" * 20  # a zero balance slot: the most expensive transfer
    estimate = chain.estimate_gas(sender=sender.address, to=token, data=_transfer(fresh, 5))
    receipt = sender.send(token, _transfer(fresh, 5), gas=estimate)  # exactly the estimate, no margin
    assert receipt.status == 1
    assert receipt.gas_used <= estimate <= receipt.gas_used * 1.1


def test_eth_tester_estimate_runs_the_transaction_twice(
    token_artifact: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """geth's shortcut, not py-evm's binary search (~13 runs), which made estimates most of a pipeline's time."""
    from orchestrator.adapters.chain import ethtester

    chain = EthTesterChain()
    sender = TxSender(chain, Account.from_key(chain.dev_accounts()[0].private_key))
    token = _deploy_token(sender, token_artifact)
    runs: list[int] = []
    real = ethtester._run_costless

    def counted(state: Any, tx: Any, gas: int) -> Any:
        runs.append(gas)
        return real(state, tx, gas)

    monkeypatch.setattr(ethtester, "_run_costless", counted)
    estimate = chain.estimate_gas(sender=sender.address, to=token, data=_transfer(DEAD, 5))
    assert len(runs) == 2 and runs[1] == estimate


def _receipt_json(tx_hash: str) -> dict[str, Any]:
    return {
        "transactionHash": tx_hash,
        "blockNumber": "0x1",
        "status": "0x1",
        "gasUsed": "0x5208",
        "effectiveGasPrice": "0x1",
        "logs": [],
    }


def test_receipt_polling_learns_how_long_the_node_takes() -> None:
    """A node that mines in ~10 ms: the first pause converges near that (polling at once and then after a fixed
    20 ms cost more than the node), and never runs away (learning from the time it polled would only grow)."""
    mine_after = 0.01
    first_asked: dict[str, float] = {}
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        tx_hash = body["params"][0]
        asked.append(tx_hash)
        now = time.monotonic()
        first_asked.setdefault(tx_hash, now)
        mined = now - first_asked[tx_hash] >= mine_after
        return httpx.Response(
            200, json={"jsonrpc": "2.0", "id": body["id"], "result": _receipt_json(tx_hash) if mined else None}
        )

    chain = RpcChain("http://node.test", transport=httpx.MockTransport(handler))
    hashes = ["0x" + f"{i:064x}" for i in range(40)]
    for tx_hash in hashes:
        first_asked[tx_hash] = time.monotonic()  # "sent" now
        chain.wait_receipt(tx_hash, timeout=5)
    assert chain.receipt_latency is not None
    assert mine_after / 3 <= chain.receipt_latency <= 0.1
    polls_late = [asked.count(h) for h in hashes[20:]]
    assert sum(polls_late) / len(polls_late) <= 2.5


def _make_transfers(env: ChainEnv, artifact: dict[str, Any]) -> tuple[str, int, int, list[LogEntry]]:
    """Deploy a token and make seven transfers with empty blocks between some; return the token, the block
    range and every log the receipts reported."""
    sender = env.sender()
    start = env.chain.block_number() + 1
    deploy_signed = sender.sign(
        None,
        bytes.fromhex(artifact["bytecode"][2:])
        + encode(["string", "string", "uint8", "uint256"], ["Reward", "RWD", 18, SUPPLY]),
        gas=3_000_000,
    )
    receipts: list[Receipt] = [env.chain.wait_receipt(sender.broadcast(deploy_signed))]
    token = deploy_signed.contract_address
    assert token is not None
    for i in range(7):
        receipts.append(sender.send(token, _transfer(env.accounts[1 + i % 3].address, i + 1), gas=80_000))
        if i % 2:
            env.mine(2)
    env.mine(1)
    logs = [log for receipt in receipts for log in receipt.logs]
    return token, start, env.chain.block_number(), logs


def test_get_logs_across_chunk_boundaries(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    chain = chain_env.chain
    token, start, end, expected = _make_transfers(chain_env, token_artifact)
    assert len(expected) == 3 + 7  # deploy: ownership, minter, mint; then one Transfer per transfer
    for max_range in (1, 3, 2000):
        chain.max_log_range = max_range
        logs = chain.get_logs(address=token, topics=None, from_block=start, to_block=end)
        assert logs == expected, max_range
        assert logs == sorted(logs, key=lambda log: (log.block_number, log.log_index))
    middle = expected[5].block_number
    assert chain.get_logs(address=token, topics=None, from_block=middle, to_block=end) == [
        log for log in expected if log.block_number >= middle
    ]


def test_get_logs_filters_by_topic(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    chain = chain_env.chain
    token, start, end, expected = _make_transfers(chain_env, token_artifact)
    chain.max_log_range = 4
    to_first = chain.get_logs(
        address=token,
        topics=[TRANSFER_TOPIC, None, _topic(chain_env.accounts[1].address)],
        from_block=start,
        to_block=end,
    )
    assert [decode(["uint256"], log.data)[0] for log in to_first] == [1, 4, 7]
    assert all(log.topics[0] == TRANSFER_TOPIC for log in to_first)
    assert chain.get_logs(address=token, topics=[TRANSFER_TOPIC], from_block=start, to_block=end) == [
        log for log in expected if log.topics[0] == TRANSFER_TOPIC
    ]
    assert chain.get_logs(address=DEAD, topics=None, from_block=start, to_block=end) == []
    assert chain.get_logs(address=token, topics=None, from_block=end, to_block=start) == []
    with pytest.raises(ChainError):
        chain.get_logs(address=token, topics=[b"short"], from_block=start, to_block=end)


def test_rebroadcasting_a_signed_transaction_is_idempotent(chain_env: ChainEnv) -> None:
    chain, sender = chain_env.chain, chain_env.sender()
    nonce = chain.nonce(sender.address)
    signed = sender.sign(DEAD, value=3, gas=21_000)
    first = sender.broadcast(signed)
    chain.wait_receipt(first, timeout=10)
    assert sender.broadcast(signed) == first == chain.send_raw(signed.raw)
    assert chain.nonce(sender.address) == nonce + 1


def test_a_nonce_used_behind_our_back_is_resynced(chain_env: ChainEnv) -> None:
    chain, ours = chain_env.chain, chain_env.sender()
    ours.send(DEAD, value=1, gas=21_000)
    chain_env.sender().send(DEAD, value=1, gas=21_000)  # another process with the same key takes our next nonce
    with pytest.raises(NonceTooLow):
        chain.send_raw(
            Account.from_key(chain_env.accounts[0].private_key)
            .sign_transaction(_raw_fields(chain, nonce=ours.next_nonce()))
            .raw_transaction
        )
    receipt = ours.send(DEAD, value=2, gas=21_000)
    assert receipt.status == 1
    assert chain.nonce(ours.address) == ours.next_nonce()


def _raw_fields(chain: Chain, *, nonce: int) -> dict[str, Any]:
    fees = chain.fees()
    return {
        "type": 2,
        "chainId": chain.chain_id,
        "nonce": nonce,
        "to": DEAD,
        "value": 9,
        "gas": 21_000,
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
    }


def test_refusals_are_chain_errors_not_library_errors(chain_env: ChainEnv) -> None:
    chain = chain_env.chain
    broke = TxSender(chain, Account.create())
    with pytest.raises(ChainError) as info:
        broke.send(DEAD, value=10**18, gas=21_000)
    assert type(info.value) is InsufficientFunds and info.value.retryable and "fund" in str(info.value)
    assert broke.next_nonce() == 0  # the refused transaction used no nonce
    bad_addresses: list[Any] = ["0x1234", "not an address", 42]
    for bad in bad_addresses:
        with pytest.raises(ChainError):
            chain.balance(bad)
    with pytest.raises(ChainError):
        chain.receipt("0xnothex")
    with pytest.raises(ChainError):
        chain.send_raw(b"\x02garbage")


def test_private_keys_never_show(chain_env: ChainEnv, token_artifact: dict[str, Any]) -> None:
    account = chain_env.accounts[0]
    key_hex = account.private_key.hex()
    sender = chain_env.sender()
    token = _deploy_token(sender, token_artifact)
    texts = [repr(account), str(account), repr(sender), str(sender), repr(chain_env.chain)]
    signed = sender.sign(DEAD, value=1, gas=21_000)
    sender.broadcast(signed)
    texts.append(repr(signed))
    for gas in (None, 90_000):  # reverted in the estimate, then mined
        with pytest.raises(TransactionReverted) as info:
            sender.send(token, _transfer(DEAD, SUPPLY + 1), gas=gas)
        texts += [str(info.value), repr(info.value), repr(info.value.__cause__)]
    assert not any(key_hex in text or key_hex.upper() in text for text in texts)
    assert "private_key" not in repr(account)


# ======================================================================================== EthTesterChain only


def test_eth_tester_time_travel_and_mine() -> None:
    chain = EthTesterChain(num_accounts=3)
    assert len(chain.dev_accounts()) == 3
    before = chain.latest_timestamp()
    block = chain.block_number()
    assert chain.time_travel(3600) == chain.latest_timestamp() == before + 3600
    assert chain.time_travel(1) == before + 3601
    assert chain.block_number() == block + 2
    assert chain.mine(5) == block + 7
    with pytest.raises(ChainError):
        chain.time_travel(0)


def test_eth_tester_logs_over_many_empty_blocks(token_artifact: dict[str, Any]) -> None:
    chain = EthTesterChain()
    account = chain.dev_accounts()[0]
    sender = TxSender(chain, Account.from_key(account.private_key))
    token = _deploy_token(sender, token_artifact)
    chain.mine(300)
    sender.send(token, _transfer(DEAD, 1), gas=80_000)
    # Speed is measured in benchmarks/, never asserted here; this checks the bloom-filtered scan finds both logs.
    logs = chain.get_logs(address=token, topics=[TRANSFER_TOPIC], from_block=0, to_block=chain.block_number())
    assert len(logs) == 2
    receipt = chain.receipt(logs[0].tx_hash)
    assert receipt is not None and receipt.block_number == 1


# ======================================================================================= revert decoding


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no reason given (empty revert data)"),
        (_error_string(""), ""),
        (_error_string("héllo"), "héllo"),
        (_panic(0x01), "Panic(0x01): assert(false)"),
        (_panic(0x99), "Panic(0x99): unknown panic code"),
        (
            _selector("Error(string)") + b"\x00" * 5,
            "custom error 0x08c379a0 (revert data 0x08c379a00000000000)",
        ),
        (b"\x01\x02", "custom error 0x0102 (revert data 0x0102)"),
    ],
)
def test_decode_revert_reason(data: bytes, reason: str) -> None:
    assert decode_revert_reason(data) == reason


@given(st.binary(max_size=300))
def test_decode_revert_reason_never_raises(data: bytes) -> None:
    assert isinstance(decode_revert_reason(data), str)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200))
def test_decode_revert_reason_round_trips_error_strings(message: str) -> None:
    assert decode_revert_reason(_error_string(message)) == message


# ======================================================================================== RpcChain only

Action = tuple[int, Any] | str | None


class _QuietServer(ThreadingHTTPServer):
    """The proxy's server: a client that hangs up mid-answer (the tests make them) is not an error to print."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@dataclass
class FaultProxy:
    """A real HTTP server on 127.0.0.1 in front of a node. ``plan(request, index)`` decides the answer to the
    ``index``-th request (0-based, any method; ``request`` is the decoded JSON-RPC payload): ``None`` forwards
    it, ``(status, body)`` answers instead, ``"lost"`` forwards it and then answers 502, as if the node's
    answer got lost on the way back. ``methods`` records every request's method."""

    upstream: str
    plan: Callable[[dict[str, Any], int], Action]
    delay: Callable[[int], float] = lambda index: 0.0
    methods: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = json.loads(body)
                with proxy.lock:
                    index = len(proxy.methods)
                    proxy.methods.append(request.get("method", "?"))
                time.sleep(proxy.delay(index))
                action = proxy.plan(request, index)
                if action is None:
                    status, answer = proxy.forward(body)
                elif action == "lost":
                    proxy.forward(body)
                    status, answer = 502, b"bad gateway"
                else:
                    assert not isinstance(action, str)
                    status, payload = action
                    answer = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    def forward(self, body: bytes) -> tuple[int, bytes]:
        parts = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        try:
            conn.request("POST", "/", body=body, headers={"content-type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def count(self, method: str) -> int:
        return self.methods.count(method)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _rpc(url: str, **kwargs: Any) -> RpcChain:
    """An ``RpcChain`` with tiny backoffs, so retry tests take milliseconds."""
    kwargs.setdefault("backoff", 0.001)
    kwargs.setdefault("backoff_max", 0.01)
    return RpcChain(url, **kwargs)


def _rpc_error(code: int, message: str) -> tuple[int, dict[str, Any]]:
    return 200, {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}


def _forward_all(request: dict[str, Any], index: int) -> Action:
    return None


@pytest.fixture
def node(anvil_snapshot: AnvilProcess) -> AnvilProcess:
    """The session anvil, rolled back after the test."""
    return anvil_snapshot


def test_rpc_retries_429_then_503_then_succeeds(node: AnvilProcess) -> None:
    answers = {0: (429, b"slow down"), 1: (429, b""), 2: (503, b"busy"), 3: (503, b"busy")}
    with (
        FaultProxy(node.url, lambda request, i: answers.get(i)) as proxy,
        _rpc(proxy.url, retries=5) as chain,
    ):
        assert chain.block_number() >= 0
    assert proxy.count("eth_blockNumber") == 5


def test_rpc_gives_up_after_bounded_attempts(node: AnvilProcess) -> None:
    with (
        FaultProxy(node.url, lambda request, i: (503, b"down")) as proxy,
        _rpc(proxy.url, retries=3) as chain,
        pytest.raises(ChainUnavailable) as info,
    ):
        chain.balance(DEAD)
    assert proxy.count("eth_getBalance") == 4
    message = str(info.value)
    assert info.value.retryable and proxy.url in message and "4 attempts" in message and "HTTP 503" in message
    assert "running and reachable" in message


def test_rpc_connection_refused_is_unavailable_after_bounded_attempts(refused_port: int) -> None:
    port = refused_port
    with _rpc(f"http://127.0.0.1:{port}", retries=2) as chain, pytest.raises(ChainUnavailable) as info:
        chain.block_number()
    assert f"127.0.0.1:{port}" in str(info.value) and "3 attempts" in str(info.value)
    assert info.value.__cause__ is None  # the httpx exception does not leak, not even as the cause


def test_rpc_error_messages_hide_url_secrets(refused_port: int) -> None:
    port = refused_port
    url = f"http://user:hunter2@127.0.0.1:{port}/v3/APIKEY123?token=TOKEN456"
    with _rpc(url, retries=0) as chain, pytest.raises(ChainUnavailable) as info:
        chain.block_number()
    text = str(info.value) + repr(chain)
    assert f"127.0.0.1:{port}" in text
    assert not any(secret in text for secret in ("hunter2", "APIKEY123", "TOKEN456"))


def test_rpc_timeout_is_retried(node: AnvilProcess) -> None:
    slow_first = FaultProxy(node.url, _forward_all, delay=lambda i: 1.0 if i == 0 else 0.0)
    with slow_first as proxy, _rpc(proxy.url, retries=2, timeout=0.3) as chain:
        assert chain.chain_id == 31337
    assert proxy.count("eth_chainId") == 2


def test_rpc_rate_limit_error_is_retried(node: AnvilProcess) -> None:
    limited = _rpc_error(-32005, "daily request count exceeded, request rate limited")
    with (
        FaultProxy(node.url, lambda request, i: limited if i < 2 else None) as proxy,
        _rpc(proxy.url) as chain,
    ):
        assert chain.nonce(DEAD) == 0
    assert proxy.count("eth_getTransactionCount") == 3


def test_rpc_client_errors_and_garbage_are_not_retried(node: AnvilProcess) -> None:
    forbidden = FaultProxy(node.url, lambda request, i: (403, b"forbidden"))
    with forbidden as proxy, _rpc(proxy.url) as chain, pytest.raises(ChainError) as info:
        chain.block_number()
    assert type(info.value) is ChainError and not info.value.retryable and info.value.hint
    assert proxy.count("eth_blockNumber") == 1 and "HTTP 403" in str(info.value)

    calls: list[httpx.Request] = []

    def html(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, text="<html>captive portal</html>")

    mocked = RpcChain("http://node.invalid", transport=httpx.MockTransport(html))
    with mocked as chain, pytest.raises(ChainError) as garbage:
        chain.block_number()
    assert type(garbage.value) is ChainError and len(calls) == 1 and "captive portal" in str(garbage.value)


def test_rpc_reverts_are_not_retried(node: AnvilProcess, token_artifact: dict[str, Any]) -> None:
    accounts = node.dev_accounts()
    with FaultProxy(node.url, _forward_all) as proxy, _rpc(proxy.url) as chain:
        sender = TxSender(chain, Account.from_key(accounts[0].private_key))
        token = _deploy_token(sender, token_artifact)
        proxy.methods.clear()
        with pytest.raises(TransactionReverted):
            chain.call(token, _transfer(DEAD, 1), sender=accounts[5].address)
        with pytest.raises(TransactionReverted):
            sender.send(token, _transfer(DEAD, SUPPLY + 1))
        with pytest.raises(TransactionReverted) as mined:
            sender.send(token, _transfer(DEAD, SUPPLY + 1), gas=100_000)
    assert mined.value.reason == "erc20: transfer amount exceeds balance"
    assert proxy.count("eth_estimateGas") == 1
    assert proxy.count("eth_call") == 2  # the failing call, and the replay of the mined revert
    assert proxy.count("eth_sendRawTransaction") == 1


def test_rpc_lost_answer_to_send_raw_does_not_send_twice(node: AnvilProcess) -> None:
    accounts = node.dev_accounts()
    lost: list[int] = []

    def plan(request: dict[str, Any], index: int) -> Action:
        if request["method"] == "eth_sendRawTransaction" and not lost:
            lost.append(index)
            return "lost"
        return None

    with FaultProxy(node.url, plan) as proxy, _rpc(proxy.url) as chain:
        sender = TxSender(chain, Account.from_key(accounts[4].private_key))
        nonce = chain.nonce(sender.address)
        receipt = sender.send(DEAD, value=11, gas=21_000)
        assert receipt.status == 1
        assert chain.nonce(sender.address) == nonce + 1 == sender.next_nonce()
    assert proxy.count("eth_sendRawTransaction") == 2  # the retry found the transaction already known


def _refuse_logs_wider_than(blocks: int) -> Callable[[dict[str, Any], int], Action]:
    def plan(request: dict[str, Any], index: int) -> Action:
        if request["method"] != "eth_getLogs":
            return None
        query = request["params"][0]
        if int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1 > blocks:
            return _rpc_error(-32005, "query returned more than 10000 results")
        return None

    return plan


def test_rpc_get_logs_splits_ranges_the_node_refuses(node: AnvilProcess, token_artifact: dict[str, Any]) -> None:
    with RpcChain(node.url) as direct:
        token, start, end, expected = _make_transfers(ChainEnv("anvil", direct, node.dev_accounts(), 0), token_artifact)
    with FaultProxy(node.url, _refuse_logs_wider_than(2)) as proxy, _rpc(proxy.url, max_log_range=8) as chain:
        assert chain.get_logs(address=token, topics=None, from_block=start, to_block=end) == expected
    chunks = -(-(end - start + 1) // 8)
    assert proxy.count("eth_getLogs") > chunks  # it had to split


def test_rpc_get_logs_gives_up_when_one_block_is_refused(node: AnvilProcess) -> None:
    refusing = FaultProxy(node.url, _refuse_logs_wider_than(0))
    with refusing as proxy, _rpc(proxy.url) as chain, pytest.raises(LogQueryTooLarge) as info:
        chain.get_logs(address=DEAD, topics=None, from_block=0, to_block=3)
    assert "block 0 alone" in str(info.value)
    assert proxy.count("eth_getLogs") == 3  # 0..3, 0..1, 0..0


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-32005, "query returned more than 10000 results"),
        (-32602, "too many results"),
        (-32000, "block range is too wide"),
        (-32005, "limit exceeded"),
        (-32602, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range"),
    ],
)
def test_rpc_recognizes_log_range_refusals(code: int, message: str) -> None:
    widths: list[int] = []

    def node(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        query = payload["params"][0]
        widths.append(int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1)
        if widths[-1] > 1:
            return httpx.Response(
                200, json={"jsonrpc": "2.0", "id": payload["id"], "error": {"code": code, "message": message}}
            )
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": payload["id"], "result": []})

    with RpcChain("http://node.invalid", transport=httpx.MockTransport(node)) as chain:
        assert chain.get_logs(address=DEAD, topics=None, from_block=10, to_block=13) == []
    assert widths == [4, 2, 1, 1, 2, 1, 1]


def test_rpc_rate_limit_on_get_logs_is_retried_not_split() -> None:
    widths: list[int] = []

    def node(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        query = payload["params"][0]
        widths.append(int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1)
        if len(widths) == 1:
            error = {"code": -32005, "message": "rate limit exceeded, slow down"}
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": payload["id"], "error": error})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": payload["id"], "result": []})

    with _rpc("http://node.invalid", transport=httpx.MockTransport(node)) as chain:
        assert chain.get_logs(address=DEAD, topics=None, from_block=10, to_block=13) == []
    assert widths == [4, 4]


# ======================================================================================== AnvilProcess


def test_missing_anvil_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AnvilNotFound) as info:
        find_anvil(environ={}, search_from=[tmp_path])
    assert "make test" in str(info.value) and "@foundry-rs/anvil" in str(info.value)
    with pytest.raises(AnvilNotFound) as explicit:
        find_anvil(environ={"DEWORKER_ANVIL": str(tmp_path / "nope")})
    assert str(tmp_path / "nope") in str(explicit.value) and "DEWORKER_ANVIL" in str(explicit.value)


def test_anvil_detached_with_pid_file_and_persistent_state(anvil: AnvilProcess, tmp_path: Path) -> None:
    pid_file, state = tmp_path / "run" / "anvil.pid", tmp_path / "state.json"
    node = AnvilProcess(binary=anvil.binary, chain_id=4242, state_file=state)
    node.start(pid_file=pid_file)
    try:
        record = DetachedAnvil.read(pid_file)
        assert record is not None and record.pid == node.pid and record.url == node.url
        assert record.chain_id == 4242 and record.alive() and record.answers()
        assert os.getsid(record.pid) != os.getsid(0)  # its own session: survives our exit and our Ctrl-C
        with RpcChain(record.url) as chain:
            sender = TxSender(chain, Account.from_key(node.dev_accounts()[0].private_key))
            sender.send(DEAD, value=777, gas=21_000)
        record.stop()
        assert not record.alive() and not record.answers()
    finally:
        node.stop()
    with (
        AnvilProcess(binary=anvil.binary, chain_id=4242, state_file=state) as again,
        RpcChain(again.url) as chain,
    ):
        assert chain.balance(DEAD) == 777 and chain.chain_id == 4242


def test_anvil_refuses_a_port_in_use(anvil: AnvilProcess) -> None:
    with pytest.raises(AnvilFailed) as info:
        AnvilProcess(binary=anvil.binary, port=anvil.port).start()
    assert "already in use" in str(info.value)


def test_anvil_never_takes_another_node_for_its_own(anvil: AnvilProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race a parallel run hit: a port found free, then taken by another node before the new anvil binds it;
    the other node answers the readiness probe while the new one fails to bind. Made certain here: the port check
    is told the session node's port is free. The new node must fail, not report the other one as itself."""
    monkeypatch.setattr(anvil_module, "port_is_free", lambda port, host="127.0.0.1": True)
    with pytest.raises(AnvilFailed, match="already in use"):
        AnvilProcess(binary=anvil.binary, port=anvil.port).start()


def test_anvil_nodes_started_at_once_each_talk_to_their_own(anvil: AnvilProcess) -> None:
    """Nodes started concurrently, as parallel test workers start theirs, each get a port of their own and each
    URL reaches its own process: its chain id, and a balance set on it alone."""
    nodes = [AnvilProcess(binary=anvil.binary, chain_id=4200 + i) for i in range(4)]
    try:
        with ThreadPoolExecutor(len(nodes)) as starting:
            list(starting.map(AnvilProcess.start, nodes))
        assert len({node.port for node in nodes}) == len(nodes)
        for i, node in enumerate(nodes):
            with RpcChain(node.url) as chain:
                chain.request("anvil_setBalance", [DEAD, hex(1000 + i)])
        for i, node in enumerate(nodes):
            with RpcChain(node.url) as chain:
                assert (chain.chain_id, chain.balance(DEAD)) == (4200 + i, 1000 + i)
    finally:
        for node in nodes:
            node.stop()


def test_anvil_restarted_with_the_same_log_file_reads_only_its_own_port(anvil: AnvilProcess, tmp_path: Path) -> None:
    """A log file given (a devnet's) keeps earlier runs' "Listening on" lines; a restart must find its new port,
    not the old one (held here, so the restart cannot get it again)."""
    log = tmp_path / "anvil.log"
    node = AnvilProcess(binary=anvil.binary, log_file=log)
    with node:
        old_port = node.port
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old node's closed connections linger
        holder.bind(("127.0.0.1", old_port))
        with node, RpcChain(node.url) as chain:
            assert node.port != old_port and chain.chain_id == 31337
    assert log.read_text().count("Listening on") == 2


def test_dev_accounts_are_funded(chain_env: ChainEnv) -> None:
    assert len(chain_env.accounts) == 10
    for account in chain_env.accounts[:3]:
        assert isinstance(account, DevAccount)
        assert Account.from_key(account.private_key).address == account.address
        assert chain_env.chain.balance(account.address) >= 10_000 * 10**18

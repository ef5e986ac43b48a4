"""Tests for contracts/TaskBoard.vy, contracts/RewardToken.vy and contracts/compile.py.

Runs on the in-process eth-tester/py-evm chain. The contracts are deployed once per module from the
committed artifacts in contracts/build; every test runs against a snapshot of that chain and the chain
is reverted afterwards, so it never grows beyond a few dozen blocks.

Note: with ``EthereumTesterProvider`` web3 8 surfaces reverts as ``eth_tester.exceptions.TransactionFailed``
("execution reverted: <reason>"), while JSON-RPC nodes (anvil) give ``web3.exceptions.ContractLogicError``;
``reverts()`` accepts both and checks the exact reason string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from contracts import compile as cc

TTL = 3_600
REWARD = 10**18
SUPPLY = 10**24
SPEC = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
ARTIFACT = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
ZERO = "0x0000000000000000000000000000000000000000"

OPEN, CLAIMED, SUBMITTED, APPROVED, CANCELLED = 1, 2, 3, 4, 5
TASK_FIELDS = (
    "poster",
    "token",
    "reward",
    "deadline",
    "reviewer",
    "spec_cid",
    "status",
    "claimant",
    "claim_expires",
    "artifact_cid",
)


# --------------------------------------------------------------------------- helpers


@contextmanager
def reverts(reason: str | None) -> Iterator[None]:
    """Expect a revert; ``reason=None`` accepts any reason (e.g. ABI decoding failures)."""
    with pytest.raises((ContractLogicError, TransactionFailed)) as info:
        yield
    err = info.value
    message = err.message if isinstance(err, ContractLogicError) else str(err.args[0])
    if reason is not None:
        assert message == f"execution reverted: {reason}"


class TesterChain:
    """Transactions and time on an eth-tester chain, for the contract tests' environments (``w3`` is theirs)."""

    w3: Web3
    #: the gas limit of ``tx`` (a fixed limit skips estimation, ~3x faster)
    tx_gas: ClassVar[int] = 3_000_000

    def tx(self, fn: ContractFunction, sender: str) -> TxReceipt:
        """Send a transaction expected to succeed (fixed gas limit: no estimation)."""
        receipt = self.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": self.tx_gas}))
        assert receipt["status"] == 1
        return receipt

    def attempt(self, fn: ContractFunction, sender: str) -> TxReceipt:
        """Send a transaction with gas estimation, so a revert raises with its reason (use in reverts())."""
        receipt = self.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert receipt["status"] == 1
        return receipt

    def now(self) -> int:
        """Timestamp of the latest block (the next transaction runs at now() + 1)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel(self, ts: int) -> None:
        """Make the next transaction (or estimate/call on the pending block) run at exactly ``ts``."""
        self.w3.provider.ethereum_tester.time_travel(ts)  # type: ignore[attr-defined]


@dataclass
class Env(TesterChain):
    w3: Web3
    board: Contract
    token: Contract  # RewardToken (snekmate)
    noret: Contract  # NoReturnToken (USDT-like)
    false_token: Contract  # FalseToken
    deployer: str
    poster: str
    reviewer: str
    agent: str
    agent2: str
    stranger: str
    poster_alt: str  # a second account controlled by the poster's organisation

    def block_time(self, receipt: TxReceipt) -> int:
        return int(self.w3.eth.get_block(receipt["blockNumber"])["timestamp"])

    def task(self, task_id: int) -> dict[str, Any]:
        return dict(zip(TASK_FIELDS, self.board.functions.task(task_id).call(), strict=True))

    def balance(self, token: Contract, who: str) -> int:
        return int(token.functions.balanceOf(who).call())

    def post(
        self,
        token: Contract | None = None,
        reward: int = REWARD,
        deadline: int | None = None,
        reviewer: str | None = None,
        spec: str = SPEC,
        poster: str | None = None,
    ) -> tuple[int, TxReceipt]:
        token = self.token if token is None else token
        poster = self.poster if poster is None else poster
        deadline = self.now() + 10 * TTL if deadline is None else deadline
        reviewer = self.reviewer if reviewer is None else reviewer
        fn = self.board.functions.post(token.address, reward, deadline, reviewer, spec)
        task_id = int(fn.call({"from": poster}, block_identifier="pending"))  # raises on revert
        receipt = self.tx(fn, poster)
        return task_id, receipt

    def claimed(self, agent: str | None = None, **kw: Any) -> int:
        task_id, _ = self.post(**kw)
        self.tx(self.board.functions.claim(task_id), self.agent if agent is None else agent)
        return task_id

    def submitted(self, agent: str | None = None, **kw: Any) -> int:
        agent = self.agent if agent is None else agent
        task_id = self.claimed(agent, **kw)
        self.tx(self.board.functions.submit(task_id, ARTIFACT), agent)
        return task_id


def one_event(contract: Contract, name: str, receipt: TxReceipt) -> dict[str, Any]:
    logs = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
    assert len(logs) == 1, f"expected one {name}, got {len(logs)}"
    return dict(logs[0]["args"])


def board_events(board: Contract, receipt: TxReceipt) -> list[str]:
    names = [e["name"] for e in board.abi if e["type"] == "event"]
    found = []
    for name in names:
        found += [name] * len(getattr(board.events, name)().process_receipt(receipt, errors=DISCARD))
    return found


def deploy(w3: Web3, name: str, sender: str, *args: Any) -> Contract:
    art = cc.load_artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact({"from": sender}))
    assert receipt["status"] == 1
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    assert isinstance(contract, Contract)
    return contract


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def board_chain() -> Iterator[tuple[Env, Any]]:
    w3 = Web3(EthereumTesterProvider())
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    # Put the chain clock well ahead of the wall clock: py-evm then stamps every block exactly
    # parent + 1 (or the time_travel target), which makes the time-boundary tests deterministic.
    tester.time_travel(int(w3.eth.get_block("latest")["timestamp"]) + 10**6)
    a = list(w3.eth.accounts)
    deployer, poster, reviewer, agent, agent2, stranger, poster_alt = (a[i] for i in range(7))
    token = deploy(w3, "RewardToken", deployer, "Deworker Reward", "DWR", 18, SUPPLY)
    board = deploy(w3, "TaskBoard", deployer, TTL)
    noret = deploy(w3, "NoReturnToken", deployer, 0)
    false_token = deploy(w3, "FalseToken", deployer, 0)
    env = Env(w3, board, token, noret, false_token, deployer, poster, reviewer, agent, agent2, stranger, poster_alt)
    for tok in (noret, false_token):
        env.tx(tok.functions.mint(poster, SUPPLY), deployer)
    env.tx(token.functions.transfer(poster, SUPPLY // 2), deployer)
    for tok in (token, noret, false_token):
        env.tx(tok.functions.approve(board.address, 2**256 - 1), poster)
    yield env, tester.take_snapshot()


@pytest.fixture
def env(board_chain: tuple[Env, Any]) -> Iterator[Env]:
    e, snapshot = board_chain
    yield e
    e.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def fresh_artifacts() -> dict[str, dict[str, Any]]:
    return cc.compile_all()


# --------------------------------------------------------------------------- deployment and views


def test_constructor_and_views(env: Env) -> None:
    assert env.board.functions.claim_ttl().call() == TTL
    assert env.board.functions.task_count().call() == 0
    with reverts("unknown task"):
        env.board.functions.task(0).call()
    with reverts("unknown task"):
        env.board.functions.task(1).call()


def test_constructor_rejects_zero_ttl(env: Env) -> None:
    art = cc.load_artifact("TaskBoard")
    factory = env.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    with reverts("zero claim ttl"):
        factory.constructor(0).transact({"from": env.deployer})


def test_task_struct_abi_order() -> None:
    abi = cc.load_artifact("TaskBoard")["abi"]
    (fn,) = [e for e in abi if e.get("name") == "task"]
    assert tuple(c["name"] for c in fn["outputs"][0]["components"]) == TASK_FIELDS
    assert [c["type"] for c in fn["outputs"][0]["components"]] == [
        "address",
        "address",
        "uint256",
        "uint256",
        "address",
        "string",
        "uint8",
        "address",
        "uint256",
        "string",
    ]


def test_abi_signatures() -> None:
    abi = cc.load_artifact("TaskBoard")["abi"]

    def sig(e: dict[str, Any]) -> str:
        args = []
        for i in e["inputs"]:
            args.append(i["type"] + (" indexed" if i.get("indexed") else ""))
        return f"{e['name']}({','.join(args)})"

    functions = {sig(e) for e in abi if e["type"] == "function"}
    events = {sig(e) for e in abi if e["type"] == "event"}
    assert functions == {
        "post(address,uint256,uint256,address,string)",
        "claim(uint256)",
        "release(uint256)",
        "submit(uint256,string)",
        "approve(uint256)",
        "reject(uint256,string)",
        "cancel(uint256)",
        "expire(uint256)",
        "task(uint256)",
        "task_count()",
        "claim_ttl()",
    }
    assert events == {
        "TaskPosted(uint256 indexed,address indexed,address,uint256,uint256,address indexed,string)",
        "TaskClaimed(uint256 indexed,address indexed,uint256)",
        "TaskReleased(uint256 indexed,address indexed)",
        "TaskSubmitted(uint256 indexed,address indexed,string)",
        "TaskApproved(uint256 indexed,address indexed,address indexed,address,uint256)",
        "TaskRejected(uint256 indexed,address indexed,address indexed,string)",
        "TaskCancelled(uint256 indexed,address indexed,uint256)",
        "TaskExpired(uint256 indexed,address indexed,address indexed)",
    }


# --------------------------------------------------------------------------- post


def test_post_escrows_reward_and_emits(env: Env) -> None:
    deadline = env.now() + 5 * TTL
    before_poster = env.balance(env.token, env.poster)
    task_id, receipt = env.post(deadline=deadline)
    assert task_id == 1
    assert env.board.functions.task_count().call() == 1
    assert env.balance(env.token, env.board.address) == REWARD
    assert env.balance(env.token, env.poster) == before_poster - REWARD
    assert env.task(1) == {
        "poster": env.poster,
        "token": env.token.address,
        "reward": REWARD,
        "deadline": deadline,
        "reviewer": env.reviewer,
        "spec_cid": SPEC,
        "status": OPEN,
        "claimant": ZERO,
        "claim_expires": 0,
        "artifact_cid": "",
    }
    assert one_event(env.board, "TaskPosted", receipt) == {
        "task_id": 1,
        "poster": env.poster,
        "token": env.token.address,
        "reward": REWARD,
        "deadline": deadline,
        "reviewer": env.reviewer,
        "spec_cid": SPEC,
    }
    assert board_events(env.board, receipt) == ["TaskPosted"]
    # ids increase; escrow accumulates; max-length CID is accepted
    task2, _ = env.post(reward=7, spec="x" * 128)
    assert task2 == 2
    assert env.task(2)["spec_cid"] == "x" * 128
    assert env.balance(env.token, env.board.address) == REWARD + 7


def test_post_with_no_return_token(env: Env) -> None:
    task_id, receipt = env.post(token=env.noret)
    assert env.balance(env.noret, env.board.address) == REWARD
    assert one_event(env.board, "TaskPosted", receipt)["token"] == env.noret.address
    assert env.task(task_id)["status"] == OPEN


def test_post_with_false_token_when_funded(env: Env) -> None:
    task_id, _ = env.post(token=env.false_token)
    assert env.balance(env.false_token, env.board.address) == REWARD
    assert env.task(task_id)["token"] == env.false_token.address


def test_post_reverts_zero_reward(env: Env) -> None:
    with reverts("zero reward"):
        env.post(reward=0)


def test_post_reverts_deadline_not_in_future(env: Env) -> None:
    ts = env.now() + 100
    env.travel(ts)
    with reverts("deadline passed"):
        env.post(deadline=ts)  # deadline == block.timestamp
    with reverts("deadline passed"):
        env.post(deadline=ts - 1)
    with reverts("deadline passed"):
        env.post(deadline=0)
    _, receipt = env.post(deadline=ts + 1)  # the smallest accepted deadline
    assert env.block_time(receipt) == ts


def test_post_reverts_zero_reviewer(env: Env) -> None:
    with reverts("zero reviewer"):
        env.post(reviewer=ZERO)


def test_post_reverts_token_without_code(env: Env) -> None:
    for address in (env.stranger, ZERO):
        fn = env.board.functions.post(address, REWARD, env.now() + TTL, env.reviewer, SPEC)
        with reverts("token has no code"):
            env.attempt(fn, env.poster)


def test_post_reverts_token_without_balance_of(env: Env) -> None:
    # the board itself has code but no balanceOf/transferFrom
    fn = env.board.functions.post(env.board.address, REWARD, env.now() + TTL, env.reviewer, SPEC)
    with reverts("token balanceOf failed"):
        env.attempt(fn, env.poster)


def test_post_reverts_empty_spec_cid(env: Env) -> None:
    with reverts("empty spec cid"):
        env.post(spec="")


def test_post_reverts_spec_cid_too_long(env: Env) -> None:
    with reverts(None):
        env.post(spec="x" * 129)


def test_post_reverts_when_transfer_from_reverts(env: Env) -> None:
    # RewardToken (snekmate) reverts on missing allowance and on insufficient balance
    with reverts("token transfer failed"):
        env.post(poster=env.stranger)  # no allowance, no balance
    env.tx(env.token.functions.approve(env.board.address, REWARD), env.stranger)
    with reverts("token transfer failed"):
        env.post(poster=env.stranger)  # allowance but no balance
    # NoReturnToken reverts too
    with reverts("token transfer failed"):
        env.post(token=env.noret, reward=SUPPLY + 1)
    assert env.board.functions.task_count().call() == 0


def test_post_reverts_when_transfer_from_returns_false(env: Env) -> None:
    with reverts("token transfer failed"):
        env.post(token=env.false_token, reward=SUPPLY + 1)  # insufficient balance -> false
    with reverts("token transfer failed"):
        env.post(token=env.false_token, poster=env.stranger)  # no allowance -> false


def test_post_reverts_fee_on_transfer_token(env: Env) -> None:
    env.tx(env.noret.functions.set_fee_bps(10), env.deployer)
    with reverts("reward not received"):
        env.post(token=env.noret)


# --------------------------------------------------------------------------- claim


def test_claim(env: Env) -> None:
    task_id, _ = env.post()
    ts = env.now() + 50
    env.travel(ts)
    receipt = env.tx(env.board.functions.claim(task_id), env.agent)
    assert env.block_time(receipt) == ts
    task = env.task(task_id)
    assert (task["status"], task["claimant"], task["claim_expires"]) == (CLAIMED, env.agent, ts + TTL)
    assert one_event(env.board, "TaskClaimed", receipt) == {
        "task_id": task_id,
        "claimant": env.agent,
        "expires": ts + TTL,
    }
    assert board_events(env.board, receipt) == ["TaskClaimed"]


def test_claim_expiry_capped_at_deadline(env: Env) -> None:
    deadline = env.now() + TTL // 2
    task_id, _ = env.post(deadline=deadline)
    receipt = env.tx(env.board.functions.claim(task_id), env.agent)
    assert env.task(task_id)["claim_expires"] == deadline
    assert one_event(env.board, "TaskClaimed", receipt)["expires"] == deadline


def test_claim_by_poster_is_allowed(env: Env) -> None:
    task_id, _ = env.post()
    env.tx(env.board.functions.claim(task_id), env.poster)
    assert env.task(task_id)["claimant"] == env.poster


def test_claim_reverts_unknown_task(env: Env) -> None:
    env.post()
    for task_id in (0, 2, 2**256 - 1):
        with reverts("unknown task"):
            env.attempt(env.board.functions.claim(task_id), env.agent)


def test_claim_reverts_when_not_open(env: Env) -> None:
    claimed = env.claimed()
    with reverts("task not open"):
        env.attempt(env.board.functions.claim(claimed), env.agent2)
    with reverts("task not open"):
        env.attempt(env.board.functions.claim(claimed), env.agent)  # the claimant again
    submitted = env.submitted()
    with reverts("task not open"):
        env.attempt(env.board.functions.claim(submitted), env.agent2)
    cancelled, _ = env.post()
    env.tx(env.board.functions.cancel(cancelled), env.poster)
    with reverts("task not open"):
        env.attempt(env.board.functions.claim(cancelled), env.agent2)
    approved = env.submitted()
    env.tx(env.board.functions.approve(approved), env.reviewer)
    with reverts("task not open"):
        env.attempt(env.board.functions.claim(approved), env.agent2)


def test_claim_reverts_after_deadline(env: Env) -> None:
    deadline = env.now() + 100
    task_id, _ = env.post(deadline=deadline)
    env.travel(deadline)
    with reverts("deadline passed"):  # block.timestamp == deadline is too late
        env.attempt(env.board.functions.claim(task_id), env.agent)
    # one second earlier is fine, and the claim expires at the deadline
    deadline2 = env.now() + 100
    task2, _ = env.post(deadline=deadline2)
    env.travel(deadline2 - 1)
    env.tx(env.board.functions.claim(task2), env.agent)
    assert env.task(task2)["claim_expires"] == deadline2


def test_claim_reverts_for_reviewer(env: Env) -> None:
    task_id, _ = env.post()
    with reverts("reviewer cannot claim"):
        env.attempt(env.board.functions.claim(task_id), env.reviewer)


# --------------------------------------------------------------------------- release


def test_release(env: Env) -> None:
    task_id = env.claimed()
    receipt = env.tx(env.board.functions.release(task_id), env.agent)
    task = env.task(task_id)
    assert (task["status"], task["claimant"], task["claim_expires"]) == (OPEN, ZERO, 0)
    assert one_event(env.board, "TaskReleased", receipt) == {"task_id": task_id, "claimant": env.agent}
    assert board_events(env.board, receipt) == ["TaskReleased"]
    env.tx(env.board.functions.claim(task_id), env.agent2)  # claimable again
    assert env.task(task_id)["claimant"] == env.agent2
    assert env.balance(env.token, env.board.address) == REWARD


def test_release_reverts(env: Env) -> None:
    with reverts("unknown task"):
        env.attempt(env.board.functions.release(1), env.agent)
    open_task, _ = env.post()
    with reverts("task not claimed"):
        env.attempt(env.board.functions.release(open_task), env.agent)
    claimed = env.claimed()
    for who in (env.agent2, env.poster, env.reviewer):
        with reverts("not claimant"):
            env.attempt(env.board.functions.release(claimed), who)
    submitted = env.submitted()
    with reverts("task not claimed"):
        env.attempt(env.board.functions.release(submitted), env.agent)


# --------------------------------------------------------------------------- submit


def test_submit_at_claim_expiry(env: Env) -> None:
    task_id = env.claimed()
    expires = env.task(task_id)["claim_expires"]
    env.travel(expires)  # the last second of the claim
    receipt = env.tx(env.board.functions.submit(task_id, ARTIFACT), env.agent)
    assert env.block_time(receipt) == expires
    task = env.task(task_id)
    assert (task["status"], task["artifact_cid"], task["claimant"]) == (SUBMITTED, ARTIFACT, env.agent)
    assert one_event(env.board, "TaskSubmitted", receipt) == {
        "task_id": task_id,
        "claimant": env.agent,
        "artifact_cid": ARTIFACT,
    }
    assert board_events(env.board, receipt) == ["TaskSubmitted"]


def test_submit_reverts(env: Env) -> None:
    with reverts("unknown task"):
        env.attempt(env.board.functions.submit(1, ARTIFACT), env.agent)
    open_task, _ = env.post()
    with reverts("task not claimed"):
        env.attempt(env.board.functions.submit(open_task, ARTIFACT), env.agent)
    claimed = env.claimed()
    with reverts("not claimant"):
        env.attempt(env.board.functions.submit(claimed, ARTIFACT), env.agent2)
    with reverts("empty artifact cid"):
        env.attempt(env.board.functions.submit(claimed, ""), env.agent)
    with reverts(None):  # longer than String[128]
        env.attempt(env.board.functions.submit(claimed, "x" * 129), env.agent)
    env.tx(env.board.functions.submit(claimed, ARTIFACT), env.agent)
    with reverts("task not claimed"):  # one submit per claim
        env.attempt(env.board.functions.submit(claimed, ARTIFACT + "2"), env.agent)


def test_submit_reverts_after_claim_expired(env: Env) -> None:
    task_id = env.claimed()
    env.travel(env.task(task_id)["claim_expires"] + 1)
    with reverts("claim expired"):
        env.attempt(env.board.functions.submit(task_id, ARTIFACT), env.agent)


def test_submit_reverts_after_deadline_capped_claim(env: Env) -> None:
    deadline = env.now() + 100
    task_id = env.claimed(deadline=deadline)
    env.travel(deadline + 1)
    with reverts("claim expired"):
        env.attempt(env.board.functions.submit(task_id, ARTIFACT), env.agent)


# --------------------------------------------------------------------------- approve


def test_approve_pays_claimant(env: Env) -> None:
    task_id = env.submitted()
    receipt = env.tx(env.board.functions.approve(task_id), env.reviewer)
    assert env.balance(env.token, env.agent) == REWARD
    assert env.balance(env.token, env.board.address) == 0
    task = env.task(task_id)
    assert (task["status"], task["claimant"], task["artifact_cid"]) == (APPROVED, env.agent, ARTIFACT)
    assert one_event(env.board, "TaskApproved", receipt) == {
        "task_id": task_id,
        "reviewer": env.reviewer,
        "claimant": env.agent,
        "token": env.token.address,
        "reward": REWARD,
    }
    assert board_events(env.board, receipt) == ["TaskApproved"]
    transfers = env.token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert [(t["address"], list(t["args"].values())) for t in transfers] == [
        (env.token.address, [env.board.address, env.agent, REWARD])
    ]


def test_approve_with_no_return_token(env: Env) -> None:
    task_id = env.submitted(token=env.noret)
    env.tx(env.board.functions.approve(task_id), env.reviewer)
    assert env.balance(env.noret, env.agent) == REWARD
    assert env.balance(env.noret, env.board.address) == 0
    assert env.task(task_id)["status"] == APPROVED


def test_approve_after_deadline(env: Env) -> None:
    deadline = env.now() + 100
    task_id = env.submitted(deadline=deadline)
    env.travel(deadline + 10 * TTL)
    env.tx(env.board.functions.approve(task_id), env.reviewer)
    assert env.balance(env.token, env.agent) == REWARD


def test_approve_reverts(env: Env) -> None:
    with reverts("unknown task"):
        env.attempt(env.board.functions.approve(1), env.reviewer)
    open_task, _ = env.post()
    with reverts("task not submitted"):
        env.attempt(env.board.functions.approve(open_task), env.reviewer)
    claimed = env.claimed()
    with reverts("task not submitted"):
        env.attempt(env.board.functions.approve(claimed), env.reviewer)
    submitted = env.submitted()
    for who in (env.poster, env.agent, env.stranger):
        with reverts("not reviewer"):
            env.attempt(env.board.functions.approve(submitted), who)
    env.tx(env.board.functions.approve(submitted), env.reviewer)
    with reverts("task not submitted"):  # no double payout
        env.attempt(env.board.functions.approve(submitted), env.reviewer)
    assert env.balance(env.token, env.agent) == REWARD


def test_approve_reverts_when_payout_returns_false(env: Env) -> None:
    task_id = env.submitted(token=env.false_token)
    env.tx(env.false_token.functions.set_balance(env.board.address, 0), env.deployer)
    with reverts("token transfer failed"):
        env.attempt(env.board.functions.approve(task_id), env.reviewer)
    assert env.task(task_id)["status"] == SUBMITTED  # state rolled back
    env.tx(env.false_token.functions.set_balance(env.board.address, REWARD), env.deployer)
    env.tx(env.board.functions.approve(task_id), env.reviewer)
    assert env.balance(env.false_token, env.agent) == REWARD


# --------------------------------------------------------------------------- reject


def test_reject_reopens_task(env: Env) -> None:
    task_id = env.submitted()
    reason = "missing tests; see review notes " + "r" * 200
    receipt = env.tx(env.board.functions.reject(task_id, reason), env.reviewer)
    task = env.task(task_id)
    assert (task["status"], task["claimant"], task["claim_expires"], task["artifact_cid"]) == (
        OPEN,
        ZERO,
        0,
        "",
    )
    assert env.balance(env.token, env.board.address) == REWARD
    assert env.balance(env.token, env.agent) == 0
    assert one_event(env.board, "TaskRejected", receipt) == {
        "task_id": task_id,
        "reviewer": env.reviewer,
        "claimant": env.agent,
        "reason": reason,
    }
    assert board_events(env.board, receipt) == ["TaskRejected"]
    # the same agent may claim and submit again, then get approved
    env.tx(env.board.functions.claim(task_id), env.agent)
    env.tx(env.board.functions.submit(task_id, ARTIFACT + "v2"), env.agent)
    env.tx(env.board.functions.approve(task_id), env.reviewer)
    assert env.balance(env.token, env.agent) == REWARD


def test_reject_with_empty_reason(env: Env) -> None:
    task_id = env.submitted()
    receipt = env.tx(env.board.functions.reject(task_id, ""), env.reviewer)
    assert one_event(env.board, "TaskRejected", receipt)["reason"] == ""


def test_reject_reverts(env: Env) -> None:
    with reverts("unknown task"):
        env.attempt(env.board.functions.reject(1, "no"), env.reviewer)
    open_task, _ = env.post()
    with reverts("task not submitted"):
        env.attempt(env.board.functions.reject(open_task, "no"), env.reviewer)
    claimed = env.claimed()
    with reverts("task not submitted"):
        env.attempt(env.board.functions.reject(claimed, "no"), env.reviewer)
    submitted = env.submitted()
    for who in (env.poster, env.agent, env.stranger):
        with reverts("not reviewer"):
            env.attempt(env.board.functions.reject(submitted, "no"), who)
    with reverts(None):  # longer than String[256]
        env.attempt(env.board.functions.reject(submitted, "x" * 257), env.reviewer)
    env.tx(env.board.functions.approve(submitted), env.reviewer)
    with reverts("task not submitted"):
        env.attempt(env.board.functions.reject(submitted, "too late"), env.reviewer)


# --------------------------------------------------------------------------- cancel


def test_cancel_refunds_poster(env: Env) -> None:
    before = env.balance(env.token, env.poster)
    task_id, _ = env.post()
    receipt = env.tx(env.board.functions.cancel(task_id), env.poster)
    assert env.balance(env.token, env.poster) == before
    assert env.balance(env.token, env.board.address) == 0
    assert env.task(task_id)["status"] == CANCELLED
    assert one_event(env.board, "TaskCancelled", receipt) == {
        "task_id": task_id,
        "poster": env.poster,
        "refund": REWARD,
    }
    assert board_events(env.board, receipt) == ["TaskCancelled"]
    with reverts("task not open"):  # no double refund
        env.attempt(env.board.functions.cancel(task_id), env.poster)


def test_cancel_after_deadline_and_after_release(env: Env) -> None:
    deadline = env.now() + 100
    task_id = env.claimed(deadline=deadline)
    env.tx(env.board.functions.release(task_id), env.agent)
    env.travel(deadline + 1)
    env.tx(env.board.functions.cancel(task_id), env.poster)
    assert env.task(task_id)["status"] == CANCELLED


def test_cancel_with_no_return_token(env: Env) -> None:
    before = env.balance(env.noret, env.poster)
    task_id, _ = env.post(token=env.noret)
    env.tx(env.board.functions.cancel(task_id), env.poster)
    assert env.balance(env.noret, env.poster) == before


def test_cancel_reverts(env: Env) -> None:
    with reverts("unknown task"):
        env.attempt(env.board.functions.cancel(1), env.poster)
    claimed = env.claimed()
    with reverts("task not open"):
        env.attempt(env.board.functions.cancel(claimed), env.poster)
    submitted = env.submitted()
    with reverts("task not open"):
        env.attempt(env.board.functions.cancel(submitted), env.poster)
    open_task, _ = env.post()
    for who in (env.reviewer, env.agent, env.stranger):
        with reverts("not poster"):
            env.attempt(env.board.functions.cancel(open_task), who)


def test_cancel_reverts_when_refund_returns_false(env: Env) -> None:
    task_id, _ = env.post(token=env.false_token)
    env.tx(env.false_token.functions.set_balance(env.board.address, 0), env.deployer)
    with reverts("token transfer failed"):
        env.attempt(env.board.functions.cancel(task_id), env.poster)
    assert env.task(task_id)["status"] == OPEN


# --------------------------------------------------------------------------- expire


def test_expire_reopens_task(env: Env) -> None:
    task_id = env.claimed()
    expires = env.task(task_id)["claim_expires"]
    env.travel(expires + 1)
    receipt = env.tx(env.board.functions.expire(task_id), env.stranger)  # anyone
    task = env.task(task_id)
    assert (task["status"], task["claimant"], task["claim_expires"]) == (OPEN, ZERO, 0)
    assert one_event(env.board, "TaskExpired", receipt) == {
        "task_id": task_id,
        "caller": env.stranger,
        "claimant": env.agent,
    }
    assert board_events(env.board, receipt) == ["TaskExpired"]
    with reverts("task not claimed"):  # the old claimant cannot submit any more
        env.attempt(env.board.functions.submit(task_id, ARTIFACT), env.agent)
    env.tx(env.board.functions.claim(task_id), env.agent2)
    assert env.task(task_id)["claimant"] == env.agent2


def test_expire_by_claimant_itself(env: Env) -> None:
    task_id = env.claimed()
    env.travel(env.task(task_id)["claim_expires"] + 1)
    receipt = env.tx(env.board.functions.expire(task_id), env.agent)
    assert one_event(env.board, "TaskExpired", receipt)["caller"] == env.agent


def test_expire_reverts(env: Env) -> None:
    with reverts("unknown task"):
        env.attempt(env.board.functions.expire(1), env.stranger)
    open_task, _ = env.post()
    with reverts("task not claimed"):
        env.attempt(env.board.functions.expire(open_task), env.stranger)
    claimed = env.claimed()
    env.travel(env.task(claimed)["claim_expires"])  # still valid during its last second
    with reverts("claim not expired"):
        env.attempt(env.board.functions.expire(claimed), env.stranger)
    submitted = env.submitted()
    env.travel(env.task(submitted)["claim_expires"] + 1)
    with reverts("task not claimed"):  # a submission is never expired
        env.attempt(env.board.functions.expire(submitted), env.stranger)


def test_expired_deadline_capped_claim_then_cancel(env: Env) -> None:
    deadline = env.now() + 100
    task_id = env.claimed(deadline=deadline)
    env.travel(deadline + 1)
    with reverts("task not open"):
        env.attempt(env.board.functions.claim(task_id), env.agent2)
    env.tx(env.board.functions.expire(task_id), env.stranger)
    with reverts("deadline passed"):  # open again but past its deadline: nobody can claim
        env.attempt(env.board.functions.claim(task_id), env.agent2)
    env.tx(env.board.functions.cancel(task_id), env.poster)
    assert env.balance(env.token, env.board.address) == 0


# --------------------------------------------------------------------------- reviewers


def test_reviewer_is_posters_other_account(env: Env) -> None:
    task_id = env.submitted(reviewer=env.poster_alt)
    with reverts("not reviewer"):
        env.attempt(env.board.functions.approve(task_id), env.poster)
    receipt = env.tx(env.board.functions.approve(task_id), env.poster_alt)
    assert one_event(env.board, "TaskApproved", receipt)["reviewer"] == env.poster_alt
    assert env.balance(env.token, env.agent) == REWARD


def test_poster_as_own_reviewer(env: Env) -> None:
    task_id, _ = env.post(reviewer=env.poster)
    with reverts("reviewer cannot claim"):
        env.attempt(env.board.functions.claim(task_id), env.poster)
    env.tx(env.board.functions.claim(task_id), env.agent)
    env.tx(env.board.functions.submit(task_id, ARTIFACT), env.agent)
    env.tx(env.board.functions.reject(task_id, "redo"), env.poster)
    env.tx(env.board.functions.claim(task_id), env.agent2)
    env.tx(env.board.functions.submit(task_id, ARTIFACT), env.agent2)
    env.tx(env.board.functions.approve(task_id), env.poster)
    assert env.balance(env.token, env.agent2) == REWARD
    assert env.balance(env.token, env.agent) == 0


def test_reviewer_can_be_a_contract_address(env: Env) -> None:
    # any address is accepted as reviewer (Safe, timelock); only that address can decide
    task_id = env.submitted(reviewer=env.noret.address)
    with reverts("not reviewer"):
        env.attempt(env.board.functions.approve(task_id), env.reviewer)
    assert env.task(task_id)["reviewer"] == env.noret.address


def test_tasks_are_independent(env: Env) -> None:
    t1 = env.submitted()
    t2 = env.submitted(agent=env.agent2, token=env.noret, reward=5)
    t3, _ = env.post(reward=3)
    env.tx(env.board.functions.approve(t2), env.reviewer)
    env.tx(env.board.functions.cancel(t3), env.poster)
    assert [env.task(t)["status"] for t in (t1, t2, t3)] == [SUBMITTED, APPROVED, CANCELLED]
    assert env.balance(env.token, env.board.address) == REWARD
    assert env.balance(env.noret, env.board.address) == 0
    assert env.balance(env.noret, env.agent2) == 5


# --------------------------------------------------------------------------- RewardToken


def test_reward_token(env: Env) -> None:
    tok = env.token
    assert tok.functions.name().call() == "Deworker Reward"
    assert tok.functions.symbol().call() == "DWR"
    assert tok.functions.decimals().call() == 18
    assert tok.functions.totalSupply().call() == SUPPLY
    assert tok.functions.owner().call() == env.deployer
    assert env.balance(tok, env.deployer) == SUPPLY // 2
    env.tx(tok.functions.mint(env.agent, 5), env.deployer)
    assert env.balance(tok, env.agent) == 5
    assert tok.functions.totalSupply().call() == SUPPLY + 5
    with reverts("erc20: access is denied"):
        env.attempt(tok.functions.mint(env.agent, 5), env.agent)
    with reverts("ownable: caller is not the owner"):
        env.attempt(tok.functions.set_minter(env.agent, True), env.agent)


def test_reward_token_zero_initial_supply(env: Env) -> None:
    tok = deploy(env.w3, "RewardToken", env.stranger, "Empty", "EMT", 6, 0)
    assert tok.functions.totalSupply().call() == 0
    assert tok.functions.decimals().call() == 6
    assert tok.functions.owner().call() == env.stranger


# --------------------------------------------------------------------------- build artifacts


def test_build_matches_fresh_compile(fresh_artifacts: dict[str, dict[str, Any]]) -> None:
    solidity = {"DeworkerGovernor", "DaoToken", "TimelockController"}
    vyper = {"TaskBoard", "RewardToken", "NoReturnToken", "FalseToken", "AgenticCommerce", "AltAgenticCommerce"}
    assert set(fresh_artifacts) == vyper | {"ProjectPool", "ReentrantToken"} | solidity
    for name, artifact in fresh_artifacts.items():
        committed = cc.load_artifact(name)
        assert committed["abi"] == artifact["abi"], name
        assert committed["bytecode"] == artifact["bytecode"], name
        assert committed == artifact, name
        path = cc.BUILD_DIR / f"{name}.json"
        assert path.read_text(encoding="utf-8") == cc.render_artifact(artifact), name
        expected = "solc 0.8.37 (npm), @openzeppelin/contracts 5.7.0" if name in solidity else "vyper 0.4.3"
        assert artifact["compiler"] == expected
        assert artifact["evmVersion"] == "prague"
        assert artifact["contractName"] == name
        assert artifact["bytecode"].startswith("0x")
    assert cc.check(fresh_artifacts) == []
    assert sorted(p.stem for p in cc.BUILD_DIR.glob("*.json")) == sorted(fresh_artifacts)


def test_check_and_write(
    fresh_artifacts: dict[str, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = tmp_path / "build"
    monkeypatch.setattr(cc, "BUILD_DIR", build)
    monkeypatch.setattr(cc, "compile_all", lambda: fresh_artifacts)
    assert sorted(p.name for p in cc.write_all()) == sorted(f"{n}.json" for n in fresh_artifacts)
    assert cc.write_all() == []  # idempotent
    assert cc.main(["--check"]) == 0
    (build / "TaskBoard.json").write_text("{}\n", encoding="utf-8")
    (build / "FalseToken.json").unlink()
    (build / "Old.json").write_text("{}\n", encoding="utf-8")
    assert cc.check() == [
        "FalseToken.json (missing)",
        "TaskBoard.json (differs)",
        "Old.json (stale: no source)",
    ]
    assert cc.main(["--check"]) == 1
    assert cc.main([]) == 0
    assert cc.check() == ["Old.json (stale: no source)"]
    assert json.loads((build / "TaskBoard.json").read_text(encoding="utf-8")) == fresh_artifacts["TaskBoard"]


def test_load_artifact_errors() -> None:
    with pytest.raises(ValueError):
        cc.load_artifact("../pyproject")
    with pytest.raises(FileNotFoundError):
        cc.load_artifact("NoSuchContract")


def test_source_files() -> None:
    names = [p.relative_to(cc.CONTRACTS_DIR).as_posix() for p in cc.source_files()]
    assert names == [
        "AgenticCommerce.vy", "ProjectPool.vy", "RewardToken.vy", "TaskBoard.vy", "test/AltAgenticCommerce.vy",
        "test/FalseToken.vy", "test/NoReturnToken.vy", "test/ReentrantToken.vy",
    ]  # fmt: skip


def test_source_invariants() -> None:
    """Every state-changing external is @nonreentrant; status constants are the documented values."""
    src = (cc.CONTRACTS_DIR / "TaskBoard.vy").read_text(encoding="utf-8")
    blocks = re.findall(r"((?:^@\w+\n)+)def (\w+)\(", src, flags=re.MULTILINE)
    externals = {name: deco.split() for deco, name in blocks if "@external" in deco.split()}
    assert set(externals) == {
        "task", "post", "claim", "release", "submit", "approve", "reject", "cancel", "expire"
    }  # fmt: skip
    for name, decorators in externals.items():
        if "@view" not in decorators:
            assert "@nonreentrant" in decorators, name
    constants = dict(re.findall(r"^STATUS_(\w+): constant\(uint8\) = (\d+)$", src, flags=re.MULTILINE))
    assert constants == {"OPEN": "1", "CLAIMED": "2", "SUBMITTED": "3", "APPROVED": "4", "CANCELLED": "5"}
    assert (OPEN, CLAIMED, SUBMITTED, APPROVED, CANCELLED) == (1, 2, 3, 4, 5)

"""Tests for contracts/AgenticCommerce.vy (ERC-8183) and its deliberately different twin, AltAgenticCommerce.

Same discipline as tests/test_contracts.py for the TaskBoard: every external function, every revert path with its
exact reason, tokens that return nothing, tokens that return false and fee-on-transfer tokens, on the in-process
py-evm chain, from the committed build artifacts. One contract per payment token (the ERC's single token per
contract): ``acp`` pays in RewardToken with a 1% fee, ``noret_acp``/``false_acp`` pay in the odd tokens with none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from eth_utils.abi import event_abi_to_log_topic
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from contracts import compile as cc
from tests.test_contracts import SUPPLY, ZERO, TesterChain, deploy, one_event, reverts

BUDGET = 10**18
FEE_BP = 100  # 1%
DESC = "ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
DELIVERABLE = bytes.fromhex("ab" * 32)
REASON = bytes.fromhex("cd" * 32)
OPEN, FUNDED, SUBMITTED, COMPLETED, REJECTED, EXPIRED = range(6)
JOB_FIELDS = ("id", "client", "provider", "evaluator", "description", "budget", "expiredAt", "status", "hook")
DAY = 86_400


@dataclass
class Env(TesterChain):
    tx_gas: ClassVar[int] = 8_000_000
    w3: Web3
    acp: Contract  # RewardToken, 1% fee
    token: Contract
    noret_acp: Contract  # NoReturnToken (USDT-like, optional fee-on-transfer), no fee
    noret: Contract
    false_acp: Contract  # FalseToken (returns false), no fee
    false_token: Contract
    deployer: str
    client: str
    evaluator: str
    provider: str
    provider2: str
    stranger: str
    treasury: str

    def job(self, job_id: int, acp: Contract | None = None) -> dict[str, Any]:
        acp = self.acp if acp is None else acp
        return dict(zip(JOB_FIELDS, acp.functions.getJob(job_id).call(), strict=True))

    def balance(self, token: Contract, who: str) -> int:
        return int(token.functions.balanceOf(who).call())

    def create(
        self,
        acp: Contract | None = None,
        provider: str | None = None,
        evaluator: str | None = None,
        expired_at: int | None = None,
        description: str = DESC,
        client: str | None = None,
    ) -> tuple[int, TxReceipt]:
        acp = self.acp if acp is None else acp
        provider = self.provider if provider is None else provider
        evaluator = self.evaluator if evaluator is None else evaluator
        expired_at = self.now() + DAY if expired_at is None else expired_at
        client = self.client if client is None else client
        fn = acp.functions.createJob(provider, evaluator, expired_at, description, ZERO)
        job_id = int(fn.call({"from": client}, block_identifier="pending"))  # raises on revert
        return job_id, self.tx(fn, client)

    def funded(self, acp: Contract | None = None, budget: int = BUDGET, **kw: Any) -> int:
        acp = self.acp if acp is None else acp
        job_id, _ = self.create(acp, **kw)
        self.tx(acp.functions.setBudget(job_id, budget, b""), self.client)
        self.tx(acp.functions.fund(job_id, budget, b""), self.client)
        return job_id

    def submitted(self, acp: Contract | None = None, **kw: Any) -> int:
        acp = self.acp if acp is None else acp
        job_id = self.funded(acp, **kw)
        self.tx(acp.functions.submit(job_id, DELIVERABLE, b""), self.provider)
        return job_id


def events(contract: Contract, receipt: TxReceipt) -> list[str]:
    """The names of ``contract``'s events in ``receipt``, in log order."""
    topics = {bytes(event_abi_to_log_topic(e)): e["name"] for e in contract.abi if e["type"] == "event"}
    return [
        topics[bytes(log["topics"][0])]
        for log in receipt["logs"]
        if log["address"] == contract.address and bytes(log["topics"][0]) in topics
    ]


@pytest.fixture(scope="module")
def acp_chain() -> Iterator[tuple[Env, Any]]:
    w3 = Web3(EthereumTesterProvider())
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    tester.time_travel(int(w3.eth.get_block("latest")["timestamp"]) + 10**6)  # deterministic block times
    a = list(w3.eth.accounts)
    deployer, client, evaluator, provider, provider2, stranger, treasury = (a[i] for i in range(7))
    token = deploy(w3, "RewardToken", deployer, "Deworker Reward", "DWR", 18, SUPPLY)
    noret = deploy(w3, "NoReturnToken", deployer, 0)
    false_token = deploy(w3, "FalseToken", deployer, 0)
    acp = deploy(w3, "AgenticCommerce", deployer, token.address, treasury, FEE_BP)
    noret_acp = deploy(w3, "AgenticCommerce", deployer, noret.address, treasury, 0)
    false_acp = deploy(w3, "AgenticCommerce", deployer, false_token.address, treasury, 0)
    env = Env(
        w3, acp, token, noret_acp, noret, false_acp, false_token,
        deployer, client, evaluator, provider, provider2, stranger, treasury,
    )  # fmt: skip
    env.tx(token.functions.transfer(client, SUPPLY // 2), deployer)
    for tok in (noret, false_token):
        env.tx(tok.functions.mint(client, SUPPLY), deployer)
    for tok, market in ((token, acp), (noret, noret_acp), (false_token, false_acp)):
        env.tx(tok.functions.approve(market.address, 2**256 - 1), client)
    yield env, tester.take_snapshot()


@pytest.fixture
def env(acp_chain: tuple[Env, Any]) -> Iterator[Env]:
    e, snapshot = acp_chain
    yield e
    e.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)  # type: ignore[attr-defined]


def _sig(e: dict[str, Any]) -> str:
    return f"{e['name']}({','.join(i['type'] + (' indexed' if i.get('indexed') else '') for i in e['inputs'])})"


# --------------------------------------------------------------------------- deployment, ABI, views


def test_the_abi_is_the_normative_surface() -> None:
    abi = cc.load_artifact("AgenticCommerce")["abi"]
    functions = {_sig(e) for e in abi if e["type"] == "function"}
    assert {
        "createJob(address,address,uint256,string,address)",
        "setProvider(uint256,address,bytes)",
        "setBudget(uint256,uint256,bytes)",
        "fund(uint256,uint256,bytes)",
        "submit(uint256,bytes32,bytes)",
        "complete(uint256,bytes32,bytes)",
        "reject(uint256,bytes32,bytes)",
        "claimRefund(uint256)",
        "getJob(uint256)",
    } <= functions
    assert functions - {
        "createJob(address,address,uint256,string,address)", "setProvider(uint256,address,bytes)",
        "setBudget(uint256,uint256,bytes)", "fund(uint256,uint256,bytes)", "submit(uint256,bytes32,bytes)",
        "complete(uint256,bytes32,bytes)", "reject(uint256,bytes32,bytes)", "claimRefund(uint256)",
        "getJob(uint256)",
    } == {
        "paymentToken()", "platformFeeBP()", "platformTreasury()", "jobCounter()", "setTreasury(address)",
        "owner()", "transfer_ownership(address)", "renounce_ownership()",
    }  # fmt: skip
    assert {_sig(e) for e in abi if e["type"] == "event"} == {
        "JobCreated(uint256 indexed,address indexed,address indexed,address,uint256,address)",
        "ProviderSet(uint256 indexed,address indexed)",
        "BudgetSet(uint256 indexed,uint256)",
        "JobFunded(uint256 indexed,address indexed,uint256)",
        "JobSubmitted(uint256 indexed,address indexed,bytes32)",
        "JobCompleted(uint256 indexed,address indexed,bytes32)",
        "JobRejected(uint256 indexed,address indexed,bytes32)",
        "JobExpired(uint256 indexed)",
        "PaymentReleased(uint256 indexed,address indexed,uint256)",
        "Refunded(uint256 indexed,address indexed,uint256)",
        "TreasurySet(address indexed)",
        "OwnershipTransferred(address indexed,address indexed)",
    }
    (getter,) = [e for e in abi if e.get("name") == "getJob"]
    assert tuple(c["name"] for c in getter["outputs"][0]["components"]) == JOB_FIELDS


def test_constructor_and_views(env: Env) -> None:
    assert env.acp.functions.paymentToken().call() == env.token.address
    assert env.acp.functions.platformFeeBP().call() == FEE_BP
    assert env.acp.functions.platformTreasury().call() == env.treasury
    assert env.acp.functions.jobCounter().call() == 0
    assert env.acp.functions.owner().call() == env.deployer
    for job_id in (0, 1):
        with reverts("unknown job"):
            env.acp.functions.getJob(job_id).call()


def test_constructor_reverts(env: Env) -> None:
    art = cc.load_artifact("AgenticCommerce")
    factory = env.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    for args, reason in (
        ((env.stranger, env.treasury, 0), "token has no code"),
        ((env.token.address, ZERO, 0), "zero treasury"),
        ((env.token.address, env.treasury, 10_001), "fee too high"),
    ):
        with reverts(reason):
            factory.constructor(*args).transact({"from": env.deployer})
    factory.constructor(env.token.address, env.treasury, 10_000).transact({"from": env.deployer})  # the cap


def test_set_treasury(env: Env) -> None:
    receipt = env.tx(env.acp.functions.setTreasury(env.stranger), env.deployer)
    assert env.acp.functions.platformTreasury().call() == env.stranger
    assert one_event(env.acp, "TreasurySet", receipt) == {"treasury": env.stranger}
    with reverts("ownable: caller is not the owner"):
        env.attempt(env.acp.functions.setTreasury(env.client), env.client)
    with reverts("zero treasury"):
        env.attempt(env.acp.functions.setTreasury(ZERO), env.deployer)


# --------------------------------------------------------------------------- createJob


def test_create_job(env: Env) -> None:
    expired_at = env.now() + DAY
    job_id, receipt = env.create(expired_at=expired_at)
    assert job_id == 1 and env.acp.functions.jobCounter().call() == 1
    assert env.job(1) == {
        "id": 1, "client": env.client, "provider": env.provider, "evaluator": env.evaluator, "description": DESC,
        "budget": 0, "expiredAt": expired_at, "status": OPEN, "hook": ZERO,
    }  # fmt: skip
    assert one_event(env.acp, "JobCreated", receipt) == {
        "jobId": 1, "client": env.client, "provider": env.provider, "evaluator": env.evaluator,
        "expiredAt": expired_at, "hook": ZERO,
    }  # fmt: skip
    assert events(env.acp, receipt) == ["JobCreated"]
    # no provider (an open job); the evaluator may be the client itself; the longest description fits
    job2, _ = env.create(provider=ZERO, evaluator=env.client, description="x" * 8192)
    assert (job2, env.job(job2)["provider"], env.job(job2)["evaluator"]) == (2, ZERO, env.client)
    assert env.job(job2)["description"] == "x" * 8192
    # the evaluator may be a contract (a Safe, a Governor): any address but zero
    job3, _ = env.create(evaluator=env.token.address)
    assert env.job(job3)["evaluator"] == env.token.address


def test_create_job_reverts(env: Env) -> None:
    with reverts("zero evaluator"):
        env.create(evaluator=ZERO)
    ts = env.now() + 100
    env.travel(ts)
    for expired_at in (ts, ts - 1, 0):
        with reverts("expiry not in future"):
            env.create(expired_at=expired_at)
    fn = env.acp.functions.createJob(env.provider, env.evaluator, ts + DAY, DESC, env.stranger)
    with reverts("hooks not supported"):
        env.attempt(fn, env.client)
    with reverts(None):  # longer than String[8192]: the ABI decoder refuses it
        env.create(description="x" * 8193)
    _, receipt = env.create(expired_at=ts + 1)  # the smallest accepted expiry
    assert env.w3.eth.get_block(receipt["blockNumber"])["timestamp"] == ts
    assert env.acp.functions.jobCounter().call() == 1


# --------------------------------------------------------------------------- setProvider / setBudget


def test_set_provider(env: Env) -> None:
    job_id, _ = env.create(provider=ZERO)
    receipt = env.tx(env.acp.functions.setProvider(job_id, env.provider2, b"bid"), env.client)
    assert env.job(job_id)["provider"] == env.provider2
    assert one_event(env.acp, "ProviderSet", receipt) == {"jobId": job_id, "provider": env.provider2}
    assert events(env.acp, receipt) == ["ProviderSet"]


def test_set_provider_reverts(env: Env) -> None:
    with reverts("unknown job"):
        env.attempt(env.acp.functions.setProvider(1, env.provider, b""), env.client)
    job_id, _ = env.create(provider=ZERO)
    with reverts("not client"):
        env.attempt(env.acp.functions.setProvider(job_id, env.provider, b""), env.provider)
    with reverts("zero provider"):
        env.attempt(env.acp.functions.setProvider(job_id, ZERO, b""), env.client)
    assigned, _ = env.create()
    with reverts("provider already set"):
        env.attempt(env.acp.functions.setProvider(assigned, env.provider2, b""), env.client)
    funded = env.funded()
    with reverts("job not open"):
        env.attempt(env.acp.functions.setProvider(funded, env.provider2, b""), env.client)


def test_set_budget_by_client_or_provider(env: Env) -> None:
    job_id, _ = env.create()
    receipt = env.tx(env.acp.functions.setBudget(job_id, 5, b""), env.client)
    assert one_event(env.acp, "BudgetSet", receipt) == {"jobId": job_id, "amount": 5}
    env.tx(env.acp.functions.setBudget(job_id, 7, b"counter-offer"), env.provider)
    assert env.job(job_id)["budget"] == 7
    env.tx(env.acp.functions.setBudget(job_id, 0, b""), env.client)  # back to nothing agreed
    assert env.job(job_id)["budget"] == 0


def test_set_budget_reverts(env: Env) -> None:
    with reverts("unknown job"):
        env.attempt(env.acp.functions.setBudget(9, 1, b""), env.client)
    job_id, _ = env.create()
    for who in (env.evaluator, env.stranger):
        with reverts("not client or provider"):
            env.attempt(env.acp.functions.setBudget(job_id, 1, b""), who)
    open_job, _ = env.create(provider=ZERO)  # no provider: the zero address can never be the caller
    with reverts("not client or provider"):
        env.attempt(env.acp.functions.setBudget(open_job, 1, b""), env.provider)
    funded = env.funded()
    for who in (env.client, env.provider):
        with reverts("job not open"):
            env.attempt(env.acp.functions.setBudget(funded, 1, b""), who)


# --------------------------------------------------------------------------- fund


def test_fund_escrows_the_budget(env: Env) -> None:
    job_id, _ = env.create()
    env.tx(env.acp.functions.setBudget(job_id, BUDGET, b""), env.provider)
    before = env.balance(env.token, env.client)
    receipt = env.tx(env.acp.functions.fund(job_id, BUDGET, b""), env.client)
    assert env.job(job_id)["status"] == FUNDED
    assert env.balance(env.token, env.acp.address) == BUDGET
    assert env.balance(env.token, env.client) == before - BUDGET
    assert one_event(env.acp, "JobFunded", receipt) == {"jobId": job_id, "client": env.client, "amount": BUDGET}
    assert events(env.acp, receipt) == ["JobFunded"]


def test_fund_with_no_return_and_false_tokens(env: Env) -> None:
    for acp, token in ((env.noret_acp, env.noret), (env.false_acp, env.false_token)):
        job_id = env.funded(acp)
        assert env.job(job_id, acp)["status"] == FUNDED and env.balance(token, acp.address) == BUDGET


def test_fund_reverts(env: Env) -> None:
    with reverts("unknown job"):
        env.attempt(env.acp.functions.fund(1, BUDGET, b""), env.client)
    job_id, _ = env.create()
    with reverts("zero budget"):
        env.attempt(env.acp.functions.fund(job_id, 0, b""), env.client)
    env.tx(env.acp.functions.setBudget(job_id, BUDGET, b""), env.client)
    with reverts("not client"):
        env.attempt(env.acp.functions.fund(job_id, BUDGET, b""), env.provider)
    for expected in (BUDGET - 1, BUDGET + 1, 0):  # the front-running guard
        with reverts("budget mismatch"):
            env.attempt(env.acp.functions.fund(job_id, expected, b""), env.client)
    open_job, _ = env.create(provider=ZERO)
    env.tx(env.acp.functions.setBudget(open_job, BUDGET, b""), env.client)
    with reverts("provider not set"):
        env.attempt(env.acp.functions.fund(open_job, BUDGET, b""), env.client)
    env.tx(env.acp.functions.fund(job_id, BUDGET, b""), env.client)
    with reverts("job not open"):
        env.attempt(env.acp.functions.fund(job_id, BUDGET, b""), env.client)


def test_fund_reverts_at_expiry(env: Env) -> None:
    expired_at = env.now() + 100
    job_id, _ = env.create(expired_at=expired_at)
    env.tx(env.acp.functions.setBudget(job_id, BUDGET, b""), env.client)
    env.travel(expired_at)
    with reverts("job expired"):
        env.attempt(env.acp.functions.fund(job_id, BUDGET, b""), env.client)


def test_fund_reverts_when_the_token_refuses(env: Env) -> None:
    # RewardToken (snekmate) reverts without allowance; FalseToken returns false; NoReturnToken reverts
    poor = env.stranger
    for acp in (env.acp, env.false_acp, env.noret_acp):
        job_id, _ = env.create(acp, client=poor)
        env.tx(acp.functions.setBudget(job_id, BUDGET, b""), poor)
        with reverts("token transfer failed"):
            env.attempt(acp.functions.fund(job_id, BUDGET, b""), poor)
        assert env.job(job_id, acp)["status"] == OPEN  # rolled back
    job_id, _ = env.create(env.false_acp)  # allowance but not the balance: false
    env.tx(env.false_acp.functions.setBudget(job_id, SUPPLY + 1, b""), env.client)
    with reverts("token transfer failed"):
        env.attempt(env.false_acp.functions.fund(job_id, SUPPLY + 1, b""), env.client)


def test_fund_refuses_fee_on_transfer_tokens(env: Env) -> None:
    env.tx(env.noret.functions.set_fee_bps(10), env.deployer)
    job_id, _ = env.create(env.noret_acp)
    env.tx(env.noret_acp.functions.setBudget(job_id, BUDGET, b""), env.client)
    with reverts("budget not received"):
        env.attempt(env.noret_acp.functions.fund(job_id, BUDGET, b""), env.client)


def test_fund_reverts_when_the_token_has_no_balance_of(env: Env) -> None:
    # a "token" with code but no balanceOf: the deployment accepts it (it has code), funding cannot work
    odd = deploy(env.w3, "AgenticCommerce", env.deployer, env.acp.address, env.treasury, 0)
    job_id, _ = env.create(odd)
    env.tx(odd.functions.setBudget(job_id, BUDGET, b""), env.client)
    with reverts("token balanceOf failed"):
        env.attempt(odd.functions.fund(job_id, BUDGET, b""), env.client)


# --------------------------------------------------------------------------- submit


def test_submit(env: Env) -> None:
    job_id = env.funded()
    receipt = env.tx(env.acp.functions.submit(job_id, DELIVERABLE, b'{"cid":"bafy"}'), env.provider)
    assert env.job(job_id)["status"] == SUBMITTED
    assert one_event(env.acp, "JobSubmitted", receipt) == {
        "jobId": job_id, "provider": env.provider, "deliverable": DELIVERABLE,
    }  # fmt: skip
    assert events(env.acp, receipt) == ["JobSubmitted"]


def test_submit_after_expiry_until_someone_refunds(env: Env) -> None:
    # the ERC does not bar a late submission; a refund after expiry does (claimRefund below)
    expired_at = env.now() + 100
    job_id = env.funded(expired_at=expired_at)
    env.travel(expired_at + 5)
    env.tx(env.acp.functions.submit(job_id, DELIVERABLE, b""), env.provider)
    assert env.job(job_id)["status"] == SUBMITTED


def test_submit_reverts(env: Env) -> None:
    with reverts("unknown job"):
        env.attempt(env.acp.functions.submit(1, DELIVERABLE, b""), env.provider)
    open_job, _ = env.create()
    with reverts("job not funded"):
        env.attempt(env.acp.functions.submit(open_job, DELIVERABLE, b""), env.provider)
    job_id = env.funded()
    for who in (env.client, env.evaluator, env.provider2):
        with reverts("not provider"):
            env.attempt(env.acp.functions.submit(job_id, DELIVERABLE, b""), who)
    env.tx(env.acp.functions.submit(job_id, DELIVERABLE, b""), env.provider)
    with reverts("job not funded"):  # once: a second submission is refused
        env.attempt(env.acp.functions.submit(job_id, DELIVERABLE, b""), env.provider)
    with reverts(None):  # optParams longer than Bytes[2048]
        env.attempt(env.acp.functions.submit(env.funded(), DELIVERABLE, b"x" * 2049), env.provider)


# --------------------------------------------------------------------------- complete


def test_complete_pays_the_provider_less_the_fee(env: Env) -> None:
    job_id = env.submitted()
    receipt = env.tx(env.acp.functions.complete(job_id, REASON, b""), env.evaluator)
    fee = BUDGET * FEE_BP // 10_000
    assert env.job(job_id)["status"] == COMPLETED
    assert env.balance(env.token, env.provider) == BUDGET - fee
    assert env.balance(env.token, env.treasury) == fee
    assert env.balance(env.token, env.acp.address) == 0
    assert one_event(env.acp, "JobCompleted", receipt) == {
        "jobId": job_id,
        "evaluator": env.evaluator,
        "reason": REASON,
    }
    assert one_event(env.acp, "PaymentReleased", receipt) == {
        "jobId": job_id, "provider": env.provider, "amount": BUDGET - fee,
    }  # fmt: skip
    assert events(env.acp, receipt) == ["JobCompleted", "PaymentReleased"]


def test_complete_without_fee_and_with_odd_tokens(env: Env) -> None:
    for acp, token in ((env.noret_acp, env.noret), (env.false_acp, env.false_token)):
        job_id = env.submitted(acp)
        before = env.balance(token, env.provider)
        receipt = env.tx(acp.functions.complete(job_id, b"\0" * 32, b""), env.evaluator)
        assert env.balance(token, env.provider) == before + BUDGET
        assert one_event(acp, "PaymentReleased", receipt)["amount"] == BUDGET
        assert env.balance(token, env.treasury) == 0


def test_complete_by_an_evaluator_who_is_the_client(env: Env) -> None:
    job_id = env.submitted(evaluator=env.client)
    env.tx(env.acp.functions.complete(job_id, REASON, b""), env.client)
    assert env.job(job_id)["status"] == COMPLETED


def test_complete_reverts(env: Env) -> None:
    with reverts("unknown job"):
        env.attempt(env.acp.functions.complete(1, REASON, b""), env.evaluator)
    job_id = env.funded()
    with reverts("job not submitted"):
        env.attempt(env.acp.functions.complete(job_id, REASON, b""), env.evaluator)
    env.tx(env.acp.functions.submit(job_id, DELIVERABLE, b""), env.provider)
    for who in (env.client, env.provider, env.stranger):
        with reverts("not evaluator"):
            env.attempt(env.acp.functions.complete(job_id, REASON, b""), who)
    env.tx(env.acp.functions.complete(job_id, REASON, b""), env.evaluator)
    with reverts("job not submitted"):
        env.attempt(env.acp.functions.complete(job_id, REASON, b""), env.evaluator)


def test_complete_reverts_when_the_payout_returns_false(env: Env) -> None:
    job_id = env.submitted(env.false_acp)
    env.tx(env.false_token.functions.set_balance(env.false_acp.address, 0), env.deployer)
    with reverts("token transfer failed"):
        env.attempt(env.false_acp.functions.complete(job_id, REASON, b""), env.evaluator)
    assert env.job(job_id, env.false_acp)["status"] == SUBMITTED  # rolled back


# --------------------------------------------------------------------------- reject


def test_reject_an_open_job_by_the_client(env: Env) -> None:
    job_id, _ = env.create()
    before = env.balance(env.token, env.client)
    receipt = env.tx(env.acp.functions.reject(job_id, REASON, b""), env.client)
    assert env.job(job_id)["status"] == REJECTED
    assert env.balance(env.token, env.client) == before  # nothing was escrowed
    assert one_event(env.acp, "JobRejected", receipt) == {"jobId": job_id, "rejector": env.client, "reason": REASON}
    assert events(env.acp, receipt) == ["JobRejected"]


def test_reject_refunds_a_funded_or_submitted_job(env: Env) -> None:
    for job_id in (env.funded(), env.submitted()):
        before = env.balance(env.token, env.client)
        receipt = env.tx(env.acp.functions.reject(job_id, REASON, b""), env.evaluator)
        assert env.job(job_id)["status"] == REJECTED
        assert env.balance(env.token, env.client) == before + BUDGET
        assert one_event(env.acp, "Refunded", receipt) == {"jobId": job_id, "client": env.client, "amount": BUDGET}
        assert events(env.acp, receipt) == ["JobRejected", "Refunded"]
    assert env.balance(env.token, env.treasury) == 0  # no fee on a refund
    job_id = env.submitted(env.noret_acp)
    env.tx(env.noret_acp.functions.reject(job_id, REASON, b""), env.evaluator)


def test_reject_reverts(env: Env) -> None:
    with reverts("unknown job"):
        env.attempt(env.acp.functions.reject(1, REASON, b""), env.client)
    open_job, _ = env.create()
    for who in (env.evaluator, env.provider):
        with reverts("not client"):
            env.attempt(env.acp.functions.reject(open_job, REASON, b""), who)
    job_id = env.funded()
    for who in (env.client, env.provider):  # once funded, only the evaluator: the provider's work is protected
        with reverts("not evaluator"):
            env.attempt(env.acp.functions.reject(job_id, REASON, b""), who)
    env.tx(env.acp.functions.reject(job_id, REASON, b""), env.evaluator)
    done = env.submitted()
    env.tx(env.acp.functions.complete(done, REASON, b""), env.evaluator)
    for terminal in (job_id, done):
        for who in (env.client, env.evaluator):
            with reverts("job not rejectable"):
                env.attempt(env.acp.functions.reject(terminal, REASON, b""), who)


def test_reject_reverts_when_the_refund_returns_false(env: Env) -> None:
    job_id = env.funded(env.false_acp)
    env.tx(env.false_token.functions.set_balance(env.false_acp.address, 0), env.deployer)
    with reverts("token transfer failed"):
        env.attempt(env.false_acp.functions.reject(job_id, REASON, b""), env.evaluator)
    assert env.job(job_id, env.false_acp)["status"] == FUNDED


# --------------------------------------------------------------------------- claimRefund


def test_claim_refund_at_expiry_by_anyone(env: Env) -> None:
    for make in (env.funded, env.submitted):
        expired_at = env.now() + 100
        job_id = make(expired_at=expired_at)
        env.travel(expired_at)  # exactly at expiredAt
        before = env.balance(env.token, env.client)
        receipt = env.tx(env.acp.functions.claimRefund(job_id), env.stranger)
        assert env.job(job_id)["status"] == EXPIRED
        assert env.balance(env.token, env.client) == before + BUDGET
        assert one_event(env.acp, "JobExpired", receipt) == {"jobId": job_id}
        assert one_event(env.acp, "Refunded", receipt) == {"jobId": job_id, "client": env.client, "amount": BUDGET}
        assert events(env.acp, receipt) == ["JobExpired", "Refunded"]


def test_claim_refund_reverts(env: Env) -> None:
    with reverts("unknown job"):
        env.attempt(env.acp.functions.claimRefund(1), env.client)
    expired_at = env.now() + 100
    open_job, _ = env.create(expired_at=expired_at)
    job_id = env.funded(expired_at=expired_at)
    env.travel(expired_at - 1)
    with reverts("job not expired"):
        env.attempt(env.acp.functions.claimRefund(job_id), env.client)
    env.travel(expired_at + 10)
    with reverts("job not refundable"):  # an Open job holds nothing to refund: the client rejects it
        env.attempt(env.acp.functions.claimRefund(open_job), env.client)
    env.tx(env.acp.functions.claimRefund(job_id), env.client)
    with reverts("job not refundable"):
        env.attempt(env.acp.functions.claimRefund(job_id), env.client)
    done = env.submitted(expired_at=env.now() + 100)
    env.tx(env.acp.functions.complete(done, REASON, b""), env.evaluator)
    env.travel(env.now() + 200)
    with reverts("job not refundable"):
        env.attempt(env.acp.functions.claimRefund(done), env.client)


def test_claim_refund_reverts_when_the_refund_returns_false(env: Env) -> None:
    expired_at = env.now() + 100
    job_id = env.funded(env.false_acp, expired_at=expired_at)
    env.tx(env.false_token.functions.set_balance(env.false_acp.address, 0), env.deployer)
    env.travel(expired_at)
    with reverts("token transfer failed"):
        env.attempt(env.false_acp.functions.claimRefund(job_id), env.client)


def test_jobs_are_independent_escrows(env: Env) -> None:
    a, b = env.funded(), env.submitted(budget=3)
    env.tx(env.acp.functions.reject(a, REASON, b""), env.evaluator)
    assert env.balance(env.token, env.acp.address) == 3
    env.tx(env.acp.functions.complete(b, REASON, b""), env.evaluator)
    assert env.balance(env.token, env.acp.address) == 0 and env.balance(env.token, env.provider) == 3  # 1% of 3 is 0


def test_source_invariants() -> None:
    """Every state-changing lifecycle function is @nonreentrant; status codes are the reference's enum."""
    src = (cc.CONTRACTS_DIR / "AgenticCommerce.vy").read_text(encoding="utf-8")
    blocks = re.findall(r"((?:^@\w+\n)+)def (\w+)\(", src, flags=re.MULTILINE)
    externals = {name: deco.split() for deco, name in blocks if "@external" in deco.split()}
    assert set(externals) == {
        "getJob", "setTreasury", "createJob", "setProvider", "setBudget", "fund", "submit", "complete", "reject",
        "claimRefund",
    }  # fmt: skip
    for name, decorators in externals.items():
        if "@view" not in decorators and name != "setTreasury":  # setTreasury moves no tokens
            assert "@nonreentrant" in decorators, name
    constants = dict(re.findall(r"^STATUS_(\w+): constant\(uint8\) = (\d+)$", src, flags=re.MULTILINE))
    assert constants == {
        "OPEN": "0",
        "FUNDED": "1",
        "SUBMITTED": "2",
        "COMPLETED": "3",
        "REJECTED": "4",
        "EXPIRED": "5",
    }


# --------------------------------------------------------------------------- the second implementation


def test_the_second_implementation_differs_where_the_standard_leaves_room(env: Env) -> None:
    abi = cc.load_artifact("AltAgenticCommerce")["abi"]
    signatures = {_sig(e) for e in abi if e["type"] == "event"}
    assert "JobCreated(uint256 indexed,address indexed,address,address,uint256,address)" in signatures
    assert "JobSubmitted(uint256 indexed,address,bytes32)" in signatures
    (getter,) = [e for e in abi if e.get("name") == "getJob"]
    assert [c["name"] for c in getter["outputs"][0]["components"]] == [
        "status", "client", "evaluator", "provider", "budget", "expiredAt", "description", "hook",
    ]  # fmt: skip
    alt = deploy(env.w3, "AltAgenticCommerce", env.treasury, env.token.address)
    env.tx(env.token.functions.approve(alt.address, 2**256 - 1), env.client)
    job_id = env.submitted(alt)
    receipt = env.tx(alt.functions.complete(job_id, REASON, b""), env.evaluator)
    fee = BUDGET * 250 // 10_000  # 2.5%
    assert env.balance(env.token, env.provider) == BUDGET - fee and env.balance(env.token, env.treasury) == fee
    released = alt.events.PaymentReleased().process_receipt(receipt, errors=DISCARD)
    assert released[0]["args"]["amount"] == BUDGET - fee
    with reverts("wrong status"):
        env.attempt(alt.functions.submit(job_id, DELIVERABLE, b""), env.provider)

"""Tests for contracts/ProjectPool.vy: every external function and revert path of the pool and its share token.

Runs on the in-process py-evm chain against the committed artifact; each test reverts to a snapshot taken after
the module's deployment (``tests/pool_env.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from contracts import compile as cc
from tests.pool_env import (
    ARTIFACT,
    CANCELLED,
    FINALIZED,
    PENDING,
    POSTED,
    SPEC,
    VETO,
    ZERO,
    PoolEnv,
    make_pool_env,
)
from tests.test_contracts import deploy, reverts

SCALE = 2**128
BOARD_OPEN, BOARD_CLAIMED, BOARD_SUBMITTED, BOARD_APPROVED, BOARD_CANCELLED = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def pool_chain() -> tuple[PoolEnv, Any]:
    return make_pool_env()


@pytest.fixture
def env(pool_chain: tuple[PoolEnv, Any]) -> Iterator[PoolEnv]:
    e, snapshot = pool_chain
    yield e
    e.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)  # type: ignore[attr-defined]


def events(contract: Contract, receipt: TxReceipt) -> list[tuple[str, dict[str, Any]]]:
    """Every event ``contract`` emitted in the receipt, in log order (a token's Transfer is not the pool's)."""
    found = []
    for entry in contract.abi:
        if entry["type"] == "event":
            for log in getattr(contract.events, entry["name"])().process_receipt(receipt, errors=DISCARD):
                if log["address"] == contract.address:
                    found.append((log["logIndex"], entry["name"], dict(log["args"])))
    return [(name, args) for _, name, args in sorted(found, key=lambda item: item[0])]


def names(contract: Contract, receipt: TxReceipt) -> list[str]:
    return [name for name, _ in events(contract, receipt)]


# --------------------------------------------------------------------------- constructor and views


def test_constructor_and_views(env: PoolEnv) -> None:
    p = env.pool.functions
    assert p.board().call() == env.board.address
    assert p.budget_token().call() == env.token.address
    assert p.veto_window().call() == VETO
    assert (p.owner().call(), p.reviewer().call(), p.guardian().call()) == (env.owner, env.reviewer, env.guardian)
    assert (p.name().call(), p.symbol().call(), p.decimals().call()) == ("Atlas", "ATLAS", 0)
    assert (p.totalSupply().call(), p.budget().call(), p.task_count().call(), p.holder_count().call()) == (0, 0, 0, 0)
    assert p.revenue_tokens(0).call() == env.token.address
    assert p.revenue_tokens(1).call() == env.fee_token.address
    assert p.accepted(env.token.address).call() and not p.accepted(env.stranger).call()
    assert p.CLOCK_MODE().call() == "mode=blocknumber&from=default"
    assert p.clock().call() == env.w3.eth.block_number
    with reverts("unknown task"):
        p.task(1).call()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"board": "stranger"}, "board has no code"),
        ({"token": "stranger"}, "token has no code"),
        ({"owner": ZERO}, "zero owner"),
        ({"reviewer": ZERO}, "zero reviewer"),
        ({"veto": 0}, "zero veto window"),
    ],
)
def test_constructor_reverts(env: PoolEnv, change: dict[str, Any], reason: str) -> None:
    args = {
        "board": env.board.address,
        "token": env.token.address,
        "owner": env.owner,
        "reviewer": env.reviewer,
        "veto": VETO,
    }
    args.update({k: env.stranger if v == "stranger" else v for k, v in change.items()})
    art = cc.load_artifact("ProjectPool")
    factory = env.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    ctor = factory.constructor(
        "P", "P", args["board"], args["token"], args["owner"], args["reviewer"], ZERO, args["veto"]
    )
    with reverts(reason):
        ctor.transact({"from": env.deployer})


def test_constructor_accepts_no_guardian(env: PoolEnv) -> None:
    pool = deploy(
        env.w3,
        "ProjectPool",
        env.deployer,
        "P",
        "P",
        env.board.address,
        env.token.address,
        env.owner,
        env.owner,
        ZERO,
        1,
    )
    assert pool.functions.guardian().call() == ZERO


# --------------------------------------------------------------------------- share token: not transferable


def test_shares_are_not_transferable(env: PoolEnv) -> None:
    env.fund(10**18)
    env.contribute(env.agents[0], 5)
    agent = env.agents[0]
    p = env.pool.functions
    for fn in (p.transfer(env.stranger, 1), p.transferFrom(agent, env.stranger, 1), p.approve(env.stranger, 1)):
        with reverts("shares are not transferable"):
            env.attempt(fn, agent)
    assert p.allowance(agent, env.stranger).call() == 0
    assert p.balanceOf(agent).call() == 5


# --------------------------------------------------------------------------- fund


def test_fund(env: PoolEnv) -> None:
    receipt = env.fund(7 * 10**18)
    assert env.pool.functions.budget().call() == 7 * 10**18
    assert env.balance(env.token, env.pool.address) == 7 * 10**18
    assert events(env.pool, receipt) == [
        ("BudgetFunded", {"funder": env.owner, "amount": 7 * 10**18, "budget": 7 * 10**18})
    ]


def test_fund_reverts(env: PoolEnv) -> None:
    with reverts("zero amount"):
        env.attempt(env.pool.functions.fund(0), env.owner)
    with reverts("token transfer failed"):  # no allowance
        env.attempt(env.pool.functions.fund(1), env.stranger)


def test_fund_refuses_fee_on_transfer_budget_token(env: PoolEnv) -> None:
    pool = deploy(
        env.w3, "ProjectPool", env.deployer, "P", "P", env.board.address, env.fee_token.address, env.owner,
        env.reviewer, ZERO, VETO,
    )  # fmt: skip
    env.tx(env.fee_token.functions.set_fee_bps(100), env.deployer)
    env.tx(env.fee_token.functions.approve(pool.address, 1000), env.depositor)
    with reverts("budget not received"):
        env.attempt(pool.functions.fund(1000), env.depositor)


# --------------------------------------------------------------------------- post_task / task / cancel_task


def test_post_task_escrows_on_the_board(env: PoolEnv) -> None:
    env.fund(5 * 10**18)
    deadline = env.now() + 10 * VETO
    fn = env.pool.functions.post_task(SPEC, 2 * 10**18, deadline, 30)
    receipt = env.tx(fn, env.owner)
    assert events(env.pool, receipt) == [
        ("PoolTaskPosted", {"task_id": 1, "reward": 2 * 10**18, "weight": 30, "deadline": deadline, "spec_cid": SPEC})
    ]
    assert env.pool.functions.budget().call() == 3 * 10**18
    assert env.balance(env.token, env.board.address) == 2 * 10**18
    poster, token, reward, board_deadline, reviewer, spec, status = env.board.functions.task(1).call()[:7]
    assert (poster, reviewer, token, reward, board_deadline, spec, status) == (
        env.pool.address, env.pool.address, env.token.address, 2 * 10**18, deadline, SPEC, BOARD_OPEN
    )  # fmt: skip
    assert env.pool_task(1) == {
        "weight": 30,
        "reward": 2 * 10**18,
        "status": POSTED,
        "contributor": ZERO,
        "veto_ends": 0,
    }
    assert (env.pool.functions.task_count().call(), env.pool.functions.task_at(0).call()) == (1, 1)


def test_post_task_reverts(env: PoolEnv) -> None:
    env.fund(10)
    p = env.pool.functions
    deadline = env.now() + VETO
    with reverts("not owner"):
        env.attempt(p.post_task(SPEC, 1, deadline, 1), env.stranger)
    with reverts("zero weight"):
        env.attempt(p.post_task(SPEC, 1, deadline, 0), env.owner)
    with reverts("budget exceeded"):
        env.attempt(p.post_task(SPEC, 11, deadline, 1), env.owner)
    with reverts("deadline passed"):  # the board's own checks reach the caller; the budget is untouched
        env.attempt(p.post_task(SPEC, 1, 1, 1), env.owner)
    with reverts("zero reward"):
        env.attempt(p.post_task(SPEC, 0, deadline, 1), env.owner)
    assert p.budget().call() == 10 and p.task_count().call() == 0


def test_cancel_task_refunds_the_budget(env: PoolEnv) -> None:
    env.fund(10)
    task_id = env.post(reward=4)
    receipt = env.tx(env.pool.functions.cancel_task(task_id), env.owner)
    assert names(env.pool, receipt) == ["PoolTaskCancelled"]
    assert events(env.pool, receipt)[0][1] == {"task_id": task_id, "refund": 4}
    assert env.pool.functions.budget().call() == 10
    assert env.pool_task(task_id)["status"] == CANCELLED
    assert env.board_status(task_id) == BOARD_CANCELLED
    assert env.balance(env.token, env.pool.address) == 10


def test_cancel_task_reverts(env: PoolEnv) -> None:
    env.fund(10)
    task_id = env.post(reward=4)
    with reverts("not owner"):
        env.attempt(env.pool.functions.cancel_task(task_id), env.stranger)
    with reverts("task not posted"):
        env.attempt(env.pool.functions.cancel_task(99), env.owner)
    env.tx(env.board.functions.claim(task_id), env.agents[0])
    with reverts("task not open"):  # the board refuses while an agent holds it
        env.attempt(env.pool.functions.cancel_task(task_id), env.owner)
    assert env.pool.functions.budget().call() == 6


# --------------------------------------------------------------------------- approve_task


def test_approve_task_starts_the_veto_window(env: PoolEnv) -> None:
    env.fund(10)
    task_id = env.submitted(env.agents[0], reward=3, weight=7)
    ts = env.now() + 10
    env.travel(ts)
    receipt = env.tx(env.pool.functions.approve_task(task_id), env.reviewer)
    assert events(env.pool, receipt) == [
        (
            "PoolTaskApproved",
            {"task_id": task_id, "reviewer": env.reviewer, "contributor": env.agents[0], "veto_ends": ts + VETO},
        )
    ]
    assert env.pool_task(task_id) == {
        "weight": 7, "reward": 3, "status": PENDING, "contributor": env.agents[0], "veto_ends": ts + VETO
    }  # fmt: skip
    assert env.board_status(task_id) == BOARD_SUBMITTED  # nothing paid yet
    assert env.balance(env.token, env.agents[0]) == 0


def test_approve_task_reverts(env: PoolEnv) -> None:
    env.fund(10)
    task_id = env.post(reward=3)
    with reverts("not reviewer"):
        env.attempt(env.pool.functions.approve_task(task_id), env.owner)
    with reverts("task not posted"):
        env.attempt(env.pool.functions.approve_task(99), env.reviewer)
    with reverts("task not submitted"):  # open on the board
        env.attempt(env.pool.functions.approve_task(task_id), env.reviewer)
    env.tx(env.board.functions.claim(task_id), env.agents[0])
    with reverts("task not submitted"):  # claimed, not submitted
        env.attempt(env.pool.functions.approve_task(task_id), env.reviewer)
    env.tx(env.board.functions.submit(task_id, ARTIFACT), env.agents[0])
    env.tx(env.pool.functions.approve_task(task_id), env.reviewer)
    with reverts("task not posted"):  # already pending
        env.attempt(env.pool.functions.approve_task(task_id), env.reviewer)


# --------------------------------------------------------------------------- veto


@pytest.mark.parametrize("who", ["guardian", "owner"])
def test_veto_pays_nothing_and_mints_nothing(env: PoolEnv, who: str) -> None:
    env.fund(10)
    agent = env.agents[0]
    task_id = env.pending(agent, reward=3, weight=7)
    env.travel(env.pool_task(task_id)["veto_ends"] - 1)  # the last second of the window
    receipt = env.tx(env.pool.functions.veto(task_id, "plagiarised"), getattr(env, who))
    assert events(env.pool, receipt) == [
        (
            "PoolTaskVetoed",
            {"task_id": task_id, "vetoer": getattr(env, who), "contributor": agent, "reason": "plagiarised"},
        )
    ]
    assert env.pool_task(task_id) == {"weight": 7, "reward": 3, "status": POSTED, "contributor": ZERO, "veto_ends": 0}
    assert env.board_status(task_id) == BOARD_OPEN  # rejected on the board: open for a new submission
    assert env.balance(env.token, agent) == 0
    assert env.pool.functions.balanceOf(agent).call() == 0
    assert env.pool.functions.totalSupply().call() == 0
    with reverts("task not pending"):  # a vetoed task cannot be finalized
        env.attempt(env.pool.functions.finalize(task_id), env.stranger)
    # the task can be done again, by another agent, and finalized then
    other = env.agents[1]
    env.tx(env.board.functions.claim(task_id), other)
    env.tx(env.board.functions.submit(task_id, ARTIFACT), other)
    env.tx(env.pool.functions.approve_task(task_id), env.reviewer)
    env.travel(env.pool_task(task_id)["veto_ends"])
    env.tx(env.pool.functions.finalize(task_id), env.stranger)
    assert env.pool.functions.balanceOf(other).call() == 7
    assert env.balance(env.token, other) == 3


def test_veto_reverts(env: PoolEnv) -> None:
    env.fund(10)
    task_id = env.pending(env.agents[0], reward=3)
    p = env.pool.functions
    for sender in (env.stranger, env.reviewer, env.agents[0]):
        with reverts("not guardian or owner"):
            env.attempt(p.veto(task_id, "no"), sender)
    with reverts("task not pending"):
        env.attempt(p.veto(99, "no"), env.guardian)
    env.travel(env.pool_task(task_id)["veto_ends"])
    with reverts("veto window over"):
        env.attempt(p.veto(task_id, "no"), env.guardian)
    env.tx(p.finalize(task_id), env.stranger)
    with reverts("task not pending"):  # finalized
        env.attempt(p.veto(task_id, "no"), env.owner)


# --------------------------------------------------------------------------- finalize


def test_finalize_pays_the_bounty_and_mints_shares(env: PoolEnv) -> None:
    env.fund(10)
    agent = env.agents[0]
    task_id = env.pending(agent, reward=3, weight=7)
    env.travel(env.pool_task(task_id)["veto_ends"])
    receipt = env.tx(env.pool.functions.finalize(task_id), env.stranger)
    assert events(env.pool, receipt) == [
        ("DelegateChanged", {"delegator": agent, "fromDelegate": ZERO, "toDelegate": agent}),
        ("Transfer", {"sender": ZERO, "receiver": agent, "value": 7}),
        ("DelegateVotesChanged", {"delegate": agent, "previousVotes": 0, "newVotes": 7}),
        (
            "PoolTaskFinalized",
            {"task_id": task_id, "caller": env.stranger, "contributor": agent, "reward": 3, "weight": 7},
        ),
    ]
    assert env.balance(env.token, agent) == 3
    assert env.board_status(task_id) == BOARD_APPROVED
    p = env.pool.functions
    assert (p.balanceOf(agent).call(), p.totalSupply().call(), p.getVotes(agent).call()) == (7, 7, 7)
    assert p.delegates(agent).call() == agent
    assert (p.holder_count().call(), p.holder_at(0).call()) == (1, agent)
    assert env.pool_task(task_id)["status"] == FINALIZED
    assert p.budget().call() == 7


def test_finalize_twice_is_a_no_op(env: PoolEnv) -> None:
    env.fund(10)
    agent = env.agents[0]
    env.contribute(agent, 7, reward=3)
    receipt = env.tx(env.pool.functions.finalize(1), env.stranger)
    assert receipt["logs"] == []
    assert env.balance(env.token, agent) == 3
    assert env.pool.functions.balanceOf(agent).call() == 7
    assert env.pool.functions.holder_count().call() == 1


def test_finalize_reverts(env: PoolEnv) -> None:
    env.fund(10)
    p = env.pool.functions
    with reverts("task not pending"):
        env.attempt(p.finalize(99), env.stranger)
    task_id = env.post(reward=3)
    with reverts("task not pending"):  # posted, not approved
        env.attempt(p.finalize(task_id), env.stranger)
    env.tx(env.board.functions.claim(task_id), env.agents[0])
    env.tx(env.board.functions.submit(task_id, ARTIFACT), env.agents[0])
    env.tx(p.approve_task(task_id), env.reviewer)
    env.travel(env.pool_task(task_id)["veto_ends"] - 1)
    with reverts("veto window open"):  # one second before the end
        env.attempt(p.finalize(task_id), env.stranger)
    assert env.balance(env.token, env.agents[0]) == 0 and p.totalSupply().call() == 0


def test_finalize_cancelled_task_reverts(env: PoolEnv) -> None:
    env.fund(10)
    task_id = env.post(reward=3)
    env.tx(env.pool.functions.cancel_task(task_id), env.owner)
    with reverts("task not pending"):
        env.attempt(env.pool.functions.finalize(task_id), env.stranger)


# --------------------------------------------------------------------------- revenue tokens


def test_add_revenue_token(env: PoolEnv) -> None:
    token = deploy(env.w3, "NoReturnToken", env.deployer, 0)
    receipt = env.tx(env.pool.functions.add_revenue_token(token.address), env.owner)
    assert events(env.pool, receipt) == [("RevenueTokenAdded", {"token": token.address})]
    assert env.pool.functions.accepted(token.address).call()
    assert env.pool.functions.revenue_tokens(2).call() == token.address


def test_add_revenue_token_reverts(env: PoolEnv) -> None:
    p = env.pool.functions
    with reverts("not owner"):
        env.attempt(p.add_revenue_token(env.board.address), env.stranger)
    with reverts("token has no code"):
        env.attempt(p.add_revenue_token(env.stranger), env.owner)
    with reverts("token already accepted"):
        env.attempt(p.add_revenue_token(env.token.address), env.owner)
    for _ in range(6):  # 2 accepted already; the limit is 8
        env.tx(p.add_revenue_token(deploy(env.w3, "NoReturnToken", env.deployer, 0).address), env.owner)
    with reverts("too many revenue tokens"):
        env.attempt(p.add_revenue_token(deploy(env.w3, "NoReturnToken", env.deployer, 0).address), env.owner)


# --------------------------------------------------------------------------- deposit_revenue


def test_deposit_revenue_accumulates_with_carry(env: PoolEnv) -> None:
    env.fund(10)
    a, b = env.agents[0], env.agents[1]
    env.contribute(a, 1)
    env.contribute(b, 2)
    receipt = env.deposit(env.token, 10)  # 10 * 2**128 / 3: remainder 1 * 2**128 % 3 carried
    acc = 10 * SCALE // 3
    assert events(env.pool, receipt) == [
        (
            "RevenueDeposited",
            {"token": env.token.address, "depositor": env.depositor, "amount": 10, "received": 10,
             "revenue_per_share": acc},
        )
    ]  # fmt: skip
    p = env.pool.functions
    assert p.revenue_per_share(env.token.address).call() == acc
    assert p.revenue_carry(env.token.address).call() == 10 * SCALE % 3
    assert p.deposited(env.token.address).call() == 10
    assert (env.claimable(a, env.token), env.claimable(b, env.token)) == (3, 6)  # 1 unit left in the pool
    env.deposit(env.token, 2)  # the carry joins: 12 in total, 4 and 8 exactly
    assert (env.claimable(a, env.token), env.claimable(b, env.token)) == (4, 8)
    assert p.revenue_carry(env.token.address).call() == 0
    # the budget is untouched by revenue in the same token
    assert p.budget().call() == 8
    assert env.balance(env.token, env.pool.address) == 8 + 12


def test_deposit_revenue_counts_what_arrived(env: PoolEnv) -> None:
    env.fund(10)
    env.contribute(env.agents[0], 4)
    env.tx(env.fee_token.functions.set_fee_bps(1000), env.deployer)  # 10 % burned on every transfer
    receipt = env.deposit(env.fee_token, 1000)
    (name, args), *_ = events(env.pool, receipt)
    assert (name, args["amount"], args["received"]) == ("RevenueDeposited", 1000, 900)
    assert env.pool.functions.deposited(env.fee_token.address).call() == 900
    assert env.claimable(env.agents[0], env.fee_token) == 900
    assert env.balance(env.fee_token, env.pool.address) == 900


def test_deposit_revenue_reverts(env: PoolEnv) -> None:
    p = env.pool.functions
    env.tx(env.token.functions.approve(env.pool.address, 10**6), env.depositor)
    with reverts("no shares outstanding"):
        env.attempt(p.deposit_revenue(env.token.address, 10), env.depositor)
    env.fund(10)
    env.contribute(env.agents[0], 1)
    with reverts("zero amount"):
        env.attempt(p.deposit_revenue(env.token.address, 0), env.depositor)
    with reverts("token not accepted"):
        env.attempt(p.deposit_revenue(env.board.address, 10), env.depositor)
    with reverts("token transfer failed"):  # no allowance
        env.attempt(p.deposit_revenue(env.token.address, 10), env.stranger)
    env.tx(env.fee_token.functions.set_fee_bps(10_000), env.deployer)  # everything burned
    env.tx(env.fee_token.functions.approve(env.pool.address, 10), env.depositor)
    with reverts("nothing received"):
        env.attempt(p.deposit_revenue(env.fee_token.address, 10), env.depositor)
    with reverts(None):  # 2**128 base units in one deposit overflow the accumulator
        env.attempt(p.deposit_revenue(env.fee_token.address, SCALE), env.depositor)


def test_minting_after_a_deposit_gets_nothing_of_it(env: PoolEnv) -> None:
    env.fund(10)
    a, b = env.agents[0], env.agents[1]
    env.contribute(a, 5)
    env.deposit(env.token, 100)
    env.contribute(b, 5)
    assert (env.claimable(a, env.token), env.claimable(b, env.token)) == (100, 0)
    env.contribute(a, 10)  # a second mint to an existing holder keeps what it earned
    assert env.claimable(a, env.token) == 100
    env.deposit(env.token, 200)  # a: 15 of 20 shares, b: 5
    assert (env.claimable(a, env.token), env.claimable(b, env.token)) == (250, 50)


# --------------------------------------------------------------------------- claim


def test_claim_pays_once(env: PoolEnv) -> None:
    env.fund(10)
    a = env.agents[0]
    env.contribute(a, 5)
    env.deposit(env.token, 100)
    before = env.balance(env.token, a)
    receipt = env.tx(env.pool.functions.claim(env.token.address), a)
    assert events(env.pool, receipt) == [("RevenueClaimed", {"token": env.token.address, "holder": a, "amount": 100})]
    assert env.balance(env.token, a) == before + 100
    p = env.pool.functions
    assert (p.claimed(a, env.token.address).call(), p.total_claimed(env.token.address).call()) == (100, 100)
    assert env.claimable(a, env.token) == 0
    with reverts("nothing to claim"):
        env.attempt(p.claim(env.token.address), a)
    env.deposit(env.token, 30)
    assert env.claimable(a, env.token) == 30


def test_claim_reverts(env: PoolEnv) -> None:
    with reverts("nothing to claim"):
        env.attempt(env.pool.functions.claim(env.token.address), env.stranger)
    with reverts("nothing to claim"):  # a token never deposited
        env.attempt(env.pool.functions.claim(env.board.address), env.stranger)


def test_claim_fee_on_transfer_token(env: PoolEnv) -> None:
    env.fund(10)
    a = env.agents[0]
    env.contribute(a, 5)
    env.deposit(env.fee_token, 1000)
    env.tx(env.fee_token.functions.set_fee_bps(500), env.deployer)
    env.tx(env.pool.functions.claim(env.fee_token.address), a)
    assert env.balance(env.fee_token, a) == 950  # the token's own fee on the way out
    assert env.balance(env.fee_token, env.pool.address) == 0


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("setter", "getter", "zero_reason"),
    [
        ("transfer_ownership", "owner", "zero owner"),
        ("set_reviewer", "reviewer", "zero reviewer"),
        ("set_guardian", "guardian", None),
    ],
)
def test_roles(env: PoolEnv, setter: str, getter: str, zero_reason: str | None) -> None:
    p = env.pool.functions
    with reverts("not owner"):
        env.attempt(getattr(p, setter)(env.stranger), env.stranger)
    previous = getattr(p, getter)().call()
    receipt = env.tx(getattr(p, setter)(env.agents[3]), env.owner)
    role = {"owner": "owner", "reviewer": "reviewer", "guardian": "guardian"}[getter]
    assert events(env.pool, receipt) == [("RoleChanged", {"role": role, "previous": previous, "new": env.agents[3]})]
    assert getattr(p, getter)().call() == env.agents[3]
    owner = env.agents[3] if getter == "owner" else env.owner
    if zero_reason is None:
        env.tx(getattr(p, setter)(ZERO), owner)
        assert getattr(p, getter)().call() == ZERO
    else:
        with reverts(zero_reason):
            env.attempt(getattr(p, setter)(ZERO), owner)


def test_new_owner_holds_the_powers(env: PoolEnv) -> None:
    env.fund(10)
    env.tx(env.pool.functions.transfer_ownership(env.stranger), env.owner)
    with reverts("not owner"):
        env.attempt(env.pool.functions.post_task(SPEC, 1, env.now() + VETO, 1), env.owner)
    fn = env.pool.functions.post_task(SPEC, 1, env.now() + VETO, 1)
    env.tx(fn, env.stranger)
    assert env.pool.functions.task_count().call() == 1


# --------------------------------------------------------------------------- votes


def test_votes_are_checkpointed_by_block(env: PoolEnv) -> None:
    env.fund(10)
    a, b = env.agents[0], env.agents[1]
    p = env.pool.functions
    env.contribute(a, 5)
    first = env.w3.eth.block_number
    env.contribute(b, 3)
    second = env.w3.eth.block_number
    receipt = env.tx(p.delegate(b), a)
    third = env.w3.eth.block_number
    assert events(env.pool, receipt) == [
        ("DelegateChanged", {"delegator": a, "fromDelegate": a, "toDelegate": b}),
        ("DelegateVotesChanged", {"delegate": a, "previousVotes": 5, "newVotes": 0}),
        ("DelegateVotesChanged", {"delegate": b, "previousVotes": 3, "newVotes": 8}),
    ]
    env.tx(env.token.functions.transfer(env.stranger, 0), env.owner)  # one more block: `third` is in the past
    assert (p.getVotes(a).call(), p.getVotes(b).call(), p.delegates(a).call()) == (0, 8, b)
    assert [p.getPastVotes(a, n).call() for n in (first - 1, first, second, third)] == [0, 5, 5, 0]
    assert [p.getPastVotes(b, n).call() for n in (first, second, third)] == [0, 3, 8]
    assert [p.getPastTotalSupply(n).call() for n in (first - 1, first, second, third)] == [0, 5, 8, 8]
    assert p.balanceOf(a).call() == 5  # delegating moves votes, never shares
    env.contribute(a, 2)  # new shares follow the delegate
    assert (p.getVotes(a).call(), p.getVotes(b).call()) == (0, 10)
    env.tx(p.delegate(ZERO), a)  # votes can be withdrawn from everyone
    assert p.getVotes(b).call() == 3


def test_past_lookups_refuse_the_future(env: PoolEnv) -> None:
    now = env.w3.eth.block_number
    with reverts("future lookup"):
        env.pool.functions.getPastVotes(env.agents[0], now + 1).call()
    with reverts("future lookup"):
        env.pool.functions.getPastTotalSupply(now + 1).call()
    assert env.pool.functions.getPastTotalSupply(now - 1).call() == 0


def test_a_chosen_delegate_survives_the_first_mint(env: PoolEnv) -> None:
    env.fund(10)
    a, b = env.agents[0], env.agents[1]
    env.tx(env.pool.functions.delegate(b), a)  # before holding anything
    env.contribute(a, 4)
    p = env.pool.functions
    assert (p.delegates(a).call(), p.getVotes(a).call(), p.getVotes(b).call()) == (b, 0, 4)
    assert (p.holder_count().call(), p.holder_at(0).call()) == (1, a)


# --------------------------------------------------------------------------- reentrancy


@pytest.mark.parametrize(
    "reenter",
    ["claim(address)", "deposit_revenue(address,uint256)", "finalize(uint256)"],
)
def test_a_hostile_token_cannot_reenter_during_claim(env: PoolEnv, reenter: str) -> None:
    from eth_abi import encode
    from eth_utils.crypto import keccak

    hostile = deploy(env.w3, "ReentrantToken", env.deployer)
    env.tx(env.pool.functions.add_revenue_token(hostile.address), env.owner)
    env.fund(10)
    agent = env.agents[0]
    env.contribute(agent, 5)
    env.tx(hostile.functions.mint(env.depositor, 1000), env.deployer)
    env.deposit(hostile, 1000)
    args = {
        "claim(address)": (["address"], [hostile.address]),
        "deposit_revenue(address,uint256)": (["address", "uint256"], [hostile.address, 1]),
        "finalize(uint256)": (["uint256"], [1]),  # a no-op that would succeed but for the lock
    }[reenter]
    payload = keccak(text=reenter)[:4] + encode(*args)
    env.tx(hostile.functions.set_callback(env.pool.address, payload), env.deployer)
    env.tx(env.pool.functions.claim(hostile.address), agent)
    assert hostile.functions.attempts().call() == 1
    assert not hostile.functions.reentered().call()  # the pool's lock refused the nested call
    assert env.balance(hostile, agent) == 1000
    assert env.claimable(agent, hostile) == 0


# --------------------------------------------------------------------------- overflow bounds


def test_weight_and_share_supply_are_capped(env: PoolEnv) -> None:
    env.fund(10)
    with reverts("weight too large"):
        env.attempt(env.pool.functions.post_task(SPEC, 1, env.now() + VETO, 2**40 + 1), env.owner)
    env.contribute(env.agents[0], 2**40)  # the whole cap at once is accepted
    task_id = env.pending(env.agents[1], reward=1, weight=1)
    env.travel(env.pool_task(task_id)["veto_ends"])
    with reverts("share supply cap"):
        env.attempt(env.pool.functions.finalize(task_id), env.stranger)
    assert env.pool.functions.totalSupply().call() == 2**40


def test_a_deposit_that_could_overflow_later_is_refused(env: PoolEnv) -> None:
    """With one share outstanding the accumulator may hold at most max_uint256 // 2**40: 2**88 base units in one
    deposit would exceed it (and a later mint of 2**40 shares would overflow), 2**88 - 1 does not."""
    env.fund(10)
    env.contribute(env.agents[0], 1)
    env.tx(env.fee_token.functions.approve(env.pool.address, 2**89), env.depositor)
    with reverts("revenue per share too large"):
        env.attempt(env.pool.functions.deposit_revenue(env.fee_token.address, 2**88), env.depositor)
    env.tx(env.pool.functions.deposit_revenue(env.fee_token.address, 2**88 - 1), env.depositor)
    assert env.claimable(env.agents[0], env.fee_token) == 2**88 - 1

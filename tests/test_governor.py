"""The DAO funds a project pool by vote: OpenZeppelin Governor + TimelockController (npm OZ 5.7.0, solc 0.8.37,
committed artifacts), end to end on both chains (py-evm and anvil).

Propose funding a pool, vote, queue, wait the timelock's delay, execute: the pool's budget holds the amount. A
proposal the vote defeats cannot be queued or executed and funds nothing. Blocks and time move with each chain's
own controls (``ChainEnv.mine``, eth-tester's time travel, anvil's ``evm_increaseTime``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_abi import encode

from contracts.compile import load_artifact
from orchestrator.adapters.chain import EthTesterChain, TxSender
from orchestrator.domain.errors import TransactionReverted
from orchestrator.entry.dao_pool import (
    Governance,
    Governor,
    Pool,
    ProposalState,
    abi,
    call,
    deploy_governance,
    deploy_pool,
    fund_pool_actions,
)
from tests.conftest import ChainEnv

SUPPLY = 1_000_000 * 10**18
BUDGET = 5_000 * 10**18
MIN_DELAY = 3_600
VOTING_DELAY = 1
VOTING_PERIOD = 10


@dataclass
class Dao:
    env: ChainEnv
    deployer: TxSender
    voters: list[TxSender]
    treasury_token: str
    pool: str
    gov: Governance
    governor: Governor

    def advance(self, seconds: int) -> None:
        advance(self.env, seconds)

    def budget(self) -> int:
        return int(call(self.env.chain, self.pool, "ProjectPool", "budget"))

    def balance(self, who: str) -> int:
        return int(call(self.env.chain, self.treasury_token, "RewardToken", "balanceOf", who))


def advance(env: ChainEnv, seconds: int) -> None:
    """Move the chain's clock ``seconds`` ahead (and mine a block there)."""
    chain = env.chain
    if isinstance(chain, EthTesterChain):
        chain.time_travel(seconds)
    else:
        chain.request("evm_increaseTime", [seconds])
        chain.request("evm_mine", [])


def _deploy_token(sender: TxSender) -> str:
    art = load_artifact("RewardToken")
    args = encode(["string", "string", "uint8", "uint256"], ["Treasury", "TRS", 18, SUPPLY])
    return sender.deploy(bytes.fromhex(art["bytecode"].removeprefix("0x")), args)


@pytest.fixture
def dao(chain_env: ChainEnv) -> Dao:
    deployer = chain_env.sender(0)
    voters = [chain_env.sender(1), chain_env.sender(2), chain_env.sender(3)]
    gov = deploy_governance(
        sender=deployer,
        supply=SUPPLY,
        min_delay=MIN_DELAY,
        voting_delay=VOTING_DELAY,
        voting_period=VOTING_PERIOD,
        quorum_percent=4,
    )
    token_abi = abi("DaoToken")
    for voter, share in zip(voters, (40, 35, 25), strict=True):  # 40 % / 35 % / 25 % of the votes
        deployer.send(gov.token, token_abi.encode_call("transfer", voter.address, SUPPLY * share // 100))
        voter.send(gov.token, token_abi.encode_call("delegate", voter.address))
    treasury_token = _deploy_token(deployer)
    deployer.send(treasury_token, abi("RewardToken").encode_call("transfer", gov.timelock, 10 * BUDGET))
    board_art = load_artifact("TaskBoard")
    board = deployer.deploy(bytes.fromhex(board_art["bytecode"].removeprefix("0x")), encode(["uint256"], [86_400]))
    pool = deploy_pool(
        sender=deployer,
        name="Atlas",
        symbol="ATLAS",
        board=board,
        token=treasury_token,
        owner=gov.timelock,
        reviewer=deployer.address,
        veto_window=2 * 86_400,
    )
    return Dao(
        chain_env, deployer, voters, treasury_token, pool, gov, Governor(chain=chain_env.chain, governor=gov.governor)
    )


def test_governance_is_wired(dao: Dao) -> None:
    chain = dao.env.chain
    g = dao.gov
    assert call(chain, g.governor, "DeworkerGovernor", "token") == g.token
    assert call(chain, g.governor, "DeworkerGovernor", "timelock") == g.timelock
    assert call(chain, g.governor, "DeworkerGovernor", "votingDelay") == VOTING_DELAY
    assert call(chain, g.governor, "DeworkerGovernor", "votingPeriod") == VOTING_PERIOD
    assert call(chain, g.governor, "DeworkerGovernor", "CLOCK_MODE") == "mode=blocknumber&from=default"
    assert call(chain, g.timelock, "TimelockController", "getMinDelay") == MIN_DELAY
    admin = bytes(32)
    assert not call(chain, g.timelock, "TimelockController", "hasRole", admin, dao.deployer.address)
    assert call(chain, dao.pool, "ProjectPool", "owner") == g.timelock


def test_a_vote_funds_the_pool(dao: Dao) -> None:
    targets, values, calldatas = fund_pool_actions(dao.env.chain, dao.pool, BUDGET)
    description = "Fund the Atlas pool with 5000 TRS"
    pid = dao.governor.propose(dao.voters[0], targets, values, calldatas, description)
    assert dao.governor.state(pid) is ProposalState.PENDING
    (listed,) = dao.governor.proposals()
    assert (listed.id, listed.description, listed.targets) == (pid, description, targets)
    dao.env.mine(VOTING_DELAY + 1)
    assert dao.governor.state(pid) is ProposalState.ACTIVE
    dao.governor.vote(dao.voters[0], pid, "for", reason="the project is worth it")
    dao.governor.vote(dao.voters[1], pid, "against")
    dao.governor.vote(dao.voters[2], pid, "for")
    votes = call(dao.env.chain, dao.gov.governor, "DeworkerGovernor", "proposalVotes", pid)
    assert votes == (SUPPLY * 35 // 100, SUPPLY * 65 // 100, 0)  # against, for, abstain
    with pytest.raises(TransactionReverted):  # not before the vote is over
        dao.governor.queue(dao.deployer, pid)
    dao.env.mine(VOTING_PERIOD + 1)
    assert dao.governor.state(pid) is ProposalState.SUCCEEDED
    dao.governor.queue(dao.deployer, pid)
    assert dao.governor.state(pid) is ProposalState.QUEUED
    with pytest.raises(TransactionReverted):  # the timelock's delay is not over
        dao.governor.execute(dao.deployer, pid)
    assert dao.budget() == 0
    dao.advance(MIN_DELAY + 1)
    treasury = dao.balance(dao.gov.timelock)
    dao.governor.execute(dao.deployer, pid)  # anyone may execute
    assert dao.governor.state(pid) is ProposalState.EXECUTED
    assert dao.budget() == BUDGET
    assert dao.balance(dao.pool) == BUDGET
    assert dao.balance(dao.gov.timelock) == treasury - BUDGET
    with pytest.raises(TransactionReverted):  # once
        dao.governor.execute(dao.deployer, pid)
    assert dao.budget() == BUDGET


def test_a_defeated_proposal_funds_nothing(dao: Dao) -> None:
    targets, values, calldatas = fund_pool_actions(dao.env.chain, dao.pool, BUDGET)
    pid = dao.governor.propose(dao.voters[2], targets, values, calldatas, "Fund Atlas (rejected)")
    dao.env.mine(VOTING_DELAY + 1)
    dao.governor.vote(dao.voters[0], pid, "against")
    dao.governor.vote(dao.voters[1], pid, "abstain")
    dao.governor.vote(dao.voters[2], pid, "for")
    dao.env.mine(VOTING_PERIOD + 1)
    assert dao.governor.state(pid) is ProposalState.DEFEATED
    treasury = dao.balance(dao.gov.timelock)
    with pytest.raises(TransactionReverted):
        dao.governor.queue(dao.deployer, pid)
    dao.advance(MIN_DELAY + 1)
    with pytest.raises(TransactionReverted):
        dao.governor.execute(dao.deployer, pid)
    assert dao.governor.state(pid) is ProposalState.DEFEATED
    assert (dao.budget(), dao.balance(dao.pool), dao.balance(dao.gov.timelock)) == (0, 0, treasury)


def test_the_timelock_alone_moves_the_treasury(dao: Dao) -> None:
    """Nobody can skip the vote: the deployer gave up the admin role and is no proposer."""
    targets, values, calldatas = fund_pool_actions(dao.env.chain, dao.pool, BUDGET)
    tl = abi("TimelockController")
    with pytest.raises(TransactionReverted):
        dao.deployer.send(
            dao.gov.timelock,
            tl.encode_call("scheduleBatch", targets, values, calldatas, bytes(32), bytes(32), MIN_DELAY),
        )
    with pytest.raises(TransactionReverted):  # and the pool takes orders from its owner only
        dao.deployer.send(dao.pool, abi("ProjectPool").encode_call("post_task", "cid", 1, 2**40, 1))
    assert dao.budget() == 0


def test_a_pools_shares_are_the_votes(chain_env: ChainEnv) -> None:
    """The Governor reads a ProjectPool's shares as its votes: contributors govern the pool they built."""
    deployer, a, b = chain_env.sender(0), chain_env.sender(1), chain_env.sender(2)
    token = _deploy_token(deployer)
    board_art = load_artifact("TaskBoard")
    board = deployer.deploy(bytes.fromhex(board_art["bytecode"].removeprefix("0x")), encode(["uint256"], [86_400]))
    veto = 60
    pool = deploy_pool(
        sender=deployer,
        name="Atlas",
        symbol="ATLAS",
        board=board,
        token=token,
        owner=deployer.address,
        reviewer=deployer.address,
        veto_window=veto,
    )
    p = Pool(chain=chain_env.chain, address=pool)
    p.fund(deployer, 10**18)
    tb = abi("TaskBoard")
    now = chain_env.chain.block(None).timestamp
    for contributor, weight in ((a, 60), (b, 40)):
        task_id = p.post(deployer, spec_cid="bafy-spec", reward=1, deadline=now + 86_400, weight=weight)
        contributor.send(board, tb.encode_call("claim", task_id))
        contributor.send(board, tb.encode_call("submit", task_id, "bafy-work"))
        p.approve(deployer, task_id)
        advance(chain_env, veto + 1)
        p.finalize(deployer, task_id)
    gov = deploy_governance(
        sender=deployer, supply=0, min_delay=MIN_DELAY, voting_delay=1, voting_period=10, quorum_percent=50,
        votes_token=pool,
    )  # fmt: skip
    assert call(chain_env.chain, gov.governor, "DeworkerGovernor", "token") == pool
    deployer.send(pool, abi("ProjectPool").encode_call("transfer_ownership", gov.timelock))
    governor = Governor(chain=chain_env.chain, governor=gov.governor)
    guardian = b.address
    pid = governor.propose(
        a, [pool], [0], [abi("ProjectPool").encode_call("set_guardian", guardian)], "b guards the pool"
    )
    chain_env.mine(2)
    governor.vote(a, pid, "for")  # 60 of 100 shares
    governor.vote(b, pid, "against")
    chain_env.mine(11)
    assert governor.state(pid) is ProposalState.SUCCEEDED
    governor.queue(deployer, pid)
    advance(chain_env, MIN_DELAY + 1)
    governor.execute(deployer, pid)
    assert p.view("guardian") == guardian
    assert call(chain_env.chain, gov.governor, "DeworkerGovernor", "quorum", chain_env.chain.block_number() - 1) == 50

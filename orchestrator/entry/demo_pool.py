"""The demo's project-pool story: a DAO (an OpenZeppelin Governor and its timelock) votes to fund a project pool and
post its tasks (propose → vote → queue → execute, time and blocks moved by the in-process chain itself); the agents
do the tasks like any board task; the DAO approves them, the veto window passes, ``finalize`` pays the bounty and
mints the shares; the project deposits revenue and the agents claim it through their own policy-gated wallets, each
claim written to the ledger. ``orchestrator.entry.demo`` drives it next to the two boards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.adapters.chain import EthTesterChain, TxSender
from orchestrator.adapters.pools import ProjectPoolRevenue
from orchestrator.app.revenue import RevenueCollector
from orchestrator.domain.board import BoardPhase
from orchestrator.domain.errors import DeworkerError
from orchestrator.domain.specs import TaskSpec, dump_spec
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.dao import Dao
from orchestrator.entry.dao_pool import (
    Governor,
    Pool,
    ProposalState,
    abi,
    deploy_governance,
    deploy_pool,
    fund_pool_actions,
)

#: Governor settings of the demo DAO: votes open one block after the proposal and last five blocks; the timelock
#: waits an hour; the pool's veto window is an hour. The chain moves past them with its own methods.
VOTING_DELAY = 1
VOTING_PERIOD = 5
MIN_DELAY = 3_600
VETO_WINDOW = 3_600
#: Shares each pool task mints (the first task weighs more).
WEIGHTS = (30, 10)
#: Revenue the project earns and deposits into the pool once its tasks are finalized (whole tokens).
REVENUE_TOKENS = 40


@dataclass
class ProjectStory:
    """The pool the DAO funded by vote, its governor and proposal, and the board tasks the pool posted."""

    pool: Pool
    governor: Governor
    proposal: int
    task_ids: list[int]
    finalized: set[int] = field(default_factory=set)
    revenue: int = 0  # base units deposited


def fund_project_by_vote(
    rt: Runtime, dao: Dao, signer: TxSender, specs: Sequence[tuple[TaskSpec, int]], *, deadline: int
) -> ProjectStory:
    """Deploy the DAO's Governor, its treasury (the timelock, holding the budget) and the pool it owns; then one
    proposal funds the pool and posts ``specs`` (spec, reward in base units) with ``WEIGHTS``: voted, queued and
    executed on the in-process chain."""
    chain = rt.chain
    if not isinstance(chain, EthTesterChain):
        raise DeworkerError("the demo's vote moves time on the in-process chain only", hint="run `deworker demo`")
    gov = deploy_governance(
        sender=signer,
        supply=1_000_000 * 10**18,
        min_delay=MIN_DELAY,
        voting_delay=VOTING_DELAY,
        voting_period=VOTING_PERIOD,
        quorum_percent=4,
    )
    budget = sum(reward for _, reward in specs)
    signer.send(dao.token, abi("RewardToken").encode_call("transfer", gov.timelock, budget))  # the treasury
    address = deploy_pool(
        sender=signer, name="Atlas", symbol="ATLAS", board=dao.board_address, token=dao.token, owner=gov.timelock,
        reviewer=signer.address, veto_window=VETO_WINDOW,
    )  # fmt: skip
    targets, values, calldatas = fund_pool_actions(chain, address, budget)
    pool_abi = abi("ProjectPool")
    for (spec, reward), weight in zip(specs, WEIGHTS, strict=False):
        cid = dao.store.put_bytes(dump_spec(spec))
        dao.store.publish(cid)
        targets.append(address)
        values.append(0)
        calldatas.append(pool_abi.encode_call("post_task", cid, reward, deadline, weight))
    governor = Governor(chain=chain, governor=gov.governor)
    pid = governor.propose(signer, targets, values, calldatas, "Fund the Atlas project pool and post its tasks")
    chain.mine(VOTING_DELAY + 1)
    governor.vote(signer, pid, "for", reason="the project is worth it")
    chain.mine(VOTING_PERIOD + 1)
    governor.queue(signer, pid)
    chain.time_travel(MIN_DELAY + 1)
    governor.execute(signer, pid)
    if governor.state(pid) is not ProposalState.EXECUTED:
        raise DeworkerError(f"the demo's proposal {pid} was not executed", hint="a bug: report it")
    pool = Pool(chain=chain, address=address)
    return ProjectStory(pool=pool, governor=governor, proposal=pid, task_ids=[t.task_id for t in pool.tasks()])


def pool_reviews(story: ProjectStory, dao: Dao, signer: TxSender) -> int:
    """The DAO's reviewer approves each delivered pool task, the veto window passes (the chain's clock moves), and
    anyone finalizes: the bounty is paid and the shares minted. Returns how many were finalized now."""
    delivered = [
        int(bt.key)
        for bt in dao.tasks()
        if bt.phase is BoardPhase.DELIVERED and int(bt.key) in story.task_ids and int(bt.key) not in story.finalized
    ]
    if not delivered:
        return 0
    for task_id in delivered:
        story.pool.approve(signer, task_id)
    chain = story.pool.chain
    assert isinstance(chain, EthTesterChain)  # fund_project_by_vote checked it
    chain.time_travel(VETO_WINDOW + 1)
    for task_id in delivered:
        story.pool.finalize(signer, task_id)
        story.finalized.add(task_id)
    return len(delivered)


def earn_and_claim(rt: Runtime, story: ProjectStory, dao: Dao, signer: TxSender, agents: Sequence[str]) -> int:
    """The project deposits its revenue into the pool; each agent holding shares claims its part through its own
    wallet (the policy gate lets a holder call ``claim`` on that pool), each claim written to the ledger. Returns
    how many claims were paid. With no task finalized there are no shares, and the pool refuses a deposit: the
    project has no contributor to pay, so nothing is deposited."""
    if not story.finalized:
        return 0
    story.revenue = REVENUE_TOKENS * 10 ** dao.decimals()
    story.pool.deposit(signer, dao.token, story.revenue)
    holders = [holder for holder, _shares in story.pool.holders()]
    rt.fleet.set_pool_holders({story.pool.address: holders})
    collector = RevenueCollector(
        pools=ProjectPoolRevenue(chain=rt.chain, pools=[story.pool.address]),
        wallets={name: rt.fleet.wallet(name) for name in agents},
        record=rt.record_revenue_claim,
        snapshot=rt.record_holdings,
    )
    collector.start()
    return len(collector.collect())


def shares_of(story: ProjectStory) -> dict[str, int]:
    """Holder address (lower case) -> shares."""
    return {holder.lower(): shares for holder, shares in story.pool.holders()}

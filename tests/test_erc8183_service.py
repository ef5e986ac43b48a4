"""The service end to end on an ERC-8183 market beside our TaskBoard, on both chains (py-evm and anvil): a client
hires one of our agents directly; the service discovers the funded job, gates it, produces, submits the deliverable
digest and collects what the market actually released (after its 2.5% platform fee: the reward recorded equals the
wallet's token balance change). Rejection and expiry (``claimRefund``) end the job; a budget below the profit gate,
too little time before ``expiredAt``, someone else's job and an open job nobody hired are never worked."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from orchestrator.adapters.chain import EthTesterChain
from orchestrator.app.service import retry_failed
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import dump_spec
from orchestrator.entry.bids import BidBook
from orchestrator.entry.config import BoardConfig
from orchestrator.entry.market import Market
from orchestrator.entry.web.routes.bids import bids_router
from orchestrator.entry.web.server import bind, serve_in_thread
from tests.conftest import ChainEnv
from tests.test_service_fixtures import World, build_world, profile, spec

S = TaskState
BUDGET = 10 * 10**18
FEE_BP = 250
DAY = 86_400


@dataclass
class MarketWorld:
    world: World
    market: Market
    env: ChainEnv | None

    @property
    def ada(self) -> str:
        return self.world.fleet.keystore.entry("ada").address

    def hire(self, title: str, *, budget: int = BUDGET, expires: int = 3 * DAY, provider: str | None = None) -> int:
        return self.market.post(
            spec(title),
            provider=provider or self.ada,
            evaluator=self.world.dao_signer.address,
            budget=budget,
            expired_at=self.world.now() + expires,
        ).job_id

    def state(self, job_id: int) -> TaskState | None:
        found = self.world.store.find_task(board="acp", task_key=str(job_id))
        return None if found is None else found.state

    def reason(self, job_id: int) -> str:
        found = self.world.store.find_task(board="acp", task_key=str(job_id))
        assert found is not None
        return found.state_reason or ""

    def events(self, name: str, job_id: int) -> int:
        abi = self.market.abi
        return len(
            self.world.chain.get_logs(
                address=self.market.address,
                topics=[abi.topic(name), job_id.to_bytes(32, "big")],
                from_block=self.world.start_block,
                to_block=self.world.chain.block_number(),
            )
        )

    def travel(self, seconds: int) -> None:
        chain = self.world.chain
        if isinstance(chain, EthTesterChain):
            chain.time_travel(seconds)
        else:
            chain.request("evm_increaseTime", [seconds])  # type: ignore[attr-defined]
            chain.request("evm_mine", [])  # type: ignore[attr-defined]


def market_world(env: ChainEnv, root: Path, world: World | None = None) -> MarketWorld:
    """A ``World`` (TaskBoard and token deployed, agent ada funded) plus our AgenticCommerce on the same token with
    a 2.5% fee, configured as a second board ``acp`` (``kind: erc8183``)."""
    world = world or build_world(env.chain, [a.private_key for a in env.accounts], root, agents=("ada",))
    treasury = env.sender(5).address
    address, block = Market.deploy(
        chain=world.chain, sender=world.dao_signer, token=world.dao.token, treasury=treasury, fee_bp=FEE_BP
    )
    return with_market(world, address, block, env=env)


def with_market(
    world: World, address: str, block: int, *, env: ChainEnv | None = None, bid_hosts: Sequence[str] = ("127.0.0.1",)
) -> MarketWorld:
    """``world`` with the market at ``address`` configured as board ``acp``, polled first (then the TaskBoard);
    the fleet may bid at ``bid_hosts``."""
    config = world.runtime.config
    acp = BoardConfig(name="acp", kind="erc8183", address=address, start_block=block, bid_hosts=list(bid_hosts))
    boards = [acp, BoardConfig(name="main")]
    runtime = dataclasses.replace(world.runtime, config=config.model_copy(update={"boards": boards}))
    world = dataclasses.replace(world, runtime=runtime)
    market = Market(chain=world.chain, signer=world.dao_signer, store=world.artifacts, address=address, name="acp")
    return MarketWorld(world, market, env)


@pytest.fixture
def mw(chain_env: ChainEnv, tmp_path: Path) -> MarketWorld:
    return market_world(chain_env, tmp_path)


def test_direct_hire_is_worked_and_paid_what_the_market_released(mw: MarketWorld) -> None:
    job = mw.hire("release notes")
    posted = mw.world.post("glossary")  # the TaskBoard is worked beside the market
    orch = mw.world.orchestrator([profile("ada")])
    orch.start()
    before = mw.world.dao.token_balance(mw.ada)
    orch.cycle()
    assert mw.state(job) is S.SUBMITTED
    assert mw.events("JobSubmitted", job) == 1
    stored = mw.world.store.find_task(board="acp", task_key=str(job))
    assert stored is not None and mw.market.board.status(str(job)).artifact_cid == stored.artifact_cid
    mw.market.complete(job, "good work")
    assert mw.world.approve_submitted() == [posted]
    assert orch.collect() == 2
    assert mw.state(job) is S.PAID
    net = BUDGET - BUDGET * FEE_BP // 10_000
    received = mw.world.dao.token_balance(mw.ada) - before
    assert received == net + 10 * 10**18  # the market's net and the TaskBoard's full reward
    found = mw.world.store.find_task(board="acp", task_key=str(job))
    assert found is not None
    pnl = mw.world.store.pnl_by_task()[found.id]
    assert pnl.rewards[mw.world.dao.token] == net and pnl.gas_wei > 0
    assert orch.collect() == 0 and orch.cycle().discovered == 0
    assert mw.events("JobSubmitted", job) == 1


def test_rejection_is_terminal_with_the_evaluators_reason(mw: MarketWorld) -> None:
    job = mw.hire("release notes")
    orch = mw.world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()
    assert mw.state(job) is S.SUBMITTED
    mw.market.reject(job, "off topic")
    assert any("rejected" in line for line in orch.reconcile())
    assert mw.state(job) is S.REJECTED and "off topic" in mw.reason(job)
    orch.cycle()
    assert mw.state(job) is S.REJECTED and mw.events("JobSubmitted", job) == 1


def test_expiry_with_claim_refund_is_a_loss(mw: MarketWorld) -> None:
    job = mw.hire("release notes", expires=2 * 3600)
    orch = mw.world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()
    assert mw.state(job) is S.SUBMITTED
    mw.travel(3 * 3600)
    mw.market.refund(job)
    orch.reconcile()
    assert mw.state(job) is S.REJECTED and "Expired" in mw.reason(job)
    found = mw.world.store.find_task(board="acp", task_key=str(job))
    assert found is not None
    pnl = mw.world.store.pnl_by_task()[found.id]
    assert pnl.rewards == {} and pnl.gas_wei > 0  # the gas of the submission is the loss
    assert orch.collect() == 0


def test_jobs_not_worth_it_or_not_ours_are_never_worked(mw: MarketWorld) -> None:
    cheap = mw.hire("a typo", budget=10**12)
    hurried = mw.hire("a novel", expires=30)  # matching.min_seconds_left is 60 in these tests
    assert mw.env is not None
    other = mw.hire("not for us", provider=mw.env.sender(3).address)
    unhired = mw.market.post(
        spec("open"),
        provider=None,
        evaluator=mw.world.dao_signer.address,
        budget=BUDGET,
        expired_at=mw.world.now() + DAY,
    ).job_id
    orch = mw.world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()
    assert mw.state(cheap) is S.SKIPPED and mw.reason(cheap).startswith("not worth it")
    assert mw.state(hurried) is S.SKIPPED and "min_seconds_left" in mw.reason(hurried)
    assert mw.state(other) is None  # never listed: another provider's
    assert mw.state(unhired) is S.DISCOVERED  # open without a bid endpoint: it waits for a hire (or its expiry)
    for job in (cheap, hurried):
        assert mw.events("JobSubmitted", job) == 0


def test_an_open_job_is_worked_once_hired_and_funded(mw: MarketWorld) -> None:
    job = mw.market.post(
        spec("open"),
        provider=None,
        evaluator=mw.world.dao_signer.address,
        budget=BUDGET,
        expired_at=mw.world.now() + DAY,
    ).job_id
    orch = mw.world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()
    assert mw.state(job) is S.DISCOVERED  # an open job waits: nothing to do until the client hires and funds
    mw.market.hire(job, mw.ada, BUDGET // 2)
    orch.cycle()
    assert mw.state(job) is S.SUBMITTED
    mw.market.complete(job, "ok")
    assert orch.collect() == 1 and mw.state(job) is S.PAID


def test_an_open_job_with_two_competing_bidders_one_hired_the_other_lost(
    mw: MarketWorld, chain_env: ChainEnv, tmp_path: Path
) -> None:
    """Two operators (two fleets: their own data folders, databases and keystores) on one chain bid on one open job
    whose spec names the client's bid endpoint (the ``/bids`` route, served on 127.0.0.1); the client lists the
    signed bids and hires one; that fleet works the job and is paid, the other's task ends LOST, never retried."""
    world_b = build_world(
        chain_env.chain,
        [a.private_key for a in chain_env.accounts],
        tmp_path / "operator-b",
        agents=("bob",),
        deployment=(mw.world.dao.token, mw.world.dao.board_address, mw.world.start_block),
    )
    mb = with_market(world_b, mw.market.address, mw.world.start_block, env=chain_env)
    book = BidBook(root=tmp_path / "client-bids", chain_id=chain_env.chain.chain_id, markets={"acp": mw.market.board})
    app = FastAPI()
    app.include_router(bids_router(book))
    with serve_in_thread(app, bind("127.0.0.1", 0)) as url:
        wanted = spec("an open job").model_copy(update={"bid_endpoint": f"{url}/bids"})
        inline = dump_spec(wanted).decode()  # inline JSON: each operator reads the spec from the chain
        evaluator, expires = mw.world.dao_signer.address, mw.world.now() + DAY
        job = mw.market.post(inline, provider=None, evaluator=evaluator, budget=BUDGET, expired_at=expires).job_id
        a, b = mw.world.orchestrator([profile("ada")]), mb.world.orchestrator([profile("bob")])
        a.start()
        b.start()
        a.cycle()
        b.cycle()
        bids = book.bids("acp", job)
        assert sorted(bid.bidder for bid in bids) == sorted([mw.ada, mb.world.fleet.keystore.entry("bob").address])
        assert all(0 < bid.amount <= BUDGET for bid in bids)
        assert mw.state(job) is S.CLAIMING and mb.state(job) is S.CLAIMING  # both wait for the client
        waiting = mw.world.store.find_task(board="acp", task_key=str(job))
        assert waiting is not None and "waiting for the client to hire" in (waiting.wait_reason or "")
        (winner,) = [bid for bid in bids if bid.bidder == mw.ada]
        mw.market.hire(job, winner.bidder, winner.amount)
        for orch, side in ((a, mw), (b, mb)):  # the bidders' backoff, skipped (as `deworker tasks retry` does)
            found = side.world.store.find_task(board="acp", task_key=str(job))
            assert found is not None
            retry_failed(repos=orch.repos, board=side.market.board, task_id=found.id, now=side.world.now(), actor="t")
            orch.cycle()
        assert mw.state(job) is S.SUBMITTED
        assert mb.state(job) is S.LOST and "not assigned to us" not in mb.reason(job)
        assert mw.ada in mb.reason(job)  # lost to the hired bidder ("board shows Submitted by <ada>")
        before = mw.world.dao.token_balance(mw.ada)
        mw.market.complete(job, "ok")
        assert a.collect() == 1 and mw.state(job) is S.PAID
        net = winner.amount - winner.amount * FEE_BP // 10_000  # paid at the winning bid, less the market's fee
        assert mw.world.dao.token_balance(mw.ada) - before == net
        found = mw.world.store.find_task(board="acp", task_key=str(job))
        assert found is not None and mw.world.store.pnl_by_task()[found.id].rewards[mw.world.dao.token] == net
        b.cycle()
        assert mb.state(job) is S.LOST and mw.events("JobSubmitted", job) == 1


def test_a_bid_endpoint_on_a_host_not_listed_gets_no_request(chain_env: ChainEnv, tmp_path: Path) -> None:
    """A job's text is untrusted: its bid endpoint names a host the operator did not list in boards[].bid_hosts,
    so the fleet signs nothing and sends nothing there; the task ends LOST with the reason, never retried."""
    mw = market_world(chain_env, tmp_path)
    mw = with_market(mw.world, mw.market.address, mw.world.start_block, env=chain_env, bid_hosts=["bids.example.org"])
    book = BidBook(root=tmp_path / "client-bids", chain_id=chain_env.chain.chain_id, markets={"acp": mw.market.board})
    app = FastAPI()
    app.include_router(bids_router(book))
    with serve_in_thread(app, bind("127.0.0.1", 0)) as url:
        wanted = spec("an open job").model_copy(update={"bid_endpoint": f"{url}/bids"})
        evaluator, expires = mw.world.dao_signer.address, mw.world.now() + DAY
        job = mw.market.post(
            dump_spec(wanted).decode(), provider=None, evaluator=evaluator, budget=BUDGET, expired_at=expires
        ).job_id
        orch = mw.world.orchestrator([profile("ada")])
        orch.start()
        orch.cycle()
        assert book.bids("acp", job) == []
        assert mw.state(job) is S.LOST
        assert "not in boards[].bid_hosts" in mw.reason(job) and "'127.0.0.1'" in mw.reason(job)
        orch.cycle()
        assert book.bids("acp", job) == [] and mw.state(job) is S.LOST

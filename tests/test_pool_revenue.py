"""The operator's side of project pools: ``RevenueCollector`` claims each agent's revenue through its own
policy-gated, journaled wallet when it reaches the threshold, exactly once across a SIGKILL at each new step
boundary (its own and the wallet's), and its income (from the chain's ``RevenueClaimed`` logs) equals the agent's
on-chain balance change.

The agent earns its shares the production way: the pool posts a task on the board, the agent's wallet claims and
submits it, the DAO approves, the veto window passes, anyone finalizes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.chain import AnvilProcess, EthTesterChain, RpcChain
from orchestrator.adapters.pools import ProjectPoolRevenue
from orchestrator.app.revenue import REVENUE_BOUNDARIES, RevenueCollector
from orchestrator.entry.dao_pool import Pool, abi, call, deploy_pool
from tests.test_service_fixtures import World, build_world
from wallets.errors import PolicyDenied

REPO = Path(__file__).resolve().parent.parent
CRASH_POINTS = [*REVENUE_BOUNDARIES, "wallet:journaled", "wallet:broadcast"]
VETO = 60
REVENUE = 1_000 * 10**18
ARTIFACT = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


def _advance(chain: Any, seconds: int) -> None:
    if isinstance(chain, EthTesterChain):
        chain.time_travel(seconds)
    else:
        chain.request("evm_increaseTime", [seconds])
        chain.request("evm_mine", [])


def earn_shares(world: World, agent: str = "ada", weight: int = 10) -> str:
    """A pool on the world's board whose only holder is ``agent``, with ``REVENUE`` deposited; returns its address."""
    dao = world.dao_signer
    token, board = world.dao.token, world.dao.board_address
    address = deploy_pool(
        sender=dao, name="Atlas", symbol="ATL", board=board, token=token, owner=dao.address, reviewer=dao.address,
        veto_window=VETO,
    )  # fmt: skip
    pool = Pool(chain=world.chain, address=address)
    pool.fund(dao, 10**18)
    deadline = world.chain.block(None).timestamp + 86_400
    task_id = pool.post(dao, spec_cid="bafy-spec", reward=10**17, deadline=deadline, weight=weight)
    wallet = world.fleet.wallet(agent)
    wallet.send(board, abi("TaskBoard").encode_call("claim", task_id))
    wallet.send(board, abi("TaskBoard").encode_call("submit", task_id, ARTIFACT))
    pool.approve(dao, task_id)
    _advance(world.chain, VETO + 1)
    pool.finalize(dao, task_id)
    pool.deposit(dao, token, REVENUE)
    return address


def collector(world: World, pool: str, **kwargs: Any) -> RevenueCollector:
    ada = world.fleet.wallet("ada")
    world.fleet.set_pool_holders({pool: [ada.address]})
    kwargs.setdefault("record", world.runtime.record_revenue_claim)
    kwargs.setdefault("snapshot", world.runtime.record_holdings)
    return RevenueCollector(pools=ProjectPoolRevenue(chain=world.chain, pools=[pool]), wallets={"ada": ada}, **kwargs)


def balance(world: World, who: str) -> int:
    return int(call(world.chain, world.dao.token, "RewardToken", "balanceOf", who))


def test_claims_above_the_threshold_once_and_income_is_the_balance_change(tmp_path: Path) -> None:
    chain = EthTesterChain()
    world = build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path, agents=("ada",))
    pool = earn_shares(world)
    ada = world.fleet.wallet("ada").address
    before = balance(world, ada)
    assert collector(world, pool, threshold=REVENUE + 1).collect() == []  # below the threshold: nothing sent
    rc = collector(world, pool, threshold=REVENUE)
    rc.start()
    (claim,) = rc.collect()
    assert (claim.holder, claim.amount, claim.token) == (ada, REVENUE, world.dao.token)
    assert rc.collect() == []  # nothing left to claim
    assert balance(world, ada) - before == REVENUE
    assert rc.income() == {("ada", pool, world.dao.token): REVENUE}


def test_the_gate_refuses_a_claim_from_a_wallet_that_holds_nothing(tmp_path: Path) -> None:
    chain = EthTesterChain()
    world = build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path, agents=("ada", "grace"))
    pool = earn_shares(world)
    world.fleet.set_pool_holders({pool: [world.fleet.wallet("ada").address]})
    grace = world.fleet.wallet("grace")
    nonce = chain.nonce(grace.address)
    with pytest.raises(PolicyDenied):
        grace.send(pool, abi("ProjectPool").encode_call("claim", world.dao.token))
    with pytest.raises(PolicyDenied):  # and a holder may do nothing else there
        world.fleet.wallet("ada").send(pool, abi("ProjectPool").encode_call("finalize", 1))
    assert chain.nonce(grace.address) == nonce


# ---------------------------------------------------------------------------------------------------- SIGKILL


def _killer(point: str) -> Any:
    def kill(name: str, *_: object) -> None:
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return kill


def worker(args: dict[str, Any]) -> None:
    """The process that gets killed: start + collect with a hook that SIGKILLs at ``args['point']``."""
    point: str = args["point"]
    token, board, block = args["deployment"]
    world = build_world(RpcChain(args["url"]), args["keys"], Path(args["root"]), agents=("ada",),
                        deployment=(token, board, block))  # fmt: skip
    rc = collector(world, args["pool"])
    if point.startswith("wallet:"):
        world.fleet.wallet("ada").boundary = _killer(point.removeprefix("wallet:"))
    else:
        rc.boundary = _killer(point)
    rc.start()
    rc.collect()
    raise SystemExit(f"the run never reached boundary {point!r}")


@pytest.mark.anvil
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_revenue_is_claimed_exactly_once_across_sigkill(
    anvil_snapshot: AnvilProcess, tmp_path: Path, point: str
) -> None:
    keys = [
        a.private_key.hex() if isinstance(a.private_key, bytes) else a.private_key
        for a in anvil_snapshot.dev_accounts()
    ]
    with RpcChain(anvil_snapshot.url) as chain:
        world = build_world(chain, keys, tmp_path, agents=("ada",))
        pool = earn_shares(world)
        ada = world.fleet.wallet("ada").address
        before = balance(world, ada)
        args = {
            "point": point,
            "url": anvil_snapshot.url,
            "keys": keys,
            "root": str(tmp_path),
            "deployment": [world.dao.token, world.dao.board_address, world.start_block],
            "pool": pool,
        }
        proc = subprocess.run(
            [sys.executable, "-m", "tests.test_pool_revenue", json.dumps(args)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

        deployment = (world.dao.token, world.dao.board_address, world.start_block)
        restarted_world = build_world(chain, keys, tmp_path, agents=("ada",), deployment=deployment)
        restarted = collector(restarted_world, pool)
        restarted.start()
        restarted.collect()
        restarted.collect()  # collecting again claims nothing twice
        claims = ProjectPoolRevenue(chain=chain, pools=[pool]).claims(ada)
        assert len(claims) == 1, point
        assert claims[0].amount == REVENUE
        assert balance(world, ada) - before == REVENUE
        assert restarted.income() == {("ada", pool, world.dao.token): REVENUE}
        assert int(call(chain, pool, "ProjectPool", "claimable", ada, world.dao.token)) == 0
        # the ledger holds the claim exactly once, and the P&L's revenue is the balance change
        ledger = restarted_world.runtime.db
        assert [(c.agent, c.amount, c.tx_hash) for c in ledger.revenue_claims()] == [
            ("ada", REVENUE, claims[0].tx_hash)
        ], point
        assert ledger.pnl_by_agent()["ada"].revenue == {(pool, world.dao.token): REVENUE}


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))


def test_deworker_runs_upkeep_claims_the_configured_pools(tmp_path: Path) -> None:
    """The runtime's scheduler upkeep (what `deworker run` runs on the reconcile interval) claims ``revenue.pools``'
    revenue for the running agents; the gate learns the holders from the pool itself."""
    from orchestrator.entry.config import RevenueConfig
    from tests.test_service_fixtures import profile

    chain = EthTesterChain()
    world = build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path, agents=("ada",))
    pool = earn_shares(world)
    rt = world.runtime
    rt.config = rt.config.model_copy(update={"revenue": RevenueConfig(pools=[pool], claim_threshold=10**18)})
    ada = world.fleet.wallet("ada").address
    before = balance(world, ada)
    world.fleet.set_pool_holders({})  # the gate knows no holder yet: the upkeep reads them from the pool
    runner = rt.scheduler(world.orchestrator([profile("ada")]))
    assert runner.upkeep_step is not None
    assert "revenue claimed: 1" in str(runner.upkeep_step())
    assert "revenue claimed" not in str(runner.upkeep_step())  # nothing left
    assert balance(world, ada) - before == REVENUE


def test_rewards_show_shares_bounty_and_revenue_per_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`deworker rewards` adds, per agent and project pool (``revenue.pools``), the shares held, the bounties of
    the pool's tasks it did, the revenue claimed and what it may still claim; all read from the chain."""
    from typer.testing import CliRunner

    from orchestrator.entry.cli import context
    from orchestrator.entry.cli import main as cli
    from orchestrator.entry.cli import service as service_cli
    from orchestrator.entry.config import RevenueConfig

    chain = EthTesterChain()
    world = build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path, agents=("ada",))
    pool = earn_shares(world, weight=25)
    rt = world.runtime
    rt.config = rt.config.model_copy(update={"revenue": RevenueConfig(pools=[pool])})
    rc = collector(world, pool)
    rc.collect()
    # the ledger's snapshot for the web dashboard: the shares, and nothing left to claim once it was claimed
    (held,) = world.store.holdings()
    assert (held.agent, held.pool, held.token, held.shares, held.claimable) == ("ada", pool, world.dao.token, 25, 0)
    Pool(chain=chain, address=pool).deposit(world.dao_signer, world.dao.token, 5 * 10**18)  # not claimed yet
    rc.threshold = 6 * 10**18  # above what is claimable now: read, not claimed
    assert rc.collect() == []
    (held,) = world.store.holdings()
    assert (held.shares, held.claimable) == (25, 5 * 10**18)
    rc.threshold = 1
    previous = context.use_runtime_factory(lambda _cfg: rt)
    monkeypatch.setattr(service_cli.console, "width", 250)
    try:
        config = tmp_path / "c.yaml"
        config.write_text(f"data_dir: {tmp_path}\n")
        out = CliRunner().invoke(cli.app, ["--config", str(config), "rewards", "--json"])
        assert out.exit_code == 0, out.output
        (row,) = json.loads(out.output)["pools"]
        token = world.dao.token
        assert row["agent"] == "ada" and row["pool"] == pool and row["shares"] == 25
        assert row["bounty"] == {token: str(10**17)}
        assert row["revenue_claimed"] == {token: str(REVENUE)}
        assert row["revenue_claimable"] == {token: str(5 * 10**18)}
        # the database P&L (the ledger's revenue_claim rows) agrees with the chain's RevenueClaimed logs
        (agent,) = json.loads(out.output)["agents"]
        assert agent["agent"] == "ada"
        assert agent["revenue"] == [{"pool": pool, "token": token, "amount": row["revenue_claimed"][token]}]
        table = CliRunner().invoke(cli.app, ["--config", str(config), "rewards"])
        assert table.exit_code == 0 and "Project pools" in table.output and "Atlas" in table.output
    finally:
        context.use_runtime_factory(previous)

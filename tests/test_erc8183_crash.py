"""SIGKILL the orchestrator at every step boundary while it works an ERC-8183 market, restart it, and check the
market's event log: exactly one ``JobSubmitted`` per job, every job paid, the rewards recorded equal the agent's
token balance change (the market keeps a 2.5% fee). As tests/test_crash.py does for the TaskBoard: the chain is the
session's anvil; the database, journal, keystores and CID store are files in ``tmp_path``; the killed run is a
subprocess (``python -m tests.test_erc8183_crash``) and the restart runs here with nothing in memory from it.

A job market assigns its jobs, so nothing is claimed: the ``claim-mined`` boundary is never reached (there is no
claim transaction) and is not a crash point here.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.chain import AnvilProcess, RpcChain
from orchestrator.app.service import BOUNDARIES
from orchestrator.domain.lifecycle import TaskState
from orchestrator.entry.market import Market
from tests.test_crash import WALLET_BOUNDARIES, _killer
from tests.test_erc8183_service import BUDGET, FEE_BP, MarketWorld, with_market
from tests.test_service_fixtures import build_world, profile

REPO = Path(__file__).resolve().parent.parent
CRASH_POINTS = [*(b for b in BOUNDARIES if b != "claim-mined"), *(f"wallet:{b}" for b in WALLET_BOUNDARIES)]
AGENTS = ("ada",)


def _world(args: dict[str, Any], chain: RpcChain) -> MarketWorld:
    token, board, block = args["deployment"]
    world = build_world(chain, args["keys"], Path(args["root"]), agents=AGENTS, deployment=(token, board, block))
    address, market_block = args["market"]
    return with_market(world, address, market_block)


def worker(args: dict[str, Any]) -> None:
    """The process that gets killed: one cycle with a hook that SIGKILLs at ``args['point']``."""
    point: str = args["point"]
    mw = _world(args, RpcChain(args["url"]))
    orch = mw.world.orchestrator([profile(a) for a in AGENTS])
    if point.startswith("wallet:"):
        mw.world.fleet.wallet("ada").boundary = _killer(point.removeprefix("wallet:"))
    else:
        orch.boundary = _killer(point)
    orch.start()
    orch.cycle()
    raise SystemExit(f"the run never reached boundary {point!r}")


def _complete_submitted(mw: MarketWorld, jobs: list[int]) -> list[int]:
    done = []
    for job in jobs:
        if mw.market.board.status(str(job)).status_text == "Submitted":
            mw.market.complete(job, "ok")
            done.append(job)
    return done


@pytest.mark.anvil
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at_every_boundary_on_a_market(anvil_snapshot: AnvilProcess, tmp_path: Path, point: str) -> None:
    keys = [
        a.private_key.hex() if isinstance(a.private_key, bytes) else a.private_key
        for a in anvil_snapshot.dev_accounts()
    ]
    chain = RpcChain(anvil_snapshot.url)
    with chain:
        world = build_world(chain, keys, tmp_path, agents=AGENTS)
        treasury = "0x" + "77" * 20
        address, block = Market.deploy(
            chain=chain, sender=world.dao_signer, token=world.dao.token, treasury=treasury, fee_bp=FEE_BP
        )
        world = (mw := with_market(world, address, block)).world
        before = world.dao.token_balance(mw.ada)
        jobs = [mw.hire("release notes"), mw.hire("glossary")]
        if point == "collected":
            first = world.orchestrator([profile(a) for a in AGENTS])
            first.start()
            for _ in range(3):
                first.cycle()
            assert sorted(_complete_submitted(mw, jobs)) == jobs
        args = {
            "point": point,
            "url": anvil_snapshot.url,
            "keys": keys,
            "root": str(tmp_path),
            "deployment": [world.dao.token, world.dao.board_address, world.start_block],
            "market": [address, block],
        }
        proc = subprocess.run(
            [sys.executable, "-m", "tests.test_erc8183_crash", json.dumps(args)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

        restarted = world.orchestrator([profile(a) for a in AGENTS])
        restarted.start()
        for _ in range(3):
            restarted.cycle()
        if point != "collected":
            assert sorted(_complete_submitted(mw, jobs)) == jobs
        restarted.collect()
        restarted.collect()  # collecting again records nothing twice

        for job in jobs:
            assert mw.events("JobSubmitted", job) == 1, point
        stored = [t for t in world.store.tasks() if t.board == "acp"]
        assert {t.state for t in stored} == {TaskState.PAID}, point
        gas = world.store.pnl_by_task()
        for t in stored:
            assert t.submit_tx_hash is not None, point
            receipt = chain.receipt(t.submit_tx_hash)
            assert receipt is not None and gas[t.id].gas_wei == receipt.fee_wei, point
            assert t.artifact_cid is not None and world.artifacts.has(t.artifact_cid)
            assert mw.market.board.status(t.task_key).artifact_cid == t.artifact_cid
        received = world.dao.token_balance(mw.ada) - before
        assert received == 2 * (BUDGET - BUDGET * FEE_BP // 10_000)
        assert world.store.pnl_by_agent()["ada"].rewards[world.dao.token] == received


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))

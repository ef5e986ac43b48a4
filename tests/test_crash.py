"""Kill the orchestrator with SIGKILL at every step boundary, restart it, and check the board's event log: exactly
one claim and one submit transaction per task, no artifact lost, every task paid.

The chain is the session's anvil (it outlives the killed process); the database, the wallet journal, keystores
and the CID store are files in ``tmp_path``. The killed run is a subprocess (``python -m tests.test_crash``); the
restart runs in the test process, with nothing in memory from the first run.
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

from orchestrator.adapters.chain import AnvilProcess, RpcChain
from orchestrator.app.service import BOUNDARIES
from orchestrator.domain.lifecycle import TaskState
from tests.test_service import events
from tests.test_service_fixtures import World, build_world, profile

REPO = Path(__file__).resolve().parent.parent
WALLET_BOUNDARIES = ("journaled", "broadcast")
#: Every step boundary of the service and of the wallet. For "collected" the tasks are submitted and approved by
#: the DAO before the killed run, so that run's collect records the payouts and dies before saving its cursor.
CRASH_POINTS = [*BOUNDARIES, *(f"wallet:{b}" for b in WALLET_BOUNDARIES)]
AGENTS = ("ada",)


def _world(url: str, keys: list[str], root: Path, deployment: tuple[str, str, int] | None) -> tuple[RpcChain, World]:
    chain = RpcChain(url)
    return chain, build_world(chain, keys, root, agents=AGENTS, deployment=deployment)


def _killer(point: str) -> Any:
    def kill(name: str, *_: object) -> None:
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return kill


def worker(args: dict[str, Any]) -> None:
    """The process that gets killed: one orchestrator cycle with a hook that SIGKILLs at ``args['point']``."""
    point: str = args["point"]
    token, board, block = args["deployment"]
    _chain, world = _world(args["url"], args["keys"], Path(args["root"]), (token, board, block))
    orch = world.orchestrator([profile(a) for a in AGENTS])
    if point.startswith("wallet:"):
        world.fleet.wallet("ada").boundary = _killer(point.removeprefix("wallet:"))
    else:
        orch.boundary = _killer(point)
    orch.start()
    orch.cycle()
    raise SystemExit(f"the run never reached boundary {point!r}")


@pytest.mark.anvil
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at_every_boundary(anvil_snapshot: AnvilProcess, tmp_path: Path, point: str) -> None:
    keys = [
        a.private_key.hex() if isinstance(a.private_key, bytes) else a.private_key
        for a in anvil_snapshot.dev_accounts()
    ]
    chain, world = _world(anvil_snapshot.url, keys, tmp_path, None)
    with chain:
        tasks = [world.post("release notes"), world.post("glossary")]
        deployment = [world.dao.token, world.dao.board_address, world.start_block]
        if point == "collected":
            first = world.orchestrator([profile(a) for a in AGENTS])
            first.start()
            for _ in range(3):
                first.cycle()
            assert sorted(world.approve_submitted()) == tasks
        args = {
            "point": point,
            "url": anvil_snapshot.url,
            "keys": keys,
            "root": str(tmp_path),
            "deployment": deployment,
        }
        proc = subprocess.run(
            [sys.executable, "-m", "tests.test_crash", json.dumps(args)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

        restarted = world.orchestrator([profile(a) for a in AGENTS])
        restarted.start()
        for _ in range(3):  # one agent holds at most two tasks: a few cycles settle everything
            restarted.cycle()
        if point != "collected":
            assert sorted(world.approve_submitted()) == tasks
        restarted.collect()
        restarted.collect()  # collecting again records nothing twice

        for task in tasks:
            assert events(world, "TaskClaimed", task) == 1, point
            assert events(world, "TaskSubmitted", task) == 1, point
        stored = world.store.tasks()
        assert {t.state for t in stored} == {TaskState.PAID}
        gas = world.store.pnl_by_task()
        for t in stored:
            # Gas is attributed even for a claim or submission the restart found confirmed on the board.
            assert t.claim_tx_hash is not None and t.submit_tx_hash is not None, point
            receipts = [chain.receipt(h) for h in (t.claim_tx_hash, t.submit_tx_hash)]
            assert gas[t.id].gas_wei == sum(r.fee_wei for r in receipts if r is not None), point
            assert t.artifact_cid is not None and world.artifacts.has(t.artifact_cid)
            assert world.board.status(t.task_key).artifact_cid == t.artifact_cid
        address = world.fleet.keystore.entry("ada").address
        assert world.store.pnl_by_agent()["ada"].rewards[world.dao.token] == world.dao.token_balance(address)


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))

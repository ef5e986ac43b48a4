"""The orchestrator through a faulty JSON-RPC link: a proxy on 127.0.0.1 in front of anvil answers 429, loses the
node's answers after forwarding (the request did reach the node) and delays past the client's timeout. Nothing may
be lost or duplicated: every task ends SUBMITTED with exactly one claim and one submit event, then PAID."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.chain import AnvilProcess
from orchestrator.domain.lifecycle import TaskState
from tests.test_chain import Action, FaultProxy, _rpc
from tests.test_service import events
from tests.test_service_fixtures import build_world, profile


@pytest.mark.anvil
def test_faulty_rpc_loses_and_duplicates_nothing(anvil_snapshot: AnvilProcess, tmp_path: Path) -> None:
    armed = False
    faults: dict[str, int] = {"429": 0, "lost": 0, "timeout": 0}

    def plan(request: dict[str, Any], index: int) -> Action:
        if not armed:
            return None
        if index % 5 == 1:
            faults["429"] += 1
            return 429, {"error": "rate limited"}
        if index % 7 == 3:
            faults["lost"] += 1
            return "lost"
        return None

    def delay(index: int) -> float:
        if armed and index % 11 == 6:
            faults["timeout"] += 1
            return 0.6  # past the client's 0.4 s timeout; the proxy still forwards the request afterwards
        return 0.0

    with FaultProxy(anvil_snapshot.url, plan, delay) as proxy:
        chain = _rpc(proxy.url, timeout=0.4, retries=8)
        keys = [a.private_key for a in anvil_snapshot.dev_accounts()]
        world = build_world(chain, keys, tmp_path)
        tasks = [world.post(f"notes {i}") for i in range(3)]
        orch = world.orchestrator([profile("ada"), profile("grace")])
        armed = True
        orch.start()
        for _ in range(10):
            orch.cycle()
            if {t.state for t in world.store.tasks()} == {TaskState.SUBMITTED}:
                break
        armed = False
        assert {t.state for t in world.store.tasks()} == {TaskState.SUBMITTED}
        assert sorted(world.approve_submitted()) == tasks
        assert orch.collect() == 3
        for task in tasks:
            assert events(world, "TaskClaimed", task) == 1 and events(world, "TaskSubmitted", task) == 1
        pnl = world.store.pnl_by_agent()
        for name in ("ada", "grace"):
            address = world.fleet.keystore.entry(name).address
            assert pnl[name].rewards.get(world.dao.token, 0) == world.dao.token_balance(address)
        assert min(faults.values()) > 0, faults
        assert proxy.count("eth_sendRawTransaction") >= 6

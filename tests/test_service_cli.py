"""``deworker status | tasks | rewards``: the service's read-only commands over a database the service filled
(a real run on the in-process chain: two tasks paid, one skipped)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import cli, service_cli
from orchestrator.chain import EthTesterChain
from orchestrator.service_cli import earnings_by_day, earnings_chart, service_app
from tests.test_service_fixtures import World, build_world, profile


@pytest.fixture
def paid_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    chain = EthTesterChain()
    world = build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path)
    world.post("release notes", "10")
    world.post("glossary", "5")
    world.post("rust crate", "10", skills=["rust"])
    orch = world.orchestrator([profile("ada"), profile("grace")])
    orch.start()
    orch.cycle()
    world.approve_submitted()
    orch.collect()
    monkeypatch.setenv("DEWORKER_DATA_DIR", str(tmp_path))  # the CLI opens <data_dir>/deworker.db
    monkeypatch.setattr(cli.state, "_config", None)
    monkeypatch.setattr(service_cli.console, "width", 250)  # no wrapped cells
    return world


def invoke(*args: str) -> str:
    result = CliRunner().invoke(service_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_status_shows_the_fleet_and_earnings(paid_world: World) -> None:
    out = invoke("status")
    assert "ada" in out and "grace" in out
    assert "idle" in out  # nothing in hand after everything was paid
    assert "10" in out and "5" in out


def test_tasks_filters_by_state_and_shows_reasons(paid_world: World) -> None:
    everything = invoke("tasks")
    assert "PAID" in everything and "SKIPPED" in everything
    skipped = invoke("tasks", "--state", "skipped")
    assert "no agent has all the skills ['rust']" in skipped
    assert "PAID" not in skipped


def test_rewards_pnl_and_chart(paid_world: World) -> None:
    out = invoke("rewards")
    assert "P&L per agent" in out and "P&L per task" in out
    days = earnings_by_day(paid_world.store)
    assert sum(days.values()) == 15 * 10**18
    assert earnings_chart(days, decimals=18) in out.replace("\n\n", "\n")


def test_chart_scales_bars() -> None:
    chart = earnings_chart({"2026-01-01": 10, "2026-01-02": 5}, decimals=0, width=10)
    assert chart.splitlines() == ["2026-01-01 ██████████ 10", "2026-01-02 █████ 5"]
    assert earnings_chart({}, decimals=18) == "no rewards yet"

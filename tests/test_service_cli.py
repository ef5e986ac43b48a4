"""``deworker status | tasks | rewards``: the service's read-only commands over a database the service filled
(a real run on the in-process chain: two tasks paid, one skipped)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import cli, service_cli
from orchestrator.bootstrap import AddressBook, Deployment
from orchestrator.chain import EthTesterChain
from orchestrator.service_cli import earnings_chart, service_app
from orchestrator.store import make_engine
from orchestrator.store.queries import DayMoney, Queries
from orchestrator.tokens import TokenBook, TokenInfo
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
    # what `deworker dao deploy` records: the CLI shows the DAO token's amounts with dao.token_symbol/decimals
    AddressBook(tmp_path / "addresses.json").save(
        Deployment(chain_id=chain.chain_id, token=world.dao.token, board=world.dao.board_address, block=0)
    )
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
    # ada took both writing tasks (one agent holds two): 10 + 5 DWR, by dao.token_symbol and dao.token_decimals
    ada = next(line for line in out.splitlines() if "│ ada" in line)
    assert "│ 2 " in ada and "15 DWR" in ada


def test_tasks_filters_by_state_pages_and_shows_reasons(paid_world: World) -> None:
    everything = invoke("tasks")
    assert "PAID" in everything and "SKIPPED" in everything and "1-3 of 3" in everything
    skipped = invoke("tasks", "--state", "skipped")
    assert "no agent has all the skills ['rust']" in skipped
    assert "PAID" not in skipped
    newest = invoke("tasks", "--limit", "1")
    assert "1-1 of 3" in newest and "rust crate" in newest and "glossary" not in newest
    second = invoke("tasks", "--limit", "1", "--page", "2")
    assert "2-2 of 3" in second and "glossary" in second


def test_rewards_pnl_and_chart(paid_world: World, tmp_path: Path) -> None:
    out = invoke("rewards")
    assert "P&L per agent" in out and "P&L per task" in out
    days = Queries(make_engine(f"sqlite:///{tmp_path / 'deworker.db'}")).money_by_day()
    assert sum(sum(d.rewards.values()) for d in days) == 15 * 10**18  # what the board paid, from the reward table
    assert "Rewards received per day" in out and "15 DWR" in out


def test_chart_scales_bars_per_token() -> None:
    token, other = "0x" + "d0" * 20, "0x" + "e0" * 20
    book = TokenBook([TokenInfo(token, "DWR", 0)])
    days = [
        DayMoney(day=date(2026, 1, 1), rewards={token: 10}),
        DayMoney(day=date(2026, 1, 2), rewards={token: 5, other: 7}),
    ]
    chart = earnings_chart(days, book, width=10)
    assert chart.splitlines() == [
        "DWR",
        "2026-01-01 ██████████ 10 DWR",
        "2026-01-02 █████ 5 DWR",
        "",
        other,
        "2026-01-02 ██████████ 7 units of 0xe0e0…e0e0",
    ]
    assert earnings_chart([], book) == "no rewards yet"


def test_task_text_is_shown_as_written_never_as_terminal_markup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a DAO's title is untrusted: rich markup in it (colours, terminal hyperlinks) is printed literally
    chain = EthTesterChain()
    world = build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path)
    hostile = "[red]Urgent[/red] [link=https://evil.example]claim here[/link]"
    world.post(hostile, "10", skills=["rust"])
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()
    monkeypatch.setenv("DEWORKER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cli.state, "_config", None)
    monkeypatch.setattr(service_cli.console, "width", 250)
    out = invoke("tasks")
    assert hostile in out and "SKIPPED" in out

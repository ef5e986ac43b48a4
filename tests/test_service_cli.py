"""``deworker status | tasks | rewards``: the service's read-only commands over a database the service filled
(a real run on the in-process chain: two tasks paid, one skipped)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.adapters.boards.onchain import WORK_FUNCTIONS
from orchestrator.adapters.chain import EthTesterChain
from orchestrator.adapters.sql import make_engine
from orchestrator.adapters.sql.queries import DayMoney, Queries
from orchestrator.domain.money import TokenBook, TokenInfo
from orchestrator.entry.bootstrap import AddressBook, Deployment
from orchestrator.entry.cli import context
from orchestrator.entry.cli import main as cli
from orchestrator.entry.cli import service as service_cli
from orchestrator.entry.cli.review import review_app
from orchestrator.entry.cli.service import earnings_chart, service_app
from orchestrator.entry.listing import short
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
    monkeypatch.setattr(context.state, "_config", None)
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
    assert re.search(r"│ +2 │ 15 DWR │", ada), ada


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
    assert "Received per day (UTC): bounties and pool revenue" in out and "15 DWR" in out


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
    monkeypatch.setattr(context.state, "_config", None)
    monkeypatch.setattr(service_cli.console, "width", 250)
    out = invoke("tasks")
    assert hostile in out and "SKIPPED" in out


# ------------------------------------------------------------------------------- 80 columns, --wide, --json


def unbroken(out: str, words: Iterable[str], *, width: int = 80) -> None:
    """Every line fits ``width``, and each of ``words`` (identifiers, states, title words) is whole on a line."""
    lines = out.splitlines()
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, f"lines wider than {width}:\n" + "\n".join(too_long)
    # rich crops a table wider than the console: its rows would lose their right border
    cropped = [line for line in lines if line[:1] in "┏┃┡│└" and line.rstrip()[-1:] not in "┓┃┩│┘"]
    assert not cropped, "table cut off at the right:\n" + "\n".join(cropped)
    for word in words:
        assert any(word in line for line in lines), f"{word!r} is broken across lines (or missing):\n{out}"


@pytest.fixture
def narrow(paid_world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(service_cli.console, "width", 80)
    return paid_world


def test_status_at_80_columns_breaks_no_identifier_or_word(narrow: World) -> None:
    agents = json.loads(invoke("status", "--json"))["agents"]
    assert {a["agent"] for a in agents} == {"ada", "grace"}
    ada = next(a for a in agents if a["agent"] == "ada")
    assert ada["tasks_paid"] == 2 and ada["rewards"] == {narrow.dao.token: str(15 * 10**18)}  # wei, as a string
    assert int(ada["gas_wei"]) > 0 and ada["address"].startswith("0x") and len(ada["address"]) == 42
    out = invoke("status")
    unbroken(out, [short(a["address"]) for a in agents] + ["ada", "grace", "idle", "15 DWR"])
    assert ada["address"] not in out  # shortened: 0x683F…4887
    wide = invoke("status", "--wide")
    assert ada["address"] in wide and "gas (ETH)" in wide and "LLM ($)" in wide


def test_tasks_at_80_columns_breaks_no_identifier_or_word(narrow: World) -> None:
    page = json.loads(invoke("tasks", "--json"))
    assert page["total"] == 3 and [t["id"] for t in page["tasks"]] == [3, 2, 1]
    paid = [t for t in page["tasks"] if t["state"] == "PAID"]
    assert {t["reward"] for t in paid} == {str(10 * 10**18), str(5 * 10**18)}  # base units, as strings
    assert all(t["reason"].startswith("paid ") and " DWR in block " in t["reason"] for t in paid)  # item 2
    out = invoke("tasks")
    words = ["SKIPPED", "PAID", "ada", "10 DWR", "5 DWR", "Tasks 1-3 of 3, newest first"]
    words += [w for t in page["tasks"] for w in (t["title"] or "").split()]
    words += [w for t in page["tasks"] for w in (t["reason"] or "").split()]
    unbroken(out, words)
    assert "0x" + narrow.dao.token[2:] not in out  # no raw token address: amounts in DWR
    empty = invoke("tasks", "--state", "failed")
    assert "No tasks in FAILED yet" in empty
    beyond = invoke("tasks", "--page", "9")
    assert "there are 3 (try --page 1)" in beyond


def test_agents_and_rewards_at_80_columns(narrow: World, tmp_path: Path) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "agents:\n  profiles:\n"
        "    - {name: ada, skills: [writing, python, documentation], wallet: ada, model: {model: qwen2.5-coder}}\n"
        "    - {name: grace, skills: [rust], wallet: grace, model: {model: m, base_url: 'http://127.0.0.1:9/v1'}}\n"
    )
    result = CliRunner().invoke(cli.app, ["--config", str(config), "agents", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0] == {
        "agent": "ada",
        "skills": ["writing", "python", "documentation"],
        "model": "qwen2.5-coder",
        "endpoint": None,
        "wallet": "ada",
    }
    out = CliRunner().invoke(cli.app, ["--config", str(config), "agents"]).output
    unbroken(out, ["ada", "grace", "writing,", "documentation", "qwen2.5-coder", "embedded", "http://127.0.0.1:9/v1"])

    money = json.loads(invoke("rewards", "--json"))
    ada = next(a for a in money["agents"] if a["agent"] == "ada")
    assert ada["rewards"] == {narrow.dao.token: str(15 * 10**18)} and int(ada["gas_wei"]) > 0
    assert sum(int(v) for d in money["days"] for v in d["rewards"].values()) == 15 * 10**18
    unbroken(invoke("rewards"), ["ada", "15 DWR", "P&L per task"])


def test_status_on_a_fresh_database_shows_the_configured_agents(tmp_path: Path) -> None:
    from tests.test_wallet_fixtures import PASSPHRASE
    from wallets.keystore import Keystore

    entry = Keystore(tmp_path / "keystores", weak_kdf_for_tests=True, scrypt_n=2).create("ada", PASSPHRASE)
    config = tmp_path / "fresh.yaml"
    config.write_text(
        f"data_dir: {tmp_path}\nagents:\n  profiles:\n"
        "    - {name: ada, skills: [writing], wallet: ada}\n    - {name: grace, skills: [rust], wallet: grace}\n"
    )
    result = CliRunner().invoke(cli.app, ["--config", str(config), "status", "--json"])
    assert result.exit_code == 0, result.output
    agents = json.loads(result.output)["agents"]
    assert [(a["agent"], a["address"], a["tasks_paid"]) for a in agents] == [
        ("ada", entry.address, 0),
        ("grace", None, 0),  # no keystore yet
    ]


def test_review_list_at_80_columns_and_when_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.entry.cli import review as web_cli

    chain = EthTesterChain()
    world = build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path)
    monkeypatch.setenv("DEWORKER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(context.state, "_config", None)
    monkeypatch.setattr(web_cli.console, "width", 80)
    empty = CliRunner().invoke(review_app, ["list"])
    assert empty.exit_code == 0 and "the review queue is empty" in empty.output
    assert json.loads(CliRunner().invoke(review_app, ["list", "--json"]).output) == []
    world.post("release notes for the autumn version of the protocol", "10")
    world.post("glossary", "5")
    orch = world.orchestrator([profile("ada"), profile("grace")], review_mode="human")
    orch.start()
    orch.cycle()
    pending = json.loads(CliRunner().invoke(review_app, ["list", "--json"]).output)
    assert len(pending) == 2 and {p["agent"] for p in pending} <= {"ada", "grace"}
    assert all(p["artifact_cid"].startswith("baf") and p["self_check"] for p in pending)
    out = CliRunner().invoke(review_app, ["list"]).output
    words = [short(p["artifact_cid"]) for p in pending] + [str(p["task_id"]) for p in pending]
    words += [w for p in pending for w in p["title"].split()] + [p["self_check"] for p in pending]
    unbroken(out, words)
    assert pending[0]["artifact_cid"] not in out
    wide = CliRunner().invoke(review_app, ["list", "--wide"]).output
    assert all(p["artifact_cid"] in wide for p in pending)


def test_short_identifiers() -> None:
    assert short("0x2e2987ad5c9e5a5e1d1c9d0bd54f6ed2aa5a3971") == "0x2e29…3971"
    assert short("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi") == "bafy…5fbzdi"
    assert short("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", wide=True).endswith("55fbzdi")
    assert short(None) == "-" and short("ada") == "ada"


def test_wallet_sweep_and_list_speak_token_units(narrow: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.entry.cli import wallet as wallet_cli
    from tests.test_wallet_fixtures import PASSPHRASE
    from wallets.config import TokenConfig
    from wallets.fleet import WalletFleet

    treasury = "0x" + "77" * 20
    token = TokenConfig(address=narrow.dao.token, symbol="DWR", decimals=18)
    config = narrow.fleet.config.model_copy(update={"treasury": treasury, "tokens": [token]})
    fleet = WalletFleet(
        config=config,
        keystore=narrow.fleet.keystore,
        journal=narrow.fleet.journal,
        chain=narrow.chain,
        passphrase=lambda: PASSPHRASE,
        boards={narrow.dao.board_address: list(WORK_FUNCTIONS)},
    )
    previous = wallet_cli.fleet_factory
    wallet_cli.use_fleet_factory(lambda: fleet)
    monkeypatch.setattr(wallet_cli.console, "width", 80)
    try:
        listed = json.loads(CliRunner().invoke(wallet_cli.wallet_app, ["list", "--json"]).output)
        ada = next(w for w in listed["wallets"] if w["name"] == "ada")
        assert ada["tokens"] == {narrow.dao.token: str(15 * 10**18)} and int(ada["native_wei"]) > 0
        table = CliRunner().invoke(wallet_cli.wallet_app, ["list"]).output
        unbroken(table, ["ada", "grace", short(ada["address"]), "15", "DWR"])
        swept = CliRunner().invoke(wallet_cli.wallet_app, ["sweep", "ada"])
        assert swept.exit_code == 0, swept.output
        # issue 15 item 2: "swept 15 DWR", never "swept 15000000000000000000 DWR"
        assert re.fullmatch(r"ada: swept 15 DWR and [0-9.]+ ETH in 2 tx\n", swept.output), swept.output
    finally:
        wallet_cli.use_fleet_factory(previous)

"""``deworker dao pool ...``, ``dao governor deploy`` and the vote commands through Typer's runner, on one
in-process chain: the DAO deploys a board, a governor and two pools (one owned by the governor's timelock and
funded by a vote, one owned by the DAO account), posts a weighted task, an agent does it, the DAO approves, vetoes,
approves again, finalizes after the window, deposits revenue, and `pool show` reports it all."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner, Result

from orchestrator.adapters.chain import EthTesterChain, TxSender
from orchestrator.domain.errors import ConfigError, TransactionReverted
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.cli import context
from orchestrator.entry.cli import main as cli
from orchestrator.entry.cli import pool as pool_cli
from orchestrator.entry.dao_pool import Pool, abi, call
from tests.conftest import ETH_TESTER_CHAIN_ID

REPO = Path(__file__).resolve().parents[1]
GLOSSARY = json.loads((REPO / "orchestrator/demo_tasks/04-glossary.json").read_text())["spec"]
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
ARTIFACT = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


@dataclass
class Dao:
    chain: EthTesterChain
    config: Path
    token: str
    board: str
    agent: TxSender
    spec: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli.app, ["--config", str(self.config), *args])

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
        return result.output

    def balance(self, token: str, who: str) -> int:
        return int(call(self.chain, token, "RewardToken", "balanceOf", who))


@pytest.fixture
def dao(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dao]:
    chain = EthTesterChain()
    previous = context.use_runtime_factory(lambda cfg: Runtime(cfg, chain_override=chain))
    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(pool_cli.console, "width", 250)
    try:
        config = tmp_path / "dao.yaml"
        config.write_text(f"data_dir: {tmp_path / 'data'}\n")
        CliRunner().invoke(cli.app, ["--config", str(config), "dao", "deploy"], catch_exceptions=False)
        saved = json.loads((tmp_path / "data" / "addresses.json").read_text())[str(ETH_TESTER_CHAIN_ID)]
        agent = TxSender(chain, Account.from_key(chain.dev_accounts()[2].private_key))
        spec = tmp_path / "glossary.json"
        spec.write_text(json.dumps(GLOSSARY))
        yield Dao(chain, config, saved["token"], saved["board"], agent, spec)
    finally:
        context.use_runtime_factory(previous)


def test_a_vote_funds_a_pool_through_the_cli(dao: Dao) -> None:
    refused = dao.run("dao", "proposals")
    assert isinstance(refused.exception, ConfigError) and refused.exception.key == "dao.governor"
    out = dao.ok("dao", "governor", "deploy", "--voting-delay", "1", "--voting-period", "5", "--min-delay", "60s")
    governor = ADDRESS.findall(out.split("governor")[-1])[0]
    timelock = ADDRESS.findall(out.split("timelock")[-1])[0]
    dao.config.write_text(dao.config.read_text() + f"dao:\n  governor: '{governor}'\n")
    out = dao.ok("dao", "pool", "create", "Atlas", "--budget", "0", "--veto", "1h", "--governor", governor)
    pool = Pool(chain=dao.chain, address=ADDRESS.findall(out)[0])
    assert pool.view("owner") == timelock and pool.view("budget") == 0
    dao_account = dao.chain.dev_accounts()[0]
    TxSender(dao.chain, Account.from_key(dao_account.private_key)).send(
        dao.token, abi("RewardToken").encode_call("transfer", timelock, 1_000 * 10**18)
    )
    out = dao.ok("dao", "propose", "--fund-pool", pool.address, "--amount", "250", "--description", "Fund Atlas")
    proposal = re.search(r"proposal (\d+): pending", out)
    assert proposal is not None
    pid = proposal.group(1)
    dao.chain.mine(2)
    assert "voted for" in dao.ok("dao", "vote", pid, "for", "--reason", "worth it")
    refused = dao.run("dao", "queue", pid)
    assert isinstance(refused.exception, TransactionReverted)  # the vote is still open
    dao.chain.mine(6)
    assert "queued" in dao.ok("dao", "queue", pid)
    dao.chain.time_travel(61)
    assert "executed" in dao.ok("dao", "execute", pid)
    assert pool.view("budget") == 250 * 10**18
    listed = dao.ok("dao", "proposals")
    assert "executed" in listed and "Fund Atlas" in listed and "1e+06" in listed


def test_pool_tasks_veto_finalize_deposit_and_show(dao: Dao) -> None:
    out = dao.ok("dao", "pool", "create", "Atlas", "--budget", "100", "--veto", "1h", "--symbol", "ATL")
    pool = Pool(chain=dao.chain, address=ADDRESS.findall(out)[0])
    assert pool.view("budget") == 100 * 10**18
    out = dao.ok("dao", "pool", "post", pool.address, "--spec", str(dao.spec), "--reward", "10", "--weight", "30")
    assert "posted task 1" in out and "weight 30" in out
    (listed,) = json.loads(dao.ok("dao", "tasks", "--json"))["tasks"]  # discovered with its weight
    assert listed["weight"] == 30 and listed["poster"] == pool.address
    assert re.search(r"│\s*30\s*│", dao.ok("dao", "tasks")) and "weight" in dao.ok("dao", "tasks")
    board = abi("TaskBoard")
    dao.agent.send(dao.board, board.encode_call("claim", 1))
    dao.agent.send(dao.board, board.encode_call("submit", 1, ARTIFACT))
    assert "approved" in dao.ok("dao", "pool", "approve", "1")
    refused = dao.run("dao", "pool", "finalize", "1")
    assert isinstance(refused.exception, TransactionReverted) and "veto window open" in str(refused.exception)
    assert "vetoed" in dao.ok("dao", "pool", "veto", "1", "--reason", "off topic")
    assert dao.balance(dao.token, dao.agent.address) == 0 and pool.view("totalSupply") == 0
    dao.agent.send(dao.board, board.encode_call("claim", 1))
    dao.agent.send(dao.board, board.encode_call("submit", 1, ARTIFACT))
    dao.ok("dao", "pool", "approve", "1")
    dao.chain.time_travel(3_601)
    assert f"30 shares to {dao.agent.address}" in dao.ok("dao", "pool", "finalize", "1")
    dao.ok("dao", "pool", "finalize", "1")  # a second finalize is a no-op
    assert dao.balance(dao.token, dao.agent.address) == 10 * 10**18
    assert pool.view("balanceOf", dao.agent.address) == 30
    dao.ok("dao", "pool", "deposit", pool.address, "--token", dao.token, "--amount", "7.5")
    assert pool.view("claimable", dao.agent.address, dao.token) == 75 * 10**17
    shown = dao.ok("dao", "pool", "show", pool.address)
    for text in ("budget 90", "finalized", dao.agent.address, "100.0 %", "7.5", "tasks", "holders", "revenue"):
        assert text in shown, text


def test_pool_commands_refuse_what_is_not_a_pool_task(dao: Dao, tmp_path: Path) -> None:
    dao.ok("dao", "post", "--spec", str(dao.spec), "--reward", "5")  # a plain board task, posted by the DAO
    (listed,) = json.loads(dao.ok("dao", "tasks", "--json"))["tasks"]
    assert listed["weight"] is None and "weight" not in dao.ok("dao", "tasks")  # no pool task: no weight column
    refused = dao.run("dao", "pool", "approve", "1")
    assert refused.exit_code == 1 and "was not posted by a project pool" in str(refused.exception)

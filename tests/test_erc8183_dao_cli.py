"""``deworker dao`` on an ERC-8183 market (``--board NAME`` of ``kind: erc8183``) through Typer's runner, on one
in-process chain: post a direct hire (funded at once) and an open job, show and check the submitted artifact,
complete, reject and refund, and every refusal before anything is sent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner, Result

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.erc8183 import Erc8183Board
from orchestrator.adapters.chain import EthTesterChain, TxSender
from orchestrator.domain.board import BoardPhase
from orchestrator.domain.errors import ConfigError, TaskNotFound
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.cli import context
from orchestrator.entry.cli import main as cli
from orchestrator.entry.dao import token_abi
from orchestrator.entry.market import JobRefused, Market
from tests.conftest import ETH_TESTER_CHAIN_ID
from tests.test_dao_cli import BAD_FIZZBUZZ, FIZZBUZZ, GOOD_FIZZBUZZ

AGENT = 2
ETH = 10**18


@dataclass
class Setup:
    chain: EthTesterChain
    config: Path
    store: LocalArtifactStore
    market: str
    token: str
    agent: TxSender
    tmp: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli.app, ["--config", str(self.config), *args])

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
        return result.output

    @property
    def dao(self) -> str:
        return self.chain.dev_accounts()[0].address

    def board(self) -> Erc8183Board:
        return Erc8183Board(chain=self.chain, address=self.market, store=self.store)

    def balance(self, who: str) -> int:
        out = self.chain.call(self.token, token_abi().encode_call("balanceOf", who))
        return int(token_abi().decode_output("balanceOf", out)[0])

    def spec(self, doc: dict[str, object], name: str = "spec") -> str:
        path = self.tmp / f"{name}.json"
        path.write_text(json.dumps(doc))
        return str(path)

    def deliver(self, job: int, source: str) -> str:
        folder = self.tmp / f"artifact-{job}-{len(source)}"
        folder.mkdir()
        (folder / "fizzbuzz.py").write_text(source)
        cid = self.store.put_path(folder)
        self.board().deliver(str(job), cid, wallet=self.agent)
        return cid


@contextmanager
def market_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """A deployed TaskBoard (``dao deploy``) and our market on one in-process chain, and the DAO machine's config
    naming both (``main`` and ``acp``)."""
    chain = EthTesterChain()
    previous = context.use_runtime_factory(lambda cfg: Runtime(cfg, chain_override=chain))
    monkeypatch.setattr(cli.console, "width", 250)
    try:
        deployer = tmp_path / "deployer.yaml"
        deployer.write_text(f"data_dir: {tmp_path / 'deployer'}\n")
        CliRunner().invoke(cli.app, ["--config", str(deployer), "dao", "deploy"], catch_exceptions=False)
        saved = json.loads((tmp_path / "deployer" / "addresses.json").read_text())[str(ETH_TESTER_CHAIN_ID)]
        dao = TxSender(chain, Account.from_key(chain.dev_accounts()[0].private_key))
        market, _ = Market.deploy(chain=chain, sender=dao, token=saved["token"], treasury=dao.address, fee_bp=0)
        config = tmp_path / "dao.yaml"
        config.write_text(
            f"data_dir: {tmp_path / 'dao'}\ndao:\n  token: {saved['token']}\n"
            f"boards:\n  - name: main\n    address: {saved['board']}\n"
            f"  - name: acp\n    kind: erc8183\n    address: {market}\n"
        )
        agent = TxSender(chain, Account.from_key(chain.dev_accounts()[AGENT].private_key))
        yield Setup(
            chain, config, LocalArtifactStore(tmp_path / "dao" / "artifacts"), market, saved["token"], agent, tmp_path
        )
    finally:
        context.use_runtime_factory(previous)


@pytest.fixture
def s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    with market_setup(tmp_path, monkeypatch) as setup:
        yield setup


def test_post_a_direct_hire_show_check_and_complete(s: Setup) -> None:
    spec = s.spec(FIZZBUZZ)
    out = s.ok(
        "dao", "post", "--board", "acp", "--provider", s.agent.address, "--evaluator", s.dao,
        "--budget", "50", "--expires", "3d", "--spec", spec,
    )  # fmt: skip
    assert "posted job 1" in out and f"hired {s.agent.address}, 50 DWR escrowed" in out
    job = s.board().status("1")
    assert (job.phase, job.reward, job.claimant, job.reviewer) == (BoardPhase.HELD, 50 * ETH, s.agent.address, s.dao)
    assert "nothing submitted (it is Funded)" in s.ok("dao", "show", "1", "--board", "acp")
    s.deliver(1, BAD_FIZZBUZZ)
    shown = s.ok("dao", "show", "1", "--board", "acp")
    assert "Submitted" in shown and "fizzbuzz.py" in shown and "every block verified" in shown
    assert s.run("dao", "check", "1", "--board", "acp").exit_code == 1  # the acceptance tests fail
    before = s.balance(s.agent.address)
    assert "completed job 1" in s.ok("dao", "complete", "1", "--board", "acp", "--reason", "ok")
    assert s.balance(s.agent.address) - before == 50 * ETH
    assert s.board().status("1").status_text == "Completed"
    refused = s.run("dao", "complete", "1", "--board", "acp")
    assert isinstance(refused.exception, JobRefused) and "it is Completed" in str(refused.exception)


def test_check_passes_on_good_work_and_the_default_market(s: Setup) -> None:
    s.ok("dao", "post", "--board", "acp", "--provider", s.agent.address, "--budget", "5", "--spec", s.spec(FIZZBUZZ))
    s.deliver(1, GOOD_FIZZBUZZ)
    assert "acceptance tests passed" in s.ok("dao", "check", "1", "--board", "acp")
    s.ok("dao", "complete", "1")  # --board defaults to the first market


def test_an_open_job_hired_and_rejections(s: Setup) -> None:
    out = s.ok("dao", "post", "--board", "acp", "--provider", "open", "--budget", "20", "--spec", s.spec(FIZZBUZZ))
    assert "posted job 1" in out and "open for bids" in out
    job = s.board().status("1")
    assert (job.phase, job.claimant, job.reward) == (BoardPhase.OPEN, None, 20 * ETH)
    assert s.balance(s.market) == 0  # nothing escrowed before a provider is hired
    nonce = s.chain.nonce(s.dao)
    taken = s.run("dao", "hire", "1", "--board", "acp", "--provider", s.agent.address, "--budget", "10000000")
    assert isinstance(taken.exception, JobRefused) and "less than" in str(taken.exception)  # more than the DAO holds
    assert s.chain.nonce(s.dao) == nonce
    out = s.ok("dao", "hire", "1", "--board", "acp", "--provider", s.agent.address, "--budget", "15")
    assert f"hired {s.agent.address} for job 1: 15 DWR escrowed" in out
    job = s.board().status("1")
    assert (job.phase, job.claimant, job.reward) == (BoardPhase.HELD, s.agent.address, 15 * ETH)
    assert s.balance(s.market) == 15 * ETH
    again = s.run("dao", "hire", "1", "--board", "acp", "--provider", s.dao, "--budget", "15")
    assert isinstance(again.exception, JobRefused) and "it is Funded" in str(again.exception)
    s.ok("dao", "post", "--board", "acp", "--provider", "open", "--budget", "20", "--spec", s.spec(FIZZBUZZ))
    s.ok("dao", "reject", "2", "--board", "acp", "--reason", "no bids")  # Open: the client rejects, nothing to refund
    assert s.board().status("2").status_text == "Rejected"
    s.ok("dao", "post", "--board", "acp", "--provider", s.agent.address, "--budget", "7", "--spec", s.spec(FIZZBUZZ))
    before = s.balance(s.dao)
    long = "the brief changed: we need the French version, not the English one"
    out = s.ok("dao", "reject", "3", "--board", "acp", "--reason", long)  # Funded: the evaluator refunds
    assert "0x" + hashlib.sha256(long.encode()).hexdigest() in out
    assert s.balance(s.dao) - before == 7 * ETH
    rejection = s.board().rejection("3", since="0")
    assert rejection is not None and rejection.reason == "0x" + hashlib.sha256(long.encode()).hexdigest()


def test_refund_after_expiry_only(s: Setup) -> None:
    args = ("--provider", s.agent.address, "--budget", "3", "--expires", "2h", "--spec", s.spec(FIZZBUZZ))
    s.ok("dao", "post", "--board", "acp", *args)
    nonce = s.chain.nonce(s.dao)
    early = s.run("dao", "refund", "1", "--board", "acp")
    assert isinstance(early.exception, JobRefused) and "expires at" in str(early.exception)
    assert s.chain.nonce(s.dao) == nonce  # nothing sent
    s.chain.time_travel(3 * 3600)
    before = s.balance(s.dao)
    assert "it is Expired" in s.ok("dao", "refund", "1", "--board", "acp")
    assert s.balance(s.dao) - before == 3 * ETH


def test_refusals_name_the_fix(s: Setup) -> None:
    spec = s.spec(FIZZBUZZ)
    nonce = s.chain.nonce(s.dao)
    missing = s.run("dao", "post", "--board", "acp", "--budget", "5", "--spec", spec)
    assert missing.exit_code == 1 and "--provider" in str(missing.exception)
    unknown = s.run("dao", "complete", "9", "--board", "acp")
    assert isinstance(unknown.exception, TaskNotFound)
    wrong_kind = s.run("dao", "complete", "1", "--board", "main")
    assert isinstance(wrong_kind.exception, ConfigError) and wrong_kind.exception.key == "boards[].kind"
    no_board = s.run("dao", "refund", "1", "--board", "nope")
    assert isinstance(no_board.exception, ConfigError) and no_board.exception.key == "boards[].name"
    assert s.chain.nonce(s.dao) == nonce
    # the TaskBoard's own commands are unchanged without --board
    assert "posted task 1" in s.ok("dao", "post", "--spec", spec, "--reward", "5")

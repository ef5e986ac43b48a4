"""``deworker dao`` and ``deworker devnet fund`` through Typer's runner, on one in-process chain shared by two
"machines" (two config files, two data folders): the deployer ran ``dao deploy`` (its data folder has
addresses.json); the DAO machine has only ``chain`` and ``board.address`` configured. Also: the default wallet
config's gas top-up passes the default policy, and a refused top-up is one log line."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.onchain import OnchainTaskBoard
from orchestrator.adapters.chain import (
    AnvilNotFound,
    AnvilProcess,
    EthTesterChain,
    RpcChain,
    TxSender,
    anvil_dev_accounts,
    find_anvil,
)
from orchestrator.domain.errors import ArtifactNotFound, ConfigError, DeworkerError
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.cli import context
from orchestrator.entry.cli import main as cli
from orchestrator.entry.config import Config, load_config
from orchestrator.entry.dao import CannotPay, NotAllowed, WrongTaskState, token_abi
from orchestrator.entry.devnet import is_dev_chain
from tests.conftest import ETH_TESTER_CHAIN_ID, require
from tests.test_cli import devnet, deworker  # noqa: F401  (devnet is a fixture)
from tests.test_wallet_fixtures import PASSPHRASE, TEST_SCRYPT_N
from wallets.config import WalletsConfig
from wallets.fleet import WalletFleet
from wallets.journal import Journal
from wallets.keystore import Keystore

pytest_plugins = ["tests.test_wallet_fixtures"]

REPO = Path(__file__).resolve().parents[1]
FIZZBUZZ = json.loads((REPO / "orchestrator/demo_tasks/02-fizzbuzz.json").read_text())["spec"]
GLOSSARY = json.loads((REPO / "orchestrator/demo_tasks/04-glossary.json").read_text())["spec"]
GOOD_FIZZBUZZ = (
    "def fizzbuzz(n):\n"
    "    return 'FizzBuzz' if n % 15 == 0 else 'Fizz' if n % 3 == 0 else 'Buzz' if n % 5 == 0 else str(n)\n"
)
BAD_FIZZBUZZ = "def fizzbuzz(n):\n    return str(n)\n"
ETH = 10**18
AGENT = 2  # dev account of the contributor (0 is the DAO, 1 the devnet funder)


@dataclass
class Machines:
    chain: EthTesterChain
    deployer: Path  # config file of the machine that ran `dao deploy`
    dao: Path  # config file of the DAO machine: chain + board.address only
    dao_store: LocalArtifactStore
    board: str
    token: str
    agent: TxSender

    def run(self, machine: Path, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli.app, ["--config", str(machine), *args], input=input)

    def ok(self, machine: Path, *args: str, input: str | None = None) -> str:
        result = self.run(machine, *args, input=input)
        assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
        return result.output

    @property
    def dao_address(self) -> str:
        return self.chain.dev_accounts()[0].address

    def nonce(self) -> int:
        return self.chain.nonce(self.dao_address)

    def board_view(self) -> OnchainTaskBoard:
        return OnchainTaskBoard(chain=self.chain, address=self.board, store=self.dao_store)

    def token_balance(self, address: str) -> int:
        out = self.chain.call(self.token, token_abi().encode_call("balanceOf", address))
        return int(token_abi().decode_output("balanceOf", out)[0])

    def allowance(self) -> int:
        out = self.chain.call(self.token, token_abi().encode_call("allowance", self.dao_address, self.board))
        return int(token_abi().decode_output("allowance", out)[0])

    def spec_file(self, tmp: Path, spec: dict[str, object], name: str) -> Path:
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(spec))
        return path

    def submit(self, task_id: int, files: dict[str, bytes], tmp: Path) -> str:
        """The contributor claims and submits a folder; its blocks are put into the DAO machine's store."""
        folder = tmp / f"artifact-{task_id}-{time.monotonic_ns()}"
        folder.mkdir()
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        cid = self.dao_store.put_path(folder)
        board = self.board_view()
        board.claim(str(task_id), wallet=self.agent)
        board.deliver(str(task_id), cid, wallet=self.agent)
        return cid


@pytest.fixture
def machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machines]:
    chain = EthTesterChain()
    previous = context.use_runtime_factory(lambda cfg: Runtime(cfg, chain_override=chain))
    monkeypatch.setattr(cli.console, "width", 250)
    try:
        deployer = tmp_path / "deployer.yaml"
        # a symbol the DAO machine's config does not know: shown amounts must come from the token contract
        deployer.write_text(f"data_dir: {tmp_path / 'deployer'}\ndao:\n  token_symbol: GOV\n")
        CliRunner().invoke(cli.app, ["--config", str(deployer), "dao", "deploy"], catch_exceptions=False)
        saved = json.loads((tmp_path / "deployer" / "addresses.json").read_text())[str(ETH_TESTER_CHAIN_ID)]
        dao = tmp_path / "dao.yaml"
        dao.write_text(f"data_dir: {tmp_path / 'dao'}\nboard:\n  address: {saved['board']}\n")
        agent = TxSender(chain, Account.from_key(chain.dev_accounts()[AGENT].private_key))
        yield Machines(
            chain,
            deployer,
            dao,
            LocalArtifactStore(tmp_path / "dao" / "artifacts"),
            saved["board"],
            saved["token"],
            agent,
        )
    finally:
        context.use_runtime_factory(previous)
    assert not (tmp_path / "dao" / "addresses.json").exists()


def test_dao_machine_lists_and_posts_with_only_the_board_address(machines: Machines, tmp_path: Path) -> None:
    m = machines
    spec = m.spec_file(tmp_path, GLOSSARY, "glossary")
    # an empty board, no address book, no dao.token: nothing to take the reward token from
    refused = m.run(m.dao, "dao", "post", "--spec", str(spec), "--reward", "5")
    assert isinstance(refused.exception, ConfigError) and refused.exception.key == "dao.token"
    assert "DEWORKER_DAO__TOKEN" in str(refused.exception.hint)
    assert "posted task 1" in m.ok(m.deployer, "dao", "post", "--spec", str(spec), "--reward", "50")

    tasks = m.ok(m.dao, "dao", "tasks")
    assert "50 GOV" in tasks and "open" in tasks  # the symbol is the contract's, not dao.token_symbol (DWR)
    # the token of the board's most recent task
    posted = m.ok(m.dao, "dao", "post", "--spec", str(spec), "--reward", "12.5", "--deadline", "2h")
    assert "posted task 2" in posted and "12.5 GOV escrowed" in posted
    assert m.board_view().status("2").token == m.token
    tasks = m.ok(m.dao, "dao", "tasks")
    assert "12.5 GOV" in tasks and tasks.count("open") == 2


def test_dao_token_config_key_wins(machines: Machines, tmp_path: Path) -> None:
    m = machines
    other = tmp_path / "dao-token.yaml"
    other.write_text(m.dao.read_text() + f"dao:\n  token: {m.token}\n")
    spec = m.spec_file(tmp_path, GLOSSARY, "glossary")
    assert "posted task 1" in m.ok(other, "dao", "post", "--spec", str(spec), "--reward", "3")
    assert m.board_view().status("1").token == m.token
    no_token = tmp_path / "no-token.yaml"
    no_token.write_text(m.dao.read_text() + "dao:\n  token: 0x00000000000000000000000000000000000000ab\n")
    nonce = m.nonce()
    refused = m.run(no_token, "dao", "post", "--spec", str(spec), "--reward", "3")
    assert refused.exit_code == 1 and "does not answer symbol() and decimals()" in str(refused.exception)
    assert m.nonce() == nonce and m.board_view().task_count() == 1


def test_show_lists_files_cats_text_and_writes_them_out(machines: Machines, tmp_path: Path) -> None:
    m = machines
    spec = m.spec_file(tmp_path, FIZZBUZZ, "fizzbuzz")
    m.ok(m.deployer, "dao", "post", "--spec", str(spec), "--reward", "60")
    # the spec is in the deployer's store; the DAO machine gets its blocks as if from the deployer's gateway
    spec_cid = m.board_view().status("1").spec_cid
    assert (
        m.dao_store.put_bytes(LocalArtifactStore(tmp_path / "deployer" / "artifacts").get_bytes(spec_cid)) == spec_cid
    )

    nothing = m.ok(m.dao, "dao", "show", "1")
    assert "FizzBuzz function with tests passing" in nothing and "60 GOV" in nothing
    assert "task 1 has nothing submitted (it is OPEN)" in nothing

    cid = m.submit(1, {"fizzbuzz.py": GOOD_FIZZBUZZ.encode(), "data/blob.bin": bytes(range(256)) * 4}, tmp_path)
    shown = m.ok(m.dao, "dao", "show", "1")
    assert cid in shown and "SUBMITTED" in shown and m.agent.address in shown
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in shown.splitlines() if "│" in line}
    assert rows["fizzbuzz.py"] == f"{len(GOOD_FIZZBUZZ):,}" and rows["data/blob.bin"] == "1,024"

    assert m.ok(m.dao, "dao", "show", "1", "--cat", "fizzbuzz.py") == GOOD_FIZZBUZZ
    binary = m.run(m.dao, "dao", "show", "1", "--cat", "data/blob.bin")
    assert binary.exit_code == 1 and "binary file (1,024 bytes)" in str(binary.exception)
    outside = m.run(m.dao, "dao", "show", "1", "--cat", "../../etc/passwd")
    assert outside.exit_code == 1 and "is not a path inside the artifact" in str(outside.exception)

    out = tmp_path / "out"
    assert "wrote 2 file(s)" in m.ok(m.dao, "dao", "show", "1", "-o", str(out))
    again = m.run(m.dao, "dao", "show", "1", "-o", str(out))
    assert again.exit_code == 1 and "exists and is not an empty folder" in str(again.exception)
    assert (out / "fizzbuzz.py").read_text() == GOOD_FIZZBUZZ and len((out / "data/blob.bin").read_bytes()) == 1024


def test_show_of_an_artifact_the_store_cannot_fetch_is_one_error(machines: Machines, tmp_path: Path) -> None:
    m = machines
    spec = m.spec_file(tmp_path, GLOSSARY, "glossary")
    m.ok(m.deployer, "dao", "post", "--spec", str(spec), "--reward", "5")
    elsewhere = LocalArtifactStore(tmp_path / "elsewhere").put_bytes(b"only on the contributor's machine")
    board = m.board_view()
    board.claim(str(1), wallet=m.agent)
    board.deliver(str(1), elsewhere, wallet=m.agent)
    failed = m.run(m.dao, "dao", "show", "1")
    assert failed.exit_code == 1 and isinstance(failed.exception, ArtifactNotFound)
    assert f"cannot fetch the artifact {elsewhere} of task 1" in failed.exception.message
    assert failed.exception.hint  # printed as "fix: ..." by cli.main


@pytest.fixture
def seeded(machines: Machines, tmp_path: Path) -> Machines:
    """A first task posted by the deployer, so the DAO machine has a token to post with."""
    spec = machines.spec_file(tmp_path, GLOSSARY, "seed")
    machines.ok(machines.deployer, "dao", "post", "--spec", str(spec), "--reward", "1")
    return machines


def test_check_runs_the_acceptance_tests_in_the_sandbox(seeded: Machines, tmp_path: Path) -> None:
    m = seeded
    fizz = m.spec_file(tmp_path, FIZZBUZZ, "fizzbuzz")
    m.ok(m.dao, "dao", "post", "--spec", str(fizz), "--reward", "60")  # task 2: good work
    m.ok(m.dao, "dao", "post", "--spec", str(fizz), "--reward", "60")  # task 3: bad work
    m.submit(2, {"fizzbuzz.py": GOOD_FIZZBUZZ.encode()}, tmp_path)
    m.submit(3, {"fizzbuzz.py": BAD_FIZZBUZZ.encode()}, tmp_path)

    passed = m.run(m.dao, "dao", "check", "2")
    assert passed.exit_code == 0, passed.output
    assert "1 passed" in passed.output and "task 2: acceptance tests passed" in passed.output
    failed = m.run(m.dao, "dao", "check", "3")
    assert failed.exit_code == 1, failed.output
    assert "1 failed" in failed.output and "task 3: acceptance tests failed" in failed.output
    assert "AssertionError" in failed.output or "assert" in failed.output

    glossary = m.spec_file(tmp_path, GLOSSARY, "glossary")
    m.ok(m.dao, "dao", "post", "--spec", str(glossary), "--reward", "2")  # task 4: no acceptance tests
    m.submit(4, {"glossary.md": b"quorum: enough votes"}, tmp_path)
    none = m.run(m.dao, "dao", "check", "4")
    assert none.exit_code == 3 and "has no acceptance tests" in none.output


def test_approve_asks_first_and_pays_with_yes(seeded: Machines, tmp_path: Path) -> None:
    m = seeded
    fizz = m.spec_file(tmp_path, FIZZBUZZ, "fizzbuzz")
    m.ok(m.dao, "dao", "post", "--spec", str(fizz), "--reward", "60")
    cid = m.submit(2, {"fizzbuzz.py": GOOD_FIZZBUZZ.encode()}, tmp_path)
    before, nonce = m.token_balance(m.agent.address), m.nonce()

    declined = m.run(m.dao, "dao", "approve", "2", "--check", input="n\n")
    assert declined.exit_code == 1, declined.output
    for shown in ("FizzBuzz function with tests passing", cid, "fetched, every block verified", "passed"):
        assert shown in declined.output
    assert f"Pay 60 GOV to {m.agent.address} for task 2?" in declined.output
    assert "not approved: nothing was sent" in declined.output
    assert m.nonce() == nonce and m.token_balance(m.agent.address) == before
    assert m.board_view().status("2").status_text == "SUBMITTED"

    approved = m.ok(m.dao, "dao", "approve", "2", "--yes")
    assert f"approved task 2: 60 GOV paid to {m.agent.address}" in approved and "Pay " not in approved
    assert m.token_balance(m.agent.address) == before + 60 * ETH
    assert m.board_view().status("2").status_text == "APPROVED"


def test_approve_with_failing_tests_and_yes_refuses(seeded: Machines, tmp_path: Path) -> None:
    m = seeded
    fizz = m.spec_file(tmp_path, FIZZBUZZ, "fizzbuzz")
    m.ok(m.dao, "dao", "post", "--spec", str(fizz), "--reward", "60")
    m.submit(2, {"fizzbuzz.py": BAD_FIZZBUZZ.encode()}, tmp_path)
    nonce = m.nonce()
    refused = m.run(m.dao, "dao", "approve", "2", "--check", "--yes")
    assert refused.exit_code == 1 and "the acceptance tests failed" in refused.output and "FAILED" in refused.output
    assert m.nonce() == nonce and m.board_view().status("2").status_text == "SUBMITTED"


def test_wrong_states_and_empty_reasons_are_refused_before_sending(seeded: Machines, tmp_path: Path) -> None:
    m = seeded
    fizz = m.spec_file(tmp_path, FIZZBUZZ, "fizzbuzz")
    m.ok(m.dao, "dao", "post", "--spec", str(fizz), "--reward", "60")
    m.submit(2, {"fizzbuzz.py": GOOD_FIZZBUZZ.encode()}, tmp_path)
    nonce = m.nonce()
    cases = [
        (["approve", "1", "--yes"], WrongTaskState, "task 1 is OPEN: only a SUBMITTED task can be approved"),
        (["reject", "1", "--reason", "no"], WrongTaskState, "task 1 is OPEN: only a SUBMITTED task can be rejected"),
        (["cancel", "2"], WrongTaskState, "task 2 is SUBMITTED: only an OPEN task can be cancelled"),
        (["reject", "2", "--reason", ""], DeworkerError, "a rejection needs a reason"),
        (["reject", "2", "--reason", "  \t "], DeworkerError, "a rejection needs a reason"),
        (["reject", "2", "--reason", "x" * 257], DeworkerError, "at most 256"),
    ]
    for args, kind, message in cases:
        result = m.run(m.dao, "dao", *args)
        assert result.exit_code == 1 and isinstance(result.exception, kind), (args, result.output)
        assert message in str(result.exception), (args, str(result.exception))
        assert "reverted" not in str(result.exception)
    assert m.nonce() == nonce
    assert m.board_view().status("2").status_text == "SUBMITTED"
    assert "open again" in m.ok(m.dao, "dao", "reject", "2", "--reason", "handle 0 too")
    assert m.board_view().status("2").status_text == "OPEN"


def test_a_reviewer_that_is_not_the_dao_is_named(seeded: Machines, tmp_path: Path) -> None:
    m = seeded
    fizz = m.spec_file(tmp_path, FIZZBUZZ, "fizzbuzz")
    reviewer = m.chain.dev_accounts()[3].address
    m.ok(m.dao, "dao", "post", "--spec", str(fizz), "--reward", "60", "--reviewer", reviewer)
    m.submit(2, {"fizzbuzz.py": GOOD_FIZZBUZZ.encode()}, tmp_path)
    refused = m.run(m.dao, "dao", "approve", "2", "--yes")
    assert isinstance(refused.exception, NotAllowed) and f"task 2's reviewer is {reviewer}" in str(refused.exception)


def test_a_post_that_cannot_be_paid_sends_nothing(seeded: Machines, tmp_path: Path) -> None:
    m = seeded
    spec = m.spec_file(tmp_path, GLOSSARY, "glossary")
    allowance, nonce, balance = m.allowance(), m.nonce(), m.token_balance(m.dao_address)
    refused = m.run(m.dao, "dao", "post", "--spec", str(spec), "--reward", "2000000")
    assert refused.exit_code == 1 and isinstance(refused.exception, CannotPay), refused.output
    assert "less than the 2,000,000 GOV needed" in refused.exception.message
    assert m.allowance() == allowance and m.nonce() == nonce and m.token_balance(m.dao_address) == balance
    assert m.board_view().task_count() == 1


# ------------------------------------------------------------------------------------------------- funding


def test_devnet_fund_by_agent_name_wallet_name_and_address(machines: Machines, tmp_path: Path) -> None:
    m = machines
    keystores = tmp_path / "dao" / "keystores"
    writer = Keystore(keystores, scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True).create("writer-wallet", PASSPHRASE)
    funder = Keystore(keystores, scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True).create("funder", PASSPHRASE)
    fleet_cfg = tmp_path / "fleet.yaml"
    fleet_cfg.write_text(
        m.dao.read_text()
        + f"dao:\n  token: {m.token}\n"
        + "agents:\n  profiles:\n    - {name: writer, skills: [writing], wallet: writer-wallet}\n"
    )
    by_agent = m.ok(fleet_cfg, "devnet", "fund", "writer", "--eth", "0.5", "--tokens", "100")
    devnet_funder = m.chain.dev_accounts()[1].address
    assert f"sent 0.5 ETH from the devnet funder {devnet_funder} to writer (wallet writer-wallet)" in by_agent
    assert f"sent 100 GOV from the DAO {m.dao_address}" in by_agent
    assert f"{writer.address} now holds 0.5 ETH, 100 GOV" in by_agent
    assert m.chain.balance(writer.address) == ETH // 2 and m.token_balance(writer.address) == 100 * ETH

    by_wallet = m.ok(fleet_cfg, "devnet", "fund", "funder", "--eth", "2")
    assert f"funder {funder.address} now holds 2 ETH, 0 GOV" in by_wallet
    stranger = "0x" + "ab" * 20
    by_address = m.ok(fleet_cfg, "devnet", "fund", stranger, "--eth", "0.25")
    assert "now holds 0.25 ETH" in by_address and m.chain.balance(stranger) == ETH // 4

    unknown = m.run(fleet_cfg, "devnet", "fund", "nobody")
    assert isinstance(unknown.exception, ConfigError) and "agents: writer" in unknown.exception.message
    nonce = m.nonce()
    too_much = m.run(fleet_cfg, "devnet", "fund", "writer", "--eth", "1", "--tokens", "5000000")
    assert isinstance(too_much.exception, CannotPay)
    assert m.chain.balance(writer.address) == ETH // 2 and m.nonce() == nonce  # no ETH went before the refusal


@pytest.mark.anvil
def test_devnet_fund_refuses_a_chain_that_is_not_a_dev_chain(machines: Machines) -> None:
    require_anvil()
    stranger = "0x" + "cd" * 20
    with AnvilProcess(chain_id=5) as node, RpcChain(node.url) as other:  # a node that is no dev chain of ours
        assert not is_dev_chain(other) and is_dev_chain(machines.chain)
        context.use_runtime_factory(lambda cfg: Runtime(cfg, chain_override=other))
        refused = machines.run(machines.dao, "devnet", "fund", stranger, "--eth", "1")
        assert refused.exit_code == 1 and "chain 5 is not a dev chain" in str(refused.exception)
        assert other.balance(stranger) == 0


def require_anvil() -> None:
    try:
        find_anvil()
    except AnvilNotFound as exc:
        require(False, f"anvil is not installed: {exc}")


def default_fleet(tmp_path: Path, engine: Engine, chain: EthTesterChain, **overrides: object) -> WalletFleet:
    """The fleet ``Config()`` describes (every default), but for the keystore folder, the passphrase and a funder."""
    defaults = Config().wallets
    cfg = WalletsConfig.model_validate(
        {**defaults.model_dump(), "keystore_dir": tmp_path / "keystores", "funder": "funder", **overrides}
    )
    return WalletFleet(
        config=cfg,
        keystore=Keystore(cfg.keystore_path(tmp_path), scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True),
        journal=Journal(engine),
        chain=chain,
        passphrase=lambda: PASSPHRASE,
    )


def test_the_default_top_up_passes_the_default_policy(tmp_path: Path, sqlite_engine: Engine) -> None:
    chain = EthTesterChain()
    fleet = default_fleet(tmp_path, sqlite_engine, chain)
    funder, agent = fleet.create("funder"), fleet.create("agent-1")
    TxSender(chain, Account.from_key(chain.dev_accounts()[1].private_key)).send(funder.address, value=ETH, gas=21_000)
    assert fleet.config.policy == Config().wallets.policy  # the embedded default caps, untouched
    topped = fleet.top_up()
    assert list(topped) == ["agent-1"]
    assert chain.balance(agent.address) == Config().wallets.gas_topup_amount_wei
    assert chain.balance(agent.address) >= fleet.config.gas_topup_threshold_wei  # not topped up again at once
    assert fleet.top_up() == {}


def test_a_refused_top_up_is_one_log_line(
    tmp_path: Path, sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    chain = EthTesterChain()
    fleet = default_fleet(tmp_path, sqlite_engine, chain)
    funder = fleet.create("funder")
    agents = [fleet.create(f"agent-{i}") for i in range(1, 6)]
    TxSender(chain, Account.from_key(chain.dev_accounts()[1].private_key)).send(funder.address, value=ETH, gas=21_000)
    with caplog.at_level(logging.WARNING, logger="wallets.fleet"):
        done = fleet.upkeep()  # four top-ups fit the funder's default daily cap; the fifth does not
    assert done.topped_up == ["agent-1", "agent-2", "agent-3", "agent-4"]
    assert chain.balance(agents[4].address) == 0
    (record,) = caplog.records
    line = record.getMessage()
    assert record.exc_info is None and "\n" not in line
    assert "gas top-up of agent-5 refused by the policy [wallet_daily_cap_wei]" in line
    # amounts in ETH, as people read them (issue 15 item 2)
    assert "0.01 ETH (wallets.gas_topup_amount_wei)" in line and "its daily 0.05 ETH" in line
    assert "wei " not in line.replace("_wei", "")


def test_a_top_up_that_could_never_pass_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={"DEWORKER_WALLETS__FUNDER": "funder", "DEWORKER_WALLETS__GAS_TOPUP_AMOUNT_WEI": str(ETH)})
    assert "could never top up" in info.value.message


def test_every_dao_and_devnet_command_teaches_with_an_example() -> None:
    for group, names in (
        (cli.dao_app, ("post", "show", "check", "approve", "reject", "cancel")),
        (cli.devnet_app, ("fund",)),
    ):
        commands = {c.name: c for c in group.registered_commands}
        for name in names:
            doc = commands[name].callback.__doc__ if commands[name].callback else ""
            assert doc and "Example" in doc and "`deworker " in doc, name


@pytest.mark.anvil
def test_devnet_names_its_accounts_and_a_fetch_failure_is_one_error_line(
    devnet: dict[str, str],  # noqa: F811  (the fixture imported from test_cli)
    tmp_path: Path,
) -> None:
    env = devnet
    status = deworker("devnet", "status", cwd=tmp_path, env=env).stdout
    dao_row, funder_row = (line for line in status.splitlines() if line.startswith(("│ 0 ", "│ 1 ")))
    assert anvil_dev_accounts(1)[0].address in dao_row and "DAO: signs `deworker dao" in dao_row
    assert anvil_dev_accounts(2)[1].address in funder_row and "devnet funder: `deworker devnet fund`" in funder_row
    assert "$DEWORKER_WALLET_PASSPHRASE" in status
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(GLOSSARY))
    deworker("dao", "post", "--spec", str(spec), "--reward", "5", cwd=tmp_path, env=env)
    addresses = json.loads((Path(env["DEWORKER_DATA_DIR"]) / "addresses.json").read_text())["31337"]
    with RpcChain(env["URL"]) as chain:
        elsewhere = LocalArtifactStore(tmp_path / "contributor")
        board = OnchainTaskBoard(chain=chain, address=addresses["board"], store=elsewhere)
        agent = TxSender(chain, Account.from_key(anvil_dev_accounts(3)[2].private_key))
        board.claim(str(1), wallet=agent)
        board.deliver(str(1), elsewhere.put_bytes(b"only on the contributor's machine"), wallet=agent)
    shown = deworker("dao", "show", "1", cwd=tmp_path, env=env, ok=False)
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    first, fix = shown.stderr.strip().splitlines()
    assert first.startswith("error: cannot fetch the artifact ") and fix.startswith("fix: ")
    unasked = deworker("dao", "approve", "1", cwd=tmp_path, env=env, ok=False)  # no terminal: nothing confirmed
    assert unasked.returncode == 1 and "NOT fetched" in unasked.stdout and "paid" not in unasked.stdout


def test_dao_tasks_at_80_columns_with_titles_wide_and_json(
    machines: Machines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.entry.listing import short
    from tests.test_service_cli import unbroken

    m = machines
    spec = m.spec_file(tmp_path, GLOSSARY, "glossary")
    other = m.spec_file(tmp_path, FIZZBUZZ, "fizzbuzz")
    assert "posted task 1" in m.ok(m.deployer, "dao", "post", "--spec", str(other), "--reward", "7")
    # the DAO machine posts with the board's token; task 1's spec is only in the deployer's artifact store
    assert "posted task 2" in m.ok(m.dao, "dao", "post", "--spec", str(spec), "--reward", "50")
    assert "posted task 3" in m.ok(m.dao, "dao", "post", "--spec", str(spec), "--reward", "12.5")
    cid = m.submit(2, {"glossary.md": b"# Glossary\n"}, tmp_path)
    listed = json.loads(m.ok(m.dao, "dao", "tasks", "--json"))
    assert listed["board"] == m.board and [t["id"] for t in listed["tasks"]] == [3, 2, 1]
    second = next(t for t in listed["tasks"] if t["id"] == 2)
    assert second["title"] == GLOSSARY["title"] and second["status"] == "submitted"
    assert second["reward"] == str(50 * ETH) and second["token"] == m.token  # base units, as a string
    assert second["artifact_cid"] == cid and second["claimant"] == m.agent.address
    assert listed["tasks"][2]["title"] is None  # its spec (fizzbuzz) cannot be fetched here
    monkeypatch.setattr(cli.console, "width", 80)
    out = m.ok(m.dao, "dao", "tasks")
    words = ["submitted", "open", "50 GOV", "12.5 GOV", short(cid), *GLOSSARY["title"].split()]
    unbroken(out, [*words, "(spec", "unreadable)"])  # the claimant is left out at 80 columns: `dao show` has it
    assert cid not in out
    wide = m.ok(m.dao, "dao", "tasks", "--wide")
    assert cid in wide and m.agent.address in wide and m.board in wide


def test_wrong_amounts_and_durations_get_the_right_hint(machines: Machines, tmp_path: Path) -> None:
    m = machines
    spec = m.spec_file(tmp_path, GLOSSARY, "glossary")
    zero = m.run(m.deployer, "dao", "post", "--spec", str(spec), "--reward", "0")
    assert isinstance(zero.exception, DeworkerError)
    assert "above zero" in str(zero.exception.hint) and "decimal places" not in str(zero.exception.hint)
    fine = m.run(m.deployer, "dao", "post", "--spec", str(spec), "--reward", "0.0000000000000000001")
    assert isinstance(fine.exception, DeworkerError) and "at most 18 decimal places" in str(fine.exception.hint)
    never = m.run(m.deployer, "dao", "post", "--spec", str(spec), "--reward", "5", "--deadline", "0m")
    assert isinstance(never.exception, DeworkerError) and "is zero" in never.exception.message
    assert "a number and a unit" not in str(never.exception.hint)
    garbled = m.run(m.deployer, "dao", "post", "--spec", str(spec), "--reward", "5", "--deadline", "soon")
    assert isinstance(garbled.exception, DeworkerError) and "a number and a unit" in str(garbled.exception.hint)

"""``deworker wallet`` commands through Typer's runner, with a fleet on the in-process chain, and ``import`` also
as a real ``deworker`` process (production scrypt cost, the journal in the main database)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from orchestrator.adapters.chain import EthTesterChain
from orchestrator.entry.cli import wallet as cli
from tests.conftest import ETH_TESTER_CHAIN_ID, ChainEnv
from tests.test_wallet_fixtures import ETH, PASSPHRASE, TEST_SCRYPT_N, TREASURY, FleetFactory, wallets_config
from wallets.config import DEFAULT_PASSPHRASE_ENV, WalletsConfig
from wallets.errors import KeystoreError, PolicyDenied, WrongPassphrase
from wallets.fleet import WalletFleet
from wallets.keystore import PRODUCTION_SCRYPT_N

SOURCE_PASSPHRASE = "the old wallet's own passphrase"
SOURCE_KEY = bytes.fromhex("5eed" * 16)
SOURCE_ENV = "OLD_WALLET_PASSPHRASE"


def key_needles(key: bytes) -> list[str]:
    return [key.hex(), "0x" + key.hex(), key.hex().upper(), repr(key)]


def write_source(path: Path, *, key: bytes = SOURCE_KEY, passphrase: str = SOURCE_PASSPHRASE, n: int = 2) -> Path:
    """A V3 keystore as another tool would have written it (here with a deliberately weak scrypt cost)."""
    path.write_text(json.dumps(Account.encrypt(key, passphrase, kdf="scrypt", iterations=n)))
    return path


pytest_plugins = ["tests.test_wallet_fixtures"]


@pytest.fixture
def fleet(sqlite_engine: Engine, make_fleet: FleetFactory, tmp_path: Path) -> Iterator[WalletFleet]:
    chain = EthTesterChain()
    env = ChainEnv("ethtester", chain, chain.dev_accounts(), ETH_TESTER_CHAIN_ID)
    base = wallets_config(tmp_path, wallet_daily_cap_wei=ETH)
    cfg = WalletsConfig.model_validate({**base.model_dump(), "funder": "funder"})
    built = make_fleet(env, sqlite_engine, config=cfg, names=("funder",))
    previous = cli.fleet_factory
    cli.use_fleet_factory(lambda: built)
    yield built
    cli.use_fleet_factory(previous)


def test_new_list_fund_sweep_policy(fleet: WalletFleet) -> None:
    runner = CliRunner()
    new = runner.invoke(cli.wallet_app, ["new", "alice"])
    assert new.exit_code == 0, new.output
    address = fleet.keystore.entry("alice").address
    assert address in new.output.replace("\n", "")
    funded = runner.invoke(cli.wallet_app, ["fund", "alice", "--amount", "0.05"])
    assert funded.exit_code == 0, funded.output
    assert fleet.chain.balance(address) == 5 * 10**16
    listing = runner.invoke(cli.wallet_app, ["list"])
    assert listing.exit_code == 0 and "alice" in listing.output and " 0.05 " in listing.output
    swept = runner.invoke(cli.wallet_app, ["sweep", "alice"])
    assert swept.exit_code == 0, swept.output
    assert fleet.chain.balance(address) < 10**15
    policy = runner.invoke(cli.wallet_app, ["policy"])
    assert policy.exit_code == 0
    assert json.loads(policy.output)["treasury"] == TREASURY
    assert runner.invoke(cli.wallet_app, ["fund", "alice", "--amount", "0.01"]).exit_code == 0
    refused = runner.invoke(cli.wallet_app, ["sweep", "--all", "--to", "0x4444444444444444444444444444444444444444"])
    assert isinstance(refused.exception, PolicyDenied), (
        refused.output
    )  # printed as one line by orchestrator.entry.cli.main.main
    both = runner.invoke(cli.wallet_app, ["sweep", "alice", "--all"])
    assert both.exit_code != 0


# ------------------------------------------------------------------------------------------------------ import


def test_there_is_no_export_command() -> None:
    names = {c.name for c in cli.wallet_app.registered_commands}
    assert names == {"new", "import", "list", "sweep", "fund", "policy"}
    help_text = CliRunner().invoke(cli.wallet_app, ["--help"]).output.lower()
    assert "export" not in help_text.replace("never exported", "")


def test_import_reencrypts_under_the_fleet_passphrase_and_cost(fleet: WalletFleet, tmp_path: Path) -> None:
    source = write_source(tmp_path / "old.json")
    result = CliRunner().invoke(
        cli.wallet_app,
        ["import", "imported", str(source), "--passphrase-env", SOURCE_ENV],
        env={SOURCE_ENV: SOURCE_PASSPHRASE},
    )
    assert result.exit_code == 0, result.output
    address = Account.from_key(SOURCE_KEY).address
    assert address in result.output.replace("\n", "")
    assert not any(n in result.output for n in key_needles(SOURCE_KEY))
    path = fleet.keystore.path("imported")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["version"] == 3 and data["crypto"]["kdf"] == "scrypt"
    assert data["crypto"]["kdfparams"]["n"] == TEST_SCRYPT_N  # the fleet's cost, not the source's n=2
    assert Account.decrypt(data, PASSPHRASE) == SOURCE_KEY  # under the fleet passphrase now
    with pytest.raises(ValueError):
        Account.decrypt(data, SOURCE_PASSPHRASE)
    assert fleet.wallet("imported").address == address
    assert address in fleet.gate.describe()["plain_transfers_to"]  # the gate knows the new fleet member


def test_import_defaults_to_the_fleet_passphrase_env(fleet: WalletFleet, tmp_path: Path) -> None:
    source = write_source(tmp_path / "old.json", passphrase=PASSPHRASE)
    result = CliRunner().invoke(
        cli.wallet_app, ["import", "same", str(source)], env={DEFAULT_PASSPHRASE_ENV: PASSPHRASE}
    )
    assert result.exit_code == 0, result.output
    assert fleet.keystore.entry("same").address == Account.from_key(SOURCE_KEY).address


def test_import_never_overwrites_a_wallet(fleet: WalletFleet, tmp_path: Path) -> None:
    before = fleet.keystore.path("funder").read_bytes()
    source = write_source(tmp_path / "old.json")
    result = CliRunner().invoke(
        cli.wallet_app,
        ["import", "funder", str(source), "--passphrase-env", SOURCE_ENV],
        env={SOURCE_ENV: SOURCE_PASSPHRASE},
    )
    assert isinstance(result.exception, KeystoreError) and "already exists" in str(result.exception)
    assert fleet.keystore.path("funder").read_bytes() == before


@pytest.mark.parametrize(
    ("env", "content", "error", "words"),
    [
        ({SOURCE_ENV: "not the right passphrase"}, None, WrongPassphrase, "source passphrase does not open"),
        ({}, None, KeystoreError, f"${SOURCE_ENV} is not set"),
        ({SOURCE_ENV: SOURCE_PASSPHRASE}, '{"version": 1, "crypto": {}}', KeystoreError, "not a version 3 keystore"),
        ({SOURCE_ENV: SOURCE_PASSPHRASE}, "0x" + SOURCE_KEY.hex(), KeystoreError, "not a JSON keystore"),
    ],
    ids=["wrong-passphrase", "no-passphrase", "not-v3", "raw-key-file"],
)
def test_import_refusals_are_clear_and_hold_no_key_material(
    fleet: WalletFleet, tmp_path: Path, env: dict[str, str], content: str | None, error: type, words: str
) -> None:
    source = tmp_path / "old.json"
    if content is None:
        write_source(source)
    else:
        source.write_text(content)
    result = CliRunner().invoke(
        cli.wallet_app, ["import", "victim", str(source), "--passphrase-env", SOURCE_ENV], env=env
    )
    assert isinstance(result.exception, error), result.output
    assert words in str(result.exception) and result.exception.hint
    assert not fleet.keystore.path("victim").exists()
    texts = [result.output, "".join(traceback.format_exception(result.exception)), repr(result.exception)]
    assert not [n for n in key_needles(SOURCE_KEY) for t in texts if n in t]


def deworker(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_as_a_real_process_at_production_cost(tmp_path: Path) -> None:
    """The installed command, its bootstrap (the journal in the migrated main database), the real scrypt cost."""
    source = write_source(tmp_path / "old.json")
    env = {"DEWORKER_DATA_DIR": str(tmp_path / "state"), DEFAULT_PASSPHRASE_ENV: PASSPHRASE}
    wrong = deworker(
        "wallet",
        "import",
        "ops",
        str(source),
        "--passphrase-env",
        SOURCE_ENV,
        cwd=tmp_path,
        env={**env, SOURCE_ENV: "wrong wrong wrong"},
    )
    assert wrong.returncode == 1 and "error: the source passphrase does not open keystore" in wrong.stderr
    assert "fix:" in wrong.stderr and "Traceback" not in wrong.stderr
    done = deworker(
        "wallet",
        "import",
        "ops",
        str(source),
        "--passphrase-env",
        SOURCE_ENV,
        cwd=tmp_path,
        env={**env, SOURCE_ENV: SOURCE_PASSPHRASE},
    )
    assert done.returncode == 0, done.stderr
    listing = deworker("wallet", "list", "--wide", cwd=tmp_path, env=env)  # --wide: whole addresses
    assert listing.returncode == 0, listing.stderr
    address = Account.from_key(SOURCE_KEY).address
    assert "ops" in listing.stdout and address in listing.stdout
    for proc in (wrong, done, listing):
        assert not [n for n in key_needles(SOURCE_KEY) for t in (proc.stdout, proc.stderr) if n in t]
    data = json.loads((tmp_path / "state" / "keystores" / "ops.json").read_text())
    assert data["crypto"]["kdfparams"]["n"] == PRODUCTION_SCRYPT_N
    assert stat.S_IMODE((tmp_path / "state" / "keystores" / "ops.json").stat().st_mode) == 0o600
    assert not (tmp_path / "state" / "wallets.db").exists()  # the journal lives in deworker.db

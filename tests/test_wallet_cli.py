"""``deworker wallet`` commands through Typer's runner, with a fleet on the in-process chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from orchestrator.chain import EthTesterChain
from tests.conftest import ETH_TESTER_CHAIN_ID, ChainEnv
from tests.test_wallet_fixtures import ETH, TREASURY, FleetFactory, wallets_config
from wallets import cli
from wallets.config import WalletsConfig
from wallets.errors import PolicyDenied
from wallets.fleet import WalletFleet

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
    assert listing.exit_code == 0 and "alice" in listing.output and "0.050000" in listing.output
    swept = runner.invoke(cli.wallet_app, ["sweep", "alice"])
    assert swept.exit_code == 0, swept.output
    assert fleet.chain.balance(address) < 10**15
    policy = runner.invoke(cli.wallet_app, ["policy"])
    assert policy.exit_code == 0
    assert json.loads(policy.output)["treasury"] == TREASURY
    assert runner.invoke(cli.wallet_app, ["fund", "alice", "--amount", "0.01"]).exit_code == 0
    refused = runner.invoke(cli.wallet_app, ["sweep", "--all", "--to", "0x4444444444444444444444444444444444444444"])
    assert isinstance(refused.exception, PolicyDenied), refused.output  # printed as one line by orchestrator.cli.main
    both = runner.invoke(cli.wallet_app, ["sweep", "alice", "--all"])
    assert both.exit_code != 0

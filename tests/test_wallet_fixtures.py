"""Fixtures shared by the wallet tests (``test_wallet_*.py`` import them; this module defines no tests). The
journal lives in the orchestrator's database: its tests use conftest's ``db_engine`` (SQLite, then PostgreSQL) or
``sqlite_engine``.

- ``make_fleet``: a ``WalletFleet`` on a chain under test, with keystores at a test-only low scrypt cost
  (``weak_kdf_for_tests=True``), agent wallets funded from a dev account.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy.engine import Engine

from orchestrator.adapters.chain import TxSender
from tests.conftest import ChainEnv
from wallets.config import PolicyConfig, WalletsConfig
from wallets.fleet import WalletFleet
from wallets.journal import Journal
from wallets.keystore import Keystore

PASSPHRASE = "correct horse battery staple"
TEST_SCRYPT_N = 16  # test-only: the production minimum is 262144 (see test_wallet_keystore)
TREASURY = "0x000000000000000000000000000000000000dEaD"
ETH = 10**18


def wallets_config(tmp_path: Path, **policy: object) -> WalletsConfig:
    return WalletsConfig(
        keystore_dir=tmp_path / "keystores",
        treasury=TREASURY,
        policy=PolicyConfig.model_validate(policy),
    )


FleetFactory = Callable[..., WalletFleet]


@pytest.fixture
def make_fleet(tmp_path: Path) -> FleetFactory:
    """``make_fleet(env, engine, config=None, names=("alice",), fund=ETH)``: a fleet with funded wallets."""

    def build(
        env: ChainEnv,
        engine: Engine,
        *,
        config: WalletsConfig | None = None,
        names: tuple[str, ...] = ("alice",),
        fund: int = ETH,
        **fleet_kwargs: object,
    ) -> WalletFleet:
        cfg = config or wallets_config(tmp_path)
        fleet = WalletFleet(
            config=cfg,
            keystore=Keystore(cfg.keystore_path(tmp_path), scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True),
            journal=Journal(engine),
            chain=env.chain,
            passphrase=lambda: PASSPHRASE,
            receipt_timeout=30.0,
            **fleet_kwargs,  # type: ignore[arg-type]
        )
        funder = env.sender(0)
        for name in names:
            if not fleet.keystore.path(name).exists():
                fleet.create(name)
            if fund:
                funder.send(fleet.keystore.entry(name).address, value=fund)
        return fleet

    return build


def same_key_sender(env: ChainEnv, fleet: WalletFleet, name: str) -> TxSender:
    """A plain ``TxSender`` on a wallet's own key: "someone else using the key", for drift tests."""
    account = fleet.keystore.unlock(name, PASSPHRASE)
    return TxSender(env.chain, Account.from_key(account.key))

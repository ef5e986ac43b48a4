"""Fixtures shared by the wallet tests (``test_wallet_*.py`` import them; this module defines no tests).

- ``journal_engine``: a fresh database migrated by the real Alembic scripts (``orchestrator.store.migrate``: the
  journal lives in the orchestrator's database), parametrized over SQLite (a file in ``tmp_path``, WAL) and
  PostgreSQL (a fresh schema per test on 127.0.0.1:5432, dropped afterwards; skipped via ``require`` when the
  server is unreachable).
- ``make_fleet``: a ``WalletFleet`` on a chain under test, with keystores at a test-only low scrypt cost
  (``weak_kdf_for_tests=True``), agent wallets funded from a dev account.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from orchestrator.chain import TxSender
from orchestrator.store.db import make_engine, migrate
from tests.conftest import ChainEnv, require
from wallets.config import PolicyConfig, WalletsConfig
from wallets.fleet import WalletFleet
from wallets.journal import Journal
from wallets.keystore import Keystore

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSPHRASE = "correct horse battery staple"
TEST_SCRYPT_N = 16  # test-only: the production minimum is 262144 (see test_wallet_keystore)
TREASURY = "0x000000000000000000000000000000000000dEaD"
ETH = 10**18


def postgres_engine() -> Iterator[Engine]:
    """An engine on a fresh PostgreSQL schema, dropped afterwards."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        admin.dispose()
        require(False, f"PostgreSQL is not reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    schema = "wallet_test_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"}, pool_size=20, max_overflow=40)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def journal_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, empty, migrated database (SQLite, then PostgreSQL)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'deworker.db'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    for engine in postgres_engine():
        migrate(engine)
        yield engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'deworker.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


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

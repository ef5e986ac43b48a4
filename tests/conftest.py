"""Shared fixtures: real chains (in-process py-evm and an anvil node), a scrubbed environment, and
``require``.

``require(condition, reason)`` skips a test whose prerequisite (anvil, PostgreSQL, Chromium, ...) is missing,
or fails it when ``DEWORKER_STRICT_TESTS=1`` (CI), so a missing tool can never turn a suite green by skipping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from eth_account import Account

from orchestrator.chain import (
    ANVIL_CHAIN_ID,
    AnvilNotFound,
    AnvilProcess,
    DevAccount,
    EthTesterChain,
    RpcChain,
    TxSender,
    find_anvil,
)

STRICT_ENV = "DEWORKER_STRICT_TESTS"
#: DEWORKER_* variables the tests themselves read; every other one is removed so a developer's settings
#: (RPC URLs, keys, database URLs) never leak into a test
KEPT_ENV = frozenset({STRICT_ENV, "DEWORKER_ANVIL"})
ETH_TESTER_CHAIN_ID = 131277322940537


def require(condition: object, reason: str) -> None:
    """Skip the current test (or fixture) unless ``condition`` holds; fail if ``DEWORKER_STRICT_TESTS=1``."""
    if condition:
        return
    if os.environ.get(STRICT_ENV) == "1":
        pytest.fail(f"{reason} ({STRICT_ENV}=1: missing prerequisites fail instead of skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _scrub_deworker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DEWORKER_") and name not in KEPT_ENV:
            monkeypatch.delenv(name)


# ---------------------------------------------------------------------------------------------------- chains


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    """One anvil node on a free 127.0.0.1 port for the session (tests isolate with ``anvil_snapshot``)."""
    missing = ""
    try:
        binary = find_anvil()
    except AnvilNotFound as exc:
        missing = str(exc)
    require(not missing, f"anvil is not installed: {missing}")
    with AnvilProcess(binary=binary) as node:
        yield node


@pytest.fixture
def anvil_snapshot(anvil: AnvilProcess) -> Iterator[AnvilProcess]:
    """The session anvil, with its state rolled back after the test (``evm_snapshot``/``evm_revert``)."""
    with RpcChain(anvil.url) as control:
        snapshot = control.request("evm_snapshot")
        try:
            yield anvil
        finally:
            control.request("evm_revert", [snapshot])


@dataclass
class ChainEnv:
    """A chain under test with its funded dev accounts."""

    name: str
    chain: EthTesterChain | RpcChain
    accounts: list[DevAccount]
    expected_chain_id: int

    def sender(self, index: int = 0, **kwargs: float) -> TxSender:
        """A ``TxSender`` for dev account ``index``."""
        return TxSender(self.chain, Account.from_key(self.accounts[index].private_key), **kwargs)

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks."""
        if isinstance(self.chain, EthTesterChain):
            self.chain.mine(blocks)
        else:
            self.chain.request("anvil_mine", [hex(blocks)])


@pytest.fixture(params=["ethtester", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain_env(request: pytest.FixtureRequest) -> Iterator[ChainEnv]:
    """Each adapter in turn: a fresh ``EthTesterChain``, or an ``RpcChain`` on the session anvil rolled back
    after the test."""
    if request.param == "ethtester":
        eth_tester = EthTesterChain()
        yield ChainEnv("ethtester", eth_tester, eth_tester.dev_accounts(), ETH_TESTER_CHAIN_ID)
        return
    node: AnvilProcess = request.getfixturevalue("anvil_snapshot")
    with RpcChain(node.url) as rpc:
        yield ChainEnv("anvil", rpc, node.dev_accounts(), ANVIL_CHAIN_ID)


@pytest.fixture
def chain(chain_env: ChainEnv) -> EthTesterChain | RpcChain:
    """The ``Chain`` under test (parametrized over every adapter)."""
    return chain_env.chain


@pytest.fixture
def dev_accounts(chain_env: ChainEnv) -> list[DevAccount]:
    """Funded accounts of the chain under test, with their keys."""
    return chain_env.accounts


# ------------------------------------------------------------------------------------------------ PostgreSQL

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        admin = None
        reason = str(exc).strip()
    require(admin is not None, f"PostgreSQL is not reachable on 127.0.0.1:5432: {reason if admin is None else ''}")
    assert admin is not None
    name = f"deworker_store_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

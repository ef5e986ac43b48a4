"""Shared fixtures: real chains (in-process py-evm and an anvil node), migrated databases (SQLite and PostgreSQL,
one empty database per test), a scrubbed environment, and ``require``.

``require(condition, reason)`` skips a test whose prerequisite (anvil, PostgreSQL, Chromium, ...) is missing,
or fails it when ``DEWORKER_STRICT_TESTS=1`` (CI), so a missing tool can never turn a suite green by skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eth_account import Account
from sqlalchemy import Engine, MetaData, text

from orchestrator.adapters.chain import (
    ANVIL_CHAIN_ID,
    AnvilNotFound,
    AnvilProcess,
    DevAccount,
    EthTesterChain,
    MultiRpcChain,
    RpcChain,
    TxSender,
    find_anvil,
)
from orchestrator.adapters.sql import make_engine, migrate

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


@pytest.fixture(autouse=True)
def _fresh_cli_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with the CLI's process state unset. A test that invoked the app with ``--config`` left
    ``state.config_path`` behind, and a later test invoking a sub-app (which skips the root callback) loaded that
    other test's config: it passed or failed by test order (seen under pytest-xdist)."""
    from orchestrator.entry.cli import context as cli

    monkeypatch.setattr(cli.state, "config_path", None)
    monkeypatch.setattr(cli.state, "debug", False)
    monkeypatch.setattr(cli.state, "_config", None)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A 127.0.0.1 port where every connection is refused for the whole test: bound but never listening, so no
    other process can take it meanwhile (another xdist worker's server, a connection's local port), as it could
    a port found free and let go."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


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
    chain: EthTesterChain | RpcChain | MultiRpcChain
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


def make_chain_env(request: pytest.FixtureRequest, kind: str) -> Iterator[ChainEnv]:
    """The body of ``chain_env`` for one ``kind``: "ethtester", "anvil" or "anvil-pool" (a ``MultiRpcChain`` of
    one node, the session anvil: what ``Runtime.chain`` builds for ``chain.rpc_url``)."""
    if kind == "ethtester":
        eth_tester = EthTesterChain()
        yield ChainEnv("ethtester", eth_tester, eth_tester.dev_accounts(), ETH_TESTER_CHAIN_ID)
        return
    node: AnvilProcess = request.getfixturevalue("anvil_snapshot")
    chain = MultiRpcChain.from_urls([node.url]) if kind == "anvil-pool" else RpcChain(node.url)
    with chain:
        yield ChainEnv(kind, chain, node.dev_accounts(), ANVIL_CHAIN_ID)


@pytest.fixture(params=["ethtester", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain_env(request: pytest.FixtureRequest) -> Iterator[ChainEnv]:
    """Each adapter in turn: a fresh ``EthTesterChain``, or an ``RpcChain`` on the session anvil rolled back
    after the test (``tests/test_chain.py`` adds ``MultiRpcChain``)."""
    yield from make_chain_env(request, request.param)


@pytest.fixture
def chain(chain_env: ChainEnv) -> EthTesterChain | RpcChain | MultiRpcChain:
    """The ``Chain`` under test (parametrized over every adapter)."""
    return chain_env.chain


@pytest.fixture
def dev_accounts(chain_env: ChainEnv) -> list[DevAccount]:
    """Funded accounts of the chain under test, with their keys."""
    return chain_env.accounts


# ------------------------------------------------------------------------------------------------- databases
#
# The database fixtures give a test its own empty database at the newest revision (``migrate``):
#
# - ``sqlite_engine``: a file ``tmp_path / "deworker.db"``, a copy of one database migrated once per session (a
#   copy takes 5 ms, running the migrations 110 ms);
# - ``pg_engine``: one PostgreSQL database per session, migrated once and emptied before each test (rows deleted,
#   sequences restarted, connections left by the previous test closed; rebuilt if a test changed its schema).
#   Measured per test: emptying it 15 ms, TRUNCATE of every table 75-145 ms, a fresh schema migrated and dropped
#   200 ms, a fresh database copied from a migrated template 200 ms;
# - ``db_engine``: each backend in turn (params "sqlite" and "postgresql", the dialect names);
# - ``reopen(engine)``: a second engine on the same database, as a restarted (or another) process would have.

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
#: The database the admin connection uses to create and drop the session's database.
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"

#: Tables, columns, indexes and sequences of the public schema, hashed: what a test must not leave changed.
SCHEMA_FINGERPRINT = """
SELECT md5(string_agg(concat_ws(' ', c.relname, c.relkind, a.attname, a.atttypid), ',' ORDER BY c.relname, a.attnum))
FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'public'::regnamespace
"""


class PgTestDatabase:
    """A migrated PostgreSQL database for one test session; ``empty()`` readies it for the next test."""

    def __init__(self, admin: psycopg.Connection[Any], name: str) -> None:
        self.admin = admin
        self.name = name
        self.url = f"{PG_SERVER}/{name}"
        self._schema = ""
        self._empty_sql: list[str] = []

    def build(self) -> None:
        """(Re)create the database and migrate it; remember its schema and how to empty it."""
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        engine = make_engine(self.url)
        try:
            migrate(engine)
            tables = MetaData()
            with engine.connect() as conn:
                tables.reflect(conn)
                self._schema = conn.execute(text(SCHEMA_FINGERPRINT)).scalar_one()
                sequences = conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"))
                restarts = [f"setval('\"{seq}\"', 1, false)" for seq in sequences.scalars()]
        finally:
            engine.dispose()
        # replica (needs a superuser, as postgres is): no triggers fire, so the append-only tables can be emptied
        self._empty_sql = [
            "SET LOCAL session_replication_role = replica",
            *(f'DELETE FROM "{t.name}"' for t in reversed(tables.sorted_tables) if t.name != "alembic_version"),
        ]
        if restarts:
            self._empty_sql.append(f"SELECT {', '.join(restarts)}")

    def empty(self) -> None:
        """Close connections left on the database, then delete every row and restart every sequence (much faster
        than TRUNCATE, which replaces each table's files). A test that changed the schema gets a rebuilt one."""
        with psycopg.connect(self.url, connect_timeout=3) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            unchanged = conn.execute(SCHEMA_FINGERPRINT).fetchone() == (self._schema,)
            if unchanged:
                for statement in self._empty_sql:
                    conn.execute(statement)
        if not unchanged:
            self.build()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgTestDatabase]:
    """The session's PostgreSQL database on 127.0.0.1:5432, dropped at the end (``require``: skipped, or failed
    in strict mode, when the server is unreachable)."""
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        require(False, f"PostgreSQL is not reachable on 127.0.0.1:5432: {str(exc).strip()}")
        raise
    with admin:
        database = PgTestDatabase(admin, f"deworker_test_{secrets.token_hex(4)}")
        try:
            database.build()
            yield database
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


@pytest.fixture
def pg_engine(pg_database: PgTestDatabase) -> Iterator[Engine]:
    """PostgreSQL only: an empty, migrated database for this test (a new engine on the emptied session database;
    its pool is sized for the 16-thread wallet tests)."""
    pg_database.empty()
    engine = make_engine(pg_database.url, pool_size=20, max_overflow=40)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once for the session; ``sqlite_engine`` copies it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "deworker.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()  # the last connection checkpoints the WAL: the file alone is the database
    return path


@pytest.fixture
def sqlite_engine(migrated_sqlite_file: Path, tmp_path: Path) -> Iterator[Engine]:
    """SQLite only: an empty, migrated database in ``tmp_path / "deworker.db"``."""
    path = tmp_path / "deworker.db"
    shutil.copyfile(migrated_sqlite_file, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    """Each backend in turn: ``sqlite_engine``, then ``pg_engine`` (the param is ``engine.dialect.name``)."""
    engine: Engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    return engine


def reopen(engine: Engine, **pg_settings: str) -> Engine:
    """A second engine on ``engine``'s database, with its own pool, as a restarted (or another) process would
    have; the caller disposes it. ``pg_settings`` (PostgreSQL) are set on its connections, e.g.
    ``TimeZone="America/New_York"``."""
    url = engine.url.render_as_string(hide_password=False)
    if not pg_settings:
        return make_engine(url)
    return make_engine(url, connect_args={"options": " ".join(f"-c {k}={v}" for k, v in pg_settings.items())})

"""Engines and migrations: ``make_engine(url)`` and ``migrate(engine)``. Nothing here runs at import time.

SQLite (the default, ``sqlite:///<path>``) gets WAL, foreign keys on, a busy timeout (writers queue instead of
failing), ``check_same_thread=False`` (the scheduler's threads share the pool) and ``BEGIN IMMEDIATE`` for every
transaction: a transaction holds the write lock from its first read, so read-check-write sequences are serialized
exactly as ``SELECT ... FOR UPDATE`` serializes them on PostgreSQL (the wallet journal relies on the same).
The one exception is a transaction marked ``read_only``: it begins deferred (a WAL snapshot, no write lock), so
pure reads neither wait for nor hold up writers.
Commits wait for the disk (``synchronous=FULL``) unless the transaction is ``relax``-ed: records the orchestrator
can re-derive after a power loss skip the fsync, which costs milliseconds per commit.
PostgreSQL URLs (``postgresql://`` or ``postgresql+psycopg://``) use psycopg 3.

``translate`` turns SQLAlchemy exceptions into the store's exception tree; nothing above this package sees them.

Migrations are the Alembic scripts shipped in ``orchestrator/migrations``; no ``alembic.ini`` is needed at run
time. To write a new revision after changing the models (alembic.ini there is for this only)::

    cd orchestrator/migrations
    ../../.venv/bin/alembic -x url=sqlite:////tmp/scratch.db upgrade head
    ../../.venv/bin/alembic -x url=sqlite:////tmp/scratch.db revision --autogenerate -m "what changed"

then review the new file by hand (drop changes that are not yours, keep it ruff/mypy clean).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, SQLModel

from orchestrator.adapters.sql.errors import DuplicateRecord, StoreError, StoreUnavailable

#: Milliseconds a SQLite writer waits for the lock before giving up with StoreUnavailable.
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Execution option (``SYNC_OPTION: RELAXED``) set by ``relax``: this transaction may commit without an fsync.
SYNC_OPTION = "deworker_sync"
RELAXED = "relaxed"
#: Execution option set by ``read_only``: this transaction only reads.
READ_ONLY_OPTION = "deworker_read_only"
#: The Alembic scripts, as a package resource (works from a wheel as well as from a checkout).
SCRIPT_LOCATION = "orchestrator.adapters.sql:migrations"
#: Modules whose import registers tables in ``SQLModel.metadata``; optional ones may not exist yet.
MODEL_MODULES = (
    "orchestrator.adapters.sql.models",
    "orchestrator.adapters.sql.spend",
    "orchestrator.adapters.sql.leases",
    "orchestrator.adapters.sql.endpoints",
    "orchestrator.entry.web.models",
    "wallets.journal",
)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``: SQLite (a file; its folder is created) or PostgreSQL through psycopg 3.

    ``kwargs`` go to ``sqlalchemy.create_engine`` (e.g. ``echo=True``).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"not a database URL: {url!r}",
            hint="use sqlite:///path/to/deworker.db or postgresql://user@host:5432/dbname",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    elif backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgresql+psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
    else:
        raise StoreError(
            f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}",
            hint="use sqlite:///path/to/deworker.db or postgresql://user@host:5432/dbname",
        )
    event.listen(engine, "before_cursor_execute", _storable_text, retval=True)
    return engine


#: What no text column can hold on every backend: NUL (PostgreSQL refuses it in text, and it truncates C strings)
#: and lone surrogates (not encodable as UTF-8, so neither driver can send them).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _storable_text(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    """Every text parameter, on both backends, with NUL and lone surrogates replaced by U+FFFD: text from
    outside (a spec's CID, a reason, a model's summary) is stored the same way on SQLite and PostgreSQL and can
    never make a write fail — a failed write on the poll path would stall a board. Specs themselves refuse these
    characters before they get here (``orchestrator.domain.untrusted``); this is the floor under everything else."""
    if not _has_unstorable(parameters):
        return statement, parameters
    return statement, _cleaned(parameters)


def _has_unstorable(params: Any) -> bool:
    # parameters come as a dict, a tuple of values, or (executemany) a sequence of either
    if isinstance(params, str):
        return _UNSTORABLE.search(params) is not None
    if isinstance(params, dict):
        return any(_has_unstorable(v) for v in params.values())
    if isinstance(params, list | tuple):
        return any(_has_unstorable(v) for v in params)
    return False


def _cleaned(params: Any) -> Any:
    if isinstance(params, str):
        return _UNSTORABLE.sub("\ufffd", params)
    if isinstance(params, dict):
        return {k: _cleaned(v) for k, v in params.items()}
    if isinstance(params, list | tuple):
        return type(params)(_cleaned(v) for v in params)
    return params


def _sqlite_on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):  # pragma: no cover - another DBAPI
        return
    dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own: _sqlite_on_begin does
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # answers "memory" for in-memory databases, which is fine
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # WAL's default (NORMAL) can lose the last commits on power loss; the journal holds signed money moves.
        # (``relax`` lowers it to NORMAL for single commits the orchestrator can re-derive.)
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()
    connection_record.info["synchronous"] = "FULL"


def _sqlite_on_begin(connection: Connection) -> None:
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":  # no transaction (a migration's PRAGMA foreign_keys needs it)
        return
    if options.get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")  # deferred: it commits nothing, so its synchronous level is moot
        return
    level = "NORMAL" if options.get(SYNC_OPTION) == RELAXED else "FULL"
    if connection.info.get("synchronous") != level:  # per DBAPI connection; it cannot change inside a transaction
        connection.exec_driver_sql(f"PRAGMA synchronous={level}")
        connection.info["synchronous"] = level
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def relax(session: Session) -> None:
    """Let ``session``'s transaction commit without waiting for the disk; call it before its first statement.

    SQLite commits it with ``synchronous=NORMAL`` (no fsync of the WAL), PostgreSQL with ``synchronous_commit=off``.
    Either way the commit survives a crash of the process and is atomic; a power loss or OS crash can lose it,
    together with the relaxed commits after it, but never a commit followed by a durable one (the WAL is replayed
    in order). So relax only records the orchestrator re-derives after losing them (from the chain, or by running
    the step again), and make the commit that precedes any side effect durable (the default).
    """
    connection = session.connection(execution_options={SYNC_OPTION: RELAXED})
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


def read_only(session: Session) -> None:
    """Mark ``session``'s transaction as reads only; call it before its first statement. On SQLite it begins
    deferred instead of ``BEGIN IMMEDIATE``: it reads one consistent snapshot and takes no write lock, so it must not
    write (a write would have to upgrade the lock and could fail with "database is locked"). Never use it for a read
    that decides a write: read and write in one ordinary transaction. PostgreSQL transactions are unchanged."""
    session.connection(execution_options={READ_ONLY_OPTION: True})


@contextmanager
def transaction(engine: Engine, *, durable: bool = True, reads_only: bool = False) -> Iterator[Session]:
    """One database transaction: committed when the block ends, rolled back if it raises. ``durable=False``
    commits without waiting for the disk (``relax``): only for records re-derived after losing them;
    ``reads_only`` takes no write lock (``read_only``). SQLAlchemy's exceptions pass through: each repository
    turns them into its own errors (``translate`` for the store, ``JournalError`` for the wallet journal)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if reads_only:
            read_only(session)
        elif not durable:
            relax(session)
        yield session


def insert_of(session: Session, model: type[SQLModel]) -> PgInsert | SqliteInsert:
    """An INSERT of ``model`` in the session's dialect, which has ``on_conflict_do_nothing`` / ``_do_update``
    (the generic INSERT has neither)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(model)


def translate(exc: SQLAlchemyError, *, doing: str, url: URL | None = None) -> StoreError:
    """The store error for a SQLAlchemy exception raised while ``doing`` something (raise it ``from exc``);
    ``url``, when known, lets a missing PostgreSQL database's hint be the ``createdb`` command to type."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if isinstance(exc, IntegrityError):
        return DuplicateRecord(f"{doing}: the database refused a duplicate or dangling record ({detail})")
    missing = _MISSING_DATABASE.search(detail)
    if isinstance(exc, OperationalError) and missing and url is not None and url.get_backend_name() == "postgresql":
        return StoreUnavailable(
            f"{doing}: PostgreSQL has no database {missing.group(1)!r}",
            hint=f"create it: `{createdb_command(url)}` (or point db.url at an existing database)",
        )
    if isinstance(exc, OperationalError):
        return StoreUnavailable(
            f"{doing}: the database is unavailable or locked ({detail})",
            hint="check that the database server is running; on SQLite, that no other process holds a long lock",
        )
    return StoreError(f"{doing}: {exc.__class__.__name__}: {detail}")


_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist')


def createdb_command(url: URL) -> str:
    """The ``createdb`` command line that creates ``url``'s database on its server (no password in it)."""
    parts = ["createdb"]
    if url.host:
        parts += ["-h", url.host]
    if url.port:
        parts += ["-p", str(url.port)]
    if url.username:
        parts += ["-U", url.username]
    parts.append(url.database or "deworker")
    return " ".join(shlex.quote(p) for p in parts)


def target_metadata() -> MetaData:
    """``SQLModel.metadata`` with every Deworker table registered: the store's, the agents' daily spend, the
    review app's and the wallet journal's. Alembic's env.py and the schema test both use this."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return SQLModel.metadata


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    """An Alembic config built in code; with ``engine``, env.py migrates through it."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database schema up to the newest revision. Safe to run on every start."""
    try:
        command.upgrade(alembic_config(engine), "head")
    except SQLAlchemyError as exc:
        raise translate(
            exc, doing=f"migrating {engine.url.render_as_string(hide_password=True)}", url=engine.url
        ) from exc
    except CommandError as exc:
        raise StoreError(
            f"cannot migrate {engine.url.render_as_string(hide_password=True)}: {exc}",
            hint="the database may have been migrated by a newer Deworker; upgrade Deworker or restore a backup",
        ) from exc

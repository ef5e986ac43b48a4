"""``SqlLeases``: named leases held in the database, so that what must happen in one place at a time (the
single-process service, one slot of a model endpoint) is decided by the database, not by a process.

A lease row names its holder (``<host>:<pid>:<random>``, with the host and pid in their own columns, for the
sentence an operator reads), when it was taken (``since``), its last heartbeat and its expiry. ``take`` grants it
when it is free, expired, or already the caller's; otherwise it answers who holds it. Each change of hands adds
one to ``token``: a holder that lost its lease (it stopped heartbeating for longer than the expiry, and another
took it) can no longer renew or release it, because its token is old: its writes are fenced.

One transaction per call: the row is created if missing (``ON CONFLICT DO NOTHING``), then read locked (``SELECT
... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), then written. Times are this machine's UTC clock:
machines sharing a database must keep their clocks in sync (NTP) to well within a lease's expiry.

The table is created by the Alembic revision ``r0013_fleet_leases``. Must not import the orchestrator's services.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, select

from orchestrator.adapters.sql.base import utcnow
from orchestrator.adapters.sql.db import insert_of, transaction, translate
from orchestrator.adapters.sql.types import UtcDateTime

#: Characters of a lease name: ``endpoint:<base URL> <model>#<slot>`` fits.
LEASE_NAME_LEN = 400
HOLDER_LEN = 200


class LeaseRow(SQLModel, table=True):
    """One named lease: who holds it, since when, until when (see the module docstring)."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=LEASE_NAME_LEN)
    holder: str | None = Field(default=None, max_length=HOLDER_LEN)
    host: str | None = Field(default=None, max_length=255)
    pid: int | None = Field(default=None)
    token: int = Field(default=0, sa_type=BigInteger)
    since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    note: str | None = Field(default=None, max_length=HOLDER_LEN)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who takes a lease: this process (``Holder.here()``), told apart from an earlier process with the same pid
    (pids are reused) by a random part."""

    host: str
    pid: int
    id: str

    @classmethod
    def here(cls) -> Holder:
        host, pid = socket.gethostname(), os.getpid()
        return cls(host=host, pid=pid, id=f"{host}:{pid}:{secrets.token_hex(6)}"[:HOLDER_LEN])


@dataclass(frozen=True, slots=True)
class LeaseState:
    """A lease as ``take`` found or left it. ``ours``: the caller holds it now, with ``token``."""

    name: str
    ours: bool
    holder: str | None
    host: str | None
    pid: int | None
    token: int
    since: datetime | None
    heartbeat_at: datetime | None
    expires_at: datetime | None
    note: str | None = None

    def alive(self, now: datetime) -> bool:
        return self.holder is not None and self.expires_at is not None and self.expires_at > now


def _state(row: LeaseRow, *, ours: bool) -> LeaseState:
    return LeaseState(
        name=row.name,
        ours=ours,
        holder=row.holder,
        host=row.host,
        pid=row.pid,
        token=row.token,
        since=row.since,
        heartbeat_at=row.heartbeat_at,
        expires_at=row.expires_at,
        note=row.note,
    )


class SqlLeases:
    """Named leases in the ``lease`` table. Thread- and process-safe (one transaction per call)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    def take(self, name: str, holder: Holder, *, ttl: float, note: str | None = None) -> LeaseState:
        """Take lease ``name`` for ``ttl`` seconds if it is free, expired or ``holder``'s already (then it is
        renewed, same token); else return its current holder's state, ``ours`` False."""
        with self._tx(f"taking lease {name!r}") as s:
            s.execute(insert_of(s, LeaseRow).values(name=name, token=0).on_conflict_do_nothing())
            row = s.exec(select(LeaseRow).where(col(LeaseRow.name) == name).with_for_update()).one()
            now = self._clock()
            if row.holder == holder.id and row.expires_at is not None and row.expires_at > now:
                row.heartbeat_at, row.expires_at = now, now + timedelta(seconds=ttl)
                return _state(row, ours=True)
            if row.holder is not None and row.expires_at is not None and row.expires_at > now:
                return _state(row, ours=False)
            row.holder, row.host, row.pid, row.note = holder.id, holder.host, holder.pid, note
            row.token += 1
            row.since, row.heartbeat_at, row.expires_at = now, now, now + timedelta(seconds=ttl)
            s.add(row)
            s.flush()
            return _state(row, ours=True)

    def renew(self, name: str, holder: Holder, *, token: int, ttl: float) -> bool:
        """Extend ``holder``'s lease by ``ttl`` seconds from now; False (nothing written) if the lease has changed
        hands since ``token`` was granted: the caller lost it and must stop acting on it."""
        with self._tx(f"renewing lease {name!r}") as s:
            row = s.exec(select(LeaseRow).where(col(LeaseRow.name) == name).with_for_update()).one_or_none()
            if row is None or row.holder != holder.id or row.token != token:
                return False
            now = self._clock()
            row.heartbeat_at, row.expires_at = now, now + timedelta(seconds=ttl)
            s.add(row)
            return True

    def release(self, name: str, holder: Holder, *, token: int) -> bool:
        """Give the lease up (it is free at once); False if it had changed hands already."""
        with self._tx(f"releasing lease {name!r}") as s:
            row = s.exec(select(LeaseRow).where(col(LeaseRow.name) == name).with_for_update()).one_or_none()
            if row is None or row.holder != holder.id or row.token != token:
                return False
            row.holder, row.expires_at, row.note = None, None, None
            s.add(row)
            return True

    def leases(self, prefix: str = "") -> list[LeaseState]:
        """Every lease whose name starts with ``prefix``, held or not (``alive(now)`` tells), by name."""
        with self._tx("reading leases", reads_only=True) as s:
            rows = s.exec(
                select(LeaseRow).where(col(LeaseRow.name).startswith(prefix)).order_by(col(LeaseRow.name))
            ).all()
            return [_state(r, ours=False) for r in rows]

    @contextmanager
    def _tx(self, doing: str, *, reads_only: bool = False) -> Iterator[Session]:
        try:
            with transaction(self._engine, reads_only=reads_only) as session:
                yield session
        except SQLAlchemyError as exc:
            raise translate(exc, doing=doing) from exc


__all__ = ["Holder", "LeaseRow", "LeaseState", "SqlLeases"]

"""``DbEndpointGate``: model endpoints' limits held in the orchestrator's database (``agents.endpoints.EndpointGate``),
so that every agent on every worker sharing the database waits for the same slots and the same per-minute rates.

- **Slots**: an endpoint with ``concurrency: N`` has N lease rows (``endpoint:<key>#<i>`` in ``lease``); a call holds
  one, with an expiry (the call's timeout plus a margin), so a process that dies mid-call frees its slot by itself.
- **Rates**: one ``endpoint_window`` row per endpoint per UTC minute counts the requests started and the tokens used
  (tokens are known when the call returns, so a minute can overshoot ``tokens_per_minute`` by the calls in
  flight; the next call waits for the next minute). The rows are also the wait statistics ``deworker status`` shows.
  ``compact`` (the upkeep's, daily) folds the minutes older than a day into one row per endpoint at ``HISTORY``
  (1970-01-01), so the table stays small and the all-time sums ``/metrics`` reports never go down.
- **Fairness**: a waiting agent has an ``endpoint_waiter`` row (refreshed while it waits, so a dead waiter's row
  lapses); a free slot goes to the longest waiter first, across the fleet, so no agent starves past its budget.

One short transaction per attempt: slots locked (``FOR UPDATE`` / SQLite's ``BEGIN IMMEDIATE``), the minute's row
locked, older waiters counted, a slot taken. Waiters in this process are woken when a slot here is handed back;
others poll, from ``poll`` seconds doubling up to ``max_poll``.

The tables are created by the Alembic revision ``r0013_fleet_leases``. Must not import the orchestrator's services.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Engine, delete, func
from sqlalchemy import select as sql_select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, select

from agents.endpoints import Endpoint, EndpointPass
from orchestrator.adapters.sql.base import utcnow
from orchestrator.adapters.sql.db import insert_of, relax, transaction, translate
from orchestrator.adapters.sql.leases import HOLDER_LEN, LEASE_NAME_LEN, Holder, LeaseRow
from orchestrator.adapters.sql.types import UtcDateTime

#: Characters of an endpoint key (``<host>/<base URL> <model>``).
ENDPOINT_KEY_LEN = 360
#: Seconds a waiter's row lives without a refresh; it is refreshed every ``WAITER_REFRESH`` seconds while it waits.
WAITER_TTL = 10.0
WAITER_REFRESH = 2.0
#: The minute of an endpoint's folded history (``compact``): before any real minute, so no window query meets it.
HISTORY = datetime(1970, 1, 1, tzinfo=UTC)
#: Lease-name prefix of endpoint slots.
SLOT_PREFIX = "endpoint:"


class EndpointWindow(SQLModel, table=True):
    """One endpoint's minute: requests started, tokens used, and the waits that ended in it."""

    __tablename__ = "endpoint_window"

    endpoint: str = Field(primary_key=True, max_length=ENDPOINT_KEY_LEN)
    minute: datetime = Field(primary_key=True, sa_type=UtcDateTime)
    requests: int = Field(default=0)
    tokens: int = Field(default=0, sa_type=BigInteger)
    waits: int = Field(default=0)
    wait_ms: int = Field(default=0, sa_type=BigInteger)


class EndpointWaiter(SQLModel, table=True):
    """An agent waiting for an endpoint now (its row lapses at ``expires_at`` unless refreshed)."""

    __tablename__ = "endpoint_waiter"

    waiter: str = Field(primary_key=True, max_length=HOLDER_LEN)
    endpoint: str = Field(max_length=ENDPOINT_KEY_LEN, index=True)
    agent: str = Field(max_length=64)
    task: str = Field(max_length=LEASE_NAME_LEN)
    since: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """One endpoint as ``deworker status`` shows it: slots in use now, agents waiting now (and since when), and in
    the last hour the requests, tokens, waits and time waited."""

    endpoint: str
    slots: int
    in_use: int
    waiting: int
    oldest_wait: datetime | None
    requests: int
    tokens: int
    waits: int
    wait_seconds: float


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def slot_names(endpoint: Endpoint) -> list[str]:
    n = endpoint.limit.concurrency or 0
    return [f"{SLOT_PREFIX}{endpoint.key}#{i}"[:LEASE_NAME_LEN] for i in range(n)]


class DbEndpointGate:
    """An ``EndpointGate`` in the orchestrator's database (see the module docstring). Thread- and process-safe."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        poll: float = 0.05,
        max_poll: float = 0.5,
        holder: Holder | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._poll, self._max_poll = poll, max_poll
        self._holder = holder or Holder.here()
        self._ids = itertools.count(1)
        self._handed_back = threading.Condition()

    def __repr__(self) -> str:
        return f"DbEndpointGate({self._engine.url.render_as_string(hide_password=True)!r})"

    # ------------------------------------------------------------------------------------------- the port

    def enter(self, endpoint: Endpoint, *, agent: str, task: str, timeout: float, hold: float) -> EndpointPass | None:
        waiter = f"{self._holder.id}:{next(self._ids)}"[:HOLDER_LEN]
        start = time.monotonic()
        poll, refreshed, registered = self._poll, 0.0, False
        while True:
            waited = time.monotonic() - start
            refresh = registered and waited - refreshed >= WAITER_REFRESH
            got = self._attempt(
                endpoint,
                waiter,
                agent=agent,
                task=task,
                hold=hold,
                waited=waited,
                registered=registered,
                refresh=refresh,
            )
            if got is not None:
                return got
            if refresh:
                refreshed = waited
            registered = True
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                self._forget(waiter)
                return None
            with self._handed_back:
                self._handed_back.wait(min(poll, left))
            poll = min(poll * 2, self._max_poll)

    def leave(self, ticket: EndpointPass, *, tokens: int) -> None:
        try:
            with transaction(self._engine, durable=False) as s:
                if ticket.slot is not None:
                    row = s.exec(select(LeaseRow).where(col(LeaseRow.name) == ticket.slot).with_for_update()).one()
                    if row.holder == ticket.holder and row.token == ticket.token:  # not lapsed and retaken
                        row.holder, row.expires_at, row.note = None, None, None
                        s.add(row)
                if tokens:
                    minute = _minute(self._clock())
                    self._window(s, ticket.key, minute)
                    s.execute(
                        EndpointWindow.__table__.update()  # type: ignore[attr-defined]
                        .where(EndpointWindow.endpoint == ticket.key, EndpointWindow.minute == minute)
                        .values(tokens=EndpointWindow.tokens + tokens)
                    )
        except SQLAlchemyError as exc:
            raise translate(exc, doing=f"handing back a pass of endpoint {ticket.key!r}") from exc
        finally:
            with self._handed_back:
                self._handed_back.notify_all()

    # ------------------------------------------------------------------------------------------- status

    def status(self, *, hours: float = 1.0) -> list[EndpointStatus]:
        """Every endpoint seen in the last ``hours`` (or with slots): slots in use, waiting now, and the window's
        sums."""
        now = self._clock()
        since = now - timedelta(hours=hours)
        with self._tx("reading endpoint status") as s:
            slots: dict[str, tuple[int, int]] = {}
            for row in s.exec(select(LeaseRow).where(col(LeaseRow.name).startswith(SLOT_PREFIX))).all():
                key = row.name[len(SLOT_PREFIX) :].rsplit("#", 1)[0]
                total, used = slots.get(key, (0, 0))
                alive = row.holder is not None and row.expires_at is not None and row.expires_at > now
                slots[key] = (total + 1, used + int(alive))
            sums = {
                r[0]: (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0))
                for r in s.execute(
                    sql_select(
                        col(EndpointWindow.endpoint),
                        func.sum(EndpointWindow.requests),
                        func.sum(EndpointWindow.tokens),
                        func.sum(EndpointWindow.waits),
                        func.sum(EndpointWindow.wait_ms),
                    )
                    .where(col(EndpointWindow.minute) >= _minute(since))
                    .group_by(col(EndpointWindow.endpoint))
                ).all()
            }
            waiting = {
                r[0]: (int(r[1]), r[2])
                for r in s.execute(
                    sql_select(col(EndpointWaiter.endpoint), func.count(), func.min(EndpointWaiter.since))
                    .where(col(EndpointWaiter.expires_at) > now)
                    .group_by(col(EndpointWaiter.endpoint))
                ).all()
            }
        out = []
        for key in sorted(set(slots) | set(sums) | set(waiting)):
            total, used = slots.get(key, (0, 0))
            requests, tokens, waits, wait_ms = sums.get(key, (0, 0, 0, 0))
            count, oldest = waiting.get(key, (0, None))
            out.append(
                EndpointStatus(
                    endpoint=key,
                    slots=total,
                    in_use=used,
                    waiting=count,
                    oldest_wait=oldest,
                    requests=requests,
                    tokens=tokens,
                    waits=waits,
                    wait_seconds=wait_ms / 1000,
                )
            )
        return out

    def compact(self, *, keep: timedelta = timedelta(days=1)) -> int:
        """Fold each endpoint's minutes older than ``keep`` into its ``HISTORY`` row (sums unchanged), in one
        transaction; returns the number of minute rows folded."""
        cutoff = _minute(self._clock() - keep)
        old = (col(EndpointWindow.minute) < cutoff) & (col(EndpointWindow.minute) > HISTORY)
        with self._tx("compacting the model endpoints' minutes") as s:
            rows = s.execute(
                sql_select(
                    col(EndpointWindow.endpoint),
                    func.count(),
                    func.sum(EndpointWindow.requests),
                    func.sum(EndpointWindow.tokens),
                    func.sum(EndpointWindow.waits),
                    func.sum(EndpointWindow.wait_ms),
                )
                .where(old)
                .group_by(col(EndpointWindow.endpoint))
            ).all()
            folded = 0
            for key, count, requests, tokens, waits, wait_ms in rows:
                history = self._window(s, key, HISTORY, lock=True)
                history.requests += int(requests or 0)
                history.tokens += int(tokens or 0)
                history.waits += int(waits or 0)
                history.wait_ms += int(wait_ms or 0)
                s.add(history)
                folded += int(count)
            s.execute(delete(EndpointWindow).where(old))
        return folded

    # ------------------------------------------------------------------------------------------- inside

    def _attempt(
        self,
        endpoint: Endpoint,
        waiter: str,
        *,
        agent: str,
        task: str,
        hold: float,
        waited: float,
        registered: bool,
        refresh: bool,
    ) -> EndpointPass | None:
        """One try in one transaction: a pass, or None (then this waiter's row is written or refreshed)."""
        lim, key = endpoint.limit, endpoint.key
        with self._tx(f"waiting for model endpoint {key!r}") as s:
            relax(s)  # slots lapse by themselves; a lost commit costs a wait, never a second call in flight
            now = self._clock()
            names = slot_names(endpoint)
            free: list[LeaseRow] = []
            if names:
                for name in names:
                    s.execute(insert_of(s, LeaseRow).values(name=name, token=0).on_conflict_do_nothing())
                rows = s.exec(
                    select(LeaseRow).where(col(LeaseRow.name).in_(names)).order_by(col(LeaseRow.name)).with_for_update()
                ).all()
                free = [r for r in rows if r.holder is None or r.expires_at is None or r.expires_at <= now]
            minute = _minute(now)
            window = self._window(s, key, minute, lock=True)
            full = (not free and bool(names)) or (
                (lim.requests_per_minute is not None and window.requests >= lim.requests_per_minute)
                or (lim.tokens_per_minute is not None and window.tokens >= lim.tokens_per_minute)
            )
            if not full:
                older = self._older_waiters(s, key, waiter, now, registered=registered)
                full = older >= (len(free) if names else 1)
            if full:
                if not registered:
                    s.add(
                        EndpointWaiter(
                            waiter=waiter,
                            endpoint=key,
                            agent=agent[:64],
                            task=task[:LEASE_NAME_LEN],
                            since=now,
                            expires_at=now + timedelta(seconds=WAITER_TTL),
                        )
                    )
                elif refresh:
                    row = s.get(EndpointWaiter, waiter)
                    if row is not None:
                        row.expires_at = now + timedelta(seconds=WAITER_TTL)
                        s.add(row)
                return None
            slot: LeaseRow | None = free[0] if names else None
            token = 0
            if slot is not None:
                slot.holder, slot.host, slot.pid = waiter, self._holder.host, self._holder.pid
                slot.token += 1
                slot.since, slot.heartbeat_at, slot.expires_at = now, now, now + timedelta(seconds=hold)
                slot.note = f"{agent} {task}"[:HOLDER_LEN]
                s.add(slot)
                token = slot.token
            window.requests += 1
            if registered:
                window.waits += 1
                window.wait_ms += int(waited * 1000)
                s.execute(delete(EndpointWaiter).where(col(EndpointWaiter.waiter) == waiter))
            s.add(window)
            return EndpointPass(
                key=key, holder=waiter, slot=None if slot is None else slot.name, token=token, waited=waited
            )

    @staticmethod
    def _older_waiters(s: Session, key: str, waiter: str, now: datetime, *, registered: bool) -> int:
        """Live waiters for ``key`` ahead of ``waiter`` (all of them, if it has no row yet)."""
        query = (
            select(func.count())
            .select_from(EndpointWaiter)
            .where(col(EndpointWaiter.endpoint) == key, col(EndpointWaiter.expires_at) > now)
            .where(col(EndpointWaiter.waiter) != waiter)
        )
        if registered:
            mine = s.get(EndpointWaiter, waiter)
            if mine is not None:
                query = query.where(
                    (col(EndpointWaiter.since) < mine.since)
                    | ((col(EndpointWaiter.since) == mine.since) & (col(EndpointWaiter.waiter) < waiter))
                )
        return int(s.execute(query).scalar_one())

    def _window(self, s: Session, key: str, minute: datetime, *, lock: bool = False) -> EndpointWindow:
        s.execute(
            insert_of(s, EndpointWindow)
            .values(endpoint=key, minute=minute, requests=0, tokens=0, waits=0, wait_ms=0)
            .on_conflict_do_nothing()
        )
        query = select(EndpointWindow).where(col(EndpointWindow.endpoint) == key, col(EndpointWindow.minute) == minute)
        return s.exec(query.with_for_update() if lock else query).one()

    def _forget(self, waiter: str) -> None:
        with self._tx("forgetting an endpoint waiter") as s:
            s.execute(delete(EndpointWaiter).where(col(EndpointWaiter.waiter) == waiter))

    @contextmanager
    def _tx(self, doing: str) -> Iterator[Session]:
        try:
            with transaction(self._engine) as session:
                yield session
        except SQLAlchemyError as exc:
            raise translate(exc, doing=doing) from exc

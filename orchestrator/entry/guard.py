"""``ProcessGuard``: the single-process service's claim on its database, so a second ``deworker run`` on the same
database is refused instead of running every agent twice.

The claim is a lease row (``orchestrator.adapters.sql.leases``) held by the database, not a pid file: it works for
processes on different machines sharing one PostgreSQL, and a process that dies without stopping (kill -9, a
power cut) blocks nobody for longer than ``service.lease_seconds``. A heartbeat thread renews it every third of
that; if a renewal finds the lease taken over, or the database has not answered for longer than the lease, the
guard reports the loss (``on_lost``) and the runner stops: it can no longer be sure it is the only one.

Must not import the CLI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from orchestrator.adapters.sql.leases import Holder, LeaseState, SqlLeases
from orchestrator.domain.errors import DeworkerError, LeaseHeld

log = logging.getLogger(__name__)

#: The lease the single-process service holds.
SERVICE_LEASE = "service:single-process"


def _when(at: datetime | None) -> str:
    return "?" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def held_by(state: LeaseState, now: datetime) -> str:
    """The sentence naming who holds the service's lease: host, pid, since, last heartbeat."""
    ago = ""
    if state.heartbeat_at is not None:
        ago = f", last heartbeat {max(0.0, (now - state.heartbeat_at).total_seconds()):.0f} s ago"
    return f"pid {state.pid} on host {state.host}, running since {_when(state.since)}{ago}"


class ProcessGuard:
    """Holds ``SERVICE_LEASE`` while the service runs (``acquire`` ... ``release``)."""

    def __init__(
        self,
        leases: SqlLeases,
        *,
        ttl: float,
        holder: Holder | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.leases = leases
        self.ttl = ttl
        self.holder = holder or Holder.here()
        self.on_lost = on_lost
        self._token: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, or raise ``LeaseHeld`` naming the live process that holds it; then start heartbeating.
        A no-op while this guard holds it already (the CLI takes it before starting the model and the wallets)."""
        if self._thread is not None and self._thread.is_alive():
            return
        state = self.leases.take(SERVICE_LEASE, self.holder, ttl=self.ttl, note="deworker run")
        if not state.ours:
            raise LeaseHeld(
                "another `deworker run` is already using this database: " + held_by(state, self.leases.now()),
                hint=f"stop that one first (Ctrl-C, or `kill {state.pid}` on {state.host}); one database serves one "
                f"`deworker run`. If it died without stopping, its lease lapses at {_when(state.expires_at)} "
                "(service.lease_seconds after its last heartbeat)",
            )
        self._token = state.token
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="deworker-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop heartbeating and free the lease (a clean stop: the next `deworker run` may start at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._token is not None:
            try:
                self.leases.release(SERVICE_LEASE, self.holder, token=self._token)
            except DeworkerError as exc:  # it lapses by itself
                log.warning("could not release the service lease: %s", exc.message)
            self._token = None

    def _beat(self) -> None:
        last_ok = time.monotonic()
        assert self._token is not None
        token = self._token
        while not self._stop.wait(self.ttl / 3):
            try:
                renewed = self.leases.renew(SERVICE_LEASE, self.holder, token=token, ttl=self.ttl)
            except DeworkerError as exc:
                if time.monotonic() - last_ok < self.ttl:
                    log.warning("renewing the service lease failed (will retry): %s", exc.message)
                    continue
                renewed = False
            if renewed:
                last_ok = time.monotonic()
                continue
            self._token = None
            reason = "this process lost its lease on the database (it could not renew it in time), so another may run"
            log.error("%s: stopping", reason)
            if self.on_lost is not None:
                self.on_lost(reason)
            return

"""The single-process guard: a second ``deworker run`` on the same database is refused, naming the first (host,
pid, since), on SQLite and PostgreSQL — two real processes on a devnet; a first one killed with SIGKILL blocks
nobody for longer than its lease. And the lease table under it: take, renew, release, expiry and fencing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import Engine

from orchestrator.adapters.sql import make_engine
from orchestrator.adapters.sql.leases import Holder, SqlLeases
from orchestrator.domain.errors import LeaseHeld
from orchestrator.entry.guard import SERVICE_LEASE, ProcessGuard
from tests.test_cli import devnet, deworker  # noqa: F401  (devnet is a fixture)
from tests.test_service_run import PASSPHRASE, model_url  # noqa: F401  (model_url is a fixture)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_a_lease_is_one_holders_until_it_lapses_and_a_lapsed_holder_is_fenced(db_engine: Engine) -> None:
    clock = Clock()
    leases = SqlLeases(db_engine, clock=clock)
    first, second = Holder("a", 1, "a:1:x"), Holder("b", 2, "b:2:y")
    mine = leases.take("job", first, ttl=10)
    assert mine.ours and mine.token == 1
    theirs = leases.take("job", second, ttl=10)
    assert not theirs.ours and (theirs.host, theirs.pid, theirs.since) == ("a", 1, clock.now)
    clock.advance(5)
    assert leases.renew("job", first, token=1, ttl=10)  # the heartbeat moves the expiry on
    clock.advance(9)
    assert not leases.take("job", second, ttl=10).ours  # 14 s after taking it, 9 s after the heartbeat
    clock.advance(2)
    taken = leases.take("job", second, ttl=10)  # lapsed: taken over, with a new token
    assert taken.ours and taken.token == 2 and taken.host == "b"
    assert not leases.renew("job", first, token=1, ttl=10)  # the first holder is fenced: it cannot renew ...
    assert not leases.release("job", first, token=1)  # ... nor free what it no longer holds
    assert leases.take("job", second, ttl=10).token == 2  # a renewal by the holder keeps the token
    assert leases.release("job", second, token=2)
    assert leases.take("job", first, ttl=10).token == 3  # free again: taken at once


def test_a_second_guard_is_refused_naming_the_first(db_engine: Engine) -> None:
    leases = SqlLeases(db_engine)
    first = ProcessGuard(leases, ttl=30, holder=Holder("alpha", 4242, "alpha:4242:1"))
    first.acquire()
    try:
        with pytest.raises(LeaseHeld) as refused:
            ProcessGuard(leases, ttl=30, holder=Holder("beta", 7, "beta:7:2")).acquire()
        assert "another `deworker run` is already using this database: pid 4242 on host alpha" in refused.value.message
        assert "running since" in refused.value.message and "kill 4242" in (refused.value.hint or "")
    finally:
        first.release()
    second = ProcessGuard(leases, ttl=30, holder=Holder("beta", 7, "beta:7:2"))
    second.acquire()  # a clean stop frees the lease at once
    second.release()


def test_a_guard_that_lost_its_lease_reports_it(db_engine: Engine) -> None:
    """Its heartbeat finds another holder (the lease lapsed while this process could not renew): ``on_lost``."""
    leases = SqlLeases(db_engine)
    lost: list[str] = []
    guard = ProcessGuard(leases, ttl=1.5, holder=Holder("alpha", 1, "alpha:1:1"), on_lost=lost.append)
    guard.acquire()
    state = leases.leases(SERVICE_LEASE)[0]
    # another process takes it over as if this one had stopped renewing: the row's holder and token change
    with db_engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE lease SET holder = 'beta:9:9', token = token + 1 WHERE name = ?"
            if db_engine.dialect.name == "sqlite"
            else "UPDATE lease SET holder = 'beta:9:9', token = token + 1 WHERE name = %s",
            (SERVICE_LEASE,),
        )
    deadline = time.monotonic() + 30
    while not lost and time.monotonic() < deadline:
        time.sleep(0.1)
    guard.release()
    assert lost and "lost its lease" in lost[0]
    assert leases.leases(SERVICE_LEASE)[0].token == state.token + 1  # the release did not free the new holder's


def _config(tmp_path: Path, model_url: str, db_url: str | None) -> None:  # noqa: F811
    config: dict[str, object] = {
        "agents": {
            "profiles": [
                {
                    "name": "ada",
                    "skills": ["writing"],
                    "wallet": "ada",
                    "model": {"base_url": model_url, "model": "test-model", "tool_choice_auto": False},
                }
            ]
        },
        "service": {"poll_interval": 0.5, "reconcile_interval": 5, "lease_seconds": 3},
    }
    if db_url is not None:
        config["db"] = {"url": db_url}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))


def _start(cwd: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--review", "auto", *extra],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _held(engine: Engine, pid: int, proc: subprocess.Popen[str]) -> None:
    """Wait until process ``pid`` holds the service lease."""
    leases = SqlLeases(engine)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            held = [s for s in leases.leases(SERVICE_LEASE) if s.alive(leases.now()) and s.pid == pid]
        except Exception:  # the first process has not migrated the database yet
            held = []
        if held:
            return
        if proc.poll() is not None:
            raise AssertionError(f"deworker run exited ({proc.returncode}):\n{proc.communicate()}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"deworker run never took the lease:\n{proc.communicate()}")


@pytest.mark.anvil
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_second_deworker_run_on_one_database_is_refused_naming_the_first(
    devnet: dict[str, str],  # noqa: F811  (the fixture imported above)
    model_url: str,  # noqa: F811
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    db_url = None
    if backend == "postgresql":
        db_url = request.getfixturevalue("pg_engine").url.render_as_string(hide_password=False)
    _config(tmp_path, model_url, db_url)
    env = {k: v for k, v in devnet.items() if k != "URL"} | {"DEWORKER_WALLET_PASSPHRASE": PASSPHRASE}
    deworker("wallet", "new", "ada", cwd=tmp_path, env=env)
    engine = make_engine(db_url or f"sqlite:///{Path(env['DEWORKER_DATA_DIR']) / 'deworker.db'}")

    with socket.socket() as probe:  # a free port for the first one's metrics
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = _start(tmp_path, env, "--metrics-port", str(port))
    try:
        _held(engine, first.pid, first)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'deworker_tasks{state="PAID"} 0' in scraped.text, scraped.text
        second = deworker("run", cwd=tmp_path, env=env, ok=False)
        assert second.returncode == 1, second
        said = " ".join(second.stderr.split())
        host = socket.gethostname()
        assert f"error: another `deworker run` is already using this database: pid {first.pid} on host {host}," in said
        assert "running since 20" in said and f"fix: stop that one first (Ctrl-C, or `kill {first.pid}`" in said
        assert first.poll() is None  # the first one runs on, untouched
        shown = " ".join(deworker("status", cwd=tmp_path, env=env).stdout.split())
        assert f"service: `deworker run` is pid {first.pid} on host {host}, since 20" in shown, shown

        # killed without a chance to release its lease: a new run starts once the lease (3 s) has lapsed
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        leases = SqlLeases(engine)
        (dead,) = leases.leases(SERVICE_LEASE)
        assert dead.expires_at is not None and dead.heartbeat_at is not None
        assert dead.expires_at - dead.heartbeat_at == timedelta(seconds=3)  # service.lease_seconds
        while dead.alive(leases.now()):
            time.sleep(0.2)
        third = _start(tmp_path, env)
        try:
            _held(engine, third.pid, third)  # the lease is the third one's now
        finally:
            third.kill()
            third.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
        engine.dispose()

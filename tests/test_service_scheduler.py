"""``ServiceRunner``: APScheduler jobs with explicit ids and limits, the bounded worker pool with per-agent
concurrency, and a clean stop on SIGTERM with every task either done or resumable."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from orchestrator.adapters.chain import EthTesterChain
from orchestrator.adapters.sql import TaskPublic
from orchestrator.domain.lifecycle import TaskState
from orchestrator.entry.config import ServiceConfig
from orchestrator.entry.scheduler import CYCLE_JOB, RECONCILE_JOB, UPKEEP_JOB, ServiceRunner
from tests.test_service_fixtures import World, build_world, profile

S = TaskState


def world_on_ethtester(tmp_path: Path) -> World:
    chain = EthTesterChain()
    return build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path)


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_jobs_pool_and_sigterm(tmp_path: Path) -> None:
    world = world_on_ethtester(tmp_path)
    ids = [world.post(f"notes {i}") for i in range(4)]
    orch = world.orchestrator([profile("ada"), profile("grace")])
    config = ServiceConfig(poll_interval=0.2, reconcile_interval=0.5, workers=2, agent_concurrency=1)
    runner = ServiceRunner(orch, config)
    peak: list[int] = []
    original = orch.advance

    def observed(task_id: int) -> TaskPublic:
        peak.append(runner.in_flight())
        return original(task_id)

    orch.advance = observed  # type: ignore[method-assign]  # observe the pool from inside

    def all_submitted() -> bool:
        return {t.state for t in world.store.tasks()} == {S.SUBMITTED} and len(world.store.tasks()) == len(ids)

    def stop_when_done() -> None:
        wait_for(all_submitted)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=stop_when_done)
    killer.start()
    before = signal.getsignal(signal.SIGTERM)
    runner.run_forever()
    killer.join()

    assert all_submitted()
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    assert max(peak) <= 2  # two agents, one task each at a time
    assert not runner.scheduler.running and runner.in_flight() == 0
    assert world.approve_submitted() == sorted(ids, reverse=True)


def test_job_settings(tmp_path: Path) -> None:
    world = world_on_ethtester(tmp_path)
    runner = ServiceRunner(world.orchestrator([profile("ada")]), ServiceConfig(poll_interval=30, misfire_grace=7))
    runner.start()
    try:
        jobs = {job.id: job for job in runner.scheduler.get_jobs()}
        assert set(jobs) == {CYCLE_JOB, RECONCILE_JOB}
        for job in jobs.values():
            assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 7
    finally:
        runner.stop()


def test_wallet_upkeep_job_runs_and_survives_failures(tmp_path: Path) -> None:
    world = world_on_ethtester(tmp_path)
    calls: list[int] = []

    def upkeep() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("node down")  # logged; the job stays scheduled

    config = ServiceConfig(poll_interval=30, reconcile_interval=0.1, misfire_grace=7)
    runner = ServiceRunner(world.orchestrator([profile("ada")]), config, upkeep=upkeep)
    runner.start()
    try:
        job = runner.scheduler.get_job(UPKEEP_JOB)
        assert job is not None and job.coalesce is True and job.max_instances == 1
        wait_for(lambda: len(calls) >= 2)
    finally:
        runner.stop()
    settled = len(calls)
    time.sleep(0.3)
    assert len(calls) == settled  # stopped means stopped


def test_stop_drops_queued_steps_which_resume_later(tmp_path: Path) -> None:
    world = world_on_ethtester(tmp_path)
    ids = [world.post(f"notes {i}") for i in range(2)]
    orch = world.orchestrator([profile("ada")])
    runner = ServiceRunner(orch, ServiceConfig(workers=1))
    orch.start()
    orch.poll()
    orch.match()
    runner.stop()  # nothing ran: both tasks stay CLAIMING in the database
    assert [t.state for t in world.store.tasks()] == [S.CLAIMING, S.CLAIMING]
    restarted = world.orchestrator([profile("ada")])
    restarted.start()
    restarted.cycle()
    assert [t.state for t in world.store.tasks()] == [S.SUBMITTED] * len(ids)

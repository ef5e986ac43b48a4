"""``ServiceRunner``: the orchestrator as a long-running service — APScheduler 3 jobs plus a bounded worker pool.

Jobs (explicit ids, ``coalesce``, ``max_instances=1``, a misfire grace time):

- ``cycle``: poll every board, match, hand each actionable task to the worker pool, collect payouts;
- ``reconcile``: compare the database with the chain (claims gone or near expiry, DAO rejections);
- ``upkeep`` (when given one, at the reconcile interval): wallet chores — gas top-ups, automatic reward sweeps.

Task steps (claims, agent runs, submissions) run in a ``ThreadPoolExecutor`` of ``service.workers`` threads; an
agent never has more than ``service.agent_concurrency`` tasks in the pool, and a task is never queued twice.
Given a ``ProcessGuard`` (the bootstrap gives one), ``start()`` first takes the database's single-process lease,
so a second runner on the same database is refused, naming the first; losing the lease stops the runner.
``stop()`` (and SIGINT/SIGTERM in ``run_forever``) stops scheduling, lets running steps finish — each persists
its state before and after its transaction, so a step is either done or resumable — and drops queued ones,
which stay in the database and resume on the next start.

Must not import the CLI.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from orchestrator.app.service import CycleReport, Orchestrator
from orchestrator.domain.errors import DeworkerError, LeaseHeld
from orchestrator.domain.task import Task
from orchestrator.entry.config import ServiceConfig
from orchestrator.entry.guard import ProcessGuard

log = logging.getLogger(__name__)


def _failed(job: str, exc: Exception) -> None:
    """One log line for a failed job. A ``DeworkerError`` (node down, policy refused, database locked) is an
    expected condition: its message and fix, no traceback unless this logger is at DEBUG (``--debug``). Anything
    else is a bug and keeps its traceback."""
    if isinstance(exc, DeworkerError):
        hint = f"; fix: {exc.hint}" if exc.hint else ""
        log.error("%s failed: %s%s", job, exc.message, hint, exc_info=log.isEnabledFor(logging.DEBUG))
    else:
        log.exception("%s failed: %s", job, exc)


class _SkippedRunFilter(logging.Filter):
    """Drops APScheduler's "skipped: maximum number of running instances reached" warning.

    ``max_instances=1`` with ``coalesce`` is how a cycle slower than ``service.poll_interval`` is meant to be
    handled: the next tick is skipped while the last one runs. APScheduler warns about every skip, a line per poll
    interval for as long as a long agent run lasts, and says nothing an operator can act on. Its other warnings
    (misfires, job errors) still pass; the filter is on the one logger that emits this message."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def _quiet_skipped_runs() -> None:
    logger = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkippedRunFilter) for f in logger.filters):
        logger.addFilter(_SkippedRunFilter())


CYCLE_JOB = "cycle"
RECONCILE_JOB = "reconcile"
UPKEEP_JOB = "upkeep"


class ServiceRunner:
    """Schedules ``Orchestrator`` cycles and runs task steps in a bounded pool with per-agent limits."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        config: ServiceConfig,
        *,
        on_cycle: Callable[[CycleReport], None] | None = None,
        upkeep: Callable[[], object] | None = None,
        guard: ProcessGuard | None = None,
    ) -> None:
        self.orchestrator = orchestrator
        self.guard = guard
        if guard is not None:
            guard.on_lost = self._lost_lease
        self.config = config
        self.on_cycle = on_cycle
        self.upkeep_step = upkeep
        _quiet_skipped_runs()
        self.pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="deworker-step")
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": config.misfire_grace},
        )
        self._lock = threading.Lock()
        self._queued: set[int] = set()
        self._per_agent: dict[str, int] = {}
        self._stopping = threading.Event()
        self._lost: str | None = None
        self.last_report: CycleReport | None = None

    # ------------------------------------------------------------------------------------------------- jobs

    def start(self) -> None:
        """Take the database's single-process lease (``LeaseHeld`` if another process holds it), recover wallets
        and register agents, then start the jobs (the first cycle runs at once)."""
        if self.guard is not None:
            self.guard.acquire()
        try:
            self.orchestrator.start()
        except BaseException:
            if self.guard is not None:
                self.guard.release()
            raise
        now = datetime.now(UTC)
        self.scheduler.add_job(
            self.cycle, "interval", seconds=self.config.poll_interval, id=CYCLE_JOB, next_run_time=now
        )
        self.scheduler.add_job(
            self.reconcile, "interval", seconds=self.config.reconcile_interval, id=RECONCILE_JOB, next_run_time=now
        )
        if self.upkeep_step is not None:
            self.scheduler.add_job(
                self.upkeep, "interval", seconds=self.config.reconcile_interval, id=UPKEEP_JOB, next_run_time=now
            )
        self.scheduler.start()

    def cycle(self) -> CycleReport | None:
        """One scheduled cycle; errors are logged (the next cycle retries), never raised into the scheduler."""
        if self._stopping.is_set():
            return None
        try:
            report = self.orchestrator.cycle(advance=self.dispatch)
        except Exception as exc:  # the scheduler thread must survive any failure; the next cycle retries
            _failed("cycle", exc)
            return None
        self.last_report = report
        if self.on_cycle is not None:
            self.on_cycle(report)
        return report

    def reconcile(self) -> None:
        if self._stopping.is_set():
            return
        try:
            for change in self.orchestrator.reconcile():
                log.info("reconcile: %s", change)
        except Exception as exc:  # as in cycle(): logged, retried on the next run
            _failed("reconcile", exc)

    def upkeep(self) -> None:
        if self._stopping.is_set() or self.upkeep_step is None:
            return
        try:
            done = self.upkeep_step()
            if done:  # an upkeep that did nothing is not an event
                log.info("wallet upkeep: %s", done)
        except Exception as exc:  # as in cycle(): logged, retried on the next run
            _failed("wallet upkeep", exc)

    # ---------------------------------------------------------------------------------------------- workers

    def dispatch(self, task: Task) -> None:
        """Queue ``task`` for a worker unless it is queued already or its agent is at its concurrency limit."""
        agent = task.agent_name or ""
        with self._lock:
            if self._stopping.is_set() or task.id in self._queued:
                return
            if self._per_agent.get(agent, 0) >= self.config.agent_concurrency:
                return
            self._queued.add(task.id)
            self._per_agent[agent] = self._per_agent.get(agent, 0) + 1
        future = self.pool.submit(self.orchestrator.advance, task.id)
        future.add_done_callback(lambda f: self._done(task.id, agent, f))

    def _done(self, task_id: int, agent: str, future: Future[Task]) -> None:
        with self._lock:
            self._queued.discard(task_id)
            self._per_agent[agent] -= 1
        if not future.cancelled() and future.exception() is not None:
            log.error("task %s: step failed: %s", task_id, future.exception())

    def in_flight(self) -> int:
        with self._lock:
            return len(self._queued)

    # ------------------------------------------------------------------------------------------------- stop

    def stop(self) -> None:
        """Stop scheduling, finish running steps, drop queued ones (they resume from the database)."""
        self._stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.guard is not None:
            self.guard.release()

    def _lost_lease(self, reason: str) -> None:
        self._lost = reason
        self._stopping.set()

    def run_forever(
        self, *, until: threading.Event | None = None, on_stop: Callable[[int], None] | None = None
    ) -> None:
        """Start, block until SIGINT/SIGTERM (or ``until`` is set), then ``stop()``. Call from the main thread.
        ``on_stop`` is told how many steps are in flight when a signal asks the service to stop."""
        done = until or threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: finishing in-flight steps", signal.Signals(signum).name)
            if on_stop is not None and not done.is_set():
                on_stop(self.in_flight())
            done.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not done.wait(0.2) and self._lost is None:
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self._lost is not None:
            raise LeaseHeld(self._lost, hint="check the database connection, then start `deworker run` again")

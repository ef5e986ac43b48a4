"""``SqlRuns``: agent runs and the artifacts they produce (``orchestrator.ports.repos.Runs``), each run's LLM cost
attributed from the spend ledger's running total of its task (``task_spend``), including a run a crash cut short.
"""

from __future__ import annotations

import logging
from decimal import ROUND_FLOOR
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from orchestrator.adapters.sql.base import S, SqlRepository, T, usd
from orchestrator.adapters.sql.errors import StoreError
from orchestrator.adapters.sql.models import (
    Artifact,
    ArtifactPublic,
    Cost,
    CostKind,
    EventKind,
    Run,
    RunCreate,
    RunPublic,
    RunStatus,
)
from orchestrator.adapters.sql.models import Task as TaskRow
from orchestrator.adapters.sql.spend import TaskSpend
from orchestrator.domain.review import SelfCheck
from orchestrator.ports.repos import NewRun

log = logging.getLogger(__name__)


class SqlRuns(SqlRepository[T]):
    """The ``run`` and ``artifact`` tables."""

    def record_run(self, *, run: NewRun, spend_key: str | None = None) -> RunPublic:
        """Record a finished agent run (its attempt number is assigned here) and its LLM cost as a cost row.

        With ``spend_key`` (the task's key in the spend ledger, ``<board>:<board task id>``) and a ledger total for
        it, the run's tokens and cost are what the ledger holds beyond the task's earlier runs, so every run's
        share adds up to the ledger exactly; without one, the run's own figures are used."""
        with self._transaction(f"recording a run of task {run.task_id}", durable=False) as s:  # a lost run runs again
            self._task(s, run.task_id, lock=True)  # serializes attempt numbering per task
            return RunPublic.model_validate(self._add_run(s, run, spend_key))

    def settle_unrecorded_run(self, *, task_id: int, spend_key: str, agent: str) -> RunPublic | None:
        """Record, as an INTERRUPTED run, the model usage the spend ledger holds for the task beyond its recorded
        runs: a run the process died in (or after, before recording it) still costs what its calls cost. Call it
        before running the task's agent again and before giving the task up. Returns the run, or None."""
        with self._transaction(
            f"reading the model spend of task {task_id}", reads_only=True
        ) as s:  # the usual case: no write lock
            if not any(self._unattributed(s, task_id, spend_key) or ()):
                return None
        with self._transaction(f"settling an interrupted run of task {task_id}", durable=False) as s:
            task = self._task(s, task_id, lock=True)
            left = self._unattributed(s, task_id, spend_key)
            if left is None or not any(left):
                return None
            run = RunCreate(
                task_id=task_id,
                agent=agent,
                started_at=task.updated_at,  # at the latest when it entered PRODUCING
                finished_at=self._clock(),
                status=RunStatus.INTERRUPTED,
                prompt_tokens=left[0],
                completion_tokens=left[1],
                cost_usd_micro=left[2],
                error="the process stopped during this run; its model usage is from the spend ledger",
            )
            log.warning(
                "task %s: an interrupted agent run's usage recovered from the spend ledger: %d prompt and %d "
                "completion tokens, $%s",
                task_id,
                left[0],
                left[1],
                usd(left[2]),
            )
            return RunPublic.model_validate(self._add_run(s, run))

    def _unattributed(self, s: Session, task_id: int, spend_key: str) -> tuple[int, int, int] | None:
        """What the spend ledger holds for the task beyond its recorded runs: (prompt tokens, completion tokens,
        micro-USD), or None when the ledger has no total for it (an in-memory ledger) or holds less than the runs
        recorded (figures that cannot be reconciled: the runs' own are kept)."""
        total = s.get(TaskSpend, spend_key)
        if total is None:
            return None
        recorded = s.exec(
            select(
                func.coalesce(func.sum(Run.prompt_tokens), 0),
                func.coalesce(func.sum(Run.completion_tokens), 0),
                func.coalesce(func.sum(Run.cost_usd_micro), 0),
            ).where(col(Run.task_id) == task_id)
        ).one()
        # floor of the exact running total: the runs' micro-USD shares always sum to it, never drifting by rounding
        micro = int((total.cost * 1_000_000).to_integral_value(rounding=ROUND_FLOOR))
        left = (
            total.prompt_tokens - int(recorded[0]),
            total.completion_tokens - int(recorded[1]),
            micro - int(recorded[2]),
        )
        return None if min(left) < 0 else left

    def _add_run(self, s: Session, new: NewRun, spend_key: str | None = None) -> Run:
        """``record_run`` with the task locked in ``s``."""
        run = new if isinstance(new, RunCreate) else RunCreate.model_validate(new, from_attributes=True)
        if spend_key is not None:
            left = self._unattributed(s, run.task_id, spend_key)
            if left is not None:
                update = dict(zip(("prompt_tokens", "completion_tokens", "cost_usd_micro"), left, strict=True))
                run = run.model_copy(update=update)
        previous = s.exec(select(func.count()).select_from(Run).where(col(Run.task_id) == run.task_id)).one()
        row = Run.model_validate(run, update={"attempt": previous + 1})
        s.add(row)
        s.flush()
        if run.cost_usd_micro:
            s.add(
                Cost(
                    task_id=run.task_id,
                    run_id=row.id,
                    agent=run.agent,
                    kind=CostKind.LLM,
                    amount=run.cost_usd_micro,
                    at=run.finished_at,
                )
            )
        return row

    def runs(self, *, task_id: int) -> list[RunPublic]:
        """The task's runs, first attempt first."""
        with self._transaction(f"listing runs of task {task_id}", reads_only=True) as s:
            query = select(Run).where(col(Run.task_id) == task_id).order_by(col(Run.attempt))
            return [RunPublic.model_validate(r) for r in s.exec(query)]

    def record_artifact(
        self, *, task_id: int, cid: str, manifest: dict[str, Any], self_check: SelfCheck, actor: str
    ) -> ArtifactPublic:
        """Make ``cid`` the task's current artifact (the task must be PRODUCING). Recording the same CID again
        returns the stored row; it becomes current again if a newer one had replaced it."""
        with self._transaction(f"recording artifact {cid} of task {task_id}", durable=False) as s:  # PRODUCING: re-run
            task = self._task(s, task_id, lock=True)
            row = self._set_artifact(s, task, cid=cid, manifest=manifest, self_check=self_check, actor=actor)
            s.flush()
            return ArtifactPublic.model_validate(row)

    def record_produced(
        self,
        *,
        run: NewRun,
        cid: str,
        manifest: dict[str, Any],
        self_check: SelfCheck,
        actor: str,
        expect_version: int | None = None,
        spend_key: str | None = None,
    ) -> T:
        """A successful run's outcome in one transaction: ``record_run`` (``spend_key`` as there), ``record_artifact``
        and PRODUCING -> PRODUCED (with ``cid`` in the event). Returns the task. Not durable: a lost run is run
        again."""
        task_id = run.task_id
        with self._transaction(f"recording the product of task {task_id}", durable=False) as s:
            task = self._locked(s, task_id, expect_version)
            self._add_run(s, run, spend_key)
            self._set_artifact(s, task, cid=cid, manifest=manifest, self_check=self_check, actor=actor)
            self._move(s, task, S.PRODUCED, actor, cid=cid)
            return self._out(task)

    def _set_artifact(
        self, s: Session, task: TaskRow, *, cid: str, manifest: dict[str, Any], self_check: SelfCheck, actor: str
    ) -> Artifact:
        """``record_artifact`` with the task locked in ``s``."""
        assert task.id is not None
        if task.state is not S.PRODUCING:
            raise StoreError(
                f"task {task.id} is {task.state}: artifacts are recorded only while PRODUCING",
                hint="move the task to PRODUCING first (a revision starts with a reviewer's request_changes)",
            )
        row = s.exec(select(Artifact).where(col(Artifact.task_id) == task.id, col(Artifact.cid) == cid)).one_or_none()
        if row is None:
            row = Artifact(
                task_id=task.id,
                cid=cid,
                revision=task.revision_count,
                manifest=manifest,
                self_check=self_check,
                created_at=self._clock(),
            )
            s.add(row)
        if task.artifact_cid != cid:
            self._guarded_update(s, task, {"artifact_cid": cid})
            s.add(self._event(task.id, EventKind.ARTIFACT, task.state, task.state, actor, cid=cid))
        return row

    def artifacts(self, *, task_id: int) -> list[ArtifactPublic]:
        """Every artifact the task had, oldest first."""
        with self._transaction(f"listing artifacts of task {task_id}", reads_only=True) as s:
            query = select(Artifact).where(col(Artifact.task_id) == task_id).order_by(col(Artifact.id))
            return [ArtifactPublic.model_validate(a) for a in s.exec(query)]

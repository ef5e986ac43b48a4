"""``SqlReviews``: review decisions (``orchestrator.ports.repos.Reviews``), each bound to the artifact the reviewer
was shown and moving the task as the domain's review policy says (``domain.review.DECISION_TARGETS``); the
automatic gate and the DAO's rejection are decisions too. ``pending_reviews`` is the review app's inbox.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.adapters.sql.base import S, SqlRepository, T, public_from_row
from orchestrator.adapters.sql.errors import ReviewRefused, StaleReview, StoreError
from orchestrator.adapters.sql.models import (
    Artifact,
    ArtifactPublic,
    EventKind,
    Review,
    ReviewPublic,
    TaskPublic,
)
from orchestrator.adapters.sql.models import Task as TaskRow
from orchestrator.domain.lifecycle import TRANSITIONS
from orchestrator.domain.review import DECISION_TARGETS, REVISING, ReviewDecision, SelfCheck


@dataclass(frozen=True, slots=True)
class PendingReview:
    """A task awaiting a human decision, with the artifact the reviewer must be shown and earlier decisions."""

    task: TaskPublic
    artifact: ArtifactPublic
    history: list[ReviewPublic]


class SqlReviews(SqlRepository[T]):
    """The ``review`` table: decisions on tasks' artifacts."""

    def record_review(
        self,
        *,
        task_id: int,
        artifact_cid: str,
        decision: ReviewDecision,
        reviewer: str,
        feedback: str | None = None,
    ) -> ReviewPublic:
        """Decide on the artifact ``artifact_cid`` the reviewer was shown, and move the task accordingly.

        APPROVE -> APPROVED (from AWAITING_REVIEW, or from PRODUCED for the automatic policy);
        REQUEST_CHANGES -> PRODUCING with the feedback (the agent edits its artifact) and REJECT -> PRODUCING with
        the feedback (the agent starts over), each a revision (count + 1, at most ``max_revisions``);
        ABANDON -> ABANDONED. Raises ``StaleReview`` when ``artifact_cid`` is not the task's current artifact,
        ``ReviewRefused`` when the task is not awaiting this decision or feedback is missing.
        """
        with self._transaction(f"recording a review of task {task_id}") as s:
            task = self._task(s, task_id, lock=True)
            review = self._decide(s, task, artifact_cid, decision, reviewer, feedback)
            s.flush()
            return ReviewPublic.model_validate(review)

    def auto_review(
        self,
        *,
        task_id: int,
        approve: Collection[SelfCheck],
        reason: str,
        reviewer: str = "auto",
        actor: str = "review-gate",
        expect_version: int | None = None,
    ) -> T:
        """The review gate for a PRODUCED task, in one transaction: APPROVE its current artifact as ``reviewer``
        (like ``record_review``) when the artifact's self-check is in ``approve``, else move it to AWAITING_REVIEW
        with ``reason`` (a human decides). Returns the task."""
        with self._transaction(f"reviewing task {task_id}") as s:
            task = self._locked(s, task_id, expect_version)
            artifact = s.exec(
                select(Artifact).where(col(Artifact.task_id) == task_id, col(Artifact.cid) == task.artifact_cid)
            ).one_or_none()
            if artifact is None:
                raise StoreError(f"task {task_id} is {task.state} without a recorded artifact {task.artifact_cid}")
            if artifact.self_check in approve:
                self._decide(s, task, artifact.cid, ReviewDecision.APPROVE, reviewer, None)
            else:
                self._move(s, task, S.AWAITING_REVIEW, actor, reason)
            return self._out(task)

    def _decide(
        self,
        s: Session,
        task: TaskRow,
        artifact_cid: str,
        decision: ReviewDecision,
        reviewer: str,
        feedback: str | None,
    ) -> Review:
        """``record_review`` on a task locked in ``s``."""
        assert task.id is not None
        target = DECISION_TARGETS[decision]
        before = task.state
        if task.artifact_cid != artifact_cid:
            raise StaleReview(
                f"task {task.id}: the review is of artifact {artifact_cid}, "
                f"but the current artifact is {task.artifact_cid}",
                hint="reload the review list and review the current artifact",
            )
        if target not in TRANSITIONS[before]:
            raise ReviewRefused(f"task {task.id} is {before}: it is not awaiting a decision to {decision}")
        values: dict[str, Any] = {"state": target, "state_reason": feedback}
        if decision in REVISING:
            if not feedback or not feedback.strip():
                what = "requesting changes" if decision is ReviewDecision.REQUEST_CHANGES else "rejecting"
                raise ReviewRefused(
                    f"{what} needs feedback: the agent revises with it", hint="say what the agent should change"
                )
            if task.revision_count >= self.max_revisions:
                raise ReviewRefused(
                    f"task {task.id} has had {task.revision_count} revisions, the limit",
                    hint="approve the artifact or abandon the task",
                )
            values["revision_count"] = task.revision_count + 1
        self._guarded_update(s, task, values)
        review = Review(
            task_id=task.id,
            artifact_cid=artifact_cid,
            decision=decision,
            feedback=feedback,
            reviewer=reviewer,
            at=self._clock(),
        )
        s.add(review)
        # the audit line names the decision: reject and request_changes both lead to PRODUCING
        note = f"{decision.value}: {feedback}" if feedback else decision.value
        s.add(self._event(task.id, EventKind.REVIEW, before, target, reviewer, note, cid=artifact_cid))
        return review

    def rework_rejected(self, *, task_id: int, reviewer: str, reason: str, expect_version: int | None = None) -> T:
        """The DAO's reviewer rejected the submission and the task is open again: record the rejection as a
        change request on the submitted artifact (``reviewer`` is the DAO reviewer's address, shown as
        ``dao:<address>``; ``reason`` becomes the agent's feedback) and move SUBMITTED -> CLAIMING (revision count
        + 1), in one transaction. ``ReviewRefused`` when the task has used its ``max_revisions``."""
        with self._transaction(f"reworking task {task_id} after the DAO's rejection") as s:
            task = self._locked(s, task_id, expect_version)
            assert task.id is not None and task.artifact_cid is not None
            if task.revision_count >= self.max_revisions:
                raise ReviewRefused(f"task {task_id} has had {task.revision_count} revisions, the limit")
            actor = f"dao:{reviewer}"
            self._move(s, task, S.CLAIMING, actor, f"the DAO rejected the submission: {reason}")
            self._guarded_update(s, task, {"revision_count": task.revision_count + 1})
            s.add(
                Review(
                    task_id=task.id,
                    artifact_cid=task.artifact_cid,
                    decision=ReviewDecision.REQUEST_CHANGES,
                    feedback=reason,
                    reviewer=actor,
                    at=self._clock(),
                )
            )
            return self._out(task)

    def reviews(self, *, task_id: int) -> list[ReviewPublic]:
        """Every decision on the task, oldest first."""
        with self._transaction(f"listing reviews of task {task_id}", reads_only=True) as s:
            query = select(Review).where(col(Review.task_id) == task_id).order_by(col(Review.id))
            return [ReviewPublic.model_validate(r) for r in s.exec(query)]

    def pending_reviews(self, *, limit: int | None = None, offset: int = 0) -> list[PendingReview]:
        """Tasks awaiting a human decision, the longest-waiting first, each with its current artifact;
        ``limit`` of them from ``offset``."""
        with self._transaction("listing pending reviews", reads_only=True) as s:
            query = (
                select(TaskRow)
                .where(col(TaskRow.state) == S.AWAITING_REVIEW)
                .order_by(col(TaskRow.updated_at), col(TaskRow.id))
            )
            tasks = s.exec(query.offset(offset).limit(limit)).all()
            ids = [t.id for t in tasks]
            artifacts = {(a.task_id, a.cid): a for a in s.exec(select(Artifact).where(col(Artifact.task_id).in_(ids)))}
            history: dict[int, list[ReviewPublic]] = {}
            for r in s.exec(select(Review).where(col(Review.task_id).in_(ids)).order_by(col(Review.id))):
                history.setdefault(r.task_id, []).append(ReviewPublic.model_validate(r))
            out = []
            for t in tasks:
                assert t.id is not None
                artifact = artifacts.get((t.id, t.artifact_cid or ""))
                if artifact is None:
                    raise StoreError(f"task {t.id} awaits review but has no recorded artifact {t.artifact_cid}")
                out.append(
                    PendingReview(
                        task=public_from_row(t),
                        artifact=ArtifactPublic.model_validate(artifact),
                        history=history.get(t.id, []),
                    )
                )
            return out

"""The JSON API (``/api/...``, OpenAPI at ``/openapi.json``, reference at ``/docs``): the same reads and decisions
as the pages, for automation. Authenticated by ``Authorization: Bearer <token>`` only (no cookies, so no CSRF);
tokens come from ``deworker review token NAME``. Errors are ``{"detail", "error", "hint"}`` with 404 (unknown
task), 409 (stale artifact CID, decision not possible now), 403 (viewer), 401 (no token).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, Field

from orchestrator.adapters.sql import ArtifactPublic, ReviewDecision, ReviewPublic, TaskPublic
from orchestrator.domain.lifecycle import TaskState
from orchestrator.entry.metrics import CONTENT_TYPE, prometheus_text
from orchestrator.entry.web import views
from orchestrator.entry.web.auth import ApiReviewerDep, ApiUserDep, ServicesDep
from orchestrator.entry.web.models import ReviewerPublic
from orchestrator.entry.web.routes.files import artifact_download, artifact_files

router = APIRouter(prefix="/api", tags=["api"])


class PendingReviewOut(BaseModel):
    """A task awaiting a decision: review ``artifact.cid`` and send that CID back with the decision."""

    task: TaskPublic
    artifact: ArtifactPublic
    history: list[ReviewPublic]


class DecisionIn(BaseModel):
    """A decision on the artifact the client reviewed: ``approve`` lets it be submitted; ``request_changes`` (the
    agent edits the artifact) and ``reject`` (the artifact is thrown away and the agent starts over) need feedback,
    which the agent is shown, and count as revisions; ``abandon`` gives the task up and releases the claim."""

    artifact_cid: str = Field(min_length=1, max_length=128, description="the CID that was reviewed")
    decision: ReviewDecision
    feedback: str | None = Field(default=None, max_length=10_000)


class ErrorOut(BaseModel):
    detail: str
    error: str | None = None
    hint: str | None = None


ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "no valid API token"},
    404: {"model": ErrorOut, "description": "no such task"},
}


@router.get("/me", responses=ERRORS)
def me(user: ApiUserDep) -> ReviewerPublic:
    """The account the token belongs to."""
    return user


@router.get("/reviews", responses=ERRORS)
def pending_reviews(
    services: ServicesDep,
    user: ApiUserDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[PendingReviewOut]:
    """Artifacts awaiting review, the longest-waiting first: ``limit`` of them from ``offset``."""
    pending = services.store.pending_reviews(limit=limit, offset=offset)
    return [PendingReviewOut(task=p.task, artifact=p.artifact, history=p.history) for p in pending]


@router.post(
    "/tasks/{task_id}/review",
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS
    | {
        403: {"model": ErrorOut, "description": "the account is a viewer"},
        409: {"model": ErrorOut, "description": "stale artifact CID, or the task is not awaiting this decision"},
    },
)
def decide(services: ServicesDep, user: ApiReviewerDep, task_id: int, body: DecisionIn) -> ReviewPublic:
    """Record a decision, bound to ``artifact_cid``: if the task's current artifact is another one, nothing
    happens and the answer is 409 (``StaleReview``)."""
    feedback = body.feedback.strip() if body.feedback else None
    return services.store.record_review(
        task_id=task_id,
        artifact_cid=body.artifact_cid,
        decision=body.decision,
        reviewer=user.name,
        feedback=feedback or None,
    )


class TaskPageOut(BaseModel):
    """``limit`` tasks from ``offset``, the newest first, and how many the whole list has."""

    tasks: list[TaskPublic]
    total: int
    limit: int
    offset: int


@router.get("/tasks", responses=ERRORS)
def tasks(
    services: ServicesDep,
    user: ApiUserDep,
    state: TaskState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TaskPageOut:
    """Tasks, the newest first, optionally only those in ``state``: ``limit`` of them from ``offset``."""
    page = services.queries.task_page(state=state, limit=limit, offset=offset)
    return TaskPageOut(tasks=page.tasks, total=page.total, limit=limit, offset=offset)


@router.get("/tasks/{task_id}", responses=ERRORS)
def task(services: ServicesDep, user: ApiUserDep, task_id: int) -> views.TaskDetail:
    """A task with its event trail (transaction hashes, CIDs), artifacts and review decisions."""
    return views.task_detail(services.store, task_id)


class ArtifactFileOut(BaseModel):
    """One file of an artifact: fetch it from ``.../file?path=<path>``."""

    path: str
    size: int


@router.get("/tasks/{task_id}/artifacts/{cid}/files", responses=ERRORS)
def artifact_file_list(services: ServicesDep, user: ApiUserDep, task_id: int, cid: str) -> list[ArtifactFileOut]:
    """The files of one of the task's artifacts (``manifest.json`` last)."""
    return [ArtifactFileOut(path=f.path, size=f.size) for f in artifact_files(services, task_id, cid)]


@router.get(
    "/tasks/{task_id}/artifacts/{cid}/file",
    responses=ERRORS | {200: {"content": {"text/plain": {}, "application/octet-stream": {}}}},
    response_class=FileResponse,
)
def artifact_file(
    services: ServicesDep,
    user: ApiUserDep,
    task_id: int,
    cid: str,
    path: Annotated[str, Query(min_length=1, max_length=1024)],
) -> FileResponse:
    """One file of one of the task's artifacts, as a download: what a reviewer reads before deciding."""
    return artifact_download(services, task_id, cid, path)


@router.get("/fleet", responses=ERRORS)
def fleet(services: ServicesDep, user: ApiUserDep) -> views.FleetSummary:
    """Agents and what they do, tasks per lifecycle state, P&L per agent, rewards received and costs per UTC day
    (token amounts in base units; ``tokens`` has the symbol and decimals of the tokens the server knows)."""
    return views.fleet(services.store, services.queries, services.settings.tokens)


metrics_router = APIRouter(tags=["metrics"])


@metrics_router.get("/metrics", response_class=PlainTextResponse, responses=ERRORS)
def metrics(services: ServicesDep, user: ApiUserDep) -> PlainTextResponse:
    """The fleet's counters in Prometheus' text format, from the database (the same totals whichever process
    serves them): tasks by state, steps, failures, agent runs, retries, transactions, gas, LLM tokens and cost, and
    per model endpoint its calls, waits and time waited. Scrape it with the API token as a bearer token
    (``authorization: {credentials: <token>}`` in the scrape config)."""
    return PlainTextResponse(prometheus_text(services.metrics.snapshot()), media_type=CONTENT_TYPE)

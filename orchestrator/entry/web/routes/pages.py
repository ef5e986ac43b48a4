"""The HTML pages: login/logout, the review inbox, the review page and its decision form, the fleet dashboard,
task lists and a task's history, artifact downloads, and the API reference at /docs.

Every POST carries the session's CSRF token (``auth.checked_session``); decisions need the reviewer role.
A decision is bound to the artifact CID the page showed (a hidden field): if a newer revision arrived meanwhile,
the store refuses it with ``StaleReview`` and the page says so.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from orchestrator.adapters.sql import ReviewDecision, ReviewRefused, StaleReview
from orchestrator.domain.lifecycle import TaskState
from orchestrator.entry.web import views
from orchestrator.entry.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CheckedSessionDep,
    ReviewerSessionDep,
    ServicesDep,
    SessionDep,
    client_address,
    new_login_csrf,
    same_origin,
)
from orchestrator.entry.web.chart import earnings_svg
from orchestrator.entry.web.config import Role
from orchestrator.entry.web.routes.files import artifact_download
from orchestrator.entry.web.users import SessionInfo

router = APIRouter(include_in_schema=False)
MAX_FEEDBACK = 10_000
RECENT_DAYS = 14  # days listed under the earnings chart


def login_url(next_url: str) -> str:
    return "/login?" + urlencode({"next": next_url}) if next_url not in ("", "/", "/inbox") else "/login"


def _safe_next(next_url: str) -> str:
    """Only same-site paths: no scheme, no host, no protocol-relative ``//``, no backslash tricks."""
    if not next_url.startswith("/") or next_url.startswith("//") or "\\" in next_url:
        return "/inbox"
    return next_url


def _render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    session: SessionInfo | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    tpl: Jinja2Templates = request.app.state.templates
    base = {"session": session, "can_decide": session is not None and session.reviewer.role is Role.REVIEWER}
    response = tpl.TemplateResponse(request, name, base | context, status_code=status_code, headers=headers)
    assert isinstance(response, HTMLResponse)
    return response


# ----------------------------------------------------------------------------------------------------- login


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/inbox", status_code=303)


@router.get("/login")
def login_form(request: Request, services: ServicesDep, next: str = "/inbox") -> HTMLResponse:
    return _login_page(request, services.settings.config.secure_cookies, next_url=_safe_next(next))


def _login_page(
    request: Request,
    secure: bool,
    *,
    next_url: str,
    error: str | None = None,
    name: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = new_login_csrf()
    response = _render(
        request,
        "login.html",
        {"csrf_token": token, "next": next_url, "error": error, "name": name, "nav": ""},
        session=None,
        status_code=status_code,
        headers=headers,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login")
    return response


@router.post("/login")
def login(
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/inbox",
) -> Response:
    same_origin(request)
    secure = services.settings.config.secure_cookies
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    next_url = _safe_next(next)
    if not cookie or not csrf_token or not hmac.compare_digest(cookie, csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token: reload the login page")
    client = client_address(request, services.settings.config.trusted_proxies)
    keys = (f"name:{name.lower()}", f"ip:{client}")
    wait = services.limiter.retry_after(*keys)
    if wait:
        return _login_page(
            request,
            secure,
            next_url=next_url,
            name=name,
            error=f"Too many failed attempts. Try again in {wait} seconds.",
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(wait)},
        )
    user = services.users.authenticate(name=name, password=password)
    if user is None:
        services.limiter.failed(*keys)
        return _login_page(
            request,
            secure,
            next_url=next_url,
            name=name,
            error="Wrong name or password.",
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    services.limiter.succeeded(keys[0])
    ttl = timedelta(hours=services.settings.config.session_hours)
    token, _ = services.users.start_session(reviewer=user, ttl=ttl)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, services: ServicesDep, session: CheckedSessionDep) -> RedirectResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        services.users.end_session(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ----------------------------------------------------------------------------------------------------- inbox


@router.get("/inbox")
def inbox(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    decided: int | None = None,
    decision: ReviewDecision | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    items, where = views.inbox(services.store, services.queries, page=page)
    notice = None
    if decided is not None and decision is not None:
        verb = {
            ReviewDecision.APPROVE: "approved",
            ReviewDecision.REQUEST_CHANGES: "sent back for changes",
            ReviewDecision.REJECT: "rejected: the agent starts over",
            ReviewDecision.ABANDON: "abandoned",
        }[decision]
        notice = f"Task {decided} {verb}."
    context = {
        "items": items,
        "page": where,
        "notice": notice,
        "nav": "inbox",
        "signature": views.inbox_signature(items),
        "poll_ms": int(services.settings.config.inbox_poll_seconds * 1000),
    }
    return _render(request, "inbox.html", context, session=session)


@router.get("/inbox/status")
def inbox_status(
    services: ServicesDep, session: SessionDep, page: Annotated[int, Query(ge=1)] = 1
) -> dict[str, int | str]:
    """What the inbox page polls: how many items wait, and a signature of the page's rows (task id and artifact
    CID, in order), so the page can tell that its rows changed."""
    items, where = views.inbox(services.store, services.queries, page=page)
    return {"pending": where.total, "signature": views.inbox_signature(items)}


# ---------------------------------------------------------------------------------------------------- review


@router.get("/review/{task_id}")
def review_page(request: Request, services: ServicesDep, session: SessionDep, task_id: int) -> HTMLResponse:
    return _review(request, services, session, task_id)


def _review(
    request: Request,
    services: ServicesDep,
    session: SessionInfo,
    task_id: int,
    *,
    error: str | None = None,
    feedback: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    detail = views.task_detail(services.store, task_id)
    task = detail.task
    current = next((a for a in detail.artifacts if a.cid == task.artifact_cid), None)
    previous = views.previous_artifact(detail.artifacts, task.artifact_cid)
    renderer = services.renderer
    files = renderer.render(current.cid) if current else []
    diff = renderer.diff(previous.cid, current.cid) if current and previous else []
    context = {
        "detail": detail,
        "task": task,
        "artifact": current,
        "previous": previous,
        "info": views.ManifestInfo.of(current.manifest) if current else None,
        "files": files,
        "diff": diff,
        "preview_kib": services.settings.config.preview_kib,
        "awaiting": task.state is TaskState.AWAITING_REVIEW,
        "error": error,
        "feedback": feedback,
        "csrf_token": session.csrf_token,
        "max_revisions": services.store.max_revisions,
        "nav": "inbox",
    }
    return _render(request, "review.html", context, session=session, status_code=status_code)


@router.post("/review/{task_id}")
def decide(
    request: Request,
    services: ServicesDep,
    session: ReviewerSessionDep,
    task_id: int,
    decision: Annotated[ReviewDecision, Form()],
    artifact_cid: Annotated[str, Form(min_length=1, max_length=128)],
    feedback: Annotated[str, Form(max_length=MAX_FEEDBACK)] = "",
) -> Response:
    text = feedback.strip() or None
    try:
        services.store.record_review(
            task_id=task_id,
            artifact_cid=artifact_cid,
            decision=decision,
            reviewer=session.reviewer.name,
            feedback=text,
        )
    except StaleReview:
        message = (
            "This task has a newer artifact than the one you reviewed, so your decision was not recorded. "
            "Review the current version below."
        )
        return _review(request, services, session, task_id, error=message, feedback=feedback, status_code=409)
    except ReviewRefused as exc:
        return _review(request, services, session, task_id, error=str(exc), feedback=feedback, status_code=409)
    query = urlencode({"decided": task_id, "decision": decision.value})
    return RedirectResponse(f"/inbox?{query}", status_code=303)


# ------------------------------------------------------------------------------------------------ tasks, fleet


@router.get("/tasks")
def tasks(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    state: TaskState | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    """Tasks, the newest first, a page at a time."""
    shown, where = views.task_list(services.queries, state=state, page=page)
    context = {"tasks": shown, "page": where, "state": state, "states": list(TaskState), "nav": "tasks"}
    return _render(request, "tasks.html", context, session=session)


@router.get("/tasks/{task_id}")
def task_history(request: Request, services: ServicesDep, session: SessionDep, task_id: int) -> HTMLResponse:
    detail = views.task_detail(services.store, task_id)
    return _render(request, "task.html", {"detail": detail, "task": detail.task, "nav": "tasks"}, session=session)


@router.get("/tasks/{task_id}/artifacts/{cid}/raw")
def download(
    services: ServicesDep,
    session: SessionDep,
    task_id: int,
    cid: str,
    path: Annotated[str, Query(min_length=1, max_length=1024)],
) -> FileResponse:
    """A file of one of the task's artifacts, always as a download (never rendered by the browser)."""
    return artifact_download(services, task_id, cid, path)


@router.get("/dashboard")
def dashboard(request: Request, services: ServicesDep, session: SessionDep) -> HTMLResponse:
    tokens = services.settings.tokens
    summary = views.fleet(services.store, services.queries, tokens)
    series = views.earnings(summary, tokens)
    charts = [(s, earnings_svg(s.points, unit=s.unit)) for s in series]
    received: dict[str, int] = {}
    for day in summary.days:  # bounties and pool revenue
        for token, amount in (*day.rewards.items(), *day.revenue.items()):
            received[token] = received.get(token, 0) + amount
    context = {
        "summary": summary,
        "charts": charts,
        "total": sum(summary.tasks_by_state.values()),
        "received": received,
        "gas_wei": sum(d.gas_wei for d in summary.days),
        "llm_usd_micro": sum(d.llm_usd_micro for d in summary.days),
        "recent_days": summary.days[-RECENT_DAYS:][::-1],
        "recent": RECENT_DAYS,
        "holdings": services.store.holdings(),
        "nav": "dashboard",
    }
    return _render(request, "dashboard.html", context, session=session)


# ------------------------------------------------------------------------------------------------------- docs


@router.get("/docs")
def api_docs(request: Request) -> HTMLResponse:
    """The REST API's reference, rendered from the OpenAPI document."""
    spec = request.app.openapi()
    operations = [
        {"method": method.upper(), "path": path, **op}
        for path, methods in spec.get("paths", {}).items()
        for method, op in methods.items()
    ]
    token = request.cookies.get(SESSION_COOKIE)
    session = request.app.state.services.users.session(token) if token else None
    return _render(request, "docs.html", {"spec": spec, "operations": operations, "nav": "docs"}, session=session)

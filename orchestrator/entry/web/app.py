"""``create_app``: the review web app (server-rendered pages, a JSON API under ``/api``) for one set of services.

Nothing is built at import time: the CLI (``deworker review serve``) and the tests build the ``Store``, the
artifact store and the ``UserStore`` through the bootstrap and pass them in. Templates and static files are
package data: the app works offline (no CDN). ``/docs`` is a server-rendered reference of the OpenAPI document
(``/openapi.json``): Swagger UI would need a CDN and inline scripts, which the CSP forbids.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.adapters.artifacts.gateway_server import gateway_router
from orchestrator.adapters.artifacts.local import LocalArtifactStore
from orchestrator.adapters.sql import (
    Conflict,
    RecordNotFound,
    ReviewRefused,
    StaleReview,
    Store,
    StoreUnavailable,
)
from orchestrator.adapters.sql.metrics import FleetMetrics
from orchestrator.adapters.sql.queries import Queries
from orchestrator.domain.errors import ArtifactError, ArtifactNotFound, DeworkerError, LifecycleError
from orchestrator.domain.money import TokenBook, dollars, units
from orchestrator.entry.bids import BidBook
from orchestrator.entry.web.auth import LoginLimiter, LoginRequired, SecurityHeaders, Services
from orchestrator.entry.web.config import WebSettings
from orchestrator.entry.web.render import ArtifactRenderer
from orchestrator.entry.web.routes import api, pages
from orchestrator.entry.web.routes.bids import bids_router
from orchestrator.entry.web.users import UserStore
from orchestrator.ports.artifacts import ArtifactStore

STATIC_DIR = Path(__file__).parent / "static"
#: HTTP status of each error Deworker raises on purpose; anything else is a 500.
ERROR_STATUS: tuple[tuple[type[DeworkerError], int], ...] = (
    (RecordNotFound, 404),
    (ArtifactNotFound, 404),
    (StaleReview, 409),
    (ReviewRefused, 409),
    (Conflict, 409),
    (LifecycleError, 409),
    (StoreUnavailable, 503),
    (ArtifactError, 502),
)


def create_app(
    *,
    engine: Engine,
    store: Store,
    artifacts: ArtifactStore,
    users: UserStore,
    settings: WebSettings,
    gateway: LocalArtifactStore | None = None,
    bids: BidBook | None = None,
) -> FastAPI:
    """The web app over these services (``engine`` is the store's: the dashboard's aggregate queries and the
    login limiter use it). Serve it with uvicorn (``deworker review serve`` does). With ``gateway``, that store
    is also served read-only as an IPFS trustless gateway under ``/ipfs/`` (public by CID: no login, no
    session, no CSRF: the routes only read)."""
    app = FastAPI(
        title="Deworker review",
        summary="Approve agent work before it is submitted to a DAO; watch the fleet.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = Services(
        store=store,
        queries=Queries(engine),
        artifacts=artifacts,
        users=users,
        settings=settings,
        renderer=ArtifactRenderer(
            artifacts, cache_dir=settings.cache_dir, preview_bytes=settings.config.preview_kib * 1024
        ),
        limiter=LoginLimiter(
            engine,
            attempts=settings.config.login_attempts,
            address_attempts=settings.config.login_attempts_per_address,
            window=settings.config.login_window_seconds,
        ),
        metrics=FleetMetrics(engine),
    )
    app.state.templates = templates(settings.tokens)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(api.metrics_router)
    if gateway is not None:
        app.include_router(gateway_router(gateway))
    if bids is not None:  # the bid endpoint of open ERC-8183 jobs (routes/bids.py)
        app.include_router(bids_router(bids))
    _install_error_handlers(app)
    return app


def templates(tokens: TokenBook | None = None) -> Jinja2Templates:
    """The page templates with Deworker's filters (``amount`` shows token amounts with ``tokens``). Autoescaping
    is on for every template."""
    env = Environment(
        loader=PackageLoader("orchestrator.entry.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    book = tokens or TokenBook()
    env.filters.update(ago=ago, short=short, units=units, usd=dollars, when=when, amount=book.format)
    env.globals["tokens"] = book
    return Jinja2Templates(env=env)


# ------------------------------------------------------------------------------------------------- filters


def ago(at: datetime, now: datetime | None = None) -> str:
    """'3 min ago'-style age of ``at``."""
    seconds = int(((now or datetime.now(UTC)) - at).total_seconds())
    for size, unit in ((86_400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now" if seconds < 5 else f"{seconds} s ago"


def short(value: str | None, keep: int = 10) -> str:
    """A long hash or CID cut in the middle: ``bafybeigdy…x7ppe``."""
    if not value:
        return "—"
    return value if len(value) <= 2 * keep + 1 else f"{value[:keep]}…{value[-6:]}"


def when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -------------------------------------------------------------------------------------------------- errors


def _status_of(exc: DeworkerError) -> int:
    return next((code for cls, code in ERROR_STATUS if isinstance(exc, cls)), 500)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _install_error_handlers(app: FastAPI) -> None:
    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if _is_api(request):
            return JSONResponse({"detail": "not logged in"}, status_code=401)
        return RedirectResponse(pages.login_url(exc.next_url), status_code=303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return error_page(request, exc.status_code, str(exc.detail), headers=exc.headers)

    async def deworker_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DeworkerError)
        code = _status_of(exc)
        if _is_api(request):
            body: dict[str, Any] = {"detail": exc.message, "error": type(exc).__name__, "hint": exc.hint}
            return JSONResponse(body, status_code=code)
        return error_page(request, code, str(exc))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": e.get("loc"), "msg": e.get("msg")} for e in exc.errors()]
        if _is_api(request):
            return JSONResponse({"detail": errors}, status_code=422)
        text = "; ".join(f"{'.'.join(str(p) for p in e['loc'] or ())}: {e['msg']}" for e in errors)
        return error_page(request, 422, f"the request was not understood ({text})")

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DeworkerError, deworker_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def error_page(request: Request, code: int, message: str, *, headers: Mapping[str, str] | None = None) -> Response:
    """An HTML error page in the app's layout."""
    tpl: Jinja2Templates = request.app.state.templates
    session = getattr(request.state, "session", None)
    return tpl.TemplateResponse(
        request,
        "error.html",
        {"code": code, "message": message, "session": session, "nav": ""},
        status_code=code,
        headers=headers,
    )

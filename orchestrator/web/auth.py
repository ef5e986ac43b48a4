"""Who is asking, and may they: FastAPI dependencies for browser sessions (cookie + CSRF token) and API bearer
tokens, the login rate limiter, and the security headers every response carries.

- Pages: a ``deworker_session`` cookie (HttpOnly, SameSite=Strict, Secure when ``web.secure_cookies``) holds a
  random token; the session row holds the CSRF token every form must send back (``csrf_token`` field). The login
  form, which has no session yet, uses a double-submit cookie instead. A POST whose ``Origin`` is another site is
  refused before the token is even looked at.
- API: ``Authorization: Bearer dwk_...``. No cookie is accepted there, so the API needs no CSRF defence.
- Roles: ``viewer`` sees everything and decides nothing (403).

Must not import ``orchestrator.web.routes`` (routes import this).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.ports import ArtifactStore
from orchestrator.store import Store
from orchestrator.web.config import Role, WebSettings
from orchestrator.web.models import ReviewerPublic
from orchestrator.web.render import ArtifactRenderer
from orchestrator.web.users import SessionInfo, UserStore

SESSION_COOKIE = "deworker_session"
LOGIN_CSRF_COOKIE = "deworker_login_csrf"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a request handler may use; built once by ``create_app`` and kept on ``app.state``."""

    store: Store
    artifacts: ArtifactStore
    users: UserStore
    settings: WebSettings
    renderer: ArtifactRenderer
    limiter: LoginLimiter


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


# ---------------------------------------------------------------------------------------------- rate limiting


class LoginLimiter:
    """At most ``attempts`` failed logins per key (a name, a client address) in a sliding ``window`` of seconds.
    In memory: one ``deworker review serve`` process is one limiter (a restart forgets, which errs towards the
    operator, not the attacker's guess count: ``attempts`` stays small)."""

    def __init__(self, *, attempts: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> int:
        """Seconds until a login for these keys may be tried again; 0 if it may be now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._failures.get(key)
                if q is None:
                    continue
                while q and q[0] <= now - self.window:
                    q.popleft()
                if len(q) >= self.attempts:
                    wait = max(wait, q[0] + self.window - now)
                if not q:
                    del self._failures[key]
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name_key: str) -> None:
        """A right password clears the name's failures (not the address's)."""
        with self._lock:
            self._failures.pop(name_key, None)


# ----------------------------------------------------------------------------------------------- page sessions


class LoginRequired(Exception):
    """Raised by page dependencies without a live session; the app answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def page_session(request: Request, services: ServicesDep) -> SessionInfo:
    """The live browser session, or a redirect to the login page."""
    token = request.cookies.get(SESSION_COOKIE)
    info = services.users.session(token) if token else None
    if info is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.session = info
    return info


SessionDep = Annotated[SessionInfo, Depends(page_session)]


def same_origin(request: Request) -> None:
    """Refuse a state-changing request sent by another site's page (defence in depth next to the CSRF token)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")


def checked_session(
    session: SessionDep, request: Request, csrf_token: Annotated[str, Form(max_length=128)] = ""
) -> SessionInfo:
    """The session of a form POST whose CSRF token matches (403 otherwise)."""
    same_origin(request)
    if not csrf_token or not hmac.compare_digest(csrf_token, session.csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token: reload the page and try again")
    return session


CheckedSessionDep = Annotated[SessionInfo, Depends(checked_session)]


def reviewer_session(session: CheckedSessionDep) -> SessionInfo:
    """A CSRF-checked session whose account may decide."""
    if session.reviewer.role is not Role.REVIEWER:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{session.reviewer.name} may view but not decide")
    return session


ReviewerSessionDep = Annotated[SessionInfo, Depends(reviewer_session)]


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


# --------------------------------------------------------------------------------------------------------- API


def api_user(request: Request, services: ServicesDep) -> ReviewerPublic:
    """The account of the request's bearer token (401 without a valid one)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = services.users.token_user(token.strip()) if scheme.lower() == "bearer" and token else None
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid API token is required: Authorization: Bearer <token> (create one with `deworker review token`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


ApiUserDep = Annotated[ReviewerPublic, Depends(api_user)]


def api_reviewer(user: ApiUserDep) -> ReviewerPublic:
    """A token account that may decide (403 for viewers)."""
    if user.role is not Role.REVIEWER:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{user.name} may view but not decide")
    return user


ApiReviewerDep = Annotated[ReviewerPublic, Depends(api_reviewer)]


# ------------------------------------------------------------------------------------------------------ headers


class SecurityHeaders:
    """ASGI middleware: the CSP and friends on every response; ``no-store`` on everything but static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

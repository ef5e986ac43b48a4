"""Who is asking, and may they: FastAPI dependencies for browser sessions (cookie + CSRF token) and API bearer
tokens, the login rate limiter, and the security headers every response carries.

- Pages: a ``deworker_session`` cookie (HttpOnly, SameSite=Strict, Secure when ``web.secure_cookies``) holds a
  random token; the session row holds the CSRF token every form must send back (``csrf_token`` field). The login
  form, which has no session yet, uses a double-submit cookie instead. A POST whose ``Origin`` is another site is
  refused before the token is even looked at.
- API: ``Authorization: Bearer dwk_...``. No cookie is accepted there, so the API needs no CSRF defence.
- Roles: ``viewer`` sees everything and decides nothing (403).

Must not import ``orchestrator.entry.web.routes`` (routes import this).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, status
from sqlalchemy import Engine, delete, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.adapters.sql import Store
from orchestrator.adapters.sql.db import translate
from orchestrator.adapters.sql.metrics import FleetMetrics
from orchestrator.adapters.sql.queries import Queries
from orchestrator.domain.errors import DeworkerError
from orchestrator.entry.web.config import Role, WebSettings
from orchestrator.entry.web.models import LIMIT_KEY_LEN, LoginFailure, ReviewerPublic
from orchestrator.entry.web.render import ArtifactRenderer
from orchestrator.entry.web.users import SessionInfo, UserStore
from orchestrator.ports.artifacts import ArtifactStore

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
    queries: Queries
    artifacts: ArtifactStore
    users: UserStore
    settings: WebSettings
    renderer: ArtifactRenderer
    limiter: LoginLimiter
    metrics: FleetMetrics


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


# ---------------------------------------------------------------------------------------------- rate limiting


class LoginLimiter:
    """At most ``attempts`` failed logins per account and ``address_attempts`` per client address, each counted on
    its own, in a sliding ``window`` of seconds. Keys are ``name:<account>`` or ``ip:<address>``.

    The failures are rows of ``login_failure`` in the orchestrator's database, so the limit survives a restart
    and holds across several ``deworker review serve`` processes on one database. Rows older than the window are
    deleted whenever a new failure is written, so the table stays as small as the attack."""

    def __init__(
        self,
        engine: Engine,
        *,
        attempts: int,
        window: float,
        address_attempts: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self.attempts = attempts
        self.address_attempts = attempts if address_attempts is None else address_attempts
        self.window = window
        self._clock = clock

    def limit(self, key: str) -> int:
        """The failures allowed per window for a key of this kind."""
        return self.address_attempts if key.startswith("ip:") else self.attempts

    @contextmanager
    def _session(self, doing: str) -> Iterator[Session]:
        try:
            with Session(self._engine) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise translate(exc, doing=doing) from exc

    def retry_after(self, *keys: str) -> int:
        """Seconds until a login for these keys may be tried again; 0 if it may be now."""
        now = self._clock()
        query = (
            select(col(LoginFailure.key), func.count(), func.min(col(LoginFailure.at)))
            .where(col(LoginFailure.key).in_([_limit_key(k) for k in keys]), col(LoginFailure.at) > now - self.window)
            .group_by(col(LoginFailure.key))
        )
        with self._session("reading failed logins") as s:
            rows = s.exec(query).all()
        wait = max((float(oldest) + self.window - now for key, n, oldest in rows if n >= self.limit(key)), default=0.0)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        """Count a failed login against every key (and forget failures older than the window)."""
        now = self._clock()
        with self._session("recording a failed login") as s:
            s.exec(delete(LoginFailure).where(col(LoginFailure.at) <= now - self.window))
            s.add_all(LoginFailure(key=_limit_key(key), at=now) for key in keys)

    def succeeded(self, name_key: str) -> None:
        """A right password clears the name's failures (not the address's)."""
        with self._session("clearing failed logins") as s:
            s.exec(delete(LoginFailure).where(col(LoginFailure.key) == _limit_key(name_key)))

    def failures(self, key: str) -> int:
        """How many failures of ``key`` are inside the window now."""
        now = self._clock()
        query = select(func.count()).where(
            col(LoginFailure.key) == _limit_key(key), col(LoginFailure.at) > now - self.window
        )
        with self._session("counting failed logins") as s:
            return int(s.exec(query).one())


def _limit_key(key: str) -> str:
    """A key as stored: names are at most 64 characters (the login form), so this only guards the column."""
    return key[:LIMIT_KEY_LEN]


def client_address(request: Request, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The address a request comes from. ``X-Forwarded-For`` is believed only when the peer is one of the
    ``trusted`` proxies, and then read from the right: the first address that is not a trusted proxy is the
    client (anything to its left was written by the client itself and proves nothing)."""
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where an address should be: count it against the proxy itself
    return peer


def _in(address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


# ----------------------------------------------------------------------------------------------- page sessions


class LoginRequired(DeworkerError):
    """Raised by page dependencies without a live session; the app answers with a redirect to /login (its own
    handler, found before the ``DeworkerError`` one: Starlette looks handlers up along the class's MRO)."""

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
    """ASGI middleware: the CSP and friends on every response (unless the response set that header itself);
    ``no-store`` on everything but static files and the trustless gateway's ``/ipfs/`` (which sets its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        static = path.startswith("/static/")
        gateway = path.startswith("/ipfs/")  # immutable by CID: the gateway sets its own Cache-Control

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if not static and not gateway:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

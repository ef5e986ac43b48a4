"""``UserStore``: reviewer accounts, API tokens and browser sessions, over the orchestrator's database engine.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile) and rehashed on login
when those defaults change. A failed lookup still spends one hash verification, so response times do not tell
which names exist. API and session tokens are 256 random bits; only their SHA-256 is stored.

Must not import the web framework: the CLI uses this module too.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from orchestrator.adapters.sql import DuplicateRecord, RecordNotFound
from orchestrator.adapters.sql.db import translate
from orchestrator.domain.errors import ConfigError
from orchestrator.entry.web.config import Role
from orchestrator.entry.web.models import ApiToken, ApiTokenPublic, Reviewer, ReviewerPublic, WebSession

TOKEN_PREFIX = "dwk_"  # makes a leaked API token easy to grep for
MIN_PASSWORD_LEN = 12
NAME_PATTERN = "letters, digits, '.', '_' or '-', 1 to 64 characters"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    """The stored form of an API or session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    """A reviewer name as stored (it is the actor of audit events); ``ConfigError`` if it is not one."""
    if not 1 <= len(name) <= 64 or not all(c.isascii() and (c.isalnum() or c in "._-") for c in name):
        raise ConfigError(f"not a reviewer name: {name!r}", hint=f"use {NAME_PATTERN}")
    return name


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live browser session: who, and the CSRF token its forms must carry."""

    reviewer: ReviewerPublic
    csrf_token: str
    expires_at: datetime


class UserStore:
    """Reviewer accounts, tokens and sessions. Build it in the bootstrap over the migrated engine."""

    def __init__(
        self, engine: Engine, *, hasher: PasswordHasher | None = None, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._engine = engine
        self._hasher = hasher or PasswordHasher()
        self._clock = clock
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @contextmanager
    def _session(self, doing: str) -> Iterator[Session]:
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise translate(exc, doing=doing) from exc

    # ----------------------------------------------------------------------------------------------- accounts

    def add_user(self, *, name: str, password: str, role: Role) -> ReviewerPublic:
        """Create an account; ``DuplicateRecord`` if the name is taken, ``ConfigError`` for a short password."""
        check_name(name)
        self._check_password(password)
        row = Reviewer(name=name, role=Role(role), password_hash=self._hasher.hash(password), created_at=self._clock())
        with self._session(f"adding reviewer {name!r}") as s:
            if s.exec(select(Reviewer).where(col(Reviewer.name) == name)).first() is not None:
                raise DuplicateRecord(f"reviewer {name!r} exists", hint="pick another name, or use set-password")
            s.add(row)
            s.flush()
            return ReviewerPublic.model_validate(row)

    def set_password(self, *, name: str, password: str) -> None:
        """Change a password; every session of the account ends."""
        self._check_password(password)
        hashed = self._hasher.hash(password)
        with self._session(f"changing the password of {name!r}") as s:
            row = self._reviewer(s, name)
            row.password_hash = hashed
            s.exec(delete(WebSession).where(col(WebSession.reviewer_id) == row.id))

    def set_disabled(self, *, name: str, disabled: bool) -> ReviewerPublic:
        """Disable (or re-enable) an account; disabling ends its sessions and its tokens stop working."""
        with self._session(f"updating reviewer {name!r}") as s:
            row = self._reviewer(s, name)
            row.disabled = disabled
            if disabled:
                s.exec(delete(WebSession).where(col(WebSession.reviewer_id) == row.id))
            s.flush()
            return ReviewerPublic.model_validate(row)

    def users(self) -> list[ReviewerPublic]:
        """Every account, by name."""
        with self._session("listing reviewers") as s:
            return [ReviewerPublic.model_validate(r) for r in s.exec(select(Reviewer).order_by(col(Reviewer.name)))]

    def authenticate(self, *, name: str, password: str) -> ReviewerPublic | None:
        """The account if ``password`` is right and the account enabled, else None (in about the same time)."""
        with self._session(f"checking the password of {name!r}") as s:
            row = s.exec(select(Reviewer).where(col(Reviewer.name) == name)).first()
            try:
                self._hasher.verify(row.password_hash if row else self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return None
            if row is None or row.disabled:
                return None
            if self._hasher.check_needs_rehash(row.password_hash):
                row.password_hash = self._hasher.hash(password)
            return ReviewerPublic.model_validate(row)

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_LEN:
            raise ConfigError(
                f"the password is {len(password)} characters long", hint=f"use at least {MIN_PASSWORD_LEN}"
            )

    @staticmethod
    def _reviewer(s: Session, name: str) -> Reviewer:
        row = s.exec(select(Reviewer).where(col(Reviewer.name) == name).with_for_update()).first()
        if row is None:
            raise RecordNotFound(f"no reviewer named {name!r}", hint="list them with `deworker review users`")
        return row

    # -------------------------------------------------------------------------------------------- API tokens

    def create_token(self, *, name: str, label: str) -> tuple[str, ApiTokenPublic]:
        """A new API token for the account: the token itself (shown once, never stored) and its record."""
        check_name(label)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._session(f"creating a token for {name!r}") as s:
            reviewer = self._reviewer(s, name)
            assert reviewer.id is not None
            row = ApiToken(reviewer_id=reviewer.id, label=label, token_hash=token_hash(token), created_at=self._clock())
            s.add(row)
            s.flush()
            return token, ApiTokenPublic.model_validate(row)

    def revoke_tokens(self, *, name: str) -> int:
        """Delete every API token of the account; returns how many there were."""
        with self._session(f"revoking the tokens of {name!r}") as s:
            reviewer = self._reviewer(s, name)
            result = s.exec(delete(ApiToken).where(col(ApiToken.reviewer_id) == reviewer.id))
            return int(result.rowcount)

    def token_user(self, token: str) -> ReviewerPublic | None:
        """The enabled account an API token belongs to, or None."""
        with self._session("checking an API token") as s:
            row = s.exec(
                select(ApiToken, Reviewer)
                .join(Reviewer, col(Reviewer.id) == col(ApiToken.reviewer_id))
                .where(col(ApiToken.token_hash) == token_hash(token))
            ).first()
            if row is None or row[1].disabled:
                return None
            row[0].last_used_at = self._clock()
            return ReviewerPublic.model_validate(row[1])

    # ---------------------------------------------------------------------------------------------- sessions

    def start_session(self, *, reviewer: ReviewerPublic, ttl: timedelta) -> tuple[str, SessionInfo]:
        """A new browser session: the cookie's token (never stored) and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        row = WebSession(
            id=token_hash(token),
            reviewer_id=reviewer.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + ttl,
        )
        with self._session(f"starting a session for {reviewer.name!r}") as s:
            s.exec(delete(WebSession).where(col(WebSession.expires_at) < now))  # housekeeping, cheap
            s.add(row)
        return token, SessionInfo(reviewer=reviewer, csrf_token=row.csrf_token, expires_at=row.expires_at)

    def session(self, token: str) -> SessionInfo | None:
        """The live session of a cookie's token, or None (unknown, expired, or the account disabled)."""
        with self._session("reading a session") as s:
            row = s.exec(
                select(WebSession, Reviewer)
                .join(Reviewer, col(Reviewer.id) == col(WebSession.reviewer_id))
                .where(col(WebSession.id) == token_hash(token))
            ).first()
            if row is None:
                return None
            sess, reviewer = row
            if sess.expires_at <= self._clock() or reviewer.disabled:
                return None
            return SessionInfo(
                reviewer=ReviewerPublic.model_validate(reviewer), csrf_token=sess.csrf_token, expires_at=sess.expires_at
            )

    def end_session(self, token: str) -> None:
        """Log out: the session's row is deleted, so the cookie is worthless even if kept."""
        with self._session("ending a session") as s:
            s.exec(delete(WebSession).where(col(WebSession.id) == token_hash(token)))

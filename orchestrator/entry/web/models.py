"""The web app's tables, in the store's SQLModel pattern (``XBase`` → ``X(table=True)`` → ``XPublic``):

- ``reviewer``: accounts the operator creates with ``deworker review add-user``; the password is an argon2id hash.
- ``api_token``: bearer tokens for automation; only the SHA-256 of a token is stored (a token is 256 random bits,
  so a fast hash is enough; it is shown once, when created).
- ``web_session``: browser sessions; the cookie holds a random token, the table its SHA-256 and the session's
  CSRF token, so logging out (deleting the row) really ends the session.

Importing this module registers the tables in ``SQLModel.metadata``; the migration is ``r0002_reviewers``.
Must not import the web framework: SQLModel/SQLAlchemy and the store's column types only.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from orchestrator.adapters.sql.models import NAME_LEN
from orchestrator.adapters.sql.types import StrEnumText, UtcDateTime
from orchestrator.entry.web.config import Role

HASH_LEN = 64  # SHA-256, hex
LIMIT_KEY_LEN = 80  # "name:" + a 64-character name, or "ip:" + an IPv6 address
PASSWORD_HASH_LEN = 255  # an argon2 PHC string is ~100 characters; room for stronger parameters


class ReviewerBase(SQLModel):
    name: str = Field(max_length=NAME_LEN, unique=True, description="shown in audit events as the actor")
    role: Role = Field(sa_type=StrEnumText(Role))
    disabled: bool = False
    created_at: datetime = Field(sa_type=UtcDateTime)


class Reviewer(ReviewerBase, table=True):
    __tablename__ = "reviewer"

    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=PASSWORD_HASH_LEN)


class ReviewerPublic(ReviewerBase):
    """A reviewer without the password hash: what ``UserStore`` returns."""

    id: int


class ApiTokenBase(SQLModel):
    reviewer_id: int = Field(foreign_key="reviewer.id", index=True)
    label: str = Field(max_length=NAME_LEN, description="what the token is for, e.g. 'ci'")
    created_at: datetime = Field(sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ApiToken(ApiTokenBase, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=HASH_LEN, unique=True)


class ApiTokenPublic(ApiTokenBase):
    id: int


class WebSession(SQLModel, table=True):
    """A logged-in browser. ``id`` is the SHA-256 of the cookie's token."""

    __tablename__ = "web_session"

    id: str = Field(primary_key=True, max_length=HASH_LEN)
    reviewer_id: int = Field(foreign_key="reviewer.id", index=True)
    csrf_token: str = Field(max_length=HASH_LEN)
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class LoginFailure(SQLModel, table=True):
    """One failed login for one rate-limit key. Rows older than the window are deleted as new ones arrive."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=LIMIT_KEY_LEN, index=True)
    at: float = Field(description="unix seconds")

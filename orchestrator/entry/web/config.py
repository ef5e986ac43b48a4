"""Typed configuration of the review web app: the ``web`` section of ``config.yaml`` (``web.<key>``).

``orchestrator.entry.config.Config`` nests ``WebConfig`` as ``web``.
``WebSettings`` is what ``create_app`` takes: the config with every path resolved against ``data_dir``.

Must not import any adapter: standard library, pydantic and ``orchestrator.domain.money`` only
(``orchestrator.entry.config`` imports it).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork

from orchestrator.domain.money import TokenBook

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8077


class Role(enum.StrEnum):
    """What a reviewer account may do."""

    REVIEWER = "reviewer"  # view everything, approve / request changes / reject / abandon
    VIEWER = "viewer"  # view everything, decide nothing


class WebConfig(BaseModel):
    """``web.*`` in config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default=DEFAULT_HOST, description="address `deworker review serve` binds; loopback by default")
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    secure_cookies: bool = Field(
        default=False, description="mark cookies Secure: set it when a TLS proxy is in front (the browser needs https)"
    )
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="a login lasts this long")
    login_attempts: int = Field(default=5, ge=1, le=1000, description="failed logins per account per window")
    login_attempts_per_address: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="failed logins per client address per window, counted apart from the accounts': many "
        "reviewers can share one address (an office, a VPN), so one of them mistyping never locks out the others",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="addresses or networks of the reverse proxies in front (e.g. [127.0.0.1]); only a request "
        "arriving from one of them has its client address taken from X-Forwarded-For",
    )
    login_window_seconds: int = Field(default=300, ge=1, le=86_400, description="the rate limit's sliding window")
    preview_kib: int = Field(default=256, ge=1, le=10_240, description="larger files show only this much, inline")
    inbox_poll_seconds: float = Field(
        default=10, ge=0, le=3600, description="an open inbox checks for changes this often and says so; 0 = never"
    )
    cache_dir: Path | None = Field(default=None, description="exported artifacts; null = <data_dir>/review-cache")


@dataclass(frozen=True, slots=True)
class WebSettings:
    """``WebConfig`` with its paths resolved and the known tokens (see ``tokens.TokenBook``): what ``create_app``
    needs."""

    config: WebConfig
    cache_dir: Path
    tokens: TokenBook = field(default_factory=TokenBook)

    @classmethod
    def resolve(cls, config: WebConfig, *, data_dir: Path, tokens: TokenBook | None = None) -> WebSettings:
        return cls(config=config, cache_dir=config.cache_dir or data_dir / "review-cache", tokens=tokens or TokenBook())


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

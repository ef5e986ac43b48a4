"""Model endpoints as shared, limited resources: the port an agent waits at before each model call.

An endpoint is a base URL and a model (``endpoint_key``); its ``EndpointLimit`` (config ``endpoints:``) caps the
requests in flight, the requests started per minute and the tokens used per minute. Before each call the agent asks
the ``EndpointGate`` for a pass (``enter``), waiting while the endpoint is full: the wait is part of the call, so it
counts against the task's time budget; after the call it hands the pass back with the tokens the call used
(``leave``). ``orchestrator.adapters.sql.DbEndpointGate`` keeps slots, rates and waiters in the orchestrator's
database, so the limit holds across every worker on every machine sharing it.

Must not import LangChain, openai, httpx or SQLAlchemy.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from agents.config import EndpointLimit

#: Hosts that mean "this machine": two machines' ``127.0.0.1:8080`` are two servers, so the key names the host.
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0")  # noqa: S104  (names, never bound)


def endpoint_key(base_url: str, model: str, *, host: str | None = None) -> str:
    """The name the fleet shares one endpoint's limit under: ``<base URL> <model>``; a loopback URL is prefixed with
    this machine's name (``host``, default ``socket.gethostname()``), since it is a different server on each."""
    url = base_url.rstrip("/")
    if urlsplit(url).hostname in _LOOPBACK:
        url = f"{host or socket.gethostname()}/{url}"
    return f"{url} {model}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint with its limits, as the gate enforces them."""

    key: str
    limit: EndpointLimit

    @property
    def unlimited(self) -> bool:
        lim = self.limit
        return lim.concurrency is None and lim.requests_per_minute is None and lim.tokens_per_minute is None


@dataclass(frozen=True, slots=True)
class EndpointPass:
    """Leave to make one call: the slot held (None when only rates limit), its fencing token, and how long the
    agent waited for it (seconds)."""

    key: str
    holder: str
    slot: str | None
    token: int
    waited: float


class EndpointGate(Protocol):
    """Where agents wait for their endpoint. ``enter`` returns None if no pass came within ``timeout`` seconds
    (the agent's time budget); ``hold`` is how long the pass may be held before it lapses (the call's timeout plus
    a margin), so a crashed process never keeps a slot."""

    def enter(
        self, endpoint: Endpoint, *, agent: str, task: str, timeout: float, hold: float
    ) -> EndpointPass | None: ...

    def leave(self, ticket: EndpointPass, *, tokens: int) -> None: ...

"""The kinds of board Deworker can work, by the ``kind`` of a ``boards:`` entry in config.

Adding a kind of board is one adapter module and one line in ``KINDS``: the adapter's factory takes the entry's
settings and what every board needs (the chain, the artifact store) and returns a ``TaskBoard``. Adapters are
imported when a board of their kind is built, so loading the config stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from orchestrator.domain.errors import ConfigError
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.board import TaskBoard
from orchestrator.ports.chain import Chain


@dataclass(frozen=True, slots=True)
class BoardSettings:
    """One ``boards:`` entry, resolved: ``address`` is the contract (a saved deployment's, if config had none)."""

    name: str
    kind: str
    address: str
    max_spec_bytes: int
    confirmations: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)


#: A board adapter's factory: settings, chain, artifact store -> the board.
BoardFactory = Callable[[BoardSettings, Chain, ArtifactStore], TaskBoard]

#: kind -> "module:factory" of its adapter.
KINDS: dict[str, str] = {
    "taskboard": "orchestrator.adapters.boards.onchain:from_settings",
    "erc8183": "orchestrator.adapters.boards.erc8183:from_settings",
}


def build_board(settings: BoardSettings, *, chain: Chain, artifacts: ArtifactStore) -> TaskBoard:
    """The board ``settings`` describe; ``ConfigError`` naming the key for an unknown kind."""
    target = KINDS.get(settings.kind)
    if target is None:
        raise ConfigError(
            f"board {settings.name!r} has kind {settings.kind!r}, which Deworker does not know",
            key="boards[].kind",
            hint=f"use one of: {', '.join(sorted(KINDS))}",
        )
    module, _, attr = target.partition(":")
    factory = cast(BoardFactory, getattr(importlib.import_module(module), attr))
    return factory(settings, chain, artifacts)

"""The actions one agent run gets: the tools its profile allows, bound to the task's workspace, plus
``submit_artifact``. Must not import LangChain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import get_args

from agents.config import ToolName
from tools.base import ActionRegistry
from tools.sandbox import run_tests_action
from tools.submit import submit_artifact_action
from tools.web import HttpFetcher, http_get_action
from tools.workspace import Workspace, workspace_actions

#: Every tool name a profile may list (``submit_artifact`` is always added): the names config accepts.
OPTIONAL_TOOLS: tuple[str, ...] = get_args(ToolName)


def build_registry(
    ws: Workspace,
    *,
    allowed: Iterable[str],
    acceptance_tests: Mapping[str, str] | None,
    max_artifact_bytes: int,
    fetcher: HttpFetcher | None = None,
    test_timeout: float = 60.0,
    test_memory_bytes: int = 1_073_741_824,
    test_output_chars: int = 4000,
) -> ActionRegistry:
    """Actions named in ``allowed`` (``http_get`` needs a ``fetcher``), then ``submit_artifact``."""
    wanted = set(allowed)
    unknown = wanted - set(OPTIONAL_TOOLS)
    if unknown:
        raise ValueError(f"unknown tools: {', '.join(sorted(unknown))}; known: {', '.join(OPTIONAL_TOOLS)}")
    registry = ActionRegistry(a for a in workspace_actions(ws) if a.name in wanted)
    if "run_tests" in wanted:
        registry.add(
            run_tests_action(
                ws,
                acceptance_tests,
                timeout=test_timeout,
                memory_bytes=test_memory_bytes,
                max_output_chars=test_output_chars,
            )
        )
    if "http_get" in wanted:
        if fetcher is None:
            raise ValueError("http_get is allowed but no HttpFetcher was given")
        registry.add(http_get_action(fetcher))
    registry.add(submit_artifact_action(ws, max_bytes=max_artifact_bytes))
    return registry

"""The agent branch of Deworker's exception tree (``AgentError`` and below), drawn with every other branch in
``orchestrator.domain.errors``.

Only ``tools.langchain`` turns a ``ToolError`` into text for the model; every other layer raises.
Must not import LangChain, openai or httpx.
"""

from __future__ import annotations

from orchestrator.domain.errors import DeworkerError


class AgentError(DeworkerError):
    """An agent failed to produce an artifact."""


class BudgetExceeded(AgentError):
    """A budget is used up. ``budget`` names the config key, e.g. ``budgets.max_tokens_per_task``."""

    def __init__(self, message: str, *, budget: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or f"raise agents.profiles[].{budget} or wait for the next day")
        self.budget = budget


class ModelUnavailable(AgentError):
    """The model endpoint is unreachable or overloaded after our bounded retries. Safe to retry later."""

    retryable = True


class ModelRequestRejected(AgentError):
    """The model endpoint rejected the request (bad key, unknown model, bad parameters). Not retried."""


class LocalModelError(AgentError):
    """The embedded local model (SmolLM2 GGUF on llama-cpp-python's server) is missing or failed to start."""


class ToolError(AgentError):
    """A tool call failed. The message is shown to the model, so it must not contain secrets."""


class ToolRefused(ToolError):
    """A safety rule refused a tool call (path outside the workspace, private address, over a size cap)."""

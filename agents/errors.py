"""The agent branch of Deworker's exception tree.

::

    DeworkerError (orchestrator.domain.errors)
    └── AgentError                      an agent could not turn a spec into an artifact
        ├── BudgetExceeded              a token, cost or time budget (per task or per day) is used up
        ├── ModelUnavailable            retryable: the model endpoint kept failing (429, 5xx, timeout, refused)
        ├── ModelRequestRejected        the endpoint refused the request itself (400, 401, 404): not retried
        ├── LocalModelError             the embedded model server cannot be found, installed or started
        └── ToolError                   a tool refused or failed; the LangChain wrapper turns it into text
            └── ToolRefused             a safety rule refused the call (path traversal, SSRF, size caps)

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

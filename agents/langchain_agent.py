"""``LangChainAgent``: the ``AgentRunner`` port on any LangChain chat model, normally ``ChatOpenAI(base_url=...)``.

One run::

    attempt 1..(1 + max_revisions):
        messages = system + task (+ revision: previous files and feedback; after a rejection: start again)
        optional tool steps (tool_choice auto, at most max_tool_steps; skipped when model.tool_choice_auto is off)
        forced submit_artifact call (named tool_choice: servers like llama.cpp constrain the output to its schema)
        copy the submitted files to <workspace>/artifact, then self-check: the main file exists, and the spec's
        acceptance tests pass in the sandbox; on failure the test output feeds the next attempt
    write manifest.json (task, agent, model, prompt hash, usage, cost, self-check) next to the files

Usage comes from the API's usage field (``usage_metadata``); tokens are never estimated locally. Transient API
faults (429, 5xx, timeouts, refused connections) are retried with exponential backoff while the task's time budget
lasts; the client's own retries are off so these are the only ones. A ``Retry-After`` (seconds or an HTTP date) or
``retry-after-ms`` header on the error response replaces the backoff; if the wait it asks for is longer than the
task's remaining time, the run stops with ``BudgetExceeded`` instead of sleeping. Budget exhaustion ends the run as
``failed`` with the reason; a model that stays unreachable raises ``ModelUnavailable`` (retryable).

The agent holds no wallet and no tool can move funds: the orchestrator claims, submits and collects.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import SecretStr, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from agents.budget import InMemorySpendLedger, SpendLedger, TaskBudget
from agents.config import AgentProfile, AgentsConfig, ModelEndpoint, ModelPrice, resolve_api_key
from agents.errors import (
    AgentError,
    BudgetExceeded,
    LocalModelError,
    ModelRequestRejected,
    ModelUnavailable,
    ToolError,
)
from agents.ports import (
    MANIFEST_NAME,
    AgentResult,
    AgentStatus,
    AgentTask,
    Manifest,
    ManifestFile,
    SelfCheck,
    SelfCheckStatus,
    Usage,
)
from prompts import PromptSet, default_filename
from tools.base import ActionRegistry
from tools.langchain import run_action, to_langchain_tools, tool_error_text
from tools.registry import build_registry
from tools.sandbox import run_acceptance_tests
from tools.submit import SUBMIT_ARTIFACT, SubmitArtifactArgs, forced_submit_schema
from tools.web import HttpFetcher
from tools.workspace import Workspace

#: Forced submit calls per attempt before the attempt counts as "no valid submission".
FORCED_SUBMIT_TRIES = 2
#: Characters of each previous file shown in a revision prompt.
REVISION_FILE_CHARS = 4000


def chat_model(endpoint: ModelEndpoint, *, base_url: str, api_key: str) -> ChatOpenAI:
    """A ``ChatOpenAI`` for ``endpoint`` at ``base_url`` (for the embedded model: the local server's URL).

    ``max_retries=0``: ``LangChainAgent`` does the retrying, bounded by the task budget. For the embedded model
    (``base_url`` null in the profile) or ``legacy_max_tokens``, the cap is sent as ``max_tokens``.
    """
    legacy = endpoint.legacy_max_tokens or endpoint.base_url is None
    return ChatOpenAI(
        model=endpoint.model,
        base_url=base_url,
        api_key=SecretStr(api_key),
        temperature=endpoint.temperature,
        max_completion_tokens=None if legacy else endpoint.max_tokens,
        extra_body={"max_tokens": endpoint.max_tokens} if legacy else None,
        timeout=endpoint.timeout,
        max_retries=0,
    )


def agent_from_profile(
    profile: AgentProfile,
    agents: AgentsConfig,
    *,
    local_base_url: str | None = None,
    local_model: str | None = None,
    ledger: SpendLedger | None = None,
    environ: Mapping[str, str] | None = None,
) -> LangChainAgent:
    """Build the agent a profile describes. Profiles on the embedded model (``model.base_url`` null) need the
    running ``LocalModelServer``'s ``local_base_url``; API keys come from the environment variable the profile
    names; ``local_model`` is the name that server serves (a custom GGUF is served under its file's name).
    ``ledger`` holds the daily spend (default: in memory, forgotten on exit; the service passes
    ``orchestrator.adapters.sql.DbSpendLedger``)."""
    endpoint = profile.model
    if endpoint.base_url is None and local_model is not None:
        endpoint = endpoint.model_copy(update={"model": local_model})
    base_url = str(endpoint.base_url) if endpoint.base_url is not None else local_base_url
    if base_url is None:
        raise LocalModelError(
            f"agent profile {profile.name!r} uses the embedded local model, but no local model server is running",
            hint="start it with `deworker model serve --detach`, or set model.base_url in the profile",
        )
    model = chat_model(endpoint, base_url=base_url, api_key=resolve_api_key(endpoint, environ=environ))
    return LangChainAgent(profile, model, price=agents.prices.get(endpoint.model), ledger=ledger)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.RateLimitError | openai.APIConnectionError):  # APITimeoutError included
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code >= 500 or exc.status_code == 408)


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The wait an error response asks for: ``retry-after-ms`` (milliseconds, OpenAI's), else ``Retry-After`` as
    seconds or as an HTTP date (RFC 9110). None when absent or unreadable; never negative."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        value = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, value) if math.isfinite(value) else None


def _requested_wait(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, openai.APIStatusError):
        return retry_after_seconds(exc.response.headers)
    return None


def _usage(reply: AIMessage) -> Usage:
    meta = reply.usage_metadata
    if meta is None:
        return Usage(calls=1)
    return Usage(prompt_tokens=meta["input_tokens"], completion_tokens=meta["output_tokens"], calls=1)


class _NoSubmission(AgentError):
    """The model ended an attempt without a valid submit_artifact call."""


class LangChainAgent:
    """An agent profile bound to a chat model. Thread-safe: each ``run`` has its own state."""

    def __init__(
        self,
        profile: AgentProfile,
        model: BaseChatModel,
        *,
        price: ModelPrice | None = None,
        ledger: SpendLedger | None = None,
        fetcher: HttpFetcher | None = None,
        retry_initial_wait: float = 0.5,
        retry_max_wait: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = profile.name
        self.profile = profile
        self.model = model
        self.price = price
        self.ledger = ledger or InMemorySpendLedger()
        self.prompts = PromptSet.load(profile.prompt_set)
        if "http_get" in profile.tools and fetcher is None:
            fetcher = HttpFetcher(
                max_bytes=profile.http_get.max_bytes,
                timeout=profile.http_get.timeout,
                max_redirects=profile.http_get.max_redirects,
            )
        self.fetcher = fetcher
        self._retry_wait = wait_exponential_jitter(multiplier=retry_initial_wait, max=retry_max_wait)
        self._sleep = sleep

    # ------------------------------------------------------------------------------------------------- run

    def run(
        self, task: AgentTask, workspace: Path, *, feedback: str | None = None, start_over: bool = False
    ) -> AgentResult:
        """Produce (or, with ``feedback``, revise) the artifact of ``task`` in ``workspace``; with ``start_over``
        the rejected files are deleted first and the agent does the task again, told why; see the module doc."""
        spec = task.spec
        artifact_dir = workspace / "artifact"
        if start_over:
            # the reviewer rejected these files: neither the prompt nor the agent's tools may build on them
            shutil.rmtree(workspace / "work", ignore_errors=True)
            shutil.rmtree(artifact_dir, ignore_errors=True)
        work = Workspace(workspace / "work")
        tests = dict(spec.acceptance_tests.files) if spec.acceptance_tests else None
        cfg = self.profile
        registry = build_registry(
            work,
            allowed=cfg.tools,
            acceptance_tests=tests,
            max_artifact_bytes=spec.max_artifact_bytes,
            fetcher=self.fetcher,
            test_timeout=cfg.tests.timeout,
            test_memory_bytes=cfg.tests.memory_bytes,
            test_output_chars=cfg.tests.max_output_chars,
        )
        budget = TaskBudget(cfg.budgets, agent=self.name, task=task.task_id, price=self.price, ledger=self.ledger)
        base: list[BaseMessage] = [
            SystemMessage(self.prompts.render_system(agent_name=self.name, skills=cfg.skills)),
            HumanMessage(self.prompts.render_task(spec)),
        ]
        revision: tuple[str, str] | None = (feedback, "reviewer") if feedback else None
        previous = _read_files(artifact_dir) if feedback else {}
        restart = start_over and feedback is not None  # the first attempt's message says to start again
        check = SelfCheck(status=SelfCheckStatus.NONE)
        summary = ""
        attempts = 0
        reason: str | None = None
        try:
            for _ in range(1 + cfg.max_revisions):
                messages = list(base)
                if revision is not None:
                    text, source = revision
                    messages.append(
                        HumanMessage(
                            self.prompts.render_revision(
                                feedback=text, source=source, previous_files=previous, start_over=restart
                            )
                        )
                    )
                try:
                    submission = self._produce(messages, registry, budget, work=work, main_file=default_filename(spec))
                except _NoSubmission as exc:
                    attempts += 1
                    reason = exc.message
                    revision = (exc.message, "the agent loop")
                    restart = False
                    continue
                attempts += 1
                summary = submission.summary
                _copy_files(work, submission.paths(), artifact_dir)
                check = self._self_check(
                    artifact_dir, spec_filename=default_filename(spec), tests=tests, runs=check.runs
                )
                if check.status != SelfCheckStatus.FAILED:
                    reason = None
                    break
                reason = f"self-check failed after {attempts} attempt(s)"
                previous = _read_files(artifact_dir)
                revision = (check.output, "acceptance tests" if tests else "artifact check")
                restart = False
        except BudgetExceeded as exc:
            reason = str(exc)
        produced = reason is None and attempts > 0
        if not artifact_dir.is_dir():
            artifact_dir.mkdir(parents=True)
        manifest = Manifest(
            task_id=task.task_id,
            agent=self.name,
            model=cfg.model.model,
            prompt_hash=self.prompts.prompt_hash,
            status=AgentStatus.PRODUCED if produced else AgentStatus.FAILED,
            reason=reason,
            summary=summary,
            files=_describe(artifact_dir),
            usage=budget.usage,
            cost=budget.cost,
            self_check=check,
            attempts=attempts,
            feedback=feedback,
        )
        (artifact_dir / MANIFEST_NAME).write_text(
            json.dumps(manifest.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        return AgentResult(files_dir=artifact_dir, manifest=manifest)

    # ------------------------------------------------------------------------------------------- one attempt

    def _produce(
        self,
        messages: list[BaseMessage],
        registry: ActionRegistry,
        budget: TaskBudget,
        *,
        work: Workspace,
        main_file: str,
    ) -> SubmitArtifactArgs:
        tools = to_langchain_tools(registry)
        steps = self.profile.max_tool_steps if self.profile.model.tool_choice_auto else 0
        for _ in range(steps):
            reply = self._call(self.model.bind_tools(tools), messages, budget)
            if not reply.tool_calls:
                break
            # some servers (llama.cpp) reject an assistant turn whose content is empty
            messages.append(AIMessage(content=reply.content or "(tool calls)", tool_calls=reply.tool_calls))
            submitted: SubmitArtifactArgs | None = None
            for call in reply.tool_calls:
                call_id = call.get("id") or ""
                if call["name"] == SUBMIT_ARTIFACT and submitted is None:
                    text, submitted = _submit(registry, call["args"])
                else:
                    action = registry.get(call["name"])
                    if action is None:
                        text = f"ERROR: there is no tool {call['name']!r}; available: {', '.join(registry.names())}"
                    else:
                        text = run_action(action, call["args"])
                messages.append(ToolMessage(text, tool_call_id=call_id, name=call["name"]))
            if submitted is not None:
                return submitted
        action = registry.get(SUBMIT_ARTIFACT)
        assert action is not None  # build_registry always adds it
        forced_tool = {
            "type": "function",
            "function": {
                "name": SUBMIT_ARTIFACT,
                "description": action.description,
                "parameters": forced_submit_schema(main_file, work.files()),
            },
        }
        forced = self.model.bind_tools([forced_tool], tool_choice=SUBMIT_ARTIFACT)
        problem = "no submit_artifact call"
        for _ in range(FORCED_SUBMIT_TRIES):
            reply = self._call(forced, messages, budget)
            calls = [c for c in reply.tool_calls if c["name"] == SUBMIT_ARTIFACT]
            if not calls:
                messages.append(HumanMessage("Call submit_artifact now, with the complete file content."))
                continue
            text, submitted = _submit(registry, calls[0]["args"])
            if submitted is not None:
                return submitted
            # told as plain text, not as a tool turn: servers differ in what tool-call history they accept
            problem = text
            messages.append(HumanMessage(f"Your submit_artifact call was refused: {text}. Call it again, fixed."))
        raise _NoSubmission(f"the model did not submit a valid artifact: {problem}")

    def _self_check(
        self, artifact_dir: Path, *, spec_filename: str, tests: dict[str, str] | None, runs: int
    ) -> SelfCheck:
        if not (artifact_dir / spec_filename).is_file():
            present = ", ".join(sorted(_read_files(artifact_dir))) or "none"
            return SelfCheck(
                status=SelfCheckStatus.FAILED,
                output=f"the artifact must contain the file {spec_filename!r}; it has: {present}",
                runs=runs,
            )
        if not tests:
            return SelfCheck(status=SelfCheckStatus.NONE, runs=runs)
        cfg = self.profile.tests
        result = run_acceptance_tests(
            artifact_dir,
            tests,
            timeout=cfg.timeout,
            memory_bytes=cfg.memory_bytes,
            max_output_chars=cfg.max_output_chars,
        )
        status = SelfCheckStatus.PASSED if result.passed else SelfCheckStatus.FAILED
        return SelfCheck(status=status, output=result.output, runs=runs + 1)

    # ------------------------------------------------------------------------------------------- model calls

    def _call(
        self, runnable: Runnable[LanguageModelInput, BaseMessage], messages: Sequence[BaseMessage], budget: TaskBudget
    ) -> AIMessage:
        """One model call with budget checks and bounded retries of transient faults."""
        budget.check()
        endpoint = self.profile.model
        cap = budget.completion_cap(endpoint.max_tokens)
        bound = runnable
        if cap < endpoint.max_tokens:
            legacy = endpoint.legacy_max_tokens or endpoint.base_url is None
            bound = (
                runnable.bind(extra_body={"max_tokens": cap}) if legacy else runnable.bind(max_completion_tokens=cap)
            )
        retrying = Retrying(
            retry=retry_if_exception(_is_transient),
            stop=lambda state: self._stop_retrying(state, budget),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )

        def attempt() -> BaseMessage:
            # each attempt may wait at most what is left of the task's time budget, not a full model.timeout
            budget.check()
            timeout = min(endpoint.timeout, budget.remaining_seconds())
            return bound.bind(timeout=timeout).invoke(list(messages))

        try:
            reply = retrying(attempt)
        except openai.APIStatusError as exc:
            if _is_transient(exc):
                raise self._unavailable(exc, budget) from exc
            raise ModelRequestRejected(
                f"the model endpoint refused the request: HTTP {exc.status_code} {exc.message}",
                hint="check the profile's model name, API key variable and base_url",
            ) from exc
        except openai.APIConnectionError as exc:
            raise self._unavailable(exc, budget) from exc
        if not isinstance(reply, AIMessage):
            raise AgentError(f"the chat model returned {type(reply).__name__}, not an AI message")
        budget.record(_usage(reply))
        return reply

    def _wait(self, state: RetryCallState) -> float:
        """The server's ``Retry-After`` if it sent one, else exponential backoff with jitter."""
        requested = _requested_wait(state)
        return self._retry_wait(state) if requested is None else requested

    def _stop_retrying(self, state: RetryCallState, budget: TaskBudget) -> bool:
        """Stop after ``model.retries`` extra attempts, or when the next wait would outlast the task's time budget
        (tenacity computes ``upcoming_sleep`` before it asks). A server-requested wait that does not fit is a budget
        stop with its own reason: sleeping through it could only end in the time budget running out."""
        if state.attempt_number > self.profile.model.retries:
            return True
        remaining = budget.remaining_seconds()
        if state.upcoming_sleep < remaining:
            return False
        requested = _requested_wait(state)
        if requested is not None and requested >= remaining:
            exc = state.outcome.exception() if state.outcome is not None else None
            status = exc.status_code if isinstance(exc, openai.APIStatusError) else "?"
            raise BudgetExceeded(
                f"the model endpoint answered HTTP {status} and asked to wait {requested:.1f} s (Retry-After), "
                f"more than the {max(0.0, remaining):.1f} s left of the task's time budget",
                budget="budgets.max_seconds_per_task",
                hint="the endpoint is rate-limited: retry the task later, or raise "
                "agents.profiles[].budgets.max_seconds_per_task",
            ) from exc
        return True

    def _unavailable(self, exc: openai.OpenAIError, budget: TaskBudget) -> AgentError:
        if budget.remaining_seconds() <= 0:
            return BudgetExceeded(
                f"the model kept failing ({type(exc).__name__}) until the task's time budget ran out",
                budget="budgets.max_seconds_per_task",
            )
        return ModelUnavailable(
            f"the model endpoint failed {self.profile.model.retries + 1} time(s): {type(exc).__name__}: {exc}",
            hint="check that the model server is running and reachable; the task can be retried",
        )


def _submit(registry: ActionRegistry, raw_args: dict[str, Any]) -> tuple[str, SubmitArtifactArgs | None]:
    """Run submit_artifact: (text for the model, the parsed submission or None if it was refused)."""
    action = registry.get(SUBMIT_ARTIFACT)
    assert action is not None  # build_registry always adds it
    try:
        text = action.invoke(raw_args)
        return text, SubmitArtifactArgs.model_validate(raw_args)
    except ToolError as exc:
        return tool_error_text(exc), None
    except ValidationError as exc:  # pragma: no cover - invoke validated the same arguments already
        return f"ERROR: {exc}", None


def _copy_files(work: Workspace, paths: list[str], dest: Path) -> None:
    """Replace ``dest`` with a folder holding exactly ``paths`` from the workspace."""
    staging = dest.with_name(dest.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for rel in paths:
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work.resolve(rel), target)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)


def _read_files(folder: Path) -> dict[str, str]:
    """Text files in ``folder`` (manifest excluded), each cut to ``REVISION_FILE_CHARS``."""
    out: dict[str, str] = {}
    if not folder.is_dir():
        return out
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST_NAME:
            continue
        out[rel] = path.read_text(encoding="utf-8", errors="replace")[:REVISION_FILE_CHARS]
    return out


def _describe(folder: Path) -> list[ManifestFile]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST_NAME:
            continue
        data = path.read_bytes()
        files.append(ManifestFile(path=rel, size=len(data), sha256=hashlib.sha256(data).hexdigest()))
    return files

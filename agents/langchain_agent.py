"""``LangChainAgent``: the ``AgentRunner`` port on any LangChain chat model, normally ``ChatOpenAI(base_url=...)``.

One run::

    attempt 1..(1 + max_revisions):
        messages = system + task (+ revision: previous files, the failing tests and their output; after a
        rejection: start again)
        candidates 1..best_of (sequential: stop at the first pass; or all at once with parallel_candidates),
        each in its own copy of the workspace, candidates after the first and every revision sampled at
        model.revision_temperature:
            model calls: with the tools offered natively for up to max_tool_steps calls (model.offers_tools),
            then plain text; the model writes each file as a fenced block naming its path (``agents.drafts``)
            and the harness builds the submit_artifact call from them; tool calls written as text are run like
            native ones; every reply stays in the history; a version byte-identical to one that already failed
            is refused and asked for again
            self-check of the submitted files: the main file exists, and the spec's acceptance tests pass in
            the sandbox
        the first candidate that passes is the artifact; otherwise the closest one feeds the next attempt
    write manifest.json (task, agent, model, prompt hash, usage, cost, self-check) next to the files

Files never travel inside a JSON string unless the model itself chose a native submit_artifact call: models
write code far better as plain text (in a forced structured call small models cut files at the first quote).

Usage comes from the API's usage field (``usage_metadata``); tokens are never estimated locally. Every model
call of every candidate goes through ``TaskBudget.record`` as it returns, so all of them count in the budgets and
in the task's spend ledger (the P&L). Transient API faults (429, 5xx, timeouts, refused connections) are retried
with exponential backoff while the task's time budget lasts; the client's own retries are off so these are the
only ones. A ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms`` header on the error response replaces
the backoff; if the wait it asks for is longer than the task's remaining time, the run stops with
``BudgetExceeded`` instead of sleeping. Budget exhaustion ends the run as ``failed`` with the reason; a model that
stays unreachable raises ``ModelUnavailable`` (retryable).

The agent holds no wallet and no tool can move funds: the orchestrator claims, submits and collects.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
from agents.config import (
    AgentProfile,
    AgentsConfig,
    EndpointLimit,
    ModelEndpoint,
    ModelPrice,
    endpoint_limit,
    resolve_api_key,
)
from agents.drafts import parse_draft, text_tool_calls
from agents.endpoints import Endpoint, EndpointGate, EndpointPass, endpoint_key
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
from tools.sandbox import failure_report, run_acceptance_tests, test_counts
from tools.submit import SUBMIT_ARTIFACT, SUMMARY_MAX_CHARS, SubmitArtifactArgs
from tools.web import HttpFetcher
from tools.workspace import Workspace

#: Plain-text calls per candidate (after any tool steps) before it counts as "no valid submission".
DRAFT_TRIES = 2
#: Where candidates' submitted files wait for their self-check, under the task's workspace.
CANDIDATES = "candidates"
#: Asked when a reply held no file.
ASK_FOR_FILES = (
    'Write the complete file "{main_file}" now (and any other file of the artifact): each in a fenced block '
    "whose opening line names its path, with the full content inside and nothing left out."
)
#: Asked after the tool steps: the files, as text.
WRITE_NOW = (
    'Stop using tools now. Write the finished files of the artifact, "{main_file}" first, each complete in a '
    "fenced block whose opening line names its path."
)
#: The refusal of a version byte-identical to one that already failed.
IDENTICAL = (
    "ERROR: these files are byte for byte a version that already failed its check, so they were not tested again. "
    "Read the failure above, find its cause, and write changed, complete files."
)
#: Seconds an endpoint slot outlives its call's timeout before it lapses (a process that died mid-call frees it).
HOLD_MARGIN = 30.0
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
    gate: EndpointGate | None = None,
    limits: Sequence[EndpointLimit] = (),
) -> LangChainAgent:
    """Build the agent a profile describes. Profiles on the embedded model (``model.base_url`` null) need the
    running ``LocalModelServer``'s ``local_base_url``; API keys come from the environment variable the profile
    names; ``local_model`` is the name that server serves (a custom GGUF is served under its file's name).
    ``ledger`` holds the daily spend (default: in memory, forgotten on exit; the service passes
    ``orchestrator.adapters.sql.DbSpendLedger``). With a ``gate``, each model call first waits for the endpoint's
    limit (``limits``, config ``endpoints:``; the embedded model's default: what its server serves at once)."""
    endpoint = profile.model
    limit = endpoint_limit(list(limits), endpoint)
    if endpoint.base_url is None and local_model is not None:
        endpoint = endpoint.model_copy(update={"model": local_model})
    base_url = str(endpoint.base_url) if endpoint.base_url is not None else local_base_url
    if base_url is None:
        raise LocalModelError(
            f"agent profile {profile.name!r} uses the embedded local model, but no local model server is running",
            hint="start it with `deworker model serve --detach`, or set model.base_url in the profile",
        )
    model = chat_model(endpoint, base_url=base_url, api_key=resolve_api_key(endpoint, environ=environ))
    shared = None if limit is None else Endpoint(key=endpoint_key(base_url, endpoint.model), limit=limit)
    return LangChainAgent(
        profile,
        model,
        price=agents.prices.get(endpoint.model),
        ledger=ledger,
        gate=gate if shared is not None and not shared.unlimited else None,
        endpoint=shared,
    )


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
        gate: EndpointGate | None = None,
        endpoint: Endpoint | None = None,
    ) -> None:
        if gate is not None and endpoint is None:
            raise ValueError("an endpoint gate needs the endpoint it limits")
        self.name = profile.name
        self.gate = gate
        self.endpoint = endpoint
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
        _clear_candidates(workspace)
        cfg = self.profile
        tests = dict(spec.acceptance_tests.files) if spec.acceptance_tests else None
        state = _RunState(
            workspace=workspace,
            main_file=default_filename(spec),
            tests=tests,
            max_artifact_bytes=spec.max_artifact_bytes,
            budget=TaskBudget(cfg.budgets, agent=self.name, task=task.task_id, price=self.price, ledger=self.ledger),
        )
        base: list[BaseMessage] = [
            SystemMessage(self.prompts.render_system(agent_name=self.name, skills=cfg.skills)),
            HumanMessage(self.prompts.render_task(spec)),
        ]
        revision: tuple[str, str] | None = (feedback, "reviewer") if feedback else None
        previous = _read_files(artifact_dir) if feedback else {}
        if feedback and not start_over and previous:
            state.failed.add(_fingerprint(_read_bytes(artifact_dir)))  # the reviewer wants a change
        restart = start_over and feedback is not None  # the first attempt's message says to start again
        winner: _Candidate | None = None
        last: _Candidate | None = None
        attempts = 0
        reason: str | None = None
        try:
            for attempt in range(1 + cfg.max_revisions):
                state.attempt = attempt
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
                first = cfg.model.temperature if attempt == 0 and revision is None else cfg.model.revision_temperature
                temperatures = [first] + [cfg.model.revision_temperature] * (cfg.best_of - 1)
                candidates = self._candidates(state, messages, temperatures)
                attempts += len(candidates)
                winner = next((c for c in candidates if c.submitted and c.check.status != SelfCheckStatus.FAILED), None)
                if winner is not None:
                    reason = None
                    break
                tried = [c for c in candidates if c.submitted]
                if not tried:
                    reason = candidates[-1].reason
                    revision = (reason or "no submission", "the agent loop")
                    restart = False
                    continue
                last = max(tried, key=lambda c: _score(c.check.output))  # max keeps the first of equals
                reason = f"self-check failed after {attempts} attempt(s)"
                assert last.folder is not None
                previous = _read_files(last.folder)
                source = "acceptance tests" if tests else "artifact check"
                ran = test_counts(last.check.output) != (0, 0)  # else: no test ran (the main file is missing)
                revision = (failure_report(last.check.output) if ran else last.check.output, source)
                restart = False
        except BudgetExceeded as exc:
            reason = str(exc)
        chosen = winner or last
        if chosen is not None:
            _adopt(chosen, workspace, artifact_dir)
        _clear_candidates(workspace)
        produced = winner is not None and reason is None
        if not artifact_dir.is_dir():
            artifact_dir.mkdir(parents=True)
        manifest = Manifest(
            task_id=task.task_id,
            agent=self.name,
            model=cfg.model.model,
            prompt_hash=self.prompts.prompt_hash,
            status=AgentStatus.PRODUCED if produced else AgentStatus.FAILED,
            reason=reason,
            summary=chosen.summary if chosen is not None else "",
            files=_describe(artifact_dir),
            usage=state.budget.usage,
            cost=state.budget.cost,
            self_check=(chosen.check if chosen is not None else SelfCheck(status=SelfCheckStatus.NONE)).model_copy(
                update={"runs": state.test_runs}
            ),
            attempts=attempts,
            feedback=feedback,
        )
        (artifact_dir / MANIFEST_NAME).write_text(
            json.dumps(manifest.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        return AgentResult(files_dir=artifact_dir, manifest=manifest)

    # ------------------------------------------------------------------------------------------- candidates

    def _candidates(self, state: _RunState, messages: list[BaseMessage], temperatures: list[float]) -> list[_Candidate]:
        """Up to ``best_of`` versions of one attempt, each in its own workspace copy and self-checked. Sequential:
        stops at the first that passes. Parallel: all are drawn at once (every one is paid for), and the first
        that passes, in order, wins. A budget stop ends the attempt unless a candidate already passed."""
        dirs = [state.workspace / _work_name(k) for k in range(len(temperatures))]
        for folder in dirs[1:]:  # copied here, before any candidate writes into the first one
            shutil.rmtree(folder, ignore_errors=True)
            if dirs[0].is_dir():
                shutil.copytree(dirs[0], folder, symlinks=True)
        if not self.profile.parallel_candidates or len(temperatures) == 1:
            out: list[_Candidate] = []
            for k, temperature in enumerate(temperatures):
                candidate = self._candidate(state, k, list(messages), temperature)
                out.append(candidate)
                if candidate.submitted:
                    if candidate.check.status != SelfCheckStatus.FAILED:
                        break
                    state.failed.add(candidate.fingerprint)  # the next candidate must differ from it
            return out
        with ThreadPoolExecutor(max_workers=len(temperatures), thread_name_prefix=f"{self.name}-cand") as pool:
            futures = [
                pool.submit(self._candidate_or_stop, state, k, list(messages), t) for k, t in enumerate(temperatures)
            ]
            results = [f.result() for f in futures]
        candidates = [c for c, _ in results]
        stops = [stop for _, stop in results if stop is not None]
        if stops and not any(c.submitted and c.check.status != SelfCheckStatus.FAILED for c in candidates):
            raise stops[0]
        for c in candidates:
            if c.submitted and c.check.status == SelfCheckStatus.FAILED:
                state.failed.add(c.fingerprint)
        return candidates

    def _candidate_or_stop(
        self, state: _RunState, k: int, messages: list[BaseMessage], temperature: float
    ) -> tuple[_Candidate, BudgetExceeded | None]:
        try:
            return self._candidate(state, k, messages, temperature), None
        except BudgetExceeded as exc:
            return _Candidate(k, None, "", SelfCheck(status=SelfCheckStatus.NONE), "", str(exc)), exc

    def _candidate(self, state: _RunState, k: int, messages: list[BaseMessage], temperature: float) -> _Candidate:
        """One candidate: draft in workspace ``work``/``work-k``, copy the submitted files aside, self-check them."""
        cfg = self.profile
        work = Workspace(state.workspace / _work_name(k))
        registry = build_registry(
            work,
            allowed=cfg.tools,
            acceptance_tests=state.tests,
            max_artifact_bytes=state.max_artifact_bytes,
            fetcher=self.fetcher,
            test_timeout=cfg.tests.timeout,
            test_memory_bytes=cfg.tests.memory_bytes,
            test_output_chars=cfg.tests.max_output_chars,
        )
        try:
            submission = self._produce(
                messages, registry, state.budget, work=work, state=state, temperature=temperature
            )
        except _NoSubmission as exc:
            return _Candidate(k, None, "", SelfCheck(status=SelfCheckStatus.NONE), "", exc.message)
        folder = state.workspace / CANDIDATES / f"{state.attempt}-{k}"
        _copy_files(work, submission.paths(), folder)
        check = self._self_check(folder, spec_filename=state.main_file, tests=state.tests, runs=0)
        state.count_test_runs(check.runs)
        return _Candidate(k, folder, submission.summary, check, _fingerprint(_read_bytes(folder)), None)

    # ------------------------------------------------------------------------------------------- one draft

    def _produce(
        self,
        messages: list[BaseMessage],
        registry: ActionRegistry,
        budget: TaskBudget,
        *,
        work: Workspace,
        state: _RunState,
        temperature: float,
    ) -> SubmitArtifactArgs:
        """Model calls until a valid submission: files written as fenced blocks (the harness assembles the
        ``submit_artifact`` call from them), tool calls (native or written as text), or a native submit. Every
        reply stays in the history; a version identical to one that already failed is refused and re-asked."""
        main_file = state.main_file
        native = self.profile.model.offers_tools
        steps = self.profile.max_tool_steps if native else 0
        runnable: Runnable[LanguageModelInput, BaseMessage] = (
            self.model.bind_tools(to_langchain_tools(registry)) if native else self.model
        )
        known = set(registry.names())
        reserved = frozenset(state.tests or ())
        written: list[str] = []  # files this draft wrote with write_file
        problem = "its replies held no file"
        tool_steps = steps  # calls with the tools in play, then DRAFT_TRIES calls that ask for the files as text
        drafts = DRAFT_TRIES
        while tool_steps + drafts > 0:
            in_tool_steps = tool_steps > 0
            if in_tool_steps:
                tool_steps -= 1
            else:
                if drafts == DRAFT_TRIES and steps > 0:
                    messages.append(HumanMessage(WRITE_NOW.format(main_file=main_file)))
                drafts -= 1
            reply = self._call(runnable, messages, budget, temperature=temperature)
            text = _content_text(reply)
            calls: list[tuple[str, dict[str, Any], str]] = [
                (c["name"], c["args"], c.get("id") or "") for c in reply.tool_calls
            ]
            as_text = False
            rest = text
            if calls:
                # some servers (llama.cpp) reject an assistant turn whose content is empty
                messages.append(AIMessage(content=text or "(tool calls)", tool_calls=reply.tool_calls))
            else:
                found, rest = text_tool_calls(text, known)
                calls = [(c.name, c.args, "") for c in found]
                as_text = bool(found)
                messages.append(AIMessage(content=text or "(empty reply)"))
            if calls:
                results: list[tuple[str, str, str]] = []
                for name, args, call_id in calls:
                    if name == SUBMIT_ARTIFACT:
                        out, submitted = self._offer(registry, args, work, state)
                        if submitted is not None:
                            return submitted
                        problem = out
                    else:
                        action = registry.get(name)
                        if action is None:
                            out = f"ERROR: there is no tool {name!r}; available: {', '.join(registry.names())}"
                        else:
                            out = run_action(action, args)
                            if name == "write_file" and not out.startswith("ERROR") and isinstance(args, dict):
                                written.append(str(args.get("path")))
                    results.append((name, call_id, out))
                if as_text:  # told as plain text: there is no native tool turn to answer
                    report = "\n".join(f"[{name}] {out}" for name, _, out in results)
                    messages.append(HumanMessage(f"Results of the tool calls you wrote:\n{report}"))
                else:
                    for name, call_id, out in results:
                        messages.append(ToolMessage(out, tool_call_id=call_id, name=name))
                if not in_tool_steps and main_file in written:
                    # it wrote the deliverable with a tool call when asked for the files: that file is its draft
                    out, submitted = self._offer(registry, _include(written, main_file), work, state)
                    if submitted is not None:
                        return submitted
                    problem = out
                    messages.append(HumanMessage(f"{out}\n{ASK_FOR_FILES.format(main_file=main_file)}"))
                continue
            # during the tool steps, prose without a file block is thinking aloud, not the deliverable
            draft = parse_draft(rest, main_file=main_file, reserved=reserved, whole_reply=not in_tool_steps)
            if draft.files:
                raw = {
                    "files": [{"path": p, "content": c} for p, c in draft.files.items()],
                    "summary": draft.summary(SUMMARY_MAX_CHARS),
                    "include": [p for p in dict.fromkeys(written) if p not in draft.files],
                }
                out, submitted = self._offer(registry, raw, work, state)
                if submitted is not None:
                    return submitted
                problem = out
                messages.append(HumanMessage(f"{out}\n{ASK_FOR_FILES.format(main_file=main_file)}"))
            elif in_tool_steps:
                tool_steps = 0  # it stopped calling tools: WRITE_NOW comes next
            else:
                messages.append(HumanMessage(ASK_FOR_FILES.format(main_file=main_file)))
        if main_file in written:
            out, submitted = self._offer(registry, _include(written, main_file), work, state)
            if submitted is not None:
                return submitted
            problem = out
        raise _NoSubmission(f"the model did not submit a valid artifact: {problem}")

    def _offer(
        self, registry: ActionRegistry, raw_args: dict[str, Any], work: Workspace, state: _RunState
    ) -> tuple[str, SubmitArtifactArgs | None]:
        """Submit ``raw_args`` unless they are byte for byte a version that already failed (refused: the model is
        asked again instead of the same tests running on the same files)."""
        try:
            args = SubmitArtifactArgs.model_validate(raw_args)
        except ValidationError:
            return _submit(registry, raw_args)  # the action explains what is wrong
        if _fingerprint(_submission_bytes(args, work)) in state.failed:
            return IDENTICAL, None
        return _submit(registry, raw_args)

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
        self,
        runnable: Runnable[LanguageModelInput, BaseMessage],
        messages: Sequence[BaseMessage],
        budget: TaskBudget,
        *,
        temperature: float | None = None,
    ) -> AIMessage:
        """One model call with budget checks and bounded retries of transient faults; ``temperature`` (if it
        differs from the endpoint's) is sent with this call only."""
        budget.check()
        endpoint = self.profile.model
        cap = budget.completion_cap(endpoint.max_tokens)
        bound = runnable
        if temperature is not None and temperature != endpoint.temperature:
            bound = bound.bind(temperature=temperature)
        if cap < endpoint.max_tokens:
            legacy = endpoint.legacy_max_tokens or endpoint.base_url is None
            bound = bound.bind(extra_body={"max_tokens": cap}) if legacy else bound.bind(max_completion_tokens=cap)
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
            ticket = self._enter(budget)  # the wait for the endpoint is part of the task's time, too
            tokens = 0
            try:
                timeout = min(endpoint.timeout, budget.remaining_seconds())
                reply = bound.bind(timeout=timeout).invoke(list(messages))
                if isinstance(reply, AIMessage):
                    tokens = _usage(reply).total_tokens
                return reply
            finally:
                if ticket is not None and self.gate is not None:
                    self.gate.leave(ticket, tokens=tokens)

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

    def _enter(self, budget: TaskBudget) -> EndpointPass | None:
        """Wait for the endpoint's limit (no gate: at once) for at most what is left of the task's time budget;
        a wait that outlasts it is a budget stop naming the endpoint."""
        if self.gate is None or self.endpoint is None:
            return None
        remaining = budget.remaining_seconds()
        hold = min(self.profile.model.timeout, remaining) + HOLD_MARGIN
        ticket = self.gate.enter(self.endpoint, agent=self.name, task=budget.task, timeout=remaining, hold=hold)
        if ticket is None:
            lim = self.endpoint.limit
            raise BudgetExceeded(
                f"waited {max(0.0, remaining):.1f} s for the model endpoint {self.endpoint.key} (concurrency "
                f"{lim.concurrency or 'unlimited'}, {lim.requests_per_minute or 'unlimited'} requests and "
                f"{lim.tokens_per_minute or 'unlimited'} tokens per minute, shared by the fleet) until the task's "
                "time budget ran out",
                budget="budgets.max_seconds_per_task",
                hint="the endpoint is busy: raise endpoints[].concurrency if its server can serve more at once, spread "
                "the agents over more endpoints, or raise agents.profiles[].budgets.max_seconds_per_task",
            )
        return ticket

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


@dataclass(slots=True)
class _RunState:
    """What one ``run`` shares between its attempts and candidates (thread-safe where candidates run in parallel)."""

    workspace: Path
    main_file: str
    tests: dict[str, str] | None
    max_artifact_bytes: int
    budget: TaskBudget
    attempt: int = 0
    failed: set[str] = field(default_factory=set)  # fingerprints of versions that failed their check
    test_runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_test_runs(self, n: int) -> None:
        with self.lock:
            self.test_runs += n


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One drafted version: its files (``folder``; None when the model submitted nothing valid) and their check."""

    index: int
    folder: Path | None
    summary: str
    check: SelfCheck
    fingerprint: str
    reason: str | None

    @property
    def submitted(self) -> bool:
        return self.folder is not None


def _work_name(k: int) -> str:
    return "work" if k == 0 else f"work-{k}"


def _clear_candidates(workspace: Path) -> None:
    shutil.rmtree(workspace / CANDIDATES, ignore_errors=True)
    for extra in workspace.glob("work-*"):
        shutil.rmtree(extra, ignore_errors=True)


def _adopt(chosen: _Candidate, workspace: Path, artifact_dir: Path) -> None:
    """Make ``chosen`` the artifact (its tested files, moved as they are) and its workspace the task's ``work``."""
    assert chosen.folder is not None
    shutil.rmtree(artifact_dir, ignore_errors=True)
    chosen.folder.rename(artifact_dir)
    if chosen.index > 0 and (workspace / _work_name(chosen.index)).is_dir():
        shutil.rmtree(workspace / "work", ignore_errors=True)
        (workspace / _work_name(chosen.index)).rename(workspace / "work")


def _fingerprint(files: Mapping[str, bytes]) -> str:
    """sha256 over an artifact's paths and bytes (order-independent)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return digest.hexdigest()


def _read_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of an artifact folder but the manifest, by relative path."""
    out: dict[str, bytes] = {}
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = path.relative_to(folder).as_posix()
            if rel != MANIFEST_NAME:
                out[rel] = path.read_bytes()
    return out


def _submission_bytes(args: SubmitArtifactArgs, work: Workspace) -> dict[str, bytes]:
    """The files a submission would make the artifact (what ``_copy_files`` will copy after it is written)."""
    out: dict[str, bytes] = {}
    for rel in args.include:
        with contextlib.suppress(ToolError, OSError):
            out[rel] = work.resolve(rel).read_bytes()
    for f in args.files:
        out[f.path] = f.content.encode("utf-8")
    return out


def _include(written: list[str], main_file: str) -> dict[str, Any]:
    return {"files": [], "summary": f"wrote {main_file}", "include": list(dict.fromkeys(written))}


def _content_text(reply: AIMessage) -> str:
    """A reply's text (content blocks joined), exactly as sent: nothing is stripped or unescaped."""
    content = reply.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)


def _score(output: str) -> tuple[int, int]:
    """How close a failed test run came: (tests passed, -tests failed or in error), from pytest's last line."""
    counts = test_counts(output)
    return counts[0], -counts[1]


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

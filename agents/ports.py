"""The ``AgentRunner`` port and the values it exchanges: a task in, an artifact folder with its manifest out.

An ``AgentResult`` with status ``produced`` is the only thing the orchestrator may offer for review and
submission; ``failed`` results keep their files on disk for inspection, with the reason (test output, budget).

Must not import LangChain, openai or httpx: standard library, pydantic and the domain only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.specs import TaskSpec

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "deworker/artifact-manifest@1"


class AgentStatus(enum.StrEnum):
    PRODUCED = "produced"  # passed its self-check (or had none): may be offered for review
    FAILED = "failed"  # never offered for submission; ``reason`` says why


class SelfCheckStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NONE = "none"  # the spec has no acceptance tests


class Usage(BaseModel):
    """Tokens as the model API reported them (never estimated locally), and the number of model calls."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
        )


class SelfCheck(BaseModel):
    """The last acceptance-test run of the artifact (output truncated)."""

    model_config = ConfigDict(frozen=True)

    status: SelfCheckStatus
    output: str = ""
    runs: int = Field(default=0, ge=0, description="how many times the tests ran, revisions included")


class ManifestFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    size: int
    sha256: str


class Manifest(BaseModel):
    """``manifest.json`` at the root of every artifact folder."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    schema_: Literal["deworker/artifact-manifest@1"] = Field(default="deworker/artifact-manifest@1", alias="schema")
    task_id: str
    agent: str
    model: str
    prompt_hash: str = Field(description="sha256 of the prompt set's templates")
    status: AgentStatus
    reason: str | None = None
    summary: str = ""
    files: list[ManifestFile]
    usage: Usage
    cost: Decimal
    self_check: SelfCheck
    attempts: int = Field(ge=0, description="model-produced versions of the artifact in this run")
    feedback: str | None = Field(default=None, description="reviewer feedback this run answered, if any")


@dataclass(frozen=True, slots=True)
class AgentTask:
    """What an agent is asked to do. ``task_id`` is the board's id, as text (``<board>:<id>``)."""

    task_id: str
    spec: TaskSpec


@dataclass(frozen=True, slots=True)
class AgentResult:
    """An artifact folder (files plus ``manifest.json``) and what producing it cost."""

    files_dir: Path
    manifest: Manifest

    @property
    def status(self) -> AgentStatus:
        return self.manifest.status

    @property
    def reason(self) -> str | None:
        return self.manifest.reason

    @property
    def usage(self) -> Usage:
        return self.manifest.usage

    @property
    def cost(self) -> Decimal:
        return self.manifest.cost

    @property
    def self_check(self) -> SelfCheck:
        return self.manifest.self_check


@runtime_checkable
class AgentRunner(Protocol):
    """Turns a task into an artifact. Adapters: ``LangChainAgent``.

    ``workspace`` is a folder owned by this task; a later call with the same workspace and reviewer ``feedback``
    revises the previous artifact, or, with ``start_over`` (the reviewer rejected it), discards it and does the
    task again with the feedback as the reason the last attempt failed. Budget exhaustion and failed self-checks
    come back as ``failed`` results; an unreachable model raises ``ModelUnavailable`` (retryable).
    """

    name: str

    def run(
        self, task: AgentTask, workspace: Path, *, feedback: str | None = None, start_over: bool = False
    ) -> AgentResult: ...

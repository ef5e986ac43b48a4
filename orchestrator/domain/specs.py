"""Task specs: parse and validate a spec document (untrusted bytes from a board) into a ``TaskSpec``.

Every way a spec can be bad ends in ``SpecError`` with a reason a human can act on; the board adapter turns that
into a quarantined task. Must not import any adapter.
"""

from __future__ import annotations

import enum
import json
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from orchestrator.domain.errors import DocumentRefused, SpecError
from orchestrator.domain.untrusted import NO_CONTROL_CHARS_PATTERN, JsonLimits, parse_json


class DeliverableKind(enum.StrEnum):
    """What the DAO expects back."""

    TEXT = "text"
    MARKDOWN = "markdown"
    CODE = "code"
    DATA = "data"


#: A relative path inside an artifact or workspace: no absolute paths, no ``..``, no empty segments.
RelPath = Annotated[
    str,
    StringConstraints(max_length=128, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$"),
]


#: Text in a spec: anything but control characters other than newline and tab (``untrusted.CONTROL_CHARS``).
SpecText = Annotated[str, StringConstraints(pattern=NO_CONTROL_CHARS_PATTERN)]


class Deliverable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DeliverableKind
    format: SpecText | None = Field(default=None, max_length=64, description="e.g. 'python', 'json', 'csv'")
    filename: RelPath | None = Field(default=None, description="main file the artifact must contain")


class AcceptanceTests(BaseModel):
    """Executable acceptance tests shipped inside the spec; run by the agent's self-check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runner: Literal["pytest"] = "pytest"
    files: dict[RelPath, SpecText] = Field(min_length=1, max_length=20, description="relative path -> file content")


class TaskSpec(BaseModel):
    """A task spec document (stored by CID, referenced from the board). Schema: ``deworker/task-spec@1``.

    The JSON Schema published at ``orchestrator/schemas/task-spec.schema.json`` is generated from this model
    (a test keeps them in sync).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, title="Deworker task spec")

    schema_: Literal["deworker/task-spec@1"] = Field(
        default="deworker/task-spec@1", alias="schema", description="schema id and version"
    )
    title: SpecText = Field(min_length=1, max_length=200)
    description: SpecText = Field(min_length=1, max_length=20_000)
    deliverable: Deliverable
    skills: list[SpecText] = Field(min_length=1, max_length=20)
    acceptance: list[SpecText] = Field(min_length=1, max_length=50, description="criteria a reviewer checks")
    acceptance_tests: AcceptanceTests | None = None
    max_artifact_bytes: int = Field(
        default=1_048_576, ge=1, le=104_857_600, description="the artifact may not be larger than this"
    )
    bid_endpoint: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://[^\s]+$",
        description="an open ERC-8183 job's bid endpoint (POST a signed bid there); null: no bidding",
    )


#: A spec document larger than this is quarantined unread (can be lowered in config: ``boards[].max_spec_bytes``).
MAX_SPEC_BYTES = 262_144


SCHEMA_ID = "https://deworker.dev/schemas/task-spec@1.json"


def spec_limits(max_bytes: int = MAX_SPEC_BYTES) -> JsonLimits:
    """The parsing limits of a spec document (``boards[].max_spec_bytes`` sets the size). A valid spec is 4 levels
    deep and holds at most a few hundred values, so these refuse nothing honest."""
    return JsonLimits(max_bytes=max_bytes, max_depth=16, max_values=5_000, max_container=1_000)


def spec_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a task spec (generated from ``TaskSpec``), with the parser's limits as the
    ``x-deworker-limits`` annotation (for the default ``boards[].max_spec_bytes``)."""
    schema = TaskSpec.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "x-deworker-limits": spec_limits().describe(),
    }


def published_schema() -> dict[str, Any]:
    """The schema file shipped in the package (kept equal to ``spec_json_schema()`` by a test)."""
    text = resources.files("orchestrator.schemas").joinpath("task-spec.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def parse_spec(raw: bytes, *, max_bytes: int) -> TaskSpec:
    """Validate a spec document within ``spec_limits(max_bytes)`` (size, nesting, counts, string lengths, no
    control characters but newline and tab). Raises ``SpecError`` saying exactly what is wrong and where."""
    try:
        doc = parse_json(raw, limits=spec_limits(max_bytes), what="spec")
    except DocumentRefused as exc:
        raise SpecError(exc.message) from None
    if not isinstance(doc, dict):
        raise SpecError(f"spec must be a JSON object, got {type(doc).__name__}")
    try:
        return TaskSpec.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():  # every one: a spec's size is bounded, and fixing them one run at a time is slow
            loc = ".".join(str(p) for p in err["loc"]) or "(document)"
            problems.append(f"{loc}: {err['msg']}")
        counted = "" if len(problems) == 1 else f" ({len(problems)} problems)"
        raise SpecError(f"spec does not match deworker/task-spec@1{counted}: " + "; ".join(problems)) from None


def dump_spec(spec: TaskSpec) -> bytes:
    """Canonical bytes of a spec (sorted keys, compact): the same spec always gets the same CID."""
    doc = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

"""Task specs: parse and validate a spec document (untrusted bytes from a board) into a ``TaskSpec``.

Every way a spec can be bad ends in ``SpecError`` with a reason a human can act on; the board adapter turns that
into a quarantined task. Must not import any adapter.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pydantic import ValidationError

from orchestrator.domain import TaskSpec
from orchestrator.errors import SpecError

SCHEMA_ID = "https://deworker.dev/schemas/task-spec@1.json"


def spec_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a task spec (generated from ``TaskSpec``)."""
    schema = TaskSpec.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def published_schema() -> dict[str, Any]:
    """The schema file shipped in the package (kept equal to ``spec_json_schema()`` by a test)."""
    text = resources.files("orchestrator.schemas").joinpath("task-spec.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def parse_spec(raw: bytes, *, max_bytes: int) -> TaskSpec:
    """Validate a spec document. Raises ``SpecError`` saying exactly what is wrong."""
    if len(raw) > max_bytes:
        raise SpecError(f"spec is {len(raw):,} bytes, over the {max_bytes:,}-byte limit")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"spec is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(doc, dict):
        raise SpecError(f"spec must be a JSON object, got {type(doc).__name__}")
    try:
        return TaskSpec.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err["loc"]) or "(document)"
            problems.append(f"{loc}: {err['msg']}")
        more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise SpecError("spec does not match deworker/task-spec@1: " + "; ".join(problems) + more) from None


def dump_spec(spec: TaskSpec) -> bytes:
    """Canonical bytes of a spec (sorted keys, compact): the same spec always gets the same CID."""
    doc = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

"""Task spec parsing: good specs parse; every bad one raises SpecError with a reason; the schema is published."""

from __future__ import annotations

import json

import jsonschema
import pytest

from orchestrator.domain.errors import SpecError
from orchestrator.domain.specs import TaskSpec, dump_spec, parse_spec, published_schema, spec_json_schema

GOOD = {
    "schema": "deworker/task-spec@1",
    "title": "Write a FizzBuzz",
    "description": "Implement fizzbuzz(n) in fizzbuzz.py",
    "deliverable": {"kind": "code", "format": "python", "filename": "fizzbuzz.py"},
    "skills": ["python"],
    "acceptance": ["fizzbuzz(15) == 'FizzBuzz'"],
    "acceptance_tests": {"runner": "pytest", "files": {"test_fizzbuzz.py": "def test_x():\n    pass\n"}},
}


def raw(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_good_spec_parses_and_round_trips() -> None:
    spec = parse_spec(raw(GOOD), max_bytes=262_144)
    assert spec.title == "Write a FizzBuzz"
    assert parse_spec(dump_spec(spec), max_bytes=262_144) == spec
    assert dump_spec(spec) == dump_spec(parse_spec(dump_spec(spec), max_bytes=262_144))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (raw({**GOOD, "title": ""}), "title"),
        (raw({**GOOD, "surprise": 1}), "surprise"),
        (raw({**GOOD, "schema": "other@2"}), "schema"),
        (raw({k: v for k, v in GOOD.items() if k != "skills"}), "skills"),
        (raw({**GOOD, "deliverable": {"kind": "video"}}), "deliverable.kind"),
        (raw({**GOOD, "acceptance_tests": {"files": {"../escape.py": "x"}}}), "acceptance_tests.files"),
        (raw({**GOOD, "deliverable": {"kind": "code", "filename": "/etc/passwd"}}), "deliverable.filename"),
    ],
)
def test_bad_specs_raise_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(data, max_bytes=262_144)
    assert reason in str(info.value)


def test_oversized_spec_is_refused_before_parsing() -> None:
    big = b" " * (50 * 1024 * 1024)
    with pytest.raises(SpecError, match="over the 262,144-byte limit"):
        parse_spec(big, max_bytes=262_144)


def test_published_schema_matches_the_model() -> None:
    assert published_schema() == spec_json_schema(), "run: python -m orchestrator.domain.specs > schema (see README)"


def test_schema_and_model_agree_on_examples() -> None:
    schema = published_schema()
    jsonschema.validate(GOOD, schema)
    bad = {**GOOD, "skills": []}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(SpecError):
        parse_spec(raw(bad), max_bytes=262_144)
    assert TaskSpec.model_validate(GOOD)

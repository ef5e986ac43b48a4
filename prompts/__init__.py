"""Prompt templates as files, rendered from a task spec.

A prompt set is three files: ``system.md``, ``task.md`` and ``revision.md`` (``string.Template`` syntax:
``$name``; ``revision.md`` gets ``$instruction``, ``$previous_files``, ``$source``, ``$feedback`` and
``$boundary``). ``default`` is the set shipped next to this module; any other name is a folder path.
``prompt_hash`` (sha256 over the three templates) goes into every artifact manifest.

Task text and reviewer feedback are untrusted data: they are rendered as JSON/plain text between
``<<<TASK DATA b>>>``/``<<<END TASK DATA b>>>`` markers whose boundary ``b`` is derived from a hash of the
content, and any marker-like ``<<<`` sequence inside the data is defused, so the data cannot close its own frame.

Must not import LangChain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.specs import TaskSpec

TEMPLATE_NAMES = ("system", "task", "revision")

#: ``$instruction`` in ``revision.md``: edit the previous artifact (test output, a change request) ...
REVISE = "Your previous artifact was not accepted. Revise it and submit the complete corrected files again."
#: ... or, after a reviewer rejected it, do the task again without it.
START_OVER = (
    "A reviewer rejected your previous artifact and it has been deleted. Do the task again from the start, "
    "avoiding what the feedback below describes, and submit complete new files."
)


def _defuse(text: str) -> str:
    return text.replace("<<<", "< < <").replace(">>>", "> > >")


def _boundary(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PromptSet:
    """The three templates of one prompt set."""

    name: str
    system: Template
    task: Template
    revision: Template
    prompt_hash: str

    @classmethod
    def load(cls, name: str = "default") -> PromptSet:
        """The shipped ``default`` set, or the set in folder ``name``. Missing files raise ``ConfigError``."""
        texts: dict[str, str] = {}
        for part in TEMPLATE_NAMES:
            try:
                if name == "default":
                    texts[part] = resources.files("prompts").joinpath(f"{part}.md").read_text("utf-8")
                else:
                    texts[part] = (Path(name) / f"{part}.md").read_text("utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"prompt set {name!r} has no readable {part}.md ({exc.strerror or exc})",
                    key="agents.profiles[].prompt_set",
                    hint="use 'default' or a folder holding system.md, task.md and revision.md",
                ) from exc
        digest = hashlib.sha256()
        for part in TEMPLATE_NAMES:
            digest.update(part.encode() + b"\0" + texts[part].encode("utf-8") + b"\0")
        return cls(
            name=name,
            system=Template(texts["system"]),
            task=Template(texts["task"]),
            revision=Template(texts["revision"]),
            prompt_hash=digest.hexdigest(),
        )

    def render_system(self, *, agent_name: str, skills: list[str]) -> str:
        return self.system.substitute(agent_name=agent_name, skills=", ".join(skills))

    def render_task(self, spec: TaskSpec) -> str:
        """The task message: the spec's fields as JSON between data markers (test files are not shown here)."""
        data = {
            "title": spec.title,
            "description": spec.description,
            "deliverable": spec.deliverable.model_dump(mode="json", exclude_none=True),
            "acceptance": spec.acceptance,
        }
        task_json = _defuse(json.dumps(data, indent=1, ensure_ascii=False))
        tests_note = ""
        if spec.acceptance_tests is not None:
            names = ", ".join(sorted(spec.acceptance_tests.files))
            tests_note = f"\nAutomatic acceptance tests ({names}) will run with pytest on your files."
        return self.task.substitute(
            filename=default_filename(spec),
            deliverable=spec.deliverable.kind.value
            + (f", {spec.deliverable.format}" if spec.deliverable.format else ""),
            boundary=_boundary(task_json),
            task_json=task_json,
            tests_note=tests_note,
        )

    def render_revision(
        self, *, feedback: str, source: str, previous_files: dict[str, str], start_over: bool = False
    ) -> str:
        """The revision message: the previous files and the feedback (test output or a reviewer's words).
        ``start_over``: the reviewer rejected the artifact, so ``$instruction`` asks for a new one from scratch."""
        shown = (
            "\n".join(f"--- {path} ---\n{_defuse(content)}" for path, content in sorted(previous_files.items()))
            or "(none)"
        )
        body = _defuse(feedback)
        return self.revision.substitute(
            instruction=START_OVER if start_over else REVISE,
            previous_files=shown,
            source=source,
            boundary=_boundary(body + shown),
            feedback=body,
        )


def default_filename(spec: TaskSpec) -> str:
    """The file the main result goes into: the spec's ``deliverable.filename``, else a name by kind."""
    if spec.deliverable.filename:
        return spec.deliverable.filename
    by_kind = {"text": "answer.txt", "markdown": "answer.md", "code": "solution.py", "data": "data.json"}
    return by_kind[spec.deliverable.kind.value]

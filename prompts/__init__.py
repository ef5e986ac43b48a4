"""Prompt templates as files, rendered from a task spec.

A prompt set is three files: ``system.md``, ``task.md`` and ``revision.md`` (``string.Template`` syntax:
``$name``). ``task.md`` gets ``$task_text`` (the brief as plain text: title, description, deliverable,
acceptance criteria and the acceptance tests' source), ``$task_json`` (the same as JSON, for older sets),
``$filename``, ``$lang``, ``$deliverable``, ``$tests_note`` and ``$boundary``; ``revision.md`` gets
``$instruction``, ``$previous_files``, ``$source``, ``$feedback`` and ``$boundary``. ``default`` is the set
shipped next to this module; any other name is a folder path. ``prompt_hash`` (sha256 over the three templates)
goes into every artifact manifest.

Task text and reviewer feedback are untrusted data: they are rendered as JSON/plain text between
``<<<TASK DATA b>>>``/``<<<END TASK DATA b>>>`` markers whose boundary ``b`` is derived from a hash of the
content, and any marker-like ``<<<`` sequence inside the data is defused, so the data cannot close its own frame.
The brief is shown as the work to do (a plain-text work order, not a JSON record the model tends to echo back),
but always inside that frame.

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
REVISE = (
    "Your previous version was not accepted: the feedback below says why. Find the cause, fix it, and write the "
    "complete corrected files. Files identical to the failed version are refused."
)
#: ... or, after a reviewer rejected it, do the task again without it.
START_OVER = (
    "A reviewer rejected your previous artifact and it has been deleted. Do the task again from the start, "
    "avoiding what the feedback below describes, and write complete new files."
)


def _defuse(text: str) -> str:
    return text.replace("<<<", "< < <").replace(">>>", "> > >")


#: Characters of each acceptance-test file shown in the task prompt.
TEST_FILE_CHARS = 4000
#: Fence language tag by file extension, for the answer format the task prompt asks for.
_LANG = {".py": "python", ".md": "markdown", ".txt": "text", ".json": "json", ".csv": "csv", ".js": "javascript"}


def _fence(content: str) -> str:
    """A backtick fence longer than any backtick run in ``content``."""
    longest = max((len(run) for run in content.split("\n") if set(run.strip()) == {"`"}), default=0)
    return "`" * max(3, longest + 1)


def fenced(path: str, content: str) -> str:
    """``content`` as a fenced block naming ``path`` (the format the model is asked to answer in)."""
    fence = _fence(content)
    lang = _LANG.get(Path(path).suffix, "")
    body = content if content.endswith("\n") or not content else content + "\n"
    return f"{fence}{lang} {path}\n{body}{fence}"


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
        """The system message. The shipped one names the agent at its end, not its start: agents sharing one
        local server (which keeps only the last prompt evaluated) then share the whole rules text as an already
        evaluated prefix, instead of diverging at the first word."""
        return self.system.substitute(agent_name=agent_name, skills=", ".join(skills))

    def render_task(self, spec: TaskSpec) -> str:
        """The task message: the brief as a plain-text work order between data markers, with the acceptance tests'
        source (a spec's tests are public: they say exactly what the work must do)."""
        data = {
            "title": spec.title,
            "description": spec.description,
            "deliverable": spec.deliverable.model_dump(mode="json", exclude_none=True),
            "acceptance": spec.acceptance,
        }
        task_json = _defuse(json.dumps(data, indent=1, ensure_ascii=False))
        filename = default_filename(spec)
        deliverable = spec.deliverable.kind.value + (f" ({spec.deliverable.format})" if spec.deliverable.format else "")
        parts = [f"Title: {spec.title}", "", spec.description.strip(), "", f"Deliverable: {deliverable}, in {filename}"]
        if spec.acceptance:
            parts += ["", "Acceptance criteria:", *(f"- {item}" for item in spec.acceptance)]
        tests_note = ""
        if spec.acceptance_tests is not None:
            names = sorted(spec.acceptance_tests.files)
            parts += ["", "Acceptance tests (pytest runs them on your files):"]
            for name in names:
                parts.append(fenced(name, spec.acceptance_tests.files[name][:TEST_FILE_CHARS]))
            tests_note = f" The acceptance tests ({', '.join(names)}) must pass."
        task_text = _defuse("\n".join(parts))
        return self.task.substitute(
            filename=filename,
            lang=_LANG.get(Path(filename).suffix, ""),
            deliverable=deliverable,
            boundary=_boundary(task_text + task_json),
            task_text=task_text,
            task_json=task_json,
            tests_note=tests_note,
        )

    def render_revision(
        self, *, feedback: str, source: str, previous_files: dict[str, str], start_over: bool = False
    ) -> str:
        """The revision message: the previous files and the feedback (test output or a reviewer's words).
        ``start_over``: the reviewer rejected the artifact, so ``$instruction`` asks for a new one from scratch."""
        shown = (
            "\n".join(fenced(path, _defuse(content)) for path, content in sorted(previous_files.items())) or "(none)"
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

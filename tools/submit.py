"""``submit_artifact``: the agent's final, structured answer -- the files of the artifact and a summary.

Calling it writes the given files into the workspace; the artifact is those files plus any existing workspace
files named in ``include``. A model with native tool calling may call it itself; otherwise (and normally) the agent
loop builds the call from the files the model wrote as fenced text blocks (``agents.drafts``), so no file has to
travel inside a JSON string. Must not import LangChain.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agents.errors import ToolError, ToolRefused
from tools.base import Action
from tools.workspace import Workspace

SUBMIT_ARTIFACT = "submit_artifact"
#: Names the agent may not use: the agent loop writes these itself.
RESERVED_NAMES = frozenset({"manifest.json"})
#: Longest summary the forced submit schema allows (keeps a small model from rambling on).
SUMMARY_MAX_CHARS = 300


class ArtifactFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="relative file name, e.g. 'answer.md' or 'solution.py'")
    content: str = Field(description="the complete file content")


class SubmitArtifactArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[ArtifactFile] = Field(description="the files of the artifact, with their full content")
    summary: str = Field(description="one or two sentences on what the artifact contains")
    include: list[str] = Field(
        default_factory=list, description="paths of files already in the workspace to add to the artifact"
    )

    def paths(self) -> list[str]:
        """Artifact file paths, in order, without duplicates."""
        return list(dict.fromkeys([f.path for f in self.files] + self.include))


def submit_artifact_action(ws: Workspace, *, max_bytes: int) -> Action[SubmitArtifactArgs]:
    """``submit_artifact`` writing into ``ws``; an artifact over ``max_bytes`` (the spec's limit) is refused."""

    def submit_artifact(args: SubmitArtifactArgs) -> str:
        paths = args.paths()
        if not paths:
            raise ToolError("submit_artifact needs at least one file in 'files' or 'include'")
        for path in paths:
            if path in RESERVED_NAMES:
                raise ToolRefused(f"{path!r} is reserved for the artifact manifest; choose another file name")
            ws.resolve(path)
        total = sum(len(f.content.encode("utf-8")) for f in args.files)
        for path in args.include:
            if not ws.resolve(path).is_file():
                raise ToolError(f"'include' names {path!r}, which is not a file in the workspace")
            if path not in {f.path for f in args.files}:
                total += ws.resolve(path).stat().st_size
        if total > max_bytes:
            raise ToolRefused(f"the artifact would be {total:,} bytes; the task allows at most {max_bytes:,}")
        for f in args.files:
            ws.write(f.path, f.content)
        return f"submitted {len(paths)} file(s): {', '.join(paths)}"

    return Action(
        SUBMIT_ARTIFACT,
        "Submit the finished artifact: every file with its full content, and a short summary. Call it once, last.",
        SubmitArtifactArgs,
        submit_artifact,
    )

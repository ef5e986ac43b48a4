"""Reading a model's plain-text reply: the files it wrote as fenced blocks, and tool calls it wrote as text.

Models write code far better as plain text than inside a JSON string (a forced ``submit_artifact`` call made small
models cut files at the first ``"`` or write stubs), and many endpoints have no native tool calling (llama.cpp's
server without a function-calling chat format returns no ``tool_calls`` and the model writes the call as text).
So the agent loop asks for files as fenced blocks and reads them here::

    ```python solution.py            a path in the info string (also path=..., title="...", python:solution.py)
    ...
    ```

    **solution.py**                  or on the line just before the fence (`x`, ### x, File: x, x:)
    ```python
    ...
    ```

    ```python                        or on the block's first line: a bare path (dropped from the content) or a
    solution.py                      comment naming it (# solution.py, kept)
    ...
    ```

Fences follow CommonMark: three or more backticks or tildes, closed by a bare fence at least as long. Inside a
block tagged markdown, a fence with an info string opens a nested block (a README with a ```sh example survives).
A block never closed (the model hit its token cap) runs to the end of the reply. Content is taken byte for byte:
quotes, backslashes and escapes are never interpreted.

Tool calls written as text: ``<tool_call>{...}</tool_call>`` (Qwen/Hermes), a fenced ``json`` block, or a reply
that is only JSON, holding ``{"name": ..., "arguments": {...}}`` (also ``parameters``/``args``/``input``, or
OpenAI's ``{"function": {"name", "arguments": "<json>"}}``), or a list of those.

Must not import LangChain.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: A relative file path as models write them: no spaces, an extension or a folder.
_PATH = re.compile(r"^(?!/)(?!.*\.\.)[\w][\w.\-/]*$")
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_TOOL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_ARG_KEYS = ("arguments", "parameters", "args", "input")
_MARKDOWN_TAGS = frozenset({"markdown", "md"})
#: Tags a block without a path may have to count as the main file, by the main file's extension ("" = no tag).
_TAGS_BY_EXT: dict[str, frozenset[str]] = {
    ".py": frozenset({"", "python", "py", "python3"}),
    ".md": frozenset({"", "markdown", "md"}),
    ".txt": frozenset({"", "text", "txt", "plain", "plaintext"}),
    ".json": frozenset({"", "json"}),
    ".csv": frozenset({"", "csv", "text", "txt"}),
    ".js": frozenset({"", "js", "javascript"}),
    ".ts": frozenset({"", "ts", "typescript"}),
    ".sh": frozenset({"", "sh", "bash", "shell"}),
    ".yaml": frozenset({"", "yaml", "yml"}),
    ".yml": frozenset({"", "yaml", "yml"}),
    ".toml": frozenset({"", "toml"}),
    ".html": frozenset({"", "html"}),
    ".sql": frozenset({"", "sql"}),
}


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block: its language tag, the path it names (if any), its exact content and where it was."""

    tag: str
    path: str | None
    content: str
    start: int  # line index of the opening fence
    end: int  # line index after the closing fence
    closed: bool


@dataclass(frozen=True, slots=True)
class TextToolCall:
    name: str
    args: dict[str, Any]


@dataclass(slots=True)
class Draft:
    """The files a reply holds (path -> content, in the order written) and its prose outside the blocks."""

    files: dict[str, str] = field(default_factory=dict)
    prose: str = ""

    def summary(self, limit: int = 300) -> str:
        """The prose, one line, cut to ``limit`` characters; else which files were written."""
        text = " ".join(self.prose.split())
        if not text:
            return f"wrote {', '.join(self.files)}"[:limit]
        return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _as_path(token: str) -> str | None:
    token = token.strip().strip("`*\"'()[]<>,;")
    for prefix in ("path=", "file=", "filename=", "title=", "name="):
        if token.lower().startswith(prefix):
            token = token[len(prefix) :].strip("\"'`")
    if ":" in token:  # python:solution.py
        token = token.rsplit(":", 1)[1]
    if token.startswith("./"):
        token = token[2:]
    if _PATH.match(token) and ("." in token.rsplit("/", 1)[-1] or "/" in token):
        return token
    return None


def _path_in_info(info: str) -> tuple[str, str | None]:
    """(language tag, path) from a fence's info string."""
    tokens = info.replace(",", " ").split()
    tag = ""
    path = None
    for i, token in enumerate(tokens):
        found = _as_path(token)
        if found is not None and path is None:
            path = found
        elif i == 0:
            tag = token.lower().lstrip("{.").rstrip("}")
    return tag, path


_HEADING = re.compile(r"^(?:#+\s*|[-*]\s+|\d+[.)]\s+)?(?:\*\*|__)?\s*(?:(?:file(?:name)?|path)\s*[:=]\s*)?", re.I)


def _path_in_line(line: str) -> str | None:
    """A path named by the line before a fence: `x`, **x**, ### x, File: x, x: ..."""
    ticked = re.findall(r"`([^`\s]+)`", line)
    for token in ticked:
        found = _as_path(token)
        if found is not None:
            return found
    stripped = _HEADING.sub("", line.strip()).strip().rstrip(":").strip("*_ ").rstrip(":")
    if " " not in stripped:
        return _as_path(stripped)
    return None


def fenced_blocks(text: str) -> list[Block]:
    """Every top-level fenced block of ``text``, in order."""
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m.group("fence")[0] == "`" and "`" in m.group("info")):
            i += 1
            continue
        fence = m.group("fence")
        tag, path = _path_in_info(m.group("info"))
        if path is None:
            before = [ln for ln in lines[max(0, i - 2) : i] if ln.strip()]
            if before:
                path = _path_in_line(before[-1])
        nested = 0
        j = i + 1
        closed = False
        while j < len(lines):
            inner = _FENCE.match(lines[j])
            if inner is not None and inner.group("fence")[0] == fence[0] and len(inner.group("fence")) >= len(fence):
                if inner.group("info").strip() == "":
                    if nested == 0:
                        closed = True
                        break
                    nested -= 1
                elif tag in _MARKDOWN_TAGS:
                    nested += 1
            j += 1
        body = lines[i + 1 : j]
        if path is None and body:
            # the path on the block's first line: a bare path (not content: dropped) or a comment naming one
            first = body[0].strip()
            named = _as_path(first) if " " not in first else None
            commented = re.fullmatch(r"(?:#|//|--|<!--)\s*(\S+?)\s*(?:-->)?", first)
            if named is not None:
                path, body = named, body[1:]
            elif commented is not None:
                path = _as_path(commented.group(1))
        content = "\n".join(body)
        if content and not content.endswith("\n"):
            content += "\n"
        blocks.append(Block(tag, path, content, i, j + 1 if closed else j, closed))
        i = j + 1
    return blocks


def _tool_call(obj: Any) -> TextToolCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # OpenAI's wire shape
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return None
    for key in _ARG_KEYS:
        if key in obj:
            args = obj[key]
            if isinstance(args, str):
                try:
                    args = json.loads(args, strict=False)
                except ValueError:
                    return None
            return TextToolCall(name, args) if isinstance(args, dict) else None
    return TextToolCall(name, {}) if set(obj) == {"name"} else None


def _calls_in(raw: str) -> list[TextToolCall] | None:
    try:
        obj = json.loads(raw, strict=False)  # strict=False: models put raw newlines inside JSON strings
    except ValueError:
        return None
    items = obj if isinstance(obj, list) else [obj]
    calls = [_tool_call(item) for item in items]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def text_tool_calls(text: str, known: frozenset[str] | set[str]) -> tuple[list[TextToolCall], str]:
    """Tool calls written as text, and the text with them removed. Only calls whose shape is unmistakable are
    taken: inside ``<tool_call>`` tags any name counts (the model meant a call: unknown names get an error
    back); in a JSON block or a bare-JSON reply, the names must be ``known`` tools, so a JSON deliverable that
    happens to have a ``name`` key stays a file."""
    calls: list[TextToolCall] = []
    rest = text
    for m in _TOOL_TAG.finditer(text):
        found = _calls_in(m.group(1))
        if found:
            calls += found
            rest = rest.replace(m.group(0), "")
    if calls:
        return calls, rest
    lines = text.split("\n")
    drop: list[tuple[int, int]] = []
    for block in fenced_blocks(text):
        if block.tag not in {"", "json", "tool_call", "tool", "function"} or block.path is not None:
            continue
        found = _calls_in(block.content)
        if found and all(c.name in known for c in found):
            calls += found
            drop.append((block.start, block.end))
    if calls:
        kept = [ln for n, ln in enumerate(lines) if not any(a <= n < b for a, b in drop)]
        return calls, "\n".join(kept)
    found = _calls_in(text.strip())
    if found and all(c.name in known for c in found):
        return found, ""
    return [], text


def parse_draft(
    text: str, *, main_file: str, reserved: frozenset[str] = frozenset(), whole_reply: bool = True
) -> Draft:
    """The files in a reply. Blocks naming a path are those files (a later block for the same path wins). If the
    main file is still missing: the longest unnamed block whose tag suits its extension; else, if the reply has
    exactly one file under another name, that file (the deliverable's name is the spec's, not the model's); else,
    when the reply has no block that could be the main file and ``whole_reply``, the whole reply (a text written
    without fences). ``reserved`` paths (e.g. the acceptance tests' own files) are left out."""
    blocks = fenced_blocks(text)
    draft = Draft()
    for block in blocks:
        if block.path is not None and block.path not in reserved:
            draft.files[block.path] = block.content
    ext = "." + main_file.rsplit(".", 1)[-1] if "." in main_file else ""
    suits = _TAGS_BY_EXT.get(ext)
    if main_file not in draft.files:
        unnamed = [b for b in blocks if b.path is None and (suits is None or b.tag in suits)]
        if unnamed:
            draft.files[main_file] = max(unnamed, key=lambda b: len(b.content)).content
        elif len(draft.files) == 1:
            (only,) = draft.files
            draft.files = {main_file: draft.files[only]}
        elif not draft.files and text.strip() and whole_reply:
            body = text.strip("\n")
            draft.files[main_file] = body + "\n"
            return draft
    lines = text.split("\n")
    inside = [(b.start, b.end) for b in blocks]
    draft.prose = "\n".join(ln for n, ln in enumerate(lines) if not any(a <= n < b for a, b in inside)).strip()
    return draft

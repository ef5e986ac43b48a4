"""Artifacts as a reviewer sees them: files exported from the artifact store, rendered to safe HTML, and diffed
against the previous revision.

Artifact content is data, never markup: Markdown is rendered by markdown-it-py with raw HTML off (an HTML tag in
the source shows as text) and the result is cleaned again by nh3 with an allow-list of tags, attributes and URL
schemes (``javascript:`` links are dropped); code is highlighted by Pygments into class-based spans (the
stylesheet is a static file, so the page's CSP needs no inline styles); everything else is escaped text.
Only the first ``preview_bytes`` of a file are rendered; the rest is a download.

CIDs are immutable, so an exported artifact (``<cache_dir>/<cid>``) and a rendered file are cached for good.
Must not import the web framework.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import DiffLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from orchestrator.domain.errors import ArtifactError
from orchestrator.ports.artifacts import ArtifactStore

MANIFEST_NAME = "manifest.json"  # written by the agent next to its files (agents.ports.MANIFEST_NAME)
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
#: What nh3 keeps of rendered Markdown: its default tag allow-list, no ``style``/``on*`` attributes, and these
#: URL schemes only (``javascript:``, ``data:`` and ``vbscript:`` links are removed).
URL_SCHEMES = frozenset({"http", "https", "mailto"})
RENDER_CACHE_SIZE = 512  # rendered files kept in memory (keyed by CID and path, so never stale)
SNIFF_BYTES = 8192


class FileKind(StrEnum):
    MARKDOWN = "markdown"
    CODE = "code"
    TEXT = "text"
    BINARY = "binary"


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One regular file of an exported artifact."""

    path: str  # relative, with '/' separators
    size: int
    location: Path


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """A file ready for the page: ``html`` is safe to insert as it is."""

    path: str
    size: int
    kind: FileKind
    html: Markup
    truncated: bool


@dataclass(frozen=True, slots=True)
class FileDiff:
    """How one path changed since the previous revision: ``status`` is added, removed, changed or unchanged."""

    path: str
    status: str
    html: Markup


class ArtifactRenderer:
    """Exports artifacts from an ``ArtifactStore`` into ``cache_dir`` and renders their files."""

    def __init__(self, artifacts: ArtifactStore, *, cache_dir: Path, preview_bytes: int) -> None:
        self._artifacts = artifacts
        self._cache_dir = cache_dir
        self.preview_bytes = preview_bytes
        self._lock = threading.Lock()
        self._rendered: OrderedDict[tuple[str, str], RenderedFile] = OrderedDict()
        self._md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
        self._formatter = HtmlFormatter(cssclass="hl", wrapcode=True)

    # ------------------------------------------------------------------------------------------------ files

    def export(self, cid: str) -> Path:
        """The artifact's folder (or file) on disk, exported on first use. ``ArtifactError`` if it cannot be."""
        dest = self._cache_dir / cid
        if os.path.lexists(dest):
            return dest
        if "/" in cid or cid.startswith("."):
            raise ArtifactError(f"not a CID: {cid!r}")
        try:
            return self._artifacts.get_path(cid, dest)
        except ArtifactError:
            if os.path.lexists(dest):  # another request exported it meanwhile
                return dest
            raise

    def files(self, cid: str) -> list[ArtifactFile]:
        """The artifact's regular files, by path, ``manifest.json`` last. A single-file artifact is one file named
        after its CID. Symlinks are not followed."""
        root = self.export(cid)
        if root.is_file():
            return [ArtifactFile(path=cid, size=root.stat().st_size, location=root)]
        out: list[ArtifactFile] = []
        for folder, dirs, names in os.walk(root, followlinks=False):
            dirs.sort()
            for name in sorted(names):
                location = Path(folder, name)
                if location.is_symlink() or not location.is_file():
                    continue
                rel = location.relative_to(root).as_posix()
                out.append(ArtifactFile(path=rel, size=location.stat().st_size, location=location))
        out.sort(key=lambda f: (f.path == MANIFEST_NAME, f.path))
        return out

    def head(self, file: ArtifactFile) -> tuple[bytes, bool]:
        """The first ``preview_bytes`` of the file, and whether there is more."""
        with file.location.open("rb") as fh:
            data = fh.read(self.preview_bytes + 1)
        return data[: self.preview_bytes], len(data) > self.preview_bytes

    # -------------------------------------------------------------------------------------------- rendering

    def render(self, cid: str) -> list[RenderedFile]:
        """Every file of the artifact, rendered (cached per CID and path)."""
        return [self._render_cached(cid, f) for f in self.files(cid)]

    def _render_cached(self, cid: str, file: ArtifactFile) -> RenderedFile:
        key = (cid, file.path)
        with self._lock:
            hit = self._rendered.get(key)
            if hit is not None:
                self._rendered.move_to_end(key)
                return hit
        rendered = self.render_file(file)
        with self._lock:
            self._rendered[key] = rendered
            while len(self._rendered) > RENDER_CACHE_SIZE:
                self._rendered.popitem(last=False)
        return rendered

    def render_file(self, file: ArtifactFile) -> RenderedFile:
        """One file as safe HTML: Markdown rendered and sanitised, code highlighted, binary files described."""
        data, truncated = self.head(file)
        text = _decode(data, truncated=truncated)
        name = PurePosixPath(file.path).name
        if text is None:
            kind, html = FileKind.BINARY, Markup("")
        elif PurePosixPath(name).suffix.lower() in MARKDOWN_SUFFIXES and not truncated:
            kind, html = FileKind.MARKDOWN, self.markdown(text)
        else:
            lexer = _lexer_for(name)
            if lexer is None:
                kind, html = FileKind.TEXT, Markup("<pre class='plain'>{}</pre>").format(text)
            else:
                kind, html = FileKind.CODE, Markup(highlight(text, lexer, self._formatter))  # noqa: S704 - Pygments escapes
        return RenderedFile(path=file.path, size=file.size, kind=kind, html=html, truncated=truncated)

    def markdown(self, text: str) -> Markup:
        """Markdown to HTML that cannot run anything."""
        html = self._md.render(text)
        cleaned = nh3.clean(html, url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer nofollow")
        return Markup(cleaned)  # noqa: S704 - sanitised by nh3 just above

    # ------------------------------------------------------------------------------------------------- diffs

    def diff(self, old_cid: str, new_cid: str) -> list[FileDiff]:
        """Per path, how ``new_cid`` differs from ``old_cid`` (text files: a unified diff of their previews)."""
        old = {f.path: f for f in self.files(old_cid)}
        new = {f.path: f for f in self.files(new_cid)}
        single = len(old) == len(new) == 1 and old_cid in old and new_cid in new  # two single-file artifacts
        if single:
            old, new = {"file": old[old_cid]}, {"file": new[new_cid]}
        out: list[FileDiff] = []
        for path in sorted(old.keys() | new.keys(), key=lambda p: (p == MANIFEST_NAME, p)):
            before, after = old.get(path), new.get(path)
            a = self._lines(before) if before else []
            b = self._lines(after) if after else []
            status = "added" if before is None else "removed" if after is None else "changed" if a != b else "same"
            if status == "same":
                out.append(FileDiff(path=path, status="unchanged", html=Markup("")))
                continue
            if a is None or b is None:
                out.append(FileDiff(path=path, status=status, html=Markup("<p class='muted'>binary file</p>")))
                continue
            lines = difflib.unified_diff(a, b, fromfile=f"a/{path}", tofile=f"b/{path}", n=3)
            text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
            out.append(FileDiff(path=path, status=status, html=Markup(highlight(text, DiffLexer(), self._formatter))))  # noqa: S704
        return out

    def _lines(self, file: ArtifactFile) -> list[str] | None:
        data, truncated = self.head(file)
        text = _decode(data, truncated=truncated)
        return None if text is None else text.splitlines(keepends=True)


def _decode(data: bytes, *, truncated: bool) -> str | None:
    """The text of a file's head, or None if it looks binary. A head may end inside a UTF-8 sequence."""
    if b"\0" in data[:SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8", errors="strict" if not truncated else "ignore")
    except UnicodeDecodeError:
        return None


def _lexer_for(name: str) -> Lexer | None:
    try:
        lexer: Lexer = get_lexer_for_filename(name, stripnl=False)
    except ClassNotFound:
        return None
    return None if lexer.name == "Text only" else lexer

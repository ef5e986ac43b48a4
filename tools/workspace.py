"""A per-task workspace folder and the actions that read, write and list files in it.

Every path an agent gives is relative to the workspace root. Absolute paths, ``..`` segments, and paths that
leave the root through a symlink are refused (``ToolRefused``); so are files and workspaces over the size caps.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.errors import ToolError, ToolRefused
from tools.base import Action

#: Largest single file an agent may write or read back, and largest total workspace size.
MAX_FILE_BYTES = 1_048_576
MAX_WORKSPACE_BYTES = 16_777_216
MAX_LISTED = 500


class Workspace:
    """Files of one task under ``root``; every access is confined to it."""

    def __init__(
        self, root: Path, *, max_file_bytes: int = MAX_FILE_BYTES, max_total_bytes: int = MAX_WORKSPACE_BYTES
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes

    def resolve(self, relpath: str) -> Path:
        """The absolute path of ``relpath`` inside the workspace, or ``ToolRefused``."""
        if not relpath or "\x00" in relpath or "\\" in relpath:
            raise ToolRefused(f"invalid path {relpath!r}: use a relative path like 'src/main.py'")
        pure = PurePosixPath(relpath)
        if pure.is_absolute() or any(part in ("..", "") for part in pure.parts):
            raise ToolRefused(f"path {relpath!r} is outside the workspace: use a relative path without '..'")
        target = (self.root / pure).resolve()
        if not target.is_relative_to(self.root):
            raise ToolRefused(f"path {relpath!r} leads outside the workspace")
        return target

    def read(self, relpath: str) -> str:
        path = self.resolve(relpath)
        if not path.is_file():
            raise ToolError(f"no file {relpath!r} in the workspace; list_files shows what exists")
        if path.stat().st_size > self.max_file_bytes:
            raise ToolRefused(f"{relpath!r} is larger than {self.max_file_bytes:,} bytes")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{relpath!r} is not UTF-8 text") from None

    def write(self, relpath: str, content: str) -> int:
        """Write ``content`` to ``relpath`` (folders are created); returns the size in bytes."""
        data = content.encode("utf-8")
        if len(data) > self.max_file_bytes:
            raise ToolRefused(f"{relpath!r} would be {len(data):,} bytes, over the {self.max_file_bytes:,} limit")
        path = self.resolve(relpath)
        if path == self.root or path.is_dir():
            raise ToolError(f"{relpath!r} is a folder")
        old = path.stat().st_size if path.is_file() else 0
        if self.total_bytes() - old + len(data) > self.max_total_bytes:
            raise ToolRefused(f"the workspace would exceed {self.max_total_bytes:,} bytes")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return len(data)

    def files(self) -> list[str]:
        """Relative paths of all regular files, sorted (symlinks are not followed)."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in filenames:
                full = Path(dirpath) / name
                if full.is_file() and not full.is_symlink():
                    out.append(full.relative_to(self.root).as_posix())
        return sorted(out)

    def total_bytes(self) -> int:
        return sum((self.root / p).stat().st_size for p in self.files())


class ReadFileArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="relative path inside the workspace, e.g. 'solution.py'")


class WriteFileArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="relative path inside the workspace, e.g. 'solution.py'")
    content: str = Field(description="the complete new content of the file")


class ListFilesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def workspace_actions(ws: Workspace) -> list[Action[Any]]:
    """``read_file``, ``write_file`` and ``list_files`` bound to ``ws``."""

    def read_file(args: ReadFileArgs) -> str:
        return ws.read(args.path)

    def write_file(args: WriteFileArgs) -> str:
        size = ws.write(args.path, args.content)
        return f"wrote {args.path} ({size} bytes)"

    def list_files(_: ListFilesArgs) -> str:
        names = ws.files()
        if not names:
            return "(the workspace is empty)"
        more = f"\n... and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
        return "\n".join(names[:MAX_LISTED]) + more

    actions: list[Action[Any]] = [
        Action("read_file", "Read a UTF-8 text file from the task workspace.", ReadFileArgs, read_file),
        Action("write_file", "Create or overwrite a text file in the task workspace.", WriteFileArgs, write_file),
        Action("list_files", "List the files in the task workspace.", ListFilesArgs, list_files),
    ]
    return actions

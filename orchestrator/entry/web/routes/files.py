"""Artifact files for the pages and the API alike: a file of one of a task's artifacts is always sent as a
download (``Content-Disposition: attachment``; text as ``text/plain``, anything with a NUL byte as
``application/octet-stream``), never rendered by the browser."""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import quote

from fastapi.responses import FileResponse

from orchestrator.adapters.sql import RecordNotFound
from orchestrator.domain.errors import ArtifactError
from orchestrator.entry.web.auth import Services
from orchestrator.entry.web.render import ArtifactFile


def artifact_files(services: Services, task_id: int, cid: str) -> list[ArtifactFile]:
    """The files of artifact ``cid`` of the task. ``RecordNotFound`` if the task has no such artifact."""
    if cid not in {a.cid for a in services.store.artifacts(task_id=task_id)}:
        raise RecordNotFound(f"task {task_id} has no artifact {cid}")
    try:
        return services.renderer.files(cid)
    except ArtifactError as exc:
        raise RecordNotFound(f"artifact {cid} cannot be read: {exc}") from exc


def artifact_download(services: Services, task_id: int, cid: str, path: str) -> FileResponse:
    """One file of artifact ``cid`` of the task, as a download. ``RecordNotFound`` if there is no such file."""
    file = next((f for f in artifact_files(services, task_id, cid) if f.path == path), None)
    if file is None:
        raise RecordNotFound(f"artifact {cid} has no file {path!r}")
    head, _ = services.renderer.head(file)
    textual = b"\0" not in head[:8192]
    name = PurePosixPath(file.path).name
    return FileResponse(
        file.location,
        media_type="text/plain; charset=utf-8" if textual else "application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}"},
    )

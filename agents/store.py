"""Put a produced artifact folder (files plus ``manifest.json``) into an ``ArtifactStore``.

Must not import LangChain.
"""

from __future__ import annotations

from agents.errors import AgentError
from agents.ports import AgentResult, AgentStatus
from orchestrator.ports.artifacts import ArtifactStore


def store_artifact(result: AgentResult, store: ArtifactStore) -> str:
    """Store ``result.files_dir`` and return its root CID. Failed results are refused: they are never offered."""
    if result.status is not AgentStatus.PRODUCED:
        raise AgentError(
            f"task {result.manifest.task_id}: the artifact failed ({result.reason}); it is never stored for submission",
            hint=f"inspect {result.files_dir}; revise it with reviewer feedback or give up the task",
        )
    return store.put_path(result.files_dir)

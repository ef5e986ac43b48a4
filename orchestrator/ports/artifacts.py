"""The artifact-store port: content-addressed storage (IPFS CIDs). Standard library only."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed storage. CIDs are CIDv1 with raw leaves, identical to ``ipfs add --cid-version=1
    --raw-leaves``. Adapters: ``LocalArtifactStore``, and the
    remote kinds of ``orchestrator.adapters.artifacts`` that keep a local store as their cache."""

    def put_bytes(self, data: bytes) -> str: ...

    def put_path(self, path: Path) -> str:
        """Add a file or a directory (recursively, as a UnixFS directory); return the root CID."""
        ...

    def get_bytes(self, cid: str, *, max_bytes: int | None = None) -> bytes:
        """Content of a file CID, verified against the CID. Raises ``ArtifactNotFound``/``ArtifactCorrupt``, and
        ``ArtifactTooLarge`` before reading anything when the file is larger than ``max_bytes``."""
        ...

    def get_path(self, cid: str, dest: Path) -> Path:
        """Write a file or directory CID to ``dest``, verifying every block on the way."""
        ...

    def has(self, cid: str) -> bool: ...

    def publish(self, cid: str) -> None:
        """Make a DAG this store holds reachable by other parties (Kubo: add and pin it); a no-op for a store
        others already read from. Idempotent. ``ArtifactUnavailable`` when the remote cannot be reached now."""
        ...

    def confirm_published(self, cid: str) -> bool:
        """Read the DAG back through the configured gateways, bypassing every local copy, each block verified.
        True when one gateway served all of it, False when no gateway is configured; raises
        ``ArtifactUnavailable`` (retryable) when none could, with each gateway's reason."""
        ...

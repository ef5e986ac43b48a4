"""``LocalArtifactStore``: the ``ArtifactStore`` port on a local directory, one file per block.

Layout::

    <root>/blocks/<cid>          the bytes of one block; <cid> is its CIDv1 in base32 ("bafk..." or "bafy...")
    <root>/blocks/.tmp-*         a block being written (left behind only by a crash; safe to delete)

The DAGs are built by ``orchestrator.adapters.artifacts.unixfs`` and are block for block what ``ipfs add
--cid-version=1 --raw-leaves`` makes, so the store's files could be imported into an IPFS node as they are.

Writes: each block goes to a temporary file in ``blocks/`` and is renamed over its final name (atomic),
children before parents, so a root that is present was stored after everything below it. A block already
present with the right length is not written again (deduplication). Blocks are not fsynced: a block damaged by
a crash is caught on the next read. Reads: every block is hashed and compared with its CID before use
(``ArtifactCorrupt``); a missing block is ``ArtifactNotFound``. CID strings may be given in any multibase,
CIDv0 included; invalid ones raise ``ArtifactError``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from orchestrator.adapters.artifacts.unixfs import (
    Cid,
    add_bytes,
    add_path,
    export_path,
    iter_file,
    walk_dag,
)
from orchestrator.domain.errors import ArtifactError, ArtifactNotFound


class LocalArtifactStore:
    """Content-addressed blocks under ``root/blocks``; the module docstring has layout and guarantees."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blocks = root / "blocks"
        try:
            self._blocks.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactError(f"cannot create the artifact store at {self._blocks}: {exc}") from exc

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` as a UnixFS file; return its CID."""
        return str(add_bytes(data, self._write_block).cid)

    def put_path(self, path: Path) -> str:
        """Store a file or a directory tree; return the root CID.

        ``path`` is resolved if it is a symlink. In a directory everything is stored, dot files included;
        symlinks are stored as symlinks if they stay inside the tree; a symlink leading out of it, a FIFO,
        socket or device, or a name that is not UTF-8 raises ``ArtifactError`` (see ``unixfs.add_path``).
        """
        return str(add_path(path, self._write_block).cid)

    def get_bytes(self, cid: str, *, max_bytes: int | None = None) -> bytes:
        """The content of a file CID, each block verified. A directory CID raises ``ArtifactError``; a file
        larger than ``max_bytes`` raises ``ArtifactTooLarge`` having read only its root block."""
        return b"".join(iter_file(Cid.parse(cid), self._read_block, max_bytes=max_bytes))

    def get_path(self, cid: str, dest: Path) -> Path:
        """Write a file or directory CID to ``dest`` (which must not exist); on failure nothing is left."""
        return export_path(Cid.parse(cid), dest, self._read_block)

    def has(self, cid: str) -> bool:
        """Whether every block of the DAG is stored. Inner nodes are read and verified (a damaged one raises
        ``ArtifactCorrupt``); leaves are only looked up."""
        try:
            return all(self._block_path(block).is_file() for block in walk_dag(Cid.parse(cid), self._read_block))
        except ArtifactNotFound:
            return False

    def publish(self, cid: str) -> None:
        """Nothing to push: others read this store through ``deworker artifact serve``. Checks the DAG is whole."""
        if not self.has(cid):
            raise ArtifactNotFound(f"{cid} is not (wholly) in the artifact store at {self.root}")

    def confirm_published(self, cid: str) -> bool:
        """A local store alone has no gateways to read back through."""
        return False

    # Block-level access, for the stores that keep this one as their cache and for the gateway that serves it.

    def has_block(self, cid: Cid) -> bool:
        """Whether the block is stored (not read nor verified)."""
        return self._block_path(cid).is_file()

    def get_block(self, cid: Cid) -> bytes:
        """One block's bytes, verified against ``cid``: ``ArtifactNotFound``, ``ArtifactCorrupt``."""
        return self._read_block(cid)

    def put_block(self, cid: Cid, block: bytes) -> None:
        """Store one block that came from elsewhere: it is verified against ``cid`` first (``ArtifactCorrupt``),
        so nothing unverified is ever kept."""
        cid.verify(block)
        self._write_block(cid, block)

    def _block_path(self, cid: Cid) -> Path:
        return self._blocks / str(cid)

    def _write_block(self, cid: Cid, block: bytes) -> None:
        path = self._block_path(cid)
        try:
            if path.stat().st_size == len(block):
                return
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ArtifactError(f"cannot store block {cid} at {path}: {exc}") from exc
        try:
            fd, tmp = tempfile.mkstemp(dir=self._blocks, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(block)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise ArtifactError(f"cannot store block {cid} at {path}: {exc}") from exc

    def _read_block(self, cid: Cid) -> bytes:
        path = self._block_path(cid)
        try:
            block = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactNotFound(
                f"block {cid} is not in the artifact store at {self.root}",
                hint="put the artifact into this store first, or fetch it from where it was stored",
            ) from exc
        except OSError as exc:
            raise ArtifactError(f"cannot read block {cid} from {path}: {exc}") from exc
        cid.verify(block)
        return block

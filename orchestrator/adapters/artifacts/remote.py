"""``RemoteArtifactStore``: the ``ArtifactStore`` port over a local cache, a Kubo node and trustless gateways.

How the parts compose:

* **Writes** go to the local store first (``artifacts.path``), always, so producing an artifact never depends on
  the network; then, with a Kubo node (``artifacts.kind: kubo``), the DAG is published to it (``add`` with pin).
  A node that cannot be reached at that moment is logged, not raised: ``publish`` (which the service calls
  before submitting) tries again and raises ``ArtifactUnavailable``.
* **Reads** take each block from the cache; a block the cache lacks comes from the Kubo node (``block/get``),
  then from the gateways in order (a CAR of the whole DAG, single blocks for what a CAR lacked). Every block is
  verified against its CID before it is cached or used. The root block is fetched alone first, so
  ``get_bytes(max_bytes=)`` refuses a too-large file before its content is fetched.
* **has** looks at the cache and the Kubo node only (never the gateways: it must be quick and local).
* **confirm_published** reads the whole DAG back through the gateways into a scratch folder, never the cache,
  so a True really means a gateway serves every block.

A damaged block in the cache raises ``ArtifactCorrupt`` as the local store does (it is not silently replaced).
Outcome of a read no source could serve: ``ArtifactNotFound`` when every source said it does not have the
block, ``ArtifactUnavailable`` (retryable) when any could not answer.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from orchestrator.adapters.artifacts.car import dag_blocks
from orchestrator.adapters.artifacts.gateway import TrustlessGateways
from orchestrator.adapters.artifacts.kubo import KuboRpc
from orchestrator.adapters.artifacts.local import LocalArtifactStore
from orchestrator.adapters.artifacts.unixfs import DAG_PB, BlockSource, Cid, decode_pbnode, export_path, iter_file
from orchestrator.domain.errors import ArtifactError, ArtifactNotFound, ArtifactTooLarge, ArtifactUnavailable

log = logging.getLogger(__name__)

#: What a file's DAG may carry beyond its content, in a fetch bounded by ``max_bytes``: inner nodes (about 1/64
#: of the content at most with 174 links per node) and CAR framing are covered by ``max_bytes // 64`` plus this.
DAG_OVERHEAD_BYTES = 65_536


class RemoteArtifactStore:
    """``cache`` plus an optional Kubo node (publishes, and is read first) and optional gateways (read next)."""

    def __init__(
        self,
        cache: LocalArtifactStore,
        *,
        kubo: KuboRpc | None = None,
        gateways: TrustlessGateways | None = None,
    ) -> None:
        self.cache = cache
        self.kubo = kubo
        self.gateways = gateways if gateways is not None and gateways.urls else None

    # ----------------------------------------------------------------------------------------------- writes

    def put_bytes(self, data: bytes) -> str:
        cid = self.cache.put_bytes(data)
        self._publish_now(cid)
        return cid

    def put_path(self, path: Path) -> str:
        cid = self.cache.put_path(path)
        self._publish_now(cid)
        return cid

    def publish(self, cid: str) -> None:
        """Kubo: add and pin the DAG, re-exported from the cache (blocks it lacks are fetched first); the root
        Kubo computes must be ``cid``. Without Kubo, others read this store through ``deworker artifact
        serve``: blocks the cache lacks are fetched into it (from the gateways), so that it holds the DAG whole."""
        root = Cid.parse(cid)
        if self.kubo is None:
            load = self._reader(root)
            for _ in dag_blocks(root, load):  # what the cache lacks is fetched, so the local server has it all
                pass
            self.cache.publish(cid)
            return
        self.kubo.add_dag(root, self._reader(root))

    def confirm_published(self, cid: str) -> bool:
        """True when one gateway served every block of the DAG (verified, into a scratch folder); False without
        gateways; ``ArtifactUnavailable`` with each gateway's reason otherwise."""
        root = Cid.parse(cid)
        if self.gateways is None:
            return False
        with tempfile.TemporaryDirectory(prefix=".confirm-", dir=self.cache.root) as tmp:
            scratch = LocalArtifactStore(Path(tmp) / "store")
            try:
                url = self.gateways.fetch_dag(root, scratch, scratch=Path(tmp))
            except (ArtifactNotFound, ArtifactTooLarge) as exc:
                raise ArtifactUnavailable(
                    f"not published yet: {exc.message}", hint="gateways can take a while to find new content"
                ) from None
        log.info("%s is served by gateway %s", cid, url)
        return True

    # ------------------------------------------------------------------------------------------------ reads

    def get_bytes(self, cid: str, *, max_bytes: int | None = None) -> bytes:
        root = Cid.parse(cid)
        return b"".join(iter_file(root, self._reader(root, max_bytes=max_bytes), max_bytes=max_bytes))

    def get_path(self, cid: str, dest: Path) -> Path:
        root = Cid.parse(cid)
        return export_path(root, dest, self._reader(root))

    def has(self, cid: str) -> bool:
        """Whether every block of the DAG is in the cache or on the Kubo node (gateways are not asked)."""
        root = Cid.parse(cid)
        seen = {root}
        stack = [root]
        try:
            while stack:
                block_cid = stack.pop()
                if block_cid.codec == DAG_PB:
                    block = self._held_block(block_cid)
                    for link in decode_pbnode(block).links:
                        if link.cid not in seen:
                            seen.add(link.cid)
                            stack.append(link.cid)
                elif not self.cache.has_block(block_cid) and not (self.kubo and self.kubo.has_block(block_cid)):
                    return False
        except ArtifactNotFound:
            return False
        return True

    # ---------------------------------------------------------------------------------------------- details

    def _publish_now(self, cid: str) -> None:
        if self.kubo is None:
            return
        try:
            self.publish(cid)
        except ArtifactUnavailable as exc:
            log.warning("stored %s locally; publishing it to Kubo failed and will be retried: %s", cid, exc)

    def _held_block(self, cid: Cid) -> bytes:
        """From the cache, else from Kubo (cached once verified); never the gateways."""
        if self.cache.has_block(cid):
            return self.cache.get_block(cid)
        if self.kubo is None:
            return self.cache.get_block(cid)  # raises ArtifactNotFound naming the block
        block = self.kubo.get_block(cid)
        self.cache.put_block(cid, block)
        return block

    def _reader(self, root: Cid, *, max_bytes: int | None = None) -> BlockSource:
        """A block source for reading the DAG under ``root``: the cache, filled on the first miss. The root
        alone is fetched first; the first missing block below it fetches the rest of the DAG at once — with
        ``max_bytes``, at most about that much from any gateway (a root may understate its file's size: a
        hostile spec DAG must not pull the whole ``artifacts.max_fetch_bytes``)."""
        budget = None if max_bytes is None else max_bytes + max_bytes // 64 + DAG_OVERHEAD_BYTES
        fetched = False

        def load(cid: Cid) -> bytes:
            nonlocal fetched
            if self.cache.has_block(cid):
                return self.cache.get_block(cid)
            if cid == root:
                return self._fetch_block(cid)
            if not fetched:
                fetched = True
                try:
                    self._fetch_dag(root, max_bytes=budget)
                except ArtifactNotFound as exc:
                    raise ArtifactNotFound(f"block {cid} of {root} is missing: {exc.message}", hint=exc.hint) from None
            return self.cache.get_block(cid)

        return load

    def _fetch_block(self, cid: Cid) -> bytes:
        failures: list[ArtifactError] = []
        if self.kubo is not None:
            try:
                return self._held_block(cid)
            except (ArtifactNotFound, ArtifactUnavailable) as exc:
                failures.append(exc)
        if self.gateways is not None:
            try:
                block = self.gateways.fetch_block(cid)
            except (ArtifactNotFound, ArtifactUnavailable, ArtifactTooLarge) as exc:
                failures.append(exc)
            else:
                self.cache.put_block(cid, block)
                return block
        raise self._combined(cid, failures)

    def _fetch_dag(self, root: Cid, *, max_bytes: int | None = None) -> None:
        """Put every block of the DAG under ``root`` into the cache: from Kubo, then from the gateways."""
        failures: list[ArtifactError] = []
        if self.kubo is not None:
            try:
                self._dag_from_kubo(root)
                return
            except (ArtifactNotFound, ArtifactUnavailable) as exc:
                failures.append(exc)
        if self.gateways is not None:
            try:
                self.gateways.fetch_dag(root, self.cache, scratch=self.cache.root, max_bytes=max_bytes)
                return
            except (ArtifactNotFound, ArtifactUnavailable, ArtifactTooLarge) as exc:
                failures.append(exc)
        raise self._combined(root, failures)

    def _dag_from_kubo(self, root: Cid) -> None:
        seen = {root}
        stack = [root]
        while stack:
            cid = stack.pop()
            block = self._held_block(cid)
            if cid.codec == DAG_PB:
                for link in decode_pbnode(block).links:
                    if link.cid not in seen:
                        seen.add(link.cid)
                        stack.append(link.cid)

    def _combined(self, cid: Cid, failures: list[ArtifactError]) -> ArtifactError:
        if not failures:
            return ArtifactNotFound(
                f"block {cid} is not in the artifact store at {self.cache.root}",
                hint="put the artifact into this store first, or configure artifacts.gateways to read it from",
            )
        if len(failures) == 1:
            return failures[0]
        reasons = "; ".join(exc.message for exc in failures)
        if all(isinstance(exc, ArtifactNotFound) for exc in failures):
            return ArtifactNotFound(f"no source has {cid}: {reasons}")
        return ArtifactUnavailable(f"no source could serve {cid} now: {reasons}", hint="try again later")

"""Reading blocks and whole DAGs from IPFS trustless gateways (https://specs.ipfs.tech/http-gateways/trustless-gateway/).

Requests, as the spec has a client make them (the ``format`` parameter *and* the ``Accept`` header):

* a DAG: ``GET {gateway}/ipfs/{cid}?format=car`` with ``Accept: application/vnd.ipld.car; version=1``. The answer
  must say ``Content-Type: application/vnd.ipld.car`` (the spec: a client MUST check it before reading), and is
  read as a stream with ``CarReader`` (every block hashed against its CID, the whole answer bounded). Its
  ``roots`` are ignored (the spec: a client SHOULD), and so are the order of its blocks, duplicates and blocks
  the DAG does not reach (a client MUST ignore unexpected blocks).
* one block: ``GET {gateway}/ipfs/{cid}?format=raw`` with ``Accept: application/vnd.ipld.raw``; the body must hash
  to the CID.

Trust: none. A CAR's blocks go to a staging folder first; then the DAG is walked from the requested root over
verified blocks only, blocks the CAR lacked are asked for one by one (``format=raw``) from the same gateway (all
of them, from a gateway that refuses CARs with 400, 406 or 501: raw blocks are a MUST of the spec, CARs a SHOULD), and
only when that gateway delivered every block of the DAG are the blocks reachable from the root copied into the
target store. A gateway that answers wrong bytes, a malformed or truncated CAR, times out, refuses, or sends more
than ``max_bytes`` is skipped with one warning line naming it and the reason, and the next one is tried. So
nothing a failing gateway sent ever reaches the target, and unrelated blocks never do.

Outcome when no gateway served the DAG: every one answered 404 (or 410) → ``ArtifactNotFound`` listing them;
every one exceeded the size cap → ``ArtifactTooLarge``; otherwise ``ArtifactUnavailable`` (retryable) listing
each gateway's reason.

Must not import the orchestrator's config or bootstrap: it is built from plain values.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from orchestrator.adapters.artifacts.car import MAX_BLOCK_BYTES, CarReader
from orchestrator.adapters.artifacts.local import LocalArtifactStore
from orchestrator.adapters.artifacts.unixfs import DAG_PB, Cid, decode_pbnode
from orchestrator.domain.errors import (
    ArtifactCorrupt,
    ArtifactError,
    ArtifactNotFound,
    ArtifactTooLarge,
    ArtifactUnavailable,
    DeworkerError,
)

log = logging.getLogger(__name__)

CAR_ACCEPT = "application/vnd.ipld.car; version=1"
RAW_ACCEPT = "application/vnd.ipld.raw"

FailureKind = Literal["not_found", "too_large", "unavailable"]


class _GatewayFailed(DeworkerError):
    """One gateway could not serve the request; ``kind`` decides the overall error. Not an ``ArtifactError``: the
    readers below turn the ``ArtifactError``s of a malformed answer into this, and must not catch their own."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        reason = " ".join(reason.split())  # one log line, whatever a server or a library put in it
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class _CarRefused(_GatewayFailed):
    """The gateway does not serve CARs (400, 406, 501): its raw blocks may still be read one by one."""


@dataclass
class _Budget:
    """Bytes one fetch may still receive from one gateway."""

    limit: int
    used: int = 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise _GatewayFailed("too_large", f"sent more than the size cap of {self.limit} bytes")

    @property
    def left(self) -> int:
        return max(self.limit - self.used, 0)


class _ResponseStream:
    """A streamed HTTP body as the binary stream ``CarReader`` reads."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = bytearray()
        self.consumed = 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if n < 0:
            n = len(self._buf)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed += len(out)
        return out


class TrustlessGateways:
    """An ordered list of trustless gateways, read with one ``httpx.Client``.

    ``timeout``: seconds to connect and between bytes; ``max_bytes``: what one fetch (a DAG, or a block) may
    receive from one gateway. ``transport`` is for tests only.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 30.0,
        max_bytes: int = 1 << 30,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.urls = [url.rstrip("/") for url in urls]
        self.max_bytes = max_bytes
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=5,
            transport=transport,
            headers={"User-Agent": "deworker"},
        )

    def close(self) -> None:
        self._http.close()

    # ----------------------------------------------------------------------------------------------- public

    def fetch_block(self, cid: Cid) -> bytes:
        """One block from the first gateway that serves it with the right bytes."""
        failures: list[tuple[str, _GatewayFailed]] = []
        for url in self.urls:
            try:
                return self._raw(url, cid, _Budget(min(self.max_bytes, MAX_BLOCK_BYTES)))
            except _GatewayFailed as failed:
                self._skip(url, cid, failed, failures)
        raise self._overall(cid, failures)

    def fetch_dag(self, root: Cid, target: LocalArtifactStore, *, scratch: Path, max_bytes: int | None = None) -> str:
        """Store in ``target`` every block of the DAG under ``root`` that it lacks, all served by one gateway
        (the first that can), and return that gateway's URL. Blocks ``target`` already holds are used to walk
        the DAG and not asked for again. ``scratch`` is a folder for staging (a temporary folder is made in it).
        ``max_bytes`` lowers the per-gateway byte cap for this fetch (a caller that wants a small file).
        """
        limit = self.max_bytes if max_bytes is None else min(self.max_bytes, max_bytes)
        failures: list[tuple[str, _GatewayFailed]] = []
        for url in self.urls:
            try:
                self._dag_from(url, root, target, scratch, limit)
                return url
            except _GatewayFailed as failed:
                self._skip(url, root, failed, failures)
        raise self._overall(root, failures)

    # ---------------------------------------------------------------------------------------------- details

    def _skip(self, url: str, cid: Cid, failed: _GatewayFailed, failures: list[tuple[str, _GatewayFailed]]) -> None:
        log.warning("gateway %s skipped for %s: %s", url, cid, failed.reason)
        failures.append((url, failed))

    def _overall(self, cid: Cid, failures: list[tuple[str, _GatewayFailed]]) -> ArtifactError:
        listed = "; ".join(f"{url}: {failed.reason}" for url, failed in failures)
        if not failures:
            return ArtifactNotFound(f"{cid}: no gateway is configured to read it from")
        kinds = {failed.kind for _, failed in failures}
        if kinds == {"not_found"}:
            return ArtifactNotFound(
                f"{cid} is not on any gateway ({listed})",
                hint="check the CID, or that whoever stored it published it (a Kubo node that announced it)",
            )
        if kinds == {"too_large"}:
            return ArtifactTooLarge(
                f"{cid} is larger than artifacts.max_fetch_bytes on every gateway ({listed})",
                hint="raise artifacts.max_fetch_bytes if this artifact is expected to be that large",
            )
        return ArtifactUnavailable(
            f"no gateway served {cid} ({listed})",
            hint="try again later, or add another gateway to artifacts.gateways",
        )

    def _get(self, url: str, cid: Cid, fmt: str, accept: str) -> httpx.Response:
        """Start a streamed GET; HTTP and transport failures become ``_GatewayFailed``."""
        request = self._http.build_request(
            "GET", f"{url}/ipfs/{cid}", params={"format": fmt}, headers={"Accept": accept}
        )
        try:
            response = self._http.send(request, stream=True)
        except httpx.TimeoutException:
            raise _GatewayFailed("unavailable", "timed out") from None
        except httpx.HTTPError as exc:
            raise _GatewayFailed("unavailable", f"unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code == 200:
            return response
        response.close()
        status = response.status_code
        if status in (404, 410):
            raise _GatewayFailed("not_found", f"HTTP {status}: it does not have block {cid}")
        if fmt == "car" and status in (400, 406, 501):
            raise _CarRefused("unavailable", f"HTTP {status}: it does not serve CARs")
        raise _GatewayFailed("unavailable", f"HTTP {status} for block {cid}")

    def _raw(self, url: str, cid: Cid, budget: _Budget) -> bytes:
        response = self._get(url, cid, "raw", RAW_ACCEPT)
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                budget.take(len(chunk))
                body += chunk
                if len(body) > MAX_BLOCK_BYTES:
                    raise _GatewayFailed("unavailable", f"block {cid} is longer than any IPFS block")
        except httpx.TimeoutException:
            raise _GatewayFailed("unavailable", f"timed out sending block {cid}") from None
        except httpx.HTTPError as exc:
            raise _GatewayFailed("unavailable", f"broke off sending block {cid} ({type(exc).__name__})") from None
        finally:
            response.close()
        try:
            cid.verify(bytes(body))
        except ArtifactCorrupt:
            media = response.headers.get("content-type", "")
            if media.split(";")[0].strip().lower() != "application/vnd.ipld.raw":
                raise _GatewayFailed("unavailable", f"answered Content-Type {media!r}, not block {cid}") from None
            raise _GatewayFailed("unavailable", f"sent wrong bytes for block {cid}") from None
        return bytes(body)

    def _car_into(self, url: str, root: Cid, staging: LocalArtifactStore, budget: _Budget) -> None:
        """Stream the CAR answer for ``root`` into ``staging`` (verified blocks only)."""
        response = self._get(url, root, "car", CAR_ACCEPT)
        try:
            media = response.headers.get("content-type", "")
            kind, _, params = media.partition(";")
            if kind.strip().lower() != "application/vnd.ipld.car":
                raise _GatewayFailed("unavailable", f"answered Content-Type {media!r}, not a CAR")
            version = next(
                (p.split("=", 1)[1].strip() for p in params.split(";") if p.strip().lower().startswith("version=")),
                "1",
            )
            if version != "1":
                raise _GatewayFailed("unavailable", f"answered a CAR version {version}; only version 1 is read")
            stream = _ResponseStream(response.iter_bytes())
            reader = CarReader(stream, max_bytes=budget.left, source="answer")  # type: ignore[arg-type]
            for cid, block in reader.blocks():
                if not staging.has_block(cid):
                    staging.put_block(cid, block)
            budget.take(stream.consumed)
        except ArtifactTooLarge:
            raise _GatewayFailed("too_large", f"sent more than the size cap of {budget.limit} bytes") from None
        except ArtifactCorrupt as exc:
            raise _GatewayFailed("unavailable", f"sent wrong bytes in its CAR ({exc.message})") from None
        except ArtifactError as exc:
            raise _GatewayFailed("unavailable", f"sent a malformed CAR ({exc.message})") from None
        except httpx.TimeoutException:
            raise _GatewayFailed("unavailable", "timed out sending the CAR") from None
        except httpx.HTTPError as exc:
            raise _GatewayFailed("unavailable", f"broke off sending the CAR ({type(exc).__name__})") from None
        finally:
            response.close()

    def _dag_from(self, url: str, root: Cid, target: LocalArtifactStore, scratch: Path, limit: int) -> None:
        budget = _Budget(limit)
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=scratch) as tmp:
            staging = LocalArtifactStore(Path(tmp))
            if not _complete(root, target):
                try:
                    self._car_into(url, root, staging, budget)
                except _CarRefused as refused:  # raw blocks are a MUST of the spec, CARs only a SHOULD
                    log.info("gateway %s: %s; reading %s block by block", url, refused.reason, root)
            needed: list[Cid] = []
            seen = {root}
            stack = [root]
            while stack:
                cid = stack.pop()
                if target.has_block(cid):
                    block = target.get_block(cid) if cid.codec == DAG_PB else b""
                else:
                    if not staging.has_block(cid):  # not in the CAR: ask for this block alone
                        staging.put_block(cid, self._raw(url, cid, budget))
                    block = staging.get_block(cid)
                    needed.append(cid)
                if cid.codec == DAG_PB:
                    try:
                        links = decode_pbnode(block).links
                    except ArtifactError as exc:
                        reason = f"block {cid} is not valid dag-pb ({exc.message})"
                        raise _GatewayFailed("unavailable", reason) from None
                    for link in links:
                        if link.cid not in seen:
                            seen.add(link.cid)
                            stack.append(link.cid)
            for cid in reversed(needed):  # children before parents, as the local store writes them
                target.put_block(cid, staging.get_block(cid))


def _complete(root: Cid, store: LocalArtifactStore) -> bool:
    """Whether ``store`` holds every block of the DAG (read locally, nothing fetched)."""
    seen = {root}
    stack = [root]
    while stack:
        cid = stack.pop()
        if not store.has_block(cid):
            return False
        if cid.codec == DAG_PB:
            for link in decode_pbnode(store.get_block(cid)).links:
                if link.cid not in seen:
                    seen.add(link.cid)
                    stack.append(link.cid)
    return True

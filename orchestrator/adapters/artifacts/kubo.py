"""A client of Kubo's RPC API (https://docs.ipfs.tech/reference/kubo/rpc/): add and pin a DAG, read blocks.

Calls (all ``POST``, arguments in the query string, as the RPC reference says):

``/api/v0/add?cid-version=1&raw-leaves=true&chunker=size-262144&pin=true``
    The body is ``multipart/form-data``: one part per file, directory and symlink, depth-first, each with
    ``Content-Disposition: form-data; name="file"; filename="<relative path, URL-encoded>"`` and a
    ``Content-Type``: ``application/octet-stream`` for a file (its bytes follow), ``application/x-directory``
    for a directory (no body), ``application/symlink`` for a symlink (the target is the body). The path is
    encoded as Go's ``url.QueryEscape`` does (Kubo decodes it with ``url.QueryUnescape``), so ``/`` becomes
    ``%2F``. Everything goes under one top-level entry named ``artifact``, whose ``Hash`` in the answer is the
    root. The answer is a stream of JSON lines ``{"Name", "Hash", "Size"}`` (progress lines ``{"Name",
    "Bytes"}`` are skipped); an error after streaming started arrives as ``{"Message", "Code", "Type": "error"}``.
    The DAG is re-exported from a store we hold and Kubo imports it itself, so the root Kubo reports must equal
    ours: a different one (a node configured with other import settings) raises ``ArtifactError`` naming both.
``/api/v0/block/get?arg=<cid>&offline=true``
    The block's bytes. ``offline=true`` keeps Kubo from searching the network for a block it lacks (the
    gateways do that); it answers 500 with ``{"Message": "block was not found locally (offline): ..."}``.
``/api/v0/block/stat?arg=<cid>&offline=true``
    ``{"Key", "Size"}`` when the node holds the block.

Errors: connection refused, timeouts, HTTP 429 and 5xx are ``ArtifactUnavailable`` (retryable) naming the URL
and Kubo's ``Message``; a missing block is ``ArtifactNotFound``; 401/403 (credentials), 400 and 404/405 (not an
RPC endpoint) are ``ArtifactError`` with the fix. The Authorization header (from the environment, see
``orchestrator.entry.config.KuboConfig``) is sent on every call and never appears in a message: anything Kubo echoes
back is redacted.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import urllib.parse
from typing import IO, Any, NoReturn

import httpx

from orchestrator.adapters.artifacts.car import MAX_BLOCK_BYTES
from orchestrator.adapters.artifacts.unixfs import (
    CHUNK_SIZE,
    RAW,
    BlockSource,
    Cid,
    UnixfsType,
    decode_pbnode,
    decode_unixfs,
    iter_file,
)
from orchestrator.domain.errors import ArtifactCorrupt, ArtifactError, ArtifactNotFound, ArtifactUnavailable

#: What ``ipfs add --cid-version=1 --raw-leaves`` does, spelled out so a node's own defaults do not matter.
ADD_PARAMS = {"cid-version": "1", "raw-leaves": "true", "chunker": f"size-{CHUNK_SIZE}", "pin": "true"}
TOP_NAME = "artifact"
_MAX_ERROR_BODY = 65_536
_NOT_FOUND_MARKERS = ("not found locally", "could not find", "merkledag: not found", "block not found")


def _query_escape(path: str) -> str:
    """Go's ``url.QueryEscape``: everything but ``A-Za-z0-9-_.~`` percent-encoded, spaces as ``+``."""
    return urllib.parse.quote_plus(path, safe="")


def authorization(*, header: str | None = None, basic: str | None = None) -> str | None:
    """The Authorization header value: ``header`` as given, or ``basic`` (``user:password``) encoded."""
    if header:
        return header
    if basic:
        return "Basic " + base64.b64encode(basic.encode("utf-8")).decode("ascii")
    return None


class KuboRpc:
    """One Kubo node's RPC API at ``url`` (e.g. ``http://127.0.0.1:5001``). ``transport`` is for tests only."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        authorization: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "deworker"}
        self._secrets: list[str] = []
        if authorization:
            headers["Authorization"] = authorization
            self._secrets = _secret_forms(authorization)
        self._http = httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(timeout), headers=headers, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------------------------------------ calls

    def add_dag(self, root: Cid, load: BlockSource) -> Cid:
        """Add (and pin) the file or directory DAG under ``root``, re-exported through ``load``; return the
        root Kubo computed, which must be ``root`` (else ``ArtifactError`` naming both)."""
        boundary = "deworker-" + os.urandom(16).hex()
        with tempfile.TemporaryFile() as body:
            _write_multipart(body, boundary, root, load)
            body.seek(0)
            request = self._http.build_request(
                "POST",
                "/api/v0/add",
                params=ADD_PARAMS,
                content=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            response = self._send(request, "add", stream=True)
            try:
                added = self._added_root(response)
            finally:
                response.close()
        if added != root:
            raise ArtifactError(
                f"Kubo at {self.url} computed root {added} for the DAG whose root is {root}",
                hint="the node imports differently from `ipfs add --cid-version=1 --raw-leaves` (check its "
                "Import.* settings, e.g. UnixFSFileMaxLinks, UnixFSHAMTDirectorySizeThreshold)",
            )
        return added

    def get_block(self, cid: Cid) -> bytes:
        """One block, verified: ``ArtifactNotFound`` when the node lacks it, ``ArtifactUnavailable`` when it
        cannot answer or sends bytes that do not match the CID."""
        request = self._http.build_request("POST", "/api/v0/block/get", params={"arg": str(cid), "offline": "true"})
        response = self._send(request, f"block/get {cid}", stream=True)
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BLOCK_BYTES:
                    raise ArtifactUnavailable(f"Kubo at {self.url} sent more than {MAX_BLOCK_BYTES} bytes for {cid}")
        except httpx.HTTPError as exc:
            raise ArtifactUnavailable(f"Kubo at {self.url} broke off sending {cid} ({type(exc).__name__})") from None
        finally:
            response.close()
        try:
            cid.verify(bytes(body))
        except ArtifactCorrupt:
            raise ArtifactUnavailable(
                f"Kubo at {self.url} sent {len(body)} bytes for block {cid} that do not match it",
                hint="the node's copy is damaged: run `ipfs repo verify` on it",
            ) from None
        return bytes(body)

    def has_block(self, cid: Cid) -> bool:
        """Whether the node holds the block (``block/stat``, offline)."""
        request = self._http.build_request("POST", "/api/v0/block/stat", params={"arg": str(cid), "offline": "true"})
        try:
            response = self._send(request, f"block/stat {cid}", stream=False)
        except ArtifactNotFound:
            return False
        try:
            return response.json().get("Key") is not None
        except (ValueError, AttributeError):
            raise ArtifactUnavailable(f"Kubo at {self.url} answered block/stat {cid} with no JSON") from None

    # ---------------------------------------------------------------------------------------------- details

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _send(self, request: httpx.Request, what: str, *, stream: bool) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TimeoutException:
            raise ArtifactUnavailable(
                f"Kubo RPC at {self.url} timed out on {what}", hint="raise artifacts.kubo.timeout, or check the node"
            ) from None
        except httpx.HTTPError as exc:
            raise ArtifactUnavailable(
                f"cannot reach Kubo RPC at {self.url} for {what}: {self._redact(str(exc)) or type(exc).__name__}",
                hint="is the Kubo daemon running, and is artifacts.kubo.url its RPC address (port 5001)?",
            ) from None
        if response.status_code == 200:
            return response
        try:
            raw = b""
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) > _MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass
        finally:
            response.close()
        self._fail(response.status_code, raw, what)

    def _fail(self, status: int, raw: bytes, what: str) -> NoReturn:
        message = _kubo_message(raw)
        said = self._redact(message)
        where = f"Kubo RPC at {self.url}: {what}: HTTP {status}"
        detail = f"{where}: {said}" if said else where
        if status in (401, 403):
            raise ArtifactError(
                f"{where}: the credentials were refused" + (f" ({said})" if said else ""),
                hint="check the environment variable named by artifacts.kubo.auth_header_env or basic_auth_env",
            )
        if status in (404, 405):
            raise ArtifactError(
                f"{where}: no such RPC endpoint",
                hint="artifacts.kubo.url must be the Kubo RPC API (port 5001), not a gateway",
            )
        if status == 500 and what.startswith("block/") and any(m in message.lower() for m in _NOT_FOUND_MARKERS):
            raise ArtifactNotFound(detail)
        if status == 429 or status >= 500:
            raise ArtifactUnavailable(detail, hint="try again later")
        raise ArtifactError(detail)

    def _added_root(self, response: httpx.Response) -> Cid:
        """The ``Hash`` of the line named ``artifact``: Kubo names the top-level entry's events after its part
        (``core/commands/add.go``: the part's name for a file, ``path.Join(name, "")`` for a directory root)."""
        top: str | None = None
        try:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                try:
                    entry: Any = json.loads(line)
                except ValueError:
                    raise ArtifactUnavailable(f"Kubo at {self.url} answered add with a line that is not JSON") from None
                if not isinstance(entry, dict):
                    continue
                if entry.get("Type") == "error":
                    raise ArtifactUnavailable(
                        f"Kubo RPC at {self.url}: add failed: {self._redact(str(entry.get('Message', '')))}"
                    )
                if entry.get("Name") == TOP_NAME and isinstance(entry.get("Hash"), str):
                    top = entry["Hash"]
        except httpx.HTTPError as exc:
            raise ArtifactUnavailable(f"Kubo at {self.url} broke off its add answer ({type(exc).__name__})") from None
        if top is None:
            raise ArtifactUnavailable(f"Kubo at {self.url} answered add without the root's line (cut short?)")
        return Cid.parse(top)


def _secret_forms(authorization: str) -> list[str]:
    """The strings that would give the secret away: the header value, its credentials, decoded Basic parts."""
    forms = {authorization}
    scheme, _, token = authorization.partition(" ")
    if token:
        forms.add(token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode("utf-8")
            except ValueError:
                decoded = ""
            if decoded:
                forms.add(decoded)
                password = decoded.partition(":")[2]
                if len(password) >= 4:
                    forms.add(password)
    return sorted((f for f in forms if f), key=len, reverse=True)


def _kubo_message(raw: bytes) -> str:
    """Kubo's ``{"Message", "Code", "Type": "error"}`` body, or the start of whatever text came."""
    text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    if isinstance(doc, dict) and isinstance(doc.get("Message"), str):
        return str(doc["Message"])[:1000]
    return " ".join(text.split())[:300]


# ----------------------------------------------------------------------------------------------- multipart


def _part_header(out: IO[bytes], boundary: str, path: str, content_type: str) -> None:
    out.write(
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{_query_escape(path)}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode("ascii")
    )


def _check_name(name: str, parent: Cid) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ArtifactError(f"directory {parent} has an entry named {name!r}, which cannot be added to Kubo")


def _write_multipart(out: IO[bytes], boundary: str, root: Cid, load: BlockSource) -> None:
    """The ``add`` body for the DAG under ``root``: parts depth-first, a directory's entries right after it."""
    stack: list[tuple[Cid, str]] = [(root, TOP_NAME)]
    while stack:
        cid, path = stack.pop()
        if cid.codec == RAW:
            kind = UnixfsType.FILE
        else:
            node = decode_pbnode(load(cid))
            if node.data is None:
                raise ArtifactError(f"{cid} is a dag-pb node without UnixFS data; only UnixFS DAGs are published")
            unixfs = decode_unixfs(node.data)
            kind = unixfs.type
        if kind in (UnixfsType.FILE, UnixfsType.RAW):
            _part_header(out, boundary, path, "application/octet-stream")
            for piece in iter_file(cid, load):
                out.write(piece)
        elif kind == UnixfsType.DIRECTORY:
            _part_header(out, boundary, path, "application/x-directory")
            for link in reversed(node.links):
                _check_name(link.name, cid)
                stack.append((link.cid, f"{path}/{link.name}"))
        elif kind == UnixfsType.SYMLINK and cid != root:
            _part_header(out, boundary, path, "application/symlink")
            out.write(unixfs.data or b"")
        else:
            raise ArtifactError(f"cannot publish {cid}: a UnixFS {kind.name.lower()} at {path!r} is not supported")
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode("ascii"))

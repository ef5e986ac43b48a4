"""Real HTTP servers on 127.0.0.1 that play a Kubo node's RPC API and IPFS trustless gateways, for the tests.

``FakeKubo`` speaks Kubo's RPC wire format (how it was checked against Kubo's documentation and source is in
``tests/test_artifact_remote.py``'s docstring). It builds the DAG itself, with our UnixFS importer, from what was
uploaded: a client that lays out the multipart body wrongly gets a different root CID, not a canned one. One
server hosts many independent nodes, each under its own URL prefix (``http://127.0.0.1:P/kubo-3``), so every
test gets a fresh blockstore without starting a server.

``FakeGateways`` serves ``/ipfs/{cid}?format=car|raw`` from a ``LocalArtifactStore`` as a trustless gateway does,
honestly (``good``) or in one of the hostile ways of ``GatewayMode``. Again one server, a prefix per gateway.
"""

from __future__ import annotations

import http.server
import itertools
import json
import posixpath
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.artifacts.car import dag_blocks, header_bytes, section_bytes
from orchestrator.adapters.artifacts.unixfs import (
    RAW,
    Cid,
    DagRef,
    add_bytes,
    add_directory,
    add_symlink,
)
from orchestrator.domain.errors import ArtifactError

# ------------------------------------------------------------------------------------------------------ Kubo


class KuboWireError(Exception):
    """The request breaks Kubo's wire format (or asks for what this fake cannot build): answered as Kubo does."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class KuboNode:
    prefix: str
    url: str
    blocks: dict[Cid, bytes] = field(default_factory=dict)
    pins: set[Cid] = field(default_factory=set)
    #: (Name, Hash) of the top-level entries of every add, in order
    added: list[tuple[str, str]] = field(default_factory=list)
    #: every multipart part of the last add: (Content-Type, decoded path)
    last_parts: list[tuple[str, str]] = field(default_factory=list)
    #: the Authorization header of every request (None: absent)
    auth_seen: list[str | None] = field(default_factory=list)
    require_auth: str | None = None
    #: seconds to sleep before answering any call (a node that hangs)
    stall_seconds: float = 0.0
    #: how each request body was framed: "length" (Content-Length) or "chunked"
    framing: list[str] = field(default_factory=list)
    #: answer the next add with this Kubo error (HTTP 500) instead
    fail_add: str | None = None
    #: echo the request's Authorization header inside error messages (a careless proxy does)
    echo_auth: bool = False


_DISPOSITION_PARAM = re.compile(r';\s*([A-Za-z0-9_-]+)="([^"]*)"')


def _go_path_clean(name: str) -> str:
    """boxo's ``fileName``: ``url.QueryUnescape`` then ``path.Clean("/" + name)``, here without the slash."""
    try:
        unescaped = urllib.parse.unquote_plus(name, errors="strict")
    except UnicodeDecodeError:
        unescaped = name
    return posixpath.normpath("/" + unescaped).lstrip("/")


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length", "0")))


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """RFC 7578 ``multipart/form-data`` as Go's ``mime/multipart`` reads it: (headers, body) per part."""
    match = re.match(r"multipart/form-data\s*;\s*boundary=\"?([^\";]+)\"?", content_type, re.I)
    if not match:
        raise KuboWireError(f"request Content-Type is {content_type!r}, not multipart/form-data", 400)
    delimiter = b"--" + match.group(1).encode()
    if not body.startswith(delimiter):
        raise KuboWireError("multipart body does not start with the boundary", 400)
    parts = []
    pieces = body.split(b"\r\n" + delimiter)
    first = pieces[0][len(delimiter) :]
    for i, piece in enumerate([first, *pieces[1:]]):
        if piece.startswith(b"--"):
            break
        if not piece.startswith(b"\r\n"):
            raise KuboWireError(f"multipart part {i} does not follow its boundary with CRLF", 400)
        head, sep, data = piece[2:].partition(b"\r\n\r\n")
        if not sep:
            raise KuboWireError(f"multipart part {i} has no blank line after its headers", 400)
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, data))
    else:
        raise KuboWireError("multipart body has no closing boundary", 400)
    return parts


@dataclass
class _Dir:
    entries: dict[str, _Dir | bytes | tuple[str]] = field(default_factory=dict)


def build_tree(parts: list[tuple[dict[str, str], bytes]], node: KuboNode) -> _Dir:
    """The tree boxo's ``multipartIterator`` yields: parts must come depth-first, each directory's entries
    right after it (a part outside the directory being read ends that directory, as in boxo)."""
    top = _Dir()
    closed: set[str] = set()
    open_dirs: list[str] = [""]
    node.last_parts = []
    for headers, data in parts:
        disposition = headers.get("content-disposition", "")
        if not disposition.startswith("form-data") and not disposition.startswith("attachment"):
            raise KuboWireError(f"part with Content-Disposition {disposition!r}", 400)
        params = dict(_DISPOSITION_PARAM.findall(disposition))
        path = _go_path_clean(params.get("filename", ""))
        kind = headers.get("content-type", "application/octet-stream").split(";")[0].strip()
        node.last_parts.append((kind, path))
        if not path:
            raise KuboWireError("a part has no filename", 400)
        parent = posixpath.dirname(path)
        while open_dirs[-1] and not (parent + "/").startswith(open_dirs[-1] + "/"):
            closed.add(open_dirs.pop())
        if parent in closed or path in closed:
            raise KuboWireError(f"part {path!r} comes after its directory was left (Kubo would not see it)", 400)
        where = top
        for component in [c for c in parent.split("/") if c]:
            child = where.entries.setdefault(component, _Dir())
            if not isinstance(child, _Dir):
                raise KuboWireError(f"{path!r} is inside a file", 400)
            where = child
        for depth in range(len(parent.split("/")) if parent else 0):
            prefix = "/".join(parent.split("/")[: depth + 1])
            if prefix not in open_dirs:
                open_dirs.append(prefix)
        name = posixpath.basename(path)
        if name in where.entries:
            raise KuboWireError(f"duplicate entry {path!r}", 400)
        if kind in ("application/x-directory", "multipart/form-data"):
            where.entries[name] = _Dir()
            open_dirs.append(path)
        elif kind == "application/symlink":
            where.entries[name] = (data.decode("utf-8"),)
        else:
            where.entries[name] = data
    return top


def _import(
    name: str, entry: _Dir | bytes | tuple[str], sink: Callable[[Cid, bytes], None], out: list[dict[str, str]]
) -> DagRef:
    if isinstance(entry, bytes):
        ref = add_bytes(entry, sink)
    elif isinstance(entry, tuple):
        ref = add_symlink(entry[0], sink)
    else:
        children = {child: _import(f"{name}/{child}", sub, sink, out) for child, sub in entry.entries.items()}
        ref = add_directory(children, sink)
    out.append({"Name": name, "Hash": str(ref.cid), "Size": str(ref.tsize)})
    return ref


def kubo_add(node: KuboNode, query: dict[str, list[str]], body: bytes, content_type: str) -> list[dict[str, str]]:
    """``/api/v0/add``: the JSON lines to answer."""
    opt = {key: values[-1] for key, values in query.items()}

    def flag(key: str, default: bool) -> bool:
        value = opt.get(key)
        return default if value is None else value.lower() in ("true", "1", "")

    cid_version = int(opt.get("cid-version", "0"))
    raw_leaves = flag("raw-leaves", cid_version == 1)  # the reference: cid-version=1 makes raw-leaves default true
    unsupported = []
    if cid_version != 1:
        unsupported.append(f"cid-version={cid_version} (Kubo would make CIDv0 'Qm...' with dag-pb leaves)")
    if not raw_leaves:
        unsupported.append("raw-leaves=false (dag-pb leaves)")
    if opt.get("chunker", "size-262144") != "size-262144":
        unsupported.append(f"chunker={opt['chunker']}")
    if opt.get("hash", "sha2-256") != "sha2-256":
        unsupported.append(f"hash={opt['hash']}")
    for key in ("trickle", "inline", "nocopy", "only-hash"):
        if flag(key, False):
            unsupported.append(key)
    if unsupported:
        raise KuboWireError(
            "this fake Kubo builds only the ipfs add DAGs of our importer; asked for " + ", ".join(unsupported)
        )
    tree = build_tree(parse_multipart(body, content_type), node)
    store: dict[Cid, bytes] = {}
    lines: list[dict[str, str]] = []
    tops: list[tuple[str, DagRef]] = []
    for name, entry in tree.entries.items():
        tops.append((name, _import(name, entry, store.__setitem__, lines)))
    if flag("wrap-with-directory", False):
        wrapper = add_directory(dict(tops), store.__setitem__)
        lines.append({"Name": "", "Hash": str(wrapper.cid), "Size": str(wrapper.tsize)})
        roots = [wrapper.cid]
    else:
        roots = [ref.cid for _, ref in tops]
    node.blocks.update(store)
    if flag("pin", True):
        node.pins.update(roots)
    node.added.extend((name, str(ref.cid)) for name, ref in tops)
    return lines


class _KuboHandler(http.server.BaseHTTPRequestHandler):
    server: _KuboServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode()
        self._send(status, body, "application/json")

    def do_GET(self) -> None:
        self._send(405, b"405 - Method Not Allowed", "text/plain")

    def do_POST(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        prefix, _, rest = parsed.path.lstrip("/").partition("/")
        node = self.server.nodes.get(prefix)
        body = _read_body(self)
        if node is None or not rest.startswith("api/v0/"):
            self._send(404, b"404 page not found", "text/plain")
            return
        auth = self.headers.get("Authorization")
        node.auth_seen.append(auth)
        node.framing.append("chunked" if "Transfer-Encoding" in self.headers else "length")
        if node.require_auth is not None and auth != node.require_auth:
            self._send(
                401,
                f"401 - unauthorized: got {auth}".encode() if node.echo_auth else b"401 - unauthorized",
                "text/plain",
            )
            return
        if node.stall_seconds:
            time.sleep(node.stall_seconds)
        command = rest.removeprefix("api/v0/")
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        try:
            if command == "add":
                if node.fail_add is not None:
                    message, node.fail_add = node.fail_add, None
                    raise KuboWireError(message + (f" (request had {auth})" if node.echo_auth else ""))
                lines = kubo_add(node, query, body, self.headers.get("Content-Type", ""))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Chunked-Output", "1")
                self.send_header("Trailer", "X-Stream-Error")
                self.end_headers()
                for line in lines:
                    self.wfile.write(json.dumps(line).encode() + b"\n")
            elif command in ("block/get", "block/stat"):
                (arg,) = query.get("arg", [""])
                try:
                    cid = Cid.parse(arg)
                except ArtifactError:
                    raise KuboWireError(f"invalid path {arg!r}: invalid cid") from None
                if cid not in node.blocks:
                    raise KuboWireError(f"block was not found locally (offline): ipld: could not find {cid}")
                if command == "block/get":
                    self._send(200, node.blocks[cid], "text/plain")
                else:
                    self._send(
                        200, json.dumps({"Key": str(cid), "Size": len(node.blocks[cid])}).encode(), "application/json"
                    )
            else:
                self._send(404, b"404 page not found", "text/plain")
        except KuboWireError as exc:
            self._error(exc.status, str(exc))


class _KuboServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    nodes: dict[str, KuboNode]


class FakeKubo:
    """One HTTP server, many Kubo nodes (``node()``)."""

    def __init__(self) -> None:
        self._server = _KuboServer(("127.0.0.1", 0), _KuboHandler)
        self._server.nodes = {}
        self._ids = itertools.count(1)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def node(self, *, require_auth: str | None = None) -> KuboNode:
        prefix = f"kubo-{next(self._ids)}"
        node = KuboNode(prefix=prefix, url=f"{self.base}/{prefix}", require_auth=require_auth)
        self._server.nodes[prefix] = node
        return node

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -------------------------------------------------------------------------------------------------- gateways

GatewayMode = Literal["good", "flip", "truncate", "stall", "missing", "html", "partial", "extra", "raw-only"]
"""good: honest; flip: one byte changed in a block (CAR and raw); truncate: answers cut short; stall: sleeps
``stall_seconds`` before answering; missing: 404 for everything; html: a 200 HTML page; partial: CARs leave out
every raw leaf (raw requests are answered honestly); extra: CARs carry unrelated (valid) blocks too; raw-only:
CAR requests get 406 Not Acceptable (the spec makes CAR a SHOULD, raw a MUST)."""


@dataclass
class Gateway:
    prefix: str
    url: str
    store: LocalArtifactStore
    mode: GatewayMode
    #: (format parameter, Accept header) of every request
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: blocks an ``extra`` gateway slips into its CARs
    extra_blocks: dict[Cid, bytes] = field(default_factory=dict)
    stall_seconds: float = 2.0


class _GatewayHandler(http.server.BaseHTTPRequestHandler):
    server: _GatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _plain(self, status: int, text: str, content_type: str = "text/plain") -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self._plain(405, "405 method not allowed")

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        prefix, _, rest = parsed.path.lstrip("/").partition("/")
        gateway = self.server.gateways.get(prefix)
        if gateway is None or not rest.startswith("ipfs/"):
            self._plain(404, "no such gateway")
            return
        fmt = urllib.parse.parse_qs(parsed.query).get("format", [""])[-1]
        accept = self.headers.get("Accept", "")
        gateway.requests.append((fmt, accept))
        if gateway.mode == "stall":
            time.sleep(gateway.stall_seconds)
        try:
            cid = Cid.parse(rest.removeprefix("ipfs/"))
        except ArtifactError:
            self._plain(400, "invalid CID")
            return
        if gateway.mode == "missing" or not gateway.store.has_block(cid):
            self._plain(404, f"{cid} not found")
            return
        if gateway.mode == "html":
            self._plain(200, "<html><body>Hello from a CDN</body></html>", "text/html")
            return
        if fmt == "raw" and accept.startswith("application/vnd.ipld.raw"):
            self._raw(gateway, cid)
        elif fmt == "car" and accept.startswith("application/vnd.ipld.car"):
            if gateway.mode == "raw-only":
                self._plain(406, "CAR responses are not supported here")
                return
            self._car(gateway, cid)
        else:
            self._plain(400, f"format={fmt!r} with Accept {accept!r} is not a trustless request")

    def _raw(self, gateway: Gateway, cid: Cid) -> None:
        block = bytearray(gateway.store.get_block(cid))
        if gateway.mode == "flip" and block:
            block[len(block) // 2] ^= 0x01
        if gateway.mode == "truncate":  # promises the whole block, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.ipld.raw")
            self.send_header("Content-Length", str(len(block)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(bytes(block[: len(block) // 2]))
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.ipld.raw")
        self.send_header("Content-Length", str(len(block)))
        self.end_headers()
        self.wfile.write(bytes(block))

    def _car(self, gateway: Gateway, root: Cid) -> None:
        pieces: list[bytes] = [header_bytes([root])]
        try:
            for cid, block in dag_blocks(root, gateway.store.get_block):
                if gateway.mode == "partial" and cid.codec == RAW:
                    continue
                pieces.append(section_bytes(cid, block))
        except ArtifactError:
            pass  # a missing child: the stream ends early, as the spec has a gateway do
        if gateway.mode == "extra":
            pieces[1:1] = [section_bytes(cid, block) for cid, block in gateway.extra_blocks.items()]
        body = b"".join(pieces)
        if gateway.mode == "flip":
            last = bytearray(pieces[-1])
            last[-1] ^= 0x01
            body = b"".join(pieces[:-1]) + bytes(last)
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.ipld.car; version=1; order=dfs; dups=n")
        if gateway.mode == "truncate":
            body = body[: len(body) - max(1, len(pieces[-1]) // 2)]
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _GatewayServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    gateways: dict[str, Gateway]


class FakeGateways:
    """One HTTP server, many trustless gateways (``gateway()``), each serving a ``LocalArtifactStore``."""

    def __init__(self) -> None:
        self._server = _GatewayServer(("127.0.0.1", 0), _GatewayHandler)
        self._server.gateways = {}
        self._ids = itertools.count(1)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def gateway(self, store: LocalArtifactStore, mode: GatewayMode = "good") -> Gateway:
        prefix = f"gw-{next(self._ids)}-{mode}"
        gateway = Gateway(prefix=prefix, url=f"{self.base}/{prefix}", store=store, mode=mode)
        self._server.gateways[prefix] = gateway
        return gateway

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

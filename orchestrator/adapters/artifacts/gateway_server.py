"""A read-only IPFS trustless gateway over a ``LocalArtifactStore``: ``GET``/``HEAD /ipfs/{cid}[/{path}]``.

Implements https://specs.ipfs.tech/http-gateways/trustless-gateway/ (the 2026-03-05 text) for the blocks this
machine holds. It never fetches from elsewhere (a non-recursive gateway): a CID the store lacks is a 404.

Formats (``?format=`` wins over ``Accept``, as the spec says)
    ``raw`` / ``application/vnd.ipld.raw``: the one block, verified against its CID before a byte is sent, with
    ``Content-Length``. Only ``/ipfs/{cid}``: a content path is a 400.
    ``car`` / ``application/vnd.ipld.car``: a CARv1 stream, ``Content-Type: application/vnd.ipld.car; version=1;
    order=dfs; dups=n`` (or ``dups=y`` when asked). Blocks are read from disk one at a time as the response is
    written, depth-first pre-order: the directory blocks on the content path first, then ``dag-scope`` at its
    end: ``all`` (the default: the whole DAG), ``entity`` (a whole file; a directory's own block; otherwise the
    block) or ``block``. The CAR header's one root is the CID of the request, whatever the path.
    CAR parameters come from ``Accept`` (``version``, ``order``, ``dups``, ``q``) or from ``car-version``,
    ``car-order``, ``car-dups`` in the query (which win). Supported: version 1, order ``dfs`` (``unk`` is answered
    with dfs), dups ``n`` or ``y``. An ``Accept`` naming only other variants is a 406; a bad query value a 400.
    ``entity-bytes=from:to`` (``*`` and negative offsets as the spec allows; implies ``dag-scope=entity``) sends,
    for a file, only the nodes and chunks whose ``blocksizes`` ranges meet the byte range; a range starting past
    the end is a 400, a zero-length one is answered like ``dag-scope=block``; on a directory it is ignored.

Refusals: not a CID, or a CID with a codec or hash other than raw/dag-pb and sha2-256: 400. No ``format`` and no
``Accept``: 400 (the spec's strict trustless mode). An ``Accept`` without a trustless type (a browser's
``text/html``, ``*/*``): 406 (nothing is ever deserialized). A root block not stored: 404 (412 with
``Cache-Control: only-if-cached``). A CAR whose DAG (what the scope covers) is not wholly stored, or a path that
does not resolve: 404, decided before the 200 is sent; a HAMT-sharded directory on the path or as an entity:
501. ``bafkqaaa`` (the empty identity CID) answers the spec's probe: an empty raw block, a CAR with that root and
no blocks.

Headers: ``Etag`` (``"<cid>.raw"``; ``"<cid>.car.<scope>.dfs-<dups>[.bytes-<first>-<last>][.<path hash>]"``: the
order is deterministic, so the tag is strong), ``If-None-Match`` → 304, ``Cache-Control: public, max-age=29030400,
immutable``, ``Content-Disposition: attachment; filename="<cid>.car|.bin"`` (``?filename=`` overrides),
``X-Content-Type-Options: nosniff``, ``X-Ipfs-Path``, ``X-Ipfs-Roots`` (the CID of every path segment),
``Content-Location`` when the format came from ``Accept`` alone, ``Vary: Accept``. No ``Accept-Ranges``: Range
requests are not implemented (a ``Range`` header is ignored and the whole body is sent, as RFC 9110 allows).

A block found damaged while a CAR is streamed (leaves are checked for presence, not hashed, before the 200) ends
the response without its final chunk, so the client sees a truncated transfer, never a short CAR that looks
complete. Imports FastAPI/Starlette and the artifact modules only; nothing from the web app or the database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from multiformats import CID

from orchestrator.adapters.artifacts.car import header_bytes, section_bytes
from orchestrator.adapters.artifacts.local import LocalArtifactStore
from orchestrator.adapters.artifacts.unixfs import (
    DAG_PB,
    RAW,
    Cid,
    UnixfsData,
    UnixfsType,
    decode_pbnode,
    decode_unixfs,
)
from orchestrator.domain.errors import ArtifactCorrupt, ArtifactError, ArtifactNotFound, DeworkerError

log = logging.getLogger(__name__)

RAW_TYPE = "application/vnd.ipld.raw"
CAR_TYPE = "application/vnd.ipld.car"
CACHE_CONTROL = "public, max-age=29030400, immutable"
DEFAULT_PORT = 8480
"""``deworker artifact serve``'s default port."""
MAX_DUPS_SECTIONS = 1_000_000
"""A dups=y CAR with more sections than this is refused: a DAG that links one block many times over (a 2-way
fan-out repeated 40 levels deep is a trillion sections) would otherwise stream forever."""
IDENTITY_PROBE = b"\x01\x55\x00\x00"
"""``bafkqaaa`` in binary: CIDv1, raw, identity multihash of nothing (the spec's probe CID)."""

Format = Literal["raw", "car"]
Scope = Literal["all", "entity", "block"]
_SCOPES: tuple[Scope, ...] = ("all", "entity", "block")


class GatewayRefusal(DeworkerError):
    """A request answered with an error status (raised inside the handler, turned into a plain-text response)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ------------------------------------------------------------------------------------------------ negotiation


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One element of an ``Accept`` header: ``type/subtype`` (lower case), its parameters and its weight."""

    type: str
    params: Mapping[str, str] = field(default_factory=dict)
    q: float = 1.0


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an ``Accept`` header, most preferred first (ties keep their order); ``q=0`` dropped."""
    ranges: list[MediaRange] = []
    for element in header.split(","):
        pieces = [piece.strip() for piece in element.split(";")]
        if not pieces[0]:
            continue
        params: dict[str, str] = {}
        q = 1.0
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"').lower()
            if key == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
            elif key:
                params[key] = value
        if q > 0:
            ranges.append(MediaRange(pieces[0].lower(), params, q))
    return sorted(ranges, key=lambda r: -r.q)


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What a request asked for, once ``format``, ``Accept`` and the CAR query parameters are combined."""

    format: Format
    dups: bool = False
    scope: Scope = "all"
    by_accept: bool = False
    """The format came from ``Accept`` alone (so ``Content-Location`` names the ``?format=`` URL)."""
    entity_bytes: tuple[int, int | None] | None = None
    """``entity-bytes=from:to`` parsed (resolved against the file's size once it is known; None for ``*``)."""


def _car_variant(params: Mapping[str, str]) -> bool | None:
    """``dups`` (True for ``y``) if this gateway can produce the CAR variant these parameters ask for, else None."""
    if params.get("version", "1") != "1":
        return None
    if params.get("order", "dfs") not in ("dfs", "unk", ""):
        return None
    dups = params.get("dups", "n")
    return None if dups not in ("y", "n") else dups == "y"


def negotiate(query: Mapping[str, str], accept: str | None) -> Negotiated:
    """The response format and CAR variant for a request, or a ``GatewayRefusal`` (400 or 406) saying why not."""
    wanted = query.get("format")
    if wanted is not None and wanted not in ("raw", "car"):
        raise GatewayRefusal(
            400, f"format={wanted!r} is not served here: this trustless gateway answers format=raw and format=car"
        )
    ranges = parse_accept(accept or "")
    fmt: Format | None = None
    dups = False
    car_refused = False  # Accept named only CAR variants this gateway cannot produce
    for media in ranges:
        if media.type == RAW_TYPE and wanted in (None, "raw"):
            fmt = "raw"
            break
        if media.type == CAR_TYPE and wanted in (None, "car"):
            variant = _car_variant(media.params)
            if variant is None:
                car_refused = True
                continue
            fmt, dups = "car", variant
            break
    if fmt is None:
        if car_refused:
            raise GatewayRefusal(
                406,
                "no CAR variant in Accept can be served: this gateway sends application/vnd.ipld.car; version=1; "
                "order=dfs; dups=n (or dups=y)",
            )
        if wanted is not None:  # format= wins over an Accept that names other types
            fmt = "raw" if wanted == "raw" else "car"
        elif not ranges:
            raise GatewayRefusal(
                400,
                "this is a trustless gateway: ask for a verifiable format with ?format=car or ?format=raw (or "
                f"Accept: {CAR_TYPE} / {RAW_TYPE})",
            )
        else:
            raise GatewayRefusal(
                406,
                f"this trustless gateway never deserializes content: it sends only {RAW_TYPE} and {CAR_TYPE} "
                "(add ?format=raw or ?format=car)",
            )
    if fmt == "raw":
        return Negotiated("raw", by_accept=wanted is None)
    dups = _query_car_params(query, dups)
    scope = next((s for s in _SCOPES if s == query.get("dag-scope", "all")), None)
    if scope is None:
        raise GatewayRefusal(400, f"dag-scope={query['dag-scope']!r} is not one of block, entity, all")
    entity_bytes = None
    if "entity-bytes" in query:
        entity_bytes = parse_entity_bytes(query["entity-bytes"])
        scope = "entity"  # entity-bytes implies dag-scope=entity
    return Negotiated("car", dups=dups, scope=scope, by_accept=wanted is None, entity_bytes=entity_bytes)


def _query_car_params(query: Mapping[str, str], dups: bool) -> bool:
    """``car-version``, ``car-order`` and ``car-dups`` from the URL: they take precedence over ``Accept``."""
    if query.get("car-version", "1") != "1":
        raise GatewayRefusal(400, f"car-version={query['car-version']!r}: only CARv1 is served (car-version=1)")
    if query.get("car-order", "dfs") not in ("dfs", "unk"):
        raise GatewayRefusal(400, f"car-order={query['car-order']!r}: only car-order=dfs is served (or unk)")
    if "car-dups" in query:
        if query["car-dups"] not in ("y", "n"):
            raise GatewayRefusal(400, f"car-dups={query['car-dups']!r}: use car-dups=y or car-dups=n")
        return query["car-dups"] == "y"
    return dups


# ----------------------------------------------------------------------------------------------------- DAGs


@dataclass(frozen=True, slots=True)
class CarPlan:
    """The blocks a CAR response will carry, decided (and checked to be stored) before the 200 is sent."""

    root: Cid
    path_blocks: tuple[Cid, ...]
    """The directory blocks from the root down to (not including) the terminus, in path order."""
    terminus: Cid
    scope: Scope
    dups: bool
    byte_range: tuple[int, int] | None = None
    """``entity-bytes`` resolved: the first and last byte (inclusive) of the terminus file to cover."""

    @property
    def logical_roots(self) -> tuple[Cid, ...]:
        return (*self.path_blocks, self.terminus)


_Key = tuple[Cid, int]
"""A block as the walk meets it: its CID and the offset of its first byte in the file (0 without a byte range)."""


def parse_entity_bytes(text: str) -> tuple[int, int | None]:
    """``from:to`` as (from, to), ``to`` None for ``*``; negatives count from the end. 400 if malformed."""
    first_text, sep, last_text = text.partition(":")
    try:
        if not sep:
            raise ValueError(text)
        return int(first_text), None if last_text == "*" else int(last_text)
    except ValueError:
        raise GatewayRefusal(400, f"entity-bytes={text!r}: expected from:to, e.g. 0:1023, -1024:* or 0:*") from None


def resolve_entity_bytes(bounds: tuple[int, int | None], size: int) -> tuple[int, int] | None:
    """The inclusive byte range ``bounds`` covers in a ``size``-byte file; None for a zero-length range (answered
    like ``dag-scope=block``); 400 for a range that starts past the end."""
    first, last = bounds
    first = first if first >= 0 else max(size + first, 0)
    last = size - 1 if last is None else min(last if last >= 0 else size + last, size - 1)
    if first >= size:
        raise GatewayRefusal(400, f"entity-bytes starts at byte {first}, after the end of the {size}-byte file")
    return None if last < first else (first, last)


class GatewayDags:
    """Path resolution, completeness checks and the block stream, over one ``LocalArtifactStore``."""

    def __init__(self, store: LocalArtifactStore) -> None:
        self.store = store

    def _unixfs(self, cid: Cid, block: bytes) -> UnixfsData | None:
        """The UnixFS data of a dag-pb block (None for a raw block or a dag-pb node without UnixFS data)."""
        if cid.codec != DAG_PB:
            return None
        node = decode_pbnode(block)
        return None if node.data is None else decode_unixfs(node.data)

    def resolve(self, root: Cid, segments: list[str], wanted: Negotiated) -> CarPlan:
        """Walk ``segments`` from ``root`` through flat UnixFS directories (404 for a name that is not there), then
        resolve ``entity-bytes`` against the file at the end."""
        path: list[Cid] = []
        cid = root
        for depth, name in enumerate(segments):
            block = self.store.get_block(cid)
            unixfs = self._unixfs(cid, block)
            kind = None if unixfs is None else unixfs.type
            here = "/".join(segments[:depth]) or "the root"
            if kind == UnixfsType.HAMT_SHARD:
                raise GatewayRefusal(
                    501, f"{cid} ({here}) is a HAMT-sharded directory: paths through it are not served"
                )
            if kind != UnixfsType.DIRECTORY:
                raise GatewayRefusal(404, f"no {name!r} under {here}: {cid} is not a directory")
            link = next((link for link in decode_pbnode(block).links if link.name == name), None)
            if link is None:
                raise GatewayRefusal(404, f"no entry {name!r} in directory {cid} ({here})")
            path.append(cid)
            cid = link.cid
        plan = CarPlan(root, tuple(path), cid, wanted.scope, wanted.dups)
        if wanted.entity_bytes is None:
            return plan
        block = self.store.get_block(cid)
        unixfs = self._unixfs(cid, block)
        if unixfs is None and cid.codec == RAW:
            size = len(block)
        elif unixfs is not None and unixfs.type in (UnixfsType.FILE, UnixfsType.RAW):
            size = unixfs.filesize if unixfs.filesize is not None else len(unixfs.data or b"") + sum(unixfs.blocksizes)
        else:
            return plan  # not a byte array (a directory...): entity-bytes is ignored, as the spec says
        byte_range = resolve_entity_bytes(wanted.entity_bytes, size)
        if byte_range is None:
            return dataclasses.replace(plan, scope="block")
        return dataclasses.replace(plan, byte_range=byte_range)

    def _children(self, key: _Key, block: bytes, plan: CarPlan, *, at_terminus: bool) -> list[_Key]:
        """What to follow under a block of the terminus DAG, for the plan's scope and byte range."""
        cid, offset = key
        if cid.codec != DAG_PB or plan.scope == "block":
            return []
        node = decode_pbnode(block)
        if plan.scope == "all":
            return [(link.cid, 0) for link in node.links]
        # entity: a file's DAG (only what covers the byte range, if any); a directory's (or symlink's) own block
        if at_terminus:
            unixfs = self._unixfs(cid, block)
            kind = None if unixfs is None else unixfs.type
            if kind == UnixfsType.HAMT_SHARD:
                raise GatewayRefusal(501, f"{cid} is a HAMT-sharded directory: dag-scope=entity is not served for it")
            if kind not in (UnixfsType.FILE, UnixfsType.RAW):
                return []
        if plan.byte_range is None:
            return [(link.cid, 0) for link in node.links]
        unixfs = self._unixfs(cid, block)
        if unixfs is None or len(unixfs.blocksizes) != len(node.links):
            raise ArtifactError(f"malformed UnixFS file node {cid}: its blocksizes do not match its links")
        first, last = plan.byte_range
        start = offset + len(unixfs.data or b"")  # a node's own data comes before its children's
        wanted: list[_Key] = []
        for link, size in zip(node.links, unixfs.blocksizes, strict=True):
            if size and start <= last and start + size - 1 >= first:
                wanted.append((link.cid, start))
            start += size
        return wanted

    def check(self, plan: CarPlan) -> None:
        """Raise ``ArtifactNotFound`` unless every block the plan will send is stored. dag-pb blocks are read and
        verified (their links are needed); raw leaves are only looked up. With ``dups``, also refuse (400) a DAG
        whose blocks recur so often that the stream would exceed ``MAX_DUPS_SECTIONS``."""
        top: _Key = (plan.terminus, 0)
        children: dict[_Key, list[_Key]] = {}
        stack = [top]
        while stack:
            key = stack.pop()
            if key in children:
                continue
            cid = key[0]
            if cid.codec == RAW and key != top:
                if not self.store.has_block(cid):
                    raise ArtifactNotFound(f"block {cid} of {plan.terminus} is not stored here")
                children[key] = []
                continue
            block = self.store.get_block(cid)
            children[key] = self._children(key, block, plan, at_terminus=key == top)
            stack.extend(child for child in children[key] if child not in children)
        if plan.dups and _occurrences(top, children) > MAX_DUPS_SECTIONS:
            raise GatewayRefusal(
                400,
                f"with dups=y the CAR of {plan.terminus} would have more than {MAX_DUPS_SECTIONS} sections: "
                "ask for dups=n",
            )

    def blocks(self, plan: CarPlan) -> Iterator[tuple[Cid, bytes]]:
        """The plan's blocks, read lazily, depth-first pre-order; with ``dups`` every occurrence, else each once
        (a block met again at another file offset is walked again for the byte range, not sent again)."""
        sent: set[Cid] = set()
        for cid in plan.path_blocks:
            if plan.dups or cid not in sent:
                sent.add(cid)
                yield cid, self.store.get_block(cid)
        top: _Key = (plan.terminus, 0)
        walked: set[_Key] = set()
        stack = [top]
        while stack:
            key = stack.pop()
            cid = key[0]
            if not plan.dups:
                if key in walked:
                    continue
                walked.add(key)
            block = self.store.get_block(cid)
            if plan.dups or cid not in sent:
                sent.add(cid)
                yield cid, block
            stack.extend(reversed(self._children(key, block, plan, at_terminus=key == top)))


def _occurrences(root: _Key, children: Mapping[_Key, list[_Key]]) -> int:
    """How many sections a dups=y walk from ``root`` sends: every block once per path to it (memoized)."""
    counts: dict[_Key, int] = {}
    stack = [root]
    while stack:
        cid = stack[-1]
        pending = [child for child in children[cid] if child not in counts]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        counts[cid] = 1 + sum(counts[child] for child in children[cid])
    return counts[root]


# --------------------------------------------------------------------------------------------------- handler


def _is_identity_probe(text: str) -> bool:
    try:
        parsed = CID.decode(text)
    except (ValueError, LookupError):
        return False
    return bool(parsed.version == 1 and parsed.codec.code == RAW and parsed.hashfun.code == 0 and not parsed.raw_digest)


def _disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and, for other characters, an RFC 8187 ``filename*``."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _plain(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        message + "\n",
        status_code=status,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", **(headers or {})},
    )


class TrustlessGateway:
    """The request handler; ``router()`` gives the FastAPI routes."""

    def __init__(self, store: LocalArtifactStore) -> None:
        self.dags = GatewayDags(store)

    def router(self) -> APIRouter:
        router = APIRouter(tags=["ipfs"])
        for path in ("/ipfs/{cid}", "/ipfs/{cid}/{content_path:path}"):
            router.add_api_route(
                path,
                self.handle,
                methods=["GET", "HEAD"],
                include_in_schema=path == "/ipfs/{cid}",
                summary="IPFS trustless gateway: a stored block (?format=raw) or DAG (?format=car), verifiable",
                response_class=Response,
            )
        return router

    def handle(self, request: Request) -> Response:
        """``GET``/``HEAD /ipfs/{cid}[/{path}]``: see the module docstring. Runs in FastAPI's thread pool."""
        try:
            return self._handle(request)
        except GatewayRefusal as refusal:
            return _plain(refusal.status, refusal.message, {"Vary": "Accept"})
        except ArtifactNotFound as exc:
            status = 412 if "only-if-cached" in request.headers.get("cache-control", "") else 404
            return _plain(status, exc.message, {"Vary": "Accept"})
        except ArtifactCorrupt as exc:
            log.error("trustless gateway: %s", exc.message)
            return _plain(500, f"the stored copy is damaged: {exc.message}")
        except ArtifactError as exc:
            log.error("trustless gateway: %s", exc.message)
            return _plain(500, exc.message)

    def _handle(self, request: Request) -> Response:
        text: str = request.path_params["cid"]
        segments = [s for s in str(request.path_params.get("content_path", "")).split("/") if s]
        if request.headers.get("service-worker") == "script":
            raise GatewayRefusal(400, "a service worker cannot be registered on a trustless gateway")
        if any(s in (".", "..") for s in segments):
            raise GatewayRefusal(400, "'.' and '..' are not allowed in a content path")
        query = dict(request.query_params)
        wanted = negotiate(query, request.headers.get("accept"))
        if _is_identity_probe(text):
            if segments:
                raise GatewayRefusal(400, f"{text} is a raw block: it has no content path")
            return self._probe(request, wanted)
        try:
            cid = Cid.parse(text)
        except ArtifactError as exc:
            raise GatewayRefusal(400, exc.message) from None
        if not self.dags.store.has_block(cid):
            raise ArtifactNotFound(f"{cid} is not stored on this gateway (it serves only its own artifacts)")
        headers = {
            "Cache-Control": CACHE_CONTROL,
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept",
            "X-Ipfs-Path": "/ipfs/" + quote("/".join([text, *segments])),
        }
        if wanted.by_accept:
            location = urlencode({**query, "format": wanted.format})
            headers["Content-Location"] = f"{quote(request.url.path)}?{location}"
        if wanted.format == "raw":
            return self._raw(request, cid, segments, headers, query)
        return self._car(request, cid, segments, wanted, headers, query)

    def _raw(
        self, request: Request, cid: Cid, segments: list[str], headers: dict[str, str], query: Mapping[str, str]
    ) -> Response:
        if segments:
            raise GatewayRefusal(400, "format=raw serves one block: a content path is only allowed with format=car")
        block = self.dags.store.get_block(cid)
        headers |= {
            "Etag": f'"{cid}.raw"',
            "X-Ipfs-Roots": str(cid),
            "Content-Disposition": _disposition(query.get("filename") or f"{cid}.bin"),
        }
        if _etag_matches(request.headers.get("if-none-match"), headers["Etag"]):
            return Response(status_code=304, headers=headers)
        headers["Content-Length"] = str(len(block))
        body = b"" if request.method == "HEAD" else block
        return Response(body, media_type=RAW_TYPE, headers=headers)

    def _car(
        self,
        request: Request,
        cid: Cid,
        segments: list[str],
        wanted: Negotiated,
        headers: dict[str, str],
        query: Mapping[str, str],
    ) -> Response:
        plan = self.dags.resolve(cid, segments, wanted)
        self.dags.check(plan)
        dups = "y" if wanted.dups else "n"
        etag = f"{cid}.car.{plan.scope}.dfs-{dups}"
        if plan.byte_range is not None:
            etag += f".bytes-{plan.byte_range[0]}-{plan.byte_range[1]}"
        if segments:
            etag += "." + hashlib.sha256("/".join(segments).encode()).hexdigest()[:16]
        headers |= {
            "Etag": f'"{etag}"',
            "X-Ipfs-Roots": ",".join(str(c) for c in plan.logical_roots),
            "Content-Disposition": _disposition(query.get("filename") or f"{cid}.car"),
        }
        if _etag_matches(request.headers.get("if-none-match"), headers["Etag"]):
            return Response(status_code=304, headers=headers)
        media_type = f"{CAR_TYPE}; version=1; order=dfs; dups={dups}"
        if request.method == "HEAD":
            return _bodiless(media_type, headers)
        return StreamingResponse(self._stream(plan), media_type=media_type, headers=headers)

    def _stream(self, plan: CarPlan) -> Iterator[bytes]:
        yield header_bytes([plan.root])
        try:
            for cid, block in self.dags.blocks(plan):
                yield section_bytes(cid, block)
        except ArtifactError as exc:
            # The 200 is already sent: abort the transfer (no final chunk) so the client cannot take it as whole.
            log.error("trustless gateway: CAR of %s aborted mid-stream: %s", plan.root, exc.message)
            raise

    def _probe(self, request: Request, wanted: Negotiated) -> Response:
        """``/ipfs/bafkqaaa``: the spec's probe, answered without touching the store."""
        headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff", "Vary": "Accept"}
        if wanted.format == "raw":
            headers |= {"Etag": '"bafkqaaa.raw"', "Content-Disposition": _disposition("bafkqaaa.bin")}
            return Response(b"", media_type=RAW_TYPE, headers=headers)
        dups = "y" if wanted.dups else "n"
        headers |= {"Etag": f'"bafkqaaa.car.{wanted.scope}.dfs-{dups}"'}
        headers["Content-Disposition"] = _disposition("bafkqaaa.car")
        media_type = f"{CAR_TYPE}; version=1; order=dfs; dups={dups}"
        if request.method == "HEAD":
            return _bodiless(media_type, headers)
        return Response(header_bytes([IDENTITY_PROBE]), media_type=media_type, headers=headers)


def _bodiless(media_type: str, headers: Mapping[str, str]) -> Response:
    """A HEAD answer for a streamed body: the GET's headers, without a ``Content-Length`` of 0."""
    response = Response(None, media_type=media_type, headers=headers)
    if "content-length" in response.headers:
        del response.headers["content-length"]
    return response


def gateway_router(store: LocalArtifactStore) -> APIRouter:
    """The ``/ipfs/`` routes serving ``store``, for mounting in another FastAPI app (the review app does)."""
    return TrustlessGateway(store).router()


def create_gateway_app(store: LocalArtifactStore) -> FastAPI:
    """A FastAPI app that is only the trustless gateway (``deworker artifact serve``)."""
    app = FastAPI(
        title="Deworker trustless gateway",
        summary="The artifacts this machine stores, as verifiable raw blocks and CARs by CID.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(gateway_router(store))
    return app

"""CARv1 (https://ipld.io/specs/transport/car/carv1/): the archive IPFS moves DAGs in, read and written here.

Layout
    ``varint(len(header)) header`` then, for every block, ``varint(len(cid) + len(block)) cid block``. The header
    is a DAG-CBOR map ``{"roots": [CID, ...], "version": 1}``; a CID in DAG-CBOR is tag 42 around a byte string
    holding ``0x00`` and the binary CID. A block's CID is written in binary: CIDv1, or a 34-byte CIDv0.

Reading is streaming and untrusted: the header is bounded (``MAX_HEADER_BYTES``), every section is bounded
(``MAX_BLOCK_BYTES``, the size IPFS peers refuse above), the whole archive can be bounded by the caller, and every
block is hashed against its CID before it is handed on (``ArtifactCorrupt`` otherwise). Writing emits the header
and the blocks of a DAG in depth-first pre-order, without duplicates (``order=dfs; dups=n`` in the trustless
gateway's terms).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from orchestrator.adapters.artifacts.unixfs import DAG_PB, BlockSource, Cid, _varint, decode_pbnode
from orchestrator.domain.errors import ArtifactCorrupt, ArtifactError, ArtifactTooLarge

MAX_HEADER_BYTES = 65_536
"""A CARv1 header longer than this is refused (a real one with a few roots is under 100 bytes)."""
MAX_BLOCK_BYTES = 2 * 1024 * 1024
"""A block longer than this is refused: IPFS peers (bitswap) do not exchange blocks above 2 MiB."""
CONTENT_TYPE = "application/vnd.ipld.car"
_MAX_VARINT_BYTES = 9


@dataclass(frozen=True, slots=True)
class CarHeader:
    """The roots a CARv1 declares (``version`` is always 1 here)."""

    roots: tuple[Cid, ...]


# ---------------------------------------------------------------------------------------------------- writing


def _cbor_head(major: int, n: int) -> bytes:
    """A CBOR item head with the shortest length encoding (DAG-CBOR requires it)."""
    if n < 24:
        return bytes((major << 5 | n,))
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes((major << 5 | info,)) + n.to_bytes(width, "big")
    raise ValueError(f"CBOR length {n} is too large")  # pragma: no cover


def encode_header(roots: Sequence[Cid | bytes]) -> bytes:
    """The DAG-CBOR header ``{"roots": [...], "version": 1}`` (keys in DAG-CBOR order: shorter first). A root
    given as ``bytes`` is a binary CID written as it is (the gateway's identity probe CID ``bafkqaaa``, which
    ``Cid`` does not model)."""
    out = bytearray(_cbor_head(5, 2))
    out += _cbor_head(3, 5) + b"roots" + _cbor_head(4, len(roots))
    for root in roots:
        raw = b"\x00" + (root if isinstance(root, bytes) else root.to_binary())
        out += b"\xd8\x2a" + _cbor_head(2, len(raw)) + raw
    out += _cbor_head(3, 7) + b"version" + _cbor_head(0, 1)
    return bytes(out)


def header_bytes(roots: Sequence[Cid | bytes]) -> bytes:
    """The first bytes of a CARv1 with these roots: the length-prefixed header."""
    header = encode_header(roots)
    return _varint(len(header)) + header


def section_bytes(cid: Cid, block: bytes) -> bytes:
    """One length-prefixed block section."""
    raw = cid.to_binary()
    return _varint(len(raw) + len(block)) + raw + block


def dag_blocks(root: Cid, load: BlockSource) -> Iterator[tuple[Cid, bytes]]:
    """Every block of the DAG under ``root`` with its bytes, depth-first pre-order, each block once."""
    seen = {root}
    stack = [root]
    while stack:
        cid = stack.pop()
        block = load(cid)
        yield cid, block
        if cid.codec == DAG_PB:
            for link in reversed(decode_pbnode(block).links):
                if link.cid not in seen:
                    seen.add(link.cid)
                    stack.append(link.cid)


def iter_car(roots: Sequence[Cid], blocks: Iterable[tuple[Cid, bytes]]) -> Iterator[bytes]:
    """A CARv1 as a stream of byte strings: the header, then one piece per block."""
    yield header_bytes(roots)
    for cid, block in blocks:
        yield section_bytes(cid, block)


def write_car(out: BinaryIO, root: Cid, load: BlockSource) -> int:
    """Write the DAG under ``root`` as a CARv1 with that one root; return the number of bytes written."""
    written = 0
    for piece in iter_car([root], dag_blocks(root, load)):
        out.write(piece)
        written += len(piece)
    return written


# ---------------------------------------------------------------------------------------------------- reading


class CarReader:
    """Reads a CARv1 from a binary stream: ``header`` first (read on construction), then ``blocks()``.

    ``max_bytes`` bounds the whole archive (header included): past it, ``ArtifactTooLarge``. Malformed input
    raises ``ArtifactError``; a block that does not hash to its CID raises ``ArtifactCorrupt``. ``source`` names
    where the bytes come from, in messages.
    """

    def __init__(self, stream: BinaryIO, *, max_bytes: int | None = None, source: str = "CAR") -> None:
        self._stream = stream
        self._limit = max_bytes
        self._read_total = 0
        self.source = source
        length = self._varint(allow_eof=False)
        assert length is not None
        if length == 0 or length > MAX_HEADER_BYTES:
            raise ArtifactError(f"{source}: a CAR header of {length} bytes is refused (at most {MAX_HEADER_BYTES})")
        self.header = _decode_header(self._exact(length), source)

    def _exact(self, n: int) -> bytes:
        if self._limit is not None and self._read_total + n > self._limit:
            raise ArtifactTooLarge(f"{self.source}: the CAR is larger than the limit of {self._limit} bytes")
        data = self._stream.read(n)
        while len(data) < n:
            more = self._stream.read(n - len(data))
            if not more:
                raise ArtifactError(f"{self.source}: the CAR ends in the middle of a section (truncated)")
            data += more
        self._read_total += n
        return data

    def _varint(self, *, allow_eof: bool) -> int | None:
        value = shift = 0
        for i in range(_MAX_VARINT_BYTES):
            byte = self._stream.read(1)
            if not byte:
                if i == 0 and allow_eof:
                    return None
                raise ArtifactError(f"{self.source}: the CAR ends inside a length prefix (truncated)")
            self._read_total += 1
            value |= (byte[0] & 0x7F) << shift
            if not byte[0] & 0x80:
                if i > 0 and byte[0] == 0:
                    raise ArtifactError(f"{self.source}: a length prefix is not minimally encoded")
                return value
            shift += 7
        raise ArtifactError(f"{self.source}: a length prefix is longer than {_MAX_VARINT_BYTES} bytes")

    def blocks(self) -> Iterator[tuple[Cid, bytes]]:
        """Every block in archive order, each verified against its CID before it is yielded."""
        while (length := self._varint(allow_eof=True)) is not None:
            if length > MAX_BLOCK_BYTES + 64:
                raise ArtifactError(f"{self.source}: a CAR section of {length} bytes is larger than any IPFS block")
            section = self._exact(length)
            cid, offset = _binary_cid(section, self.source)
            block = section[offset:]
            try:
                cid.verify(block)
            except ArtifactCorrupt as exc:
                raise ArtifactCorrupt(f"{self.source}: {exc.message}", hint="the sender's copy is wrong") from None
            yield cid, block


def read_car(data: bytes, *, source: str = "CAR") -> tuple[CarHeader, list[tuple[Cid, bytes]]]:
    """A whole CARv1 held in memory: its header and its blocks, every one verified."""
    import io

    reader = CarReader(io.BytesIO(data), source=source)
    return reader.header, list(reader.blocks())


def _binary_cid(section: bytes, source: str) -> tuple[Cid, int]:
    """The binary CID at the start of a section and where the block starts."""
    if len(section) >= 34 and section[0] == 0x12 and section[1] == 0x20:  # CIDv0: a bare sha2-256 multihash
        return Cid.from_binary(section[:34]), 34
    pos = 0
    fields = []
    for _ in range(4):  # version, codec, multihash code, digest length
        value = shift = 0
        while True:
            if pos >= len(section) or shift > 56:
                raise ArtifactError(f"{source}: a CAR section does not start with a valid CID")
            byte = section[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        fields.append(value)
    end = pos + fields[3]
    if end > len(section):
        raise ArtifactError(f"{source}: a CAR section ends inside its CID")
    return Cid.from_binary(section[:end]), end


@dataclass(frozen=True, slots=True)
class _Link:
    """A DAG-CBOR CID (tag 42) met while decoding the header."""

    raw: bytes


_MAX_CBOR_DEPTH = 8


def _cbor_item(raw: bytes, pos: int, depth: int) -> tuple[object, int]:
    """One DAG-CBOR item at ``pos``: a bounded recursive decoder for the header only (depth at most 8), so
    hostile nesting never reaches the interpreter's recursion limit or a C stack."""
    if depth > _MAX_CBOR_DEPTH:
        raise ValueError(f"nested deeper than {_MAX_CBOR_DEPTH} levels")
    if pos >= len(raw):
        raise ValueError("ends early")
    major, info = raw[pos] >> 5, raw[pos] & 0x1F
    pos += 1
    if major == 7:  # simple values and floats
        simple = {20: False, 21: True, 22: None}
        if info in simple:
            return simple[info], pos
        widths = {25: 2, 26: 4, 27: 8}
        if info in widths:
            return float("nan"), pos + widths[info]
        raise ValueError(f"unsupported simple value {info}")
    if info < 24:
        n = info
    elif info <= 27:
        width = 1 << (info - 24)
        if pos + width > len(raw):
            raise ValueError("ends early")
        n = int.from_bytes(raw[pos : pos + width], "big")
        pos += width
    else:
        raise ValueError("indefinite lengths are not DAG-CBOR")
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        if pos + n > len(raw):
            raise ValueError("ends early")
        chunk = raw[pos : pos + n]
        return (bytes(chunk) if major == 2 else chunk.decode("utf-8")), pos + n
    if major == 4:
        items = []
        for _ in range(n):
            item, pos = _cbor_item(raw, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        doc: dict[object, object] = {}
        for _ in range(n):
            key, pos = _cbor_item(raw, pos, depth + 1)
            value, pos = _cbor_item(raw, pos, depth + 1)
            if not isinstance(key, str):
                raise ValueError("a map key is not a string")
            doc[key] = value
        return doc, pos
    # major 6: a tag; DAG-CBOR has only tag 42 (a CID)
    value, pos = _cbor_item(raw, pos, depth + 1)
    if n != 42 or not isinstance(value, bytes):
        raise ValueError(f"tag {n} is not a DAG-CBOR CID")
    return _Link(value), pos


def _decode_header(raw: bytes, source: str) -> CarHeader:
    """Decode the DAG-CBOR header map; only ``roots`` and ``version`` are read (other keys are ignored)."""
    try:
        doc, end = _cbor_item(raw, 0, 0)
        if end != len(raw):
            raise ValueError("bytes after the header map")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{source}: the CAR header is not valid DAG-CBOR: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != 1:
        version = doc.get("version") if isinstance(doc, dict) else None
        hint = "only CARv1 is read; convert a CARv2 to CARv1 first (e.g. `ipfs dag export`)" if version == 2 else None
        raise ArtifactError(f"{source}: not a CARv1 header (version {version!r})", hint=hint)
    roots = doc.get("roots")
    if not isinstance(roots, list):
        raise ArtifactError(f"{source}: the CAR header has no list of roots")
    parsed = []
    for root in roots:
        if not isinstance(root, _Link):
            raise ArtifactError(f"{source}: a CAR root is not a DAG-CBOR CID (tag 42)")
        if not root.raw.startswith(b"\x00"):
            raise ArtifactError(f"{source}: a CAR root CID lacks the 0x00 multibase prefix")
        parsed.append(Cid.from_binary(root.raw[1:]))
    return CarHeader(roots=tuple(parsed))

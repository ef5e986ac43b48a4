"""UnixFS DAGs built and read exactly like ``ipfs add --cid-version=1 --raw-leaves`` (Kubo's defaults).

Blocks and CIDs
    Every block is named by a CIDv1 with a sha2-256 multihash, written in lower-case base32 (multibase prefix
    ``b``). Binary form: ``0x01 <codec> 0x12 0x20 <32-byte digest>``. Two codecs occur: ``raw`` (0x55,
    strings start ``bafkrei``) for file chunks, ``dag-pb`` (0x70, ``bafybei``) for every other node.

Files
    The content is cut into chunks of 262144 bytes (the last one shorter). Each chunk is a raw block, its
    bytes stored as they are. A file of one chunk, the empty file included, *is* that raw block. A longer file
    is a balanced tree: the chunks are grouped in order, 174 to a node, into dag-pb nodes; those nodes are
    grouped 174 to a node again, and so on until one root remains (a last group of one still gets its own
    parent node).
    Each such node carries ``Data = UnixFS{Type: File, filesize: sum, blocksizes: [content bytes under each
    link]}`` and one link per child with an empty name and ``Tsize`` = the child's cumulative size.

Directories
    A dag-pb node with ``Data = UnixFS{Type: Directory}`` (bytes ``08 01``) and one link per entry, sorted by
    the UTF-8 bytes of the name. A link's ``Tsize`` is the cumulative size of the child: the length of its
    block plus the ``Tsize`` of all its links (for a raw chunk, just its length). Symlinks are dag-pb nodes
    with ``Data = UnixFS{Type: Symlink, Data: target}`` and no links. Directories are always flat: Kubo
    switches to a HAMT-sharded directory once its links (name bytes + CID bytes) reach 256 KiB, and such a
    directory is refused here rather than built differently from Kubo (``HAMT_THRESHOLD``).

dag-pb encoding (https://ipld.io/specs/codecs/dag-pb/spec/)
    ``PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }`` with every Link serialized *before*
    Data; ``PBLink { bytes Hash = 1; string Name = 2; uint64 Tsize = 3; }`` with all three always present.
    The UnixFS ``Data`` message is ``{Type = 1; Data = 2; filesize = 3; repeated blocksizes = 4 (unpacked);
    hashType = 5; fanout = 6; mode = 7; mtime = 8}``; mode and mtime are never written and ignored when read.

Building walks the input once: chunks go to the caller's ``BlockSink`` as soon as they are hashed, children
always before their parent, the root last. Only the (CID, sizes) of the nodes to come stay in memory: about
100 bytes per 256 KiB of file. Reading takes a ``BlockSource`` that returns a block's bytes already checked
against its CID (``Cid.verify``), so the reader never follows a CID it did not get from a verified block.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

from multiformats import CID

from orchestrator.domain.errors import ArtifactCorrupt, ArtifactError, ArtifactTooLarge

CHUNK_SIZE = 262_144
"""Bytes per file chunk (Kubo's default ``size-262144`` chunker)."""
MAX_LINKS = 174
"""Children per file node in the balanced layout (Kubo's default)."""
HAMT_THRESHOLD = 262_144
"""Kubo shards a directory once its links (name bytes + binary CID bytes) reach this size (older Kubo: at
``>=``, newer Kubo and js-ipfs-unixfs: at ``>``); ``add_directory`` refuses from ``>=`` on, so both agree."""
RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_DIGEST_LEN = 32


# ------------------------------------------------------------------------------------------------------- CIDs


@dataclass(frozen=True, slots=True)
class Cid:
    """A CIDv1 whose multihash is sha2-256: the only kind this module makes or follows."""

    codec: int
    digest: bytes

    @classmethod
    def of(cls, codec: int, block: bytes) -> Cid:
        """The CID of ``block`` stored with ``codec`` (``RAW`` or ``DAG_PB``)."""
        return cls(codec, hashlib.sha256(block).digest())

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Read a CID string in any multibase; a CIDv0 (``Qm...``) becomes the equivalent dag-pb CIDv1.

        Raises ``ArtifactError`` for anything that is not a CID, or a CID of a codec or hash this store never
        makes (only raw and dag-pb blocks hashed with sha2-256 are supported).
        """
        if not isinstance(text, str):
            raise ArtifactError(f"invalid CID {text!r}: expected a string such as 'bafkrei...'")
        try:
            parsed = CID.decode(text)
        # multiformats raises subclasses of ValueError and KeyError (bad multibase, bad varint, bad length).
        except (ValueError, LookupError) as exc:
            raise ArtifactError(
                f"invalid CID {text!r}: {exc}",
                hint="pass the whole CID, as `deworker artifact add` or `dao tasks --wide` prints it ('baf...')",
            ) from exc
        return cls._checked(parsed.codec.code, parsed.hashfun.code, parsed.raw_digest, text)

    @classmethod
    def from_binary(cls, raw: bytes) -> Cid:
        """Read a binary CID from a dag-pb link (CIDv1, or the 34-byte CIDv0 of Kubo's older DAGs)."""
        if len(raw) == 2 + _DIGEST_LEN and raw[0] == SHA2_256 and raw[1] == _DIGEST_LEN:
            return cls(DAG_PB, bytes(raw[2:]))
        version, pos = _read_varint(raw, 0)
        codec, pos = _read_varint(raw, pos)
        hashfun, pos = _read_varint(raw, pos)
        length, pos = _read_varint(raw, pos)
        if version != 1 or len(raw) - pos != length:
            raise ArtifactError(f"malformed binary CID {raw.hex()} in a dag-pb link")
        return cls._checked(codec, hashfun, raw[pos:], raw.hex())

    @classmethod
    def _checked(cls, codec: int, hashfun: int, digest: bytes, shown: str) -> Cid:
        if codec not in (RAW, DAG_PB):
            raise ArtifactError(f"unsupported CID {shown}: codec 0x{codec:x}; only raw (0x55) and dag-pb (0x70)")
        if hashfun != SHA2_256 or len(digest) != _DIGEST_LEN:
            raise ArtifactError(f"unsupported CID {shown}: multihash 0x{hashfun:x}; only sha2-256 is supported")
        return cls(codec, bytes(digest))

    def to_binary(self) -> bytes:
        """``0x01 <codec> 0x12 0x20 <digest>``: both codecs fit in a one-byte varint."""
        return bytes((1, self.codec, SHA2_256, _DIGEST_LEN)) + self.digest

    def verify(self, block: bytes) -> None:
        """Raise ``ArtifactCorrupt`` unless ``block`` hashes to this CID."""
        actual = hashlib.sha256(block).digest()
        if actual != self.digest:
            raise ArtifactCorrupt(
                f"block {self} does not match its CID: its {len(block)} bytes hash to {actual.hex()}",
                hint="the stored copy is damaged; delete it and put the artifact again",
            )

    def __str__(self) -> str:
        return "b" + base64.b32encode(self.to_binary()).decode("ascii").lower().rstrip("=")


BlockSink = Callable[[Cid, bytes], None]
"""Receives every block of a DAG being built, children before parents."""
BlockSource = Callable[[Cid], bytes]
"""Returns a block's bytes, verified against the CID; raises ``ArtifactNotFound`` or ``ArtifactCorrupt``."""


@dataclass(frozen=True, slots=True)
class DagRef:
    """The root of a DAG just built, and its cumulative size (what a parent link's ``Tsize`` carries)."""

    cid: Cid
    tsize: int


# ------------------------------------------------------------------------------------------- protobuf, dag-pb


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise ArtifactError("malformed protobuf: truncated or overlong varint")


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message; only varint and length-delimited fields occur."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ArtifactError("malformed protobuf: field runs past the end of the block")
            yield number, buf[pos : pos + length]
            pos += length
        else:
            raise ArtifactError(f"malformed dag-pb/UnixFS: unexpected wire type {wire} for field {number}")


def _bytes_field(value: int | bytes, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise ArtifactError(f"malformed dag-pb/UnixFS: {what} should be length-delimited")
    return value


def _int_field(value: int | bytes, what: str) -> int:
    if not isinstance(value, int):
        raise ArtifactError(f"malformed dag-pb/UnixFS: {what} should be a varint")
    return value


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@dataclass(frozen=True, slots=True)
class PBLink:
    """A dag-pb link: the child's CID, the entry name ("" inside a file), the child's cumulative size."""

    cid: Cid
    name: str
    tsize: int


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def encode_pbnode(node: PBNode) -> bytes:
    """Canonical dag-pb bytes: every link (Hash, Name, Tsize), then Data."""
    out = bytearray()
    for link in node.links:
        body = (
            _length_delimited(1, link.cid.to_binary())
            + _length_delimited(2, link.name.encode("utf-8"))
            + _varint(3 << 3)
            + _varint(link.tsize)
        )
        out += _length_delimited(2, body)
    if node.data is not None:
        out += _length_delimited(1, node.data)
    return bytes(out)


def decode_pbnode(block: bytes) -> PBNode:
    """Parse a dag-pb block. Raises ``ArtifactError`` if it is not dag-pb."""
    links: list[PBLink] = []
    data: bytes | None = None
    for number, value in _fields(block):
        if number == 1:
            data = _bytes_field(value, "PBNode.Data")
        elif number == 2:
            links.append(_decode_link(_bytes_field(value, "PBNode.Links")))
        else:
            raise ArtifactError(f"malformed dag-pb: unknown PBNode field {number}")
    return PBNode(tuple(links), data)


def _decode_link(buf: bytes) -> PBLink:
    cid: Cid | None = None
    name, tsize = "", 0
    for number, value in _fields(buf):
        if number == 1:
            cid = Cid.from_binary(_bytes_field(value, "PBLink.Hash"))
        elif number == 2:
            name = _text(_bytes_field(value, "PBLink.Name"), "dag-pb link name")
        elif number == 3:
            tsize = _int_field(value, "PBLink.Tsize")
        else:
            raise ArtifactError(f"malformed dag-pb: unknown PBLink field {number}")
    if cid is None:
        raise ArtifactError("malformed dag-pb: a link has no Hash")
    return PBLink(cid, name, tsize)


class UnixfsType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class UnixfsData:
    """The UnixFS message carried in a dag-pb node's Data (mode/mtime/fanout are not modelled)."""

    type: UnixfsType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default=())


def encode_unixfs(message: UnixfsData) -> bytes:
    out = bytearray(_varint(1 << 3) + _varint(message.type))
    if message.data:  # an empty Data field is left out, as Kubo and js-ipfs-unixfs do
        out += _length_delimited(2, message.data)
    if message.filesize is not None:
        out += _varint(3 << 3) + _varint(message.filesize)
    for size in message.blocksizes:
        out += _varint(4 << 3) + _varint(size)
    return bytes(out)


def decode_unixfs(buf: bytes) -> UnixfsData:
    """Parse a UnixFS Data message. Raises ``ArtifactError`` if it is malformed or of an unknown type."""
    kind: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, value in _fields(buf):
        if number == 1:
            kind = _int_field(value, "UnixFS.Type")
        elif number == 2:
            data = _bytes_field(value, "UnixFS.Data")
        elif number == 3:
            filesize = _int_field(value, "UnixFS.filesize")
        elif number == 4:
            blocksizes.append(_int_field(value, "UnixFS.blocksizes"))
        # 5 hashType, 6 fanout, 7 mode, 8 mtime: only meaningful for things this module does not write
    if kind is None or not 0 <= kind <= max(UnixfsType):
        raise ArtifactError(f"malformed UnixFS: missing or unknown Type {kind}")
    return UnixfsData(UnixfsType(kind), data, filesize, tuple(blocksizes))


# --------------------------------------------------------------------------------------------------- building


@dataclass(frozen=True, slots=True)
class _FilePart:
    cid: Cid
    tsize: int
    filesize: int


def _put(sink: BlockSink, codec: int, block: bytes) -> Cid:
    cid = Cid.of(codec, block)
    sink(cid, block)
    return cid


def _read_chunk(stream: BinaryIO) -> bytes:
    """Up to CHUNK_SIZE bytes; shorter only at end of stream (some streams return short reads)."""
    first = stream.read(CHUNK_SIZE)
    if len(first) in (0, CHUNK_SIZE):
        return first
    parts, got = [first], len(first)
    while got < CHUNK_SIZE:
        more = stream.read(CHUNK_SIZE - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _file_node(children: Sequence[_FilePart], sink: BlockSink) -> _FilePart:
    sizes = tuple(child.filesize for child in children)
    data = encode_unixfs(UnixfsData(UnixfsType.FILE, filesize=sum(sizes), blocksizes=sizes))
    block = encode_pbnode(PBNode(tuple(PBLink(c.cid, "", c.tsize) for c in children), data))
    cid = _put(sink, DAG_PB, block)
    return _FilePart(cid, len(block) + sum(c.tsize for c in children), sum(sizes))


def add_stream(stream: BinaryIO, sink: BlockSink) -> DagRef:
    """Chunk a binary stream into a UnixFS file DAG, sending each block to ``sink``; the root is sent last.

    The stream is read once, one chunk at a time.
    """
    parts: list[_FilePart] = []
    while True:
        chunk = _read_chunk(stream)
        if chunk or not parts:  # the empty file is one empty raw block
            parts.append(_FilePart(_put(sink, RAW, chunk), len(chunk), len(chunk)))
        if len(chunk) < CHUNK_SIZE:
            break
    while len(parts) > 1:
        parts = [_file_node(parts[i : i + MAX_LINKS], sink) for i in range(0, len(parts), MAX_LINKS)]
    return DagRef(parts[0].cid, parts[0].tsize)


def add_bytes(data: bytes, sink: BlockSink) -> DagRef:
    """``add_stream`` over bytes in memory."""
    return add_stream(io.BytesIO(data), sink)


def add_symlink(target: str, sink: BlockSink) -> DagRef:
    """A UnixFS symlink node pointing at ``target`` (stored as written, never followed)."""
    data = encode_unixfs(UnixfsData(UnixfsType.SYMLINK, data=_utf8(target, "symlink target")))
    block = encode_pbnode(PBNode(data=data))
    return DagRef(_put(sink, DAG_PB, block), len(block))


def add_directory(entries: Mapping[str, DagRef], sink: BlockSink) -> DagRef:
    """A flat UnixFS directory of already-added children, keyed by entry name.

    Raises ``ArtifactError`` for a name that could not be a file name (empty, ``.``, ``..``, containing ``/``
    or NUL, not encodable as UTF-8), or for a directory big enough that Kubo would shard it (HAMT).
    """
    named = sorted((_entry_name(name), ref) for name, ref in entries.items())
    estimate = sum(len(raw) + len(ref.cid.to_binary()) for raw, ref in named)
    if estimate >= HAMT_THRESHOLD:
        raise ArtifactError(
            f"directory with {len(named)} entries is too large for a flat UnixFS directory "
            f"({estimate} bytes of links, limit {HAMT_THRESHOLD}): Kubo would shard it (HAMT), "
            "which this store does not do",
            hint="split it into subdirectories",
        )
    links = tuple(PBLink(ref.cid, raw.decode("utf-8"), ref.tsize) for raw, ref in named)
    block = encode_pbnode(PBNode(links, encode_unixfs(UnixfsData(UnixfsType.DIRECTORY))))
    return DagRef(_put(sink, DAG_PB, block), len(block) + sum(link.tsize for link in links))


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ArtifactError(f"{what} {text!r} is not valid UTF-8, which UnixFS requires") from exc


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"malformed UnixFS: {what} {raw!r} is not valid UTF-8") from exc


def _entry_name(name: str) -> bytes:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ArtifactError(f"invalid directory entry name {name!r}")
    return _utf8(name, "file name")


def add_path(path: Path, sink: BlockSink) -> DagRef:
    """Add a regular file, or a directory tree, from the filesystem.

    What is added, and what is refused (``ArtifactError``; nothing is skipped silently):

    * ``path`` itself is resolved first: if it is a symlink, its target is added.
    * Inside a directory every entry is added, hidden (dot) files included. This equals
      ``ipfs add -r --hidden --cid-version=1 --raw-leaves``; plain ``ipfs add -r`` would leave dot files out.
    * A symlink inside the tree is stored as a UnixFS symlink (its target text, not followed), as Kubo does,
      but only if it stays inside the tree: a symlink with an absolute target, or one whose target leads out
      of ``path`` either as written or once resolved, is refused.
    * FIFOs, sockets and device files are refused; so are names that are not valid UTF-8.
    * Permissions, owners and timestamps are not recorded (Kubo does not by default either).
    """
    try:
        root = Path(os.path.realpath(path))
        if root.is_dir():
            return _add_tree(root, root, sink)
        if root.is_file():
            with root.open("rb") as stream:
                return add_stream(stream, sink)
        if not root.exists():
            raise ArtifactError(f"cannot add {path}: no such file or directory")
        raise ArtifactError(f"cannot add {path}: not a regular file or directory")
    except OSError as exc:
        raise ArtifactError(f"cannot add {path}: {exc}") from exc


def _add_tree(root: Path, directory: Path, sink: BlockSink) -> DagRef:
    entries: dict[str, DagRef] = {}
    with os.scandir(directory) as scan:
        for entry in scan:
            child = Path(entry.path)
            if entry.is_symlink():
                target = os.readlink(child)
                if symlink_escapes(root, child, target):
                    raise ArtifactError(
                        f"refusing symlink {child} -> {target}: it points outside {root}",
                        hint="replace it with a copy of what it points to, or remove it",
                    )
                entries[entry.name] = add_symlink(target, sink)
            elif entry.is_dir(follow_symlinks=False):
                entries[entry.name] = _add_tree(root, child, sink)
            elif entry.is_file(follow_symlinks=False):
                with child.open("rb") as stream:
                    entries[entry.name] = add_stream(stream, sink)
            else:
                raise ArtifactError(
                    f"refusing {child}: not a regular file, directory or symlink (a FIFO, socket or device)"
                )
    return add_directory(entries, sink)


def symlink_escapes(root: Path, link: Path, target: str) -> bool:
    """Whether the symlink at ``link`` (inside ``root``) pointing at ``target`` leads out of ``root``.

    True for an absolute target, for one that climbs out as written (``../x``), and for one that climbs out
    once the symlinks it passes through are resolved (``s/..`` where ``s -> .``). ``link`` must exist.
    """
    if os.path.isabs(target):
        return True
    written = os.path.normpath(os.path.join(os.path.relpath(link.parent, root), target))
    if written == os.pardir or written.startswith(os.pardir + os.sep):
        return True
    real_root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(link), real_root]) != real_root


# ---------------------------------------------------------------------------------------------------- reading


def _node(cid: Cid, load: BlockSource) -> tuple[PBNode, UnixfsData]:
    node = decode_pbnode(load(cid))
    if node.data is None:
        raise ArtifactError(f"{cid} is a dag-pb node without UnixFS data")
    return node, decode_unixfs(node.data)


def iter_file(root: Cid, load: BlockSource, *, max_bytes: int | None = None) -> Iterator[bytes]:
    """The content of a UnixFS file, piece by piece, every block verified by ``load`` as it is reached.

    With ``max_bytes``, a file whose root declares more (or a raw root longer than that) raises
    ``ArtifactTooLarge`` after reading only the root block; a DAG whose content turns out longer than it
    declared raises it as soon as the limit is passed. Also reads file DAGs that Kubo builds with other
    settings (inline data in dag-pb leaves, CIDv0 links). Raises ``ArtifactError`` if ``root`` is not a file
    (a directory, a symlink, a HAMT shard).
    """
    limit = math.inf if max_bytes is None else max_bytes
    total = 0
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid.codec == RAW:
            piece = load(cid)
        else:
            node, unixfs = _node(cid, load)
            if unixfs.type not in (UnixfsType.FILE, UnixfsType.RAW):
                kind = unixfs.type.name.lower().replace("_", " ")
                raise ArtifactError(f"{cid} is a {kind}, not a file", hint="use get_path to write a directory to disk")
            declared = unixfs.filesize
            if declared is not None and declared > limit:
                raise _too_large(root, declared, limit)
            piece = unixfs.data or b""
            stack.extend(link.cid for link in reversed(node.links))
        total += len(piece)
        if total > limit:
            raise _too_large(root, total, limit)
        if piece:
            yield piece


def _too_large(root: Cid, size: int, limit: float) -> ArtifactTooLarge:
    return ArtifactTooLarge(
        f"file {root} is at least {size} bytes, more than the limit of {int(limit)}",
        hint="raise max_bytes, or use get_path to stream it to disk",
    )


def walk_dag(root: Cid, load: BlockSource) -> Iterator[Cid]:
    """Every distinct CID reachable from ``root``, the root first. Only dag-pb blocks are loaded."""
    seen = {root}
    stack = [root]
    while stack:
        cid = stack.pop()
        yield cid
        if cid.codec == DAG_PB:
            for link in decode_pbnode(load(cid)).links:
                if link.cid not in seen:
                    seen.add(link.cid)
                    stack.append(link.cid)


def export_path(root: Cid, dest: Path, load: BlockSource) -> Path:
    """Write the file or directory ``root`` to ``dest``, which must not exist yet; return ``dest``.

    Everything is first written to a temporary sibling of ``dest`` and renamed into place only once every
    block has been verified, so a failure (``ArtifactNotFound``, ``ArtifactCorrupt``, an unsafe DAG) leaves
    nothing behind. Entry names must be plain file names; symlinks are recreated only if they stay inside
    ``dest``. Files get default permissions.
    """
    if os.path.lexists(dest):
        raise ArtifactError(f"cannot write {dest}: it already exists", hint="choose a new path or remove it")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.partial-{os.urandom(4).hex()}"
        try:
            _export_tree(root, tmp, load)
            os.replace(tmp, dest)
        except BaseException:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ArtifactError(f"cannot write {dest}: {exc}") from exc
    return dest


def _export_tree(root: Cid, top: Path, load: BlockSource) -> None:
    links: list[tuple[Path, str]] = []
    stack = [(root, top)]
    while stack:
        cid, path = stack.pop()
        if cid.codec == RAW:
            _write_file(path, iter_file(cid, load))
            continue
        node, unixfs = _node(cid, load)
        if unixfs.type in (UnixfsType.FILE, UnixfsType.RAW):
            _write_file(path, iter_file(cid, load))
        elif unixfs.type == UnixfsType.DIRECTORY:
            path.mkdir()
            names = [link.name for link in node.links]
            if len(set(names)) != len(names):
                raise ArtifactError(f"malformed directory {cid}: duplicate entry names")
            for link in node.links:
                _entry_name(link.name)
                stack.append((link.cid, path / link.name))
        elif unixfs.type == UnixfsType.SYMLINK and path != top:
            target = _text(unixfs.data or b"", "symlink target")
            os.symlink(target, path)
            links.append((path, target))
        elif unixfs.type == UnixfsType.SYMLINK:
            raise ArtifactError(f"{cid} is a symlink; get_path writes only files and directories")
        else:
            raise ArtifactError(f"cannot write {cid}: UnixFS {unixfs.type.name} nodes are not supported")
    # Checked once the whole tree exists: a symlink's resolution can depend on links created after it.
    for path, target in links:
        if symlink_escapes(top, path, target):
            raise ArtifactError(f"refusing to write symlink {path.relative_to(top)} -> {target}: it escapes")


def _write_file(path: Path, pieces: Iterator[bytes]) -> None:
    with path.open("xb") as out:
        for piece in pieces:
            out.write(piece)

"""CARv1 reading and writing (``orchestrator.adapters.artifacts.car``): round trips, the header's exact bytes, and every
way an untrusted archive can be wrong."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from orchestrator.adapters.artifacts import CarReader, LocalArtifactStore, read_car, write_car
from orchestrator.adapters.artifacts.car import MAX_HEADER_BYTES, _varint, encode_header, header_bytes, section_bytes
from orchestrator.adapters.artifacts.unixfs import RAW, Cid
from orchestrator.domain.errors import ArtifactCorrupt, ArtifactError, ArtifactTooLarge
from tests.test_artifacts import DIRECTORIES, build_tree


def test_header_bytes_are_canonical_dag_cbor() -> None:
    """The header of the CARv1 spec's example shape, byte for byte: map(2) "roots" [tag42(00 cid)] "version" 1."""
    root = Cid.of(RAW, b"hello")
    raw = b"\x00" + root.to_binary()
    expected = b"\xa2\x65roots\x81\xd8\x2a\x58" + bytes([len(raw)]) + raw + b"\x67version\x01"
    assert encode_header([root]) == expected
    assert header_bytes([root]) == bytes([len(expected)]) + expected


@pytest.mark.parametrize("directory", DIRECTORIES, ids=lambda d: d["name"])
def test_a_dag_round_trips_through_a_car(directory: dict[str, object], tmp_path: Path) -> None:
    source = LocalArtifactStore(tmp_path / "a")
    cid = Cid.parse(source.put_path(build_tree(tmp_path / "tree", directory["entries"])))  # type: ignore[arg-type]
    buf = io.BytesIO()
    written = write_car(buf, cid, source.get_block)
    assert written == len(buf.getvalue())
    header, blocks = read_car(buf.getvalue())
    assert header.roots == (cid,)
    assert blocks[0][0] == cid  # depth-first pre-order: the root first
    assert len({c for c, _ in blocks}) == len(blocks)  # no duplicates
    target = LocalArtifactStore(tmp_path / "b")
    for block_cid, block in blocks:
        target.put_block(block_cid, block)
    assert target.has(str(cid))


def _car(blocks: list[tuple[Cid, bytes]], roots: list[Cid] | None = None) -> bytes:
    roots = roots if roots is not None else [blocks[0][0]]
    return header_bytes(roots) + b"".join(section_bytes(c, b) for c, b in blocks)


def test_a_flipped_byte_is_caught_before_the_block_is_yielded() -> None:
    good = Cid.of(RAW, b"a" * 100)
    data = bytearray(_car([(good, b"a" * 100)]))
    data[-1] ^= 1
    reader = CarReader(io.BytesIO(bytes(data)), source="gateway X")
    with pytest.raises(ArtifactCorrupt, match="gateway X"):
        next(reader.blocks())


@pytest.mark.parametrize("cut", [1, 10, 50])
def test_a_truncated_car_is_an_error(cut: int) -> None:
    block = b"b" * 200
    data = _car([(Cid.of(RAW, block), block)])
    with pytest.raises(ArtifactError, match="truncated"):
        read_car(data[:-cut])


def test_the_size_limit_holds_while_streaming() -> None:
    blocks = [(Cid.of(RAW, bytes([i]) * 1000), bytes([i]) * 1000) for i in range(10)]
    reader = CarReader(io.BytesIO(_car(blocks)), max_bytes=5000)
    with pytest.raises(ArtifactTooLarge):
        list(reader.blocks())


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"\xa1\x67version\x02", "version 2"),  # a CARv2 pragma
        (b"\xa1\x65roots\x80", "version None"),
        (b"\xa2\x65roots\x01\x67version\x01", "no list of roots"),
        (b"\xa2\x65roots\x81\x01\x67version\x01", "tag 42"),
        (b"\xa2\x65roots" + b"\x81" * 5000 + b"\x80" + b"\x67version\x01", "nested deeper"),
        (b"\xa2\x65roots\x9f\xff\x67version\x01", "indefinite"),
        (b"\xff\xff", "DAG-CBOR"),
    ],
)
def test_malformed_headers_are_refused(header: bytes, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        read_car(_varint(len(header)) + header)


def test_an_oversized_header_is_refused_unread() -> None:
    length = MAX_HEADER_BYTES + 1
    with pytest.raises(ArtifactError, match="header of 65537 bytes"):
        read_car(_varint(length))


def test_cidv0_sections_are_read() -> None:
    """Older DAGs name dag-pb blocks by 34-byte CIDv0s in CAR sections."""
    from orchestrator.adapters.artifacts.unixfs import DAG_PB, PBNode, encode_pbnode

    block = encode_pbnode(PBNode(links=(), data=b"\x08\x01"))
    cid = Cid.of(DAG_PB, block)
    data = header_bytes([cid]) + bytes([34 + len(block)]) + b"\x12\x20" + cid.digest + block
    _, blocks = read_car(data)
    assert blocks == [(cid, block)]

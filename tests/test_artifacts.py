"""The UnixFS importer and exporter, the local store's own behaviour, and the CID vectors' inputs.

The port's contract, checked against every adapter, is ``tests/test_port_artifacts.py``. Expected CIDs come from
a real IPFS implementation (js-ipfs-unixfs set up as ``ipfs add --cid-version=1 --raw-leaves``):
``tests/fixtures/cids/expected.json``, made by ``generate_expected.mjs`` beside it, which also describes the
inputs; this module rebuilds the same inputs in Python (``content``, ``build_tree``).
"""

from __future__ import annotations

import contextlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.adapters.artifacts import (
    CHUNK_SIZE,
    LocalArtifactStore,
    add_bytes,
)
from orchestrator.adapters.artifacts.unixfs import (
    DAG_PB,
    RAW,
    Cid,
    DagRef,
    PBLink,
    PBNode,
    UnixfsData,
    UnixfsType,
    add_directory,
    decode_pbnode,
    encode_pbnode,
    encode_unixfs,
    export_path,
    iter_file,
)
from orchestrator.domain.errors import ArtifactError, ArtifactTooLarge

EXPECTED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "cids" / "expected.json").read_text(encoding="utf-8")
)
FILES: list[dict[str, Any]] = EXPECTED["files"]
DIRECTORIES: list[dict[str, Any]] = EXPECTED["directories"]
SMALL_FILES = [f for f in FILES if f["size"] <= 3 * CHUNK_SIZE]


# ----------------------------------------------------------------------------------------------------- inputs


@cache
def content(kind: str, size: int, seed: int = 0) -> bytes:
    """Same bytes as generate_expected.mjs: ``(i * 31 + 7 + seed) % 251``, or zeros."""
    if kind == "zeros":
        return bytes(size)
    period = bytes((i * 31 + 7 + seed) % 251 for i in range(251))
    return (period * (size // 251 + 1))[:size]


def spec_bytes(spec: dict[str, Any]) -> bytes:
    return content(spec["kind"], spec["size"], spec.get("seed", 0))


def build_tree(root: Path, entries: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True)
    for entry in entries:
        path = root / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if entry["type"] == "file":
            path.write_bytes(spec_bytes(entry))
        elif entry["type"] == "symlink":
            os.symlink(entry["target"], path)
        else:
            path.mkdir()
    return root


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """Every entry under ``root``: kind and content (file bytes, symlink target)."""
    found: dict[str, tuple[str, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = ("symlink", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir", None)
            else:
                found[rel] = ("file", path.read_bytes())
    return found


def blocks_of(data: bytes) -> dict[str, bytes]:
    """The blocks of ``data``'s DAG, built without any store."""
    blocks: dict[str, bytes] = {}
    add_bytes(data, lambda cid, block: blocks.__setitem__(str(cid), block))
    return blocks


# ----------------------------------------------------------------------------------------- local adapter only


@pytest.mark.parametrize("spec", SMALL_FILES + DIRECTORIES, ids=lambda s: s["name"])
def test_local_store_keeps_exactly_the_dag_blocks(spec: dict[str, Any], tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    if "entries" in spec:
        store.put_path(build_tree(tmp_path / "src", spec["entries"]))
    else:
        store.put_bytes(spec_bytes(spec))
    stored = sorted(p.name for p in (tmp_path / "store" / "blocks").iterdir())
    assert len(stored) == spec["blocks"]
    assert spec["cid"] in stored
    assert not any(name.startswith(".tmp-") for name in stored)


def test_local_store_rewrites_a_truncated_block(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    cid = store.put_bytes(b"hello")
    (tmp_path / "store" / "blocks" / cid).write_bytes(b"hel")
    assert store.put_bytes(b"hello") == cid
    assert store.get_bytes(cid) == b"hello"


# ------------------------------------------------------------------------------------------- format internals


def test_cidv0_string_is_read_as_its_cidv1() -> None:
    empty_dir_v0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    assert str(Cid.parse(empty_dir_v0)) == "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


_mangled_cids = st.builds(
    lambda cid, cut, tail: cid[:cut] + tail,
    st.sampled_from([spec["cid"] for spec in FILES] + ["QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"]),
    st.integers(min_value=0, max_value=62),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567Qm1", max_size=3),
)


@given(st.text(max_size=80) | _mangled_cids)
def test_cid_parse_raises_only_artifact_error(text: str) -> None:
    with contextlib.suppress(ArtifactError):
        Cid.parse(text)


_links = st.builds(
    PBLink,
    cid=st.builds(Cid, st.sampled_from([RAW, DAG_PB]), st.binary(min_size=32, max_size=32)),
    name=st.text(max_size=20),
    tsize=st.integers(min_value=0, max_value=2**63),
)


@given(links=st.lists(_links, max_size=5), data=st.none() | st.binary(max_size=64))
def test_dag_pb_round_trips(links: list[PBLink], data: bytes | None) -> None:
    node = PBNode(tuple(links), data)
    assert decode_pbnode(encode_pbnode(node)) == node


@pytest.mark.parametrize("block", [b"\x12", b"\x0a\x05ab", b"\x1a\x00", b"\x12\x02\x18\x01", b"\xff" * 11])
def test_malformed_dag_pb_is_an_artifact_error(block: bytes) -> None:
    with pytest.raises(ArtifactError, match="malformed"):
        decode_pbnode(block)


def test_a_dag_that_understates_its_size_still_hits_max_bytes() -> None:
    leaf = b"0123456789"
    blocks = {Cid.of(RAW, leaf): leaf}
    lying = UnixfsData(UnixfsType.FILE, filesize=1, blocksizes=(1,))
    root_block = encode_pbnode(PBNode((PBLink(Cid.of(RAW, leaf), "", 10),), encode_unixfs(lying)))
    root = Cid.of(DAG_PB, root_block)
    blocks[root] = root_block
    assert b"".join(iter_file(root, blocks.__getitem__)) == leaf
    with pytest.raises(ArtifactTooLarge, match="at least 10 bytes"):
        b"".join(iter_file(root, blocks.__getitem__, max_bytes=5))


def test_reads_legacy_dags_with_inline_data_and_cidv0_links() -> None:
    """What ``ipfs add`` without --raw-leaves makes: File nodes holding data, linked by 34-byte CIDv0s."""
    child = encode_pbnode(PBNode(data=encode_unixfs(UnixfsData(UnixfsType.FILE, b"tail", filesize=4))))
    child_cid = Cid.of(DAG_PB, child)
    v0_link = b"\x0a\x22\x12\x20" + child_cid.digest + b"\x12\x00\x18" + bytes([len(child)])
    head = encode_unixfs(UnixfsData(UnixfsType.FILE, b"head", filesize=8, blocksizes=(4,)))
    root_block = b"\x12" + bytes([len(v0_link)]) + v0_link + b"\x0a" + bytes([len(head)]) + head
    root = Cid.of(DAG_PB, root_block)
    assert decode_pbnode(root_block).links[0].cid == child_cid
    blocks = {root: root_block, child_cid: child}
    assert b"".join(iter_file(root, blocks.__getitem__)) == b"headtail"


def test_directories_kubo_would_shard_are_refused() -> None:
    child = DagRef(Cid.of(RAW, b""), 0)
    small = {f"{i:050d}": child for i in range(3000)}  # 3000 * (50 + 36) bytes of links: below 256 KiB
    add_directory(small, lambda cid, block: None)
    large = {f"{i:050d}": child for i in range(3100)}
    with pytest.raises(ArtifactError, match="Kubo would shard it"):
        add_directory(large, lambda cid, block: None)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "nul\0"])
def test_invalid_entry_names_are_refused(name: str) -> None:
    with pytest.raises(ArtifactError, match="invalid directory entry name"):
        add_directory({name: DagRef(Cid.of(RAW, b""), 0)}, lambda cid, block: None)


def _crafted_dir(entries: dict[str, bytes | str]) -> tuple[Cid, dict[Cid, bytes]]:
    """A directory DAG made by hand, names and targets unchecked: bytes are files, str symlink targets."""
    blocks: dict[Cid, bytes] = {}
    links = []
    for name, value in sorted(entries.items()):
        if isinstance(value, bytes):
            cid = Cid.of(RAW, value)
            blocks[cid] = value
        else:
            target = UnixfsData(UnixfsType.SYMLINK, data=value.encode())
            block = encode_pbnode(PBNode(data=encode_unixfs(target)))
            cid = Cid.of(DAG_PB, block)
            blocks[cid] = block
        links.append(PBLink(cid, name, len(blocks[cid])))
    root_block = encode_pbnode(PBNode(tuple(links), encode_unixfs(UnixfsData(UnixfsType.DIRECTORY))))
    root = Cid.of(DAG_PB, root_block)
    blocks[root] = root_block
    return root, blocks


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ({"../evil": b"x"}, "invalid directory entry name"),
        ({"..": b"x"}, "invalid directory entry name"),
        ({"up": "../../etc/passwd"}, "refusing to write symlink"),
        ({"abs": "/etc/passwd"}, "refusing to write symlink"),
        ({"s": ".", "t": "s/.."}, "refusing to write symlink t"),
    ],
)
def test_export_refuses_unsafe_dags(entries: dict[str, bytes | str], error: str, tmp_path: Path) -> None:
    root, blocks = _crafted_dir(entries)
    with pytest.raises(ArtifactError, match=error):
        export_path(root, tmp_path / "out", blocks.__getitem__)
    assert list(tmp_path.iterdir()) == []

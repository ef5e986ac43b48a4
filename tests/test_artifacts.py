"""Contract tests of the ``ArtifactStore`` port, run against every adapter in ``ADAPTERS``.

Expected CIDs come from a real IPFS implementation (js-ipfs-unixfs set up as ``ipfs add --cid-version=1
--raw-leaves``): ``tests/fixtures/cids/expected.json``, made by ``generate_expected.mjs`` beside it, which
also describes the inputs; this module rebuilds the same inputs in Python. To test another adapter, add an
``Adapter`` entry: a factory and the two ways to damage its storage. The ``kubo`` adapter runs against the
fake Kubo of ``tests/ipfs_fakes.py`` (a real HTTP server speaking Kubo's RPC wire format, which builds the DAG
itself from the upload, so a wrong upload gives a wrong CID).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.adapters.artifacts import (
    CHUNK_SIZE,
    KuboRpc,
    LocalArtifactStore,
    RemoteArtifactStore,
    TrustlessGateways,
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
from orchestrator.domain.errors import ArtifactCorrupt, ArtifactError, ArtifactNotFound, ArtifactTooLarge
from orchestrator.ports.artifacts import ArtifactStore
from tests.ipfs_fakes import FakeGateways, FakeKubo, KuboNode

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


# --------------------------------------------------------------------------------------------------- adapters


@dataclass(frozen=True)
class Adapter:
    name: str
    make: Callable[[Path], ArtifactStore]
    tamper: Callable[[ArtifactStore, str], None]
    """Change the stored bytes of one block, keeping its length."""
    drop: Callable[[ArtifactStore, str], None]
    """Lose one block."""


def _local_block(store: ArtifactStore, cid: str) -> Path:
    assert isinstance(store, LocalArtifactStore)
    return store.root / "blocks" / cid


def _local_tamper(store: ArtifactStore, cid: str) -> None:
    path = _local_block(store, cid)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


_fake_kubo: list[FakeKubo] = []
_kubo_nodes: dict[int, KuboNode] = {}


def _kubo_make(tmp: Path) -> ArtifactStore:
    """The ``kubo`` kind against a fresh node of the fake Kubo (``tests/ipfs_fakes.py``), started once."""
    if not _fake_kubo:
        _fake_kubo.append(FakeKubo())
    node = _fake_kubo[0].node()
    store = RemoteArtifactStore(LocalArtifactStore(tmp / "cache"), kubo=KuboRpc(node.url, timeout=30))
    _kubo_nodes[id(store)] = node
    return store


def _kubo_parts(store: ArtifactStore, cid: str) -> tuple[Path, KuboNode, Cid]:
    assert isinstance(store, RemoteArtifactStore)
    return store.cache.root / "blocks" / cid, _kubo_nodes[id(store)], Cid.parse(cid)


def _kubo_tamper(store: ArtifactStore, cid: str) -> None:
    """Both copies: the cache's (read first) and the node's."""
    path, node, parsed = _kubo_parts(store, cid)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    node.blocks[parsed] = bytes(data)


def _kubo_drop(store: ArtifactStore, cid: str) -> None:
    path, node, parsed = _kubo_parts(store, cid)
    path.unlink()
    del node.blocks[parsed]


_fake_gateways: list[FakeGateways] = []


def _gateways_make(tmp: Path) -> ArtifactStore:
    """The ``local`` kind reading what it lacks through two gateways that hold nothing (404 from both)."""
    if not _fake_gateways:
        _fake_gateways.append(FakeGateways())
    empty = LocalArtifactStore(tmp / "gateway-store")
    urls = [_fake_gateways[0].gateway(empty).url, _fake_gateways[0].gateway(empty, "raw-only").url]
    return RemoteArtifactStore(LocalArtifactStore(tmp / "store"), gateways=TrustlessGateways(urls, timeout=10))


def _cache_of(store: ArtifactStore) -> LocalArtifactStore:
    assert isinstance(store, RemoteArtifactStore)
    return store.cache


ADAPTERS = [
    Adapter(
        "local",
        make=lambda tmp: LocalArtifactStore(tmp / "store"),
        tamper=_local_tamper,
        drop=lambda store, cid: _local_block(store, cid).unlink(),
    ),
    Adapter("kubo", make=_kubo_make, tamper=_kubo_tamper, drop=_kubo_drop),
    Adapter(
        "local+gateways",
        make=_gateways_make,
        tamper=lambda store, cid: _local_tamper(_cache_of(store), cid),
        drop=lambda store, cid: _local_block(_cache_of(store), cid).unlink(),
    ),
]


@pytest.fixture(params=ADAPTERS, ids=lambda adapter: adapter.name)
def adapter(request: pytest.FixtureRequest) -> Adapter:
    chosen: Adapter = request.param
    return chosen


@pytest.fixture
def store(adapter: Adapter, tmp_path: Path) -> ArtifactStore:
    return adapter.make(tmp_path)


# ------------------------------------------------------------------------------------------------------ tests


def test_implements_the_port(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)


@pytest.mark.parametrize("spec", FILES, ids=[f["name"] for f in FILES])
def test_put_bytes_matches_ipfs_and_round_trips(store: ArtifactStore, spec: dict[str, Any]) -> None:
    data = spec_bytes(spec)
    cid = store.put_bytes(data)
    assert cid == spec["cid"]
    assert store.has(cid)
    assert store.get_bytes(cid) == data


@pytest.mark.parametrize("spec", SMALL_FILES, ids=[f["name"] for f in SMALL_FILES])
def test_put_path_file_round_trips(store: ArtifactStore, spec: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(spec_bytes(spec))
    cid = store.put_path(source)
    assert cid == spec["cid"]
    out = store.get_path(cid, tmp_path / "out" / "file.bin")
    assert out == tmp_path / "out" / "file.bin"
    assert out.read_bytes() == spec_bytes(spec)


def test_put_path_streams_the_50MiB_file(store: ArtifactStore, tmp_path: Path) -> None:
    (spec,) = [f for f in FILES if f["name"] == "pattern-50MiB"]
    source = tmp_path / "big.bin"
    source.write_bytes(spec_bytes(spec))
    assert store.put_path(source) == spec["cid"]
    out = store.get_path(spec["cid"], tmp_path / "big.out")
    assert out.stat().st_size == spec["size"]
    assert out.read_bytes() == spec_bytes(spec)


@pytest.mark.parametrize("spec", DIRECTORIES, ids=[d["name"] for d in DIRECTORIES])
def test_put_path_directory_matches_ipfs_and_round_trips(
    store: ArtifactStore, spec: dict[str, Any], tmp_path: Path
) -> None:
    source = build_tree(tmp_path / "src" / spec["name"], spec["entries"])
    cid = store.put_path(source)
    assert cid == spec["cid"]
    assert store.has(cid)
    out = store.get_path(cid, tmp_path / "out")
    assert out.is_dir()
    assert snapshot(out) == snapshot(source)


def test_put_path_follows_a_symlink_given_as_the_path(store: ArtifactStore, tmp_path: Path) -> None:
    (spec,) = [d for d in DIRECTORIES if d["name"] == "nested"]
    source = build_tree(tmp_path / "real", spec["entries"])
    (tmp_path / "alias").symlink_to(source)
    assert store.put_path(tmp_path / "alias") == spec["cid"]


def test_unicode_names_survive(store: ArtifactStore, tmp_path: Path) -> None:
    (spec,) = [d for d in DIRECTORIES if d["name"] == "flat-names"]
    out = store.get_path(store.put_path(build_tree(tmp_path / "src", spec["entries"])), tmp_path / "out")
    assert (out / "ünïcødé 文件.txt").read_bytes() == content("pattern", 17, 8)
    assert (out / ".hidden").is_file()


@given(data=st.binary(max_size=4096))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_bytes_round_trip(store: ArtifactStore, data: bytes) -> None:
    cid = store.put_bytes(data)
    assert cid.startswith("bafkrei")
    assert store.get_bytes(cid) == data


@given(
    size=st.integers(min_value=CHUNK_SIZE - 2, max_value=2 * CHUNK_SIZE + 2),
    seed=st.integers(min_value=0, max_value=250),
)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_chunk_boundaries_round_trip(store: ArtifactStore, size: int, seed: int) -> None:
    data = content("pattern", size, seed)
    cid = store.put_bytes(data)
    assert cid.startswith("bafkrei" if size <= CHUNK_SIZE else "bafybei")
    assert store.get_bytes(cid) == data


@pytest.mark.parametrize("size", [100, 3 * CHUNK_SIZE])
def test_get_bytes_honours_max_bytes(adapter: Adapter, store: ArtifactStore, size: int) -> None:
    data = content("pattern", size, 5)
    cid = store.put_bytes(data)
    assert store.get_bytes(cid, max_bytes=size) == data
    if size > CHUNK_SIZE:  # only the root is read: with every leaf lost, the limit still answers first
        for leaf in (c for c in blocks_of(data) if c.startswith("bafkrei")):
            adapter.drop(store, leaf)
    with pytest.raises(ArtifactTooLarge, match=f"{size} bytes, more than the limit of {size - 1}"):
        store.get_bytes(cid, max_bytes=size - 1)


def test_identical_content_is_stored_once(store: ArtifactStore) -> None:
    assert store.put_bytes(b"same") == store.put_bytes(b"same")


def test_missing_cid_is_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    cid = str(Cid.of(RAW, b"never stored"))
    assert not store.has(cid)
    with pytest.raises(ArtifactNotFound, match=cid):
        store.get_bytes(cid)
    with pytest.raises(ArtifactNotFound):
        store.get_path(cid, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text",
    ["", "not a cid", "bafy", "Qm123", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquv", "zzzz!!"],
)
def test_invalid_cid_is_a_clear_error(store: ArtifactStore, text: str, tmp_path: Path) -> None:
    for call in (store.get_bytes, store.has, lambda cid: store.get_path(cid, tmp_path / "out")):
        with pytest.raises(ArtifactError, match="invalid CID") as raised:
            call(text)
        assert not isinstance(raised.value, ArtifactNotFound)
        assert repr(text) in str(raised.value)


def test_unsupported_cid_kind_is_an_error(store: ArtifactStore) -> None:
    dag_cbor = "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"
    with pytest.raises(ArtifactError, match=r"unsupported CID .*codec 0x71"):
        store.get_bytes(dag_cbor)


def test_cidv0_is_accepted(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert store.put_path(tmp_path / "empty") == "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    assert store.has("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")


@pytest.mark.parametrize("part", ["leaf", "root"])
def test_tampered_block_is_detected(adapter: Adapter, store: ArtifactStore, tmp_path: Path, part: str) -> None:
    data = content("pattern", 2 * CHUNK_SIZE + 5, 3)
    cid = store.put_bytes(data)
    leaves = [c for c in blocks_of(data) if c.startswith("bafkrei")]
    adapter.tamper(store, leaves[-1] if part == "leaf" else cid)
    with pytest.raises(ArtifactCorrupt, match="does not match its CID"):
        store.get_bytes(cid)
    with pytest.raises(ArtifactCorrupt):
        store.get_path(cid, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.glob(".out*")) == []


def test_tampered_block_in_a_directory_is_detected(adapter: Adapter, store: ArtifactStore, tmp_path: Path) -> None:
    (spec,) = [d for d in DIRECTORIES if d["name"] == "nested"]
    cid = store.put_path(build_tree(tmp_path / "src", spec["entries"]))
    readme = str(Cid.of(RAW, content("pattern", 100, 10)))
    adapter.tamper(store, readme)
    with pytest.raises(ArtifactCorrupt, match=readme):
        store.get_path(cid, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_lost_block_is_not_found(adapter: Adapter, store: ArtifactStore) -> None:
    data = content("pattern", CHUNK_SIZE + 1, 4)
    cid = store.put_bytes(data)
    leaf = next(c for c in blocks_of(data) if c.startswith("bafkrei"))
    adapter.drop(store, leaf)
    assert not store.has(cid)
    with pytest.raises(ArtifactNotFound, match=leaf):
        store.get_bytes(cid)


def test_get_bytes_of_a_directory_is_an_error(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    cid = store.put_path(tmp_path / "d")
    with pytest.raises(ArtifactError, match="is a directory, not a file"):
        store.get_bytes(cid)


def test_get_path_refuses_an_existing_destination(store: ArtifactStore, tmp_path: Path) -> None:
    cid = store.put_bytes(b"x")
    (tmp_path / "taken").write_bytes(b"keep me")
    with pytest.raises(ArtifactError, match="already exists"):
        store.get_path(cid, tmp_path / "taken")
    assert (tmp_path / "taken").read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("out", "../outside.txt"),
        ("abs", "/etc/passwd"),
        ("sub/deep", "../../outside.txt"),
        ("tricky", "here/.."),  # "here" -> "." makes "here/.." the parent of the tree once resolved
    ],
)
def test_put_path_refuses_escaping_symlinks(store: ArtifactStore, tmp_path: Path, link: str, target: str) -> None:
    (tmp_path / "outside.txt").write_bytes(b"secret")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "here").symlink_to(".")
    (tree / link).symlink_to(target)
    with pytest.raises(ArtifactError, match="points outside"):
        store.put_path(tree)


def test_put_path_refuses_special_files(store: ArtifactStore, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mkfifo(tree / "pipe")
    with pytest.raises(ArtifactError, match="FIFO"):
        store.put_path(tree)


def test_put_path_of_a_missing_path_is_an_error(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such file"):
        store.put_path(tmp_path / "nope")


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

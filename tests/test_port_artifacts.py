"""Conformance suite of the ``ArtifactStore`` port (``orchestrator/ports/artifacts.py``), run against every adapter
in ``ADAPTERS``: to test another adapter, add an ``Adapter`` entry (a factory, the two ways to damage its
storage, what ``confirm_published`` answers right after a put).

Expected CIDs come from a real IPFS implementation (js-ipfs-unixfs set up as ``ipfs add --cid-version=1
--raw-leaves``): ``tests/fixtures/cids/expected.json``, made by ``generate_expected.mjs`` beside it, which also
describes the inputs; ``tests/test_artifacts.py`` rebuilds the same inputs in Python. The ``kubo`` adapters run
against the fake Kubo of ``tests/ipfs_fakes.py`` (a real HTTP server speaking Kubo's RPC wire format, which builds
the DAG itself from the upload, so a wrong upload gives a wrong CID), the gateway ones against its fake trustless
gateways.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
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
)
from orchestrator.adapters.artifacts.unixfs import RAW, Cid
from orchestrator.domain.errors import (
    ArtifactCorrupt,
    ArtifactError,
    ArtifactNotFound,
    ArtifactTooLarge,
    ArtifactUnavailable,
)
from orchestrator.ports.artifacts import ArtifactStore
from tests.ipfs_fakes import FakeGateways, FakeKubo, KuboNode
from tests.test_artifacts import DIRECTORIES, FILES, SMALL_FILES, blocks_of, build_tree, content, snapshot, spec_bytes

# --------------------------------------------------------------------------------------------------- adapters


@dataclass(frozen=True)
class Adapter:
    name: str
    make: Callable[[Path], ArtifactStore]
    tamper: Callable[[ArtifactStore, str], None]
    """Change the stored bytes of one block, keeping its length."""
    drop: Callable[[ArtifactStore, str], None]
    """Lose one block."""
    confirmed: bool | None
    """What ``confirm_published`` answers right after a put: True or False, None for ``ArtifactUnavailable``
    (gateways are configured and none serves it yet)."""
    held: Callable[[ArtifactStore, str], int] | None = None
    """For a store that publishes to a remote as it puts: check the remote built and pinned this one DAG
    itself (not our answer), and return how many blocks it holds."""


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


def _kubo_held(store: ArtifactStore, cid: str) -> int:
    node = _kubo_nodes[id(store)]
    assert node.added == [("artifact", cid)]  # what the fake built from the upload, not our answer
    assert node.pins == {Cid.parse(cid)}
    return len(node.blocks)


_fake_gateways: list[FakeGateways] = []


def _gateways_make(tmp: Path) -> ArtifactStore:
    """The ``local`` kind reading what it lacks through two gateways that hold nothing (404 from both)."""
    if not _fake_gateways:
        _fake_gateways.append(FakeGateways())
    empty = LocalArtifactStore(tmp / "gateway-store")
    urls = [_fake_gateways[0].gateway(empty).url, _fake_gateways[0].gateway(empty, "raw-only").url]
    return RemoteArtifactStore(LocalArtifactStore(tmp / "store"), gateways=TrustlessGateways(urls, timeout=10))


def _kubo_gateway_make(tmp: Path) -> ArtifactStore:
    """The ``kubo`` kind whose gateway serves what it published (here: its cache, as ``deworker artifact serve``
    would), so ``confirm_published`` reads every block back through it."""
    store = _kubo_make(tmp)
    assert isinstance(store, RemoteArtifactStore)
    if not _fake_gateways:
        _fake_gateways.append(FakeGateways())
    store.gateways = TrustlessGateways([_fake_gateways[0].gateway(store.cache).url], timeout=10)
    return store


def _cache_of(store: ArtifactStore) -> LocalArtifactStore:
    assert isinstance(store, RemoteArtifactStore)
    return store.cache


ADAPTERS = [
    Adapter(
        "local",
        make=lambda tmp: LocalArtifactStore(tmp / "store"),
        tamper=_local_tamper,
        drop=lambda store, cid: _local_block(store, cid).unlink(),
        confirmed=False,
    ),
    Adapter("kubo", make=_kubo_make, tamper=_kubo_tamper, drop=_kubo_drop, confirmed=False, held=_kubo_held),
    Adapter(
        "kubo+gateway",
        make=_kubo_gateway_make,
        tamper=_kubo_tamper,
        drop=_kubo_drop,
        confirmed=True,
        held=_kubo_held,
    ),
    Adapter(
        "local+gateways",
        make=_gateways_make,
        tamper=lambda store, cid: _local_tamper(_cache_of(store), cid),
        drop=lambda store, cid: _local_block(_cache_of(store), cid).unlink(),
        confirmed=None,
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
def test_put_bytes_matches_ipfs_and_round_trips(adapter: Adapter, store: ArtifactStore, spec: dict[str, Any]) -> None:
    data = spec_bytes(spec)
    cid = store.put_bytes(data)
    assert cid == spec["cid"]
    if adapter.held is not None:
        assert adapter.held(store, cid) == spec["blocks"]
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


def test_put_path_streams_the_50MiB_file(adapter: Adapter, store: ArtifactStore, tmp_path: Path) -> None:
    (spec,) = [f for f in FILES if f["name"] == "pattern-50MiB"]
    source = tmp_path / "big.bin"
    source.write_bytes(spec_bytes(spec))
    assert store.put_path(source) == spec["cid"]
    if adapter.held is not None:
        assert adapter.held(store, spec["cid"]) == spec["blocks"]
    out = store.get_path(spec["cid"], tmp_path / "big.out")
    assert out.stat().st_size == spec["size"]
    assert out.read_bytes() == spec_bytes(spec)


@pytest.mark.parametrize("spec", DIRECTORIES, ids=[d["name"] for d in DIRECTORIES])
def test_put_path_directory_matches_ipfs_and_round_trips(
    adapter: Adapter, store: ArtifactStore, spec: dict[str, Any], tmp_path: Path
) -> None:
    source = build_tree(tmp_path / "src" / spec["name"], spec["entries"])
    cid = store.put_path(source)
    assert cid == spec["cid"]
    if adapter.held is not None:
        assert adapter.held(store, cid) == spec["blocks"]
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


# ------------------------------------------------------------------------------------------------ publishing


def test_publish_is_idempotent(store: ArtifactStore) -> None:
    data = content("pattern", 2 * CHUNK_SIZE + 1, 19)
    cid = store.put_bytes(data)
    store.publish(cid)
    store.publish(cid)
    assert store.has(cid)
    assert store.get_bytes(cid) == data


def test_publish_of_what_no_source_holds_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        store.publish(str(Cid.of(RAW, b"held nowhere")))


def test_confirm_published_right_after_a_put(adapter: Adapter, store: ArtifactStore, tmp_path: Path) -> None:
    """False without gateways, True once one serves the whole DAG, ``ArtifactUnavailable`` (retryable) while none
    does: never True from a local copy alone."""
    (spec,) = [d for d in DIRECTORIES if d["name"] == "nested"]
    cid = store.put_path(build_tree(tmp_path / "src", spec["entries"]))
    if adapter.confirmed is None:
        with pytest.raises(ArtifactUnavailable, match="not published yet") as raised:
            store.confirm_published(cid)
        assert raised.value.retryable
    else:
        assert store.confirm_published(cid) is adapter.confirmed
    assert store.has(cid)


def test_every_adapter_gives_the_same_cids(tmp_path: Path) -> None:
    """One input, one CID, whichever adapter stores it (the vectors above pin them to IPFS's; this also covers
    inputs no vector has)."""
    tree = build_tree(tmp_path / "tree", [{"path": "a/b.txt", "type": "file", "kind": "pattern", "size": 5, "seed": 1}])
    inputs = [b"", b"\x00", content("pattern", CHUNK_SIZE + 1, 42)]
    seen: dict[str, list[str]] = {}
    for adapter in ADAPTERS:
        store = adapter.make(tmp_path / adapter.name)
        seen[adapter.name] = [store.put_bytes(data) for data in inputs] + [store.put_path(tree)]
    assert all(cids == seen["local"] for cids in seen.values()), seen

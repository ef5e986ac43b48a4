"""The remote artifact kinds: the Kubo RPC client, the trustless gateway client and the store composing them.

Everything runs against real HTTP servers on 127.0.0.1 (``tests/ipfs_fakes.py``, one server each per module).

How the fake Kubo's wire format was checked (nobody here wrote Kubo; the code is checked against real nodes):

* Kubo RPC reference, https://docs.ipfs.tech/reference/kubo/rpc/ (generated from Kubo v0.26-v0.39): every call is
  ``POST``; arguments go in the query string (``arg=`` for positional ones); ``/api/v0/add`` takes
  ``cid-version``, ``raw-leaves`` ("Passing version 1 will cause the raw-leaves option to default to true"),
  ``chunker`` (default ``size-262144``), ``pin`` (default true), ``wrap-with-directory``, ``hash``, ``trickle``,
  ``inline``, ``only-hash``, ``progress``; its body is ``multipart/form-data`` where "directory parts have a
  special content type ``application/x-directory``" and no data, and a file part carries
  ``Content-Disposition: form-data; name="file"; filename="folderName%2Ffile.txt"`` (the path URL-encoded) with
  ``Content-Type: application/octet-stream``; "a depth-first traversal of the directory tree is recommended to
  order the different parts". Its answer objects are ``{"Name", "Hash", "Size", "Bytes"}``. ``/api/v0/block/get``
  returns the raw bytes (``text/plain``); ``/api/v0/block/stat`` returns ``{"Key", "Size"}``. Status codes: 500
  "RPC endpoint returned an error" with the reason in the body, 400 malformed, 403 forbidden, 404 no such
  endpoint, 405 wrong method (GET).
* The encoding of that multipart body, in the source of Kubo's file library (ipfs/boxo ``files/``):
  ``multifilereader.go`` writes ``form-data; name="file"; filename="<url.QueryEscape(path)>"`` and the content
  types ``application/x-directory``, ``application/symlink`` (the body is the link target) and
  ``application/octet-stream``; ``multipartfile.go`` reads the name back with ``url.QueryUnescape`` and
  ``path.Clean("/" + name)``, and groups parts into directories only while they follow their directory
  (``isChild``): the fake reproduces both, so an out-of-order or wrongly escaped body fails here as on Kubo.
* Kubo's error body, ``{"Message": ..., "Code": 0, "Type": "error"}``, and its answer to ``block/get`` of a block
  it lacks with ``offline=true``: HTTP 500, ``block was not found locally (offline): ipld: could not find <cid>``
  (boxo ``exchange/offline``: ``fmt.Errorf("block was not found locally (offline): %w", err)``).
* The fake builds the DAG itself with our UnixFS importer from the parts it parsed, and refuses parameters it
  cannot honour (a missing ``cid-version=1`` means CIDv0 on Kubo), so the CID vectors of
  ``tests/fixtures/cids/expected.json`` come out of it only when the client's multipart layout and parameters
  are right.

The gateways follow https://specs.ipfs.tech/http-gateways/trustless-gateway/: ``format=`` and ``Accept`` on every
request, ``Content-Type: application/vnd.ipld.car; version=1; order=dfs; dups=n``, 404 when the root is missing,
a CAR cut short when a child is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.artifacts import KuboRpc, LocalArtifactStore, RemoteArtifactStore, TrustlessGateways
from orchestrator.adapters.artifacts.unixfs import RAW, Cid, add_bytes
from orchestrator.domain.errors import (
    ArtifactError,
    ArtifactNotFound,
    ArtifactTooLarge,
    ArtifactUnavailable,
    ConfigError,
)
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.config import load_config
from tests.ipfs_fakes import FakeGateways, FakeKubo, GatewayMode, KuboNode
from tests.test_artifacts import DIRECTORIES, FILES, build_tree, content, snapshot, spec_bytes

SMALL_FILES = [f for f in FILES if f["size"] <= 3 * 262_144]


@pytest.fixture(scope="module")
def kubo() -> Iterator[FakeKubo]:
    server = FakeKubo()
    yield server
    server.close()


@pytest.fixture(scope="module")
def gateways() -> Iterator[FakeGateways]:
    server = FakeGateways()
    yield server
    server.close()


def dag_blocks_of(data: bytes) -> dict[Cid, bytes]:
    blocks: dict[Cid, bytes] = {}
    add_bytes(data, blocks.__setitem__)
    return blocks


def cached(store: RemoteArtifactStore) -> set[str]:
    return {p.name for p in (store.cache.root / "blocks").iterdir() if not p.name.startswith(".")}


def reader(tmp: Path, urls: list[str], *, timeout: float = 5.0, max_bytes: int = 1 << 30) -> RemoteArtifactStore:
    """The ``local`` kind with gateways: an empty cache that reads through ``urls``."""
    gw = TrustlessGateways(urls, timeout=timeout, max_bytes=max_bytes)
    return RemoteArtifactStore(LocalArtifactStore(tmp / "cache"), gateways=gw)


def source_with(tmp: Path, data: bytes) -> tuple[LocalArtifactStore, str]:
    source = LocalArtifactStore(tmp / "source")
    return source, source.put_bytes(data)


# ---------------------------------------------------------------------------------------------------- Kubo


def kubo_store(tmp: Path, node: KuboNode, **kw: Any) -> RemoteArtifactStore:
    return RemoteArtifactStore(LocalArtifactStore(tmp / "cache"), kubo=KuboRpc(node.url, timeout=10), **kw)


@pytest.mark.parametrize("spec", SMALL_FILES, ids=[f["name"] for f in SMALL_FILES])
def test_kubo_computes_the_ipfs_cid_of_every_file_vector(kubo: FakeKubo, spec: dict[str, Any], tmp_path: Path) -> None:
    node = kubo.node()
    cid = kubo_store(tmp_path, node).put_bytes(spec_bytes(spec))
    assert cid == spec["cid"]
    assert node.added == [("artifact", spec["cid"])]  # what the fake built from the upload, not our answer
    assert node.pins == {Cid.parse(spec["cid"])}
    assert node.last_parts == [("application/octet-stream", "artifact")]
    assert node.framing == ["length"]  # a Content-Length, which proxies in front of hosted nodes want


@pytest.mark.parametrize("spec", DIRECTORIES, ids=[d["name"] for d in DIRECTORIES])
def test_kubo_computes_the_ipfs_cid_of_every_directory_vector(
    kubo: FakeKubo, spec: dict[str, Any], tmp_path: Path
) -> None:
    node = kubo.node()
    source = build_tree(tmp_path / "src" / spec["name"], spec["entries"])
    assert kubo_store(tmp_path, node).put_path(source) == spec["cid"]
    assert node.added == [("artifact", spec["cid"])]
    assert node.pins == {Cid.parse(spec["cid"])}
    kinds = {kind for kind, _ in node.last_parts}
    assert "application/x-directory" in kinds
    if any(e["type"] == "symlink" for e in spec["entries"]):
        assert "application/symlink" in kinds


def test_fake_kubo_refuses_what_it_cannot_honour(kubo: FakeKubo, tmp_path: Path) -> None:
    """A client that forgot cid-version=1 must not get a right-looking CID from the fake."""
    import httpx

    node = kubo.node()
    files = {"file": ("artifact", b"hello", "application/octet-stream")}
    answer = httpx.post(f"{node.url}/api/v0/add", files=files, params={"raw-leaves": "true"})
    assert answer.status_code == 500
    assert answer.json()["Type"] == "error" and "cid-version=0" in answer.json()["Message"]
    answer = httpx.post(
        f"{node.url}/api/v0/add", files=files, params={"cid-version": "1", "wrap-with-directory": "true"}
    )
    lines = [line for line in answer.text.splitlines() if line]
    assert answer.status_code == 200 and len(lines) == 2 and '"Name": ""' in lines[-1]
    assert node.added == [("artifact", str(Cid.of(RAW, b"hello")))]
    assert node.pins == {Cid.parse(lines[-1].split('"Hash": "')[1].split('"')[0])}  # the wrapper, pinned
    answer = httpx.post(f"{node.url}/api/v0/add", files=files, params={"cid-version": "1", "pin": "false"})
    assert answer.status_code == 200 and len(node.pins) == 1


def test_kubo_publish_is_idempotent_and_rebuilds_from_the_cache(kubo: FakeKubo, tmp_path: Path) -> None:
    node = kubo.node()
    store = kubo_store(tmp_path, node)
    cid = store.put_bytes(content("pattern", 600_000, 2))
    node.blocks.clear()
    node.pins.clear()
    store.publish(cid)
    store.publish(cid)
    assert node.added == [("artifact", cid)] * 3
    assert node.pins == {Cid.parse(cid)}
    assert set(node.blocks) == set(dag_blocks_of(content("pattern", 600_000, 2)))


def test_kubo_reads_what_the_cache_lacks_and_caches_it(kubo: FakeKubo, tmp_path: Path) -> None:
    node = kubo.node()
    data = content("pattern", 3 * 262_144 + 10, 6)
    cid = kubo_store(tmp_path / "writer", node).put_bytes(data)
    fresh = kubo_store(tmp_path / "reader", node)
    assert fresh.has(cid)
    assert cached(fresh) == {str(Cid.parse(cid))}  # has() reads inner nodes, looks leaves up with block/stat
    assert fresh.get_bytes(cid) == data
    assert cached(fresh) == {str(c) for c in dag_blocks_of(data)}


def test_kubo_wrong_bytes_are_never_used(kubo: FakeKubo, gateways: FakeGateways, tmp_path: Path) -> None:
    node = kubo.node()
    data = content("pattern", 262_144 + 1, 7)
    cid = kubo_store(tmp_path / "writer", node).put_bytes(data)
    leaf = next(c for c in dag_blocks_of(data) if c.codec == RAW)
    node.blocks[leaf] = node.blocks[leaf][:-1] + b"\x00"
    alone = kubo_store(tmp_path / "alone", node)
    with pytest.raises(ArtifactUnavailable, match="do not match"):
        alone.get_bytes(cid)
    assert str(leaf) not in cached(alone)
    source, _ = source_with(tmp_path, data)
    good = gateways.gateway(source)
    rescued = kubo_store(tmp_path / "rescued", node, gateways=TrustlessGateways([good.url], timeout=5))
    assert rescued.get_bytes(cid) == data
    assert rescued.cache.get_block(leaf) == dag_blocks_of(data)[leaf]


def test_kubo_unreachable_keeps_the_artifact_and_publish_says_so(
    tmp_path: Path, caplog: Any, refused_port: int
) -> None:
    port = refused_port
    store = RemoteArtifactStore(LocalArtifactStore(tmp_path / "cache"), kubo=KuboRpc(f"http://127.0.0.1:{port}"))
    with caplog.at_level(logging.WARNING):
        cid = store.put_bytes(b"made offline")
    assert store.cache.get_bytes(cid) == b"made offline"
    assert "publishing it to Kubo failed" in caplog.text
    with pytest.raises(ArtifactUnavailable, match=f"cannot reach Kubo RPC at http://127.0.0.1:{port}") as raised:
        store.publish(cid)
    assert raised.value.retryable


def test_kubo_error_body_is_surfaced(kubo: FakeKubo, tmp_path: Path) -> None:
    node = kubo.node()
    store = kubo_store(tmp_path, node)
    cid = store.cache.put_bytes(b"x")
    node.fail_add = "pin: context canceled: repo is full"
    with pytest.raises(ArtifactUnavailable, match=r"add: HTTP 500: pin: context canceled: repo is full"):
        store.publish(cid)


def test_kubo_timeout_is_unavailable_with_the_url(kubo: FakeKubo, tmp_path: Path) -> None:
    node = kubo.node()
    node.stall_seconds = 1.0
    rpc = KuboRpc(node.url, timeout=0.3, authorization="Bearer hush-hush")
    with pytest.raises(ArtifactUnavailable, match=f"Kubo RPC at {node.url} timed out on block/get") as raised:
        rpc.get_block(Cid.of(RAW, b"slow"))
    assert raised.value.retryable and "hush" not in str(raised.value)


def test_kubo_missing_block_is_not_found(kubo: FakeKubo, tmp_path: Path) -> None:
    missing = Cid.of(RAW, b"nobody has this")
    with pytest.raises(ArtifactNotFound, match=f"could not find {missing}"):
        KuboRpc(kubo.node().url).get_block(missing)


def test_kubo_url_that_is_not_an_rpc_api_says_so(kubo: FakeKubo, gateways: FakeGateways, tmp_path: Path) -> None:
    gw = gateways.gateway(LocalArtifactStore(tmp_path / "empty"))
    with pytest.raises(ArtifactError, match="no such RPC endpoint") as raised:
        KuboRpc(gw.url).get_block(Cid.of(RAW, b"x"))
    assert "port 5001" in str(raised.value)


def test_a_kubo_root_different_from_ours_is_refused(kubo: FakeKubo, tmp_path: Path) -> None:
    node = kubo.node()
    rpc = KuboRpc(node.url)
    ours = Cid.of(RAW, b"what we hold")
    lying_load = {ours: b"something else"}.__getitem__  # re-exported bytes that are not this DAG
    with pytest.raises(ArtifactError, match=f"computed root {Cid.of(RAW, b'something else')} .* root is {ours}"):
        rpc.add_dag(ours, lying_load)


# ---------------------------------------------------------------------------------------------------- auth


SECRET = "Bearer s3cr3t-t0ken-value"


def runtime_store(tmp: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_config(environ={**env, "DEWORKER_DATA_DIR": str(tmp)})
    return Runtime(config).artifacts


def test_auth_header_comes_from_the_env_and_never_shows(
    kubo: FakeKubo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    node = kubo.node(require_auth=SECRET)
    env = {
        "DEWORKER_ARTIFACTS__KIND": "kubo",
        "DEWORKER_ARTIFACTS__KUBO__URL": node.url,
        "DEWORKER_ARTIFACTS__KUBO__AUTH_HEADER_ENV": "KUBO_AUTH",
        "KUBO_AUTH": SECRET,
    }
    store = runtime_store(tmp_path, env, monkeypatch)
    assert isinstance(store, RemoteArtifactStore)
    cid = store.put_bytes(b"authorised")
    assert node.added == [("artifact", cid)] and node.auth_seen[-1] == SECRET

    node.echo_auth = True  # a careless endpoint that repeats the header in its errors
    node.fail_add = "quota exceeded"
    with pytest.raises(ArtifactUnavailable) as raised:
        store.publish(cid)
    assert "quota exceeded" in str(raised.value) and "[redacted]" in str(raised.value)
    assert "s3cr3t" not in str(raised.value)

    node.fail_add = "disk full"
    with caplog.at_level(logging.DEBUG):
        store.put_bytes(b"logged, not raised")  # put only logs a failed publish
    assert "disk full" in caplog.text and "s3cr3t" not in caplog.text

    node.require_auth = "Bearer another"
    with pytest.raises(ArtifactError, match="credentials were refused") as refused:
        store.publish(cid)
    assert "s3cr3t" not in str(refused.value) and "auth_header_env" in str(refused.value)


def test_basic_auth_comes_from_the_env(kubo: FakeKubo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = kubo.node(require_auth="Basic dXNlcjpwYXNzLXdvcmQ=")  # base64("user:pass-word")
    env = {
        "DEWORKER_ARTIFACTS__KIND": "kubo",
        "DEWORKER_ARTIFACTS__KUBO__URL": node.url,
        "DEWORKER_ARTIFACTS__KUBO__BASIC_AUTH_ENV": "KUBO_BASIC",
        "KUBO_BASIC": "user:pass-word",
    }
    store = runtime_store(tmp_path, env, monkeypatch)
    assert store.put_bytes(b"basic") in dict(node.added).values()


def test_a_missing_auth_variable_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"DEWORKER_ARTIFACTS__KIND": "kubo", "DEWORKER_ARTIFACTS__KUBO__AUTH_HEADER_ENV": "KUBO_AUTH_UNSET"}
    with pytest.raises(ConfigError, match=r"\$KUBO_AUTH_UNSET, which is not set") as raised:
        runtime_store(tmp_path, env, monkeypatch)
    assert raised.value.key == "artifacts.kubo.auth_header_env"


@pytest.mark.parametrize(
    ("env", "key", "text"),
    [
        ({"DEWORKER_ARTIFACTS__GATEWAYS": "ftp://gw.example"}, "artifacts.gateways.0", "scheme"),
        ({"DEWORKER_ARTIFACTS__GATEWAYS": "https://gw.example/ipfs/"}, "artifacts.gateways", "without /ipfs"),
        ({"DEWORKER_ARTIFACTS__GATEWAYS": "https://me:hunter22@gw.example"}, "artifacts.gateways", "password"),
        ({"DEWORKER_ARTIFACTS__KUBO__URL": "http://me:hunter22@h:5001"}, "artifacts.kubo.url", "password"),
        ({"DEWORKER_ARTIFACTS__KIND": "ipfs"}, "artifacts.kind", "'local' or 'kubo'"),
        ({"DEWORKER_ARTIFACTS__GATEWAY_TIMEOUT": "0"}, "artifacts.gateway_timeout", "greater than 0"),
        (
            {"DEWORKER_ARTIFACTS__KUBO__AUTH_HEADER_ENV": "A", "DEWORKER_ARTIFACTS__KUBO__BASIC_AUTH_ENV": "B"},
            "artifacts.kubo",
            "not both",
        ),
        ({"DEWORKER_ARTIFACTS__KUBO__AUTH_HEADER_ENV": "Bearer abc"}, "artifacts.kubo.auth_header_env", "pattern"),
        ({"DEWORKER_ARTIFACTS__GATEWAY": "https://a.example"}, "artifacts.gateway", "'artifacts.gateways'"),
        ({"DEWORKER_ARTIFACTS__KUBO__TOKEN": "x"}, "artifacts.kubo.token", "unknown config key"),
    ],
)
def test_bad_artifacts_config_names_the_key(env: dict[str, str], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ=env)
    assert raised.value.key == key
    assert text in str(raised.value)
    assert "hunter22" not in str(raised.value)


def test_a_bad_gateway_in_the_file_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("artifacts:\n  kind: kubo\n  gateways:\n    - https://ipfs.io\n    - not a url\n")
    with pytest.raises(ConfigError, match=r"'artifacts.gateways.1' \(.*config.yaml:3\)") as raised:
        load_config(config, environ={})
    assert "config.yaml documents each key" in str(raised.value)


def test_runtime_builds_each_kind(tmp_path: Path) -> None:
    def store(**env: str) -> object:
        return Runtime(load_config(environ={"DEWORKER_DATA_DIR": str(tmp_path), **env})).artifacts

    assert isinstance(store(), LocalArtifactStore)
    with_gateways = store(DEWORKER_ARTIFACTS__GATEWAYS="https://a.example, https://b.example/")
    assert isinstance(with_gateways, RemoteArtifactStore) and with_gateways.kubo is None
    assert with_gateways.gateways is not None and with_gateways.gateways.urls == [
        "https://a.example",
        "https://b.example",
    ]
    kubo_kind = store(DEWORKER_ARTIFACTS__KIND="kubo")
    assert isinstance(kubo_kind, RemoteArtifactStore) and kubo_kind.kubo is not None
    assert kubo_kind.kubo.url == "http://127.0.0.1:5001" and kubo_kind.cache.root == tmp_path / "artifacts"


# ------------------------------------------------------------------------------------------------ gateways


def test_a_good_gateway_fills_the_cache(gateways: FakeGateways, tmp_path: Path) -> None:
    data = content("pattern", 5 * 262_144 + 3, 9)
    source, cid = source_with(tmp_path, data)
    gw = gateways.gateway(source)
    store = reader(tmp_path, [gw.url])
    assert not store.has(cid)
    assert store.get_bytes(cid) == data
    assert cached(store) == {str(c) for c in dag_blocks_of(data)}
    # the root alone (raw), then one CAR for the rest; every request says what it wants twice, as the spec asks
    assert gw.requests == [("raw", "application/vnd.ipld.raw"), ("car", "application/vnd.ipld.car; version=1")]
    assert store.has(cid)


def test_a_directory_through_a_gateway(gateways: FakeGateways, tmp_path: Path) -> None:
    (spec,) = [d for d in DIRECTORIES if d["name"] == "nested"]
    source = LocalArtifactStore(tmp_path / "source")
    tree = build_tree(tmp_path / "tree", spec["entries"])
    cid = source.put_path(tree)
    store = reader(tmp_path, [gateways.gateway(source).url])
    out = store.get_path(cid, tmp_path / "out")
    assert snapshot(out) == snapshot(tree)


BAD_MODES: list[GatewayMode] = ["flip", "truncate", "stall", "html", "missing"]


@pytest.mark.parametrize("root_cached", [False, True], ids=["root-by-raw", "rest-by-car"])
@pytest.mark.parametrize("mode", BAD_MODES)
def test_a_bad_gateway_is_skipped_and_nothing_of_it_is_kept(
    gateways: FakeGateways, tmp_path: Path, mode: GatewayMode, root_cached: bool, caplog: Any
) -> None:
    data = content("pattern", 2 * 262_144 + 77, 11)
    source, cid = source_with(tmp_path, data)
    bad = gateways.gateway(source, mode)
    bad.stall_seconds = 1.5
    good = gateways.gateway(source)
    store = reader(tmp_path, [bad.url, good.url], timeout=0.5)
    if root_cached:  # the first miss is then a child: the bad gateway is asked for a CAR
        store.cache.put_block(Cid.parse(cid), source.get_block(Cid.parse(cid)))
    with caplog.at_level(logging.WARNING, logger="orchestrator.adapters.artifacts.gateway"):
        assert store.get_bytes(cid) == data
    assert bad.requests and good.requests
    assert bad.requests[0][0] == ("car" if root_cached else "raw")
    expected = dag_blocks_of(data)
    assert cached(store) == {str(c) for c in expected}
    for block_cid, block in expected.items():  # every cached byte is the right one
        assert (store.cache.root / "blocks" / str(block_cid)).read_bytes() == block
    skipped = [r for r in caplog.records if bad.url in r.getMessage()]
    assert skipped and all("\n" not in r.getMessage() for r in skipped)  # one line per skip


REASONS = {
    "raw": ["sent wrong bytes", "broke off", "timed out", "answered Content-Type 'text/html", "HTTP 404"],
    "car": ["wrong bytes in its CAR", "truncated", "timed out", "not a CAR", "HTTP 404"],
}


@pytest.mark.parametrize("request_kind", ["raw", "car"])
def test_every_gateway_bad_is_unavailable_with_each_reason(
    gateways: FakeGateways, tmp_path: Path, request_kind: str
) -> None:
    data = content("pattern", 262_144 + 9, 12)
    source, cid = source_with(tmp_path, data)
    bad = [gateways.gateway(source, mode) for mode in BAD_MODES]
    bad[2].stall_seconds = 1.0
    store = reader(tmp_path, [g.url for g in bad], timeout=0.4)
    with pytest.raises(ArtifactUnavailable) as raised:
        if request_kind == "raw":
            store.get_bytes(cid)  # the root block alone comes first
        else:
            store.confirm_published(cid)  # a CAR of the whole DAG
    text = str(raised.value)
    assert raised.value.retryable
    for gateway, reason in zip(bad, REASONS[request_kind], strict=True):
        assert [f for f, _ in gateway.requests] == [request_kind]
        said = text.split(gateway.url, 1)[1].split("http://", 1)[0]
        assert reason in said, (reason, text)
    assert cached(store) == set()


def test_every_gateway_404_is_not_found(gateways: FakeGateways, tmp_path: Path) -> None:
    empty = LocalArtifactStore(tmp_path / "empty")
    urls = [gateways.gateway(empty).url, gateways.gateway(empty, "missing").url]
    cid = str(Cid.of(RAW, b"published nowhere"))
    with pytest.raises(ArtifactNotFound) as raised:
        reader(tmp_path, urls).get_bytes(cid)
    assert cid in str(raised.value) and all(url in str(raised.value) for url in urls)


def test_blocks_a_car_lacks_are_fetched_one_by_one(gateways: FakeGateways, tmp_path: Path) -> None:
    data = content("pattern", 3 * 262_144 + 1, 13)
    source, cid = source_with(tmp_path, data)
    for mode in ("partial", "raw-only"):
        gw = gateways.gateway(source, mode)
        store = reader(tmp_path / mode, [gw.url])
        assert store.get_bytes(cid) == data
        leaves = [c for c in dag_blocks_of(data) if c.codec == RAW]
        assert [f for f, _ in gw.requests].count("raw") == 1 + len(leaves)  # the root, then each leaf


def test_unrelated_blocks_in_a_car_are_not_kept(gateways: FakeGateways, tmp_path: Path) -> None:
    data = content("pattern", 262_144 + 5, 14)
    source, cid = source_with(tmp_path, data)
    gw = gateways.gateway(source, "extra")
    junk = {Cid.of(RAW, bytes([i]) * 1000): bytes([i]) * 1000 for i in range(20)}
    gw.extra_blocks = junk
    store = reader(tmp_path, [gw.url])
    assert store.get_bytes(cid) == data
    assert cached(store) == {str(c) for c in dag_blocks_of(data)}
    assert not list((tmp_path / "cache").glob(".fetch-*"))  # staging is gone


def test_the_size_cap_skips_a_gateway(gateways: FakeGateways, tmp_path: Path) -> None:
    data = content("pattern", 4 * 262_144, 15)
    source, cid = source_with(tmp_path, data)
    gw = gateways.gateway(source)
    store = reader(tmp_path, [gw.url], max_bytes=600_000)
    with pytest.raises(ArtifactTooLarge, match="max_fetch_bytes"):
        store.get_bytes(cid)
    assert cached(store) <= {cid}  # the root block fitted; nothing else was kept


def test_max_bytes_refuses_before_the_content_is_fetched(gateways: FakeGateways, tmp_path: Path) -> None:
    data = content("pattern", 6 * 262_144, 16)
    source, cid = source_with(tmp_path, data)
    gw = gateways.gateway(source)
    with pytest.raises(ArtifactTooLarge, match="more than the limit of 1000"):
        reader(tmp_path, [gw.url]).get_bytes(cid, max_bytes=1000)
    assert gw.requests == [("raw", "application/vnd.ipld.raw")]


# ------------------------------------------------------------------------------------------ confirm_published


def test_confirm_published_reads_through_the_gateways_not_the_cache(
    kubo: FakeKubo, gateways: FakeGateways, tmp_path: Path
) -> None:
    node = kubo.node()
    data = content("pattern", 2 * 262_144 + 3, 17)
    publisher_cache = LocalArtifactStore(tmp_path / "cache")
    serving = gateways.gateway(publisher_cache)  # as `deworker artifact serve` would serve this machine's store
    empty = gateways.gateway(LocalArtifactStore(tmp_path / "nothing"))
    store = RemoteArtifactStore(
        publisher_cache, kubo=KuboRpc(node.url), gateways=TrustlessGateways([empty.url], timeout=5)
    )
    cid = store.put_bytes(data)
    before = cached(store)
    with pytest.raises(ArtifactUnavailable, match=f"not published yet.*{empty.url}"):
        store.confirm_published(cid)  # the cache holds it all, yet no gateway serves it: not confirmed
    assert RemoteArtifactStore(publisher_cache, kubo=KuboRpc(node.url)).confirm_published(cid) is False
    store.gateways = TrustlessGateways([empty.url, serving.url], timeout=5)
    assert store.confirm_published(cid) is True
    assert [f for f, _ in serving.requests] == ["car"]
    assert cached(store) == before
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".confirm-")]


def test_confirm_published_does_not_fill_the_cache(gateways: FakeGateways, tmp_path: Path) -> None:
    data = content("pattern", 262_144 * 2, 18)
    source, cid = source_with(tmp_path, data)
    store = reader(tmp_path, [gateways.gateway(source, "flip").url, gateways.gateway(source).url])
    assert store.confirm_published(cid) is True
    assert cached(store) == set()
    assert not store.has(cid)


def test_publish_without_kubo_makes_the_dag_whole_here(gateways: FakeGateways, tmp_path: Path) -> None:
    data = content("pattern", 2 * 262_144 + 1, 19)
    source, cid = source_with(tmp_path, data)
    store = reader(tmp_path, [gateways.gateway(source).url])
    store.publish(cid)  # others read this store (`deworker artifact serve`): it now holds every block
    assert cached(store) == {str(c) for c in dag_blocks_of(data)}
    store.publish(store.put_bytes(b"here"))
    with pytest.raises(ArtifactNotFound):
        store.publish(str(Cid.of(RAW, b"not here")))


def test_the_add_body_is_plain_rfc_7578_multipart(tmp_path: Path) -> None:
    """Read back with the standard library's MIME parser (an implementation that owes nothing to ours or to
    the fake): depth-first parts, Go ``url.QueryEscape`` file names, Kubo's three content types."""
    import email
    import email.policy
    import io

    from orchestrator.adapters.artifacts.kubo import _write_multipart

    tree = tmp_path / "tree"
    (tree / "sub dir").mkdir(parents=True)
    (tree / "sub dir" / "ünï cødé.txt").write_bytes(b"unicode")
    (tree / "a+b&c=d.txt").write_bytes(b"")
    (tree / "link").symlink_to("sub dir")
    store = LocalArtifactStore(tmp_path / "store")
    root = Cid.parse(store.put_path(tree))
    body = io.BytesIO()
    _write_multipart(body, "XyZ-boundary", root, store.get_block)
    message = email.message_from_bytes(
        b"Content-Type: multipart/form-data; boundary=XyZ-boundary\r\n\r\n" + body.getvalue(),
        policy=email.policy.HTTP,
    )
    parts = [
        (
            part.get_content_type(),
            part.get_param("name", header="content-disposition"),
            part.get_param("filename", header="content-disposition"),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    ]
    assert parts == [
        ("application/x-directory", "file", "artifact", b""),
        ("application/octet-stream", "file", "artifact%2Fa%2Bb%26c%3Dd.txt", b""),
        ("application/symlink", "file", "artifact%2Flink", b"sub dir"),
        ("application/x-directory", "file", "artifact%2Fsub+dir", b""),
        ("application/octet-stream", "file", "artifact%2Fsub+dir%2F%C3%BCn%C3%AF+c%C3%B8d%C3%A9.txt", b"unicode"),
    ]


def test_a_root_that_understates_its_size_cannot_pull_more_than_max_bytes(
    gateways: FakeGateways, tmp_path: Path
) -> None:
    """A hostile spec: a file root declaring 100 bytes over 2 MiB of chunks. ``get_bytes(max_bytes=1000)`` (the
    board's spec limit) passes the root's declared size, so the DAG fetch itself is bounded by about max_bytes:
    the gateway is cut off long before 2 MiB, nothing of it is cached, and the read is ArtifactTooLarge."""
    from orchestrator.adapters.artifacts.unixfs import (
        DAG_PB,
        RAW,
        PBLink,
        PBNode,
        UnixfsData,
        UnixfsType,
        encode_pbnode,
        encode_unixfs,
    )

    source = LocalArtifactStore(tmp_path / "hostile")
    links = []
    for i in range(8):
        chunk = bytes([i]) * 262_144
        leaf = Cid.of(RAW, chunk)
        source.put_block(leaf, chunk)
        links.append(PBLink(cid=leaf, name="", tsize=len(chunk)))
    lie = UnixfsData(type=UnixfsType.FILE, filesize=100, blocksizes=(12,) * 8)
    block = encode_pbnode(PBNode(links=tuple(links), data=encode_unixfs(lie)))
    root = Cid.of(DAG_PB, block)
    source.put_block(root, block)
    gateway = gateways.gateway(source)
    store = reader(tmp_path / "operator", [gateway.url])
    with pytest.raises(ArtifactTooLarge):
        store.get_bytes(str(root), max_bytes=1000)
    assert cached(store) <= {str(root)}  # the root, verified; no chunk of the 2 MiB

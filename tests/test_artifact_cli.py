"""``deworker artifact export`` / ``import`` / ``serve``: the console entry point
(``orchestrator.entry.cli.main.main``) run in-process (a subprocess costs ~5 s of imports here),
``serve`` as a real process; the store is set by ``DEWORKER_ARTIFACTS__PATH``."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from orchestrator.adapters.artifacts import LocalArtifactStore, read_car
from orchestrator.adapters.artifacts.car import header_bytes, section_bytes
from orchestrator.adapters.artifacts.unixfs import Cid, decode_pbnode
from orchestrator.entry.cli.main import exposure_warning, main

DATA = bytes((i * 7) % 251 for i in range(1_000_000))  # 4 distinct chunks under a root


def store_env(path: Path) -> dict[str, str]:
    return {"DEWORKER_ARTIFACTS__PATH": str(path)}


class Cli:
    """``deworker ARGS`` through ``main()``, as the console script runs it: (exit code, stdout, stderr)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cwd: Path) -> None:
        self.monkeypatch, self.capsys = monkeypatch, capsys
        monkeypatch.chdir(cwd)  # no ./config.yaml: the defaults, plus the environment
        monkeypatch.setenv("COLUMNS", "200")

    def __call__(self, *args: str, store: Path | None = None, ok: bool = True) -> tuple[int, str, str]:
        if store is not None:
            self.monkeypatch.setenv("DEWORKER_ARTIFACTS__PATH", str(store))
        self.monkeypatch.setattr(sys, "argv", ["deworker", *args])
        handlers = list(logging.getLogger().handlers)
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            logging.getLogger().handlers[:] = handlers  # main() adds its handler on every call
        out, err = self.capsys.readouterr()
        if ok:
            assert code == 0, f"deworker {' '.join(args)} exited {code}:\n{out}\n{err}"
        return code, out, err


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    return Cli(monkeypatch, capsys, tmp_path)


@pytest.fixture
def source(tmp_path: Path) -> tuple[LocalArtifactStore, str]:
    store = LocalArtifactStore(tmp_path / "source")
    folder = tmp_path / "site"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>hi</h1>\n")
    (folder / "sub" / "data.bin").write_bytes(DATA)
    return store, store.put_path(folder)


def test_export_then_import_round_trips_a_dag(cli: Cli, tmp_path: Path, source: tuple[LocalArtifactStore, str]) -> None:
    store, cid = source
    car = tmp_path / "site.car"
    cli("artifact", "export", cid, "-o", str(car), store=store.root)
    _, out, err = cli("artifact", "import", str(car), store=tmp_path / "dest")
    assert out == f"{cid}\n"
    assert "imported 8 blocks" in err
    dest = LocalArtifactStore(tmp_path / "dest")
    assert dest.has(cid)
    tree = dest.get_path(cid, tmp_path / "out")
    assert (tree / "sub" / "data.bin").read_bytes() == DATA
    # what `ipfs dag export` writes: one root, dfs, no duplicates; stdout works too
    piped = subprocess.run(
        [sys.executable, "-m", "orchestrator", "artifact", "export", cid, "-o", "-"],
        cwd=tmp_path,
        env={**os.environ, **store_env(store.root)},
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert hashlib.sha256(piped.stdout).digest() == hashlib.sha256(car.read_bytes()).digest()
    header, blocks = read_car(piped.stdout)
    assert [str(r) for r in header.roots] == [cid] and len(blocks) == len({c for c, _ in blocks}) == 8
    assert blocks[0][0] == Cid.parse(cid)


def test_export_of_a_dag_with_a_missing_block_fails_and_leaves_no_file(
    cli: Cli, tmp_path: Path, source: tuple[LocalArtifactStore, str]
) -> None:
    store, cid = source
    sub = next(link.cid for link in decode_pbnode(store.get_block(Cid.parse(cid))).links if link.name == "sub")
    data = next(link.cid for link in decode_pbnode(store.get_block(sub)).links)
    leaf = decode_pbnode(store.get_block(data)).links[-1].cid
    (store.root / "blocks" / str(leaf)).unlink()
    car = tmp_path / "site.car"
    code, _, err = cli("artifact", "export", cid, "-o", str(car), store=store.root, ok=False)
    assert code == 1
    assert err.startswith("error:") and str(leaf) in err and "Traceback" not in err
    assert not car.exists() and list(tmp_path.glob(".site.car*")) == []


def test_import_refuses_an_incomplete_dag_and_names_the_missing_block(
    cli: Cli, tmp_path: Path, source: tuple[LocalArtifactStore, str]
) -> None:
    store, cid = source
    root = Cid.parse(cid)
    car = tmp_path / "root-only.car"
    car.write_bytes(header_bytes([root]) + section_bytes(root, store.get_block(root)))
    code, out, err = cli("artifact", "import", str(car), store=tmp_path / "dest", ok=False)
    assert code == 1 and out == ""
    first_error = err.splitlines()[0]
    assert first_error.startswith("error:") and "incomplete" in first_error
    missing = sorted(str(link.cid) for link in decode_pbnode(store.get_block(root)).links)
    assert any(m in first_error for m in missing)
    kept = LocalArtifactStore(tmp_path / "dest")
    assert kept.has_block(root) and kept.get_block(root) == store.get_block(root)  # verified, so kept


def test_import_of_a_truncated_or_tampered_car_keeps_only_verified_blocks(
    cli: Cli, tmp_path: Path, source: tuple[LocalArtifactStore, str]
) -> None:
    store, cid = source
    car = tmp_path / "site.car"
    cli("artifact", "export", cid, "-o", str(car), store=store.root)
    whole = car.read_bytes()
    (tmp_path / "short.car").write_bytes(whole[: len(whole) // 2])
    damaged = bytearray(whole)
    damaged[-100] ^= 0xFF  # inside the last block
    (tmp_path / "bad.car").write_bytes(bytes(damaged))
    for name, words in (("short.car", "truncated"), ("bad.car", "does not match its CID")):
        dest = tmp_path / f"dest-{name}"
        code, out, err = cli("artifact", "import", str(tmp_path / name), store=dest, ok=False)
        assert code == 1 and out == "", err
        assert err.startswith("error:") and words in err and "verified blocks" in err
        kept = LocalArtifactStore(dest)
        names = [p.name for p in (dest / "blocks").iterdir()]
        assert names and not any(n.startswith(".tmp-") for n in names)
        for stored in names:  # every block kept reads back verified
            kept.get_block(Cid.parse(stored))
        assert not kept.has(cid)


def test_import_refuses_a_car_without_roots_and_a_carv2(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.car"
    empty.write_bytes(header_bytes([]))
    code, _, err = cli("artifact", "import", str(empty), store=tmp_path / "dest", ok=False)
    assert code == 1 and "names no root" in err
    v2 = tmp_path / "v2.car"
    v2.write_bytes(bytes.fromhex("0aa16776657273696f6e02") + bytes(40))  # the CARv2 pragma
    code, _, err = cli("artifact", "import", str(v2), ok=False)
    assert code == 1 and "not a CARv1" in err


def test_serve_prints_its_url_and_serves_the_store(
    cli: Cli, tmp_path: Path, source: tuple[LocalArtifactStore, str]
) -> None:
    """A real `deworker artifact serve` process; the CAR it sends is then imported by `deworker artifact import`."""
    store, cid = source
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "artifact", "serve", "--port", "0"],
        cwd=tmp_path,
        env={**os.environ, **store_env(store.root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # printed once the socket is bound
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        for _ in range(200):
            try:
                response = httpx.get(f"{url}ipfs/{cid}?format=car", timeout=10)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vnd.ipld.car; version=1; order=dfs; dups=n"
        assert httpx.get(f"{url}ipfs/{cid}", headers={"Accept": "text/html"}).status_code == 406
        (tmp_path / "served.car").write_bytes(response.content)
        _, out, _ = cli("artifact", "import", str(tmp_path / "served.car"), store=tmp_path / "dest")
        assert out == f"{cid}\n"
        tree = LocalArtifactStore(tmp_path / "dest").get_path(cid, tmp_path / "out")
        assert (tree / "sub" / "data.bin").read_bytes() == DATA
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "warning" not in err and "trustless gateway for" in err


def test_serve_warns_only_off_loopback(tmp_path: Path) -> None:
    assert exposure_warning("127.0.0.1", tmp_path) is None
    assert exposure_warning("::1", tmp_path) is None
    assert exposure_warning("localhost", tmp_path) is None
    warning = exposure_warning("0.0.0.0", tmp_path)
    assert warning is not None and "reachable from other machines" in warning and str(tmp_path) in warning


def test_help_texts_give_examples(cli: Cli) -> None:
    for command in ("serve", "export", "import"):
        _, out, _ = cli("artifact", command, "--help")
        assert "deworker artifact" in out and "Example" in out, out

"""Artifact throughput (MB/s): the local store beside the gateway path, for 1 MB and 50 MB files, in one run.

For each size, the same bytes (a deterministic non-repeating pattern, so no chunk is deduplicated):

* ``local put``: ``LocalArtifactStore.put_bytes`` — chunk, hash, build the DAG, write the blocks.
* ``local get``: ``get_bytes`` from the same store — read every block and verify it against its CID.
* ``publish``: what an artifact goes through before a submit with ``artifacts.kind: local`` — ``put_bytes`` into
  an empty store, then ``publish`` (the whole-DAG check that it is there to be served).
* ``serve``: a plain HTTP client downloading ``/ipfs/CID?format=car`` from Deworker's trustless gateway (the
  product's FastAPI app under uvicorn on 127.0.0.1), bytes counted, nothing verified: the server's own rate.
* ``fetch + verify``: another party's ``RemoteArtifactStore`` with that gateway in ``artifacts.gateways`` and an
  empty cache: CAR streamed, every block verified and cached, then the file read back from the cache verified.
* ``read back``: ``confirm_published`` — the whole DAG fetched through the gateway into a scratch store, verified.

Each figure is the median of ``--rounds`` runs (a fresh cache or store each time); ratios are against ``local get``.

    .venv/bin/python -m benchmarks.artifacts [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.artifacts.gateway import TrustlessGateways
from orchestrator.adapters.artifacts.gateway_server import create_gateway_app
from orchestrator.adapters.artifacts.remote import RemoteArtifactStore
from orchestrator.entry.web.server import bind, serve_in_thread

MB = 1_000_000
SIZES = {"1 MB": 1 * MB, "50 MB": 50 * MB}
COLUMNS = ("local put", "local get", "publish", "serve", "fetch + verify", "read back")
CAR = "application/vnd.ipld.car"


def content(size: int) -> bytes:
    """``size`` bytes with no repeated 256 KiB chunk (a repeating pattern would be stored once)."""
    period = bytes((i * 31 + 7) % 251 for i in range(251))  # 251 is prime: chunks never line up with it
    return (period * (size // len(period) + 1))[:size]


def timed(run: Callable[[], object], rounds: int, setup: Callable[[], None] = lambda: None) -> float:
    """Median seconds of ``run`` over ``rounds``, ``setup`` untimed before each."""
    times = []
    for _ in range(rounds):
        setup()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int, *, url: str, served: LocalArtifactStore, root: Path, rounds: int) -> dict[str, float]:
    """Seconds per measurement for one file size (see the module docstring)."""
    data = content(size)
    counter = iter(range(1_000_000))
    rows: dict[str, float] = {}

    def fresh_store() -> LocalArtifactStore:
        return LocalArtifactStore(root / f"s{next(counter)}")

    target: list[LocalArtifactStore] = []
    rows["local put"] = timed(lambda: target[-1].put_bytes(data), rounds, lambda: target.append(fresh_store()))
    cid = target[-1].put_bytes(data)
    rows["local get"] = timed(lambda: target[-1].get_bytes(cid), rounds)

    publishing: list[LocalArtifactStore] = []

    def publish() -> None:
        publishing[-1].publish(publishing[-1].put_bytes(data))

    rows["publish"] = timed(publish, rounds, lambda: publishing.append(fresh_store()))
    served.put_bytes(data)  # what the gateway serves

    def download() -> int:
        got = 0
        car = {"format": "car"}
        with httpx.stream("GET", f"{url}/ipfs/{cid}", params=car, headers={"Accept": CAR}, timeout=60) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                got += len(chunk)
        return got

    rows["serve"] = timed(download, rounds)
    reader: list[RemoteArtifactStore] = []

    def new_reader() -> None:
        reader.append(RemoteArtifactStore(fresh_store(), gateways=TrustlessGateways([url], timeout=60)))

    def fetch() -> None:
        assert reader[-1].get_bytes(cid) == data

    rows["fetch + verify"] = timed(fetch, rounds, new_reader)
    rows["read back"] = timed(lambda: reader[-1].confirm_published(cid), rounds)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per measurement (the median is shown)")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"Artifact throughput, MB/s (median of {args.rounds})")
    table.add_column("size")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    table.add_column("fetch+verify / local get", justify="right")
    with tempfile.TemporaryDirectory(prefix="deworker-bench-") as tmp:
        root = Path(tmp)
        served = LocalArtifactStore(root / "served")
        with serve_in_thread(create_gateway_app(served), bind("127.0.0.1", 0)) as url:
            for label, size in SIZES.items():
                console.print(f"[bold]{label}[/]: measuring ...")
                seconds = measure(size, url=url, served=served, root=root, rounds=args.rounds)
                rates = {k: size / MB / v for k, v in seconds.items()}
                ratio = rates["fetch + verify"] / rates["local get"]
                table.add_row(label, *(f"{rates[k]:,.1f}" for k in COLUMNS), f"{ratio:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()

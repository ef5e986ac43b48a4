"""Content-addressed artifact storage with CIDs identical to ``ipfs add --cid-version=1 --raw-leaves``.

``unixfs`` builds and reads the UnixFS block DAGs (pure format code: CIDs, dag-pb, the balanced file layout,
directories); ``car`` reads and writes CARv1 archives; ``local`` is the ``ArtifactStore`` adapter that keeps
the blocks in a local directory; ``gateway`` reads from IPFS trustless gateways, ``kubo`` talks to a Kubo node's
RPC API, ``remote`` composes them over a local store used as the cache, and ``gateway_server`` serves a local
store as an IPFS trustless gateway (imported on its own: it needs FastAPI, which nothing else here does).
"""

from orchestrator.adapters.artifacts.car import CarHeader, CarReader, dag_blocks, iter_car, read_car, write_car
from orchestrator.adapters.artifacts.gateway import TrustlessGateways
from orchestrator.adapters.artifacts.kubo import KuboRpc
from orchestrator.adapters.artifacts.local import LocalArtifactStore
from orchestrator.adapters.artifacts.remote import RemoteArtifactStore
from orchestrator.adapters.artifacts.unixfs import (
    CHUNK_SIZE,
    MAX_LINKS,
    BlockSink,
    BlockSource,
    Cid,
    DagRef,
    add_bytes,
    add_path,
    add_stream,
    export_path,
    iter_file,
    walk_dag,
)

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "BlockSink",
    "BlockSource",
    "CarHeader",
    "CarReader",
    "Cid",
    "DagRef",
    "KuboRpc",
    "LocalArtifactStore",
    "RemoteArtifactStore",
    "TrustlessGateways",
    "add_bytes",
    "add_path",
    "add_stream",
    "dag_blocks",
    "export_path",
    "iter_car",
    "iter_file",
    "read_car",
    "walk_dag",
    "write_car",
]

"""Review web app benchmark: server time of each page with ``--pending`` items awaiting review (default 1,000).

The database (SQLite in a temporary folder, or ``--db-url`` for PostgreSQL) is filled through ``Store`` like the
orchestrator would: each task discovered, claimed, produced and offered for review, with a small artifact. Then
every page is requested ``--rounds`` times in-process through the ASGI app (TestClient: no network, so this is
server time: routing, database reads, rendering) and the median and 95th percentile are printed.
The bar from the issue is < 100 ms per page.

    .venv/bin/python -m benchmarks.review_pages [--pending 1000] [--paid 0] [--rounds 20] [--db-url postgresql://...]

Run it as a module (``-m``): run as a script, ``benchmarks/`` comes first on ``sys.path`` and its ``wallets.py``
hides the ``wallets`` package that the migrations import.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.sql import AgentCreate, CostKind, ReviewDecision, SelfCheck, Store, make_engine, migrate
from orchestrator.domain.board import BoardPhase, BoardTask, Payout
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import Deliverable, DeliverableKind, TaskSpec
from orchestrator.entry.web.app import create_app
from orchestrator.entry.web.config import Role, WebConfig, WebSettings
from orchestrator.entry.web.users import UserStore

S = TaskState
PASSWORD = "benchmark password"
ADDRESS = "0x" + "aa" * 20
NOTES = b"# Release notes\n\n" + b"".join(f"- change number {i}\n".encode() for i in range(200))
SPEC = TaskSpec(
    title="Write release notes",
    description="Write release notes for the 1.2 release.",
    deliverable=Deliverable(kind=DeliverableKind.MARKDOWN),
    skills=["writing"],
    acceptance=["mentions every change"],
)
CODE = b"".join(f"def f{i}(x: int) -> int:\n    return x * {i}\n\n\n".encode() for i in range(200))


def fill(store: Store, artifacts: LocalArtifactStore, pending: int, folder: Path) -> tuple[int, str]:
    """``pending`` tasks awaiting review; returns one task id and its CID (the last one, with a revision)."""
    store.upsert_agent(agent=AgentCreate(name="alice", address=ADDRESS, skills=["writing"]))
    (folder / "notes.md").write_bytes(NOTES)
    (folder / "code.py").write_bytes(CODE)
    (folder / "manifest.json").write_text('{"agent": "alice", "model": "SmolLM2-135M-Instruct", "cost": "0.004"}')
    cid = artifacts.put_path(folder)
    spec = SPEC
    task_id = 0
    for n in range(pending):
        bt = BoardTask("main", str(n), ADDRESS, ADDRESS, 10**18, 1_900_000_000, ADDRESS, f"bafyspec{n}",
                       BoardPhase.OPEN, "OPEN", spec=spec)  # fmt: skip
        task_id = store.upsert_discovered(board_task=bt)[0].id
        store.transition(task_id=task_id, to=S.CLAIMING, actor="bench", agent="alice")
        store.transition(task_id=task_id, to=S.CLAIMED, actor="bench")
        store.transition(task_id=task_id, to=S.PRODUCING, actor="bench")
        store.record_artifact(task_id=task_id, cid=cid, manifest={"model": "m"}, self_check=SelfCheck.PASSED, actor="a")
        store.transition(task_id=task_id, to=S.PRODUCED, actor="bench")
        store.transition(task_id=task_id, to=S.AWAITING_REVIEW, actor="bench")
    return task_id, cid


def fill_paid(engine: Engine, artifacts_cid: str, paid: int, first: int) -> None:
    """``paid`` tasks carried through to PAID, spread over the last 90 days, each with its reward, gas and LLM
    cost: what the dashboard sums."""
    now = datetime.now(UTC)
    at = [now]
    store = Store(engine, clock=lambda: at[0])
    for n in range(paid):
        at[0] = now - timedelta(days=90) + timedelta(minutes=(n * 137) % (90 * 24 * 60))
        i = first + n
        bt = BoardTask("main", str(i), ADDRESS, ADDRESS, 10**18, 1_900_000_000, ADDRESS, f"bafyspec{i}",
                       BoardPhase.OPEN, "OPEN", spec=SPEC)  # fmt: skip
        task_id = store.upsert_discovered(board_task=bt)[0].id
        store.transition(task_id=task_id, to=S.CLAIMING, actor="bench", agent="alice")
        store.transition(task_id=task_id, to=S.CLAIMED, actor="bench")
        store.transition(task_id=task_id, to=S.PRODUCING, actor="bench")
        store.record_artifact(task_id=task_id, cid=artifacts_cid, manifest={}, self_check=SelfCheck.PASSED, actor="a")
        store.transition(task_id=task_id, to=S.PRODUCED, actor="bench")
        store.record_review(task_id=task_id, artifact_cid=artifacts_cid, decision=ReviewDecision.APPROVE, reviewer="b")
        store.transition(task_id=task_id, to=S.SUBMITTING, actor="bench", cid=artifacts_cid)
        store.transition(task_id=task_id, to=S.SUBMITTED, actor="bench", tx_hash=_tx(i))
        store.record_reward(payout=Payout("main", str(i), ADDRESS, ADDRESS, 10**18 + n, _tx(i + 10**9), 1000 + n))
        store.record_cost(agent="alice", kind=CostKind.GAS, amount=21_000 * 10**9, task_id=task_id, tx_hash=_tx(i))
        store.record_cost(agent="alice", kind=CostKind.LLM, amount=4_000, task_id=task_id)


def _tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--paid", type=int, default=0, help="also this many PAID tasks with rewards and costs")
    parser.add_argument("--db-url", default=None, help="an empty database (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engine = make_engine(args.db_url or f"sqlite:///{root / 'bench.db'}")
        migrate(engine)
        store = Store(engine)
        artifacts = LocalArtifactStore(root / "artifacts")
        users = UserStore(engine, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        users.add_user(name="bench", password=PASSWORD, role=Role.REVIEWER)
        secret, _ = users.create_token(name="bench", label="bench")
        folder = root / "artifact"
        folder.mkdir()
        started = time.perf_counter()
        task_id, cid = fill(store, artifacts, args.pending, folder)
        fill_paid(engine, cid, args.paid, first=args.pending)
        console.print(
            f"filled {args.pending} pending reviews and {args.paid} paid tasks in {time.perf_counter() - started:.1f} s"
        )

        # The objects the fill left in this process are no part of a review server (which starts with the data in
        # the database, not in its heap); without this, Python's full GC passes over them show up as page spikes.
        gc.collect()
        gc.freeze()
        settings = WebSettings.resolve(WebConfig(), data_dir=root)
        app = create_app(engine=engine, store=store, artifacts=artifacts, users=users, settings=settings)
        client = TestClient(app)
        page = client.get("/login")
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": csrf})
        pages = {
            f"inbox ({args.pending} items)": "/inbox",
            "review page": f"/review/{task_id}",
            "fleet dashboard": "/dashboard",
            "task history": f"/tasks/{task_id}",
            f"task list ({args.pending + args.paid} tasks)": "/tasks",
            "task list, page 5": "/tasks?page=5",
            "API: pending reviews (JSON)": "/api/reviews",
        }
        table = Table("page", "median ms", "p95 ms", "max ms", "bytes", title=f"server time, {args.rounds} rounds")
        headers = {"Authorization": f"Bearer {secret}"}
        for name, url in pages.items():
            client.get(url, headers=headers)  # warm: exports and renders the artifact once (cached per CID)
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                response = client.get(url, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            table.add_row(name, f"{statistics.median(times):.1f}", f"{p95:.1f}", f"{times[-1]:.1f}",
                          f"{len(response.content):,}")  # fmt: skip
        console.print(table)
        engine.dispose()


if __name__ == "__main__":
    main()

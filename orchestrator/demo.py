"""``deworker demo``: what exists today, end to end, on the in-process chain.

A DAO deploys a reward token and a TaskBoard and posts the bundled tasks (one with a malformed spec, one with a
reward too small to bother with). Three agent wallets discover the tasks by polling the board, claim them, and
submit an artifact stored by CID; the DAO approves and the board pays. The demo then checks that every agent's
on-chain token balance equals the payouts read back from the board's events.

Not here yet (later issues): LLM agents (the artifact is a placeholder built from the spec), the orchestrator
service with its database, encrypted wallets with a policy gate, and human review. The demo says so.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.bootstrap import Deployment, Runtime
from orchestrator.chain import EthTesterChain
from orchestrator.config import Config
from orchestrator.dao import Dao, from_base_units, to_base_units
from orchestrator.domain import BoardTask, TaskSpec

#: Tasks paying less than this are skipped (a stand-in for the profit gate the orchestrator issue brings).
MIN_REWARD_TOKENS = Decimal(5)
AGENT_NAMES = ("ada", "grace", "linus")


@dataclass
class DemoTask:
    file: str
    reward: str
    spec: TaskSpec | None = None
    spec_raw: bytes | None = None


@dataclass
class Outcome:
    task: BoardTask
    state: str
    agent: str = "-"
    reason: str = ""
    artifact_cid: str = ""


@dataclass
class Tally:
    paid: int = 0
    quarantined: int = 0
    skipped: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


def bundled_tasks() -> list[DemoTask]:
    """The demo's task set, shipped inside the package."""
    folder = resources.files("orchestrator").joinpath("demo_tasks")
    tasks = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".json"):
            continue
        doc: dict[str, Any] = json.loads(entry.read_text("utf-8"))
        if "spec" in doc:
            tasks.append(DemoTask(entry.name, doc["reward"], spec=TaskSpec.model_validate(doc["spec"])))
        else:
            tasks.append(DemoTask(entry.name, doc["reward"], spec_raw=doc["spec_raw"].encode()))
    return tasks


def placeholder_artifact(task: BoardTask, folder: Path) -> Path:
    """The stand-in for an agent's work until the Agents issue lands: a file that says exactly what it is."""
    assert task.spec is not None
    folder.mkdir(parents=True)
    name = task.spec.deliverable.filename or "ARTIFACT.md"
    checklist = "\n".join(f"- [ ] {c}" for c in task.spec.acceptance)
    (folder / name).write_text(
        f"Placeholder for task {task.task_id}: {task.spec.title}\n\n"
        "No LLM agent ran: this demo exercises the board, escrow and payout flow only.\n\n"
        f"Acceptance criteria to be met by a real agent:\n{checklist}\n",
        "utf-8",
    )
    return folder


def run(config: Config, *, console: Console, tasks_dir: Path | None = None) -> bool:
    """Run the demo; True when on-chain balances reconcile with the payouts recorded."""
    console.rule("[bold]Deworker demo[/] — in-process chain, local CID store")
    console.print(
        "[yellow]Foundation stage:[/] the board, escrow, specs, CIDs and payouts are real; the agents' work is a "
        "placeholder (LLM agents, the orchestrator service and human review land in later issues).\n"
    )
    with tempfile.TemporaryDirectory(prefix="deworker-demo-") as tmp:
        root = Path(tmp)
        demo_config = config.model_copy(update={"data_dir": root})
        rt = Runtime(demo_config, chain_override=EthTesterChain())
        return _run(rt, console, root)


def _run(rt: Runtime, console: Console, root: Path) -> bool:
    chain = rt.chain
    dao_sender = rt.dao_signer()
    agents = {name: rt.sender(rt.dev_key(i + 1)) for i, name in enumerate(AGENT_NAMES)}
    cfg = rt.config.dao
    tasks = bundled_tasks()
    tally = Tally()

    progress = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        step = progress.add_task("DAO deploys token + board", total=2)
        token, board, block = Dao.deploy(
            chain=chain,
            sender=dao_sender,
            name=cfg.token_name,
            symbol=cfg.token_symbol,
            decimals=cfg.token_decimals,
            supply=cfg.token_supply,
            claim_ttl=cfg.claim_ttl,
        )
        rt.addresses.save(Deployment(chain_id=chain.chain_id, token=token, board=board, block=block))
        progress.update(step, completed=2)
        dao = Dao(chain=chain, signer=dao_sender, store=rt.store, board=board, token=token)
        decimals = dao.decimals()

        step = progress.add_task("DAO posts tasks", total=len(tasks))
        deadline = _now(chain) + 3 * 86_400
        for t in tasks:
            reward = to_base_units(t.reward, decimals)
            if t.spec is not None:
                dao.post(t.spec, reward=reward, deadline=deadline)
            else:
                assert t.spec_raw is not None
                dao.post_raw(t.spec_raw, reward=reward, deadline=deadline)
            progress.advance(step)

        found, _cursor = rt.board.poll(block)
        step = progress.add_task("agents poll the board", total=1)
        progress.update(step, completed=1, description=f"agents poll: {len(found)} tasks found")

        min_reward = to_base_units(MIN_REWARD_TOKENS, decimals)
        workable: list[Outcome] = []
        for task in found:
            if task.quarantine_reason:
                tally.quarantined += 1
                tally.outcomes.append(Outcome(task, "quarantined", reason=task.quarantine_reason))
            elif task.reward < min_reward:
                tally.skipped += 1
                tally.outcomes.append(
                    Outcome(task, "skipped", reason=f"reward below the demo minimum of {MIN_REWARD_TOKENS} tokens")
                )
            else:
                workable.append(Outcome(task, "claimed", agent=AGENT_NAMES[len(workable) % len(AGENT_NAMES)]))

        step = progress.add_task("agents claim + submit", total=len(workable))
        for out in workable:
            wallet = agents[out.agent]
            rt.board.claim(out.task.task_id, wallet=wallet)
            folder = placeholder_artifact(out.task, root / "work" / str(out.task.task_id))
            out.artifact_cid = rt.store.put_path(folder)
            rt.board.submit(out.task.task_id, out.artifact_cid, wallet=wallet)
            out.state = "submitted"
            progress.advance(step)

        step = progress.add_task("DAO reviews + approves", total=len(workable))
        for out in workable:
            dao.approve(out.task.task_id)
            out.state = "paid"
            tally.paid += 1
            progress.advance(step)
        tally.outcomes.extend(workable)

    payouts, _ = rt.board.payouts(block)
    paid_to: dict[str, int] = {}
    for p in payouts:
        paid_to[p.recipient] = paid_to.get(p.recipient, 0) + p.amount

    symbol = dao.symbol()
    table = Table(title="Tasks")
    for col in ("id", "title", "reward", "outcome", "agent", "reason / artifact CID"):
        table.add_column(col, overflow="fold")
    for out in sorted(tally.outcomes, key=lambda o: o.task.task_id):
        title = out.task.spec.title if out.task.spec else "(bad spec)"
        table.add_row(
            str(out.task.task_id),
            title,
            f"{from_base_units(out.task.reward, decimals):f} {symbol}",
            out.state,
            out.agent,
            out.reason or out.artifact_cid,
        )
    console.print(table)

    reconcile = True
    agents_table = Table(title="Agents")
    for col in ("agent", "wallet", "tasks paid", "rewards (events)", "balance (chain)", "match"):
        agents_table.add_column(col)
    for name, wallet in agents.items():
        events_total = paid_to.get(wallet.address, 0)
        balance = dao.token_balance(wallet.address)
        ok = balance == events_total
        reconcile &= ok
        agents_table.add_row(
            name,
            wallet.address,
            str(sum(1 for o in workable if o.agent == name)),
            f"{from_base_units(events_total, decimals):f}",
            f"{from_base_units(balance, decimals):f}",
            "[green]yes[/]" if ok else "[red]NO[/]",
        )
    console.print(agents_table)
    verdict = "balances reconcile" if reconcile else "BALANCES DO NOT RECONCILE"
    console.print(
        f"demo: {tally.paid} tasks paid, {tally.quarantined} quarantined, {tally.skipped} skipped; {verdict}",
        highlight=False,
    )
    return reconcile


def _now(chain: EthTesterChain | Any) -> int:
    """The chain's notion of now (the in-process chain's clock can differ from the wall clock)."""
    return int(chain.latest_timestamp())

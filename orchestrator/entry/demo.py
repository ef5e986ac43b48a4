"""``deworker demo``: the whole flow end to end on embedded defaults — in-process chain, SQLite, local CID store,
the embedded local model.

A DAO deploys a reward token and a TaskBoard and posts the bundled tasks (writing, code with acceptance tests,
data, one malformed spec, one reward too small to be worth the gas). Three agents with their own encrypted
wallets are driven by the ``Orchestrator``: it discovers the tasks by polling, matches them (skills and the profit
gate; every skip has its reason), claims with the agent's wallet, lets the agent produce and self-check, passes
the review gate (automatic in the demo; ``--review human`` serves the review inbox and waits for decisions there),
submits; the DAO approves every submission and the board pays. The same client also deploys an ERC-8183 job market
(``AgenticCommerce``, a 1% platform fee) as a second board, hires one agent there directly for the first task and
posts the second writing task as an open job with a bid endpoint (served on 127.0.0.1): an agent bids, the client
hires the cheapest bid. The service works both boards, and the final tables show per board what was paid. The
demo exits non-zero unless each agent's on-chain token balance equals the rewards recorded in the database, and its
last line is ``demo: N tasks paid, M quarantined, K skipped; balances reconcile``.

``--agent instant`` swaps the model for ``InstantAgent`` (a templated artifact, no model) to show the pipeline
alone. Everything is built by ``orchestrator.entry.bootstrap.Runtime`` from the user's config on embedded defaults
(``demo_config``): its ``matching``, ``review``, ``service``, ``dao`` and ``web`` sections apply. The world-building
functions here (``deploy``, ``deploy_board``, ``fund_wallets``, ``InstantAgent``) are reused by the tests and
``benchmarks/pipeline.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.config import AgentProfile, Budgets, ModelEndpoint
from agents.ports import (
    MANIFEST_NAME,
    AgentResult,
    AgentRunner,
    AgentStatus,
    AgentTask,
    Manifest,
    ManifestFile,
    SelfCheck,
    SelfCheckStatus,
    Usage,
)
from orchestrator.adapters.chain import TxSender
from orchestrator.adapters.sql import Store
from orchestrator.app.service import Orchestrator, retry_failed
from orchestrator.domain.board import BoardPhase
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.money import units
from orchestrator.domain.review import ReviewMode
from orchestrator.domain.specs import TaskSpec
from orchestrator.entry.bids import BidBook
from orchestrator.entry.bootstrap import Deployment, RunnerFactory, Runtime
from orchestrator.entry.config import ArtifactsConfig, BoardConfig, ChainConfig, Config, DaoConfig, DbConfig
from orchestrator.entry.dao import Dao, from_base_units, to_base_units
from orchestrator.entry.demo_pool import ProjectStory, earn_and_claim, fund_project_by_vote, pool_reviews, shares_of
from orchestrator.entry.listing import short
from orchestrator.entry.listing import table as listing_table
from orchestrator.entry.market import Market
from orchestrator.entry.terminal import literal
from orchestrator.entry.web.routes.bids import bids_router
from orchestrator.entry.web.server import bind, serve_in_thread
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.chain import Chain
from wallets.config import WalletsConfig
from wallets.fleet import WalletFleet

S = TaskState
AGENT_NAMES = ("ada", "grace", "linus")
AGENT_SKILLS: dict[str, list[str]] = {
    "ada": ["writing", "markdown", "data"],
    "grace": ["python", "writing"],
    "linus": ["python", "data", "markdown", "writing"],
}
#: Native coin each agent wallet gets for gas.
AGENT_FUNDING_WEI = 10**17
#: Seconds the demo waits for all tasks to settle before giving up.
DEMO_TIMEOUT = 1800.0
AgentKind = Literal["local", "instant"]


@dataclass
class DemoTask:
    file: str
    reward: str
    spec: TaskSpec | None = None
    spec_raw: bytes | None = None


def bundled_tasks(folder: Path | None = None) -> list[DemoTask]:
    """The demo's task set (shipped inside the package), or every ``*.json`` in ``folder``."""
    source: Traversable = folder if folder is not None else resources.files("orchestrator").joinpath("demo_tasks")
    tasks = []
    for entry in sorted(source.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".json"):
            continue
        doc: dict[str, Any] = json.loads(entry.read_text("utf-8"))
        if "spec" in doc:
            tasks.append(DemoTask(entry.name, doc["reward"], spec=TaskSpec.model_validate(doc["spec"])))
        else:
            tasks.append(DemoTask(entry.name, doc["reward"], spec_raw=doc["spec_raw"].encode()))
    return tasks


# ------------------------------------------------------------------------------------------------ the world


def deploy(chain: Chain, signer: TxSender, artifacts: ArtifactStore, cfg: DaoConfig) -> tuple[Dao, int]:
    """Deploy a reward token and a board as the DAO; returns the DAO and the board's deployment block."""
    token, board, block = Dao.deploy_configured(chain=chain, sender=signer, config=cfg)
    return Dao(chain=chain, signer=signer, store=artifacts, board=board, token=token), block


def post_tasks(
    dao: Dao, tasks: Sequence[DemoTask], *, deadline: int, on_post: Callable[[], None] | None = None
) -> None:
    """Post every task with its reward (whole tokens in the file)."""
    decimals = dao.decimals()
    for t in tasks:
        reward = to_base_units(t.reward, decimals)
        if t.spec is not None:
            dao.post(t.spec, reward=reward, deadline=deadline)
        else:
            assert t.spec_raw is not None
            dao.post_raw(t.spec_raw, reward=reward, deadline=deadline)
        if on_post is not None:
            on_post()


def deploy_board(rt: Runtime, signer: TxSender) -> tuple[Dao, int]:
    """``deploy`` on the runtime's chain and artifact store, recorded in its address book as ``deworker dao
    deploy`` does: the runtime's board, fleet policy, token book and start block are this deployment's."""
    dao, block = deploy(rt.chain, signer, rt.artifacts, rt.config.dao)
    rt.addresses.save(Deployment(chain_id=rt.chain.chain_id, token=dao.token, board=dao.board_address, block=block))
    return dao, block


def fund_wallets(
    fleet: WalletFleet, names: Sequence[str], *, funder: TxSender, fund_wei: int = AGENT_FUNDING_WEI
) -> WalletFleet:
    """A keystore for each of ``names`` (created if missing), each wallet funded for gas by ``funder`` when it has
    less than ``fund_wei``."""
    for name in names:
        if not fleet.keystore.path(name).exists():
            fleet.create(name)
        address = fleet.keystore.entry(name).address
        if fleet.chain.balance(address) < fund_wei:
            funder.send(address, value=fund_wei)
    return fleet


def instant_agents(profile: AgentProfile) -> AgentRunner:
    """A ``RunnerFactory``: an ``InstantAgent`` for every profile."""
    return InstantAgent(profile.name)


class InstantAgent:
    """An ``AgentRunner`` that writes a templated artifact at once, without a model: the deliverable file names
    the task and lists the acceptance criteria. It runs no tests (self-check ``none``). For ``--agent instant``,
    the tests and the pipeline benchmark; ``contents`` maps a deliverable filename to the text to write instead."""

    def __init__(self, name: str, *, contents: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.contents = dict(contents or {})

    def run(
        self, task: AgentTask, workspace: Path, *, feedback: str | None = None, start_over: bool = False
    ) -> AgentResult:
        spec = task.spec
        out = workspace / "artifact"
        if start_over:
            shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        filename = spec.deliverable.filename or "ARTIFACT.md"
        checklist = "\n".join(f"- {c}" for c in spec.acceptance)
        text = self.contents.get(filename) or f"# {spec.title}\n\n{checklist}\n"
        if feedback:
            text += f"\n{'Redone after a rejection' if start_over else 'Revised after review'}: {feedback}\n"
        path = out / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        data = path.read_bytes()
        manifest = Manifest(
            task_id=task.task_id,
            agent=self.name,
            model="instant",
            prompt_hash="0" * 64,
            status=AgentStatus.PRODUCED,
            summary=f"templated {filename}",
            files=[ManifestFile(path=filename, size=len(data), sha256=hashlib.sha256(data).hexdigest())],
            usage=Usage(),
            cost=Decimal(0),
            self_check=SelfCheck(status=SelfCheckStatus.NONE),
            attempts=1,
            feedback=feedback,
        )
        (out / MANIFEST_NAME).write_text(json.dumps(manifest.model_dump(mode="json", by_alias=True), indent=2), "utf-8")
        return AgentResult(files_dir=out, manifest=manifest)


def demo_profiles(names: Sequence[str] = AGENT_NAMES) -> list[AgentProfile]:
    """Three agents on the embedded model, with small budgets and the forced-submit path (small models are
    unreliable with optional tool calls)."""
    return [
        AgentProfile(
            name=name,
            skills=AGENT_SKILLS[name],
            wallet=name,
            model=ModelEndpoint(max_tokens=384, tool_choice_auto=False),
            max_revisions=1,
            budgets=Budgets(max_seconds_per_task=300.0),
        )
        for name in names
    ]


# --------------------------------------------------------------------------------------------------- running


def demo_config(config: Config, root: Path) -> Config:
    """The demo's configuration: the user's ``matching``, ``review``, ``service``, ``dao``, ``web`` and
    ``agents`` sections on embedded defaults under ``root`` (in-process chain, SQLite, local CID store, default
    wallets) and the demo's agent profiles. The matching's token decimals are those of the token the demo deploys."""
    return config.model_copy(
        update={
            "data_dir": root,
            "chain": ChainConfig(),
            "artifacts": ArtifactsConfig(),
            "db": DbConfig(),
            "boards": [BoardConfig(name=config.dao_board.name, max_spec_bytes=config.dao_board.max_spec_bytes)],
            "wallets": WalletsConfig(),
            "agents": config.agents.model_copy(update={"profiles": demo_profiles()}),
            "matching": config.matching.model_copy(update={"token_decimals": config.dao.token_decimals}),
        }
    )


def run(
    config: Config,
    *,
    console: Console,
    tasks_dir: Path | None = None,
    review: ReviewMode = "auto",
    agent: AgentKind = "local",
) -> bool:
    """Run the demo; True when on-chain balances reconcile with the rewards recorded in the database."""
    console.rule("[bold]Deworker demo[/] — in-process chain, SQLite, local CID store, " + _agent_label(agent))
    passphrase = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="deworker-demo-") as tmp, ExitStack() as stack:
        rt = Runtime(demo_config(config, Path(tmp)), passphrase_override=lambda: passphrase)
        runner: RunnerFactory = instant_agents
        if agent == "local":
            with console.status("starting the embedded local model (SmolLM2-135M)..."):
                runner = rt.runners(stack)
        return _run(rt, console, tasks_dir=tasks_dir, review=review, runner=runner)


def _agent_label(agent: AgentKind) -> str:
    return "embedded local model" if agent == "local" else "instant agents (no model)"


def _run(rt: Runtime, console: Console, *, tasks_dir: Path | None, review: ReviewMode, runner: RunnerFactory) -> bool:
    tasks = bundled_tasks(tasks_dir)
    dao_signer = rt.sender(rt.dev_key(0))
    progress = Progress(
        TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    with progress, ExitStack() as stack:
        step = progress.add_task("DAO deploys token + board", total=1)
        dao, _block = deploy_board(rt, dao_signer)
        progress.advance(step)
        step = progress.add_task("DAO posts tasks", total=len(tasks))
        post_tasks(dao, tasks, deadline=rt.now() + 3 * 86_400, on_post=lambda: progress.advance(step))
        step = progress.add_task("DAO votes to fund a project pool", total=1)
        # the project's two tasks: writing tasks first (no acceptance tests), which the small local model finishes
        specs = sorted(
            (t for t in tasks if t.spec is not None), key=lambda t: t.spec is None or bool(t.spec.acceptance_tests)
        )
        pool_specs = [(t.spec, to_base_units(t.reward, dao.decimals())) for t in specs if t.spec is not None][:2]
        story = fund_project_by_vote(rt, dao, dao_signer, pool_specs, deadline=rt.now() + 3 * 86_400)
        progress.advance(step)
        step = progress.add_task("client hires on an ERC-8183 market", total=1)
        rt, market, jobs = hire_on_market(rt, dao, dao_signer, tasks)
        book, open_jobs = open_on_market(rt, market, dao, tasks, stack)
        progress.advance(step)
        step = progress.add_task("agent wallets (keystores)", total=1)
        fund_wallets(rt.fleet, AGENT_NAMES, funder=dao_signer)
        progress.advance(step)
        agents = rt.fleet_agents(rt.config.agents.profiles, runner=runner)
        orch = rt.orchestrator(agents, settings=rt.settings(review_mode=review))
        store = rt.db
        orch.start()
        bars = _StageBars(progress, len(tasks) + len(story.task_ids))
        if review == "human":
            stack.enter_context(_review_inbox(rt, console))
        started = time.monotonic()
        while True:
            orch.cycle()
            _client_hires_a_bid(market, book, open_jobs, orch)
            approved = _dao_approves(dao, skip=story.task_ids) + _client_completes(market, [*jobs, *open_jobs])
            approved += pool_reviews(story, dao, dao_signer)
            if approved:
                orch.collect()
            bars.update(store)
            posted = len(tasks) + len(story.task_ids) + len(jobs) + len(open_jobs)
            if all(t.state in _SETTLED for t in store.tasks()) and len(store.tasks()) == posted:
                break
            if time.monotonic() - started > DEMO_TIMEOUT:
                console.print("[red]demo: timed out waiting for tasks to settle[/]")
                break
            if not approved:
                time.sleep(0.2)
        names = [a.name for a in agents]
        step = progress.add_task("project earns; agents claim", total=1)
        earn_and_claim(rt, story, dao, dao_signer, names)
        progress.advance(step)
    return _report(console, store, dao, rt.fleet, names, story)


@contextmanager
def _review_inbox(rt: Runtime, console: Console) -> Iterator[None]:
    """``--review human``: the review web app over the demo's database, on ``web.host:web.port`` (a free port if
    that one is taken), with a one-off reviewer account and API token, printed for the user."""
    from orchestrator.entry.web.app import create_app
    from orchestrator.entry.web.config import Role, WebSettings
    from orchestrator.entry.web.server import bind, serve_in_thread

    config, root, users = rt.config, rt.config.data_dir, rt.users
    password = secrets.token_urlsafe(12)
    users.add_user(name=DEMO_REVIEWER, password=password, role=Role.REVIEWER)
    token, _ = users.create_token(name=DEMO_REVIEWER, label="demo")
    app = create_app(
        engine=rt.engine,
        store=rt.db,
        artifacts=rt.artifacts,
        users=users,
        settings=WebSettings.resolve(config.web, data_dir=root, tokens=rt.token_book()),
    )
    with serve_in_thread(app, bind(config.web.host, config.web.port, fallback=True)) as url:
        console.print(
            f"[bold]review is human:[/] the demo waits for your decisions in the review inbox\n"
            f"  open {url}/inbox and log in as {DEMO_REVIEWER}, password: {password}\n"
            f"  or from the shell: DEWORKER_DB__URL=sqlite:///{root / 'deworker.db'} deworker review list\n"
            f'  or the API: curl -H "Authorization: Bearer {token}" {url}/api/reviews',
            highlight=False,
            soft_wrap=True,
        )
        yield


#: The reviewer account ``--review human`` creates for the demo's inbox.
DEMO_REVIEWER = "demo"

#: States the demo waits for: terminal ones.
_SETTLED = frozenset({S.PAID, S.SKIPPED, S.QUARANTINED, S.LOST, S.ABANDONED, S.REJECTED, S.FAILED})
_STAGES: tuple[tuple[str, frozenset[TaskState]], ...] = (
    ("discovered", frozenset(TaskState)),
    ("claimed", frozenset({S.CLAIMED, S.PRODUCING, S.PRODUCED, S.AWAITING_REVIEW, S.APPROVED, S.SUBMITTING})),
    ("produced", frozenset({S.PRODUCED, S.AWAITING_REVIEW, S.APPROVED, S.SUBMITTING})),
    ("reviewed", frozenset({S.APPROVED, S.SUBMITTING})),
    ("submitted", frozenset({S.SUBMITTED})),
    ("paid", frozenset({S.PAID})),
)


class _StageBars:
    """One progress bar per stage: how many tasks have reached it (a task counts for every stage it passed)."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.bars: dict[str, TaskID] = {name: progress.add_task(f"tasks {name}", total=total) for name, _ in _STAGES}

    def update(self, store: Store) -> None:
        reached = {name: 0 for name, _ in _STAGES}
        for task in store.tasks():
            passed = {e.to_state for e in store.task_events(task_id=task.id)}
            for name, states in _STAGES:
                reached[name] += bool(passed & states)
        for name, count in reached.items():
            self.progress.update(self.bars[name], completed=count)


def _dao_approves(dao: Dao, *, skip: Sequence[int] = ()) -> int:
    """The DAO's reviewer approves every submitted task (its own review is out of the demo's scope) but those in
    ``skip`` (the project pool's: the pool is their reviewer on the board, see ``demo_pool.pool_reviews``)."""
    approved = 0
    for bt in dao.tasks():
        if bt.phase is BoardPhase.DELIVERED and int(bt.key) not in skip:
            dao.approve(int(bt.key))
            approved += 1
    return approved


#: The platform fee of the demo's ERC-8183 market (basis points): paid to its treasury, not to the agent.
MARKET_FEE_BP = 100
#: The demo market's board name.
MARKET = "acp"


def hire_on_market(
    rt: Runtime, dao: Dao, client: TxSender, tasks: Sequence[DemoTask]
) -> tuple[Runtime, Market, list[int]]:
    """Deploy our ERC-8183 market (AgenticCommerce, same token, ``MARKET_FEE_BP``), configure it as a second board
    and, as its client, hire the first agent whose skills cover the first bundled task, funded: the service works
    both boards. Returns the runtime with both boards (the same chain), the market and the job ids."""
    treasury = rt.sender(rt.dev_key(9)).address
    address, block = Market.deploy(
        chain=rt.chain, sender=client, token=dao.token, treasury=treasury, fee_bp=MARKET_FEE_BP
    )
    boards = [
        *rt.config.board_list,
        BoardConfig(name=MARKET, kind="erc8183", address=address, start_block=block, bid_hosts=["127.0.0.1"]),
    ]
    rt = dataclasses.replace(rt, config=rt.config.model_copy(update={"boards": boards}), chain_override=rt.chain)
    market = Market(chain=rt.chain, signer=client, store=rt.artifacts, address=address, name=MARKET)
    first = next((t for t in tasks if t.spec is not None), None)
    if first is None or first.spec is None:
        return rt, market, []
    wanted = {s.lower() for s in first.spec.skills}
    hired = next((name for name in AGENT_NAMES if wanted <= {s.lower() for s in AGENT_SKILLS[name]}), None)
    if hired is None:
        return rt, market, []
    fleet = fund_wallets(rt.fleet, [hired], funder=client)
    posted = market.post(
        first.spec,
        provider=fleet.keystore.entry(hired).address,
        evaluator=client.address,
        budget=to_base_units(first.reward, dao.decimals()),
        expired_at=rt.now() + 3 * 86_400,
    )
    return rt, market, [posted.job_id]


def open_on_market(
    rt: Runtime, market: Market, dao: Dao, tasks: Sequence[DemoTask], stack: ExitStack
) -> tuple[BidBook, list[int]]:
    """Serve the client's bid endpoint (the ``/bids`` route of ``deworker review serve``) on 127.0.0.1 for the
    demo's length, and post the second writing task (if any) as an open job whose spec names it: an agent bids,
    the client hires the cheapest bid (``_client_hires_a_bid``)."""
    book = BidBook(root=rt.config.data_dir / "bids", chain_id=rt.chain.chain_id, markets={MARKET: market.board})
    app = FastAPI()
    app.include_router(bids_router(book))
    url = stack.enter_context(serve_in_thread(app, bind("127.0.0.1", 0)))
    writing = [t for t in tasks if t.spec is not None and "writing" in {s.lower() for s in t.spec.skills}]
    if len(writing) < 2 or writing[1].spec is None:
        return book, []
    wanted = writing[1].spec.model_copy(update={"bid_endpoint": f"{url}/bids"})
    budget = to_base_units(writing[1].reward, dao.decimals())
    posted = market.post(wanted, provider=None, evaluator=market.me, budget=budget, expired_at=rt.now() + 3 * 86_400)
    return book, [posted.job_id]


def _client_hires_a_bid(market: Market, book: BidBook, jobs: Sequence[int], orch: Orchestrator) -> None:
    """The client hires the cheapest bid on each open job, and tells the bidder at once (as `deworker tasks retry`
    does; otherwise it would notice at its next backoff)."""
    for job in jobs:
        bids = book.bids(MARKET, job)
        if not bids or market.board.status(str(job)).phase is not BoardPhase.OPEN:
            continue
        market.hire(job, bids[0].bidder, bids[0].amount)
        waiting = orch.repos.tasks.find_task(board=MARKET, task_key=str(job))
        if waiting is not None and waiting.retry_at is not None:
            board = orch.boards[MARKET]
            retry_failed(repos=orch.repos, board=board, task_id=waiting.id, now=orch.clock(), actor="demo")


def _client_completes(market: Market, jobs: Sequence[int]) -> int:
    """The market's client, also its evaluator, completes every submitted job."""
    done = 0
    for job in jobs:
        if market.board.status(str(job)).phase is BoardPhase.DELIVERED:
            market.complete(job, "accepted")
            done += 1
    return done


def _report(
    console: Console, store: Store, dao: Dao, fleet: WalletFleet, agents: Sequence[str], story: ProjectStory
) -> bool:
    decimals, symbol = dao.decimals(), dao.symbol()
    tasks = store.tasks()
    pnl_task = store.pnl_by_task()
    table = listing_table(
        "Tasks",
        [
            ("id", "number"),
            ("title", "text"),
            ("reward", "number"),
            ("state", "id"),
            ("agent", "id"),
            ("reason", "text"),
            ("gas (ETH)", "number"),
            ("LLM ($)", "number"),
        ],
    )
    for t in tasks:
        pnl = pnl_task.get(t.id)
        table.add_row(
            t.task_key,
            literal(t.title) if t.title else "(bad spec)",  # task text and reasons are untrusted: never markup
            f"{from_base_units(t.reward, decimals):f} {symbol}",
            t.state.value,
            t.agent_name or "-",
            literal((t.state_reason or "")[:120]),
            units(pnl.gas_wei) if pnl else "0",
            f"{Decimal(pnl.llm_usd_micro) / 1_000_000:f}" if pnl else "0",
        )
    console.print(table)
    boards_table = Table(title="Boards")
    for column in ("board", "tasks", "tasks paid", f"paid to agents ({symbol})"):
        boards_table.add_column(column)
    for board in sorted({t.board for t in tasks}):
        mine = [t for t in tasks if t.board == board]
        paid = sum(pnl_task[t.id].rewards.get(dao.token, 0) for t in mine if t.id in pnl_task)
        boards_table.add_row(
            board,
            str(len(mine)),
            str(sum(1 for t in mine if t.state is S.PAID)),
            f"{from_base_units(paid, decimals):f}",
        )
    console.print(boards_table)
    pnl_agent = store.pnl_by_agent()
    agents_table = Table(title="Agents")
    columns = ["agent", "wallet", "tasks paid", f"bounties (db, {symbol})", "Atlas shares (chain)"]
    columns += [f"revenue (db, {symbol})", f"balance (chain, {symbol})", "match"]
    for column in columns:
        agents_table.add_column(column)
    reconcile = True
    shares = shares_of(story)
    for name in agents:
        address = fleet.keystore.entry(name).address
        pnl = pnl_agent.get(name)
        recorded = pnl.rewards.get(dao.token, 0) if pnl else 0
        revenue = pnl.revenue.get((story.pool.address, dao.token), 0) if pnl else 0
        balance = dao.token_balance(address)
        ok = recorded + revenue == balance  # bounties and revenue, both from the ledger, equal what the chain holds
        reconcile &= ok
        agents_table.add_row(
            name,
            short(address),
            str(sum(1 for t in tasks if t.agent_name == name and t.state is S.PAID)),
            f"{from_base_units(recorded, decimals):f}",
            str(shares.get(address.lower(), 0)),
            f"{from_base_units(revenue, decimals):f}",
            f"{from_base_units(balance, decimals):f}",
            "[green]yes[/]" if ok else "[red]NO[/]",
        )
    console.print(agents_table)
    count = {state: sum(1 for t in tasks if t.state is state) for state in TaskState}
    verdict = "balances reconcile" if reconcile else "BALANCES DO NOT RECONCILE"
    claimed = sum(p.revenue.get((story.pool.address, dao.token), 0) for p in pnl_agent.values())
    console.print(
        f"project pool {short(story.pool.address)}: funded by proposal {str(story.proposal)[:8]}… (executed), "
        f"{len(story.finalized)} tasks finalized, {sum(shares.values())} shares, "
        f"{from_base_units(story.revenue, decimals):f} {symbol} revenue deposited, "
        f"{from_base_units(claimed, decimals):f} claimed",
        highlight=False,
    )
    console.print(
        f"demo: {count[S.PAID]} tasks paid, {count[S.QUARANTINED]} quarantined, {count[S.SKIPPED]} skipped; {verdict}",
        highlight=False,
    )
    return reconcile

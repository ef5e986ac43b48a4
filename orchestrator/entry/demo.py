"""``deworker demo``: the whole flow end to end on embedded defaults — in-process chain, SQLite, local CID store,
the embedded local model.

A DAO deploys a reward token and a TaskBoard and posts the bundled tasks (writing, code with acceptance tests,
data, one malformed spec, one reward too small to be worth the gas). Three agents with their own encrypted
wallets are driven by the ``Orchestrator``: it discovers the tasks by polling, matches them (skills and the profit
gate; every skip has its reason), claims with the agent's wallet, lets the agent produce and self-check, passes
the review gate (automatic in the demo; ``--review human`` serves the review inbox and waits for decisions there),
submits; the DAO approves every submission and the board pays. The demo exits non-zero unless each agent's
on-chain token balance equals the rewards recorded in the database, and its last line is
``demo: N tasks paid, M quarantined, K skipped; balances reconcile``.

``--agent instant`` swaps the model for ``InstantAgent`` (a templated artifact, no model) to show the pipeline
alone. The world-building functions here (``deploy``, ``make_fleet``, ``InstantAgent``) are reused by the tests
and ``benchmarks/pipeline.py``.
"""

from __future__ import annotations

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

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.config import AgentProfile, AgentsConfig, Budgets, ModelEndpoint
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
from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.onchain import OnchainTaskBoard
from orchestrator.adapters.chain import EthTesterChain, TxSender
from orchestrator.adapters.sql import Store, make_engine, migrate
from orchestrator.app.matching import MatchingConfig
from orchestrator.app.service import FleetAgent, Orchestrator
from orchestrator.domain.board import BoardStatus
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.money import TokenBook, TokenInfo, units
from orchestrator.domain.review import ReviewMode
from orchestrator.domain.specs import TaskSpec
from orchestrator.entry.config import Config, DaoConfig
from orchestrator.entry.dao import Dao, from_base_units, to_base_units
from orchestrator.entry.listing import short
from orchestrator.entry.listing import table as listing_table
from orchestrator.entry.terminal import literal
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.chain import Chain
from wallets.config import WalletsConfig
from wallets.fleet import WalletFleet
from wallets.journal import Journal
from wallets.keystore import Keystore

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


def make_fleet(
    chain: Chain,
    *,
    board: str,
    root: Path,
    names: Sequence[str],
    funder: TxSender,
    passphrase: str,
    keystore: Keystore | None = None,
    config: WalletsConfig | None = None,
    fund_wei: int = AGENT_FUNDING_WEI,
) -> WalletFleet:
    """Keystores for ``names`` under ``root`` (created if missing), the journal in the run's database
    (``root/deworker.db``, migrated), each wallet funded for gas by ``funder`` when it has less than ``fund_wei``."""
    cfg = config or WalletsConfig()
    engine = make_engine(f"sqlite:///{root / 'deworker.db'}")
    migrate(engine)
    fleet = WalletFleet(
        config=cfg,
        keystore=keystore or Keystore(root / "keystores"),
        journal=Journal(engine),
        chain=chain,
        passphrase=lambda: passphrase,
        board=board,
        receipt_timeout=60.0,
    )
    for name in names:
        if not fleet.keystore.path(name).exists():
            fleet.create(name)
        address = fleet.keystore.entry(name).address
        if chain.balance(address) < fund_wei:
            funder.send(address, value=fund_wei)
    return fleet


def open_store(url: str, *, max_revisions: int = 3, amount_text: Callable[[int, str], str] | None = None) -> Store:
    engine = make_engine(url)
    migrate(engine)
    return Store(engine, max_revisions=max_revisions, amount_text=amount_text)


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
    with tempfile.TemporaryDirectory(prefix="deworker-demo-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        chain = EthTesterChain()

        base_url = stack.enter_context(_local_model(config, console)) if agent == "local" else None
        agents_cfg = AgentsConfig(profiles=demo_profiles())

        def runner(profile: AgentProfile) -> AgentRunner:
            if base_url is None:
                return InstantAgent(profile.name)
            from agents.langchain_agent import agent_from_profile
            from orchestrator.adapters.sql import DbSpendLedger

            # the demo's database (``_run`` opens the same file): daily spend is recorded where a real run keeps it
            engine = make_engine(f"sqlite:///{root / 'deworker.db'}")
            migrate(engine)
            return agent_from_profile(profile, agents_cfg, local_base_url=base_url, ledger=DbSpendLedger(engine))

        return _run(config, chain, root, console, tasks_dir=tasks_dir, review=review, runner=runner)


def _agent_label(agent: AgentKind) -> str:
    return "embedded local model" if agent == "local" else "instant agents (no model)"


@contextmanager
def _local_model(config: Config, console: Console) -> Iterator[str]:
    from agents.llm_server import LocalModelServer

    with console.status("starting the embedded local model (SmolLM2-135M)..."):
        server = LocalModelServer(config.agents.local_model)
        info = server.start()
    try:
        yield info.base_url
    finally:
        server.stop()


def _run(
    config: Config,
    chain: Chain,
    root: Path,
    console: Console,
    *,
    tasks_dir: Path | None,
    review: ReviewMode,
    runner: Callable[[AgentProfile], AgentRunner],
) -> bool:
    tasks = bundled_tasks(tasks_dir)
    artifacts = LocalArtifactStore(root / "artifacts")
    dev = chain.dev_accounts() if isinstance(chain, EthTesterChain) else []
    from eth_account import Account

    dao_signer = TxSender(chain, Account.from_key(dev[0].private_key))
    progress = Progress(
        TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    with progress, ExitStack() as stack:
        step = progress.add_task("DAO deploys token + board", total=1)
        dao, block = deploy(chain, dao_signer, artifacts, config.dao)
        progress.advance(step)
        step = progress.add_task("DAO posts tasks", total=len(tasks))
        deadline = _now(chain) + 3 * 86_400
        post_tasks(dao, tasks, deadline=deadline, on_post=lambda: progress.advance(step))
        step = progress.add_task("agent wallets (keystores)", total=1)
        fleet = make_fleet(
            chain,
            board=dao.board_address,
            root=root,
            names=AGENT_NAMES,
            funder=dao_signer,
            passphrase=secrets.token_urlsafe(24),
        )
        progress.advance(step)
        profiles = demo_profiles()
        agents = [
            FleetAgent(
                profile=p,
                runner=runner(p),
                wallet=fleet.wallet(p.wallet),
            )
            for p in profiles
        ]
        book = TokenBook([TokenInfo(address=dao.token, symbol=dao.symbol(), decimals=dao.decimals())])
        store = open_store(
            f"sqlite:///{root / 'deworker.db'}", max_revisions=config.review.max_revisions, amount_text=book.format
        )
        board = OnchainTaskBoard(chain=chain, address=dao.board_address, store=artifacts, name=config.board.name)
        orch = Orchestrator(
            boards=[board],
            agents=agents,
            artifacts=artifacts,
            store=store,
            chain=chain,
            workspace=root / "work",
            matching=MatchingConfig(token_decimals=config.dao.token_decimals),
            review_mode=review,
            start_block=block,
            dao_resubmissions=config.review.dao_resubmissions,
            clock=lambda: _now(chain),
        )
        orch.start()
        bars = _StageBars(progress, len(tasks))
        if review == "human":
            stack.enter_context(_review_inbox(config, store, artifacts, dao, root, console))
        started = time.monotonic()
        while True:
            orch.cycle()
            approved = _dao_approves(dao)
            if approved:
                orch.collect()
            bars.update(store)
            if all(t.state in _SETTLED for t in store.tasks()) and len(store.tasks()) == len(tasks):
                break
            if time.monotonic() - started > DEMO_TIMEOUT:
                console.print("[red]demo: timed out waiting for tasks to settle[/]")
                break
            if not approved:
                time.sleep(0.2)
    return _report(console, store, dao, fleet, [a.name for a in agents])


@contextmanager
def _review_inbox(
    config: Config, store: Store, artifacts: ArtifactStore, dao: Dao, root: Path, console: Console
) -> Iterator[None]:
    """``--review human``: the review web app over the demo's database, on ``web.host:web.port`` (a free port if
    that one is taken), with a one-off reviewer account and API token, printed for the user."""
    from orchestrator.entry.web.app import create_app
    from orchestrator.entry.web.config import Role, WebSettings
    from orchestrator.entry.web.server import bind, serve_in_thread
    from orchestrator.entry.web.users import UserStore

    users = UserStore(store.engine)
    password = secrets.token_urlsafe(12)
    users.add_user(name=DEMO_REVIEWER, password=password, role=Role.REVIEWER)
    token, _ = users.create_token(name=DEMO_REVIEWER, label="demo")
    tokens = TokenBook([TokenInfo(address=dao.token, symbol=dao.symbol(), decimals=dao.decimals())])
    app = create_app(
        engine=store.engine,
        store=store,
        artifacts=artifacts,
        users=users,
        settings=WebSettings.resolve(config.web, data_dir=root, tokens=tokens),
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


def _dao_approves(dao: Dao) -> int:
    """The DAO's reviewer approves every submitted task (its own review is out of the demo's scope)."""
    approved = 0
    for bt in dao.tasks():
        if bt.status is BoardStatus.SUBMITTED:
            dao.approve(bt.task_id)
            approved += 1
    return approved


def _report(console: Console, store: Store, dao: Dao, fleet: WalletFleet, agents: Sequence[str]) -> bool:
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
    pnl_agent = store.pnl_by_agent()
    agents_table = Table(title="Agents")
    for column in ("agent", "wallet", "tasks paid", f"rewards (db, {symbol})", f"balance (chain, {symbol})", "match"):
        agents_table.add_column(column)
    reconcile = True
    for name in agents:
        address = fleet.keystore.entry(name).address
        recorded = pnl_agent[name].rewards.get(dao.token, 0) if name in pnl_agent else 0
        balance = dao.token_balance(address)
        ok = recorded == balance
        reconcile &= ok
        agents_table.add_row(
            name,
            short(address),
            str(sum(1 for t in tasks if t.agent_name == name and t.state is S.PAID)),
            f"{from_base_units(recorded, decimals):f}",
            f"{from_base_units(balance, decimals):f}",
            "[green]yes[/]" if ok else "[red]NO[/]",
        )
    console.print(agents_table)
    count = {state: sum(1 for t in tasks if t.state is state) for state in TaskState}
    verdict = "balances reconcile" if reconcile else "BALANCES DO NOT RECONCILE"
    console.print(
        f"demo: {count[S.PAID]} tasks paid, {count[S.QUARANTINED]} quarantined, {count[S.SKIPPED]} skipped; {verdict}",
        highlight=False,
    )
    return reconcile


def _now(chain: Chain) -> int:
    """The chain's notion of now (the in-process chain's clock can differ from the wall clock)."""
    if isinstance(chain, EthTesterChain):
        return int(chain.latest_timestamp())
    return int(time.time())

"""``deworker run | status | tasks | agents | rewards``: the orchestrator service's Typer sub-app (registered by
``orchestrator.cli`` without a name, so the commands sit at the top level).

``run`` builds the service from the config through ``orchestrator.bootstrap.Runtime`` (chain, board, stores,
wallet fleet) and the agent profiles, and shows a live fleet table until SIGINT/SIGTERM. The read-only commands
only open the database. Errors are ``DeworkerError``s, printed as one line plus the fix by
``orchestrator.cli.main``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from orchestrator.chain import MultiRpcChain, NodeHealth
from orchestrator.config import ReviewMode
from orchestrator.domain import TaskState
from orchestrator.errors import ConfigError, DeworkerError
from orchestrator.matching import MatchingConfig
from orchestrator.service import IN_HAND, Backoff, CycleReport, FleetAgent, Orchestrator
from orchestrator.store import PnL, Store, TaskPublic
from orchestrator.store.queries import DayMoney, Queries, TaskPage
from orchestrator.terminal import literal
from orchestrator.tokens import TokenBook, units

if TYPE_CHECKING:
    from orchestrator.bootstrap import Runtime

console = Console()
service_app = typer.Typer(help="The orchestrator service: run it, and inspect its fleet, tasks and earnings.")

#: Width of the earnings bar chart, in characters.
CHART_WIDTH = 50


def _runtime() -> Runtime:
    from orchestrator.cli import runtime

    return runtime()


def _money(amounts: dict[str, int], book: TokenBook) -> str:
    """Token amounts (base units by token address) as people read them; currencies are never added up."""
    return ", ".join(book.format(units, token) for token, units in amounts.items()) or "0"


def _usd(micro: int) -> str:
    return f"{Decimal(micro) / 1_000_000:f}"


@contextmanager
def _agents(rt: Runtime) -> Iterator[list[FleetAgent]]:
    """The configured agent profiles as ``FleetAgent``s; starts the embedded model if a profile uses it."""
    from agents.langchain_agent import agent_from_profile
    from agents.llm_server import LocalModelServer, detached_status
    from orchestrator.store import DbSpendLedger

    profiles = rt.config.agents.profiles
    if not profiles:
        raise ConfigError(
            "no agents configured: agents.profiles is empty",
            key="agents.profiles",
            hint="add a profile (config.yaml shows an example), or try `deworker demo`",
        )
    with ExitStack() as stack:
        local_url = local_model = None
        if any(p.model.base_url is None for p in profiles):
            # reuse the server `deworker model serve --detach` left running, else start one for this run
            running = detached_status(rt.config.data_dir)
            if running is None:
                server = stack.enter_context(LocalModelServer(rt.config.agents.local_model))
                local_url, local_model = server.base_url, server.model
            else:
                local_url, local_model = running.base_url, running.model
        ledger = DbSpendLedger(rt.engine)  # daily budgets hold across restarts and processes
        rt.fleet.unlock_all()  # every keystore decrypted once, in parallel, before the first send
        yield [
            FleetAgent(
                profile=p,
                runner=agent_from_profile(
                    p, rt.config.agents, local_base_url=local_url, local_model=local_model, ledger=ledger
                ),
                wallet=rt.fleet.wallet(p.wallet),
            )
            for p in profiles
        ]


def build_orchestrator(
    rt: Runtime, agents: list[FleetAgent], *, review_mode: ReviewMode, matching: MatchingConfig, claim_margin: int
) -> Orchestrator:
    """The service over the runtime's adapters."""
    return Orchestrator(
        boards=[rt.board],
        agents=agents,
        artifacts=rt.store,
        store=rt.db,
        chain=rt.chain,
        workspace=rt.config.data_dir / "work",
        matching=matching,
        prices=rt.config.agents.prices,
        review_mode=review_mode,
        start_block=rt.deployment().block,
        claim_margin=claim_margin,
        dao_resubmissions=rt.config.review.dao_resubmissions,
        backoff=Backoff(rt.config.service.retry_initial_seconds, rt.config.service.retry_max_seconds),
    )


# ------------------------------------------------------------------------------------------------- tables


def fleet_table(store: Store, queries: Queries, book: TokenBook) -> Table:
    """Agents, the tasks in their hands with the state, and what each earned (sums in SQL)."""
    table = Table(title="Fleet")
    for column in ("agent", "address", "task in hand", "state", "tasks paid", "earned", "gas (ETH)", "LLM ($)"):
        table.add_column(column, overflow="fold")
    held: dict[str, list[TaskPublic]] = defaultdict(list)
    for t in store.resumable():
        if t.state in IN_HAND and t.agent_name is not None:
            held[t.agent_name].append(t)
    counts = queries.tasks_by_agent()
    pnl = queries.pnl_by_agent()
    for agent in store.agents():
        mine = held.get(agent.name, [])
        money = pnl.get(agent.name, PnL())
        table.add_row(
            agent.name,
            agent.address,
            "\n".join(f"{t.board}/{t.board_task_id} {literal(t.title or '')}" for t in mine) or "-",
            "\n".join(t.state.value for t in mine) or "idle",
            str(counts.get(agent.name, {}).get(TaskState.PAID, 0)),
            _money(money.rewards, book),
            units(money.gas_wei),
            _usd(money.llm_usd_micro),
        )
    return table


def tasks_table(page: TaskPage, book: TokenBook, *, state: TaskState | None, offset: int) -> Table:
    """One page of tasks, the newest first, with the reason of each task's last transition."""
    shown = f"{offset + 1}-{offset + len(page.tasks)} of {page.total}" if page.tasks else f"none of {page.total}"
    table = Table(title=f"Tasks{'' if state is None else f' in {state}'} ({shown}, newest first)")
    for column in ("id", "board task", "title", "reward", "state", "agent", "reason", "revisions"):
        table.add_column(column, overflow="fold")
    for t in page.tasks:
        table.add_row(
            str(t.id),
            f"{t.board}/{t.board_task_id}",
            literal(t.title) if t.title else "(bad spec)",  # task text and reasons are untrusted: never markup
            book.format(t.reward, t.token),
            t.state.value,
            t.agent_name or "-",
            literal(_reason(t)),
            str(t.revision_count),
        )
    return table


def _reason(task: TaskPublic) -> str:
    """The reason shown for a task: why it waits, while it waits out a passing fault; else its last transition's."""
    if task.wait_reason is not None and task.retry_at is not None:
        when = task.retry_at.astimezone(UTC).strftime("%H:%M:%S UTC")
        return f"waiting (try {task.retries + 1} at {when}): {task.wait_reason}"
    return task.state_reason or ""


def earnings_chart(days: list[DayMoney], book: TokenBook, *, width: int = CHART_WIDTH) -> str:
    """A terminal bar chart of the rewards received per UTC day, one block of bars per token."""
    tokens = sorted({token for day in days for token in day.rewards})
    if not tokens:
        return "no rewards yet"
    blocks = []
    for token in tokens:
        series = [(day.day.isoformat(), day.rewards.get(token, 0)) for day in days if day.rewards.get(token)]
        top = max(amount for _, amount in series)
        lines = [book.symbol(token) or token]
        for label, amount in series:
            lines.append(f"{label} {'█' * max(1, round(width * amount / top))} {book.format(amount, token)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------------------------------- commands


@service_app.command("run")
def run(
    review: Annotated[
        str | None, typer.Option("--review", help="human | auto | auto_if_tests_pass (default: review.mode).")
    ] = None,
) -> None:
    """Run the service in the foreground with a live fleet view; Ctrl-C finishes in-flight steps and stops."""
    from orchestrator.scheduler import ServiceRunner

    rt = _runtime()
    mode: ReviewMode = rt.config.review.mode
    if review is not None:
        if review not in ("human", "auto", "auto_if_tests_pass"):
            raise ConfigError(f"--review {review!r} is not a review mode", hint="use human, auto or auto_if_tests_pass")
        mode = review  # type: ignore[assignment]  # checked just above
    matching = rt.config.matching
    service = rt.config.service
    with _agents(rt) as agents:
        orch = build_orchestrator(rt, agents, review_mode=mode, matching=matching, claim_margin=service.claim_margin)
        book, queries = rt.token_book(), Queries(rt.engine)
        with Live(fleet_table(rt.db, queries, book), console=console) as live:

            def refresh(report: CycleReport) -> None:
                summary = f"last cycle: {report.discovered} new, {report.advanced} advanced, {report.rewards} paid"
                live.update(Group(fleet_table(rt.db, queries, book), summary))

            ServiceRunner(orch, service, on_cycle=refresh, upkeep=rt.fleet.upkeep).run_forever()
    console.print("stopped: every step finished or will resume from the database")


def nodes_table(nodes: list[NodeHealth]) -> Table:
    """The chain's JSON-RPC nodes as the adapter sees them: URL (redacted), state, head, lag, last error."""
    table = Table(title="Chain nodes")
    for column in ("node", "state", "chain id", "head", "lag", "last error"):
        table.add_column(column, overflow="fold")
    for n in nodes:
        state = n.state if n.retry_in is None else f"{n.state} (retry in {n.retry_in:.0f} s)"
        table.add_row(
            literal(n.url),
            state,
            "-" if n.chain_id is None else str(n.chain_id),
            "-" if n.head is None else str(n.head),
            "-" if n.lag is None else str(n.lag),
            literal(n.last_error or "-"),  # a node's error text is not ours: never markup
        )
    return table


@service_app.command("status")
def status() -> None:
    """The fleet: agents, the tasks in their hands and their state, earnings; and the chain's nodes."""
    rt = _runtime()
    console.print(fleet_table(rt.db, Queries(rt.engine), rt.token_book()))
    if rt.config.chain.kind == "in-process":
        return  # a chain inside this process: nothing to report on
    try:
        chain = rt.chain
    except DeworkerError as exc:  # status must still show the fleet when no node answers
        console.print(f"chain: {literal(exc.message)}", highlight=False)
        return
    if isinstance(chain, MultiRpcChain):
        console.print(nodes_table(chain.health()))


tasks_app = typer.Typer(
    help="Tasks, the newest first, with each one's lifecycle state and the reason of its last transition (or "
    "why it waits). `deworker tasks retry ID` tries a FAILED or waiting task again.",
    invoke_without_command=True,
)
service_app.add_typer(tasks_app, name="tasks")


@tasks_app.callback()
def tasks(
    ctx: typer.Context,
    state: Annotated[
        TaskState | None, typer.Option("--state", case_sensitive=False, help="Only tasks in this state.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Tasks per page.")] = 50,
    page: Annotated[int, typer.Option(min=1, help="Which page (1 = the newest tasks).")] = 1,
) -> None:
    """Tasks, the newest first, with each one's lifecycle state and the reason of its last transition."""
    if ctx.invoked_subcommand is not None:
        return
    rt = _runtime()
    offset = (page - 1) * limit
    found = Queries(rt.engine).task_page(state=state, limit=limit, offset=offset)
    console.print(tasks_table(found, rt.token_book(), state=state, offset=offset))


@tasks_app.command("retry")
def tasks_retry(
    task_id: Annotated[int, typer.Argument(help="The task's id (the first column of `deworker tasks`).")],
) -> None:
    """Try a task again: one waiting out a backoff is tried at once; a FAILED one whose claim is still ours and
    valid (or that is open again) goes back to its claim or its submission, for `deworker run` to pick up.

    Example: after `deworker wallet fund ada`, `deworker tasks retry 12` sends the claim that failed for lack of gas.
    """
    import getpass
    import time

    from orchestrator.service import retry_failed

    rt = _runtime()
    task = retry_failed(
        store=rt.db, board=rt.board, task_id=task_id, now=int(time.time()), actor=f"cli:{getpass.getuser()}"
    )
    console.print(f"task {task.id}: {task.state.value}, tried again by the next `deworker run` cycle")


@service_app.command("agents")
def agents() -> None:
    """The configured agent profiles: skills, model, wallet."""
    rt = _runtime()
    table = Table(title="Agents")
    for column in ("agent", "skills", "model", "endpoint", "wallet"):
        table.add_column(column, overflow="fold")
    for p in rt.config.agents.profiles:
        endpoint = str(p.model.base_url) if p.model.base_url else "embedded"
        table.add_row(p.name, ", ".join(p.skills), p.model.model, endpoint, p.wallet)
    console.print(table)


@service_app.command("rewards")
def rewards() -> None:
    """Profit and loss per agent and per task (reward - gas - LLM cost), and the rewards received per day."""
    rt = _runtime()
    book, queries = rt.token_book(), Queries(rt.engine)
    table = Table(title="P&L per agent (currencies are never mixed)")
    for column in ("agent", "rewards", "gas (ETH)", "LLM ($)"):
        table.add_column(column)
    for name, pnl in queries.pnl_by_agent().items():
        table.add_row(name, _money(pnl.rewards, book), units(pnl.gas_wei), _usd(pnl.llm_usd_micro))
    console.print(table)
    per_task = Table(title="P&L per task")
    for column in ("task", "rewards", "gas (ETH)", "LLM ($)"):
        per_task.add_column(column)
    for task_id, pnl in sorted(rt.db.pnl_by_task().items()):
        per_task.add_row(str(task_id), _money(pnl.rewards, book), units(pnl.gas_wei), _usd(pnl.llm_usd_micro))
    console.print(per_task)
    console.print("[bold]Rewards received per day (UTC)[/]")
    console.print(earnings_chart(queries.money_by_day(), book), highlight=False)

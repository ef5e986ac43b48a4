"""``deworker run | status | tasks | agents | rewards``: the orchestrator service's Typer sub-app (registered by
``orchestrator.entry.cli.main`` without a name, so the commands sit at the top level).

``run`` gets the service from ``orchestrator.entry.bootstrap.Runtime`` (agents, ``Orchestrator``, scheduler: all
built from the config there), and shows a live fleet table until SIGINT/SIGTERM. The read-only commands
only open the database. Errors are ``DeworkerError``s, printed as one line plus the fix by
``orchestrator.entry.cli.main.main``.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from orchestrator.adapters.chain import MultiRpcChain, NodeHealth
from orchestrator.adapters.sql import PnL, Store, TaskPublic
from orchestrator.adapters.sql.endpoints import EndpointStatus
from orchestrator.adapters.sql.queries import DayMoney, Queries, TaskPage
from orchestrator.app.service import ACTIONABLE, IN_HAND, CycleReport
from orchestrator.domain.errors import ConfigError, DeworkerError
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.money import TokenBook, amounts_text, base_units, units, usd_text
from orchestrator.domain.review import ReviewMode
from orchestrator.entry.cli.context import runtime
from orchestrator.entry.listing import (
    ColumnKind,
    JsonOption,
    WideOption,
    cell,
    emit_json,
    is_narrow,
    show,
    table,
)
from orchestrator.entry.terminal import literal

if TYPE_CHECKING:
    from orchestrator.entry.bootstrap import Runtime

console = Console()
service_app = typer.Typer(help="The orchestrator service: run it, and inspect its fleet, tasks and earnings.")

#: The ``--state`` choices, listed in the help text (click's own ``[A|B|…]`` list wraps inside state names).
_STATES = ", ".join(s.value for s in TaskState)

#: Width of the earnings bar chart, in characters.
CHART_WIDTH = 50


def _runtime() -> Runtime:
    return runtime()


# ------------------------------------------------------------------------------------------------- tables


def configured_agents(rt: Runtime) -> dict[str, str | None]:
    """The agent profiles in the config, each with its wallet's address when its keystore file exists (read from
    the file: nothing is decrypted). ``status`` shows them before the service first registered them."""
    from wallets.errors import KeystoreError

    keystore = rt.keystore
    out: dict[str, str | None] = {}
    for p in rt.config.agents.profiles:
        try:
            out[p.name] = keystore.entry(p.wallet).address
        except KeystoreError:
            out[p.name] = None  # no keystore yet: `deworker wallet new NAME` creates it
    return out


def fleet_rows(
    store: Store, queries: Queries, configured: dict[str, str | None] | None = None
) -> list[dict[str, object]]:
    """Agents (those the service registered, then configured ones it has not seen yet), the tasks in their hands,
    and what each earned (sums in SQL): the rows of ``status`` and its ``--json``."""
    held: dict[str, list[TaskPublic]] = defaultdict(list)
    for t in store.resumable():
        if t.state in IN_HAND and t.agent_name is not None:
            held[t.agent_name].append(t)
    counts = queries.tasks_by_agent()
    pnl = queries.pnl_by_agent()
    agents: dict[str, str | None] = {a.name: a.address for a in store.agents()}
    for name, address in (configured or {}).items():
        agents.setdefault(name, address)
    rows: list[dict[str, object]] = []
    for name, address in agents.items():
        money = pnl.get(name, PnL())
        rows.append(
            {
                "agent": name,
                "address": address,
                "tasks_in_hand": [
                    {
                        "id": t.id,
                        "board": t.board,
                        "task_key": t.task_key,
                        "title": t.title,
                        "state": t.state.value,
                    }
                    for t in held.get(name, [])
                ],
                "tasks_paid": counts.get(name, {}).get(TaskState.PAID, 0),
                "rewards": money.rewards,
                "gas_wei": money.gas_wei,
                "llm_usd_micro": money.llm_usd_micro,
            }
        )
    return rows


def fleet_json(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """``fleet_rows`` with amounts as strings of base units."""
    return [
        {
            **row,
            "rewards": base_units(row["rewards"]),  # type: ignore[arg-type]
            "gas_wei": str(row["gas_wei"]),
            "llm_usd_micro": str(row["llm_usd_micro"]),
        }
        for row in rows
    ]


def fleet_table(
    store: Store,
    queries: Queries,
    book: TokenBook,
    *,
    configured: dict[str, str | None] | None = None,
    wide: bool = False,
    narrow: bool = False,
) -> Table:
    """Agents, the tasks in their hands with the state, and what each earned. ``narrow`` leaves out gas and LLM
    cost (``deworker rewards`` shows them)."""
    columns: list[tuple[str, ColumnKind]] = [("agent", "id"), ("address", "id"), ("task in hand", "text")]
    columns += [("state", "id"), ("paid", "number"), ("earned", "number")]
    if not narrow:
        columns += [("gas (ETH)", "number"), ("LLM ($)", "number")]
    out = table("Fleet", columns, wide=wide)
    for row in fleet_rows(store, queries, configured):
        mine: list[dict[str, object]] = row["tasks_in_hand"]  # type: ignore[assignment]
        cells = [
            literal(str(row["agent"])),
            cell(row["address"], wide=wide),  # type: ignore[arg-type]
            "\n".join(f"{t['task_key']} {literal(str(t['title'] or ''))}" for t in mine) or "-",
            "\n".join(str(t["state"]) for t in mine) or "idle",
            str(row["tasks_paid"]),
            amounts_text(row["rewards"], book),  # type: ignore[arg-type]
        ]
        if not narrow:
            cells += [units(row["gas_wei"]), usd_text(row["llm_usd_micro"])]  # type: ignore[arg-type]
        out.add_row(*cells)
    if not out.rows:
        out.caption = "no agents: add agents.profiles to config.yaml (see `deworker agents`)"
    return out


def task_json(t: TaskPublic) -> dict[str, object]:
    """One task as ``deworker tasks --json`` prints it."""
    return {
        "id": t.id,
        "board": t.board,
        "task_key": t.task_key,
        "title": t.title,
        "reward": str(t.reward),
        "token": t.token,
        "state": t.state.value,
        "agent": t.agent_name,
        "reason": t.state_reason,
        "wait_reason": t.wait_reason,
        "retry_at": None if t.retry_at is None else t.retry_at.astimezone(UTC).isoformat(),
        "revisions": t.revision_count,
    }


def tasks_title(page: TaskPage, *, state: TaskState | None, offset: int) -> str:
    """``Tasks 1-3 of 3, newest first``; ``No tasks in PAID yet`` for an empty page of an empty set."""
    where = "" if state is None else f" in {state.value}"
    if page.tasks:
        return f"Tasks{where} {offset + 1}-{offset + len(page.tasks)} of {page.total}, newest first"
    if page.total:
        return f"No tasks{where} on this page: there are {page.total} (try --page 1)"
    return f"No tasks{where} yet"


def tasks_table(
    page: TaskPage,
    book: TokenBook,
    *,
    state: TaskState | None,
    offset: int,
    wide: bool = False,
    narrow: bool = False,
) -> Table:
    """One page of tasks, the newest first, with the reason of each task's last transition. ``narrow`` leaves out
    the board's task id and the revision count."""
    columns: list[tuple[str, ColumnKind]] = [("id", "number")]
    if not narrow:
        columns.append(("board task", "id"))
    columns += [("title", "text"), ("reward", "number"), ("state", "id"), ("agent", "id"), ("reason", "text")]
    if not narrow:
        columns.append(("revisions", "number"))
    out = table(tasks_title(page, state=state, offset=offset), columns, wide=wide)
    for t in page.tasks:
        cells = [str(t.id)]
        if not narrow:
            cells.append(f"{literal(t.board)}/{t.task_key}")
        cells += [
            literal(t.title) if t.title else "(bad spec)",  # task text and reasons are untrusted: never markup
            book.format(t.reward, t.token),
            t.state.value,
            literal(t.agent_name or "-"),
            literal(_reason(t)),
        ]
        if not narrow:
            cells.append(str(t.revision_count))
        out.add_row(*cells)
    return out


def _reason(task: TaskPublic) -> str:
    """The reason shown for a task: why it waits, while it waits out a passing fault; else its last transition's."""
    if task.wait_reason is not None and task.retry_at is not None:
        when = task.retry_at.astimezone(UTC).strftime("%H:%M:%S UTC")
        return f"waiting (try {task.retries + 1} at {when}): {task.wait_reason}"
    return task.state_reason or ""


def earnings_chart(days: list[DayMoney], book: TokenBook, *, width: int = CHART_WIDTH) -> str:
    """A terminal bar chart of what was received per UTC day (bounties plus pool revenue), one block of bars per
    token."""
    received = [(day.day.isoformat(), day.received()) for day in days]
    tokens = sorted({token for _, got in received for token in got})
    if not tokens:
        return "no rewards yet"
    blocks = []
    for token in tokens:
        series = [(label, got[token]) for label, got in received if got.get(token)]
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
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Also serve Prometheus metrics at http://127.0.0.1:PORT/metrics (loopback only, no login).",
        ),
    ] = None,
) -> None:
    """Run the service in the foreground until Ctrl-C, which lets the steps in flight finish and stops.

    On a terminal the fleet table updates in place; without one (a log file, systemd) one line per cycle that
    changed something is printed instead. One database serves one `deworker run`: a second one is refused, naming
    the first (host, pid, since)."""
    rt = _runtime()
    mode: ReviewMode = rt.config.review.mode
    if review is not None:
        if review not in ("human", "auto", "auto_if_tests_pass"):
            raise ConfigError(f"--review {review!r} is not a review mode", hint="use human, auto or auto_if_tests_pass")
        mode = review  # type: ignore[assignment]  # checked just above
    # refused here, naming the other process, before the model starts or a wallet is unlocked
    rt.process_guard.acquire()
    with ExitStack() as held:
        held.callback(rt.process_guard.release)
        if metrics_port is not None:
            from orchestrator.adapters.sql.metrics import FleetMetrics
            from orchestrator.entry.metrics import metrics_server

            held.enter_context(metrics_server(FleetMetrics(rt.engine), port=metrics_port))
        _serve(rt, mode)
    console.print("stopped: every step finished or will resume from the database", highlight=False)


def _serve(rt: Runtime, mode: ReviewMode) -> None:
    with rt.agents() as agents:
        orch = rt.orchestrator(agents, settings=rt.settings(review_mode=mode))
        book, queries = rt.token_book(), rt.queries
        narrow = is_narrow(console, wide=False)

        def fleet() -> Table:
            return fleet_table(rt.db, queries, book, narrow=narrow)

        def stopping(in_flight: int) -> None:
            console.print(f"stopping, {in_flight} step{'' if in_flight == 1 else 's'} in flight", highlight=False)

        with ExitStack() as live_stack:
            if console.is_terminal:
                live = live_stack.enter_context(Live(fleet(), console=console))

                def refresh(report: CycleReport) -> None:
                    live.update(Group(fleet(), cycle_line(report)))
            else:  # no terminal: a Live display would only print its last frame, run together with what follows
                console.print(fleet())

                def refresh(report: CycleReport) -> None:
                    if report.discovered or report.advanced or report.rewards:
                        console.print(cycle_line(report), highlight=False)

            rt.scheduler(orch, on_cycle=refresh).run_forever(on_stop=stopping)


def cycle_line(report: CycleReport) -> str:
    """One line per cycle: what it found, moved on and collected."""
    return f"cycle: {report.discovered} new, {report.advanced} advanced, {report.rewards} paid"


def nodes_table(nodes: list[NodeHealth], *, wide: bool = False) -> Table:
    """The chain's JSON-RPC nodes as the adapter sees them: URL (redacted), state, head, lag, last error."""
    out = table(
        "Chain nodes",
        [
            ("node", "id"),
            ("state", "text"),
            ("chain id", "number"),
            ("head", "number"),
            ("lag", "number"),
            ("last error", "text"),
        ],
        wide=wide,
    )
    for n in nodes:
        state = n.state if n.retry_in is None else f"{n.state} (retry in {n.retry_in:.0f} s)"
        out.add_row(
            literal(n.url),
            state,
            "-" if n.chain_id is None else str(n.chain_id),
            "-" if n.head is None else str(n.head),
            "-" if n.lag is None else str(n.lag),
            literal(n.last_error or "-"),  # a node's error text is not ours: never markup
        )
    return out


def _node_json(n: NodeHealth) -> dict[str, object]:
    return {
        "url": n.url,
        "state": n.state,
        "chain_id": n.chain_id,
        "head": n.head,
        "lag": n.lag,
        "retry_in": n.retry_in,
        "last_error": n.last_error,
    }


def endpoints_table(rows: list[EndpointStatus], now: datetime, *, wide: bool = False) -> Table:
    """The model endpoints the fleet shares (``endpoints:``): slots in use now, agents waiting now, and in the
    last hour the requests, tokens, waits and the time waited."""
    out = table(
        "Model endpoints (last hour)",
        [
            ("endpoint", "id"),
            ("slots in use", "number"),
            ("waiting now", "text"),
            ("requests", "number"),
            ("tokens", "number"),
            ("waits", "number"),
            ("waited", "number"),
        ],
        wide=wide,
    )
    for e in rows:
        waiting = str(e.waiting)
        if e.waiting and e.oldest_wait is not None:
            waiting += f" (longest {max(0.0, (now - e.oldest_wait).total_seconds()):.0f} s)"
        out.add_row(
            literal(e.endpoint),
            f"{e.in_use}/{e.slots}" if e.slots else "-",
            waiting,
            f"{e.requests:,}",
            f"{e.tokens:,}",
            f"{e.waits:,}",
            f"{e.wait_seconds:.1f} s",
        )
    return out


def _endpoint_json(e: EndpointStatus) -> dict[str, object]:
    return {
        "endpoint": e.endpoint,
        "slots": e.slots,
        "in_use": e.in_use,
        "waiting": e.waiting,
        "oldest_wait": None if e.oldest_wait is None else e.oldest_wait.astimezone(UTC).isoformat(),
        "requests": e.requests,
        "tokens": e.tokens,
        "waits": e.waits,
        "wait_seconds": e.wait_seconds,
    }


def service_line(rt: Runtime) -> dict[str, object] | None:
    """Who runs the service on this database now: the live holder of its lease (host, pid, since, heartbeat), or
    None."""
    from orchestrator.entry.guard import SERVICE_LEASE

    leases = rt.process_guard.leases
    now = leases.now()
    for lease in leases.leases(SERVICE_LEASE):
        if lease.name == SERVICE_LEASE and lease.alive(now):
            return {
                "host": lease.host,
                "pid": lease.pid,
                "since": None if lease.since is None else lease.since.astimezone(UTC).isoformat(timespec="seconds"),
                "heartbeat_seconds_ago": None
                if lease.heartbeat_at is None
                else round(max(0.0, (now - lease.heartbeat_at).total_seconds())),
            }
    return None


@service_app.command("status")
def status(wide: WideOption = False, as_json: JsonOption = False) -> None:
    """The fleet: agents (configured ones too, before their first run), the tasks in their hands and their state,
    earnings; which process runs the service (host, pid, since, last heartbeat); the tasks waiting at each step;
    the model endpoints the agents
    share (slots in use, agents waiting); and the chain's nodes.

    Examples: `deworker status`, `deworker status --wide` (full addresses, gas and LLM cost), `deworker status
    --json`."""
    rt = _runtime()
    queries, configured = rt.queries, configured_agents(rt)
    endpoints = rt.endpoint_gate.status()
    service = service_line(rt)
    by_state = queries.tasks_by_state()
    queue = {st.value: by_state.get(st, 0) for st in TaskState if st in ACTIONABLE or st is TaskState.AWAITING_REVIEW}
    nodes: list[NodeHealth] | None = None
    chain_error: str | None = None
    if rt.config.chain.kind != "in-process":  # a chain inside this process: nothing to report on
        try:
            chain = rt.chain
        except DeworkerError as exc:  # status must still show the fleet when no node answers
            chain_error = exc.message
        else:
            if isinstance(chain, MultiRpcChain):
                nodes = chain.health()
    if as_json:
        emit_json(
            {
                "agents": fleet_json(fleet_rows(rt.db, queries, configured)),
                "endpoints": [_endpoint_json(e) for e in endpoints],
                "service": service,
                "queue": queue,
                "nodes": None if nodes is None else [_node_json(n) for n in nodes],
                "chain_error": chain_error,
            }
        )
        return
    narrow = is_narrow(console, wide=wide)
    show(
        console,
        fleet_table(rt.db, queries, rt.token_book(), configured=configured, wide=wide, narrow=narrow),
        wide=wide,
    )
    console.print(
        "service: "
        + (
            "not running"
            if service is None
            else f"`deworker run` is pid {service['pid']} on host {literal(str(service['host']))}, since "
            f"{service['since']}, last heartbeat {service['heartbeat_seconds_ago']} s ago"
        ),
        highlight=False,
    )
    waiting = [f"{state} {n}" for state, n in queue.items() if n]
    console.print("queue (tasks per step): " + (", ".join(waiting) or "empty"), highlight=False)
    if endpoints:
        show(console, endpoints_table(endpoints, datetime.now(UTC), wide=wide), wide=wide)
    if chain_error is not None:
        console.print(f"chain: {literal(chain_error)}", highlight=False)
    if nodes is not None:
        show(console, nodes_table(nodes, wide=wide), wide=wide)


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
        TaskState | None,
        typer.Option(
            "--state", case_sensitive=False, metavar="STATE", help="Only tasks in this state: " + _STATES + "."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Tasks per page.")] = 50,
    page: Annotated[int, typer.Option(min=1, help="Which page (1 = the newest tasks).")] = 1,
    wide: WideOption = False,
    as_json: JsonOption = False,
) -> None:
    """Tasks, the newest first, with each one's lifecycle state and the reason of its last transition.

    Examples: `deworker tasks --state failed`, `deworker tasks --limit 10 --page 2`, `deworker tasks --json`."""
    if ctx.invoked_subcommand is not None:
        return
    rt = _runtime()
    offset = (page - 1) * limit
    found = rt.queries.task_page(state=state, limit=limit, offset=offset)
    if as_json:
        emit_json({"total": found.total, "offset": offset, "tasks": [task_json(t) for t in found.tasks]})
        return
    narrow = is_narrow(console, wide=wide)
    show(console, tasks_table(found, rt.token_book(), state=state, offset=offset, wide=wide, narrow=narrow), wide=wide)


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

    from orchestrator.app.service import retry_failed

    rt = _runtime()
    task = retry_failed(
        repos=rt.repositories, board=rt.board, task_id=task_id, now=int(time.time()), actor=f"cli:{getpass.getuser()}"
    )
    console.print(f"task {task.id}: {task.state.value}, tried again by the next `deworker run` cycle")


@service_app.command("agents")
def agents(wide: WideOption = False, as_json: JsonOption = False) -> None:
    """The configured agent profiles: skills, model, endpoint, wallet.

    Examples: `deworker agents`, `deworker agents --json`."""
    rt = _runtime()
    profiles = rt.config.agents.profiles
    rows = [
        {
            "agent": p.name,
            "skills": list(p.skills),
            "model": p.model.model,
            "endpoint": str(p.model.base_url) if p.model.base_url else None,
            "wallet": p.wallet,
        }
        for p in profiles
    ]
    if as_json:
        emit_json(rows)
        return
    out = table(
        "Agents", [("agent", "id"), ("skills", "text"), ("model", "text"), ("endpoint", "id"), ("wallet", "id")]
    )
    for row in rows:
        out.add_row(
            literal(str(row["agent"])),
            literal(", ".join(row["skills"])),  # type: ignore[arg-type]
            literal(str(row["model"])),
            literal(str(row["endpoint"] or "embedded")),
            literal(str(row["wallet"])),
        )
    if not rows:
        out.caption = "none configured: add agents.profiles to config.yaml"
    show(console, out, wide=wide)


def _pnl_json(pnl: PnL) -> dict[str, object]:
    out: dict[str, object] = {
        "rewards": base_units(pnl.rewards),
        "gas_wei": str(pnl.gas_wei),
        "llm_usd_micro": str(pnl.llm_usd_micro),
    }
    if pnl.revenue:  # per agent only: pool revenue claimed, apart from bounties
        revenue = sorted(pnl.revenue.items())
        out["revenue"] = [{"pool": pool, "token": token, "amount": str(amount)} for (pool, token), amount in revenue]
    return out


def _revenue_per_token(pnl: PnL) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_pool, token), amount in pnl.revenue.items():
        out[token] = out.get(token, 0) + amount
    return out


def _pool_rows(rt: Runtime) -> list[dict[str, object]]:
    from orchestrator.domain.money import base_units as as_units
    from orchestrator.entry.cli.pool import pool_earnings

    rows = pool_earnings(rt)
    for row in rows:
        for key in ("bounty", "revenue_claimed", "revenue_claimable"):
            row[key] = as_units(row[key])  # type: ignore[arg-type]
    return rows


@service_app.command("rewards")
def rewards(wide: WideOption = False, as_json: JsonOption = False) -> None:
    """Profit and loss per agent and per task (reward - gas - LLM cost), and the rewards received per day.

    Examples: `deworker rewards`, `deworker rewards --json` (amounts in base units: wei, micro-USD)."""
    rt = _runtime()
    book, queries = rt.token_book(), rt.queries
    by_agent, by_task, days = queries.pnl_by_agent(), sorted(rt.db.pnl_by_task().items()), queries.money_by_day()
    if as_json:
        emit_json(
            {
                "agents": [{"agent": name, **_pnl_json(pnl)} for name, pnl in by_agent.items()],
                "tasks": [{"task_id": task_id, **_pnl_json(pnl)} for task_id, pnl in by_task],
                "days": [
                    {"day": d.day.isoformat(), "rewards": base_units(d.rewards), "revenue": base_units(d.revenue)}
                    for d in days
                ],
                **({"pools": _pool_rows(rt)} if rt.config.revenue.pools else {}),
            }
        )
        return
    money: list[tuple[str, ColumnKind]] = [("rewards", "number"), ("gas (ETH)", "number"), ("LLM ($)", "number")]
    agent_money = [money[0], ("pool revenue", "number"), *money[1:]]
    per_agent = table("P&L per agent (currencies are never mixed)", [("agent", "id"), *agent_money], wide=wide)
    for name, pnl in by_agent.items():
        per_agent.add_row(
            literal(name),
            amounts_text(pnl.rewards, book),
            amounts_text(_revenue_per_token(pnl), book),
            units(pnl.gas_wei),
            usd_text(pnl.llm_usd_micro),
        )
    if not by_agent:
        per_agent.caption = "nothing earned or spent yet"
    show(console, per_agent, wide=wide)
    per_task = table("P&L per task", [("task", "number"), *money], wide=wide)
    for task_id, pnl in by_task:
        per_task.add_row(str(task_id), amounts_text(pnl.rewards, book), units(pnl.gas_wei), usd_text(pnl.llm_usd_micro))
    show(console, per_task, wide=wide)
    console.print("[bold]Received per day (UTC): bounties and pool revenue[/]")
    console.print(earnings_chart(days, book), highlight=False)
    if rt.config.revenue.pools:  # shares, bounties and revenue per project pool, read from the chain
        from orchestrator.entry.cli.pool import pool_earnings, pool_earnings_table

        show(console, pool_earnings_table(rt, pool_earnings(rt)), wide=wide)

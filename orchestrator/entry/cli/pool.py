"""``deworker dao pool ...``, ``dao governor deploy`` and the vote: ``dao propose|proposals|vote|queue|execute``.

A project pool (``contracts/ProjectPool.vy``) posts its tasks on the configured board; ``dao pool approve|veto|
finalize TASK`` find the pool from the board task's poster. The DAO account (``dao.key_env``) signs everything.
Amounts are whole tokens (decimals from the token contract). The governor is ``dao.governor`` or ``--governor``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.domain.errors import ConfigError
from orchestrator.entry.cli.context import runtime, state

if TYPE_CHECKING:
    from orchestrator.entry.bootstrap import Runtime
    from orchestrator.entry.dao_pool import Governor, Pool

console = Console()

pool_app = typer.Typer(
    help="Project pools: a budget, tasks with a share weight, optimistic acceptance with a veto window, shares "
    "that vote and earn the project's revenue."
)
governor_app = typer.Typer(help="The DAO's OpenZeppelin Governor with its TimelockController and voting token.")

GovernorOption = Annotated[str | None, typer.Option("--governor", help="Governor address (default: dao.governor).")]


def _decimals(rt: Runtime, token: str) -> int:
    from orchestrator.entry.dao_pool import call

    return int(call(rt.chain, token, "RewardToken", "decimals"))


def _units(rt: Runtime, token: str, amount: str) -> int:
    from orchestrator.entry.dao import to_base_units

    return to_base_units(amount, _decimals(rt, token))


def _whole(rt: Runtime, token: str, units: int) -> str:
    from orchestrator.entry.dao import from_base_units

    return f"{from_base_units(units, _decimals(rt, token)):f}"


def _board(rt: Runtime) -> str:
    from orchestrator.adapters.chain.base import checksum_address

    return checksum_address(rt.deployment().board)


def _token(rt: Runtime) -> str:
    from orchestrator.adapters.chain.base import checksum_address

    token = rt.config.dao.token
    saved = rt.addresses.get(rt.chain.chain_id)
    if token is None and saved is not None:
        token = saved.token
    if token is None:
        raise ConfigError(
            "no budget token for a new pool: dao.token is not set and no deployment is saved",
            key="dao.token",
            hint="set dao.token in config.yaml to the ERC-20 of the budget (or run `deworker dao deploy` first)",
        )
    return checksum_address(token)


def _pool(rt: Runtime, address: str) -> Pool:
    from orchestrator.entry.dao_pool import Pool

    return Pool(chain=rt.chain, address=address)


def _governor(rt: Runtime, address: str | None) -> Governor:
    from orchestrator.adapters.chain.base import checksum_address
    from orchestrator.entry.dao_pool import Governor

    address = address or rt.config.dao.governor
    if address is None:
        raise ConfigError(
            "no governor: dao.governor is not set",
            key="dao.governor",
            hint="set dao.governor in config.yaml (printed by `deworker dao governor deploy`) or pass --governor",
        )
    return Governor(chain=rt.chain, governor=checksum_address(address))


# ---------------------------------------------------------------------------------------------------- pools


@pool_app.command("create")
def pool_create(
    name: Annotated[str, typer.Argument(help="The project's name (also the share token's name).")],
    budget: Annotated[str, typer.Option(help="Whole tokens the DAO account funds now (0 with --governor: vote).")],
    veto: Annotated[str, typer.Option(help="Veto window after an approval: 90m, 2d, 1w...")] = "2d",
    governor: GovernorOption = None,
    guardian: Annotated[str | None, typer.Option(help="Address that may veto besides the owner.")] = None,
    symbol: Annotated[str, typer.Option(help="The share token's symbol.")] = "SHARE",
) -> None:
    """Deploy a pool on the configured board. Its owner is the governor's timelock with `--governor` (the DAO
    then funds it by vote: `dao propose --fund-pool`), else the DAO account; the DAO account is the reviewer."""
    from orchestrator.entry.dao import parse_duration
    from orchestrator.entry.dao_pool import ZERO_ADDRESS, Pool, call, deploy_pool

    rt = runtime(needs_persistent_chain=True)
    signer = rt.dao_signer()
    token = _token(rt)
    owner = signer.address
    if governor is not None:
        owner = str(call(rt.chain, _governor(rt, governor).address, "DeworkerGovernor", "timelock"))
    units = _units(rt, token, budget) if budget not in ("0", "") else 0
    address = deploy_pool(
        sender=signer,
        name=name,
        symbol=symbol,
        board=_board(rt),
        token=token,
        owner=owner,
        reviewer=signer.address,
        guardian=guardian or ZERO_ADDRESS,
        veto_window=parse_duration(veto),
    )
    if units:
        Pool(chain=rt.chain, address=address).fund(signer, units)
    console.print(f"pool [bold]{name}[/] {address}: owner {owner}, budget {_whole(rt, token, units)}, veto {veto}")


@pool_app.command("post")
def pool_post(
    pool: Annotated[str, typer.Argument(help="The pool's address.")],
    spec: Annotated[typer.FileBinaryRead, typer.Option(help="The task spec (JSON).")],
    reward: Annotated[str, typer.Option(help="Bounty in whole tokens, escrowed from the pool's budget.")],
    weight: Annotated[int, typer.Option(min=1, help="Shares the contributor gets when the task is finalized.")],
    deadline: Annotated[str, typer.Option(help="How long the task stays open: 3d, 12h...")] = "7d",
) -> None:
    """The pool (its owner: the DAO account) posts a task on the board."""
    from orchestrator.domain.specs import dump_spec, parse_spec
    from orchestrator.entry.dao import parse_duration

    rt = runtime(needs_persistent_chain=True)
    task_spec = parse_spec(spec.read(), max_bytes=state.config().dao_board.max_spec_bytes)
    p = _pool(rt, pool)
    units = _units(rt, p.token, reward)
    cid = rt.artifacts.put_bytes(dump_spec(task_spec))
    rt.artifacts.publish(cid)
    deadline_ts = int(rt.chain.block(None).timestamp) + parse_duration(deadline)
    task_id = p.post(rt.dao_signer(), spec_cid=cid, reward=units, deadline=deadline_ts, weight=weight)
    console.print(f"posted task {task_id}: {reward} escrowed, weight {weight}, spec {cid}")


@pool_app.command("approve")
def pool_approve(task: Annotated[int, typer.Argument(help="Board task id.")]) -> None:
    """The reviewer accepts the submission: the veto window starts (nothing is paid yet)."""
    from orchestrator.entry.dao_pool import pool_of_task

    rt = runtime(needs_persistent_chain=True)
    p = pool_of_task(rt.chain, _board(rt), task)
    p.approve(rt.dao_signer(), task)
    ends = p.view("task", task)[4]
    console.print(f"task {task} approved: finalize from {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(ends))}")


@pool_app.command("veto")
def pool_veto(
    task: Annotated[int, typer.Argument(help="Board task id.")],
    reason: Annotated[str, typer.Option(help="Why (stored in the board's rejection).")],
) -> None:
    """The guardian or the owner vetoes a pending task: no pay, no shares, the task reopens."""
    from orchestrator.entry.dao_pool import pool_of_task

    rt = runtime(needs_persistent_chain=True)
    pool_of_task(rt.chain, _board(rt), task).veto(rt.dao_signer(), task, reason)
    console.print(f"task {task} vetoed: {reason}")


@pool_app.command("finalize")
def pool_finalize(task: Annotated[int, typer.Argument(help="Board task id.")]) -> None:
    """After the veto window (anyone may): the board pays the bounty, the contributor gets the shares."""
    from orchestrator.entry.dao_pool import pool_of_task

    rt = runtime(needs_persistent_chain=True)
    p = pool_of_task(rt.chain, _board(rt), task)
    p.finalize(rt.dao_signer(), task)
    weight, _, _, contributor, _ = p.view("task", task)
    console.print(f"task {task} finalized: {weight} shares to {contributor}")


@pool_app.command("deposit")
def pool_deposit(
    pool: Annotated[str, typer.Argument(help="The pool's address.")],
    token: Annotated[str, typer.Option(help="Revenue token (accepted by the pool).")],
    amount: Annotated[str, typer.Option(help="Whole tokens.")],
) -> None:
    """Pay the project's revenue into the pool: its holders can claim it pro rata to their shares."""
    from orchestrator.adapters.chain.base import checksum_address

    rt = runtime(needs_persistent_chain=True)
    token = checksum_address(token)
    _pool(rt, pool).deposit(rt.dao_signer(), token, _units(rt, token, amount))
    console.print(f"deposited {amount} of {token} into {pool}")


@pool_app.command("show")
def pool_show(pool: Annotated[str, typer.Argument(help="The pool's address.")]) -> None:
    """Budget, tasks, holders with their shares, revenue deposited and claimed."""
    rt = runtime(needs_persistent_chain=True)
    p = _pool(rt, pool)
    token = p.token
    console.print(
        f"pool [bold]{p.view('name')}[/] {p.address}: budget {_whole(rt, token, int(p.view('budget')))} of {token}, "
        f"owner {p.view('owner')}, veto window {int(p.view('veto_window')):,} s"
    )
    tasks = Table("task", "weight", "reward", "status", "contributor", title="tasks")
    for t in p.tasks():
        tasks.add_row(str(t.task_id), str(t.weight), _whole(rt, token, t.reward), t.status, t.contributor or "-")
    console.print(tasks)
    supply = int(p.view("totalSupply"))
    holders = Table("holder", "shares", "of all", title="holders")
    for holder, shares in p.holders():
        holders.add_row(holder, str(shares), f"{100 * shares / supply:.1f} %")
    console.print(holders)
    revenue = Table("token", "deposited", "claimed", title="revenue")
    for r in p.revenue():
        revenue.add_row(r.token, _whole(rt, r.token, r.deposited), _whole(rt, r.token, r.claimed))
    console.print(revenue)


# ---------------------------------------------------------------------------------------------------- the vote


@governor_app.command("deploy")
def governor_deploy(
    supply: Annotated[int, typer.Option(help="Whole voting tokens minted to the DAO account.")] = 1_000_000,
    voting_delay: Annotated[int, typer.Option(help="Blocks between a proposal and its vote.")] = 1,
    voting_period: Annotated[int, typer.Option(help="Blocks the vote lasts.")] = 50,
    min_delay: Annotated[str, typer.Option(help="The timelock's delay before execution: 1h, 2d...")] = "1h",
    quorum: Annotated[int, typer.Option(min=0, max=100, help="Quorum, % of the voting supply.")] = 4,
) -> None:
    """Deploy the DAO's voting token, TimelockController and Governor (the deployer gives up the timelock's
    admin role: from then on only a vote moves what the timelock holds)."""
    from orchestrator.entry.dao import parse_duration
    from orchestrator.entry.dao_pool import deploy_governance

    rt = runtime(needs_persistent_chain=True)
    signer = rt.dao_signer()
    gov = deploy_governance(
        sender=signer,
        supply=supply * 10**18,
        min_delay=parse_duration(min_delay),
        voting_delay=voting_delay,
        voting_period=voting_period,
        quorum_percent=quorum,
    )
    table = Table(title="DAO deployed", show_header=False)
    table.add_row("voting token", gov.token)
    table.add_row("timelock (treasury, executor)", gov.timelock)
    table.add_row("governor (set dao.governor)", gov.governor)
    console.print(table)


def propose(
    fund_pool: Annotated[str, typer.Option("--fund-pool", help="The pool to fund from the timelock's treasury.")],
    amount: Annotated[str, typer.Option(help="Whole tokens of the pool's budget token.")],
    description: Annotated[str, typer.Option(help="What the voters read (also part of the proposal's id).")],
    governor: GovernorOption = None,
) -> None:
    """Propose that the timelock funds a pool (approve + fund in one proposal)."""
    from orchestrator.entry.dao_pool import fund_pool_actions

    rt = runtime(needs_persistent_chain=True)
    gov = _governor(rt, governor)
    p = _pool(rt, fund_pool)
    targets, values, calldatas = fund_pool_actions(rt.chain, p.address, _units(rt, p.token, amount))
    proposal_id = gov.propose(rt.dao_signer(), targets, values, calldatas, description)
    console.print(f"proposal {proposal_id}: {gov.state(proposal_id).name.lower()}")


def proposals(governor: GovernorOption = None) -> None:
    """The governor's proposals with their state and votes."""
    from orchestrator.entry.dao_pool import call

    rt = runtime(needs_persistent_chain=True)
    gov = _governor(rt, governor)
    table = Table("id", "state", "for", "against", "abstain", "vote ends (block)", "description")
    for p in gov.proposals():
        against, for_, abstain = call(rt.chain, gov.address, "DeworkerGovernor", "proposalVotes", p.id)
        table.add_row(
            str(p.id), p.state.name.lower(), f"{for_ / 1e18:g}", f"{against / 1e18:g}", f"{abstain / 1e18:g}",
            str(p.vote_end), p.description,
        )  # fmt: skip
    console.print(table)


def vote(
    proposal_id: Annotated[int, typer.Argument(metavar="ID", help="Proposal id.")],
    support: Annotated[str, typer.Argument(help="for, against or abstain.")],
    reason: Annotated[str, typer.Option(help="Recorded on chain with the vote.")] = "",
    governor: GovernorOption = None,
) -> None:
    """Vote with the DAO account's delegated votes."""
    rt = runtime(needs_persistent_chain=True)
    _governor(rt, governor).vote(rt.dao_signer(), proposal_id, support, reason)
    console.print(f"voted {support} on proposal {proposal_id}")


def queue(
    proposal_id: Annotated[int, typer.Argument(metavar="ID", help="Proposal id.")], governor: GovernorOption = None
) -> None:
    """Queue a succeeded proposal in the timelock."""
    rt = runtime(needs_persistent_chain=True)
    gov = _governor(rt, governor)
    gov.queue(rt.dao_signer(), proposal_id)
    console.print(f"proposal {proposal_id}: {gov.state(proposal_id).name.lower()}")


def execute(
    proposal_id: Annotated[int, typer.Argument(metavar="ID", help="Proposal id.")], governor: GovernorOption = None
) -> None:
    """Execute a queued proposal once the timelock's delay is over."""
    rt = runtime(needs_persistent_chain=True)
    gov = _governor(rt, governor)
    gov.execute(rt.dao_signer(), proposal_id)
    console.print(f"proposal {proposal_id}: {gov.state(proposal_id).name.lower()}")


def register(dao_app: typer.Typer) -> None:
    """Add the pool and governance commands to ``deworker dao``."""
    dao_app.add_typer(pool_app, name="pool", no_args_is_help=True)
    dao_app.add_typer(governor_app, name="governor", no_args_is_help=True)
    for command in (propose, proposals, vote, queue, execute):
        dao_app.command(command.__name__)(command)


# ------------------------------------------------------------------------------------ the operator's rewards


def pool_earnings(rt: Runtime) -> list[dict[str, object]]:
    """Per fleet agent and configured pool (``revenue.pools``), read from the chain: shares held, bounties of the
    pool's finalized tasks it did, revenue claimed (``RevenueClaimed`` events) and still claimable, by token."""
    from orchestrator.adapters.pools import ProjectPoolRevenue

    pools = ProjectPoolRevenue(chain=rt.chain, pools=rt.config.revenue.pools)
    rows: list[dict[str, object]] = []
    for entry in rt.fleet.entries():
        claims = pools.claims(entry.address)
        for address in pools.pools:
            pool = _pool(rt, address)
            shares = int(pool.view("balanceOf", entry.address))
            bounty = sum(t.reward for t in pool.tasks() if t.status == "finalized" and t.contributor == entry.address)
            claimed: dict[str, int] = {}
            for claim in claims:
                if claim.pool == pool.address:
                    claimed[claim.token] = claimed.get(claim.token, 0) + claim.amount
            claimable = {h.token: h.claimable for h in pools.holdings(entry.address) if h.pool == pool.address}
            if shares or bounty or claimed:
                rows.append(
                    {
                        "agent": entry.name,
                        "pool": pool.address,
                        "project": str(pool.view("name")),
                        "shares": shares,
                        "bounty": {pool.token: bounty} if bounty else {},
                        "revenue_claimed": claimed,
                        "revenue_claimable": {t: a for t, a in claimable.items() if a},
                    }
                )
    return rows


def pool_earnings_table(rt: Runtime, rows: list[dict[str, object]]) -> Table:
    """``pool_earnings`` as a table (amounts in the token book's symbols)."""
    from orchestrator.domain.money import amounts_text

    book = rt.token_book()
    table = Table("agent", "project", "shares", "bounty", "revenue claimed", "claimable", title="Project pools")
    for row in rows:
        table.add_row(
            str(row["agent"]),
            f"{row['project']} {row['pool']}",
            str(row["shares"]),
            *(amounts_text(row[k], book) for k in ("bounty", "revenue_claimed", "revenue_claimable")),  # type: ignore[arg-type]
        )
    return table

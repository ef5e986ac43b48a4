"""``deworker dao ...`` on an ERC-8183 job market (a ``boards:`` entry of ``kind: erc8183``): post a job (direct hire
or open), hire a provider for an open job, complete, reject, refund, show and check it.

``dao post``, ``dao reject``, ``dao show`` and ``dao check`` take ``--board NAME``: naming a market sends them here
(``main`` delegates in one line each); ``dao complete``, ``dao hire`` and ``dao refund`` exist only for markets and
are added to the ``dao`` app by ``register``. The client's and evaluator's account is the DAO's (``dao.key_env``).
Every write is checked against the job getter first (``entry.market``): a refused action sends nothing.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.domain.errors import ConfigError, DeworkerError
from orchestrator.entry.cli.context import current, runtime
from orchestrator.entry.terminal import literal

if TYPE_CHECKING:
    from orchestrator.entry.bootstrap import Runtime
    from orchestrator.entry.config import BoardConfig
    from orchestrator.entry.dao import Dao
    from orchestrator.entry.market import Market

console = Console()


def say(text: str) -> None:
    """One line of output, never wrapped (hashes and CIDs stay copyable)."""
    console.print(text, soft_wrap=True)


BoardOption = Annotated[
    str | None, typer.Option("--board", help="The board (its name under boards:); a kind: erc8183 market.")
]


def market_entry(name: str | None) -> BoardConfig:
    """The ``boards:`` entry of the market ``name`` (None: the first market); ``ConfigError`` naming the key."""
    boards = current().config().board_list
    markets = [b for b in boards if b.kind == "erc8183"]
    if name is None:
        if not markets:
            raise ConfigError(
                "no board of kind erc8183 is configured",
                key="boards[].kind",
                hint="add one under boards: with kind: erc8183 and its address",
            )
        return markets[0]
    for board in boards:
        if board.name == name:
            if board.kind != "erc8183":
                raise ConfigError(f"board {name!r} is a {board.kind}, not an ERC-8183 market", key="boards[].kind")
            return board
    raise ConfigError(
        f"no board named {name!r}", key="boards[].name", hint=f"configured: {', '.join(b.name for b in boards)}"
    )


def is_market(name: str | None) -> bool:
    """Whether ``--board NAME`` names an ERC-8183 market (the commands shared with the TaskBoard delegate here)."""
    return name is not None and any(b.name == name and b.kind == "erc8183" for b in current().config().board_list)


def market(name: str | None) -> tuple[Runtime, Market, Dao]:
    """The DAO's account on the market, and a ``Dao`` for what is not board-specific (token amounts, artifact
    fetching, acceptance tests)."""
    from orchestrator.adapters.boards.erc8183 import load_profile
    from orchestrator.adapters.chain.base import checksum_address
    from orchestrator.entry.dao import Dao
    from orchestrator.entry.market import Market

    entry = market_entry(name)
    if entry.address is None:
        raise ConfigError(f"board {entry.name!r} has no address", key="boards[].address", hint="set its address")
    rt = runtime(needs_persistent_chain=True)
    address = checksum_address(entry.address)
    m = Market(
        chain=rt.chain,
        signer=rt.dao_signer(),
        store=rt.artifacts,
        address=address,
        name=entry.name,
        profile=load_profile(entry.abi),
    )
    dao = Dao(chain=rt.chain, signer=m.signer, store=rt.artifacts, board=address, token=m.board.token)
    return rt, m, dao


def post(*, board: str | None, spec: Path, provider: str, evaluator: str | None, budget: str, expires: str) -> None:
    """``dao post --board MARKET``: a direct hire (``--provider ADDRESS``, funded now) or an open job (``open``)."""
    from orchestrator.adapters.chain.base import checksum_address
    from orchestrator.domain.specs import parse_spec
    from orchestrator.entry.dao import parse_duration, shown, to_base_units

    entry = market_entry(board)
    task_spec = parse_spec(spec.read_bytes(), max_bytes=entry.max_spec_bytes)
    seconds = parse_duration(expires)
    rt, m, dao = market(board)
    info = dao.token_info(m.board.token)
    if info is None:
        raise DeworkerError(f"the payment token {m.board.token} does not answer symbol() and decimals()")
    units = to_base_units(budget, info.decimals)
    hired = None if provider.strip().lower() == "open" else checksum_address(provider)
    posted = m.post(
        task_spec,
        provider=hired,
        evaluator=checksum_address(evaluator) if evaluator else m.me,
        budget=units,
        expired_at=rt.chain.block().timestamp + seconds,
    )
    what = f"hired {hired}, {dao.amount(units, m.board.token)} escrowed" if hired else "open for bids"
    say(
        f"posted job [bold]{posted.job_id}[/] {literal(repr(shown(task_spec.title)))} on {entry.name}: {what}, "
        f"description {posted.description}, tx {posted.receipts[-1].tx_hash}"
    )


def _job_table(m: Market, dao: Dao, key: str) -> Table:
    from orchestrator.domain.errors import DocumentRefused
    from orchestrator.entry.dao import shown

    job = m.board.status(key)
    table = Table(title=f"Job {key} on market {m.address}", show_header=False)
    try:
        spec = m.board.read_spec(job)
        table.add_row("title", literal(shown(spec.title)))
        table.add_row(
            "spec", literal(f"{spec.deliverable.kind.value}; skills {', '.join(shown(s, 40) for s in spec.skills)}")
        )
    except (DocumentRefused, DeworkerError) as exc:
        table.add_row("spec", f"[red]cannot be read[/]: {literal(exc.message)}")
    table.add_row("budget", literal(dao.amount(job.reward, job.token)) + f" ({job.token})")
    table.add_row("expires", datetime.fromtimestamp(job.deadline, UTC).strftime("%Y-%m-%d %H:%M UTC"))
    table.add_row("state", job.status_text)
    table.add_row("client", job.poster)
    table.add_row("evaluator", job.reviewer)
    table.add_row("provider", job.claimant or "- (open)")
    table.add_row("submitted", literal(job.artifact_cid) or "nothing")
    return table


def show(*, board: str | None, key: int) -> None:
    """``dao show ID --board MARKET``: the job from the getter, and its artifact's files (fetched, verified)."""
    from orchestrator.entry.dao import artifact_files

    _, m, dao = market(board)
    console.print(_job_table(m, dao, str(key)))
    job = m.board.status(str(key))
    if not job.artifact_cid:
        say(f"job {key} has nothing submitted (it is {job.status_text})")
        return
    with tempfile.TemporaryDirectory(prefix="deworker-show-") as tmp:
        root = dao.fetch_artifact(job, Path(tmp))
        say(f"artifact {job.artifact_cid}: fetched, every block verified")
        for f in artifact_files(root):
            say(f"  {literal(f.path)}  {f.size:,} bytes")


def check(*, board: str | None, key: int, limits: object) -> None:
    """``dao check ID --board MARKET``: the spec's acceptance tests on the submitted artifact (exit 0/1/3)."""
    from agents.config import TestRunConfig

    assert isinstance(limits, TestRunConfig)
    _, m, dao = market(board)
    job = m.board.status(str(key))
    spec = m.board.read_spec(job)
    if spec.acceptance_tests is None:
        say(f"job {key}'s spec has no acceptance tests: nothing to run (review it by eye)")
        raise typer.Exit(3)
    with tempfile.TemporaryDirectory(prefix="deworker-check-") as tmp:
        root = dao.fetch_artifact(job, Path(tmp))
        run = dao.run_checks(spec, root, Path(tmp), limits)
    assert run is not None
    console.print(literal(run.output, keep_lines=True), highlight=False)
    verdict = "[green]passed[/]" if run.passed else "[red]failed[/]"
    say(f"job {key}: acceptance tests {verdict} on artifact {job.artifact_cid}")
    raise typer.Exit(0 if run.passed else 1)


def _hashed(reason: str) -> None:
    """A reason longer than bytes32 goes on chain as its sha2-256: say so, with the digest, so it can be matched."""
    from orchestrator.entry.market import reason_bytes

    if len(reason.encode("utf-8")) > 32:
        say(f"the reason is longer than 32 bytes: recorded as its sha2-256, 0x{reason_bytes(reason).hex()}")


def reject(*, board: str | None, key: int, reason: str) -> None:
    _, m, _ = market(board)
    receipt = m.reject(key, reason)
    say(f"rejected job {key} (tx {receipt.tx_hash}); the escrow, if any, is refunded to the client")
    _hashed(reason)


def register(dao_app: typer.Typer) -> None:
    """Add the market-only commands to ``deworker dao``."""

    @dao_app.command("complete")
    def dao_complete(
        job_id: Annotated[int, typer.Argument(help="Job id on the market.")],
        reason: Annotated[str, typer.Option("--reason", help="Attestation: text up to 32 bytes, else its hash.")] = "",
        board: BoardOption = None,
    ) -> None:
        """ERC-8183: the evaluator completes a submitted job; the escrow goes to the provider, less the market's
        platform fee.

        Example: `deworker dao complete 4 --board acp --reason "ok"`"""
        _, m, dao = market(board)
        job = m.board.status(str(job_id))
        receipt = m.complete(job_id, reason)
        say(
            f"completed job {job_id}: {literal(dao.amount(job.reward, job.token))} released to {job.claimant} "
            f"(less any platform fee; tx {receipt.tx_hash})"
        )
        _hashed(reason)

    @dao_app.command("bids")
    def dao_bids(
        job_id: Annotated[int, typer.Argument(help="An open job on the market.")], board: BoardOption = None
    ) -> None:
        """ERC-8183: the signed bids on an open job, cheapest first, each signature verified (numbered for
        `dao hire JOB --bid N`).

        Example: `deworker dao bids 4 --board acp`"""
        from orchestrator.entry.bids import bid_book

        rt, m, dao = market(board)
        book = bid_book(rt)
        assert book is not None  # market() found a market
        found = book.bids(m.board.name, job_id)
        table = Table(title=f"Bids on job {job_id} ({m.board.name})")
        for column in ("#", "bidder", "amount"):
            table.add_column(column)
        for n, bid in enumerate(found, 1):
            table.add_row(str(n), bid.bidder, literal(dao.amount(bid.amount, m.board.token)))
        if not found:
            table.caption = "no bids yet"
        console.print(table, soft_wrap=True)

    @dao_app.command("hire")
    def dao_hire(
        job_id: Annotated[int, typer.Argument(help="An open job on the market (posted with --provider open).")],
        bid: Annotated[int | None, typer.Option("--bid", help="Hire bid N of `dao bids JOB` at its amount.")] = None,
        provider: Annotated[str | None, typer.Option("--provider", help="Or: the provider's address.")] = None,
        budget: Annotated[str | None, typer.Option("--budget", help="With --provider: budget, whole tokens.")] = None,
        board: BoardOption = None,
    ) -> None:
        """ERC-8183: hire a provider for an open job: setProvider, setBudget (if it differs), approve, fund. The
        provider's agent then works it as a direct hire; the other bidders are not hired.

        Examples: `deworker dao hire 4 --board acp --bid 1`, `deworker dao hire 4 --provider 0xAb... --budget 40`"""
        from orchestrator.adapters.chain.base import checksum_address
        from orchestrator.entry.bids import bid_book
        from orchestrator.entry.dao import to_base_units

        rt, m, dao = market(board)
        if bid is not None:
            book = bid_book(rt)
            assert book is not None
            found = book.bids(m.board.name, job_id)
            if not 1 <= bid <= len(found):
                raise DeworkerError(f"job {job_id} has no bid {bid}", hint=f"list them: deworker dao bids {job_id}")
            chosen, units = found[bid - 1].bidder, found[bid - 1].amount
        elif provider is not None and budget is not None:
            info = dao.token_info(m.board.token)
            if info is None:
                raise DeworkerError(f"the payment token {m.board.token} does not answer symbol() and decimals()")
            chosen, units = checksum_address(provider), to_base_units(budget, info.decimals)
        else:
            raise DeworkerError("say whom to hire", hint="--bid N (see `dao bids JOB`), or --provider and --budget")
        receipts = m.hire(job_id, chosen, units)
        say(
            f"hired {chosen} for job {job_id}: {literal(dao.amount(units, m.board.token))} "
            f"escrowed (tx {receipts[-1].tx_hash})"
        )

    @dao_app.command("refund")
    def dao_refund(
        job_id: Annotated[int, typer.Argument(help="Job id on the market.")], board: BoardOption = None
    ) -> None:
        """ERC-8183: `claimRefund` of a Funded or Submitted job whose expiry has come (anyone may call it).

        Example: `deworker dao refund 4 --board acp`"""
        _, m, _ = market(board)
        receipt = m.refund(job_id)
        say(f"refunded job {job_id} to its client (tx {receipt.tx_hash}); it is Expired")

"""The ``deworker`` command line (Typer + Rich).

Errors Deworker raises on purpose are printed as one line plus the fix, without a traceback: exit code 2 for
bad configuration or usage, 1 for everything else. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.domain.errors import ConfigError, DeworkerError, DocumentRefused
from orchestrator.domain.untrusted import printable
from orchestrator.entry.cli import market as market_cli
from orchestrator.entry.cli.context import runtime, state
from orchestrator.entry.cli.model import model_app
from orchestrator.entry.cli.pool import register as register_pool_commands
from orchestrator.entry.cli.review import review_app
from orchestrator.entry.cli.service import service_app
from orchestrator.entry.cli.wallet import wallet_app
from orchestrator.entry.listing import ColumnKind, JsonOption, WideOption, cell, emit_json, is_narrow, short
from orchestrator.entry.listing import show as show_table
from orchestrator.entry.listing import table as listing_table
from orchestrator.entry.terminal import literal

if TYPE_CHECKING:  # imported lazily at run time: `deworker --help` stays fast
    from agents.config import TestRunConfig
    from orchestrator.domain.board import BoardTask
    from orchestrator.domain.specs import TaskSpec
    from orchestrator.entry.bootstrap import Runtime
    from orchestrator.entry.dao import Dao

console = Console()
err_console = Console(stderr=True)


def _flags_without_metavar() -> None:
    """Typer 0.29's rich help shows a ``<bool>`` type after every on/off flag (``--wide <bool>``), which reads as
    if the flag took a value; it has no setting for this, so the one method that picks the shown type is wrapped:
    a flag shows none, every other option is unchanged. Runs once, when the CLI module is imported."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "_deworker", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._deworker = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_metavar()

app = typer.Typer(
    name="deworker",
    help="Run a fleet of AI contributors on DAO task boards: poll, claim, produce, review, submit, collect.\n\n"
    "Start with `deworker demo` (everything in-process), or `deworker devnet up` for a local chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
artifact_app = typer.Typer(
    help="Content-addressed artifacts (CIDs identical to `ipfs add --cid-version=1 --raw-leaves`): add and get, "
    "CAR export and import for offline hand-over, and `serve` as an IPFS trustless gateway for other machines."
)
spec_app = typer.Typer(help="Task specs: the JSON document a DAO posts, stored by CID.")
dao_app = typer.Typer(
    help="For DAOs: deploy a board, post funded tasks, look at and test the work, approve, reject or cancel. "
    "On an ERC-8183 job market (`--board NAME`): post a job (a direct hire or open), hire, complete, reject, "
    "refund.\n\n"
    "Needs only `chain.*` and a board's `address` under `boards:` (or the deployment `dao deploy` saved); "
    "posting also needs a reward token: `dao.token`, else the saved one, else the board's latest task's."
)
devnet_app = typer.Typer(
    help="A local anvil dev chain with the contracts deployed, for trying the DAO commands, and `devnet fund` to "
    "give wallets ETH and reward tokens from its dev accounts."
)
config_app = typer.Typer(help="Inspect the configuration.")
app.add_typer(artifact_app, name="artifact", no_args_is_help=True)
app.add_typer(spec_app, name="spec", no_args_is_help=True)
market_cli.register(dao_app)  # dao complete / dao refund (ERC-8183 markets)
app.add_typer(dao_app, name="dao", no_args_is_help=True)
register_pool_commands(dao_app)  # dao pool ..., dao governor deploy, dao propose|proposals|vote|queue|execute
app.add_typer(devnet_app, name="devnet", no_args_is_help=True)
app.add_typer(config_app, name="config", no_args_is_help=True)
app.add_typer(model_app, name="model", no_args_is_help=True)
app.add_typer(wallet_app, name="wallet", no_args_is_help=True)
app.add_typer(service_app)  # no name: run, status, tasks, agents and rewards are top-level commands
app.add_typer(review_app, name="review", no_args_is_help=True)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default: $DEWORKER_CONFIG or ./config.yaml).", dir_okay=False
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    state.reset(config_path=config, debug=debug)
    ctx.obj = state


# --------------------------------------------------------------------------------------------------- config


@config_app.command("check")
def config_check() -> None:
    """Validate the config file and the DEWORKER_* environment, and print the effective configuration."""
    cfg = state.config()
    console.print_json(cfg.model_dump_json())
    for line in cfg.deprecations():
        err_console.print(f"[yellow]deprecated:[/] {literal(line)}", highlight=False, soft_wrap=True)
    err_console.print("[green]config OK[/]")


# ----------------------------------------------------------------------------------------------------- spec


@spec_app.command("schema")
def spec_schema() -> None:
    """Print the task spec JSON Schema (deworker/task-spec@1)."""
    from orchestrator.domain.specs import spec_json_schema

    sys.stdout.write(json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n")


@spec_app.command("validate")
def spec_validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Spec JSON file.")],
) -> None:
    """Check a spec file against the schema, exactly as a polling agent would."""
    from orchestrator.domain.specs import parse_spec

    spec = parse_spec(file.read_bytes(), max_bytes=state.config().dao_board.max_spec_bytes)
    console.print(
        f"[green]valid[/] {literal(repr(spec.title))}: {spec.deliverable.kind} deliverable, "
        f"skills {literal(', '.join(spec.skills))}"
    )


# ------------------------------------------------------------------------------------------------- artifact


@artifact_app.command("add")
def artifact_add(
    path: Annotated[Path, typer.Argument(exists=True, help="A file or a directory (added recursively).")],
) -> None:
    """Add a file or directory to the local store and print only its CID (like `ipfs add -Q`)."""

    sys.stdout.write(runtime().artifacts.put_path(path) + "\n")


@artifact_app.command("get")
def artifact_get(
    cid: Annotated[str, typer.Argument(help="The CID to fetch.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the file or directory.")],
) -> None:
    """Write the content of CID to PATH, verifying every block against its hash."""

    runtime().artifacts.get_path(cid, output)
    err_console.print(f"wrote {output}")


def exposure_warning(host: str, root: Path) -> str | None:
    """What `artifact serve` warns about when ``host`` is not a loopback address (None when it is)."""
    from orchestrator.entry.web.config import is_loopback

    if is_loopback(host):
        return None
    return (
        f"serving on {host}, reachable from other machines: every artifact in {root} can be read by anyone "
        "who knows its CID. Bind 127.0.0.1 to keep it local."
    )


@artifact_app.command("serve")
def artifact_serve(
    host: Annotated[str, typer.Option(help="Address to bind. Anything but a loopback address is public.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8480,
) -> None:
    """Serve the local store as a read-only IPFS trustless gateway: `/ipfs/CID?format=raw|car`.

    Every block this machine stores is public to whoever can reach the address: give others a URL only for
    content you would publish anyway. Nothing is fetched from elsewhere; unknown CIDs are 404.

    Examples:

        deworker artifact serve                      # http://127.0.0.1:8480/

        curl -o x.car 'http://127.0.0.1:8480/ipfs/CID?format=car'

        curl -H 'Accept: application/vnd.ipld.raw' http://127.0.0.1:8480/ipfs/CID
    """
    import uvicorn

    from orchestrator.adapters.artifacts.gateway_server import create_gateway_app
    from orchestrator.entry.web.server import bind

    store = runtime().local_artifacts
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}/"
    warning = exposure_warning(host, store.root)
    if warning:
        err_console.print(f"[yellow]warning:[/] {literal(warning)}")
    err_console.print(f"trustless gateway for {store.root} on {url}ipfs/CID?format=car|raw (Ctrl+C stops it)")
    sys.stdout.write(url + "\n")
    sys.stdout.flush()
    config = uvicorn.Config(
        create_gateway_app(store), log_level="info", lifespan="off", server_header=False, proxy_headers=False
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


@artifact_app.command("export")
def artifact_export(
    cid: Annotated[str, typer.Argument(help="The root CID (its whole DAG must be in the local store).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The CAR file to write ('-': stdout).")],
) -> None:
    """Write CID's DAG as a CARv1 with that one root, every block verified as it is read.

    Blocks are in depth-first pre-order without duplicates, as `ipfs dag export` writes them. On failure
    (a missing or damaged block) no file is left behind.

    Example: deworker artifact export bafy... -o site.car
    """
    from orchestrator.adapters.artifacts import write_car
    from orchestrator.adapters.artifacts.unixfs import Cid

    root = Cid.parse(cid)
    store = runtime().local_artifacts
    if str(output) == "-":
        written = write_car(sys.stdout.buffer, root, store.get_block)
        sys.stdout.buffer.flush()
    else:
        tmp = output.with_name(f".{output.name}.partial")
        try:
            with tmp.open("wb") as out:
                written = write_car(out, root, store.get_block)
            tmp.replace(output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    err_console.print(f"wrote {output} ({written} bytes, root {root})")


@artifact_app.command("import")
def artifact_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A CARv1 file ('ipfs dag export').")],
) -> None:
    """Store the blocks of a CARv1 file, each verified against its CID first, and print the root CIDs.

    Every root's DAG must be complete once the file is read: otherwise the command fails (exit 1) and names the
    missing block. Blocks already verified stay in the store (they are valid content, never a partial file).

    Example: deworker artifact import site.car
    """
    from orchestrator.adapters.artifacts import CarReader, walk_dag
    from orchestrator.domain.errors import ArtifactError, ArtifactNotFound

    store = runtime().local_artifacts
    count = 0
    with file.open("rb") as stream:
        reader = CarReader(stream, source=str(file))
        if not reader.header.roots:
            raise ArtifactError(f"{file}: the CAR names no root", hint="export it with a root (`ipfs dag export CID`)")
        try:
            for cid, block in reader.blocks():
                store.put_block(cid, block)
                count += 1
        except ArtifactError as exc:
            raise type(exc)(f"{exc.message} ({count} verified blocks before it were kept)", hint=exc.hint) from None
    for root in reader.header.roots:
        # walk_dag yields a CID before it loads that block: checking each one first finds the missing one
        missing = next((c for c in walk_dag(root, store.get_block) if not store.has_block(c)), None)
        if missing is not None:
            raise ArtifactNotFound(
                f"{file}: the DAG of root {root} is incomplete: block {missing} is in neither the CAR nor the "
                f"store ({count} verified blocks were stored)",
                hint="export the whole DAG (`deworker artifact export CID` or `ipfs dag export CID`)",
            )
    for root in reader.header.roots:
        sys.stdout.write(f"{root}\n")
    err_console.print(f"imported {count} blocks from {file}")


# ------------------------------------------------------------------------------------------------------ dao


def _dao() -> tuple[Runtime, Dao]:
    """The DAO on the configured board. Needs only ``chain`` and a board (its ``address`` under ``boards:``, or the
    address book's deployment); the token for new posts is ``dao.token``, else the address book's for this board,
    else the board's most recent task's (see ``Dao``)."""
    from orchestrator.adapters.chain.base import checksum_address
    from orchestrator.entry.dao import Dao

    rt = runtime(needs_persistent_chain=True)
    cfg = rt.config
    dep = rt.deployment()
    token = cfg.dao.token
    saved = rt.addresses.get(dep.chain_id)
    if token is None and saved is not None and saved.board.lower() == dep.board.lower():
        token = saved.token
    dao = Dao(  # checksummed: an unquoted 0x... in YAML comes back lower-case
        chain=rt.chain,
        signer=rt.dao_signer(),
        store=rt.artifacts,
        board=checksum_address(dep.board),
        token=checksum_address(token) if token else None,
        name=cfg.dao_board.name,
        max_spec_bytes=cfg.dao_board.max_spec_bytes,
    )
    return rt, dao


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _test_limits() -> TestRunConfig:
    """The sandbox limits ``dao check`` runs tests with: those of the first agent profile, else the defaults."""
    from agents.config import TestRunConfig

    profiles = state.config().agents.profiles
    return profiles[0].tests if profiles else TestRunConfig()


@dao_app.command("deploy")
def dao_deploy() -> None:
    """Deploy a reward token and a TaskBoard with the DAO account; save their addresses in the data dir.

    Other machines need only the board's address: give them `boards: [{address: <task board>}]` and the chain."""
    from orchestrator.entry.bootstrap import Deployment
    from orchestrator.entry.dao import Dao

    rt = runtime(needs_persistent_chain=True)
    cfg = rt.config.dao
    token, board, block = Dao.deploy_configured(chain=rt.chain, sender=rt.dao_signer(), config=cfg)
    rt.addresses.save(Deployment(chain_id=rt.chain.chain_id, token=token, board=board, block=block))
    table = Table(title=f"Deployed on chain {rt.chain.chain_id}", show_header=False)
    table.add_row("reward token", f"{token} ({cfg.token_symbol}, {cfg.token_supply:,} minted to the DAO)")
    table.add_row("task board", f"{board} (claims last {cfg.claim_ttl:,} s)")
    table.add_row("DAO account", rt.dao_signer().address)
    table.add_row("saved to", str(rt.addresses.path))
    console.print(table)


@dao_app.command("post")
def dao_post(
    spec: Annotated[Path, typer.Option("--spec", exists=True, dir_okay=False, help="Task spec JSON file.")],
    reward: Annotated[str | None, typer.Option("--reward", help="Reward in whole tokens, e.g. 50 or 12.5.")] = None,
    deadline: Annotated[str, typer.Option("--deadline", help="Time allowed from now: 90m, 12h, 3d, 2w.")] = "3d",
    reviewer: Annotated[
        str | None,
        typer.Option("--reviewer", help="Who approves: an EOA, a Safe or a timelock. Default: the DAO."),
    ] = None,
    board: market_cli.BoardOption = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="ERC-8183: the hired provider's ADDRESS, or `open` for bids.")
    ] = None,
    evaluator: Annotated[
        str | None, typer.Option("--evaluator", help="ERC-8183: who completes or rejects. Default: the DAO.")
    ] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="ERC-8183: the budget in whole tokens.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="ERC-8183: expiry from now: 12h, 3d.")] = None,
) -> None:
    """Validate SPEC, store it by CID, escrow the reward and post the task.

    The reward token is `dao.token` (else the one `dao deploy` saved, else the board's latest task's). The DAO's
    token balance and gas are checked before anything is sent.

    Example:

    - `deworker dao post --spec glossary.json --reward 50 --deadline 3d`
    - `deworker dao post --board acp --provider 0xAb... --evaluator 0xEv... --budget 50 --expires 3d --spec s.json`
      (an ERC-8183 market: a direct hire, funded now; `--provider open` posts a job for bids)
    """
    if market_cli.is_market(board):
        if provider is None or (budget or reward) is None:
            raise DeworkerError("a job on a market needs --provider and --budget", hint="--provider ADDRESS|open")
        market_cli.post(
            board=board, spec=spec, provider=provider, evaluator=evaluator or reviewer,
            budget=str(budget or reward), expires=expires or deadline,
        )  # fmt: skip
        return
    if reward is None:
        raise DeworkerError("a task needs --reward", hint="give the reward in whole tokens, e.g. --reward 50")
    from orchestrator.domain.specs import parse_spec
    from orchestrator.entry.dao import parse_duration, shown, to_base_units

    task_spec = parse_spec(spec.read_bytes(), max_bytes=state.config().dao_board.max_spec_bytes)
    seconds = parse_duration(deadline)
    _, dao = _dao()
    info = dao.token_info(dao.token)
    if info is None:
        raise DeworkerError(
            f"the reward token {dao.token} does not answer symbol() and decimals()",
            hint="set dao.token to a standard ERC-20",
        )
    units = to_base_units(reward, info.decimals)
    posted = dao.post(task_spec, reward=units, deadline=int(time.time()) + seconds, reviewer=reviewer)
    console.print(
        f"posted task [bold]{posted.task_id}[/] {literal(repr(shown(task_spec.title)))}: "
        f"{dao.amount(units, dao.token)} escrowed, spec {posted.spec_cid}, tx {posted.receipt.tx_hash}",
        soft_wrap=True,
    )
    if posted.read_back:
        console.print("the spec was read back through the configured gateways, every block verified")


def _board_title(dao: Dao, task: BoardTask) -> str | None:
    """The task's title from its spec, or None when the spec cannot be fetched or read."""
    from orchestrator.domain.errors import ArtifactError

    try:
        return dao.spec(task).title
    except (DocumentRefused, ArtifactError):
        return None


@dao_app.command("tasks")
def dao_tasks(wide: WideOption = False, as_json: JsonOption = False) -> None:
    """A table of every task on the board, newest first: title, status, reward, deadline, claimant, artifact.

    Each reward is shown in its own token (read from the board), with the token contract's symbol. The table
    shortens addresses and CIDs; `--wide` prints them whole (to copy a CID), `--json` gives scripts every field
    with rewards in base units.

    Examples: `deworker dao tasks`, `deworker dao tasks --wide`, `deworker dao tasks --json`."""
    from orchestrator.entry.dao import shown
    from orchestrator.entry.dao_pool import pool_task_weights

    rt, dao = _dao()
    board_tasks = dao.tasks()
    titles = {t.key: _board_title(dao, t) for t in board_tasks}
    # a project pool's task earns shares: its weight, read from the pool that posted it (None for other tasks)
    weights = pool_task_weights(rt.chain, (t.poster for t in board_tasks))
    if as_json:
        emit_json(
            {
                "board": dao.board_address,
                "tasks": [
                    {
                        "id": int(t.key),
                        "title": titles[t.key],
                        "status": t.status_text.lower(),
                        "reward": str(t.reward),
                        "token": t.token,
                        "deadline": t.deadline,
                        "poster": t.poster,
                        "reviewer": t.reviewer,
                        "claimant": t.claimant,
                        "spec_cid": t.spec_cid,
                        "artifact_cid": t.artifact_cid,
                        "weight": weights.get(int(t.key)),
                    }
                    for t in board_tasks
                ],
            }
        )
        return
    narrow = is_narrow(console, wide=wide)
    # narrow: the claimant (`dao show ID` has it) and the deadline's year go, so the title keeps some room
    columns: list[tuple[str, ColumnKind]] = [("id", "number"), ("title", "text"), ("status", "id")]
    weight_column: list[tuple[str, ColumnKind]] = [("weight", "number")] if weights else []
    columns += [("reward", "number"), *weight_column, ("deadline", "id")]
    columns += [("artifact", "id")] if narrow else [("claimant", "id"), ("artifact", "id")]
    title = f"Tasks on board {short(dao.board_address, wide=wide)} (times in UTC)"
    out = listing_table(title, columns, wide=wide)
    for t in board_tasks:
        spec_title = titles[t.key]
        cells = [
            t.key,
            "(spec unreadable)" if spec_title is None else literal(shown(spec_title)),
            t.status_text.lower(),
            literal(dao.amount(t.reward, t.token)),
            *([str(weights[int(t.key)]) if int(t.key) in weights else "—"] if weights else []),
            datetime.fromtimestamp(t.deadline, UTC).strftime("%m-%d %H:%M" if narrow else "%Y-%m-%d %H:%M"),
        ]
        cells += [] if narrow else [cell(t.claimant, wide=wide)]
        out.add_row(*cells, cell(t.artifact_cid, wide=wide))
    if not board_tasks:
        out.caption = "no tasks yet: `deworker dao post --spec FILE --reward N`"
    show_table(console, out, wide=wide)


def _task_table(dao: Dao, task: BoardTask) -> tuple[Table, TaskSpec | None]:
    """The task as the board holds it, with its spec summarised (or why the spec cannot be read)."""
    from orchestrator.domain.errors import ArtifactError, DocumentRefused
    from orchestrator.entry.dao import shown

    spec: TaskSpec | None = None
    table = Table(title=f"Task {task.key} on board {dao.board_address}", show_header=False)
    try:
        spec = dao.spec(task)
    except (DocumentRefused, ArtifactError) as exc:
        table.add_row("spec", f"[red]cannot be read[/]: {literal(exc.message)} ({literal(task.spec_cid)})")
    if spec is not None:
        table.add_row("title", literal(shown(spec.title)))
        filename = spec.deliverable.filename
        deliverable = spec.deliverable.kind.value + (f", file {filename}" if filename else "")
        tests = len(spec.acceptance_tests.files) if spec.acceptance_tests else 0
        table.add_row(
            "spec",
            literal(
                f"{deliverable}; skills {', '.join(shown(s, 40) for s in spec.skills)}; "
                f"acceptance criteria: {len(spec.acceptance)}; acceptance test files: {tests}"
            )
            + f" ({literal(task.spec_cid)})",
        )
    table.add_row("reward", literal(dao.amount(task.reward, task.token)) + f" ({task.token})")
    table.add_row("deadline", _when(task.deadline))
    table.add_row("state", task.status_text)
    table.add_row("reviewer", task.reviewer)
    table.add_row("claimant", task.claimant or "-")
    table.add_row("submitted", literal(task.artifact_cid) or "nothing")
    return table, spec


@dao_app.command("show")
def dao_show(
    task_id: Annotated[int, typer.Argument(help="Task id (see `deworker dao tasks`).")],
    cat: Annotated[str | None, typer.Option("--cat", help="Print this text file of the artifact.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the artifact's files to this new folder.")
    ] = None,
    board: market_cli.BoardOption = None,
) -> None:
    """The task (title, spec, reward, deadline, state, claimant) and the artifact submitted for it, fetched by
    CID through the artifact store (every block verified), with its files and sizes.

    Examples:

    - `deworker dao show 3`
    - `deworker dao show 3 --cat glossary.md` (one text file)
    - `deworker dao show 3 -o ./task-3` (every file, into a new folder)
    """
    from orchestrator.domain.untrusted import printable
    from orchestrator.entry.dao import artifact_files, check_export_target, export_artifact, read_text_file

    if market_cli.is_market(board):
        market_cli.show(board=board, key=task_id)
        return
    if output is not None:
        check_export_target(output)
    _, dao = _dao()
    task = dao.task(task_id)
    table, _ = _task_table(dao, task)
    if cat is None:
        console.print(table)
    if not task.artifact_cid:
        console.print(f"task {task_id} has nothing submitted (it is {task.status_text})")
        if cat is not None or output is not None:
            raise typer.Exit(1)
        return
    with tempfile.TemporaryDirectory(prefix="deworker-show-") as tmp:
        root = dao.fetch_artifact(task, Path(tmp))
        if cat is not None:
            sys.stdout.write(printable(read_text_file(root, cat), keep_lines=True))
            return
        files = artifact_files(root)
        console.print(f"artifact {task.artifact_cid}: fetched, every block verified")
        listing = Table()
        listing.add_column("file", overflow="fold")
        listing.add_column("bytes", justify="right")
        for f in files:
            listing.add_row(literal(f.path), f"{f.size:,}")
        console.print(listing)
        if output is not None:
            export_artifact(root, output)
            console.print(f"wrote {len(files)} file(s) to {output}")


@dao_app.command("check")
def dao_check(
    task_id: Annotated[int, typer.Argument(help="Task id (see `deworker dao tasks`).")],
    board: market_cli.BoardOption = None,
) -> None:
    """Fetch the submitted artifact and run the spec's acceptance tests against it, in the same sandbox the
    agents' `run_tests` tool uses. Exit code 0: passed; 1: failed; 3: the spec has no acceptance tests.

    Example:

    - `deworker dao check 3 && deworker dao approve 3 --yes`
    """
    if market_cli.is_market(board):
        market_cli.check(board=board, key=task_id, limits=_test_limits())
    _, dao = _dao()
    task = dao.task(task_id)
    spec = dao.spec(task)
    if spec.acceptance_tests is None:
        console.print(f"task {task_id}'s spec has no acceptance tests: nothing to run (review it by eye)")
        raise typer.Exit(3)
    with tempfile.TemporaryDirectory(prefix="deworker-check-") as tmp:
        root = dao.fetch_artifact(task, Path(tmp))
        run = dao.run_checks(spec, root, Path(tmp), _test_limits())
    assert run is not None  # the spec has tests
    console.print(literal(run.output, keep_lines=True), highlight=False)
    verdict = "[green]passed[/]" if run.passed else "[red]failed[/]"
    console.print(f"task {task_id}: acceptance tests {verdict} on artifact {task.artifact_cid}")
    raise typer.Exit(0 if run.passed else 1)


@dao_app.command("approve")
def dao_approve(
    task_id: Annotated[int, typer.Argument(help="Task id (see `deworker dao tasks`).")],
    check: Annotated[bool, typer.Option("--check", help="Run the spec's acceptance tests first.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Pay without asking.")] = False,
) -> None:
    """Approve a submitted task: the escrowed reward is paid to its claimant.

    Prints what it is about to pay for (title, artifact CID, whether the artifact was fetched and verified, the
    tests' result with --check, reward, recipient) and asks before paying. With --check and --yes, failing tests
    refuse the payment.

    Examples:

    - `deworker dao approve 3` (asks before paying)
    - `deworker dao approve 3 --check --yes` (pays only if the acceptance tests pass)
    """
    from orchestrator.domain.errors import ArtifactError

    _, dao = _dao()
    task = dao.check_approvable(task_id)
    table, spec = _task_table(dao, task)
    passed: bool | None = None
    with tempfile.TemporaryDirectory(prefix="deworker-approve-") as tmp:
        try:
            root = dao.fetch_artifact(task, Path(tmp))
            table.add_row("artifact", "[green]fetched, every block verified[/]")
        except ArtifactError as exc:
            root = None
            table.add_row("artifact", f"[red]NOT fetched[/]: {literal(exc.message)}")
        if check:
            if spec is None or spec.acceptance_tests is None:
                table.add_row("tests", "none in the spec")
            elif root is None:
                table.add_row("tests", "[red]not run[/]: the artifact was not fetched")
                passed = False
            else:
                run = dao.run_checks(spec, root, Path(tmp), _test_limits())
                passed = run is not None and run.passed
                table.add_row("tests", "[green]passed[/]" if passed else "[red]FAILED[/]")
                if not passed and run is not None:
                    console.print(literal(run.output, keep_lines=True), highlight=False)
    amount = dao.amount(task.reward, task.token)
    table.add_row("pays", f"{literal(amount)} to {task.claimant}")
    console.print(table)
    if yes and passed is False:
        console.print(f"not approved: the acceptance tests failed (task {task_id}); nothing was sent")
        raise typer.Exit(1)
    if not yes and not typer.confirm(f"Pay {amount} to {task.claimant} for task {task_id}?", default=False):
        console.print("not approved: nothing was sent")
        raise typer.Exit(1)
    receipt = dao.approve(task_id)
    console.print(f"approved task {task_id}: {literal(amount)} paid to {task.claimant} (tx {receipt.tx_hash})")


@dao_app.command("reject")
def dao_reject(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded on chain for the contributor.")],
    board: market_cli.BoardOption = None,
) -> None:
    """Reject a submission with a reason; the task reopens and its reward stays escrowed. On an ERC-8183 market
    (`--board`) the rejection is final and refunds the client.

    Example:

    - `deworker dao reject 3 --reason "define all six terms"`
    """
    if market_cli.is_market(board):
        market_cli.reject(board=board, key=task_id, reason=reason)
        return
    _, dao = _dao()
    receipt = dao.reject(task_id, reason)
    console.print(f"rejected task {task_id} (tx {receipt.tx_hash}); it is open again")


@dao_app.command("cancel")
def dao_cancel(task_id: Annotated[int, typer.Argument(help="Task id.")]) -> None:
    """Cancel an open (unclaimed) task and refund its reward to the DAO.

    Example:

    - `deworker dao cancel 3`
    """
    _, dao = _dao()
    receipt = dao.cancel(task_id)
    console.print(f"cancelled task {task_id}; reward refunded (tx {receipt.tx_hash})")


# --------------------------------------------------------------------------------------------------- devnet


@devnet_app.command("up")
def devnet_up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8545,
) -> None:
    """Start anvil in the background with the token and board deployed; print RPC URL and dev accounts."""
    from orchestrator.entry import devnet

    info = devnet.up(state.config(), port=port)
    devnet.print_info(console, info)


@devnet_app.command("down")
def devnet_down() -> None:
    """Stop the devnet started by `deworker devnet up`."""
    from orchestrator.entry import devnet

    stopped = devnet.down(state.config())
    console.print("devnet stopped" if stopped else "no devnet was running")


@devnet_app.command("status")
def devnet_status() -> None:
    """Is the devnet running? Its URL, chain id, block height and contracts."""
    from orchestrator.entry import devnet

    info = devnet.status(state.config())
    if info is None:
        console.print("no devnet running; start one with `deworker devnet up`")
        raise typer.Exit(1)
    devnet.print_info(console, info)


@devnet_app.command("fund")
def devnet_fund(
    target: Annotated[str, typer.Argument(help="An agent's name, a wallet's name, or any 0x address.")],
    eth: Annotated[str, typer.Option("--eth", help="ETH to send from the devnet funder (dev account 1).")] = "1",
    tokens: Annotated[
        str, typer.Option("--tokens", help="Reward tokens to send from the DAO account (dev account 0).")
    ] = "0",
) -> None:
    """Fund an agent's wallet (by agent or wallet name) or any address from the devnet's dev accounts: ETH from
    the funder, reward tokens from the DAO. Prints what was sent and the new balances. Dev chains only.

    Examples:

    - `deworker devnet fund funder --eth 5` (the wallet `wallets.funder` names: it tops up the fleet's gas)
    - `deworker devnet fund writer --eth 0.5 --tokens 100` (an agent, by its name in `agents.profiles`)
    - `deworker devnet fund 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --eth 2` (any address)
    """
    from orchestrator.domain.money import units as ether
    from orchestrator.entry import devnet
    from orchestrator.entry.dao import to_base_units

    eth_wei = to_base_units(eth, 18, allow_zero=True)
    rt, dao = _dao()
    token_units = 0
    if tokens.strip() not in ("0", "0.0", ""):
        info = dao.token_info(dao.token)
        if info is None:
            raise DeworkerError(f"the reward token {dao.token} does not answer symbol() and decimals()")
        token_units = to_base_units(tokens, info.decimals)
    if not eth_wei and not token_units:
        raise DeworkerError("nothing to send", hint="give --eth X and/or --tokens Y")
    done = devnet.fund(rt, dao, target, eth_wei=eth_wei, tokens=token_units)
    if done.eth_receipt is not None:
        console.print(
            f"sent {ether(done.eth_wei)} ETH from the devnet funder {done.funder} to {literal(done.label)} "
            f"{done.address} (tx {done.eth_receipt.tx_hash})"
        )
    if done.token_receipt is not None and done.token is not None:
        console.print(
            f"sent {literal(dao.amount(done.tokens, done.token))} from the DAO {dao.signer.address} to "
            f"{literal(done.label)} (tx {done.token_receipt.tx_hash})"
        )
    held = (
        f", {literal(dao.amount(done.token_balance, done.token))}"
        if done.token and done.token_balance is not None
        else ""
    )
    console.print(f"{literal(done.label)} {done.address} now holds {ether(done.eth_balance)} ETH{held}")


# ----------------------------------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    tasks_dir: Annotated[
        Path | None,
        typer.Option("--tasks", help="Folder of spec JSON files to post instead of the bundled set."),
    ] = None,
    review: Annotated[
        str,
        typer.Option(
            "--review",
            help="auto (default), or human: serve the review inbox on web.host:web.port, print a one-off login "
            "and API token, and wait for your decisions.",
        ),
    ] = "auto",
    agent: Annotated[
        str, typer.Option("--agent", help="local (the embedded model, default) or instant (no model).")
    ] = "local",
) -> None:
    """Everything end to end on the in-process chain: a DAO posts tasks and votes (Governor: propose, vote, queue,
    execute) to fund a project pool that posts more; three agents discover, claim, produce, pass review and
    submit; the DAO approves, the boards pay, the pool mints shares after its veto window and the agents claim the
    project's revenue; balances must reconcile with the bounties and revenue in the database."""
    from orchestrator.entry import demo as demo_mod

    if review not in ("auto", "human") or agent not in ("local", "instant"):
        raise ConfigError(
            "--review takes auto or human; --agent takes local or instant", hint="see `deworker demo --help`"
        )
    mode = cast(Literal["auto", "human"], review)  # checked just above
    kind = cast(Literal["local", "instant"], agent)
    ok = demo_mod.run(state.config(), console=console, tasks_dir=tasks_dir, review=mode, agent=kind)
    raise typer.Exit(0 if ok else 1)


class _PrintableFormatter(logging.Formatter):
    """Log lines quote task text, reasons and node answers: control characters are shown as escapes."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep_lines=True)


def _debug_anywhere(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` with every ``--debug`` before a ``--`` moved to the front, where the root callback reads it:
    ``deworker status --debug`` works as well as ``deworker --debug status``."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = "--debug" in argv[:end]
    if not found:
        return argv, False
    rest = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return ["--debug", *rest], True


def main() -> None:
    """Console entry point: run the app, turning Deworker errors into one clear line."""
    handler = logging.StreamHandler()  # what logging's last-resort handler did (warnings, to stderr), made safe
    handler.setFormatter(_PrintableFormatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    args, debug = _debug_anywhere(sys.argv[1:])
    if debug:  # our own loggers say more, and log.exception lines keep their tracebacks (see scheduler.py)
        handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
        for name in ("orchestrator", "wallets", "agents", "tools"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        app(args=args)
    except DeworkerError as exc:
        if state.debug:
            raise
        # messages quote config values and task text: printed as written, never as markup
        err_console.print(f"[bold red]error:[/] {literal(exc.message)}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[bold]fix:[/] {literal(exc.hint)}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(exc, ConfigError | DocumentRefused) else 1)  # 2: the input is wrong
    except KeyboardInterrupt:
        if state.debug:
            raise
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as exc:  # a bug, or a library error no adapter translated: one line unless --debug
        if state.debug:
            raise
        err_console.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {literal(str(exc))}", highlight=False, soft_wrap=True
        )
        err_console.print(
            "[bold]fix:[/] this is a bug in Deworker: run the command again with --debug and report the traceback",
            highlight=False,
        )
        sys.exit(1)

"""The ``deworker`` command line (Typer + Rich).

Errors Deworker raises on purpose are printed as one line plus the fix, without a traceback: exit code 2 for
bad configuration or usage, 1 for everything else. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer
from rich.console import Console
from rich.table import Table

from agents.cli import model_app
from orchestrator.config import Config, load_config
from orchestrator.errors import ConfigError, DeworkerError, DocumentRefused
from orchestrator.service_cli import service_app
from orchestrator.terminal import literal
from orchestrator.untrusted import printable
from orchestrator.web.cli import review_app
from wallets.cli import wallet_app

if TYPE_CHECKING:  # imported lazily at run time: `deworker --help` stays fast
    from orchestrator.bootstrap import Runtime
    from orchestrator.dao import Dao

console = Console()
err_console = Console(stderr=True)

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
    help="Content-addressed artifacts: CIDs identical to `ipfs add --cid-version=1 --raw-leaves`."
)
spec_app = typer.Typer(help="Task specs: the JSON document a DAO posts, stored by CID.")
dao_app = typer.Typer(help="For DAOs: deploy a board, post funded tasks, approve, reject or cancel them.")
devnet_app = typer.Typer(help="A local anvil dev chain with the contracts deployed, for trying the DAO commands.")
config_app = typer.Typer(help="Inspect the configuration.")
app.add_typer(artifact_app, name="artifact", no_args_is_help=True)
app.add_typer(spec_app, name="spec", no_args_is_help=True)
app.add_typer(dao_app, name="dao", no_args_is_help=True)
app.add_typer(devnet_app, name="devnet", no_args_is_help=True)
app.add_typer(config_app, name="config", no_args_is_help=True)
app.add_typer(model_app, name="model", no_args_is_help=True)
app.add_typer(wallet_app, name="wallet", no_args_is_help=True)
app.add_typer(service_app)  # no name: run, status, tasks, agents and rewards are top-level commands
app.add_typer(review_app, name="review", no_args_is_help=True)


class _State:
    config_path: Path | None = None
    debug: bool = False
    _config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


state = _State()


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default: $DEWORKER_CONFIG or ./config.yaml).", dir_okay=False
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    state.config_path = config
    state.debug = debug
    state._config = None


def runtime() -> Runtime:
    """The process's object graph, built from the loaded config (sub-apps use it too)."""
    return _runtime()


def _runtime(*, needs_persistent_chain: bool = False) -> Runtime:
    from orchestrator.bootstrap import Runtime

    cfg = state.config()
    if needs_persistent_chain and cfg.chain.kind == "in-process":
        raise ConfigError(
            "the DAO commands need a chain that outlives one command, but chain.kind is 'in-process'",
            key="chain.kind",
            hint="run `deworker devnet up`, then set chain.kind: devnet in config.yaml "
            "(or export DEWORKER_CHAIN__KIND=devnet)",
        )
    return Runtime(cfg)


# --------------------------------------------------------------------------------------------------- config


@config_app.command("check")
def config_check() -> None:
    """Validate the config file and the DEWORKER_* environment, and print the effective configuration."""
    cfg = state.config()
    console.print_json(cfg.model_dump_json())
    err_console.print("[green]config OK[/]")


# ----------------------------------------------------------------------------------------------------- spec


@spec_app.command("schema")
def spec_schema() -> None:
    """Print the task spec JSON Schema (deworker/task-spec@1)."""
    from orchestrator.specs import spec_json_schema

    sys.stdout.write(json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n")


@spec_app.command("validate")
def spec_validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Spec JSON file.")],
) -> None:
    """Check a spec file against the schema, exactly as a polling agent would."""
    from orchestrator.specs import parse_spec

    spec = parse_spec(file.read_bytes(), max_bytes=state.config().board.max_spec_bytes)
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
    from orchestrator.bootstrap import Runtime

    sys.stdout.write(Runtime(state.config()).store.put_path(path) + "\n")


@artifact_app.command("get")
def artifact_get(
    cid: Annotated[str, typer.Argument(help="The CID to fetch.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the file or directory.")],
) -> None:
    """Write the content of CID to PATH, verifying every block against its hash."""
    from orchestrator.bootstrap import Runtime

    Runtime(state.config()).store.get_path(cid, output)
    err_console.print(f"wrote {output}")


def exposure_warning(host: str, root: Path) -> str | None:
    """What `artifact serve` warns about when ``host`` is not a loopback address (None when it is)."""
    from orchestrator.web.config import is_loopback

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

    from orchestrator.artifacts.gateway_server import create_gateway_app
    from orchestrator.bootstrap import Runtime
    from orchestrator.web.server import bind

    store = Runtime(state.config()).local_artifacts
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
    from orchestrator.artifacts import write_car
    from orchestrator.artifacts.unixfs import Cid
    from orchestrator.bootstrap import Runtime

    root = Cid.parse(cid)
    store = Runtime(state.config()).local_artifacts
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
    from orchestrator.artifacts import CarReader, walk_dag
    from orchestrator.bootstrap import Runtime
    from orchestrator.errors import ArtifactError, ArtifactNotFound

    store = Runtime(state.config()).local_artifacts
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
    from orchestrator.dao import Dao

    rt = _runtime(needs_persistent_chain=True)
    dep = rt.deployment()
    return rt, Dao(chain=rt.chain, signer=rt.dao_signer(), store=rt.store, board=dep.board, token=dep.token)


@dao_app.command("deploy")
def dao_deploy() -> None:
    """Deploy a reward token and a TaskBoard with the DAO account; save their addresses in the data dir."""
    from orchestrator.bootstrap import Deployment
    from orchestrator.dao import Dao

    rt = _runtime(needs_persistent_chain=True)
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
    reward: Annotated[str, typer.Option("--reward", help="Reward in whole tokens, e.g. 50 or 12.5.")],
    deadline: Annotated[str, typer.Option("--deadline", help="Time allowed from now: 90m, 12h, 3d, 2w.")] = "3d",
    reviewer: Annotated[
        str | None,
        typer.Option("--reviewer", help="Who approves: an EOA, a Safe or a timelock. Default: the DAO."),
    ] = None,
) -> None:
    """Validate SPEC, store it by CID, escrow the reward and post the task."""
    from orchestrator.dao import parse_duration, to_base_units
    from orchestrator.specs import parse_spec

    task_spec = parse_spec(spec.read_bytes(), max_bytes=state.config().board.max_spec_bytes)
    seconds = parse_duration(deadline)
    _, dao = _dao()
    units = to_base_units(reward, dao.decimals())
    posted = dao.post(task_spec, reward=units, deadline=int(time.time()) + seconds, reviewer=reviewer)
    console.print(
        f"posted task [bold]{posted.task_id}[/] {literal(repr(task_spec.title))}: {reward} {dao.symbol()} escrowed, "
        f"spec {posted.spec_cid}, tx {posted.receipt.tx_hash}"
    )


@dao_app.command("tasks")
def dao_tasks() -> None:
    """A table of every task on the board with its status, reward, claimant and artifact."""
    from orchestrator.dao import from_base_units

    _, dao = _dao()
    decimals, symbol = dao.decimals(), dao.symbol()
    table = Table(title=f"Tasks on board {dao.board_address}")
    for col in ("id", "status", "reward", "deadline (UTC)", "claimant", "artifact CID"):
        table.add_column(col, overflow="fold")
    for t in dao.tasks():
        table.add_row(
            str(t.task_id),
            t.status.name.lower(),
            f"{from_base_units(t.reward, decimals):,f} {symbol}",
            datetime.fromtimestamp(t.deadline, UTC).strftime("%Y-%m-%d %H:%M"),
            t.claimant or "-",
            literal(t.artifact_cid) or "-",
        )
    console.print(table)


@dao_app.command("approve")
def dao_approve(task_id: Annotated[int, typer.Argument(help="Task id (see `deworker dao tasks`).")]) -> None:
    """Approve a submitted task: the escrowed reward is paid to its claimant."""
    _, dao = _dao()
    receipt = dao.approve(task_id)
    console.print(f"approved task {task_id}: reward paid (tx {receipt.tx_hash})")


@dao_app.command("reject")
def dao_reject(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded on chain for the contributor.")],
) -> None:
    """Reject a submission with a reason; the task reopens and its reward stays escrowed."""
    _, dao = _dao()
    receipt = dao.reject(task_id, reason)
    console.print(f"rejected task {task_id} (tx {receipt.tx_hash}); it is open again")


@dao_app.command("cancel")
def dao_cancel(task_id: Annotated[int, typer.Argument(help="Task id.")]) -> None:
    """Cancel an unclaimed task and refund its reward to the DAO."""
    _, dao = _dao()
    receipt = dao.cancel(task_id)
    console.print(f"cancelled task {task_id}; reward refunded (tx {receipt.tx_hash})")


# --------------------------------------------------------------------------------------------------- devnet


@devnet_app.command("up")
def devnet_up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8545,
) -> None:
    """Start anvil in the background with the token and board deployed; print RPC URL and dev accounts."""
    from orchestrator import devnet

    info = devnet.up(state.config(), port=port)
    devnet.print_info(console, info)


@devnet_app.command("down")
def devnet_down() -> None:
    """Stop the devnet started by `deworker devnet up`."""
    from orchestrator import devnet

    stopped = devnet.down(state.config())
    console.print("devnet stopped" if stopped else "no devnet was running")


@devnet_app.command("status")
def devnet_status() -> None:
    """Is the devnet running? Its URL, chain id, block height and contracts."""
    from orchestrator import devnet

    info = devnet.status(state.config())
    if info is None:
        console.print("no devnet running; start one with `deworker devnet up`")
        raise typer.Exit(1)
    devnet.print_info(console, info)


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
    """Everything end to end on the in-process chain: a DAO posts tasks, three agents discover, claim, produce,
    pass review and submit; the DAO approves and the board pays; balances must reconcile with the database."""
    from orchestrator import demo as demo_mod

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


def main() -> None:
    """Console entry point: run the app, turning Deworker errors into one clear line."""
    handler = logging.StreamHandler()  # what logging's last-resort handler did (warnings, to stderr), made safe
    handler.setFormatter(_PrintableFormatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        app()
    except DeworkerError as exc:
        if state.debug:
            raise
        # messages quote config values and task text: printed as written, never as markup
        err_console.print(f"[bold red]error:[/] {literal(exc.message)}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[bold]fix:[/] {literal(exc.hint)}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(exc, ConfigError | DocumentRefused) else 1)  # 2: the input is wrong

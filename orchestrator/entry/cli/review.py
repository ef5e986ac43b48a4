"""``deworker review ...``: the Typer sub-app for human review (registered by ``orchestrator.entry.cli.main``).

``serve`` runs the web app; ``add-user`` / ``users`` / ``set-password`` / ``disable-user`` / ``token`` manage
reviewer accounts; ``list`` / ``show`` / ``approve`` / ``request-changes`` / ``reject`` / ``abandon`` decide from
the shell.
A decision names the artifact CID that was reviewed (``--cid``, printed by ``list`` and ``show``), exactly like
the web page and the API: approving an older revision never approves a newer one.

Everything is built through ``orchestrator.entry.bootstrap.Runtime`` from the CLI's config. Errors are
``DeworkerError``s, printed as one line plus the fix by ``orchestrator.entry.cli.main.main``.
"""

from __future__ import annotations

import gc
import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.domain.errors import DeworkerError
from orchestrator.domain.secrets import secret_from_env
from orchestrator.entry.cli.context import runtime
from orchestrator.entry.listing import JsonOption, WideOption, cell, emit_json, table
from orchestrator.entry.listing import show as show_table
from orchestrator.entry.terminal import literal
from orchestrator.entry.web.config import Role, WebConfig, WebSettings, is_loopback

if TYPE_CHECKING:  # imported lazily: `deworker --help` stays fast
    from orchestrator.adapters.sql import ReviewDecision
    from orchestrator.entry.bootstrap import Runtime
    from orchestrator.entry.web.users import UserStore

console = Console()
err_console = Console(stderr=True)
review_app = typer.Typer(
    help="Human review: the web inbox, reviewer accounts, and decisions from the shell. Decisions name the CID "
    "you reviewed: approve (it is submitted), request-changes (the agent edits it), reject (the agent starts "
    "over), abandon (the task is given up)."
)

#: Environment variable ``add-user`` and ``set-password`` read the password from (for automation).
PASSWORD_ENV = "DEWORKER_REVIEW_PASSWORD"


@dataclass
class _Context:
    runtime: Runtime
    web: WebConfig

    def users(self) -> UserStore:
        return self.runtime.users


def _context() -> _Context:
    rt = runtime()
    return _Context(runtime=rt, web=rt.config.web)


def _password(confirm: bool = True) -> str:
    from_env = secret_from_env(PASSWORD_ENV)
    if from_env is not None:
        return from_env
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return value


# ------------------------------------------------------------------------------------------------------ serve


@review_app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: web.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: web.port, 8077).")] = None,
) -> None:
    """Run the review web app (inbox, review pages, fleet dashboard, JSON API with /docs), and the local
    artifact store as a read-only IPFS trustless gateway under /ipfs/ (like `deworker artifact serve`). With an
    ERC-8183 market under boards:, also the bid endpoint of its open jobs (POST /bids, signed bids)."""
    import uvicorn

    from orchestrator.entry.bids import bid_book
    from orchestrator.entry.web.app import create_app

    ctx = _context()
    rt = ctx.runtime
    bind_host, bind_port = host or ctx.web.host, port or ctx.web.port
    if not is_loopback(bind_host) and not ctx.web.secure_cookies:
        err_console.print(
            f"[yellow]warning:[/] serving on {bind_host}, reachable from other machines, without TLS: passwords "
            "and session cookies would cross the network in clear. Put a TLS proxy in front and set "
            "web.secure_cookies: true, or bind 127.0.0.1."
        )
    app = create_app(
        engine=rt.engine,
        store=rt.db,
        artifacts=rt.artifacts,
        users=ctx.users(),
        settings=WebSettings.resolve(ctx.web, data_dir=rt.config.data_dir, tokens=rt.token_book()),
        gateway=rt.local_artifacts,
        bids=bid_book(rt),  # POST /bids for open jobs on the configured ERC-8183 markets
    )
    # What start-up built (modules, templates, the app) lives as long as the server: keep it out of the cyclic
    # GC's full passes, which otherwise walk all of it and show up as slow requests.
    gc.collect()
    gc.freeze()
    err_console.print(
        f"Deworker review on http://{bind_host}:{bind_port}/ and its trustless gateway on /ipfs/ (Ctrl+C stops it)"
    )
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="info", server_header=False, proxy_headers=False)


# --------------------------------------------------------------------------------------------------- accounts


@review_app.command("add-user")
def add_user(
    name: Annotated[str, typer.Argument(help="Account name; it is the actor of every decision it makes.")],
    role: Annotated[Role, typer.Option(help="reviewer: may decide; viewer: may only look.")] = Role.REVIEWER,
) -> None:
    """Create a reviewer account. The password is prompted twice, or read from $DEWORKER_REVIEW_PASSWORD."""
    user = _context().users().add_user(name=name, password=_password(), role=role)
    console.print(f"added {user.role} [bold]{user.name}[/]")


@review_app.command("set-password")
def set_password(name: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """Change an account's password (its browser sessions end)."""
    _context().users().set_password(name=name, password=_password())
    console.print(f"password of [bold]{name}[/] changed")


@review_app.command("disable-user")
def disable_user(
    name: Annotated[str, typer.Argument(help="Account name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Re-enable the account instead.")] = False,
) -> None:
    """Disable an account: its sessions end and its API tokens stop working."""
    user = _context().users().set_disabled(name=name, disabled=not enable)
    console.print(f"[bold]{user.name}[/] is {'disabled' if user.disabled else 'enabled'}")


@review_app.command("users")
def users() -> None:
    """List reviewer accounts."""
    table = Table("name", "role", "state", "created")
    for u in _context().users().users():
        table.add_row(u.name, u.role, "disabled" if u.disabled else "active", f"{u.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@review_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="Account the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "api",
    revoke: Annotated[bool, typer.Option("--revoke", help="Delete every token of the account instead.")] = False,
) -> None:
    """Create an API token (printed once: only its hash is stored), or revoke an account's tokens."""
    store = _context().users()
    if revoke:
        console.print(f"revoked {store.revoke_tokens(name=name)} token(s) of [bold]{name}[/]")
        return
    secret, record = store.create_token(name=name, label=label)
    err_console.print(f"token {record.id} ({record.label}) for {name}; it is shown once, store it now:")
    print(secret)  # plain stdout, so `TOKEN=$(deworker review token ci)` works


# -------------------------------------------------------------------------------------------------- decisions


@review_app.command("list")
def list_pending(wide: WideOption = False, as_json: JsonOption = False) -> None:
    """Tasks awaiting review, the longest-waiting first: task id, artifact CID, self-check, revision, agent, title.

    The table shortens CIDs; `--wide` prints them whole for `review approve ID --cid CID`, and `--json` gives
    scripts every field (`deworker review list --json | jq -r '.[0].artifact_cid'`)."""
    pending = _context().runtime.db.pending_reviews()
    if as_json:
        emit_json(
            [
                {
                    "task_id": p.task.id,
                    "artifact_cid": p.artifact.cid,
                    "self_check": p.artifact.self_check.value,
                    "revision": p.artifact.revision,
                    "agent": p.task.agent_name,
                    "title": p.task.title,
                }
                for p in pending
            ]
        )
        return
    if not pending:
        console.print("the review queue is empty: no task is awaiting review")
        return
    out = table(
        f"Awaiting review ({len(pending)}, the longest-waiting first)",
        [
            ("task", "number"),
            ("artifact CID", "id"),
            ("self-check", "id"),
            ("rev", "number"),
            ("agent", "id"),
            ("title", "text"),
        ],
        wide=wide,
    )
    for p in pending:
        t, a = p.task, p.artifact
        out.add_row(
            str(t.id),
            cell(a.cid, wide=wide),
            literal(a.self_check.value),
            str(a.revision),
            literal(t.agent_name or "-"),
            literal(t.title or ""),  # a title is untrusted: escapes shown, never markup
        )
    show_table(console, out, wide=wide)
    if not wide:
        console.print(
            "decide with `deworker review approve ID --cid CID`; whole CIDs: `deworker review list --wide`",
            highlight=False,
        )


@review_app.command("show")
def show(task_id: Annotated[int, typer.Argument(help="Task id.")]) -> None:
    """A task's state, the decisions on it so far, its current artifact CID and that artifact's files (each a
    path you can open: the artifact exported from the CID store)."""
    from orchestrator.entry.web.render import ArtifactRenderer

    ctx = _context()
    rt = ctx.runtime
    task = rt.db.get_task(task_id=task_id)
    console.print(
        f"task {task.id}: [bold]{literal(task.title or '')}[/] — {task.state}, agent {task.agent_name or '-'}"
    )
    for r in rt.db.reviews(task_id=task_id):  # what earlier reviewers (and the DAO) said, oldest first
        said = f": {literal(r.feedback)}" if r.feedback else ""
        line = f"  {r.at:%Y-%m-%d %H:%M} UTC  {r.decision} by {literal(r.reviewer)} of {r.artifact_cid}{said}"
        console.print(line, soft_wrap=True)  # soft wrap: a CID or a path is never broken across lines
    if task.artifact_cid is None:
        console.print("no artifact yet")
        return
    console.print(f"artifact {task.artifact_cid}", soft_wrap=True)
    settings = WebSettings.resolve(ctx.web, data_dir=rt.config.data_dir)
    renderer = ArtifactRenderer(rt.artifacts, cache_dir=settings.cache_dir, preview_bytes=ctx.web.preview_kib * 1024)
    for f in renderer.files(task.artifact_cid):
        console.print(f"  {literal(f.path)}  ({f.size:,} bytes)  {literal(str(f.location))}", soft_wrap=True)


def _decide(task_id: int, cid: str, decision: ReviewDecision, feedback: str | None, reviewer: str | None) -> None:
    ctx = _context()
    actor = f"cli:{getpass.getuser()}" if reviewer is None else _deciding_account(ctx, reviewer)
    review = ctx.runtime.db.record_review(
        task_id=task_id, artifact_cid=cid, decision=decision, reviewer=actor, feedback=feedback
    )
    console.print(f"task {task_id}: {review.decision} of {review.artifact_cid} recorded as {review.reviewer}")


def _deciding_account(ctx: _Context, name: str) -> str:
    """``--as NAME`` puts NAME in the audit trail, so it must be an existing, active account allowed to decide."""
    account = next((u for u in ctx.runtime.users.users() if u.name == name), None)
    if account is None:
        raise DeworkerError(
            f"there is no reviewer account named {literal(name)!r}",
            hint=f"create it with `deworker review add-user {literal(name)}`, or leave out --as to decide as cli:$USER",
        )
    if account.disabled:
        raise DeworkerError(f"reviewer account {name!r} is disabled", hint="an active account must decide")
    if account.role is not Role.REVIEWER:
        raise DeworkerError(
            f"reviewer account {name!r} is a {account.role.value}: it may look, not decide",
            hint="decide as an account with the reviewer role",
        )
    return account.name


CidOption = Annotated[str, typer.Option("--cid", help="The artifact CID you reviewed (see `list` or `show`).")]
AsOption = Annotated[
    str | None,
    typer.Option("--as", help="Decide as this reviewer account (it must exist and be active; default cli:$USER)."),
]


@review_app.command("approve")
def approve(task_id: Annotated[int, typer.Argument(help="Task id.")], cid: CidOption, as_: AsOption = None) -> None:
    """Approve the artifact: the task will be submitted to the board."""
    from orchestrator.adapters.sql import ReviewDecision

    _decide(task_id, cid, ReviewDecision.APPROVE, None, as_)


@review_app.command("request-changes")
def request_changes(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    cid: CidOption,
    feedback: Annotated[str, typer.Option(help="What the agent should change (required).")],
    as_: AsOption = None,
) -> None:
    """Send the artifact back to the agent with feedback: it edits the artifact into a new revision."""
    from orchestrator.adapters.sql import ReviewDecision

    _decide(task_id, cid, ReviewDecision.REQUEST_CHANGES, feedback, as_)


@review_app.command("reject")
def reject(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    cid: CidOption,
    feedback: Annotated[str, typer.Option(help="Why it is rejected (required; the agent is told).")],
    as_: AsOption = None,
) -> None:
    """Reject the artifact: it is thrown away and the agent does the task again from the start, told why.

    Counts as a revision (review.max_revisions). To give the task up instead, use abandon."""
    from orchestrator.adapters.sql import ReviewDecision

    _decide(task_id, cid, ReviewDecision.REJECT, feedback, as_)


@review_app.command("abandon")
def abandon(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    cid: CidOption,
    feedback: Annotated[str | None, typer.Option(help="Why (kept in the audit trail).")] = None,
    as_: AsOption = None,
) -> None:
    """Give the task up: nothing is submitted and the board claim is released for others."""
    from orchestrator.adapters.sql import ReviewDecision

    _decide(task_id, cid, ReviewDecision.ABANDON, feedback, as_)

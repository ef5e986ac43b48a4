"""The review web app through FastAPI's TestClient, on SQLite and PostgreSQL: login and sessions, CSRF, rate
limiting, roles, the review flow bound to artifact CIDs, hostile artifacts, the JSON API and its tokens.

``WebEnv`` and the seeding helpers (``seed_review``, ``revise``) are shared with the browser test.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.sql import (
    AgentCreate,
    CostKind,
    DuplicateRecord,
    EventKind,
    ReviewDecision,
    RunCreate,
    RunStatus,
    SelfCheck,
    Store,
    make_engine,
)
from orchestrator.domain.board import Payout
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.money import TokenBook, TokenInfo
from orchestrator.entry.web import views
from orchestrator.entry.web.app import create_app
from orchestrator.entry.web.auth import CSP, LOGIN_CSRF_COOKIE, SESSION_COOKIE, LoginLimiter
from orchestrator.entry.web.config import Role, WebConfig, WebSettings
from orchestrator.entry.web.users import UserStore
from tests.test_store import board_task, tx

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient returns


S = TaskState
PASSWORD = "correct horse battery"
WEB_TABLES = ("web_session", "api_token", "reviewer", "login_failure")
AGENT = "alice"
AGENT_ADDRESS = "0x" + "aa" * 20
#: Cheap argon2 parameters: the tests hash many passwords; production uses argon2-cffi's defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


# ---------------------------------------------------------------------------------------------------- fixtures


@dataclass
class WebEnv:
    """The app and its services over one migrated, empty database."""

    backend: str
    engine: Engine
    store: Store
    users: UserStore
    artifacts: LocalArtifactStore
    settings: WebSettings
    app: FastAPI

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)


#: The token the tests' rewards are paid in, as ``wallets.tokens`` would configure it.
DWR = TokenInfo(address="0x" + "70" * 20, symbol="DWR", decimals=18)


def build_env(
    backend: str,
    engine: Engine,
    root: Path,
    *,
    store: Store | None = None,
    artifacts: LocalArtifactStore | None = None,
    tokens: TokenBook | None = None,
    **config: Any,
) -> WebEnv:
    """The app over ``engine`` (with the given store and artifact store, or new ones)."""
    store = store or Store(engine, max_revisions=3)
    users = UserStore(engine, hasher=FAST_HASHER)
    artifacts = artifacts or LocalArtifactStore(root / "artifacts")
    settings = WebSettings.resolve(WebConfig(**config), data_dir=root, tokens=tokens or TokenBook([DWR]))
    app = create_app(engine=engine, store=store, artifacts=artifacts, users=users, settings=settings)
    return WebEnv(backend, engine, store, users, artifacts, settings, app)


@pytest.fixture
def web(db_engine: Engine, tmp_path: Path) -> WebEnv:
    """The app on each backend (``db_engine``)."""
    return build_env(db_engine.dialect.name, db_engine, tmp_path)


@pytest.fixture
def sqlite_web(sqlite_engine: Engine, tmp_path: Path) -> WebEnv:
    """SQLite only: for tests about rendering and the browser, where the database does not matter."""
    return build_env("sqlite", sqlite_engine, tmp_path)


# ----------------------------------------------------------------------------------------------------- seeding

RELEASE_NOTES = b"# Release notes\n\n- Faster sync\n- Fixed the login bug\n"
MANIFEST = {
    "schema": "deworker/artifact-manifest@1",
    "agent": AGENT,
    "model": "SmolLM2-135M-Instruct",
    "cost": "0.0042",
    "usage": {"prompt_tokens": 900, "completion_tokens": 300, "calls": 2},
    "self_check": {"status": "passed", "output": "3 passed in 0.02s", "runs": 1},
    "summary": "Release notes for 1.2",
}


def put_files(artifacts: LocalArtifactStore, files: dict[str, bytes], manifest: dict[str, Any]) -> str:
    """Store a folder like the agent's: the files plus manifest.json."""
    folder = Path(tempfile.mkdtemp())
    try:
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return artifacts.put_path(folder)
    finally:
        shutil.rmtree(folder)


def seed_review(
    env: WebEnv, board_task_id: int, files: dict[str, bytes] | None = None, **manifest: Any
) -> tuple[int, str]:
    """A task discovered, claimed and produced by ``alice``, now awaiting review: (task id, artifact CID)."""
    store = env.store
    task, _ = store.upsert_discovered(board_task=board_task(board_task_id))
    store.upsert_agent(agent=AgentCreate(name=AGENT, address=AGENT_ADDRESS, skills=["writing"]))
    store.transition(task_id=task.id, to=S.CLAIMING, actor="worker", agent=AGENT)
    store.transition(task_id=task.id, to=S.CLAIMED, actor="worker", tx_hash=tx(board_task_id))
    store.transition(task_id=task.id, to=S.PRODUCING, actor="worker")
    cid = revise(env, task.id, files or {"notes.md": RELEASE_NOTES}, **manifest)
    return task.id, cid


def revise(env: WebEnv, task_id: int, files: dict[str, bytes], **manifest: Any) -> str:
    """The agent's side of a revision, done directly on the store: record a new artifact on a PRODUCING task
    and offer it for review. Stands in for the orchestrator's agent run, which the service and browser tests
    drive for real."""
    cid = put_files(env.artifacts, files, MANIFEST | manifest)
    env.store.record_artifact(
        task_id=task_id, cid=cid, manifest=MANIFEST | manifest, self_check=SelfCheck.PASSED, actor=AGENT
    )
    env.store.transition(task_id=task_id, to=S.PRODUCED, actor="worker", cid=cid)
    env.store.transition(task_id=task_id, to=S.AWAITING_REVIEW, actor="worker")
    return cid


def submit(env: WebEnv, task_id: int) -> None:
    """The orchestrator's side after an approval, done directly on the store: submit the approved artifact."""
    task = env.store.get_task(task_id=task_id)
    env.store.transition(task_id=task_id, to=S.SUBMITTING, actor="worker", cid=task.artifact_cid, tx_hash=tx(900))
    env.store.transition(task_id=task_id, to=S.SUBMITTED, actor="worker", tx_hash=tx(900))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD) -> Response:
    page = client.get("/login")
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_of(page.text)})


def logged_in(env: WebEnv, name: str = "carol", role: Role = Role.REVIEWER) -> TestClient:
    env.users.add_user(name=name, password=PASSWORD, role=role)
    client = env.client()
    assert login(client, name).status_code == 303
    return client


def decide(client: TestClient, task_id: int, cid: str, decision: str, feedback: str = "") -> Response:
    page = client.get(f"/review/{task_id}")
    data = {"csrf_token": csrf_of(page.text), "artifact_cid": cid, "decision": decision, "feedback": feedback}
    return client.post(f"/review/{task_id}", data=data)


# -------------------------------------------------------------------------------------------------- accounts


def test_reviewer_tables_match_their_migration(web: WebEnv) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import orchestrator.entry.web.models  # noqa: F401 - registers the tables
    from orchestrator.adapters.sql.db import target_metadata

    def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return type_ != "table" or name in WEB_TABLES

    with web.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": ours})
        assert compare_metadata(ctx, target_metadata()) == []


def test_accounts_hash_passwords_and_tokens(web: WebEnv) -> None:
    carol = web.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    with pytest.raises(DuplicateRecord):
        web.users.add_user(name="carol", password=PASSWORD, role=Role.VIEWER)
    with pytest.raises(ConfigError, match="at least 12"):
        web.users.add_user(name="dave", password="short", role=Role.VIEWER)
    with pytest.raises(ConfigError, match="not a reviewer name"):
        web.users.add_user(name="<script>", password=PASSWORD, role=Role.VIEWER)
    secret, record = web.users.create_token(name="carol", label="ci")
    with web.engine.connect() as conn:
        stored_hash = conn.execute(text("SELECT password_hash FROM reviewer")).scalar_one()
        token_row = conn.execute(text("SELECT token_hash FROM api_token")).scalar_one()
    assert stored_hash.startswith("$argon2id$") and PASSWORD not in stored_hash
    assert secret.startswith("dwk_") and secret not in token_row and len(token_row) == 64
    assert web.users.authenticate(name="carol", password=PASSWORD) == carol
    assert web.users.authenticate(name="carol", password=PASSWORD + "x") is None
    assert web.users.authenticate(name="nobody", password=PASSWORD) is None
    assert web.users.token_user(secret) == carol and web.users.token_user(secret + "x") is None
    web.users.set_disabled(name="carol", disabled=True)
    assert web.users.authenticate(name="carol", password=PASSWORD) is None
    assert web.users.token_user(secret) is None
    assert record.label == "ci"


# ---------------------------------------------------------------------------------------------- login, session


def test_pages_need_a_login(web: WebEnv) -> None:
    client = web.client()
    for path in ("/inbox", "/review/1", "/dashboard", "/tasks", "/tasks/1"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
    assert client.get("/inbox?x=1").headers["location"] == "/login?next=%2Finbox%3Fx%3D1"


def test_login_cookie_is_hardened_and_logout_ends_the_session(web: WebEnv) -> None:
    web.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    client = web.client()
    response = login(client, "carol")
    assert response.status_code == 303 and response.headers["location"] == "/inbox"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    token = client.cookies[SESSION_COOKIE]
    with web.engine.connect() as conn:
        assert token not in conn.execute(text("SELECT id FROM web_session")).scalar_one()
    inbox = client.get("/inbox")
    assert inbox.status_code == 200 and "carol" in inbox.text
    assert client.post("/logout", data={"csrf_token": csrf_of(inbox.text)}).status_code == 303
    stolen = web.client()
    stolen.cookies.set(SESSION_COOKIE, token)
    assert stolen.get("/inbox").status_code == 303  # the old cookie no longer opens anything


def test_login_redirects_only_to_this_site(web: WebEnv) -> None:
    web.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    for target, expected in (("/tasks?state=PAID", "/tasks?state=PAID"), ("//evil.example", "/inbox"),
                             ("https://evil.example/", "/inbox"), ("/\\evil.example", "/inbox")):  # fmt: skip
        client = web.client()
        page = client.get("/login", params={"next": target})
        data = {"name": "carol", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": target}
        assert client.post("/login", data=data).headers["location"] == expected


def test_wrong_passwords_are_rate_limited(web: WebEnv) -> None:
    web.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    client = web.client()
    for _ in range(web.settings.config.login_attempts):
        assert login(client, "carol", "wrong password!").status_code == 401
    blocked = login(client, "carol")  # even the right password waits now
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert "Too many failed attempts" in blocked.text
    assert SESSION_COOKIE not in client.cookies


def test_one_reviewer_mistyping_does_not_lock_out_the_others_behind_the_same_address(web: WebEnv) -> None:
    """Regression: five wrong passwords for one account locked out every reviewer behind the same address (an
    office, a TLS proxy). Accounts and addresses are now counted apart, with a larger allowance per address."""
    web.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    web.users.add_user(name="dave", password=PASSWORD, role=Role.REVIEWER)
    client = web.client()  # one client address for both
    for _ in range(web.settings.config.login_attempts):
        assert login(client, "carol", "wrong password!").status_code == 401
    assert login(client, "carol").status_code == 429
    assert login(web.client(), "dave").status_code == 303


def test_an_address_is_limited_on_its_own_count(web: WebEnv) -> None:
    limiter = LoginLimiter(web.engine, attempts=2, address_attempts=5, window=60, clock=lambda: 1000.0)
    for i in range(5):
        assert limiter.retry_after(f"name:user{i}", "ip:10.0.0.1") == 0
        limiter.failed(f"name:user{i}", "ip:10.0.0.1")
    assert limiter.retry_after("name:user0") == 0  # one failure of 2 allowed
    assert limiter.retry_after("name:somebody-else", "ip:10.0.0.1") == 61  # the address used its 5
    assert limiter.retry_after("name:somebody-else", "ip:10.0.0.2") == 0


@pytest.mark.parametrize(
    ("peer", "forwarded", "counted"),
    [
        ("127.0.0.1", "203.0.113.5", "203.0.113.5"),  # from the trusted proxy: its header is believed
        ("127.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # the client wrote the left part: ignored
        ("127.0.0.1", "203.0.113.5, 10.1.2.3", "203.0.113.5"),  # two trusted proxies in a row
        ("198.51.100.7", "203.0.113.5", "198.51.100.7"),  # not a proxy of ours: a forged header
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
    ],
)
def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    sqlite_engine: Engine, tmp_path: Path, peer: str, forwarded: str, counted: str
) -> None:
    web = build_env("sqlite", sqlite_engine, tmp_path, trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    client = TestClient(web.app, follow_redirects=False, client=(peer, 50000))
    page = client.get("/login")
    data = {"name": "nobody", "password": "wrong password!", "csrf_token": csrf_of(page.text)}
    assert client.post("/login", data=data, headers={"X-Forwarded-For": forwarded}).status_code == 401
    limiter: LoginLimiter = web.app.state.services.limiter
    assert limiter.failures(f"ip:{counted}") == 1


def test_login_limiter_window_slides(web: WebEnv) -> None:
    now = [1000.0]
    limiter = LoginLimiter(web.engine, attempts=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("name:carol", "ip:1") == 0
        limiter.failed("name:carol", "ip:1")
    assert limiter.retry_after("name:carol") == 61 and limiter.retry_after("ip:1") == 61
    assert limiter.retry_after("name:dave", "ip:2") == 0
    now[0] += 30
    assert limiter.retry_after("ip:1") == 31
    now[0] += 31
    assert limiter.retry_after("name:carol", "ip:1") == 0
    limiter.failed("name:carol")
    assert limiter.failures("name:carol") == 1
    limiter.succeeded("name:carol")
    assert limiter.failures("name:carol") == 0 and limiter.failures("ip:1") == 0  # expired, not cleared
    with web.engine.connect() as conn:  # rows older than the window were deleted by the last failure
        assert conn.execute(text("SELECT count(*) FROM login_failure")).scalar_one() == 0


def test_login_limit_survives_a_restart(web: WebEnv, tmp_path: Path) -> None:
    web.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    for _ in range(web.settings.config.login_attempts):
        assert login(web.client(), "carol", "wrong password!").status_code == 401
    restarted = build_env(web.backend, web.engine, tmp_path / "again")  # a new process over the same database
    assert login(restarted.client(), "carol").status_code == 429
    limiter: LoginLimiter = restarted.app.state.services.limiter
    assert limiter.failures("name:carol") == web.settings.config.login_attempts


def test_posts_without_a_valid_csrf_token_are_refused(web: WebEnv) -> None:
    task_id, cid = seed_review(web, 1)
    client = logged_in(web)
    base = {"artifact_cid": cid, "decision": "approve"}
    assert client.post(f"/review/{task_id}", data=base).status_code == 403
    assert client.post(f"/review/{task_id}", data=base | {"csrf_token": "forged"}).status_code == 403
    token = csrf_of(client.get("/inbox").text)
    cross_site = client.post(
        f"/review/{task_id}", data=base | {"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert client.post("/logout").status_code == 403
    assert web.store.get_task(task_id=task_id).state is S.AWAITING_REVIEW
    fresh = web.client()  # a login form posted without its double-submit cookie
    data = {"name": "carol", "password": PASSWORD, "csrf_token": "x"}
    assert fresh.post("/login", data=data).status_code == 403
    fresh.get("/login")
    fresh.cookies.set(LOGIN_CSRF_COOKIE, "y", path="/login")
    assert fresh.post("/login", data=data).status_code == 403


def test_security_headers_on_every_response(web: WebEnv) -> None:
    client = logged_in(web)
    for path in ("/login", "/inbox", "/dashboard", "/static/app.css", "/docs", "/nowhere"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    assert client.get("/inbox").headers["cache-control"] == "no-store"
    assert "script-src 'self';" in CSP and "'unsafe-inline'" not in CSP


# ---------------------------------------------------------------------------------------------- review flow


def test_inbox_lists_pending_reviews_oldest_first(web: WebEnv) -> None:
    first, _ = seed_review(web, 1)
    second, _ = seed_review(web, 2)
    page = logged_in(web).get("/inbox")
    assert page.status_code == 200
    assert page.text.index(f"/review/{first}") < page.text.index(f"/review/{second}")
    for shown in ("task 1", AGENT, "SmolLM2-135M-Instruct", "$0.0042", "passed", "Inbox"):
        assert shown in page.text


def test_the_inbox_can_tell_that_its_rows_changed(web: WebEnv) -> None:
    task_id, cid = seed_review(web, 1)
    assert web.client().get("/inbox/status").status_code in (303, 307)  # no session: to the login page
    client = logged_in(web)
    page = client.get("/inbox").text
    signature = re.search(r'data-signature="([^"]*)"', page)
    assert signature is not None and signature.group(1) == f"{task_id}:{cid}"
    assert 'data-every-ms="10000"' in page  # web.inbox_poll_seconds
    assert client.get("/inbox/status").json() == {"pending": 1, "signature": f"{task_id}:{cid}"}
    second, second_cid = seed_review(web, 2)  # an item arrives
    assert client.get("/inbox/status").json() == {
        "pending": 2,
        "signature": f"{task_id}:{cid} {second}:{second_cid}",
    }


def test_request_changes_then_approve_a_revision(web: WebEnv) -> None:
    task_id, cid = seed_review(web, 1)
    client = logged_in(web)
    page = client.get(f"/review/{task_id}")
    assert page.status_code == 200 and "Release notes" in page.text and "mentions every change" in page.text
    no_feedback = decide(client, task_id, cid, "request_changes")
    assert no_feedback.status_code == 409 and "feedback" in no_feedback.text
    sent = decide(client, task_id, cid, "request_changes", "Mention the migration step.")
    assert sent.status_code == 303 and sent.headers["location"] == f"/inbox?decided={task_id}&decision=request_changes"
    task = web.store.get_task(task_id=task_id)
    assert (task.state, task.state_reason, task.revision_count) == (S.PRODUCING, "Mention the migration step.", 1)
    new_cid = revise(web, task_id, {"notes.md": RELEASE_NOTES + b"- Run the migration first\n"}, feedback="x")
    page = client.get(f"/review/{task_id}")
    assert "Changes since revision 0" in page.text and "+- Run the migration first" in page.text.replace(
        '<span class="gi">', ""
    ).replace("</span>", "")
    assert "Mention the migration step." in page.text  # the earlier decision is shown
    assert decide(client, task_id, new_cid, "approve").status_code == 303
    assert web.store.get_task(task_id=task_id).state is S.APPROVED
    reviews = [(r.decision, r.reviewer, r.artifact_cid) for r in web.store.reviews(task_id=task_id)]
    assert reviews == [(ReviewDecision.REQUEST_CHANGES, "carol", cid), (ReviewDecision.APPROVE, "carol", new_cid)]
    audit = [(e.actor, e.cid) for e in web.store.task_events(task_id=task_id) if e.kind is EventKind.REVIEW]
    assert audit == [("carol", cid), ("carol", new_cid)]


def test_an_approval_is_bound_to_the_artifact_shown(web: WebEnv) -> None:
    task_id, old_cid = seed_review(web, 1)
    client = logged_in(web)
    shown = client.get(f"/review/{task_id}")  # the reviewer opens the first version...
    web.store.record_review(
        task_id=task_id, artifact_cid=old_cid, decision=ReviewDecision.REQUEST_CHANGES, reviewer="dave", feedback="x"
    )
    new_cid = revise(web, task_id, {"notes.md": b"# Something else entirely\n"})  # ...a revision arrives...
    data = {"csrf_token": csrf_of(shown.text), "artifact_cid": old_cid, "decision": "approve", "feedback": ""}
    stale = client.post(f"/review/{task_id}", data=data)  # ...and approving the old one does not approve it
    assert stale.status_code == 409 and "newer artifact" in stale.text
    assert f'name="artifact_cid" value="{new_cid}"' in stale.text
    task = web.store.get_task(task_id=task_id)
    assert (task.state, task.artifact_cid) == (S.AWAITING_REVIEW, new_cid)


def test_abandon_gives_the_task_up(web: WebEnv) -> None:
    task_id, cid = seed_review(web, 1)
    client = logged_in(web)
    assert decide(client, task_id, cid, "abandon", "Out of scope").status_code == 303
    assert web.store.get_task(task_id=task_id).state is S.ABANDONED
    page = client.get(f"/review/{task_id}")
    assert "not awaiting a decision" in page.text and 'id="decision-form"' not in page.text


def test_reject_sends_the_task_back_to_start_over(web: WebEnv) -> None:
    task_id, cid = seed_review(web, 1)
    client = logged_in(web)
    refused = decide(client, task_id, cid, "reject", "")
    assert refused.status_code == 409 and "rejecting needs feedback" in refused.text
    done = decide(client, task_id, cid, "reject", "This is a tutorial, not release notes")
    assert done.status_code == 303
    assert "rejected" in client.get(done.headers["location"]).text
    task = web.store.get_task(task_id=task_id)
    assert (task.state, task.revision_count) == (S.PRODUCING, 1)
    (review,) = web.store.reviews(task_id=task_id)
    assert (review.decision, review.feedback, review.reviewer) == (
        ReviewDecision.REJECT,
        "This is a tutorial, not release notes",
        "carol",
    )
    revise(web, task_id, {"notes.md": b"# Release notes\n"})
    page = client.get(f"/review/{task_id}").text  # the new attempt says what happened to the one before
    assert "rejected: the agent started over" in page and "Rejected (start over)" in page


def test_viewers_see_but_cannot_decide(web: WebEnv) -> None:
    task_id, cid = seed_review(web, 1)
    client = logged_in(web, "victor", Role.VIEWER)
    page = client.get(f"/review/{task_id}")
    assert page.status_code == 200 and "can view but not decide" in page.text and 'id="approve"' not in page.text
    data = {"csrf_token": csrf_of(page.text), "artifact_cid": cid, "decision": "approve"}
    assert client.post(f"/review/{task_id}", data=data).status_code == 403
    assert web.store.get_task(task_id=task_id).state is S.AWAITING_REVIEW


# ----------------------------------------------------------------------------------------------- hostile input

HOSTILE_MD = b"""# Totally normal notes
<script>alert('md')</script>
<img src=x onerror="alert('img')">
[click me](javascript:alert('link'))
<a href="javascript:alert('raw')">raw link</a>
"""
HOSTILE_HTML = b"<html><body onload=\"alert('html')\"><script>alert('html')</script></body></html>\n"
HOSTILE_PY = b"print('</pre><script>alert(\"py\")</script>')\n"
BIG = (b"0123456789abcdef" * 64 + b"\n") * 10_200  # ~10 MB of text


def test_a_hostile_artifact_is_shown_as_data(sqlite_web: WebEnv) -> None:
    env = sqlite_web
    files = {
        "notes.md": HOSTILE_MD,
        "page.html": HOSTILE_HTML,
        "x.py": HOSTILE_PY,
        "big.txt": BIG,
        "blob.bin": b"\x00\x01<script>alert('bin')</script>",
        "<img src=x onerror=alert(1)>.txt": b"named to hurt\n",
    }
    task_id, cid = seed_review(env, 1, files, summary="<script>alert('summary')</script>")
    client = logged_in(env)
    page = client.get(f"/review/{task_id}")
    assert page.status_code == 200
    html = page.text
    assert len(html) < 1_000_000  # the 10 MB file is not inlined
    tags = re.findall(r"<[a-zA-Z][^>]*>", html)  # real tags: the artifact's own arrive escaped, as &lt;...
    assert not [t for t in tags if re.search(r"\son\w+\s*=", t)], "an event handler attribute got through"
    assert not [t for t in tags if "javascript:" in t or "<iframe" in t or "<object" in t]
    assert [t for t in tags if t.startswith("<script")] == ['<script src="/static/app.js" defer>']
    assert "&lt;script&gt;alert('md')&lt;/script&gt;" in html  # shown as text, not run
    assert "Large file: showing the first 256 KiB" in html and "Binary file: not shown" in html
    raw = client.get(f"/tasks/{task_id}/artifacts/{cid}/raw", params={"path": "page.html"})
    assert raw.status_code == 200 and raw.content == HOSTILE_HTML
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.headers["content-disposition"] == "attachment; filename*=UTF-8''page.html"
    assert raw.headers["x-content-type-options"] == "nosniff"
    big = client.get(f"/tasks/{task_id}/artifacts/{cid}/raw", params={"path": "big.txt"})
    assert big.status_code == 200 and len(big.content) == len(BIG)
    binary = client.get(f"/tasks/{task_id}/artifacts/{cid}/raw", params={"path": "blob.bin"})
    assert binary.headers["content-type"] == "application/octet-stream"
    for path in ("../../etc/passwd", "nothere.txt", "/etc/passwd"):
        assert client.get(f"/tasks/{task_id}/artifacts/{cid}/raw", params={"path": path}).status_code == 404
    assert client.get(f"/tasks/{task_id}/artifacts/bafkother/raw", params={"path": "x.py"}).status_code == 404


# ------------------------------------------------------------------------------------------ dashboard, history


UNKNOWN_TOKEN = "0x" + "99" * 20


def test_dashboard_and_task_history(web: WebEnv) -> None:
    task_id, cid = seed_review(web, 1)
    seed_review(web, 2)
    client = logged_in(web)
    assert decide(client, task_id, cid, "approve").status_code == 303
    submit(web, task_id)
    web.store.record_reward(payout=Payout("main", str(1), AGENT_ADDRESS, DWR.address, 5 * 10**18, tx(901), 42))
    # a payout of a task that is not ours, in a token nobody configured: shown in raw units with its address
    web.store.record_reward(payout=Payout("other", str(7), AGENT_ADDRESS, UNKNOWN_TOKEN, 1_234_567, tx(903), 43))
    web.store.record_cost(agent=AGENT, kind=CostKind.GAS, amount=21_000 * 10**9, task_id=task_id, tx_hash=tx(902))
    web.store.record_cost(agent=AGENT, kind=CostKind.LLM, amount=4_200, task_id=task_id)
    # a project pool's revenue the agent claimed: its own column, per project, and in the chart's total
    pool = "0x" + "ab" * 20
    web.store.record_revenue_claim(
        agent=AGENT, pool=pool, token=DWR.address, holder=AGENT_ADDRESS, amount=2 * 10**18, tx_hash=tx(904),
        block_number=44,
    )  # fmt: skip
    # what the agent still holds there, as the collector last read the chain: 30 shares, 3 DWR still claimable
    web.store.record_holdings(agent=AGENT, holder=AGENT_ADDRESS, holdings=[(pool, DWR.address, 30, 3 * 10**18)])
    started = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for status, error in ((RunStatus.INTERRUPTED, "the process stopped during this run"), (RunStatus.PRODUCED, None)):
        web.store.record_run(
            run=RunCreate(
                task_id=task_id,
                agent=AGENT,
                started_at=started,
                finished_at=started + timedelta(seconds=12.5),
                status=status,
                prompt_tokens=1_500,
                completion_tokens=300,
                error=error,
            )
        )
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200
    shows = ("PAID", "AWAITING_REVIEW", AGENT, "working", "<svg class='chart'", "5 DWR", "0.000021", "$0.0042")
    revenue = ("Pool revenue (per project)", f"pool {pool}", "2 DWR", "7 DWR")  # 7 = 5 bounty + 2 revenue
    for shown in (*shows, *revenue, "1,234,567 units of 0x9999…9999", "Unknown token (raw base units)"):
        assert shown in dashboard.text, shown
    held = dashboard.text[dashboard.text.index('id="holdings"') :]
    for shown in ("Shares in project pools", f"pool {pool}", ">30<", "3 DWR"):
        assert shown in dashboard.text if shown.startswith("Shares") else shown in held, shown
    history = client.get(f"/tasks/{task_id}")
    assert history.status_code == 200
    for shown in (tx(1), tx(900), tx(901), cid, "carol", "SUBMITTED", "PAID", "reward 1 DWR"):
        assert shown in history.text, shown
    for shown in ("Agent runs", "interrupted", "the process stopped during this run", "12.5 s", "3,000 / 600"):
        assert shown in history.text, shown  # every run with its tokens, and the total
    assert len(client.get(f"/api/tasks/{task_id}", headers=_bearer(web, "r3")).json()["runs"]) == 2
    listing = client.get("/tasks", params={"state": "PAID"})
    assert f"/tasks/{task_id}" in listing.text and "/tasks/2" not in listing.text
    assert client.get("/tasks/999").status_code == 404
    fleet = client.get("/api/fleet", headers=_bearer(web)).json()
    (day,) = fleet["days"]
    assert day["rewards"] == {DWR.address: 5 * 10**18, UNKNOWN_TOKEN: 1_234_567}
    assert day["revenue"] == {DWR.address: 2 * 10**18}
    assert day["gas_wei"] == 21_000 * 10**9 and day["llm_usd_micro"] == 4_200
    assert fleet["tokens"] == [{"address": DWR.address, "symbol": "DWR", "decimals": 18}]
    assert fleet["pnl"] == [
        {
            "agent": AGENT,
            "rewards": day["rewards"],
            "gas_wei": 21_000 * 10**9,
            "llm_usd_micro": 4_200,
            "revenue": {DWR.address: 2 * 10**18},
            "revenue_by_pool": {pool: {DWR.address: 2 * 10**18}},
        }
    ]
    series = {s.token: s.total for s in views.earnings(views.fleet(web.store, web.app.state.services.queries,
                                                                   web.app.state.services.settings.tokens),
                                                       web.app.state.services.settings.tokens)}  # fmt: skip
    assert series[DWR.address] == 7 * 10**18  # the chart includes revenue


def _bearer(env: WebEnv, name: str = "robot") -> dict[str, str]:
    env.users.add_user(name=name, password=PASSWORD, role=Role.VIEWER)
    return {"Authorization": f"Bearer {env.users.create_token(name=name, label='test')[0]}"}


def test_task_list_is_paginated_in_sql(web: WebEnv) -> None:
    for n in range(1, 8):
        web.store.upsert_discovered(board_task=board_task(n, reward=n * 10**17))
    client = logged_in(web)
    size = 3
    for page, expected in ((1, [7, 6, 5]), (2, [4, 3, 2]), (3, [1]), (99, [1])):  # past the end: the last page
        shown, where = views.task_list(web.app.state.services.queries, page=page, size=size)
        assert [int(t.task_key) for t in shown] == expected and where.total == 7 and where.last == 3
    html = client.get("/tasks").text  # 7 tasks fit one page of 100: no pager
    assert 'aria-label="pages"' not in html and "0.7 DWR" in html
    api = client.get("/api/tasks", params={"limit": 2, "offset": 2}, headers=_bearer(web)).json()
    assert [t["task_key"] for t in api["tasks"]] == ["5", "4"] and api["total"] == 7
    assert client.get("/api/tasks", params={"limit": 0}, headers=_bearer(web, "r2")).status_code == 422


def test_pager_links(web: WebEnv) -> None:
    for n in range(1, views.PAGE_SIZE * 6 + 2):
        web.store.upsert_discovered(board_task=board_task(n, quarantine="bad spec"))
    client = logged_in(web)
    html = client.get("/tasks", params={"state": "QUARANTINED", "page": 4}).text
    assert "301\u2013400 of 601" in html
    pages = re.findall(r'href="\?state=QUARANTINED&amp;page=(\d+)"', html)
    assert pages == ["3", "1", "2", "3", "5", "6", "7", "5"]  # previous, 1, nearby, last, next
    assert '<span class="pg current" aria-current="page">4</span>' in html


# ------------------------------------------------------------------------------------------------------- API


def test_api_needs_a_token(web: WebEnv) -> None:
    client = web.client()
    response = client.get("/api/reviews")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/reviews", headers={"Authorization": "Bearer dwk_nope"}).status_code == 401
    web.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    assert login(client, "carol").status_code == 303
    assert client.get("/api/reviews").status_code == 401  # a session cookie is not an API credential


def test_api_review_flow(web: WebEnv) -> None:
    task_id, cid = seed_review(web, 1)
    web.users.add_user(name="robot", password=PASSWORD, role=Role.REVIEWER)
    web.users.add_user(name="watcher", password=PASSWORD, role=Role.VIEWER)
    robot = {"Authorization": f"Bearer {web.users.create_token(name='robot', label='ci')[0]}"}
    watcher = {"Authorization": f"Bearer {web.users.create_token(name='watcher', label='ro')[0]}"}
    client = web.client()
    assert client.get("/api/me", headers=robot).json()["name"] == "robot"
    pending = client.get("/api/reviews", headers=watcher).json()
    assert [(p["task"]["id"], p["artifact"]["cid"]) for p in pending] == [(task_id, cid)]
    # read the artifact before deciding: its files, then one of them (always a download)
    files = client.get(f"/api/tasks/{task_id}/artifacts/{cid}/files", headers=watcher).json()
    assert [f["path"] for f in files] == ["notes.md", "manifest.json"]
    notes = client.get(f"/api/tasks/{task_id}/artifacts/{cid}/file", params={"path": "notes.md"}, headers=watcher)
    assert notes.status_code == 200 and notes.content == RELEASE_NOTES
    assert notes.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/api/tasks/{task_id}/artifacts/{cid}/files").status_code == 401  # no token
    missing = client.get(f"/api/tasks/{task_id}/artifacts/{cid}/file", params={"path": "nope.md"}, headers=watcher)
    assert missing.status_code == 404 and missing.json()["error"] == "RecordNotFound"
    assert client.get(f"/api/tasks/{task_id}/artifacts/bafkother/files", headers=watcher).status_code == 404
    url = f"/api/tasks/{task_id}/review"
    assert client.post(url, headers=watcher, json={"artifact_cid": cid, "decision": "approve"}).status_code == 403
    stale = client.post(url, headers=robot, json={"artifact_cid": "bafkolder", "decision": "approve"})
    assert stale.status_code == 409 and stale.json()["error"] == "StaleReview"
    for needs_feedback in ("request_changes", "reject"):
        refused = client.post(url, headers=robot, json={"artifact_cid": cid, "decision": needs_feedback})
        assert refused.status_code == 409 and refused.json()["error"] == "ReviewRefused"
    assert client.post(url, headers=robot, json={"artifact_cid": cid, "decision": "maybe"}).status_code == 422
    done = client.post(url, headers=robot, json={"artifact_cid": cid, "decision": "approve"})
    assert done.status_code == 201 and done.json()["reviewer"] == "robot"
    detail = client.get(f"/api/tasks/{task_id}", headers=watcher).json()
    assert detail["task"]["state"] == "APPROVED"
    assert detail["events"][-1]["actor"] == "robot" and detail["events"][-1]["cid"] == cid
    approved = client.get("/api/tasks", params={"state": "APPROVED"}, headers=robot).json()
    assert [t["id"] for t in approved["tasks"]] == [task_id] and approved["total"] == 1
    fleet = client.get("/api/fleet", headers=watcher).json()
    assert fleet["tasks_by_state"] == {"APPROVED": 1} and fleet["agents"][0]["agent"]["name"] == AGENT
    assert client.get("/api/tasks/999", headers=robot).status_code == 404


def test_openapi_and_its_reference_page(web: WebEnv) -> None:
    client = web.client()
    spec = client.get("/openapi.json").json()
    assert {"/api/reviews", "/api/tasks/{task_id}/review", "/api/fleet"} <= set(spec["paths"])
    assert not any(p.startswith("/review") or p == "/login" for p in spec["paths"])  # pages are not API
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/tasks/{task_id}/review" in docs.text and "Bearer" in docs.text
    assert "cdn" not in docs.text.lower()


def test_settings_are_used(sqlite_engine: Engine, tmp_path: Path) -> None:
    env = build_env("sqlite", sqlite_engine, tmp_path, secure_cookies=True, login_attempts=1, preview_kib=1)
    env.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    client = TestClient(env.app, base_url="https://testserver", follow_redirects=False)  # Secure cookies need https
    assert login(client, "carol", "wrong password!").status_code == 401
    assert login(client, "carol").status_code == 429
    later = LoginLimiter(sqlite_engine, attempts=1, window=1, clock=lambda: time.time() + 10)  # the window has passed
    env.app.state.services = replace(env.app.state.services, limiter=later)
    ok = login(client, "carol")
    assert "Secure" in next(c for c in ok.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert env.settings.cache_dir == tmp_path / "review-cache"


# ------------------------------------------------------------------------------------------------------- CLI


def test_cli_accounts_and_decisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from orchestrator.entry.cli.main import state
    from orchestrator.entry.cli.review import PASSWORD_ENV, review_app
    from orchestrator.entry.config import Config

    monkeypatch.setattr(state, "_config", Config(data_dir=tmp_path))
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    runner = CliRunner()
    assert runner.invoke(review_app, ["add-user", "carol"]).exit_code == 0
    assert runner.invoke(review_app, ["add-user", "victor", "--role", "viewer"]).exit_code == 0
    listed = runner.invoke(review_app, ["users"])
    assert "carol" in listed.output and "viewer" in listed.output
    minted = runner.invoke(review_app, ["token", "carol", "--label", "ci"])
    assert minted.exit_code == 0 and minted.stdout.strip().splitlines()[-1].startswith("dwk_")

    engine = make_engine(Config(data_dir=tmp_path).db_url)
    env = build_env("sqlite", engine, tmp_path)
    task_id, cid = seed_review(env, 1)
    listed = json.loads(runner.invoke(review_app, ["list", "--json"]).output)
    assert [(p["task_id"], p["artifact_cid"]) for p in listed] == [(task_id, cid)]
    assert "notes.md" in runner.invoke(review_app, ["show", str(task_id)]).output
    stale = runner.invoke(review_app, ["approve", str(task_id), "--cid", "bafkold"])
    assert stale.exit_code != 0 and env.store.get_task(task_id=task_id).state is S.AWAITING_REVIEW
    for name in ("nobody-exists", "victor"):  # --as must be an active account that may decide (victor: a viewer)
        impostor = runner.invoke(review_app, ["approve", str(task_id), "--cid", cid, "--as", name])
        assert impostor.exit_code != 0 and env.store.reviews(task_id=task_id) == []
    assert runner.invoke(review_app, ["add-user", "ops"]).exit_code == 0
    more = "More [bold]tests[/bold]"  # feedback is untrusted text: shown as written, never as terminal markup
    sent = runner.invoke(review_app, ["request-changes", str(task_id), "--cid", cid, "--feedback", more, "--as", "ops"])
    assert sent.exit_code == 0, sent.output
    assert [(r.reviewer, r.feedback) for r in env.store.reviews(task_id=task_id)] == [("ops", more)]
    shown = runner.invoke(review_app, ["show", str(task_id)]).output
    assert f"request_changes by ops of {cid}: {more}" in shown
    second = revise(env, task_id, {"notes.md": b"# Notes, revised\n"})
    unexplained = runner.invoke(review_app, ["reject", str(task_id), "--cid", second])
    assert unexplained.exit_code == 2 and "--feedback" in unexplained.output  # a rejection says why
    rejected = runner.invoke(review_app, ["reject", str(task_id), "--cid", second, "--feedback", "Wrong release"])
    assert rejected.exit_code == 0 and env.store.get_task(task_id=task_id).state is S.PRODUCING
    third = revise(env, task_id, {"notes.md": b"# Notes for 1.3\n"})
    assert runner.invoke(review_app, ["abandon", str(task_id), "--cid", third]).exit_code == 0
    assert env.store.get_task(task_id=task_id).state is S.ABANDONED
    assert [r.decision for r in env.store.reviews(task_id=task_id)] == [
        ReviewDecision.REQUEST_CHANGES,
        ReviewDecision.REJECT,
        ReviewDecision.ABANDON,
    ]
    engine.dispose()


def test_token_book_from_config(tmp_path: Path) -> None:
    """``wallets.tokens`` first, then the DAO's token at each deployment ``deworker dao deploy`` saved."""
    from orchestrator.entry.bootstrap import Deployment, Runtime
    from orchestrator.entry.config import Config, DaoConfig
    from wallets.config import TokenConfig, WalletsConfig

    usdc, dao_token, other = "0x" + "a0" * 20, "0x" + "d0" * 20, "0x" + "e0" * 20
    config = Config(
        data_dir=tmp_path,
        wallets=WalletsConfig(tokens=[TokenConfig(address=usdc, symbol="USDC", decimals=6)]),
        dao=DaoConfig(token_symbol="GOV", token_decimals=12),
    )
    rt = Runtime(config)
    assert rt.token_book().known() == [TokenInfo(usdc, "USDC", 6)]  # nothing deployed yet: no addresses.json
    rt.addresses.save(Deployment(chain_id=31337, token=dao_token, board="0x" + "b0" * 20, block=1))
    rt.addresses.save(Deployment(chain_id=5, token=other, board="0x" + "b1" * 20, block=1))
    book = rt.token_book()
    assert book.format(2_500_000, usdc) == "2.5 USDC" and book.format(3 * 10**12, dao_token) == "3 GOV"
    assert book.symbol(other) == "GOV"
    pinned = Runtime(config.model_copy(update={"chain": config.chain.model_copy(update={"chain_id": 31337})}))
    assert pinned.token_book().symbol(other) is None  # chain.chain_id set: only that chain's deployment


def test_the_earnings_chart_never_draws_two_labels_at_one_place() -> None:
    """Regression: two rewards on one day drew both end labels at one spot (``2026-12-022026-12-02``)."""
    import re
    from decimal import Decimal

    from orchestrator.entry.web.chart import Earning, earnings_svg

    def labels(*times: datetime) -> list[str]:
        svg = str(earnings_svg([Earning(at=t, amount=Decimal(5)) for t in times], unit="DWR"))
        return re.findall(r"<text class='axis' x='[\d.]+' y='232' text-anchor='\w+'>([^<]+)</text>", svg)

    noon = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert labels(noon) == ["2026-12-02 12:00"]
    assert labels(noon, noon.replace(minute=0, second=30)) == ["2026-12-02 12:00"]
    assert labels(noon, noon.replace(hour=15, minute=30)) == ["2026-12-02 12:00", "15:30"]
    assert labels(noon, noon.replace(day=5)) == ["2026-12-02", "2026-12-05"]

"""End to end in a real browser: Debian's chromium driven by Playwright (sync API), against the app served by
uvicorn on 127.0.0.1 in a thread. Playwright never downloads a browser here: it launches /usr/bin/chromium.

The orchestrator service does not exist yet, so the agent's revision and the submission after an approval are
done by this test directly on the ``Store`` (``revise`` and ``submit`` from test_web_api). When the service
exists, swap those two calls for the real loop (run the scheduler's review/produce/submit steps) and keep the rest.

Saves docs/screenshots/{inbox,review,dashboard}.png for the README.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn

from orchestrator.domain import Payout, TaskState
from orchestrator.store import AgentCreate, CostKind, ReviewDecision, RunCreate, RunStatus, Store
from orchestrator.web.config import Role
from tests.conftest import require
from tests.test_store import board_task, tx
from tests.test_web_api import (
    AGENT,
    AGENT_ADDRESS,
    PASSWORD,
    RELEASE_NOTES,
    WebEnv,
    revise,
    seed_review,
    sqlite_web,
    submit,
)

__all__ = ["sqlite_web"]  # a fixture: imported to be used

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TOKEN = "0x" + "70" * 20
SLUGIFY = b'''"""Turn titles into URL slugs."""

import re
import unicodedata


def slugify(title: str) -> str:
    """Lower-case ASCII words joined by hyphens."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
'''


@pytest.fixture
def server(sqlite_web: WebEnv) -> Iterator[str]:
    """The app on a free 127.0.0.1 port, in a thread; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(sqlite_web.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        threading.Event().wait(0.025)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def history(env: WebEnv) -> None:
    """A fleet with a past: three agents, paid tasks over two weeks, gas and LLM costs."""
    now = datetime.now(UTC)
    clock_at = [now - timedelta(days=15)]

    def clock() -> datetime:
        clock_at[0] += timedelta(minutes=1)
        return clock_at[0]

    past = Store(env.engine, clock=clock)
    agents = {"bob": "0x" + "bb" * 20, "dora": "0x" + "dd" * 20}
    for name, address in agents.items():
        past.upsert_agent(agent=AgentCreate(name=name, address=address, skills=["python", "writing"]))
    for i, (agent, days, reward) in enumerate(
        [("bob", 14, 3), (AGENT, 12, 5), ("dora", 9, 2), ("bob", 6, 8), (AGENT, 3, 4), ("dora", 1, 6)], start=100
    ):
        clock_at[0] = now - timedelta(days=days)
        task, _ = past.upsert_discovered(board_task=board_task(i, reward=reward * 10**18))
        past.transition(task_id=task.id, to=TaskState.CLAIMING, actor="worker", agent=agent)
        past.transition(task_id=task.id, to=TaskState.CLAIMED, actor="worker", tx_hash=tx(i))
        past.transition(task_id=task.id, to=TaskState.PRODUCING, actor="worker")
        cid = f"bafkreipast{i}"
        past.record_artifact(task_id=task.id, cid=cid, manifest={}, self_check="passed", actor=agent)  # type: ignore[arg-type]
        past.record_run(
            run=RunCreate(
                task_id=task.id, agent=agent, started_at=clock(), finished_at=clock(), status=RunStatus.PRODUCED,
                prompt_tokens=1200, completion_tokens=400, cost_usd_micro=3100 + 100 * i,
            )
        )  # fmt: skip
        past.transition(task_id=task.id, to=TaskState.PRODUCED, actor="worker")
        past.record_review(task_id=task.id, artifact_cid=cid, decision=ReviewDecision.APPROVE, reviewer="carol")
        past.transition(task_id=task.id, to=TaskState.SUBMITTING, actor="worker", cid=cid, tx_hash=tx(i + 50))
        past.transition(task_id=task.id, to=TaskState.SUBMITTED, actor="worker", tx_hash=tx(i + 50))
        address = agents.get(agent, AGENT_ADDRESS)
        past.record_reward(payout=Payout("main", i, address, TOKEN, reward * 10**18, tx(i + 80), 1000 + i))
        past.record_cost(agent=agent, kind=CostKind.GAS, amount=2_100_000 * 10**9, task_id=task.id, tx_hash=tx(i + 60))


def test_review_in_a_real_browser(sqlite_web: WebEnv, server: str) -> None:
    require(CHROMIUM.exists(), "chromium is not installed: apt-get install -y chromium")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import expect, sync_playwright

    env = sqlite_web
    history(env)
    env.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    task_id, first_cid = seed_review(env, 1, {"NOTES.md": RELEASE_NOTES, "slugify.py": SLUGIFY})
    seed_review(env, 2, {"glossary.md": b"# Glossary\n\n**DAO**: a decentralised autonomous organisation.\n"})
    seed_review(env, 3, {"fizzbuzz.py": b"for i in range(1, 101):\n    print(i)\n"}, model="qwen2.5-7b-instruct")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())

        # log in: the inbox redirects to the login form and back
        page.goto(f"{server}/inbox")
        expect(page.get_by_role("heading", name="Log in to review")).to_be_visible()
        page.get_by_label("Name").fill("carol")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        expect(page.locator("tbody tr")).to_have_count(3)
        page.screenshot(path=str(SCREENSHOTS / "inbox.png"))

        # open the oldest item with the keyboard and read the artifact
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server}/review/{task_id}")
        expect(page.locator(".markdown h1", has_text="Release notes")).to_be_visible()
        expect(page.locator(".hl", has_text="def slugify")).to_be_visible()

        # request changes with feedback (the shortcut focuses the feedback box)
        page.keyboard.press("c")
        page.keyboard.type("Mention that the database migration must run before the upgrade.")
        page.get_by_role("button", name="Request changes").click()
        expect(page.get_by_role("status")).to_have_text(f"Task {task_id} sent back for changes.")
        expect(page.locator("tbody tr")).to_have_count(2)
        task = env.store.get_task(task_id=task_id)
        assert task.state is TaskState.PRODUCING and task.revision_count == 1

        # the revision arrives (simulated agent loop, see the module docstring)
        new_cid = revise(
            env,
            task_id,
            {"NOTES.md": RELEASE_NOTES + b"- **Before upgrading**: run `deworker db migrate`\n", "slugify.py": SLUGIFY},
            feedback=task.state_reason,
        )
        page.reload()
        expect(page.locator("tbody tr")).to_have_count(3)
        page.locator(f"a[href='/review/{task_id}']").click()
        expect(page.get_by_role("heading", name="Changes since revision 0")).to_be_visible()
        expect(page.locator(".diff .gi", has_text="deworker db migrate")).to_be_visible()
        assert page.locator("input[name=artifact_cid]").input_value() == new_cid != first_cid
        page.screenshot(path=str(SCREENSHOTS / "review.png"))

        # approve it (the shortcut focuses Approve; Enter presses it)
        page.keyboard.press("a")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text(f"Task {task_id} approved.")
        assert env.store.get_task(task_id=task_id).state is TaskState.APPROVED

        # the orchestrator submits it (simulated, see the module docstring); the history shows it
        submit(env, task_id)
        page.goto(f"{server}/tasks/{task_id}")
        expect(page.locator(".meta .state")).to_have_text("SUBMITTED")
        expect(page.locator(".events")).to_contain_text("carol")
        expect(page.locator(".events")).to_contain_text(new_cid)

        page.goto(f"{server}/dashboard")
        expect(page.locator("svg.chart")).to_be_visible()
        expect(page.get_by_role("heading", name="Profit and loss by agent")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Log in to review")).to_be_visible()
        browser.close()

    assert problems == [], f"browser console errors (CSP violations show up here): {problems}"
    for name in ("inbox", "review", "dashboard"):
        size = (SCREENSHOTS / f"{name}.png").stat().st_size
        assert 0 < size < 300_000, f"{name}.png is {size} bytes"

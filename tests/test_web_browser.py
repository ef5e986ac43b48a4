"""End to end in a real browser: Debian's chromium driven by Playwright (sync API), against the app served by
uvicorn on 127.0.0.1 in a thread. Playwright never downloads a browser here: it launches /usr/bin/chromium.

The work under review comes from the real orchestrator loop: a DAO posts three tasks on an in-process chain
(py-evm), the ``Orchestrator`` (``review.mode: human``) polls, claims with the agent's wallet and produces with a
``LangChainAgent`` over a fake chat model (``tests.test_agents.fake``: scripted tool calls, no LLM). In the browser
the reviewer asks for changes; ``Orchestrator.advance`` runs the agent again with the feedback; the revision shows
up with its diff, is approved in the browser, and ``advance`` submits it on chain. The DAO approves, ``collect``
records the payout, and the dashboard shows the reward next to a past of paid tasks.

Takes screenshots of the inbox, the review page and the dashboard: into the test's temporary folder, or, with
``UPDATE_SCREENSHOTS=1``, over docs/screenshots/{inbox,review,dashboard}.png for the README (a plain test run never
changes the working tree).
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from agents.config import ModelPrice
from agents.langchain_agent import LangChainAgent
from orchestrator.adapters.chain import EthTesterChain
from orchestrator.adapters.sql import AgentCreate, CostKind, ReviewDecision, RunCreate, RunStatus, Store, make_engine
from orchestrator.app.matching import MatchingConfig
from orchestrator.app.service import Orchestrator
from orchestrator.domain.board import Payout
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.money import TokenBook, TokenInfo
from orchestrator.domain.specs import TaskSpec
from orchestrator.entry.dao import to_base_units
from orchestrator.entry.web.config import Role
from orchestrator.entry.web.server import bind, serve_in_thread
from tests.conftest import require
from tests.test_agents import fake, submit
from tests.test_service_fixtures import DEADLINE_SECONDS, World, build_world, profile
from tests.test_store import board_task, tx
from tests.test_web_api import AGENT, AGENT_ADDRESS, PASSWORD, RELEASE_NOTES, WebEnv, build_env

S = TaskState
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
#: Elements whose right edge is past the viewport (outermost first), as "tag.class" names.
STICKING_OUT = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= window.innerWidth + 0.5)
  .map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : ''))
  .slice(0, 8)"""
#: The narrow viewport every page must fit without scrolling sideways (a phone held upright).
NARROW_PX = 420
README_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"  # read at import: the env scrub runs later
SLUGIFY = """\"\"\"Turn titles into URL slugs.\"\"\"

import re
import unicodedata


def slugify(title: str) -> str:
    \"\"\"Lower-case ASCII words joined by hyphens.\"\"\"
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
"""
NOTES = RELEASE_NOTES.decode()
PRICE = ModelPrice(input_per_mtok=Decimal(3), output_per_mtok=Decimal(15))  # USD per million tokens
FEEDBACK = "Mention that the database migration must run before the upgrade."
REVISED_NOTES = NOTES + "- **Before upgrading**: run `deworker db migrate`\n"
GLOSSARY = "# Glossary\n\n**DAO**: a decentralised autonomous organisation.\n"
FIZZBUZZ = "def fizzbuzz(n: int) -> str:\n    return 'Fizz' * (n % 3 == 0) + 'Buzz' * (n % 5 == 0) or str(n)\n"
FIZZBUZZ_TESTS = {
    "test_fizzbuzz.py": "from fizzbuzz import fizzbuzz\n\n\ndef test_rules():\n"
    "    assert [fizzbuzz(n) for n in (1, 3, 5, 15)] == ['1', 'Fizz', 'Buzz', 'FizzBuzz']\n"
}


def task_spec(title: str, filename: str, *, code: bool = False) -> TaskSpec:
    return TaskSpec(
        title=title,
        description=f"Write {filename} for: {title}.",
        deliverable={"kind": "code", "format": "python", "filename": filename}
        if code
        else {"kind": "markdown", "filename": filename},
        skills=["python" if code else "writing"],
        acceptance=["a reviewer likes it"],
        acceptance_tests={"files": FIZZBUZZ_TESTS} if code else None,
    )


@pytest.fixture
def world(tmp_path: Path) -> World:
    """A DAO with a board and its reward token on an in-process chain, the store, the CID store, one wallet."""
    chain = EthTesterChain()
    return build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path / "world", agents=("ada",))


def web_over(world: World, root: Path) -> WebEnv:
    """The review app over the world's database and artifacts, showing the DAO's token as DWR."""
    engine = make_engine(f"sqlite:///{world.root / 'deworker.db'}")  # already migrated by build_world
    tokens = TokenBook([TokenInfo(address=world.dao.token, symbol="DWR", decimals=world.dao.decimals())])
    # the inbox checks for changes every half second, so the test sees a revision arrive without waiting long
    return build_env(
        "sqlite", engine, root, store=world.store, artifacts=world.artifacts, tokens=tokens, inbox_poll_seconds=0.5
    )


def history(env: WebEnv, token: str) -> None:
    """A fleet with a past on another board: three agents, paid tasks over two weeks, gas and LLM costs."""
    now = datetime.now(UTC)
    clock_at = [now - timedelta(days=15)]

    def clock() -> datetime:
        clock_at[0] += timedelta(minutes=1)
        return clock_at[0]

    past = Store(env.engine, clock=clock)
    agents = {"bob": "0x" + "bb" * 20, "dora": "0x" + "dd" * 20, AGENT: AGENT_ADDRESS}
    for name, address in agents.items():
        past.upsert_agent(agent=AgentCreate(name=name, address=address, skills=["python", "writing"]))
    for i, (agent, days, reward) in enumerate(
        [("bob", 14, 3), (AGENT, 12, 5), ("dora", 9, 2), ("bob", 6, 8), (AGENT, 3, 4), ("dora", 1, 6)], start=100
    ):
        clock_at[0] = now - timedelta(days=days)
        bt = dataclasses.replace(board_task(i, board="past", reward=reward * 10**18), token=token)
        task, _ = past.upsert_discovered(board_task=bt)
        past.transition(task_id=task.id, to=S.CLAIMING, actor="worker", agent=agent)
        past.transition(task_id=task.id, to=S.CLAIMED, actor="worker", tx_hash=tx(i))
        past.transition(task_id=task.id, to=S.PRODUCING, actor="worker")
        cid = f"bafkreipast{i}"
        past.record_artifact(task_id=task.id, cid=cid, manifest={}, self_check="passed", actor=agent)  # type: ignore[arg-type]
        past.record_run(
            run=RunCreate(
                task_id=task.id,
                agent=agent,
                started_at=clock(),
                finished_at=clock(),
                status=RunStatus.PRODUCED,
                prompt_tokens=1200,
                completion_tokens=400,
                cost_usd_micro=3100 + 100 * i,
            )
        )  # fmt: skip  (record_run books the LLM cost too)
        past.transition(task_id=task.id, to=S.PRODUCED, actor="worker")
        past.record_review(task_id=task.id, artifact_cid=cid, decision=ReviewDecision.APPROVE, reviewer="carol")
        past.transition(task_id=task.id, to=S.SUBMITTING, actor="worker", cid=cid, tx_hash=tx(i + 50))
        past.transition(task_id=task.id, to=S.SUBMITTED, actor="worker", tx_hash=tx(i + 50))
        past.record_reward(payout=Payout("past", str(i), agents[agent], token, reward * 10**18, tx(i + 80), 1000 + i))
        past.record_cost(agent=agent, kind=CostKind.GAS, amount=2_100_000 * 10**9, task_id=task.id, tx_hash=tx(i + 60))


def post(world: World, spec: TaskSpec, reward: str) -> int:
    units = to_base_units(reward, world.dao.decimals())
    return world.dao.post(spec, reward=units, deadline=world.now() + DEADLINE_SECONDS).task_id


def test_review_in_a_real_browser(world: World, tmp_path: Path) -> None:
    require(CHROMIUM.exists(), "chromium is not installed: apt-get install -y chromium")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import expect, sync_playwright

    env = web_over(world, tmp_path / "web")
    history(env, world.dao.token)
    shots = README_SCREENSHOTS if UPDATE_SCREENSHOTS else tmp_path
    env.users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)

    # the DAO posts three tasks; the orchestrator claims and produces them and queues them for a human
    notes = post(world, task_spec("Release notes for 1.2", "NOTES.md"), "12")
    post(world, task_spec("A glossary for newcomers", "GLOSSARY.md"), "5")
    post(world, task_spec("FizzBuzz in Python", "fizzbuzz.py", code=True), "3")
    usage = {"tokens": (2400, 600)}  # as an OpenAI-compatible server would report them
    model = fake(
        submit(
            {"NOTES.md": NOTES, "slugify.py": SLUGIFY}, summary="Release notes for 1.2, plus the slug helper", **usage
        ),
        submit({"GLOSSARY.md": GLOSSARY}, summary="A one-entry glossary", **usage),
        submit({"fizzbuzz.py": FIZZBUZZ}, summary="Counts to 100", **usage),
        submit({"NOTES.md": REVISED_NOTES, "slugify.py": SLUGIFY}, summary="Added the migration step", **usage),
    )
    ada = profile("ada", skills=("writing", "python"))
    agent = LangChainAgent(ada.model_copy(update={"tools": []}), model, price=PRICE)
    orch: Orchestrator = world.orchestrator(
        [ada],
        runners={"ada": agent},
        review_mode="human",
        matching=MatchingConfig(min_seconds_left=60, max_tasks_per_agent=5),
    )
    orch.start()
    report = orch.cycle()
    assert report.discovered == 3
    found = world.store.find_task(board=world.board.name, task_key=str(notes))
    assert found is not None and found.state is S.AWAITING_REVIEW
    task_id, first_cid = found.id, found.artifact_cid
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    with serve_in_thread(env.app, bind("127.0.0.1", 0)) as server, sync_playwright() as pw:
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
        fizzbuzz_row = page.locator("tbody tr", has_text="FizzBuzz in Python")
        expect(fizzbuzz_row.locator(".check")).to_have_text("passed")  # the agent's self-check ran the spec's tests
        expect(fizzbuzz_row).to_contain_text("Write fizzbuzz.py for: FizzBuzz in Python.")  # what was asked
        page.screenshot(path=str(shots / "inbox.png"))

        # open the oldest item with the keyboard and read the artifact
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server}/review/{task_id}")
        expect(page.locator(".markdown h1", has_text="Release notes")).to_be_visible()
        expect(page.locator(".hl", has_text="def slugify")).to_be_visible()
        expect(page.locator("body")).to_contain_text("12 DWR")

        # reject with feedback, by keyboard: x goes to the empty feedback box first, then to Reject
        page.get_by_role("button", name="Reject").click()  # without feedback the browser asks for it...
        expect(page.locator("#feedback:focus")).to_have_count(1)
        assert world.store.get_task(task_id=task_id).state is S.AWAITING_REVIEW  # ...and nothing was sent
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("x")
        expect(page.locator("#feedback:focus")).to_have_count(1)
        page.keyboard.type(FEEDBACK)
        page.keyboard.press("Escape")
        page.keyboard.press("x")
        expect(page.locator("#reject:focus")).to_have_count(1)
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text(f"Task {task_id} rejected: the agent starts over.")
        expect(page.locator("tbody tr")).to_have_count(2)
        task = world.store.get_task(task_id=task_id)
        assert task.state is S.PRODUCING and task.revision_count == 1

        # the orchestrator runs the agent again, from scratch, told why; the revision arrives in the inbox
        revised = orch.advance(task_id)
        assert revised.state is S.AWAITING_REVIEW and revised.artifact_cid not in (None, first_cid)
        prompt = str(model.seen[-1][-1].content)  # the agent was shown the reviewer's words
        assert FEEDBACK in prompt and "Do the task again from the start" in prompt
        news = page.locator("#inbox-news")  # the open inbox notices the revision (web.inbox_poll_seconds)
        expect(news).to_contain_text("The queue changed: 3 awaiting review.", timeout=10_000)
        news.get_by_role("link", name="Reload").click()
        expect(page.locator("tbody tr")).to_have_count(3)
        page.locator(f"a[href='/review/{task_id}']").click()
        expect(page.get_by_role("heading", name="Changes since revision 0")).to_be_visible()
        expect(page.locator(".diff summary .tag")).to_have_text("rejected: the agent started over")
        expect(page.locator(".diff .gi", has_text="deworker db migrate")).to_be_visible()
        assert page.locator("input[name=artifact_cid]").input_value() == revised.artifact_cid
        page.screenshot(path=str(shots / "review.png"))

        # approve it (the shortcut focuses Approve; Enter presses it)
        page.keyboard.press("a")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text(f"Task {task_id} approved.")
        assert world.store.get_task(task_id=task_id).state is S.APPROVED

        # the orchestrator submits it on chain; the history shows the transaction and the CID
        submitted = orch.advance(task_id)
        assert submitted.state is S.SUBMITTED and submitted.submit_tx_hash is not None
        assert world.board.status(str(notes)).artifact_cid == revised.artifact_cid
        page.goto(f"{server}/tasks/{task_id}")
        expect(page.locator(".meta .state")).to_have_text("SUBMITTED")
        expect(page.locator(".events")).to_contain_text("carol")
        expect(page.locator(".events")).to_contain_text(revised.artifact_cid or "")
        expect(page.locator(".events")).to_contain_text(submitted.submit_tx_hash)
        expect(page.locator("table.runs tbody tr")).to_have_count(2)  # the first attempt and the redone one
        page.screenshot(path=str(shots / "history.png"), full_page=True)

        # the DAO approves on the board; collect records the payout: the dashboard shows what was received
        assert world.approve_submitted() == [notes]
        assert orch.collect() == 1
        page.goto(f"{server}/dashboard")
        expect(page.locator("svg.chart")).to_be_visible()
        expect(page.get_by_role("heading", name="Profit and loss by agent")).to_be_visible()
        expect(page.locator(".money")).to_contain_text("40 DWR")  # 28 from the past + 12 just paid
        expect(page.locator("table.list").last).to_contain_text("12 DWR")  # ada's row
        page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

        # issue 15 item 10: at 420 px (a phone) no page scrolls sideways and "Log out" is on screen
        waiting = world.store.pending_reviews()[0].task.id
        page.set_viewport_size({"width": NARROW_PX, "height": 900})
        pages = {
            "inbox": "/inbox",
            "review": f"/review/{waiting}",
            "tasks": "/tasks",
            "history": f"/tasks/{task_id}",
            "dashboard": "/dashboard",
            "docs": "/docs",
        }
        overflowing: dict[str, object] = {}
        for name, path in pages.items():
            page.goto(f"{server}{path}")
            width = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            assert width[1] == NARROW_PX
            if width[0] > width[1]:  # name the elements that stick out, to say what to fix
                overflowing[path] = (width[0], page.evaluate(STICKING_OUT))
            logout = page.get_by_role("button", name="Log out")
            expect(logout).to_be_visible()
            box = logout.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= NARROW_PX, f"{path}: {box}"
            page.screenshot(path=str(tmp_path / f"narrow-{name}.png"), full_page=True)
        assert not overflowing, f"pages wider than {NARROW_PX} px: {overflowing}"

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Log in to review")).to_be_visible()
        browser.close()

    assert problems == [], f"browser console errors (CSP violations show up here): {problems}"
    for name in ("inbox", "review", "dashboard", "history"):
        size = (shots / f"{name}.png").stat().st_size
        assert 0 < size < 300_000, f"{name}.png is {size} bytes"
    env.engine.dispose()

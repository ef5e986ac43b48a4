"""``deworker demo`` end to end: the bundled tasks through the whole service on the in-process chain, with instant
agents (fast) and, marked ``llm``, with the embedded local model on one small task."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from importlib import resources
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from agents.errors import LocalModelError
from agents.llm_server import find_embedded_gguf, llama_server_installed
from orchestrator.entry import demo
from orchestrator.entry.config import Config
from tests.conftest import require


def run_demo(tmp_path: Path, **kwargs: object) -> tuple[bool, list[str]]:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    ok = demo.run(Config(data_dir=tmp_path), console=console, **kwargs)  # type: ignore[arg-type]
    return ok, out.getvalue().strip().splitlines()


def test_demo_with_instant_agents_pays_and_reconciles(tmp_path: Path) -> None:
    ok, lines = run_demo(tmp_path, agent="instant")
    assert ok
    # five on the TaskBoard, two posted by the project pool the DAO funded by vote (paid through the same board),
    # two on the market: a direct hire and an open job hired at its bid
    assert lines[-1] == "demo: 9 tasks paid, 1 quarantined, 1 skipped; balances reconcile"
    text = "\n".join(lines)
    # the pool's story: executed proposal, both tasks finalized, 30 + 10 shares, all revenue claimed; each agent's
    # bounties + revenue (the ledger) equal its balance on chain (the table's "match" column, in the verdict)
    assert re.search(r"funded by proposal \S+ \(executed\), 2 tasks finalized, 40 shares, 40 DWR revenue "
                     r"deposited, 40 claimed", text), text  # fmt: skip
    assert "Atlas shares (chain)" in text and "revenue (db, DWR)" in text
    boards = {line.split("│")[1].strip(): line for line in lines if line.count("│") == 5}
    assert "acp" in boards and "main" in boards  # the per-board table
    assert boards["acp"].split("│")[2].strip() == "2" and boards["acp"].split("│")[3].strip() == "2"
    assert boards["main"].split("│")[2].strip() == "9" and boards["main"].split("│")[3].strip() == "7"
    assert "not worth it" in text and "spec does not match" in text


@pytest.mark.parametrize(
    ("min_margin", "last_line"),
    [("0.10", "3 tasks paid, 0 quarantined, 0 skipped"), ("100", "0 tasks paid, 0 quarantined, 3 skipped")],
)
def test_the_demo_matches_as_the_config_says(tmp_path: Path, min_margin: str, last_line: str) -> None:
    """The demo's profit gate is ``matching`` from the config: a 25-token task (and the same task as a direct hire
    on the demo's ERC-8183 market, and as the project pool's task) is taken at the default margin and skipped, with
    the reason, when ``matching.min_margin_usd`` asks for more than it pays."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    source = resources.files("orchestrator").joinpath("demo_tasks", "04-glossary.json")
    (folder / "glossary.json").write_text(source.read_text("utf-8"), "utf-8")
    out = io.StringIO()
    config = Config(data_dir=tmp_path / "data", matching={"min_margin_usd": min_margin})
    ok = demo.run(config, console=Console(file=out, width=400, force_terminal=False), agent="instant", tasks_dir=folder)
    lines = out.getvalue().strip().splitlines()
    assert ok
    assert lines[-1] == f"demo: {last_line}; balances reconcile"
    skipped = "is below matching.min_margin_usd=$100" in out.getvalue()
    assert skipped == (min_margin == "100")


def test_bundled_tasks_are_varied() -> None:
    tasks = demo.bundled_tasks()
    assert len(tasks) >= 6
    kinds = {t.spec.deliverable.kind for t in tasks if t.spec is not None}
    assert {"markdown", "code", "text", "data"} <= {str(k) for k in kinds}
    assert any(t.spec is not None and t.spec.acceptance_tests for t in tasks)
    assert any(t.spec_raw is not None for t in tasks)


@pytest.mark.llm
def test_demo_with_the_local_model_on_one_small_task(tmp_path: Path) -> None:
    require(llama_server_installed(), "llama-cpp-python[server] is not installed (make model)")
    try:
        find_embedded_gguf()
    except LocalModelError as exc:
        require(False, f"the embedded model is missing: {exc}")
    folder = tmp_path / "tasks"
    folder.mkdir()
    source = resources.files("orchestrator").joinpath("demo_tasks", "04-glossary.json")
    doc = json.loads(source.read_text("utf-8"))
    (folder / "glossary.json").write_text(json.dumps(doc), "utf-8")
    ok, lines = run_demo(tmp_path / "data", agent="local", tasks_dir=folder)
    assert ok
    # SmolLM2 at temperature 0 is deterministic: it writes the glossary file, which passes the artifact check
    assert lines[-1] == "demo: 3 tasks paid, 0 quarantined, 0 skipped; balances reconcile"  # board, pool, market


def test_demo_human_review_serves_the_inbox_and_waits_for_decisions(tmp_path: Path) -> None:
    """``--review human``: the demo serves the review inbox on 127.0.0.1 and prints how to reach it; a reviewer
    logs in with the printed password, and the decisions made through the printed API token let it finish."""
    out = io.StringIO()
    console = Console(file=out, width=400, force_terminal=False)
    result: list[bool] = []
    taken = socket.socket()  # web.port is taken (e.g. by `deworker review serve`): the demo picks a free port
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    config = Config(data_dir=tmp_path, web={"port": taken.getsockname()[1]})
    runner = threading.Thread(
        target=lambda: result.append(demo.run(config, console=console, agent="instant", review="human"))
    )
    runner.start()
    deadline = time.monotonic() + 120
    pattern = r"open (http://127\.0\.0\.1:\d+)/inbox and log in as (\w+), password: (\S+)"
    while not (printed := re.search(pattern, out.getvalue())):
        assert time.monotonic() < deadline and runner.is_alive(), out.getvalue()
        time.sleep(0.05)
    url, name, password = printed.groups()
    assert not url.endswith(f":{taken.getsockname()[1]}")
    taken.close()
    token = re.search(r"Authorization: Bearer (dwk_\S+)\"", out.getvalue())
    assert token is not None
    assert re.search(r"DEWORKER_DB__URL=sqlite:///\S+deworker\.db deworker review list", out.getvalue())

    with httpx.Client(base_url=url) as browser:  # the printed password logs in to the inbox
        page = browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"name": name, "password": password, "csrf_token": csrf.group(1)}
        assert browser.post("/login", data=form).status_code == 303
        assert browser.get("/inbox").status_code == 200

    approved = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token.group(1)}"}) as api:
        while runner.is_alive() and time.monotonic() < deadline:
            try:
                pending = api.get("/api/reviews")
            except httpx.TransportError:
                # The demo finished and stopped its server between two polls: a refused connection, or a
                # kept-alive one reset by the closing server. Anything else is a real failure.
                runner.join(timeout=30)
                assert not runner.is_alive(), "the inbox stopped answering while the demo was still running"
                break
            for item in pending.json():
                decision = {"artifact_cid": item["artifact"]["cid"], "decision": "approve"}
                answer = api.post(f"/api/tasks/{item['task']['id']}/review", json=decision)
                assert answer.status_code == 201, answer.text
                approved += 1
            time.sleep(0.05)
    runner.join(timeout=10)
    assert result == [True]
    assert approved == 9  # five TaskBoard tasks, the pool's two, the market's direct hire and its open job
    assert out.getvalue().strip().splitlines()[-1] == (
        "demo: 9 tasks paid, 1 quarantined, 1 skipped; balances reconcile"
    )

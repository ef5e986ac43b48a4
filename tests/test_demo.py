"""``deworker demo`` end to end: the bundled tasks through the whole service on the in-process chain, with instant
agents (fast) and, marked ``llm``, with the embedded local model on one small task."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from importlib import resources
from pathlib import Path

import pytest
from rich.console import Console

from agents.errors import LocalModelError
from agents.llm_server import find_embedded_gguf, llama_server_installed
from orchestrator import demo
from orchestrator.config import Config
from orchestrator.store import ReviewDecision
from tests.conftest import require


def run_demo(tmp_path: Path, **kwargs: object) -> tuple[bool, list[str]]:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    ok = demo.run(Config(data_dir=tmp_path), console=console, **kwargs)  # type: ignore[arg-type]
    return ok, out.getvalue().strip().splitlines()


def test_demo_with_instant_agents_pays_and_reconciles(tmp_path: Path) -> None:
    ok, lines = run_demo(tmp_path, agent="instant")
    assert ok
    assert lines[-1] == "demo: 5 tasks paid, 1 quarantined, 1 skipped; balances reconcile"
    text = "\n".join(lines)
    assert "not worth it" in text and "spec does not match" in text


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
    assert lines[-1] == "demo: 1 tasks paid, 0 quarantined, 0 skipped; balances reconcile"


def test_demo_human_review_waits_for_decisions(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=400, force_terminal=False)
    result: list[bool] = []
    runner = threading.Thread(
        target=lambda: result.append(
            demo.run(Config(data_dir=tmp_path), console=console, agent="instant", review="human")
        )
    )
    runner.start()
    deadline = time.monotonic() + 120
    while not (match := re.search(r"DEWORKER_DB__URL=(\S+)", out.getvalue())):
        assert time.monotonic() < deadline and runner.is_alive()
        time.sleep(0.05)
    store = demo.open_store(match.group(1))
    approved = 0
    while runner.is_alive() and time.monotonic() < deadline:
        for item in store.pending_reviews():
            store.record_review(
                task_id=item.task.id, artifact_cid=item.artifact.cid, decision=ReviewDecision.APPROVE, reviewer="bob"
            )
            approved += 1
        time.sleep(0.05)
    runner.join(timeout=5)
    assert result == [True]
    assert approved == 5
    assert out.getvalue().strip().splitlines()[-1] == (
        "demo: 5 tasks paid, 1 quarantined, 1 skipped; balances reconcile"
    )

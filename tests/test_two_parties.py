"""Two parties, two machines: a DAO and an operator that share nothing but the chain.

One anvil (started by the DAO with ``deworker devnet up``). Each party has its own working folder, data folder,
SQLite database and artifact store, and runs its own ``deworker artifact serve`` (a trustless gateway over its
own store); both list the two gateways in ``artifacts.gateways``, as two parties would list the public gateways
they use. The operator knows only the RPC URL and the board's address. The DAO posts a code task and a text
task; the operator's ``deworker run`` reads the specs through the DAO's gateway, its agent (a model endpoint on
127.0.0.1 speaking the OpenAI wire protocol) produces, the artifacts are published and read back, then
submitted. The DAO runs ``dao show`` and ``dao check`` through the operator's gateway, approves the code task
and rejects the text one with a reason; the operator collects the reward and revises the rejected work.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.artifacts.unixfs import Cid
from orchestrator.adapters.chain import AnvilNotFound, find_anvil
from orchestrator.adapters.sql import Store, make_engine
from orchestrator.domain.lifecycle import TaskState
from tests.conftest import require
from tests.model_endpoint import model_endpoint
from tests.test_agents import completion
from tests.test_cli import REPO, deworker

PASSPHRASE = "correct horse battery staple"
CODE_SPEC = json.loads((REPO / "orchestrator/demo_tasks/02-fizzbuzz.json").read_text())["spec"]
TEXT_SPEC = json.loads((REPO / "orchestrator/demo_tasks/04-glossary.json").read_text())["spec"]
FIZZBUZZ = (
    "def fizzbuzz(n: int) -> str:\n"
    "    if n % 15 == 0:\n        return 'FizzBuzz'\n"
    "    if n % 3 == 0:\n        return 'Fizz'\n"
    "    if n % 5 == 0:\n        return 'Buzz'\n"
    "    return str(n)\n"
)
TERMS = ["quorum", "delegate", "timelock", "multisig", "snapshot vote", "treasury"]
REJECTION = "please also define veto"


def _glossary(terms: list[str]) -> str:
    return "".join(f"{term}: a plain-language definition of {term}.\n" for term in terms)


def _answer(body: str) -> dict[str, Any]:
    """The forced ``submit_artifact`` call that fits the task in the prompt (and the DAO's rejection reason, once
    it is in the agent's feedback)."""
    if "fizzbuzz" in body.lower():
        files = [{"path": "fizzbuzz.py", "content": FIZZBUZZ}]
    elif REJECTION in body:
        files = [{"path": "glossary.txt", "content": _glossary([*TERMS, "veto"])}]
    else:
        files = [{"path": "glossary.txt", "content": _glossary(TERMS)}]
    return completion({"files": files, "summary": "done"})


@pytest.fixture
def model_url() -> Iterator[str]:
    with model_endpoint(_answer) as url:
        yield url


class Party:
    """One machine: a working folder with its config.yaml and a data folder nobody else reads."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        root.mkdir()
        self.data = root / "data"
        self.config = config
        (root / "config.yaml").write_text(yaml.safe_dump(config))
        self.env = {"DEWORKER_DATA_DIR": str(self.data), "DEWORKER_WALLET_PASSPHRASE": PASSPHRASE}
        self.procs: list[subprocess.Popen[str]] = []

    def use_gateways(self, urls: list[str]) -> None:
        """List the gateways in ``artifacts.gateways`` (read by each ``deworker`` started from now on)."""
        self.config["artifacts"] = {"gateways": urls}
        (self.root / "config.yaml").write_text(yaml.safe_dump(self.config))

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return deworker(*args, cwd=self.root, env=self.env, ok=ok)

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=self.root,
            env={**os.environ, "COLUMNS": "200", **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> list[tuple[str, str]]:
        outputs = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                outputs.append(proc.communicate(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs.append(proc.communicate())
        return outputs


def _serve(party: Party) -> str:
    """``deworker artifact serve`` on a port the kernel picks (a port found free first could be taken by another
    process before the server binds it); returns its URL, the first line it prints, once it answers."""
    import httpx

    proc = party.start("artifact", "serve", "--port", "0")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\n", first), (first, proc.poll() is None or proc.communicate())
    url = first.strip().rstrip("/")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            httpx.head(f"{url}/ipfs/bafkqaaa?format=raw", timeout=2)
            return url
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"the gateway on {url} never answered")


def _wait(what: str, condition: Callable[[], bool], procs: list[subprocess.Popen[str]], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args!r} exited ({proc.returncode}) before {what}:\n{proc.communicate()}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.anvil
def test_a_dao_and_an_operator_on_two_machines(tmp_path: Path, model_url: str) -> None:
    try:
        find_anvil()
    except AnvilNotFound as exc:
        require(False, f"anvil is not installed: {exc}")
    dao = Party(tmp_path / "dao-machine", {"chain": {"kind": "devnet"}})
    up = dao.run("devnet", "up", "--port", "0")
    try:
        rpc_url = re.search(r"http://127\.0\.0\.1:\d+", up.stdout)
        board = re.search(r"task board\s*│?\s*(0x[0-9a-fA-F]{40})", up.stdout)
        assert rpc_url and board, up.stdout
        operator = Party(
            tmp_path / "operator-machine",
            {
                "chain": {"kind": "rpc", "rpc_url": rpc_url.group(0)},
                "board": {"address": board.group(1)},
                "agents": {
                    "profiles": [
                        {
                            "name": "ada",
                            "skills": ["writing", "python"],
                            "wallet": "ada",
                            "model": {"base_url": model_url, "model": "test-model", "tool_choice_auto": False},
                        }
                    ]
                },
                "service": {"poll_interval": 0.5, "reconcile_interval": 1},
            },
        )
        _exchange(dao, operator)
    finally:
        dao.stop_all()
        dao.run("devnet", "down", ok=False)


def _exchange(dao: Party, operator: Party) -> None:
    db = Store(make_engine(f"sqlite:///{operator.data / 'deworker.db'}"))
    try:
        gateways = [_serve(dao), _serve(operator)]
        dao.use_gateways(gateways)
        operator.use_gateways(gateways)
        for name, spec in (("code", CODE_SPEC), ("text", TEXT_SPEC)):
            (dao.root / f"{name}.json").write_text(json.dumps(spec))
            dao.run("dao", "post", "--spec", f"{name}.json", "--reward", "50")

        operator.run("wallet", "new", "ada")
        funded = operator.run("devnet", "fund", "ada", "--eth", "1")
        assert "1 ETH" in funded.stdout, funded.stdout

        def states() -> dict[int, TaskState]:
            try:
                return {int(t.task_key): t.state for t in db.tasks()}
            except Exception:  # the service has not created its tables yet
                return {}

        run = operator.start("run", "--review", "auto")
        watched = [run, *dao.procs, *operator.procs]
        _wait("both tasks submitted", lambda: states() == {1: TaskState.SUBMITTED, 2: TaskState.SUBMITTED}, watched)
        # the operator read both specs through the DAO's gateway: they are in its own store now, verified
        first_cid = db.find_task(board="main", task_key=str(2)).artifact_cid  # type: ignore[union-attr]
        assert first_cid is not None

        shown = dao.run("dao", "show", "1").stdout
        assert "fizzbuzz.py" in shown and "verified" in shown.lower(), shown
        checked = dao.run("dao", "check", "1")
        assert "passed" in checked.stdout.lower(), checked.stdout
        text = dao.run("dao", "show", "2", "--cat", "glossary.txt").stdout
        assert "quorum:" in text and "veto" not in text
        dao.run("dao", "approve", "1", "--yes")
        dao.run("dao", "reject", "2", "--reason", REJECTION)

        def revised() -> bool:
            task = db.find_task(board="main", task_key=str(2))
            return (
                states().get(1) is TaskState.PAID
                and task is not None
                and task.state is TaskState.SUBMITTED
                and task.artifact_cid not in (None, first_cid)
            )

        _wait("the reward collected and the rejected work revised", revised, watched)
        assert "veto:" in dao.run("dao", "show", "2", "--cat", "glossary.txt").stdout
        rewards = operator.run("rewards").stdout
        assert re.search(r"ada\s*│\s*50\b", rewards), rewards
        assert TaskState.QUARANTINED not in states().values()
    finally:
        outputs = operator.stop_all()
    assert all("Traceback" not in err for _, err in outputs), outputs
    # What travelled, travelled through the gateways: each party's own store now holds the other's content,
    # fetched and verified (the spec CIDs in the operator's store, the artifact in the DAO's).
    operator_store = LocalArtifactStore(operator.data / "artifacts")
    dao_store = LocalArtifactStore(dao.data / "artifacts")
    for task in db.tasks():
        assert operator_store.has(task.spec_cid)
        assert dao_store.has_block(Cid.parse(task.artifact_cid or ""))

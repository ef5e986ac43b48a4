"""``deworker run`` as the operator runs it: a real subprocess on a devnet (detached anvil), an agent profile
whose model endpoint is a real HTTP server on 127.0.0.1 speaking the OpenAI wire protocol, the wallet made with
``deworker wallet new``, tasks posted with ``deworker dao post``. The service claims, produces, submits and
collects; SIGTERM stops it cleanly (exit 0), and a restart picks up where it left off."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from eth_account import Account

from orchestrator.adapters.chain import RpcChain, TxSender, anvil_dev_accounts
from orchestrator.adapters.sql import Store, make_engine
from orchestrator.domain.lifecycle import TaskState
from tests.model_endpoint import model_endpoint
from tests.test_agents import completion
from tests.test_cli import SPEC, devnet, deworker  # noqa: F401  (devnet is a fixture)

PASSPHRASE = "correct horse battery staple"


#: The model's one answer: the forced ``submit_artifact`` call with a glossary file.
ANSWER = completion(
    {
        "files": [{"path": "glossary.txt", "content": "quorum: the minimum number of votes for a decision.\n"}],
        "summary": "six terms defined",
    }
)


@pytest.fixture
def model_url() -> Iterator[str]:
    with model_endpoint(lambda _: ANSWER) as url:
        yield url


def _wait(what: str, condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise AssertionError(f"deworker run exited ({proc.returncode}) before {what}:\n{proc.communicate()}")
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}:\n{proc.communicate()}")


def _start(cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--review", "auto"],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out, err


@pytest.mark.anvil
def test_deworker_run_earns_and_stops_cleanly_on_sigterm(
    devnet: dict[str, str],  # noqa: F811  (the fixture imported above)
    model_url: str,
    tmp_path: Path,
) -> None:
    config = {
        "agents": {
            "profiles": [
                {
                    "name": "ada",
                    "skills": ["writing"],
                    "wallet": "ada",
                    "model": {"base_url": model_url, "model": "test-model", "tool_choice_auto": False},
                }
            ]
        },
        "service": {"poll_interval": 0.5, "reconcile_interval": 2},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in devnet.items() if k != "URL"} | {"DEWORKER_WALLET_PASSPHRASE": PASSPHRASE}

    made = deworker("wallet", "new", "ada", cwd=tmp_path, env=env).stdout
    address = re.search(r"0x[0-9a-fA-F]{40}", made)
    assert address, made
    with RpcChain(devnet["URL"]) as chain:  # the operator funds the agent's gas from a dev account
        TxSender(chain, Account.from_key(anvil_dev_accounts(1)[0].private_key)).send(address.group(0), value=10**18)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    for _ in range(2):
        deworker("dao", "post", "--spec", str(spec), "--reward", "40", cwd=tmp_path, env=env)

    store = Store(make_engine(f"sqlite:///{Path(env['DEWORKER_DATA_DIR']) / 'deworker.db'}"))

    def states() -> list[TaskState]:
        try:
            return sorted(t.state for t in store.tasks())
        except Exception:  # the service has not created its tables yet
            return []

    proc = _start(tmp_path, env)
    _wait("both tasks submitted", lambda: states() == [TaskState.SUBMITTED] * 2, proc)
    out, err = _stop(proc)
    assert "Traceback" not in err
    # without a terminal: one line per event, never run together ("0 paidstopped:"), and SIGTERM says what is left
    lines = out.splitlines()
    assert lines[-1] == "stopped: every step finished or will resume from the database", out
    assert re.fullmatch(r"stopping, \d+ steps? in flight", lines[-2]), out
    cycles = [line for line in lines if line.startswith("cycle: ")]
    assert cycles and all(re.fullmatch(r"cycle: \d+ new, \d+ advanced, \d+ paid", c) for c in cycles), out

    approved = deworker("dao", "approve", "1", "--yes", cwd=tmp_path, env=env)
    assert "approved task 1: 40 DWR paid to" in approved.stdout

    proc = _start(tmp_path, env)  # a restart: collects the payout, sends nothing twice
    _wait("the reward collected", lambda: TaskState.PAID in states(), proc)
    _stop(proc)
    assert sorted(states()) == sorted([TaskState.SUBMITTED, TaskState.PAID])

    rewards = deworker("rewards", cwd=tmp_path, env=env).stdout
    assert re.search(r"ada\s*│\s*40\b", rewards), rewards
    tasks = deworker("tasks", "--state", "paid", cwd=tmp_path, env=env).stdout
    assert tasks.count("paid") >= 1 and "ada" in tasks
    status = deworker("status", cwd=tmp_path, env=env).stdout
    assert "ada" in status and address.group(0) not in status  # shortened in the table
    assert address.group(0) in deworker("status", "--wide", cwd=tmp_path, env=env).stdout


@pytest.mark.anvil
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_hostile_specs_do_not_stop_deworker_run(
    devnet: dict[str, str],  # noqa: F811  (the fixture imported above)
    model_url: str,
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    """Regression: a spec nested 100,000 levels deep segfaulted every operator polling the board (and again on each
    restart), and a spec with NUL stalled the board on PostgreSQL. Now both are quarantined, the honest task posted
    after them is discovered and paid, and the process never exits."""
    from orchestrator.adapters.artifacts import LocalArtifactStore
    from orchestrator.entry.dao import Dao

    config = {
        "agents": {
            "profiles": [
                {
                    "name": "ada",
                    "skills": ["writing"],
                    "wallet": "ada",
                    "model": {"base_url": model_url, "model": "test-model", "tool_choice_auto": False},
                }
            ]
        },
        "service": {"poll_interval": 0.5, "reconcile_interval": 2},
    }
    if backend == "postgresql":
        config["db"] = {"url": request.getfixturevalue("pg_engine").url.render_as_string(hide_password=False)}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in devnet.items() if k != "URL"} | {"DEWORKER_WALLET_PASSPHRASE": PASSPHRASE}
    made = deworker("wallet", "new", "ada", cwd=tmp_path, env=env).stdout
    address = re.search(r"0x[0-9a-fA-F]{40}", made)
    assert address, made
    data_dir = Path(env["DEWORKER_DATA_DIR"])
    addresses = json.loads((data_dir / "addresses.json").read_text())["31337"]
    with RpcChain(devnet["URL"]) as chain:
        dao_key = anvil_dev_accounts(1)[0].private_key
        TxSender(chain, Account.from_key(dao_key)).send(address.group(0), value=10**18)
        dao = Dao(
            chain=chain,
            signer=TxSender(chain, Account.from_key(dao_key)),
            store=LocalArtifactStore(data_dir / "artifacts"),
            board=addresses["board"],
            token=addresses["token"],
        )
        deadline = int(time.time()) + 86_400
        dao.post_raw(b"[" * 100_000 + b"]" * 100_000, reward=10**18, deadline=deadline)
        dao.post_raw(json.dumps({**SPEC, "title": "nul\u0000title"}).encode(), reward=10**18, deadline=deadline)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    deworker("dao", "post", "--spec", str(spec), "--reward", "40", cwd=tmp_path, env=env)  # task 3, honest

    db_url = config.get("db", {}).get("url") or f"sqlite:///{data_dir / 'deworker.db'}"  # type: ignore[attr-defined]
    store = Store(make_engine(db_url))

    def state_of(task_id: int) -> TaskState | None:
        try:
            task = store.find_task(board="main", task_key=str(task_id))
        except Exception:  # the service has not created its tables yet
            return None
        return None if task is None else task.state

    proc = _start(tmp_path, env)
    try:
        _wait("the honest task submitted", lambda: state_of(3) is TaskState.SUBMITTED, proc)
        assert state_of(1) is TaskState.QUARANTINED and state_of(2) is TaskState.QUARANTINED
        deworker("dao", "approve", "3", "--yes", cwd=tmp_path, env=env)
        _wait("the honest task paid", lambda: state_of(3) is TaskState.PAID, proc)
        assert proc.poll() is None  # never exited
    finally:
        if proc.poll() is None:
            _stop(proc)
    tasks = deworker("tasks", cwd=tmp_path, env=env).stdout
    assert "\x00" not in tasks and "quarantin" in tasks.lower()  # the NUL title is never printed raw

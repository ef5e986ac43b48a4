"""``deworker run`` as the operator runs it: a real subprocess on a devnet (detached anvil), an agent profile
whose model endpoint is a real HTTP server on 127.0.0.1 speaking the OpenAI wire protocol, the wallet made with
``deworker wallet new``, tasks posted with ``deworker dao post``. The service claims, produces, submits and
collects; SIGTERM stops it cleanly (exit 0), and a restart picks up where it left off."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from eth_account import Account

from orchestrator.chain import RpcChain, TxSender, anvil_dev_accounts
from orchestrator.domain import TaskState
from orchestrator.store import Store, make_engine
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


class _Model(http.server.BaseHTTPRequestHandler):
    """POST /v1/chat/completions: always the same forced ``submit_artifact`` call."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        data = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def model_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


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
    assert "stopped" in out and "Traceback" not in err

    approved = deworker("dao", "approve", "1", cwd=tmp_path, env=env)
    assert "reward paid" in approved.stdout

    proc = _start(tmp_path, env)  # a restart: collects the payout, sends nothing twice
    _wait("the reward collected", lambda: TaskState.PAID in states(), proc)
    _stop(proc)
    assert sorted(states()) == sorted([TaskState.SUBMITTED, TaskState.PAID])

    rewards = deworker("rewards", cwd=tmp_path, env=env).stdout
    assert re.search(r"ada\s*│\s*40\b", rewards), rewards
    tasks = deworker("tasks", "--state", "paid", cwd=tmp_path, env=env).stdout
    assert tasks.count("paid") >= 1 and "ada" in tasks
    status = deworker("status", cwd=tmp_path, env=env).stdout
    assert "ada" in status and address.group(0) in status

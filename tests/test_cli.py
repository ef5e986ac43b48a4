"""The ``deworker`` command line, run as a real subprocess: demo, artifacts, specs, and the DAO commands on a
devnet (a real detached anvil started by ``deworker devnet up``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.onchain import OnchainTaskBoard
from orchestrator.adapters.chain import AnvilNotFound, RpcChain, TxSender, anvil_dev_accounts, find_anvil
from tests.conftest import require

REPO = Path(__file__).resolve().parents[1]
SPEC = json.loads((REPO / "orchestrator/demo_tasks/04-glossary.json").read_text())["spec"]


def deworker(
    *args: str, cwd: Path, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if ok:
        assert proc.returncode == 0, f"deworker {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_demo_runs_end_to_end_and_reconciles(tmp_path: Path) -> None:
    proc = deworker("demo", "--agent", "instant", cwd=tmp_path)  # the real-model demo: tests/test_demo.py
    last = proc.stdout.strip().splitlines()[-1]
    # five on the TaskBoard, the DAO-funded project pool's two, a direct hire and an open job hired at its bid on
    # the demo's ERC-8183 market
    assert re.fullmatch(r"demo: 9 tasks paid, 1 quarantined, 1 skipped; balances reconcile", last), last
    assert "QUARANTINED" in proc.stdout and "SKIPPED" in proc.stdout


def test_artifact_add_prints_only_the_cid_and_get_round_trips(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("hello\n")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 3000)
    cid = deworker("artifact", "add", str(folder), cwd=tmp_path).stdout
    assert re.fullmatch(r"bafy[a-z2-7]+\n", cid)
    assert cid.strip() == LocalArtifactStore(tmp_path / "other").put_path(folder)
    deworker("artifact", "get", cid.strip(), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == (folder / "sub" / "b.bin").read_bytes()
    missing = deworker(
        "artifact",
        "get",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "-o",
        str(tmp_path / "x"),
        cwd=tmp_path,
        ok=False,
    )
    assert missing.returncode == 1 and missing.stderr.startswith("error:") and "Traceback" not in missing.stderr


def test_spec_validate_and_schema(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(SPEC))
    assert "valid" in deworker("spec", "validate", str(good), cwd=tmp_path).stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SPEC, "skills": []}))
    proc = deworker("spec", "validate", str(bad), cwd=tmp_path, ok=False)
    assert proc.returncode == 2 and "skills" in proc.stderr
    schema = json.loads(deworker("spec", "schema", cwd=tmp_path).stdout)
    assert schema["$id"].endswith("task-spec@1.json")


def test_dao_commands_refuse_the_in_process_chain(tmp_path: Path) -> None:
    proc = deworker("dao", "tasks", cwd=tmp_path, ok=False)
    assert proc.returncode == 2
    assert "chain.kind" in proc.stderr and "deworker devnet up" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`deworker devnet up` on a free port with its own data dir; always `devnet down` afterwards."""
    try:
        find_anvil()
    except AnvilNotFound as exc:
        require(False, f"anvil is not installed: {exc}")
    env = {"DEWORKER_DATA_DIR": str(tmp_path / "state")}
    up = deworker("devnet", "up", "--port", "0", cwd=tmp_path, env=env)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", up.stdout)
        assert url, up.stdout
        yield {**env, "DEWORKER_CHAIN__KIND": "devnet", "URL": url.group(0)}
    finally:
        deworker("devnet", "down", cwd=tmp_path, env=env)


@pytest.mark.anvil
def test_dao_lifecycle_on_devnet(devnet: dict[str, str], tmp_path: Path) -> None:
    env = devnet
    status = deworker("devnet", "status", cwd=tmp_path, env=env).stdout
    assert env["URL"] in status and "31337" in status
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    posted = deworker("dao", "post", "--spec", str(spec), "--reward", "50", "--deadline", "3d", cwd=tmp_path, env=env)
    assert "posted task 1" in posted.stdout and "50 DWR escrowed" in posted.stdout
    deworker("dao", "post", "--spec", str(spec), "--reward", "12.5", "--deadline", "2h", cwd=tmp_path, env=env)
    deworker("dao", "post", "--spec", str(spec), "--reward", "7", cwd=tmp_path, env=env)
    tasks = deworker("dao", "tasks", cwd=tmp_path, env=env).stdout
    assert tasks.count("open") == 3 and "12.5 DWR" in tasks

    # An agent (dev account 1) claims tasks 1 and 2 and submits, straight through the board adapter.
    addresses = json.loads((Path(env["DEWORKER_DATA_DIR"]) / "addresses.json").read_text())["31337"]
    with RpcChain(env["URL"]) as chain:
        store = LocalArtifactStore(Path(env["DEWORKER_DATA_DIR"]) / "artifacts")
        board = OnchainTaskBoard(chain=chain, address=addresses["board"], store=store)
        found, _ = board.poll("0")
        assert [int(t.key) for t in found] == [1, 2, 3] and all(board.read_spec(t).title for t in found)
        agent = TxSender(chain, Account.from_key(anvil_dev_accounts(2)[1].private_key))
        for task_id in (1, 2):
            board.claim(str(task_id), wallet=agent)
            board.deliver(str(task_id), store.put_bytes(b"quorum: enough votes to decide"), wallet=agent)

    approved = deworker("dao", "approve", "1", "--yes", cwd=tmp_path, env=env)
    assert "approved task 1: 50 DWR paid to" in approved.stdout
    rejected = deworker("dao", "reject", "2", "--reason", "define all six terms", cwd=tmp_path, env=env)
    assert "open again" in rejected.stdout
    deworker("dao", "cancel", "3", cwd=tmp_path, env=env)
    tasks = deworker("dao", "tasks", cwd=tmp_path, env=env).stdout
    rows = {line.split("│")[1].strip(): line for line in tasks.splitlines() if re.match(r"^│ +\d", line)}
    assert "approved" in rows["1"] and "open" in rows["2"] and "cancelled" in rows["3"]

    # Reverts come back as one clear line, not a traceback.
    again = deworker("dao", "cancel", "1", cwd=tmp_path, env=env, ok=False)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert "task 1 is APPROVED: only an OPEN task can be cancelled" in again.stderr
    bad = deworker("dao", "post", "--spec", str(spec), "--reward", "0", cwd=tmp_path, env=env, ok=False)
    assert bad.returncode == 1 and "positive amount" in bad.stderr


def test_error_messages_print_quoted_values_as_written(tmp_path: Path) -> None:
    # the message quotes the bad value; markup in it is shown literally, not turned into colours or links
    config = tmp_path / "bad.yaml"
    config.write_text('db:\n  url: "[red]oops[/red]"\n')
    failed = deworker("--config", str(config), "status", cwd=tmp_path, ok=False)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: not a database URL: '[red]oops[/red]'")
    assert "fix: use sqlite:///" in failed.stderr

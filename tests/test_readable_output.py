"""Issue 15, what a newcomer hit: errors without tracebacks unless ``--debug`` (also after the subcommand), one
readable log line per event (no reprs, no APScheduler skip warnings), Ctrl-C says how many steps are in flight,
help without ``<bool>`` and with whole state names, and hints that name the command to type."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.adapters.chain import EthTesterChain
from orchestrator.adapters.sql import TaskPublic
from orchestrator.adapters.sql.errors import StoreUnavailable
from orchestrator.adapters.sql.queries import TaskPage
from orchestrator.domain.errors import ArtifactError, ChainUnavailable
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import SpecError, parse_spec
from orchestrator.entry.cli import main as cli
from orchestrator.entry.cli.service import tasks_title
from orchestrator.entry.config import ServiceConfig
from orchestrator.entry.scheduler import ServiceRunner
from orchestrator.ports.wallet import RecoveryReport
from tests.test_cli import deworker
from tests.test_service_fixtures import World, build_world, profile
from wallets.fleet import SweepResult, Upkeep

DEAD_NODE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def world(tmp_path: Path) -> World:
    chain = EthTesterChain()
    return build_world(chain, [a.private_key for a in chain.dev_accounts()], tmp_path)


# ---------------------------------------------------------------------------------------- item 3: noise


def test_a_node_down_is_one_error_line_and_debug_after_the_subcommand_shows_the_traceback(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    board = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    config.write_text(
        f"data_dir: {tmp_path}\nchain:\n  kind: rpc\n  rpc_url: {DEAD_NODE}\nboard:\n  address: '{board}'\n"
    )
    quiet = deworker("-c", str(config), "dao", "tasks", cwd=tmp_path, ok=False)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    errors = [line for line in quiet.stderr.splitlines() if line.startswith(("error:", "fix:"))]
    assert len(errors) == 2 and "no usable node answered" in errors[0], quiet.stderr
    loud = deworker("-c", str(config), "dao", "tasks", "--debug", cwd=tmp_path, ok=False)
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "ChainUnavailable" in loud.stderr


def test_debug_is_read_anywhere_before_a_double_dash() -> None:
    assert cli._debug_anywhere(["status", "--debug"]) == (["--debug", "status"], True)
    assert cli._debug_anywhere(["--debug", "tasks", "--json"]) == (["--debug", "tasks", "--json"], True)
    assert cli._debug_anywhere(["status"]) == (["status"], False)
    assert cli._debug_anywhere(["x", "--", "--debug"]) == (["x", "--", "--debug"], False)


def test_failed_jobs_are_one_line_and_skipped_runs_are_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    orch = world(tmp_path).orchestrator([profile("ada")])
    calls: list[int] = []

    def slow_then_down(advance: object = None) -> None:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.0)  # ten poll intervals: APScheduler skips the ticks that come while this runs
        raise ChainUnavailable("node http://127.0.0.1:9 did not answer", hint="start the node")

    orch.cycle = slow_then_down  # type: ignore[method-assign,assignment]
    runner = ServiceRunner(orch, ServiceConfig(poll_interval=0.1, reconcile_interval=60, misfire_grace=1))
    with caplog.at_level(logging.INFO):
        runner.start()
        try:
            deadline = time.monotonic() + 20
            while len(calls) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            runner.stop()
    assert len(calls) >= 3
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "maximum number of running instances" in m]
    failed = [r for r in caplog.records if r.getMessage().startswith("cycle failed")]
    assert failed and not any(r.exc_info for r in failed)  # no traceback for an expected condition
    assert failed[0].getMessage() == "cycle failed: node http://127.0.0.1:9 did not answer; fix: start the node"


def test_reports_read_as_one_line_not_as_reprs() -> None:
    report = RecoveryReport(recorded=["0xa", "0xb"], rebroadcast=["0xc"], drift=8, next_nonce=12)
    text = str(report)
    assert text == "2 found mined, 1 re-sent, nonce drift +8 (the chain is ahead of the journal); next nonce 12"
    assert "RecoveryReport(" not in text and str(RecoveryReport()) == "nothing to recover"
    idle = Upkeep(topped_up=[], swept=[SweepResult(name="bob", receipts=[], swept_native=0, swept_tokens={})])
    assert not idle and str(idle) == "nothing to do"
    busy = Upkeep(topped_up=["ada", "grace"], swept=[])
    assert busy and str(busy) == "topped up ada, grace"


def test_ctrl_c_says_how_many_steps_are_in_flight(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.post("notes")
    orch = w.orchestrator([profile("ada")])
    runner = ServiceRunner(orch, ServiceConfig(poll_interval=0.2, reconcile_interval=60, workers=1))
    release = threading.Event()
    original = orch.advance

    def held(task_id: int) -> TaskPublic:
        release.wait(30)
        return original(task_id)

    orch.advance = held  # type: ignore[method-assign]
    told: list[int] = []

    def on_stop(in_flight: int) -> None:
        told.append(in_flight)
        release.set()  # let the step finish, as a real one would

    def interrupt() -> None:
        deadline = time.monotonic() + 30
        while runner.in_flight() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    runner.run_forever(on_stop=on_stop)
    killer.join()
    assert told == [1]


# --------------------------------------------------------------------------------- item 4: small things


def test_help_has_no_bool_metavar_and_state_names_are_whole() -> None:
    out = CliRunner().invoke(cli.app, ["tasks", "--help"], env={"COLUMNS": "80"}, terminal_width=80).output
    assert "<bool>" not in out and "--wide" in out and "--json" in out
    text = " ".join(line.strip(" │") for line in out.splitlines())
    for state in TaskState:
        assert state.value in text, f"{state.value} is broken in --help:\n{out}"
    for command in (["status", "--help"], ["--help"], ["dao", "tasks", "--help"], ["wallet", "list", "--help"]):
        assert "<bool>" not in CliRunner().invoke(cli.app, command, terminal_width=80).output


def test_task_page_titles_read_well() -> None:
    assert tasks_title(TaskPage(tasks=[], total=0), state=None, offset=0) == "No tasks yet"
    assert tasks_title(TaskPage(tasks=[], total=0), state=TaskState.PAID, offset=0) == "No tasks in PAID yet"
    beyond = tasks_title(TaskPage(tasks=[], total=3), state=None, offset=50)
    assert beyond == "No tasks on this page: there are 3 (try --page 1)"


# ----------------------------------------------------------------------------------------- item 5: hints


def test_a_bad_cid_hint_names_the_command_not_a_function() -> None:
    from orchestrator.adapters.artifacts.unixfs import Cid

    with pytest.raises(ArtifactError) as info:
        Cid.parse("bafyCOPIEDWRONG")
    assert "put_bytes" not in str(info.value.hint) and "deworker artifact add" in str(info.value.hint)


def test_every_spec_problem_is_shown() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(
            b'{"schema": "deworker/task-spec@1", "title": 5, "skills": 7, "acceptance": 3, "x": 1}', max_bytes=10_000
        )
    message = info.value.message
    assert "more)" not in message
    assert "problems)" in message and message.count(";") + 1 == int(message.split("(")[1].split()[0])


def test_a_missing_postgres_database_hints_createdb() -> None:
    from orchestrator.adapters.sql import make_engine, migrate
    from tests.conftest import require

    name = f"deworker_missing_{uuid.uuid4().hex[:8]}"
    engine = make_engine(f"postgresql://postgres@127.0.0.1:5432/{name}")
    try:
        with engine.connect():
            pass
    except Exception as exc:  # the server answers "database ... does not exist", or is not there at all
        require("does not exist" in str(exc), "PostgreSQL on 127.0.0.1:5432 is needed")
    with pytest.raises(StoreUnavailable) as info:
        migrate(engine)
    assert f"no database {name!r}" in info.value.message
    assert info.value.hint is not None and f"`createdb -h 127.0.0.1 -p 5432 -U postgres {name}`" in info.value.hint


def test_the_bootstrap_store_writes_amounts_in_token_units(tmp_path: Path) -> None:
    from orchestrator.entry.bootstrap import AddressBook, Deployment, Runtime
    from orchestrator.entry.config import Config

    token = "0x" + "ab" * 20
    AddressBook(tmp_path / "addresses.json").save(
        Deployment(chain_id=31337, token=token, board="0x" + "cd" * 20, block=0)
    )
    rt = Runtime(Config(data_dir=tmp_path))
    # the reason of a PAID task, in the CLI and on the web: "paid 30 DWR in block 9", not 30000000000000000000
    assert rt.db.amount_text(30 * 10**18, token) == "30 DWR"
    assert rt.db.amount_text(7, "0x" + "ee" * 20) == "7 units of 0xeeee…eeee"  # a token nobody described

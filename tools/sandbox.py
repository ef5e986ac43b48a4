"""``run_tests``: run a spec's acceptance tests against workspace files in a separate, limited process.

The tests and the code under test are both untrusted (the DAO wrote one, a model wrote the other), so they run:

- in a fresh temporary copy of the files plus the test files, never in the workspace itself;
- as ``python -m pytest`` with this interpreter (``sys.executable``), a scrubbed environment (no API keys, no
  ``DEWORKER_*``, ``HOME`` is the temporary folder) and ``-p no:cacheprovider``;
- with ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` and no core dumps, set by a tiny launcher;
- with a wall-clock timeout after which the whole process group is killed;
- without network. On Linux, when ``unshare -rn`` works (a user + network namespace: only a loopback
  interface that is down, so even 127.0.0.1 is unreachable), the command runs under it. Elsewhere, a
  ``sitecustomize.py`` put first on ``PYTHONPATH`` replaces ``socket.socket.connect``/``connect_ex``/``sendto``
  with functions that raise: weaker (native code can still open sockets) but it stops ordinary Python code.
  ``network_isolation()`` says which one is in use.

This is containment for honest mistakes and casual abuse, not a security boundary against a determined attacker
(the process can still read files this user can read). Run workers under a dedicated user or a container.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agents.errors import ToolError
from tools.base import Action
from tools.workspace import Workspace

_BLOCK_SOCKETS = '''"""Installed by Deworker's run_tests sandbox: no network for tests."""
import socket


def _refuse(*args, **kwargs):
    raise OSError(101, "network access is disabled in the Deworker test sandbox")


socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.socket.sendto = _refuse
socket.create_connection = _refuse
'''

#: Largest file the tests may write (RLIMIT_FSIZE).
_MAX_WRITE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TestRun:
    """Outcome of one test run. ``output`` is pytest's output, cut to the configured length."""

    __test__ = False  # not a pytest test class

    passed: bool
    output: str
    returncode: int | None
    seconds: float
    timed_out: bool = False


@functools.cache
def network_isolation() -> Literal["unshare", "sitecustomize"]:
    """``unshare`` when ``unshare -rn`` works here, else ``sitecustomize`` (see the module docstring)."""
    unshare = shutil.which("unshare")
    if sys.platform == "linux" and unshare:
        try:
            done = subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "sitecustomize"
        if done.returncode == 0:
            return "unshare"
    return "sitecustomize"


#: Started with ``python -c``: sets the resource limits, then replaces itself with the test command. A launcher
#: instead of ``preexec_fn``, because ``preexec_fn`` is unsafe when the parent has threads (agents run in threads).
_LAUNCHER = """
import os, resource, sys
mem, cpu, fsize = (int(v) for v in sys.argv[1:4])
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.execv(sys.argv[4], sys.argv[4:])
"""


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters cut] ...\n{text[-half:]}"


def run_acceptance_tests(
    files: Path,
    tests: Mapping[str, str],
    *,
    timeout: float = 60.0,
    memory_bytes: int = 1_073_741_824,
    max_output_chars: int = 4000,
) -> TestRun:
    """Copy ``files`` (a folder) and ``tests`` (relative path -> content) to a temporary folder and run pytest there.

    Test files win over same-named files from ``files``. Raises ``ToolError`` only if the sandbox itself cannot
    be set up; failing, crashing or hanging tests are a ``TestRun`` with ``passed=False``.
    """
    with tempfile.TemporaryDirectory(prefix="deworker-tests-") as tmp_name:
        tmp = Path(tmp_name)
        run_dir = tmp / "run"
        try:
            shutil.copytree(files, run_dir, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
            checker = Workspace(run_dir)
            for relpath, content in tests.items():
                target = checker.resolve(relpath)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise ToolError(f"cannot prepare the test folder: {exc}") from exc
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # no third-party plugins: faster, and nothing unexpected runs
            "PYTHONPATH": str(run_dir),
        }
        cpu = str(max(1, int(timeout) + 1))
        limits = [sys.executable, "-c", _LAUNCHER, str(memory_bytes), cpu, str(_MAX_WRITE_BYTES)]
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(run_dir), "."]
        cmd = [*limits, *pytest]
        if network_isolation() == "unshare":
            cmd = ["unshare", "-rn", *cmd]
        else:
            site = tmp / "sandbox-site"
            site.mkdir()
            (site / "sitecustomize.py").write_text(_BLOCK_SOCKETS, encoding="utf-8")
            env["PYTHONPATH"] = f"{site}{os.pathsep}{run_dir}"
        return _run(cmd, cwd=run_dir, env=env, timeout=timeout, limit=max_output_chars)


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float, limit: int) -> TestRun:
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    seconds = time.monotonic() - start
    text = out.decode("utf-8", errors="replace")
    if timed_out:
        text += f"\n[killed: the tests ran longer than {timeout:g} seconds]"
    elif proc.returncode is not None and proc.returncode < 0:
        text += f"\n[killed by signal {-proc.returncode}: over the CPU or memory limit?]"
    passed = not timed_out and proc.returncode == 0
    return TestRun(passed, _truncate(text, limit), proc.returncode, seconds, timed_out)


class RunTestsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def run_tests_action(
    ws: Workspace,
    tests: Mapping[str, str] | None,
    *,
    timeout: float = 60.0,
    memory_bytes: int = 1_073_741_824,
    max_output_chars: int = 4000,
) -> Action[RunTestsArgs]:
    """``run_tests`` bound to ``ws`` and the spec's acceptance tests, with the sandbox limits."""

    def run_tests(_: RunTestsArgs) -> str:
        if not tests:
            return "this task has no acceptance tests"
        result = run_acceptance_tests(
            ws.root, tests, timeout=timeout, memory_bytes=memory_bytes, max_output_chars=max_output_chars
        )
        verdict = "PASSED" if result.passed else "FAILED"
        return f"acceptance tests {verdict}\n{result.output}"

    return Action(
        "run_tests",
        "Run the task's acceptance tests (pytest) against the files in the workspace; returns the test output.",
        RunTestsArgs,
        run_tests,
    )

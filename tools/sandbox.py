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
  ``network_isolation()`` says which one is in use;
- in a filesystem of its own, when ``unshare -rnmpf`` works (``filesystem_isolation()``): user, network, mount
  and PID namespaces, and the launcher builds a new root on a tmpfs holding only read-only binds of the system
  folders (``/usr``, ``/etc``, ``/bin``, ``/lib*``, ``/sbin``), the Python installation and the folders pytest is
  imported from, a few ``/dev`` nodes, a fresh ``/proc`` (this PID namespace only: no other process's
  environment), a small ``/tmp`` tmpfs, and the test folder itself, writable. It then ``pivot_root``s into it and
  detaches the old root, so the tests cannot read the operator's home, data dir, keystores or databases, and can
  write nowhere but the throw-away test folder and ``/tmp``. Where that does not work, the tests see the real
  filesystem (with the user's permissions).

This is containment for honest mistakes and casual abuse, not a hardened security boundary (no seccomp filter;
the kernel is shared). Run workers under a dedicated user or a container as well.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
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


#: Started with ``python -c``: optionally builds the isolated root (argv[1] is a JSON plan, or ``-``), sets the
#: resource limits, then replaces itself with the test command. A launcher instead of ``preexec_fn``, because
#: ``preexec_fn`` is unsafe when the parent has threads (agents run in threads).
_LAUNCHER = """
import ctypes, json, os, platform, resource, sys

def isolate(plan):
    libc = ctypes.CDLL(None, use_errno=True)
    RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC = 1, 2, 4, 8, 32, 4096, 16384
    LOCKED = {os.ST_NOSUID: NOSUID, os.ST_NODEV: NODEV, os.ST_NOEXEC: NOEXEC,
              os.ST_NOATIME: 1024, os.ST_NODIRATIME: 2048, os.ST_RELATIME: 1 << 21}

    def mount(src, target, fstype, flags, data=None):
        enc = lambda v: None if v is None else v.encode()
        if libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {src} on {target}: {os.strerror(err)}")

    root = plan["root"]
    mount("tmpfs", root, "tmpfs", NOSUID | NODEV, "mode=0755,size=16m")
    for path in plan["links"]:
        os.symlink(os.readlink(path), root + path)
    for path, kind in plan["mounts"]:
        target = root + path
        if kind in ("tmpfs", "proc"):
            os.makedirs(target, exist_ok=True)
            if kind == "proc":
                mount("proc", target, "proc", NOSUID | NODEV | NOEXEC)
            else:
                mount("tmpfs", target, "tmpfs", NOSUID | NODEV, "mode=1777,size=256m")
            continue
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        elif not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()
        mount(path, target, None, BIND | REC)
        if kind == "ro":
            locked = os.statvfs(path).f_flag
            flags = BIND | REMOUNT | RDONLY
            for bit, flag in LOCKED.items():
                if locked & bit:
                    flags |= flag
            mount(None, target, None, flags)
    for name, dest in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                       ("stderr", "/proc/self/fd/2")):
        os.symlink(dest, root + "/dev/" + name)
    mount(None, root, None, REMOUNT | RDONLY | NOSUID | NODEV)  # the skeleton itself is read-only too
    os.chdir(root)
    pivot_root = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}[platform.machine()]
    if libc.syscall(pivot_root, b".", b".") != 0:
        raise OSError(ctypes.get_errno(), "pivot_root")
    if libc.umount2(b".", 2) != 0:  # MNT_DETACH: the old root is gone from this namespace
        raise OSError(ctypes.get_errno(), "umount old root")
    os.chdir(plan["cwd"])
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS

if sys.argv[1] != "-":
    try:
        isolate(json.loads(sys.argv[1]))
    except (OSError, KeyError) as exc:
        print(f"deworker sandbox: cannot isolate the filesystem: {exc}", file=sys.stderr)
        sys.exit(125)
mem, cpu, fsize = (int(v) for v in sys.argv[2:5])
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.execv(sys.argv[5], sys.argv[5:])
"""

#: Read-only in the isolated root when present: what a Python interpreter and its shared libraries need.
_SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_DEV_NODES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
#: Where pytest and its dependencies are imported from (bound read-only when outside the Python prefix).
_TEST_MODULES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging")
#: The sandbox's private tmpfs (inside the new root: not the host's /tmp).
_SANDBOX_TMP = "/tmp"  # noqa: S108


def _isolation_plan(root: Path, writable: Path, cwd: Path) -> dict[str, object]:
    """What the launcher mounts in the new root, parents before children; ``writable`` is the only host folder
    the tests can write to."""
    links: list[str] = []
    ro: set[str] = set()
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            links.append(path)
        elif os.path.isdir(path):
            ro.add(path)
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        ro.add(os.path.abspath(prefix))
    for name in _TEST_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            ro.add(str(Path(spec.origin).parent.parent))
    # a folder already visible through a bound parent needs no bind of its own
    kept = sorted(p for p in ro if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in ro))
    mounts: list[tuple[str, str]] = [(p, "ro") for p in kept]
    mounts += [(_SANDBOX_TMP, "tmpfs"), ("/proc", "proc")] + [(n, "dev") for n in _DEV_NODES if os.path.exists(n)]
    mounts.append((str(writable), "rw"))
    mounts.sort(key=lambda m: (m[0].count("/"), m[0]))
    return {"root": str(root), "links": links, "mounts": mounts, "cwd": str(cwd)}


def _unshare_command() -> list[str]:
    return ["unshare", "-rnmpf", "--mount-proc"]


@functools.cache
def filesystem_isolation() -> bool:
    """True when the tests run in their own root filesystem (see the module docstring); probed once."""
    if network_isolation() != "unshare":
        return False
    with tempfile.TemporaryDirectory(prefix="deworker-probe-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "root").mkdir()
        (tmp / "run").mkdir()
        plan = json.dumps(_isolation_plan(tmp / "root", tmp / "run", tmp / "run"))
        probe = "import os; assert os.getcwd() and not os.path.exists(" + repr(str(tmp / "root")) + ")"
        limits = [str(1 << 30), "10", str(_MAX_WRITE_BYTES)]  # memory, CPU seconds, file size
        cmd = [*_unshare_command(), sys.executable, "-c", _LAUNCHER, plan, *limits, sys.executable, "-c", probe]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=30, check=False, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters cut] ...\n{text[-half:]}"


_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")
#: Characters of the raw test output a failure report keeps (the failing lines are always shown first).
REPORT_OUTPUT_CHARS = 2500


def test_counts(output: str) -> tuple[int, int]:
    """(tests passed, tests failed or in error) from pytest's summary line; (0, 0) when there is none."""
    passed = failed = 0
    for line in reversed(output.splitlines()):
        found = _COUNT.findall(line)
        if found:
            for n, word in found:
                if word == "passed":
                    passed = int(n)
                else:
                    failed += int(n)
            break
    return passed, failed


def failure_report(output: str) -> str:
    """What a revision needs to see of a failed test run: the count, each failing test with its assertion
    (pytest's ``FAILED``/``ERROR`` lines, the ``>`` source line and the ``E`` lines), then the output trimmed."""
    lines = output.splitlines()
    picked: list[str] = []
    for line in lines:
        if line.startswith(("FAILED ", "ERROR ")) or re.match(r"^(>|E) ", line) or re.match(r"^_{3,} .+ _{3,}$", line):
            picked.append(line.rstrip())
    passed, failed = test_counts(output)
    head = f"{failed} of {passed + failed} test(s) failed." if failed else "The tests did not pass."
    failing = "\n".join(picked[:40]) if picked else "(no assertion found in the output)"
    return f"{head}\nFailing tests and assertions:\n{failing}\n\nTest output (trimmed):\n" + _truncate(
        output.strip(), REPORT_OUTPUT_CHARS
    )


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
        plan = "-"
        if filesystem_isolation():
            (tmp / "root").mkdir()
            plan = json.dumps(_isolation_plan(tmp / "root", run_dir, run_dir))
            env["HOME"] = env["TMPDIR"] = _SANDBOX_TMP
        limits = [sys.executable, "-c", _LAUNCHER, plan, str(memory_bytes), cpu, str(_MAX_WRITE_BYTES)]
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(run_dir), "."]
        cmd = [*limits, *pytest]
        if plan != "-":
            cmd = [*_unshare_command(), *cmd]
        elif network_isolation() == "unshare":
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

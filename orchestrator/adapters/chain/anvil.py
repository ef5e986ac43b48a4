"""``AnvilProcess``: start and stop a local anvil dev node (Foundry) for tests and ``deworker devnet up``.

anvil listens on 127.0.0.1 only, on a port the kernel picks unless one is given (``--port 0``: the port is
read back from anvil's own "Listening on" line, so no other process can take it in between), and is ready when
it answers ``eth_chainId``. It runs as a child (context manager) or detached with a pid file that a later process
reads to find and stop it. ``--state FILE`` persists the chain across restarts.

The binary comes from npm ``@foundry-rs/anvil`` (``make test`` installs it under ``.tools/``); no Node is
needed to run it. Adapter code: must not import web3 or eth-tester, nor anything above the ports.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic

from orchestrator.adapters.chain.base import DevAccount
from orchestrator.domain.errors import ChainError

ANVIL_ENV_VAR = "DEWORKER_ANVIL"
ANVIL_NPM_PACKAGE = "@foundry-rs/anvil@1.7.1"
ANVIL_TOOLS_GLOB = ".tools/node_modules/@foundry-rs/anvil-*/bin/anvil"
#: anvil's well-known development mnemonic: its accounts are public, for local chains only
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = 31337
#: what anvil prints once its socket is bound (on port 0: the port the kernel gave it)
_LISTENING = re.compile(rb"Listening on [^\s:]+:(\d+)")
INSTALL_HINT = (
    "run `make test` (it installs anvil into .tools/), "
    f"or `npm install --prefix .tools {ANVIL_NPM_PACKAGE}`, "
    f"or set {ANVIL_ENV_VAR}=/path/to/anvil"
)


class AnvilNotFound(ChainError):
    """The anvil binary is not installed where Deworker looks for it."""


class AnvilFailed(ChainError):
    """anvil did not start, or stopped answering."""


def find_anvil(
    explicit: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    search_from: Sequence[Path] | None = None,
) -> Path:
    """Locate the anvil binary: ``explicit``, then ``$DEWORKER_ANVIL``, then ``.tools/`` in the working
    directory or the repository, then ``anvil`` on ``PATH``. Raises ``AnvilNotFound`` with the install
    command."""
    env = os.environ if environ is None else environ
    for candidate, origin in ((explicit, "the path given"), (env.get(ANVIL_ENV_VAR), f"${ANVIL_ENV_VAR}")):
        if candidate:
            path = Path(candidate)
            if path.is_file() and os.access(path, os.X_OK):
                return path
            raise AnvilNotFound(f"anvil not found at {path} ({origin})", hint=INSTALL_HINT)
    roots = list(search_from) if search_from is not None else [Path.cwd(), Path(__file__).resolve().parents[3]]
    for root in roots:
        matches = sorted(glob.glob(str(root / ANVIL_TOOLS_GLOB)))
        for match in matches:
            if os.access(match, os.X_OK):
                return Path(match)
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilNotFound("the anvil binary is not installed", hint=INSTALL_HINT)


def anvil_dev_accounts(count: int = 10, *, mnemonic: str = ANVIL_MNEMONIC) -> list[DevAccount]:
    """anvil's pre-funded accounts (10,000 ETH each), derived from its mnemonic (m/44'/60'/0'/0/i)."""
    seed = seed_from_mnemonic(mnemonic, "")
    accounts = []
    for i in range(count):
        key = key_from_seed(seed, f"m/44'/60'/0'/0/{i}")
        accounts.append(DevAccount(address=Account.from_key(key).address, private_key=bytes(key)))
    return accounts


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as a server binds (anvil does): connections of a node stopped a moment ago, still in TIME_WAIT, do not
        # hold the port, so a node can be restarted on it at once; a live listener still does
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _answers(url: str, timeout: float = 0.5) -> int | None:
    """The chain id if a JSON-RPC node answers at ``url``, else None."""
    try:
        response = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=timeout,
            trust_env=False,
        )
        result = response.json().get("result")
        return int(result, 16) if isinstance(result, str) else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


@dataclass(frozen=True, slots=True)
class DetachedAnvil:
    """What a pid file written by ``AnvilProcess.start(pid_file=...)`` records."""

    pid: int
    url: str
    chain_id: int
    log_file: str | None
    state_file: str | None

    def alive(self) -> bool:
        """The process exists and is an anvil (guards against a recycled pid)."""
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        cmdline = Path(f"/proc/{self.pid}/cmdline")
        if cmdline.exists():
            with contextlib.suppress(OSError):
                return b"anvil" in cmdline.read_bytes()
        return True

    def answers(self) -> bool:
        """The node answers JSON-RPC at ``url``."""
        return _answers(self.url) is not None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it (SIGTERM, SIGKILL after ``timeout``); anvil writes its ``--state`` file on the way out."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    @classmethod
    def read(cls, pid_file: Path) -> DetachedAnvil | None:
        """The record in ``pid_file``, or None if there is none or it is unreadable."""
        try:
            data = json.loads(Path(pid_file).read_text())
            return cls(
                pid=int(data["pid"]),
                url=str(data["url"]),
                chain_id=int(data["chain_id"]),
                log_file=data.get("log_file"),
                state_file=data.get("state_file"),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


class AnvilProcess:
    """A local anvil node on 127.0.0.1.

    ``with AnvilProcess() as anvil: RpcChain(anvil.url)``. With ``start(pid_file=...)`` the node runs in its
    own session (it outlives this process and ignores its Ctrl-C) and its pid, URL and chain id go to
    ``pid_file`` as JSON; ``DetachedAnvil.read(pid_file).stop()`` stops it later.
    """

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] | None = None,
        port: int | None = None,
        chain_id: int | None = None,
        state_file: str | os.PathLike[str] | None = None,
        block_time: float | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 15.0,
        log_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.binary = find_anvil(binary)
        self.host = "127.0.0.1"
        self._requested_port = port
        self.port: int | None = None
        self.chain_id_arg = chain_id
        self.state_file = Path(state_file) if state_file is not None else None
        self.block_time = block_time
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.log_file = Path(log_file) if log_file is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._own_log: Path | None = None
        self._chain_id: int | None = None

    def __repr__(self) -> str:
        state = f"pid={self.pid}, url={self.url}" if self.running else "stopped"
        return f"AnvilProcess({state})"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (only once started)."""
        if self.port is None:
            raise AnvilFailed("anvil is not started", hint="call start() or use it as a context manager")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def dev_accounts(self, count: int = 10) -> list[DevAccount]:
        """The node's pre-funded accounts with their keys (anvil's default mnemonic)."""
        return anvil_dev_accounts(count)

    def command(self, port: int) -> list[str]:
        """The command line for ``port`` (0: any free port)."""
        # not --silent: it would hide the "Listening on" line the port is read from; the log gets a banner and
        # one line per RPC method called
        cmd = [str(self.binary), "--host", self.host, "--port", str(port)]
        if self.chain_id_arg is not None:
            cmd += ["--chain-id", str(self.chain_id_arg)]
        if self.state_file is not None:
            cmd += ["--state", str(self.state_file)]
        if self.block_time is not None:
            cmd += ["--block-time", f"{self.block_time:g}"]
        return cmd + list(self.extra_args)

    def start(self, *, pid_file: str | os.PathLike[str] | None = None) -> AnvilProcess:
        """Start anvil and wait until it answers ``eth_chainId``; ``pid_file`` runs it detached."""
        if self.running:
            return self
        self._launch(self._requested_port or 0, pid_file=Path(pid_file) if pid_file is not None else None)
        if pid_file is not None:
            record = {
                "pid": self.pid,
                "url": self.url,
                "chain_id": self._chain_id,
                "log_file": str(self.log_file or self._own_log or ""),
                "state_file": str(self.state_file) if self.state_file else None,
            }
            Path(pid_file).parent.mkdir(parents=True, exist_ok=True)
            Path(pid_file).write_text(json.dumps(record) + "\n")
        return self

    def _launch(self, port: int, *, pid_file: Path | None) -> None:
        if port and not port_is_free(port, self.host):
            raise _port_in_use(self.host, port)  # checked first for a clear message; anvil's own bind decides
        detached = pid_file is not None
        if self.log_file is None and pid_file is not None:
            self.log_file = pid_file.with_suffix(".log")  # a detached node's log outlives this process
        if self.log_file is not None:
            log_path = self.log_file
            log_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            fd, name = tempfile.mkstemp(prefix="anvil-", suffix=".log")
            os.close(fd)
            log_path = self._own_log = Path(name)
        # A child node dies with its parent (even a SIGKILLed test run leaves no orphan); Linux-only, and only
        # from the main thread, because the kernel ties it to the thread that started the child.
        tie_to_parent = (
            not detached and sys.platform == "linux" and threading.current_thread() is threading.main_thread()
        )
        with open(log_path, "ab") as log:
            ours_from = log.tell()  # a log file given may hold earlier runs' lines: read only this run's
            process = subprocess.Popen(
                self.command(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detached,
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )
        self._process, self.port = process, None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = _tail(log_path, since=ours_from)
                self._process, self.port = None, None
                if self._own_log is not None:
                    self._own_log.unlink(missing_ok=True)
                    self._own_log = None
                if "address already in use" in tail.lower():
                    raise _port_in_use(self.host, port)
                raise AnvilFailed(
                    f"anvil exited with code {process.returncode} while starting on port {port}: {tail}",
                    hint="see the log above; a port in use or a corrupt --state file are the usual causes",
                )
            if self.port is None:
                # Only our own process's "Listening on" line says the port is ours: probing first could reach
                # another node that took the port (on a busy machine, e.g. a parallel test run) and call it ready.
                self.port = _listening_port(log_path, since=ours_from)
            if self.port is not None:
                chain_id = _answers(self.url, timeout=0.5)
                if chain_id is not None:
                    self._chain_id = chain_id
                    return
            time.sleep(0.02)
        where = f"on {self.url}" if self.port is not None else f"(no 'Listening on' line in {log_path})"
        self.stop()
        raise AnvilFailed(
            f"anvil did not answer {where} within {self.startup_timeout:g} s",
            hint="check the machine's load and the anvil log; raise startup_timeout",
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop anvil (SIGTERM, so it writes ``--state``; SIGKILL after ``timeout``). Idempotent."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self._process = None
        if self._own_log is not None:
            with contextlib.suppress(OSError):
                self._own_log.unlink()
            self._own_log = None

    def __enter__(self) -> AnvilProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the forked child: ask the kernel for SIGTERM when the parent goes (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1 == PR_SET_PDEATHSIG


def _port_in_use(host: str, port: int) -> AnvilFailed:
    return AnvilFailed(
        f"port {port} on {host} is already in use",
        hint="stop whatever listens there (a devnet started earlier?) or choose another port",
    )


def _listening_port(log: Path, *, since: int) -> int | None:
    """The port of anvil's "Listening on HOST:PORT" line in ``log`` after offset ``since``, once it is there."""
    try:
        with open(log, "rb") as f:
            f.seek(since)
            found = _LISTENING.search(f.read())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def _tail(path: Path, chars: int = 600, *, since: int = 0) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace").strip()
    except OSError:
        return "(no log)"
    return text[-chars:] or "(empty log)"

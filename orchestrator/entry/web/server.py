"""The review app served by uvicorn in a background thread, for a process that has other work in its main thread
(``deworker demo --review human``; the browser test). ``deworker review serve`` runs uvicorn in the foreground."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from orchestrator.domain.errors import DeworkerError


def bind(host: str, port: int, *, fallback: bool = False) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port). With ``fallback``, a port in use falls back to a
    free one instead of failing."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: without it a small response (headers, then body: two writes) waits
        # for the client's delayed ACK, ~46 ms per request here; with it ~4 ms (measured on the gateway).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if not fallback or port == 0:
                raise DeworkerError(
                    f"cannot listen on {host}:{port}: {exc.strerror}",
                    hint="pick another address with web.host / web.port (or --host/--port)",
                ) from None
            sock.bind((host, 0))
        sock.listen(128)
        return sock
    except BaseException:
        sock.close()
        raise


@contextmanager
def serve_in_thread(app: FastAPI, sock: socket.socket, *, log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` on the bound ``sock`` from a daemon thread until the block ends; yields the base URL."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app, log_level=log_level, lifespan="off", server_header=False, proxy_headers=False, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="review-server", daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(400):  # up to 10 s: the first request handling imports templates and routes
        if server.started or not thread.is_alive():
            break
        started.wait(0.025)
    if not server.started:
        server.should_exit = True
        sock.close()
        raise DeworkerError(
            "the review web server did not start",
            hint="serve it from another terminal instead: `deworker review serve`",
        )
    try:
        yield f"http://{f'[{host}]' if ':' in host else host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

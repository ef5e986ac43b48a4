"""A model endpoint on 127.0.0.1 that speaks the OpenAI chat-completions wire protocol, for tests that run
``deworker`` as a process (the hosted LLM API cannot run here; its wire format can). Defines no tests."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Gets the request body (the JSON text of the chat request), returns the chat completion to answer with.
Answer = Callable[[str], dict[str, Any]]


@contextmanager
def model_endpoint(answer: Answer) -> Iterator[str]:
    """Serve ``POST /v1/chat/completions`` with ``answer`` until the block ends; yields the base URL (``.../v1``)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            data = json.dumps(answer(body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()

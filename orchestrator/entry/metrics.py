"""Prometheus' text exposition format (version 0.0.4) for ``FleetMetrics``: what ``GET /metrics`` of the review
app serves, and ``metrics_server`` (``deworker run --metrics-port``). One ``# HELP`` and ``# TYPE`` line per
family, then one line per sample, label values escaped as the format requires (backslash, double quote, newline).

Must not import the CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from orchestrator.adapters.sql.metrics import FleetMetrics, Metric
from orchestrator.domain.errors import DeworkerError

#: The content type Prometheus expects for this format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def prometheus_text(metrics: list[Metric]) -> str:
    """``metrics`` in the text format, ending with a newline."""
    lines: list[str] = []
    for m in metrics:
        lines.append(f"# HELP {m.name} {m.help}")
        lines.append(f"# TYPE {m.name} {m.kind}")
        for labels, value in m.samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{m.name}{{{text}}} {_number(value)}" if text else f"{m.name} {_number(value)}")
    return "\n".join(lines) + "\n"


@contextmanager
def metrics_server(metrics: FleetMetrics, *, port: int) -> Iterator[int]:
    """Serve ``GET /metrics`` (this format, ``metrics``' snapshot per request) on 127.0.0.1:``port`` in a thread for
    as long as the block runs; yields the port bound (``port`` 0: one the kernel picks). Loopback only and without
    a login: a scraper on another machine goes through ``deworker review serve``'s ``/metrics`` and its token."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            try:
                body = prometheus_text(metrics.snapshot()).encode()
            except DeworkerError as exc:  # the database is down: say so, as a scrape failure
                self.send_error(503, exc.message)
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # scrapes are not events worth a log line
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="deworker-metrics", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()

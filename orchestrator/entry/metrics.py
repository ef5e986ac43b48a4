"""Prometheus' text exposition format (version 0.0.4) for ``FleetMetrics``: what ``GET /metrics`` of the review
app serves. One ``# HELP`` and ``# TYPE`` line per family, then one line per sample, label values escaped as the
format requires (backslash, double quote, newline).

Must not import the CLI.
"""

from __future__ import annotations

from orchestrator.adapters.sql.metrics import Metric

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

"""``GET /metrics`` of the review app: the fleet's counters in Prometheus' text format, read from the database (on
SQLite and PostgreSQL), behind the API token; and the text format itself (families, labels, escaping)."""

from __future__ import annotations

import re
from decimal import Decimal

from agents.config import EndpointLimit
from agents.endpoints import Endpoint
from agents.ports import Usage
from orchestrator.adapters.sql import DbSpendLedger
from orchestrator.adapters.sql.endpoints import DbEndpointGate
from orchestrator.adapters.sql.metrics import Metric
from orchestrator.entry.metrics import prometheus_text
from tests.test_web_api import WebEnv, _bearer, seed_review, web  # noqa: F401  (web is a fixture)


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_are_the_fleets_counters_from_the_database(web: WebEnv) -> None:  # noqa: F811
    client = web.client()
    assert client.get("/metrics").status_code == 401  # the API token, as for /api
    seed_review(web, 1)
    DbSpendLedger(web.engine).record(
        "alice", task="main:1", usage=Usage(prompt_tokens=900, completion_tokens=300, calls=2), cost=Decimal("0.0042")
    )
    gate = DbEndpointGate(web.engine)
    endpoint = Endpoint(key='http://models.example/v1 "m"', limit=EndpointLimit(concurrency=1))
    ticket = gate.enter(endpoint, agent="alice", task="main:1", timeout=1, hold=60)
    assert ticket is not None

    response = client.get("/metrics", headers=_bearer(web))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    assert "# TYPE deworker_tasks gauge" in text and "# TYPE deworker_task_steps_total counter" in text
    got = _samples(text)
    assert got['deworker_tasks{state="AWAITING_REVIEW"}'] == 1 and got['deworker_tasks{state="PAID"}'] == 0
    assert got['deworker_task_steps_total{to_state="CLAIMED"}'] == 1
    assert got['deworker_task_steps_total{to_state="AWAITING_REVIEW"}'] == 1
    assert got['deworker_llm_tokens_total{kind="prompt"}'] == 900 and got["deworker_llm_calls_total"] == 2
    key = 'endpoint="http://models.example/v1 \\"m\\""'  # label values escaped
    assert got[f"deworker_endpoint_requests_total{{{key}}}"] == 1
    assert got[f"deworker_endpoint_slots_in_use{{{key}}}"] == 1
    assert got[f"deworker_endpoint_waiting{{{key}}}"] == 0
    gate.leave(ticket, tokens=1200)
    after = _samples(client.get("/metrics", headers=_bearer(web, "robot2")).text)
    assert after[f"deworker_endpoint_tokens_total{{{key}}}"] == 1200
    assert after[f"deworker_endpoint_slots_in_use{{{key}}}"] == 0


def test_the_text_format() -> None:
    text = prometheus_text(
        [
            Metric("x_total", "counter", "Things.", (((), 3.0),)),
            Metric("y", "gauge", "Levels.", (((("a", 'q"\\\n'),), 0.5),)),
        ]
    )
    assert text == (
        "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n"
        '# HELP y Levels.\n# TYPE y gauge\ny{a="q\\"\\\\\\n"} 0.5\n'
    )
    assert re.fullmatch(r"(?:#[^\n]*\n|[a-z_]+(?:\{[^\n]*\})? [0-9.]+\n)+", text)

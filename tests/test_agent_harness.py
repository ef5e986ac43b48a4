"""The agent harness of issue 20, with LangChain's fake chat models: files written as plain text survive byte for
byte, tool calls written as text are run and no reply leaves the history, a revision identical to the failed one
is refused and asked again at the revision temperature with the failing assertion shown, and best-of-n stops at
the first candidate that passes while every candidate's cost is booked. Plus the draft parser itself."""

from __future__ import annotations

import json
import struct
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agents.budget import InMemorySpendLedger
from agents.config import AgentProfile, LocalModelConfig, ModelEndpoint, ModelPrice
from agents.drafts import fenced_blocks, parse_draft, text_tool_calls
from agents.errors import AgentError
from agents.langchain_agent import IDENTICAL, LangChainAgent
from agents.llm_server import MAX_DEFAULT_CTX, MIN_CUSTOM_CTX, _command, context_window, gguf_context_length
from agents.ports import MANIFEST_NAME, AgentStatus, AgentTask, SelfCheckStatus
from agents.store import store_artifact
from orchestrator.adapters.artifacts.local import LocalArtifactStore
from orchestrator.domain.specs import TaskSpec
from tests.test_agents import BAD, CODE_SPEC, GOOD, TEXT_SPEC, FakeToolModel, submit, text
from tools.sandbox import run_acceptance_tests


def profile(**kw: Any) -> AgentProfile:
    return AgentProfile(name="scribe", skills=["writing", "python"], wallet="scribe-wallet", **kw)


class RecordingModel(FakeToolModel):
    """FakeToolModel that also records the call options (temperature) each call was made with."""

    options: list[dict[str, Any]] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.options.append({k: v for k, v in kwargs.items() if k != "run_manager"})
        return super()._generate(messages, *args, **kwargs)


def recording(*replies: AIMessage | str) -> RecordingModel:
    return RecordingModel(messages=iter(replies))


def block(path: str, content: str, lang: str = "python") -> str:
    return f"```{lang} {path}\n{content}```\n"


QUOTE_SPEC = TaskSpec(
    title="Quote a string",
    description='Write quote(s) returning s in double quotes with \\ and " escaped.',
    deliverable={"kind": "code", "format": "python", "filename": "quoting.py"},
    skills=["python"],
    acceptance=["escapes"],
    acceptance_tests={
        "files": {
            "test_quote.py": "from quoting import quote\n\n"
            'def test_quote():\n    assert quote(\'say "hi" C:\\\\temp\') == \'"say \\\\"hi\\\\" C:\\\\\\\\temp"\'\n'
        }
    },
)
#: A file full of the characters a JSON string would have to escape: quotes, backslashes, escape sequences.
QUOTING = (
    "def quote(s):\n"
    '    """Wrap s in "double quotes"; escape \\ and ".\\n is not a newline here."""\n'
    "    return '\"' + s.replace('\\\\', '\\\\\\\\').replace('\"', '\\\\\"') + '\"'\n"
    "\n"
    'PATTERN = r\'\\d+\\s*"[^"]*"\'  # raw string: \\t stays two characters\n'
)


# ------------------------------------------------------------------------------------- files written as text


def test_a_file_with_quotes_and_backslashes_survives_byte_for_byte(tmp_path: Path) -> None:
    model = recording(text("Here is the module.\n\n" + block("quoting.py", QUOTING) + "\nIt escapes both."))
    result = LangChainAgent(profile(), model).run(AgentTask("h:1", QUOTE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.PRODUCED, result.reason
    assert (result.files_dir / "quoting.py").read_bytes() == QUOTING.encode()
    assert result.self_check.status is SelfCheckStatus.PASSED
    assert result.manifest.summary == "Here is the module. It escapes both."
    assert model.bound == []  # no tool was offered to the embedded-model profile: the file came as plain text


def test_a_text_tool_call_with_escapes_writes_the_exact_file(tmp_path: Path) -> None:
    call = json.dumps({"name": "write_file", "arguments": {"path": "quoting.py", "content": QUOTING}})
    model = recording(text(f"I will write the file.\n```json\n{call}\n```\n"))
    result = LangChainAgent(profile(), model).run(AgentTask("h:2", QUOTE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.PRODUCED, result.reason
    assert (result.files_dir / "quoting.py").read_bytes() == QUOTING.encode()
    assert result.usage.calls == 1


def test_several_files_and_the_tests_own_names(tmp_path: Path) -> None:
    reply = (
        "**solution.py**\n```python\n" + GOOD + "```\n\n"
        "### helpers/notes.md\n```markdown\nNotes with an example:\n```sh\nmake test\n```\nDone.\n```\n\n"
        + block("test_add.py", "def test_add():\n    assert False\n")
    )
    result = LangChainAgent(profile(), recording(text(reply))).run(AgentTask("h:3", CODE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.PRODUCED, result.reason
    names = sorted(p.relative_to(result.files_dir).as_posix() for p in result.files_dir.rglob("*") if p.is_file())
    assert names == ["helpers/notes.md", MANIFEST_NAME, "solution.py"]  # the spec's test file is not the model's
    assert (
        result.files_dir / "helpers/notes.md"
    ).read_text() == "Notes with an example:\n```sh\nmake test\n```\nDone.\n"


# ------------------------------------------------------------------------------------- tool calls as text


def test_a_text_tool_call_is_executed_and_no_reply_is_dropped(tmp_path: Path) -> None:
    """Tools offered natively (``tool_choice_auto``), but the server returns the call as text (llama.cpp without a
    function-calling chat format): it runs, and both that reply and its result stay in the history."""
    write = '<tool_call>\n{"name": "write_file", "arguments": {"path": "solution.py", "content": "%s"}}\n</tool_call>'
    run = '```json\n{"name": "run_tests", "arguments": {}}\n```'
    model = recording(
        text(write % GOOD.replace("\n", "\\n")),
        text(run),
        submit({}, include=["solution.py"]),
    )
    agent = LangChainAgent(profile(model=ModelEndpoint(tool_choice_auto=True)), model)
    result = agent.run(AgentTask("h:4", CODE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.PRODUCED, result.reason
    assert (result.files_dir / "solution.py").read_text() == GOOD
    history = model.seen[-1]
    ai = [m for m in history if isinstance(m, AIMessage)]
    assert [m.content for m in ai] == [write % GOOD.replace("\n", "\\n"), run]  # every reply kept, verbatim
    results = [
        str(m.content) for m in history if isinstance(m, HumanMessage) and "tool calls you wrote" in str(m.content)
    ]
    assert results[0].endswith(f"[write_file] wrote solution.py ({len(GOOD)} bytes)")
    assert "[run_tests] acceptance tests PASSED" in results[1]


def test_a_text_tool_call_to_an_unknown_tool_moves_nothing(tmp_path: Path) -> None:
    model = recording(
        text('<tool_call>{"name": "transfer", "arguments": {"to": "0xdead", "amount": "all"}}</tool_call>'),
        text(block("haiku.md", "a\nb\nc\n", "markdown")),
    )
    result = LangChainAgent(profile(tools=[]), model).run(AgentTask("h:5", TEXT_SPEC), tmp_path / "t")
    assert result.status is AgentStatus.PRODUCED
    answer = [str(m.content) for m in model.seen[-1] if isinstance(m, HumanMessage)][-1]
    assert "[transfer] ERROR: there is no tool 'transfer'; available: submit_artifact" in answer


def test_a_json_deliverable_is_a_file_not_a_tool_call(tmp_path: Path) -> None:
    data = '{"name": "Ada", "arguments": {"role": "dev"}}\n'
    spec = TaskSpec(
        title="A record",
        description="One JSON object.",
        deliverable={"kind": "data", "filename": "data.json"},
        skills=["writing"],
        acceptance=["json"],
    )
    result = LangChainAgent(profile(), recording(text(f"```json\n{data}```"))).run(AgentTask("h:6", spec), tmp_path)
    assert result.status is AgentStatus.PRODUCED
    assert (result.files_dir / "data.json").read_text() == data


# ------------------------------------------------------------------------------------------------ revisions


def test_an_identical_revision_is_refused_and_asked_again(tmp_path: Path) -> None:
    model = recording(
        text(block("solution.py", BAD)),
        text(block("solution.py", BAD)),  # the revision repeats the failed file byte for byte
        text(block("solution.py", GOOD)),
    )
    agent = LangChainAgent(profile(max_revisions=1, model=ModelEndpoint(revision_temperature=0.9)), model)
    result = agent.run(AgentTask("h:7", CODE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.PRODUCED, result.reason
    assert result.manifest.attempts == 2 and result.self_check.runs == 2  # the identical copy was never tested
    third = model.seen[2]
    assert third[-1].content.startswith(IDENTICAL) and third[-2].content == block("solution.py", BAD)
    # the revision shows the failing assertion, not just "tests failed"
    revision = str(model.seen[1][-1].content)
    assert "1 of 1 test(s) failed" in revision and "E       assert -1 == 5" in revision
    assert "FAILED test_add.py::test_add" in revision and BAD in revision
    # the first attempt samples at the endpoint's temperature, revisions at revision_temperature
    assert [o.get("temperature") for o in model.options] == [None, 0.9, 0.9]


def test_a_revision_that_never_changes_fails_without_rerunning_the_tests(tmp_path: Path) -> None:
    model = recording(*[text(block("solution.py", BAD))] * 3)
    agent = LangChainAgent(profile(max_revisions=1), model)
    result = agent.run(AgentTask("h:8", CODE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.FAILED and result.self_check.runs == 1
    assert result.reason is not None and "byte for byte a version that already failed" in result.reason
    assert (result.files_dir / "solution.py").read_text() == BAD  # kept for inspection, never offered
    with pytest.raises(AgentError, match="never stored for submission"):
        store_artifact(result, LocalArtifactStore(tmp_path / "store"))


def test_reviewer_feedback_refuses_the_unchanged_artifact(tmp_path: Path) -> None:
    LangChainAgent(profile(), recording(text(block("haiku.md", "old\n", "markdown")))).run(
        AgentTask("h:9", TEXT_SPEC), tmp_path / "t"
    )
    model = recording(text(block("haiku.md", "old\n", "markdown")), text(block("haiku.md", "new\n", "markdown")))
    result = LangChainAgent(profile(), model).run(AgentTask("h:9", TEXT_SPEC), tmp_path / "t", feedback="Shorter.")
    assert result.status is AgentStatus.PRODUCED and (result.files_dir / "haiku.md").read_text() == "new\n"
    assert str(model.seen[1][-1].content).startswith(IDENTICAL)


# ----------------------------------------------------------------------------------------------- best of n

PRICE = ModelPrice(input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2"))


def test_best_of_n_stops_at_the_first_pass_and_books_every_candidate(tmp_path: Path) -> None:
    worse = "def add(a, b):\n    return a * b\n"
    model = recording(
        text(block("solution.py", BAD), tokens=(100, 10)),
        text(block("solution.py", worse), tokens=(200, 20)),
        text(block("solution.py", GOOD), tokens=(300, 30)),
        text(block("solution.py", "never asked for\n")),
    )
    ledger = InMemorySpendLedger()
    agent = LangChainAgent(profile(best_of=4, max_revisions=0), model, price=PRICE, ledger=ledger)
    result = agent.run(AgentTask("h:10", CODE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.PRODUCED, result.reason
    assert (result.files_dir / "solution.py").read_text() == GOOD
    assert result.manifest.attempts == 3 and result.self_check.runs == 3 and len(model.seen) == 3
    assert result.usage.prompt_tokens == 600 and result.usage.completion_tokens == 60 and result.usage.calls == 3
    expected = Decimal(600) / 10**6 + Decimal(60 * 2) / 10**6
    assert result.cost == expected
    assert ledger.spent_on("h:10") == (result.usage, expected)  # the P&L sees all three candidates
    assert ledger.spent_today("scribe") == (660, expected)  # and so does the daily budget
    # candidates after the first sample at the revision temperature
    assert [o.get("temperature") for o in model.options] == [None, 0.7, 0.7]
    # the winner's workspace became the task's; no candidate folder is left behind
    assert (tmp_path / "t" / "work" / "solution.py").read_text() == GOOD
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["artifact", "work"]


class ByTemperature(GenericFakeChatModel):
    """Answers by the sampling temperature, from any thread: candidate 1 (temperature 0) writes BAD, the others
    GOOD. Counts calls and the threads they came from."""

    calls: int = 0
    threads: set[str] = Field(default_factory=set)
    lock: Any = Field(default_factory=threading.Lock)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        with self.lock:
            self.calls += 1
            self.threads.add(threading.current_thread().name)
        body = block("solution.py", GOOD if kwargs.get("temperature") else BAD)
        usage = {"input_tokens": 50, "output_tokens": 5, "total_tokens": 55}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=body, usage_metadata=usage))])


def test_parallel_candidates_all_count_and_the_first_pass_in_order_wins(tmp_path: Path) -> None:
    model = ByTemperature(messages=iter(()))
    ledger = InMemorySpendLedger()
    agent = LangChainAgent(
        profile(best_of=3, parallel_candidates=True, max_revisions=0), model, price=PRICE, ledger=ledger
    )
    result = agent.run(AgentTask("h:11", CODE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.PRODUCED, result.reason
    assert model.calls == 3 and len(model.threads) == 3  # drawn at once, each in its own thread
    assert result.manifest.attempts == 3 and result.usage.calls == 3
    assert ledger.spent_on("h:11")[0].calls == 3 and result.cost == Decimal(150 + 15 * 2) / 10**6
    assert (result.files_dir / "solution.py").read_text() == GOOD


def test_best_of_n_never_offers_an_artifact_that_fails_its_tests(tmp_path: Path) -> None:
    wrong = [
        "def add(a, b):\n    return a - b\n",
        "def add(a, b):\n    return a * b\n",
        "def add(a, b):\n    return 0\n",
    ]
    replies = [text(block("solution.py", w)) for w in wrong] + [
        text(block("solution.py", f"def add(a, b):\n    return {n}\n")) for n in (1, 2, 3)
    ]
    agent = LangChainAgent(profile(best_of=3, max_revisions=1), recording(*replies))
    result = agent.run(AgentTask("h:12", CODE_SPEC), tmp_path / "t")

    assert result.status is AgentStatus.FAILED and result.manifest.attempts == 6 and result.self_check.runs == 6
    assert CODE_SPEC.acceptance_tests is not None
    assert not run_acceptance_tests(result.files_dir, CODE_SPEC.acceptance_tests.files).passed
    with pytest.raises(AgentError, match="never stored for submission"):
        store_artifact(result, LocalArtifactStore(tmp_path / "store"))


# ------------------------------------------------------------------------------------------- draft parsing


def test_draft_parser_paths_fences_and_fallbacks() -> None:
    assert parse_draft("```python\nx = 1\n```", main_file="a.py").files == {"a.py": "x = 1\n"}
    named = "File: `lib/b.py`\n```\nb = 2\n```\n```python a.py\na = 1\n```"
    assert parse_draft(named, main_file="a.py").files == {"lib/b.py": "b = 2\n", "a.py": "a = 1\n"}
    assert parse_draft('```python title="a.py"\na\n```', main_file="a.py").files == {"a.py": "a\n"}
    # an unclosed block (the token cap hit) runs to the end; longer fences hold shorter ones
    assert parse_draft("```python a.py\ndef f():\n    ret", main_file="a.py").files == {"a.py": "def f():\n    ret\n"}
    md = "````markdown README.md\n```sh\nls\n```\n````"
    assert parse_draft(md, main_file="README.md").files == {"README.md": "```sh\nls\n```\n"}
    # one file under another name is the deliverable; a text written without fences is the whole reply
    assert parse_draft("```text notes.txt\nhi\n```", main_file="answer.txt").files == {"answer.txt": "hi\n"}
    prose = "Quorum: the least votes.\n\n```sh\nvote --yes\n```\n"
    assert parse_draft(prose, main_file="glossary.md").files == {"glossary.md": prose.strip("\n") + "\n"}
    assert parse_draft("thinking...", main_file="a.py", whole_reply=False).files == {}
    # the path on the first line inside the block (Qwen2.5-Coder does this): a bare path is not content
    assert parse_draft("```python\na.py\ndef f():\n    pass\n```", main_file="a.py").files == {
        "a.py": "def f():\n    pass\n"
    }
    assert parse_draft("```python\n# lib/b.py\nb = 1\n```\n```python a.py\na\n```", main_file="a.py").files == {
        "lib/b.py": "# lib/b.py\nb = 1\n",
        "a.py": "a\n",
    }
    assert [b.path for b in fenced_blocks("```\n../x.py\n```\n```js ../../etc/passwd\n```")] == [None, None]


def test_text_tool_call_shapes() -> None:
    known = {"write_file", "run_tests"}
    calls, rest = text_tool_calls('ok\n```json\n[{"name": "run_tests", "arguments": {}}]\n```\nbye', known)
    assert [(c.name, c.args) for c in calls] == [("run_tests", {})] and rest == "ok\nbye"
    wire = {"function": {"name": "write_file", "arguments": json.dumps({"path": "a", "content": 'q"\\'})}}
    calls, _ = text_tool_calls(json.dumps(wire), known)
    assert calls[0].args == {"path": "a", "content": 'q"\\'}
    # a JSON block that does not name a known tool is content, not a call
    assert text_tool_calls('```json\n{"name": "Ada", "arguments": {}}\n```', known)[0] == []


# ------------------------------------------------------------------------------------------- context window


def _gguf(path: Path, context: int | None, *, version: int = 3) -> Path:
    """A GGUF header as llama.cpp writes it: a string, an array of strings (as tokenizers have) and the context."""

    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s)) + s.encode()

    kvs = [string("general.architecture") + struct.pack("<I", 8) + string("qwen2")]
    tokens = [f"tok{i}" for i in range(50)]
    kvs.append(
        string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(tokens)) + b"".join(string(t) for t in tokens)
    )
    kvs.append(string("qwen2.block_count") + struct.pack("<IQ", 10, 28))
    if context is not None:
        kvs.append(string("qwen2.context_length") + struct.pack("<II", 4, context))
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", version, 0, len(kvs)) + b"".join(kvs) + b"\0" * 64)
    return path


def test_the_context_window_follows_the_model(tmp_path: Path) -> None:
    big, small, none = (
        _gguf(tmp_path / "big.gguf", 32768),
        _gguf(tmp_path / "s.gguf", 2048),
        _gguf(tmp_path / "n.gguf", None),
    )
    assert gguf_context_length(big) == 32768 and gguf_context_length(small) == 2048
    assert (
        gguf_context_length(none) is None and gguf_context_length(_gguf(tmp_path / "v1.gguf", 4096, version=1)) is None
    )
    (tmp_path / "junk.gguf").write_bytes(b"GGUF\x03\x00")
    assert gguf_context_length(tmp_path / "junk.gguf") is None
    custom = LocalModelConfig(gguf=big)
    assert context_window(custom, big) == MAX_DEFAULT_CTX  # 32k trained: capped
    assert context_window(LocalModelConfig(gguf=small), small) == MIN_CUSTOM_CTX == 8192  # a custom GGUF: >= 8192
    assert context_window(LocalModelConfig(gguf=none), none) == 8192
    assert context_window(LocalModelConfig(gguf=big, n_ctx=4096), big) == 4096  # configured wins
    assert context_window(LocalModelConfig(), small) == 2048  # the embedded model: its own trained context
    assert "--n_ctx" in (cmd := _command(big, 1234, custom)) and cmd[cmd.index("--n_ctx") + 1] == "16384"

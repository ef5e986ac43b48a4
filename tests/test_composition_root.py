"""One composition root: outside ``orchestrator/entry/bootstrap.py`` (and the adapters, which build their own
parts), no module of ``orchestrator/`` constructs an adapter or the service; they get them from a ``Runtime``."""

from __future__ import annotations

import re
from pathlib import Path

ORCHESTRATOR = Path(__file__).resolve().parent.parent / "orchestrator"
#: The constructors only the composition root calls.
CONSTRUCTORS = (
    "EthTesterChain",
    "RpcChain",
    "MultiRpcChain",
    "LocalArtifactStore",
    "RemoteArtifactStore",
    "KuboRpc",
    "TrustlessGateways",
    "OnchainTaskBoard",
    "Store",
    "UserStore",
    "Queries",
    "make_engine",
    "WalletFleet",
    "Keystore",
    "Journal",
    "DbSpendLedger",
    "LangChainAgent",
    "agent_from_profile",
    "LocalModelServer",
    "Orchestrator",
    "ServiceRunner",
)
CALL = re.compile(r"(?<![\w.])(" + "|".join(CONSTRUCTORS) + r")\(")
#: Where a constructor call outside the root is the point of the module, with the reason.
ALLOWED = {
    # the DAO's own client reads the board it posts to (the DAO's side, not the service's graph)
    ("entry/dao.py", "OnchainTaskBoard"),
    # `deworker model serve` runs the model server in the foreground: the server is what the command is
    ("entry/cli/model.py", "LocalModelServer"),
    # the web app builds its read views over the engine it is given
    ("entry/web/app.py", "Queries"),
}


def constructor_calls(root: Path = ORCHESTRATOR) -> list[tuple[str, int, str]]:
    """(path under ``orchestrator/``, line, constructor) of every adapter constructor called outside
    ``entry/bootstrap.py`` and ``adapters/``; comments, docstring examples and ``class X(`` lines are not calls."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "entry/bootstrap.py" or rel.startswith("adapters/"):
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.lstrip().startswith(("class ", "def ", "``", ">>>")):
                continue
            for match in CALL.finditer(code):
                if "``" in code[: match.start()]:
                    continue  # a name in a docstring, not a call
                if (rel, match.group(1)) not in ALLOWED:
                    found.append((rel, number, match.group(1)))
    return found


def test_nothing_outside_the_composition_root_constructs_adapters() -> None:
    assert constructor_calls() == []


def test_the_check_finds_a_constructor_call(tmp_path: Path) -> None:
    """The check itself: a module that builds its own store is reported, with the line."""
    (tmp_path / "entry").mkdir()
    (tmp_path / "entry" / "wiring.py").write_text(
        "from x import Store\n\n\ndef build(engine):\n    return Store(engine)  # its own database\n", "utf-8"
    )
    (tmp_path / "entry" / "bootstrap.py").write_text("db = Store(engine)\n", "utf-8")
    assert constructor_calls(tmp_path) == [("entry/wiring.py", 5, "Store")]

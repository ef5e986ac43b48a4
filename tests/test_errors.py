"""The exception tree drawn in ``orchestrator.domain.errors`` against the classes the project defines.

Every project module is imported, and every exception class defined in one is walked (``__subclasses__`` from
``BaseException``, so a class is found wherever it lives and whatever library class it derives from). The test
fails when a project exception is not a ``DeworkerError``, when one is missing from the drawing or drawn under
another base, in another module or with another ``retryable``, and when the drawing names a class that does not
exist. A new error class is covered by drawing it; nothing here lists classes.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType

import pytest

import orchestrator.domain.errors
from orchestrator.domain.errors import DeworkerError

#: The project's top-level packages (import-linter's ``root_packages``).
PACKAGES = ("orchestrator", "agents", "wallets", "tools", "prompts", "contracts")

#: Project exceptions that must not be ``DeworkerError``s, each with the reason. None today.
OUTSIDE_THE_ROOT: dict[str, str] = {}

#: One node of the drawing: tree prefix, branch, class name, ``[module]``, description.
_NODE = re.compile(
    r"^(?P<lead>(?:[│ ]   )*)(?P<branch>[├└]── )?(?P<name>[A-Za-z_]\w*) \[(?P<module>[\w.]+)\](?P<text>.*)$"
)


@dataclass(frozen=True)
class Drawn:
    name: str
    module: str
    parent: str | None
    retryable: bool


def drawing(doc: str) -> dict[str, Drawn]:
    """The nodes of the first ``::`` block of ``doc`` that starts with a root line; continuation lines are skipped."""
    lines = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    nodes: dict[str, Drawn] = {}
    path: list[str] = []
    for line in (raw.removeprefix("    ") for raw in lines):
        found = _NODE.match(line)
        if found is None or (not found["branch"] and (found["lead"] or path)):
            continue  # a description wrapped onto the next line
        depth = len(found["lead"]) // 4 + (1 if found["branch"] else 0)
        assert depth <= len(path), f"drawn below nothing: {line!r}"
        del path[depth:]
        name = found["name"]
        assert name not in nodes, f"{name} is drawn twice"
        text = found["text"].strip()
        nodes[name] = Drawn(name, found["module"], path[-1] if path else None, text.startswith("retryable"))
        path.append(name)
    return nodes


def project_modules() -> list[ModuleType]:
    modules = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{top}."):
            if info.name.rsplit(".", 1)[-1] != "__main__":
                modules.append(importlib.import_module(info.name))
    return modules


def project_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a project module, however deep its base."""
    project_modules()
    found: list[type[BaseException]] = []
    todo: list[type[BaseException]] = [BaseException]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in found and sub not in todo:
                todo.append(sub)
                if sub.__module__.split(".", 1)[0] in PACKAGES:
                    found.append(sub)
    return sorted(found, key=lambda c: (c.__module__, c.__qualname__))


DRAWN = drawing(orchestrator.domain.errors.__doc__ or "")
CLASSES = project_exceptions()
UNDER_ROOT = [cls for cls in CLASSES if issubclass(cls, DeworkerError)]


def _id(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_the_drawing_is_read() -> None:
    """The parser sees the tree (a broken drawing must not pass as an empty one)."""
    assert DRAWN["DeworkerError"] == Drawn("DeworkerError", "orchestrator.domain.errors", None, False)
    assert DRAWN["ChainUnavailable"].parent == "ChainError"
    assert DRAWN["ChainUnavailable"].retryable
    assert DRAWN["NonceDrift"].parent == "JournalError"
    assert len(DRAWN) >= 50


def test_the_walk_finds_the_classes_of_every_layer() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"ConfigError", "StoreError", "WalletError", "AgentError", "NonceTooLow", "LoginRequired"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=_id)
def test_every_project_exception_is_a_deworker_error(cls: type[BaseException]) -> None:
    if cls.__name__ in OUTSIDE_THE_ROOT:
        assert not issubclass(cls, DeworkerError), f"{_id(cls)} is under the root now: drop it from the allow-list"
        return
    assert issubclass(cls, DeworkerError), f"{_id(cls)} derives from {cls.__mro__[1].__name__}, not DeworkerError"


@pytest.mark.parametrize("cls", UNDER_ROOT, ids=_id)
def test_every_class_under_the_root_is_drawn_where_it_is(cls: type[DeworkerError]) -> None:
    where = "the drawing in orchestrator/domain/errors.py"
    drawn = DRAWN.get(cls.__name__)
    assert drawn is not None, f"{_id(cls)} is missing from {where}"
    assert drawn.module == cls.__module__, f"{cls.__name__} is drawn in {drawn.module}, defined in {cls.__module__}"
    base = cls.__bases__[0]
    parent = None if cls is DeworkerError else base.__name__
    assert drawn.parent == parent, f"{cls.__name__} is drawn under {drawn.parent}, derives from {parent}"
    assert drawn.retryable == cls.retryable, f"{cls.__name__}: drawn retryable={drawn.retryable}, is {cls.retryable}"


def test_the_drawing_names_only_classes_that_exist() -> None:
    defined = {(cls.__name__, cls.__module__) for cls in UNDER_ROOT}
    ghosts = sorted(f"{d.module}.{d.name}" for d in DRAWN.values() if (d.name, d.module) not in defined)
    assert ghosts == [], f"drawn but not defined (or not a DeworkerError): {ghosts}"


def test_class_names_are_unique() -> None:
    """The drawing names classes without their module, so two with one name would be ambiguous."""
    names = [cls.__name__ for cls in UNDER_ROOT]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_the_tree_is_drawn_once() -> None:
    """No other module draws a branch of its own (they went stale: three drawings, classes in none)."""
    drawn_elsewhere = [
        m.__name__
        for m in project_modules()
        if m is not orchestrator.domain.errors and "└── " in (m.__doc__ or "") and "Error" in (m.__doc__ or "")
    ]
    assert drawn_elsewhere == []

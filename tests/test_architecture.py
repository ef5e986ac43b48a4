"""The shape of the code, checked: a contract's revert reasons are read only by the board and chain adapters, and
the import-linter contracts of ``make lint`` hold (and catch a wrong import)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Where a contract's revert reason may be written: the adapters that talk to the contracts.
MAY_READ_REVERTS = ("orchestrator/adapters/boards/", "orchestrator/adapters/chain/")
PACKAGES = ("orchestrator", "agents", "wallets", "tools", "prompts")


def revert_reasons() -> set[str]:
    """Every revert reason our contracts can give (``assert cond, "reason"`` and ``raise "reason"``)."""
    reasons: set[str] = set()
    for source in (REPO / "contracts").glob("*.vy"):
        text = source.read_text()
        reasons.update(re.findall(r'assert [^\n]*?,\s*"([^"]+)"', text))
        reasons.update(re.findall(r'raise\s+"([^"]+)"', text))
    return reasons


def string_literals(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module that code can compare with, docstrings left out (prose, not matching)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_revert_reason_is_matched_above_the_adapters() -> None:
    reasons = revert_reasons()
    assert {"task not open", "claim expired", "not claimant", "unknown task"} <= reasons  # the scan finds them
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith(MAY_READ_REVERTS):
                continue
            for line, value in string_literals(path):
                found.extend(f"{rel}:{line}: {reason!r}" for reason in reasons if reason in value)
    assert found == [], "revert reasons matched outside the board and chain adapters:\n" + "\n".join(found)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(exe), "--no-logo", "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages and pyproject.toml, for breaking on purpose."""
    root = tmp_path_factory.mktemp("scratch")
    for package in (*PACKAGES, "contracts"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "build"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_import_contracts_hold_and_a_wrong_import_breaks_them(scratch: Path) -> None:
    kept = lint_imports(scratch)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "0 broken" in kept.stdout
    lifecycle = scratch / "orchestrator" / "domain" / "lifecycle.py"
    lifecycle.write_text(lifecycle.read_text() + "\nimport sqlalchemy  # noqa: E402,F401\n")
    broken = lint_imports(scratch)
    assert broken.returncode != 0
    assert "the domain and the ports import no adapter library" in broken.stdout
    assert "orchestrator.domain.lifecycle -> sqlalchemy" in broken.stdout

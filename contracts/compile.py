"""Compile the contracts (Vyper, and the DAO's Solidity: ``contracts/solidity.py``) and manage their build artifacts.

Usage::

    python -m contracts.compile           # (re)write contracts/build/<Name>.json
    python -m contracts.compile --check   # exit 1 if contracts/build differs from a fresh compile

Every ``*.vy`` file under ``contracts/`` (including ``contracts/test/``) is compiled with the vyper
Python API (snekmate resolved from the installed package) for the pinned EVM version, and written as
``contracts/build/<Name>.json`` = ``{"abi", "bytecode", "compiler", "contractName", "evmVersion"}``
(sorted keys, 2-space indent, trailing newline), where ``bytecode`` is the 0x-prefixed deployment
(init) code. The Solidity artifacts (Governor, TimelockController, DAO token) are compiled by the npm solc that
``make solc-oz`` installs (``contracts/solidity.py``) and written and checked with the Vyper ones.

Only :func:`compile_all` needs vyper (a dev dependency); :func:`load_artifact` only reads JSON, so the
runtime code can use it without the compiler installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "BUILD_DIR",
    "CONTRACTS_DIR",
    "EVM_VERSION",
    "check",
    "compile_all",
    "load_artifact",
    "main",
    "render_artifact",
    "source_files",
    "write_all",
]

CONTRACTS_DIR = Path(__file__).resolve().parent
BUILD_DIR = CONTRACTS_DIR / "build"
EVM_VERSION = "prague"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def source_files() -> list[Path]:
    """All ``.vy`` sources under ``contracts/`` (build output excluded), sorted by path."""
    files = [p for p in CONTRACTS_DIR.rglob("*.vy") if BUILD_DIR not in p.parents]
    return sorted(files, key=lambda p: p.relative_to(CONTRACTS_DIR).as_posix())


def _search_paths() -> list[Path]:
    """Vyper import search paths: the contracts dir and the directory holding the snekmate package."""
    paths = [CONTRACTS_DIR]
    spec = importlib.util.find_spec("snekmate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("snekmate is not installed (pip install 'snekmate==0.1.2')")
    for location in spec.submodule_search_locations:
        parent = Path(location).resolve().parent
        if parent not in paths:
            paths.append(parent)
    return paths


def compile_all() -> dict[str, dict[str, Any]]:
    """Compile every contract; returns ``{contract name: artifact dict}`` (name = file stem)."""
    import vyper
    from vyper.compiler.input_bundle import FileInput, FilesystemInputBundle
    from vyper.compiler.settings import Settings

    bundle = FilesystemInputBundle(_search_paths())
    settings = Settings(evm_version=EVM_VERSION)
    compiler = f"vyper {vyper.__version__}"
    artifacts: dict[str, dict[str, Any]] = {}
    for path in source_files():
        name = path.stem
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid contract file name: {path}")
        if name in artifacts:
            raise ValueError(f"two contracts named {name!r}: contract names must be unique")
        file_input = bundle.load_file(path.relative_to(CONTRACTS_DIR))
        assert isinstance(file_input, FileInput)
        out = vyper.compile_from_file_input(
            file_input,
            input_bundle=bundle,
            settings=settings,
            output_formats=["abi", "bytecode"],
        )
        artifacts[name] = {
            "abi": out["abi"],
            "bytecode": out["bytecode"] if out["bytecode"].startswith("0x") else "0x" + out["bytecode"],
            "compiler": compiler,
            "contractName": name,
            "evmVersion": EVM_VERSION,
        }
    from contracts.solidity import compile_solidity

    for name, artifact in compile_solidity().items():
        if name in artifacts:
            raise ValueError(f"two contracts named {name!r}: contract names must be unique")
        artifacts[name] = artifact
    return artifacts


def render_artifact(artifact: dict[str, Any]) -> str:
    """The exact file text for an artifact (stable formatting)."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def _artifact_path(name: str) -> Path:
    return BUILD_DIR / f"{name}.json"


def write_all(artifacts: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write the artifacts (compiling if not given); returns the files written or changed."""
    artifacts = compile_all() if artifacts is None else artifacts
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for name, artifact in sorted(artifacts.items()):
        path = _artifact_path(name)
        text = render_artifact(artifact)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def check(artifacts: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Compare ``contracts/build`` with a fresh compile; returns the differing/missing/stale file names."""
    artifacts = compile_all() if artifacts is None else artifacts
    problems: list[str] = []
    for name, artifact in sorted(artifacts.items()):
        path = _artifact_path(name)
        if not path.exists():
            problems.append(f"{path.name} (missing)")
        elif path.read_text(encoding="utf-8") != render_artifact(artifact):
            problems.append(f"{path.name} (differs)")
    if BUILD_DIR.is_dir():
        for path in sorted(BUILD_DIR.glob("*.json")):
            if path.stem not in artifacts:
                problems.append(f"{path.name} (stale: no source)")
    return problems


def load_artifact(name: str) -> dict[str, Any]:
    """Read the committed artifact ``contracts/build/<name>.json`` (no compiler needed)."""
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid contract name: {name!r}")
    resource = resources.files("contracts").joinpath("build", f"{name}.json")
    if not resource.is_file():
        raise FileNotFoundError(f"no build artifact for contract {name!r} (run: python -m contracts.compile)")
    data = json.loads(resource.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"malformed artifact for contract {name!r}")
    return data


def _display(path: Path) -> str:
    try:
        return path.relative_to(CONTRACTS_DIR.parent).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.compile", description="Compile the Vyper contracts into contracts/build."
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if contracts/build differs from a fresh compile")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        if problems:
            print("contracts/build is out of date:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print("contracts/build is up to date")
        return 0
    changed = write_all()
    for path in changed:
        print(f"wrote {_display(path)}")
    if not changed:
        print("contracts/build already up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

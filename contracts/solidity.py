"""Compile the Solidity contracts (the DAO's OpenZeppelin Governor, TimelockController and voting token).

The compiler is npm ``solc`` 0.8.37 and the sources are npm ``@openzeppelin/contracts`` 5.7.0, both pinned in
``contracts/governor/package.json`` and installed by ``make solc-oz`` into the git-ignored ``.tools/solc-oz``
(no compiler is ever downloaded at run time). Our own sources are ``contracts/governor/*.sol``; every import is
resolved here, from that folder or from the installed ``@openzeppelin/contracts``, and passed to ``solcjs
--standard-json`` as file contents, so the compile reads nothing else and needs no network.

Artifacts have the Vyper contracts' shape (``{"abi", "bytecode", "compiler", "contractName", "evmVersion"}``) and
are written and checked by ``python -m contracts.compile`` with them. The EVM version is pinned to the one both
chains here run (``prague``: py-evm's newest fork and anvil's default), not solc's default ``osaka``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from orchestrator.domain.errors import DeworkerError

__all__ = [
    "OZ_VERSION",
    "SOLC_VERSION",
    "SolidityToolchainMissing",
    "compile_solidity",
    "solidity_sources",
    "toolchain_dir",
]

CONTRACTS_DIR = Path(__file__).resolve().parent
SOURCE_DIR = CONTRACTS_DIR / "governor"
SOLC_VERSION = "0.8.37"
OZ_VERSION = "5.7.0"
EVM_VERSION = "prague"
#: contracts whose artifacts are built: ours, and OpenZeppelin's concrete TimelockController
TARGETS = {
    "DeworkerGovernor": "governor/DeworkerGovernor.sol",
    "DaoToken": "governor/DaoToken.sol",
    "TimelockController": "@openzeppelin/contracts/governance/TimelockController.sol",
}
OPTIMIZER_RUNS = 200
TOOLCHAIN_ENV = "DEWORKER_SOLC_OZ"

_NODE_COMPILE = (
    "const solc = require(process.argv[1]); const fs = require('fs');"
    " fs.writeFileSync(process.argv[2], solc.compile(fs.readFileSync(0, 'utf8')));"
)
_IMPORT_RE = re.compile(r"""^\s*import\s+(?:[^"']*\bfrom\s+)?["']([^"']+)["']\s*;""", re.MULTILINE)


class SolidityToolchainMissing(DeworkerError):
    """npm solc / @openzeppelin/contracts are not installed where the build expects them."""


def toolchain_dir() -> Path:
    """Where ``make solc-oz`` installs the pinned npm packages (``$DEWORKER_SOLC_OZ`` overrides)."""
    override = os.environ.get(TOOLCHAIN_ENV)
    return Path(override) if override else CONTRACTS_DIR.parent / ".tools" / "solc-oz"


def solidity_sources() -> list[Path]:
    """Our Solidity sources, sorted."""
    return sorted(SOURCE_DIR.glob("*.sol"))


def _read_source(unit: str, modules: Path) -> str:
    if unit.startswith("@openzeppelin/contracts/"):
        path = modules / unit
    elif unit.startswith("governor/"):
        path = CONTRACTS_DIR / unit
    else:
        raise ValueError(f"unsupported Solidity import {unit!r} (only governor/ and @openzeppelin/contracts/)")
    return path.read_text(encoding="utf-8")


def _resolve(unit: str, target: str) -> str:
    if target.startswith("."):
        return os.path.normpath(os.path.join(os.path.dirname(unit), target)).replace(os.sep, "/")
    return target


def _collect(modules: Path) -> dict[str, str]:
    """Every source unit the targets need, by unit name, with its content."""
    sources: dict[str, str] = {}
    pending = [*TARGETS.values(), *(f"governor/{p.name}" for p in solidity_sources())]
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        sources[unit] = _read_source(unit, modules)
        pending.extend(_resolve(unit, target) for target in _IMPORT_RE.findall(sources[unit]))
    return dict(sorted(sources.items()))


def _check_versions(base: Path) -> None:
    oz_package = base / "node_modules" / "@openzeppelin" / "contracts" / "package.json"
    oz = json.loads(oz_package.read_text(encoding="utf-8")).get("version")
    if oz != OZ_VERSION:
        raise SolidityToolchainMissing(f"{oz_package} is version {oz}, expected {OZ_VERSION} (run: make solc-oz)")
    solc_package = base / "node_modules" / "solc" / "package.json"
    solc = json.loads(solc_package.read_text(encoding="utf-8")).get("version")
    if solc != SOLC_VERSION:
        raise SolidityToolchainMissing(f"{solc_package} is version {solc}, expected {SOLC_VERSION} (run: make solc-oz)")


def compile_solidity() -> dict[str, dict[str, Any]]:
    """Compile the targets; returns ``{contract name: artifact dict}``."""
    base = toolchain_dir()
    solcjs = base / "node_modules" / "solc" / "index.js"
    node = shutil.which("node")
    if node is None or not solcjs.is_file():
        raise SolidityToolchainMissing(
            f"the Solidity toolchain is not installed in {base} (node: {node or 'missing'}); run: make solc-oz"
        )
    _check_versions(base)
    sources = _collect(base / "node_modules")
    request = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "metadata": {"bytecodeHash": "none", "appendCBOR": False},  # byte-identical across machines
            "outputSelection": {unit: {name: ["abi", "evm.bytecode.object"]} for name, unit in TARGETS.items()},
        },
    }
    # solc's own JS API, output to a file: the solcjs CLI exits before a large stdout pipe is flushed
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "output.json"
        done = subprocess.run(
            [node, "-e", _NODE_COMPILE, str(base / "node_modules" / "solc"), str(out)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"solc failed ({done.returncode}): {done.stderr.strip()[:2000]}")
        output = json.loads(out.read_text(encoding="utf-8"))
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("solc: " + "\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    artifacts: dict[str, dict[str, Any]] = {}
    for name, unit in TARGETS.items():
        contract = output["contracts"][unit][name]
        artifacts[name] = {
            "abi": contract["abi"],
            "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
            "compiler": f"solc {SOLC_VERSION} (npm), @openzeppelin/contracts {OZ_VERSION}",
            "contractName": name,
            "evmVersion": EVM_VERSION,
        }
    return artifacts

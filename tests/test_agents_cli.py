"""``deworker model serve`` takes its settings from the config's ``agents.local_model`` section, each command-line
option overriding one key. These tests start no server (``tests/test_llm_server.py`` starts a real one)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.config import LocalModelConfig
from agents.errors import LocalModelError
from agents.llm_server import STATE_FILE
from orchestrator.domain.errors import ConfigError
from orchestrator.entry.cli.main import app
from orchestrator.entry.cli.model import effective_local_model
from orchestrator.entry.config import load_config


def _config_file(tmp_path: Path, local_model: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\nagents:\n  local_model:\n{local_model}", encoding="utf-8")
    return path


def test_the_config_section_is_the_base_and_options_override_it(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "    gguf: /models/big.gguf\n    n_ctx: 4096\n    n_threads: 2\n    port: 8181\n")
    base = load_config(path, environ={}).agents.local_model
    assert base == LocalModelConfig(gguf=Path("/models/big.gguf"), n_ctx=4096, n_threads=2, port=8181)

    assert effective_local_model(base) == base
    cfg = effective_local_model(base, n_ctx=1024, port=0)
    assert cfg == LocalModelConfig(gguf=Path("/models/big.gguf"), n_ctx=1024, n_threads=2, port=0)
    assert effective_local_model(base, gguf=Path("/other.gguf")).gguf == Path("/other.gguf")
    with pytest.raises(ConfigError, match="--port") as info:
        effective_local_model(base, port=70_000)
    assert info.value.key == "agents.local_model.port"


def test_model_serve_uses_the_loaded_config(tmp_path: Path) -> None:
    """The GGUF named in the config file is the one the server would load; ``--gguf`` replaces it. Both paths are
    missing on purpose, so the command stops before starting anything, naming the file it was told to use."""
    path = _config_file(tmp_path, f"    gguf: {tmp_path / 'from-config.gguf'}\n")
    runner = CliRunner()
    result = runner.invoke(app, ["--config", str(path), "model", "serve", "--detach"])
    assert isinstance(result.exception, LocalModelError)
    assert f"GGUF file {tmp_path / 'from-config.gguf'} not found" in str(result.exception)

    flag = tmp_path / "from-flag.gguf"
    result = runner.invoke(app, ["--config", str(path), "model", "serve", "--gguf", str(flag), "--detach"])
    assert isinstance(result.exception, LocalModelError) and f"GGUF file {flag} not found" in str(result.exception)


def test_model_status_defaults_to_the_config_data_dir(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "    n_ctx: 2048\n")
    runner = CliRunner()
    result = runner.invoke(app, ["--config", str(path), "model", "status"])
    assert result.exit_code == 1 and "no model server is running" in result.output

    # a state file as `serve --detach` writes it, for a process that is alive (this one)
    info = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "pid": os.getpid(), "gguf": "/x.gguf"}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / STATE_FILE).write_text(json.dumps(info), encoding="utf-8")
    result = runner.invoke(app, ["--config", str(path), "model", "status"])
    assert result.exit_code == 0 and "http://127.0.0.1:1/v1 model=m" in result.output

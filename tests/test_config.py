"""Configuration: defaults, overrides, and errors that name the key, where it was set and the fix."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.domain.errors import ConfigError
from orchestrator.entry.config import SAFE_CONFIRMATIONS, ChainConfig, Config, _known_keys, load_config

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_repo_config_yaml_equals_the_embedded_defaults() -> None:
    assert load_config(REPO / "config.yaml", environ={}) == Config()


def test_every_key_is_documented_in_config_yaml() -> None:
    text = (REPO / "config.yaml").read_text()
    data = yaml.safe_load(text)
    lines = text.splitlines()
    for dotted in _known_keys(Config):
        node = data
        for part in dotted.split("."):
            assert part in node, f"config.yaml lacks {dotted}"
            node = node[part]
        # Find the key's line inside its (possibly nested) section.
        idx = -1
        for part in dotted.split("."):
            idx = next(i for i, line in enumerate(lines) if i > idx and re.match(rf"^\s*{part}:", line))
        assert lines[idx - 1].strip().startswith("#") or isinstance(node, dict), f"{dotted} has no comment above it"


def test_missing_default_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}) == Config()


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_mistyped_key_names_key_line_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "chain:\n  kind: rpc\n  rpc_ur: http://127.0.0.1:8545\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.key == "chain.rpc_ur"
    assert f"{path}:3" in str(info.value)
    assert "did you mean 'chain.rpc_url'" in str(info.value)


def test_wrong_type_names_key_expected_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "board:\n  name: x\n  max_spec_bytes: lots\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    msg = str(info.value)
    assert "board.max_spec_bytes" in msg and f"{path}:3" in msg and "valid integer" in msg and "'lots'" in msg


def test_rpc_without_url_names_the_missing_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "chain:\n  kind: rpc\n"), environ={})
    assert info.value.key == "chain.rpc_url"


def test_env_override_wins_and_is_named_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "chain:\n  max_log_range: 10\n")
    cfg = load_config(path, environ={"DEWORKER_CHAIN__MAX_LOG_RANGE": "50"})
    assert cfg.chain.max_log_range == 50
    with pytest.raises(ConfigError, match="environment variable DEWORKER_CHAIN__MAX_LOG_RANGE"):
        load_config(path, environ={"DEWORKER_CHAIN__MAX_LOG_RANGE": "-1"})


def test_bad_yaml_and_duplicate_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "chain: [\n"), environ={})
    with pytest.raises(ConfigError, match="duplicate key"):
        load_config(write(tmp_path, "data_dir: a\ndata_dir: b\n"), environ={})


def test_secrets_cannot_be_put_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'dao.private_key'"):
        load_config(write(tmp_path, "dao:\n  private_key: '0xabc'\n"), environ={})


def test_cli_reports_bad_config_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    path = write(tmp_path, "chain:\n  kind: rcp\n")
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    first = proc.stderr.splitlines()[0]
    assert "chain.kind" in first and f"{path}:2" in first and "'rcp'" in first
    assert proc.stderr.splitlines()[1].startswith("fix:")


def test_secret_env_vars_are_not_config_but_typos_in_sections_are_reported() -> None:
    # A secret named DEWORKER_* (no "__", not a top-level key) is not read as config ...
    assert load_config(environ={"DEWORKER_WALLET_PASSPHRASE": "hunter2", "DEWORKER_DAO_KEY": "0x1"}) == Config()
    # ... but a section override with a typo is an error naming the variable.
    with pytest.raises(ConfigError, match="DEWORKER_CHAINN__KIND"):
        load_config(environ={"DEWORKER_CHAINN__KIND": "rpc"})
    assert load_config(environ={"DEWORKER_DATA_DIR": "/tmp/x"}).data_dir == Path("/tmp/x")


def test_rpc_url_is_a_list_of_one_and_rpc_urls_keeps_the_order(tmp_path: Path) -> None:
    one = load_config(write(tmp_path, "chain:\n  kind: rpc\n  rpc_url: http://127.0.0.1:8545\n"), environ={})
    assert one.chain.urls == ["http://127.0.0.1:8545/"]
    many = load_config(
        write(tmp_path, "chain:\n  kind: rpc\n  rpc_urls: [http://b.example:8545, http://a.example:8545]\n"),
        environ={},
    )
    assert many.chain.urls == ["http://b.example:8545/", "http://a.example:8545/"]
    from_env = load_config(
        write(tmp_path, "chain:\n  kind: rpc\n"),
        environ={"DEWORKER_CHAIN__RPC_URLS": "http://x.example:1, http://y.example:2"},
    )
    assert from_env.chain.urls == ["http://x.example:1/", "http://y.example:2/"]


def test_rpc_url_and_rpc_urls_together_name_both_keys_and_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "chain:\n  kind: rpc\n  rpc_url: http://a:1\n  rpc_urls: [http://b:2]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    msg = str(info.value)
    assert "'chain.rpc_url'" in msg and "'chain.rpc_urls'" in msg
    assert f"{path}:3" in msg and f"{path}:4" in msg
    # an environment override colliding with the file is named as such
    with pytest.raises(ConfigError, match="DEWORKER_CHAIN__RPC_URL"):
        load_config(
            write(tmp_path, "chain:\n  rpc_urls: [http://b:2]\n"), environ={"DEWORKER_CHAIN__RPC_URL": "http://a:1"}
        )
    # built in code rather than loaded: the model refuses it too
    with pytest.raises(ValueError, match=r"chain\.rpc_url or chain\.rpc_urls"):
        Config.model_validate({"chain": {"rpc_url": "http://a:1", "rpc_urls": ["http://b:2"]}})


def test_rpc_urls_refuses_an_empty_list_and_a_repeated_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"chain\.rpc_urls"):
        load_config(write(tmp_path, "chain:\n  kind: rpc\n  rpc_urls: []\n"), environ={})
    with pytest.raises(ConfigError, match="same URL twice"):
        load_config(write(tmp_path, "chain:\n  rpc_urls: [http://a:1, http://a:1]\n"), environ={})


@pytest.mark.parametrize(
    ("kind", "chain_id", "expected"),
    [
        ("devnet", 31337, 0),  # anvil
        ("rpc", 1337, 0),
        ("in-process", 1, 0),  # the in-process chain is a dev chain whatever id it reports
        ("rpc", 1, 12),  # Ethereum
        ("rpc", 11155111, 12),  # Sepolia
        ("rpc", 8453, 10),  # Base
        ("rpc", 42161, 20),  # Arbitrum One
        ("rpc", 137, 64),  # Polygon PoS
        ("rpc", 999_999_999, SAFE_CONFIRMATIONS),  # a chain not listed
    ],
)
def test_confirmations_default_per_chain_id_when_null(kind: str, chain_id: int, expected: int) -> None:
    assert Config().chain.confirmations is None  # config.yaml and the model leave it to the chain id
    assert ChainConfig(kind=kind).confirmations_for(chain_id) == expected  # type: ignore[arg-type]
    assert ChainConfig(kind=kind, confirmations=3).confirmations_for(chain_id) == 3  # type: ignore[arg-type]
    assert SAFE_CONFIRMATIONS > 0


def test_config_yaml_leaves_confirmations_to_the_chain_id() -> None:
    text = (Path(__file__).resolve().parent.parent / "config.yaml").read_text()
    assert yaml.safe_load(text)["chain"]["confirmations"] is None


def test_unquoted_addresses_in_wallet_keys_load(tmp_path: Path) -> None:
    """YAML reads an unquoted 0x... as a number; wallet keys turn it back into the address, as board.address does."""
    text = "wallets:\n  treasury: 0x00a329c0648769A73afAc7F9381E08FB43dBEA72\n"
    loaded = load_config(write(tmp_path, text), environ={})
    assert loaded.wallets.treasury == "0x00a329c0648769a73afac7f9381e08fb43dbea72"


def test_boards_is_a_list_of_named_kinds(tmp_path: Path) -> None:
    two = "0x" + "11" * 20
    cfg = load_config(
        write(tmp_path, f"boards:\n  - name: ours\n    kind: taskboard\n  - name: other\n    address: '{two}'\n"),
        environ={},
    )
    assert [(b.name, b.kind) for b in cfg.board_list] == [("ours", "taskboard"), ("other", "taskboard")]
    assert cfg.dao_board.name == "ours" and cfg.deprecations() == []
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "boards:\n  - name: x\n    kind: bazaar\n"), environ={})
    assert info.value.key == "boards.0.kind" and "unknown kind of board 'bazaar'" in str(info.value)
    with pytest.raises(ConfigError, match="board names must be unique"):
        load_config(write(tmp_path, "boards:\n  - name: x\n  - name: x\n"), environ={})


def test_the_old_board_section_still_works_with_a_deprecation_line(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "board:\n  name: legacy\n  max_spec_bytes: 4096\n"), environ={})
    assert [(b.name, b.max_spec_bytes) for b in cfg.board_list] == [("legacy", 4096)]
    (line,) = cfg.deprecations()
    assert "'board' is deprecated" in line and "boards:" in line
    env_only = load_config(write(tmp_path, "data_dir: x\n"), environ={"DEWORKER_BOARD__NAME": "from-env"})
    assert env_only.dao_board.name == "from-env"  # the environment's DEWORKER_BOARD__* keeps working too
    with pytest.raises(ConfigError, match="'board' and 'boards' are both set"):
        load_config(write(tmp_path, "board:\n  name: a\nboards:\n  - name: b\n"), environ={})
    checked = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(write(tmp_path, "board:\n  name: legacy\n")),
         "config", "check"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "deprecated: config key 'board' is deprecated" in checked.stderr

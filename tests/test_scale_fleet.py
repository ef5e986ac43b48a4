"""``agents.fleet``: many agent profiles from one template (names and wallets from format strings), how a written
profile and a bad pattern are treated, and a fleet built by the composition root with every keystore unlocked once."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.domain.errors import ConfigError
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.config import Config, load_config
from wallets.keystore import Keystore

FLEET = {
    "count": 3,
    "name": "writer-{n:03d}",
    "wallet": "fleet-{n}",
    "profile": {"skills": ["writing"], "model": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}},
}


def test_a_fleet_template_makes_count_profiles() -> None:
    written = {"name": "writer-002", "skills": ["poetry"], "wallet": "special"}
    cfg = Config.model_validate({"agents": {"fleet": FLEET, "profiles": [written]}})
    profiles = {p.name: p for p in cfg.agents.profiles}
    assert sorted(profiles) == ["writer-001", "writer-002", "writer-003"]
    assert (profiles["writer-001"].wallet, profiles["writer-003"].wallet) == ("fleet-1", "fleet-3")
    assert str(profiles["writer-001"].model.base_url) == "http://127.0.0.1:9/v1"
    assert profiles["writer-002"].wallet == "special"  # the profile written out takes the generated one's place
    again = Config.model_validate(cfg.model_dump(mode="json"))  # a dumped config validates to the same profiles
    assert again.agents.profiles == cfg.agents.profiles


@pytest.mark.parametrize(
    ("fleet", "said"),
    [
        ({**FLEET, "name": "writer-{m}"}, "agents.fleet.name/wallet are format strings of n"),
        ({**FLEET, "name": "writer"}, "agent profile names must be unique"),  # no {n}: every name the same
        ({**FLEET, "profile": {**FLEET["profile"], "wallet": "w"}}, "must not set name or wallet"),  # type: ignore[dict-item]
        ({**FLEET, "name": "Writer {n}"}, "agents.profiles.0.name"),  # not a valid profile name
    ],
)
def test_a_bad_fleet_template_is_refused_naming_the_key(tmp_path: Path, fleet: dict[str, object], said: str) -> None:
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"agents": {"fleet": fleet}}))
    with pytest.raises(ConfigError) as refused:
        load_config(path, environ={})
    assert said in str(refused.value), str(refused.value)


def test_the_composition_root_builds_a_fleet_with_every_wallet_unlocked_once(tmp_path: Path) -> None:
    cfg = Config.model_validate({"data_dir": str(tmp_path / "state"), "agents": {"fleet": {**FLEET, "count": 12}}})
    maker = Keystore(tmp_path / "keystores", scrypt_n=16, weak_kdf_for_tests=True)
    for p in cfg.agents.profiles:
        maker.create(p.wallet, "fleet passphrase")
    keystore = Keystore(tmp_path / "keystores", scrypt_n=16, weak_kdf_for_tests=True)  # a new process: all locked
    asked: list[int] = []

    def passphrase() -> str:
        asked.append(1)
        return "fleet passphrase"

    rt = Runtime(cfg, keystore_override=keystore, passphrase_override=passphrase)
    with rt.agents() as agents:
        assert [a.name for a in agents] == [f"writer-{n:03d}" for n in range(1, 13)]
        assert len({a.wallet.address for a in agents}) == 12
        assert all(keystore.is_unlocked(p.wallet) for p in cfg.agents.profiles)
    assert asked == [1]  # the passphrase is read once, for all twelve keystores

"""Keystores: round trip, wrong passphrase, file modes, import, the production scrypt cost, passphrase sources."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from tests.test_wallet_fixtures import PASSPHRASE, TEST_SCRYPT_N
from wallets.errors import KeystoreError, WrongPassphrase
from wallets.keystore import PRODUCTION_SCRYPT_N, Keystore, passphrase_from


def weak(directory: Path) -> Keystore:
    return Keystore(directory, scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True)


def test_round_trip_files_are_0600_and_the_dir_0700(tmp_path: Path) -> None:
    store = weak(tmp_path / "ks")
    entry = store.create("alice", PASSPHRASE)
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ks").stat().st_mode) == 0o700
    fresh = weak(tmp_path / "ks")  # a new process: nothing unlocked yet
    assert not fresh.is_unlocked("alice")
    account = fresh.unlock("alice", PASSPHRASE)
    assert account.address == entry.address
    assert fresh.unlock("alice", "not even checked once unlocked") is account  # decrypted once per process
    assert [e.name for e in fresh.entries()] == ["alice"] and fresh.entry("alice").address == entry.address
    data = json.loads(entry.path.read_text())
    assert data["version"] == 3 and data["crypto"]["kdf"] == "scrypt"


def test_wrong_passphrase_is_clear_and_holds_no_key_material(tmp_path: Path) -> None:
    store = weak(tmp_path)
    store.create("bob", PASSPHRASE)
    key = weak(tmp_path).unlock("bob", PASSPHRASE).key
    with pytest.raises(WrongPassphrase) as info:
        weak(tmp_path).unlock("bob", "wrong passphrase!")
    text = f"{info.value} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
    assert "passphrase does not open keystore" in text and "bob.json" in text
    for needle in (key.hex(), "0x" + key.hex(), repr(bytes(key)), PASSPHRASE, "wrong passphrase!"):
        assert needle not in text
    assert info.value.__cause__ is None


def test_loose_permissions_existing_names_and_bad_names_are_refused(tmp_path: Path) -> None:
    store = weak(tmp_path)
    entry = store.create("carol", PASSPHRASE)
    with pytest.raises(KeystoreError, match="already exists"):
        store.create("carol", PASSPHRASE)
    with pytest.raises(KeystoreError, match="invalid wallet name"):
        store.create("../etc/passwd", PASSPHRASE)
    with pytest.raises(KeystoreError, match="shorter than 8"):
        store.create("dave", "short")
    entry.path.chmod(0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        weak(tmp_path).unlock("carol", PASSPHRASE)
    with pytest.raises(KeystoreError, match="no wallet named 'nobody'"):
        store.unlock("nobody", PASSPHRASE)


def test_import_reencrypts_at_this_keystores_cost_and_never_exports(tmp_path: Path) -> None:
    account = Account.create()
    source = tmp_path / "external.json"
    source.write_text(json.dumps(Account.encrypt(account.key, PASSPHRASE, kdf="scrypt", iterations=2)))
    store = weak(tmp_path / "ks")
    entry = store.import_file("imported", source, PASSPHRASE)
    assert entry.address == account.address
    assert json.loads(entry.path.read_text())["crypto"]["kdfparams"]["n"] == TEST_SCRYPT_N
    with pytest.raises(WrongPassphrase):
        weak(tmp_path / "other").import_file("x", source, "another passphrase")
    assert not any(name in dir(store) for name in ("export", "private_key", "key"))


def test_production_cost_is_the_default_and_lower_costs_need_the_test_flag(tmp_path: Path) -> None:
    assert PRODUCTION_SCRYPT_N >= 262_144
    with pytest.raises(KeystoreError, match="below the minimum"):
        Keystore(tmp_path, scrypt_n=1024)
    store = Keystore(tmp_path)  # the real cost: ~1.5 s to write and ~1.5 s to read
    entry = store.create("real", PASSPHRASE)
    assert json.loads(entry.path.read_text())["crypto"]["kdfparams"]["n"] == PRODUCTION_SCRYPT_N
    assert Keystore(tmp_path).unlock("real", PASSPHRASE).address == entry.address


def test_unlock_many_in_parallel(tmp_path: Path) -> None:
    store = weak(tmp_path)
    addresses = {name: store.create(name, PASSPHRASE).address for name in ("a1", "a2", "a3")}
    fresh = weak(tmp_path)
    fresh.unlock_many(addresses, PASSPHRASE, workers=2)
    assert {n: fresh.unlock(n, "unused").address for n in addresses} == addresses


def test_passphrase_sources(tmp_path: Path) -> None:
    assert passphrase_from(env_var="PW", file=None, environ={"PW": "from-env-123"}) == "from-env-123"
    with pytest.raises(KeystoreError, match=r"\$PW is not set"):
        passphrase_from(env_var="PW", file=None, environ={})
    secret = tmp_path / "pw"
    secret.write_text("from-file-123\n")
    secret.chmod(0o600)
    assert passphrase_from(env_var="PW", file=secret, environ={"PW": "ignored"}) == "from-file-123"
    secret.chmod(0o640)
    with pytest.raises(KeystoreError, match="chmod 600"):
        passphrase_from(env_var="PW", file=secret, environ={})

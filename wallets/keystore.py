"""Keystores: one Ethereum V3 keystore file (scrypt) per agent wallet, in a directory, mode 0600.

A key is generated (or imported from an existing keystore file), encrypted with the passphrase and written once;
it is decrypted once per process (``Keystore.unlock`` caches the account) and never exported: nothing here
returns or prints key bytes, and errors name the wallet and the file only.

The passphrase comes from ``passphrase_from``: a secrets file (mode 0600 or stricter) or an environment
variable that config names, never from ``config.yaml``.

The scrypt cost is eth-account's default (n = 2**18). Tests may pass a lower ``scrypt_n`` only together with
``weak_kdf_for_tests=True``; nothing else accepts a cost below the default.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from wallets.errors import KeystoreError, WrongPassphrase

#: eth-account's default scrypt cost; the minimum outside tests.
PRODUCTION_SCRYPT_N = 262_144
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MAX_KEYSTORE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class KeystoreEntry:
    """A keystore file on disk (its address comes from the file; nothing is decrypted)."""

    name: str
    address: str
    path: Path


def passphrase_from(*, env_var: str, file: Path | None, environ: Mapping[str, str] | None = None) -> str:
    """The keystore passphrase: the content of ``file`` if given (it must not be readable by group or others),
    else ``$env_var``. Raises ``KeystoreError`` naming where it looked."""
    if file is not None:
        try:
            mode = file.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeystoreError(
                    f"passphrase file {file} is readable by group or others (mode {stat.S_IMODE(mode):o})",
                    hint=f"chmod 600 {file}",
                )
            text = file.read_text("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise KeystoreError(
                f"cannot read passphrase file {file}: {exc.strerror}", hint="fix wallets.passphrase_file"
            ) from None
        if not text:
            raise KeystoreError(f"passphrase file {file} is empty", hint="write the passphrase into it")
        return text
    env = os.environ if environ is None else environ
    value = env.get(env_var)
    if not value:
        raise KeystoreError(
            f"no keystore passphrase: ${env_var} is not set and wallets.passphrase_file is not configured",
            hint=f"export {env_var}=... or set wallets.passphrase_file to a 0600 file holding it",
        )
    return value


def _decrypt(path: str, keystore: dict[str, Any], passphrase: str) -> bytes:
    try:
        return bytes(Account.decrypt(keystore, passphrase))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassphrase(
                f"the passphrase does not open keystore {path}",
                hint="check the passphrase in the configured environment variable or file",
            ) from None
        raise KeystoreError(f"cannot decrypt keystore {path}: malformed crypto section") from None


def _decrypt_entry(args: tuple[str, dict[str, Any], str]) -> bytes:
    """Process-pool worker for ``unlock_many`` (module level so it pickles)."""
    return _decrypt(*args)


class Keystore:
    """The keystore directory: create, import, list and unlock wallets by name.

    ``scrypt_n`` is the scrypt cost for new files. A cost below ``PRODUCTION_SCRYPT_N`` is refused unless
    ``weak_kdf_for_tests`` is true: tests use it to stay fast, nothing else may.
    """

    def __init__(self, directory: Path, *, scrypt_n: int = PRODUCTION_SCRYPT_N, weak_kdf_for_tests: bool = False):
        if scrypt_n < PRODUCTION_SCRYPT_N and not weak_kdf_for_tests:
            raise KeystoreError(
                f"scrypt cost n={scrypt_n} is below the minimum {PRODUCTION_SCRYPT_N}",
                hint="use the default cost; lower ones are for tests only",
            )
        if scrypt_n < 2 or scrypt_n & (scrypt_n - 1):
            raise KeystoreError(f"scrypt cost n must be a power of two, got {scrypt_n}")
        self.directory = directory
        self.scrypt_n = scrypt_n
        self._unlocked: dict[str, LocalAccount] = {}

    def __repr__(self) -> str:
        return f"Keystore({str(self.directory)!r}, unlocked={sorted(self._unlocked)})"

    # ------------------------------------------------------------------------------------------ files

    def path(self, name: str) -> Path:
        if not NAME_RE.match(name):
            raise KeystoreError(
                f"invalid wallet name {name[:70]!r}",
                hint="use 1-64 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit",
            )
        return self.directory / f"{name}.json"

    def _ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def _write_new(self, name: str, keystore: dict[str, Any]) -> Path:
        path = self.path(name)
        self._ensure_directory()
        data = (json.dumps(keystore, indent=2, sort_keys=True) + "\n").encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeystoreError(
                f"a keystore named {name!r} already exists ({path})", hint="choose another name"
            ) from None
        try:
            os.fchmod(fd, 0o600)  # the umask can only remove bits, but be explicit
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    def _read(self, name: str) -> dict[str, Any]:
        path = self.path(name)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeystoreError(
                f"no wallet named {name!r} (looked for {path})",
                hint="list wallets with `deworker wallet list`, create one with `deworker wallet new NAME`",
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeystoreError(
                f"keystore {path} is accessible by group or others (mode {stat.S_IMODE(mode):o})",
                hint=f"chmod 600 {path}",
            )
        return _parse(path.read_bytes(), str(path))

    # ---------------------------------------------------------------------------------------- public API

    def create(self, name: str, passphrase: str) -> KeystoreEntry:
        """Generate a new key for wallet ``name`` and write it encrypted; the key stays unlocked in memory."""
        _check_passphrase(passphrase)
        self.path(name)
        account: LocalAccount = Account.create()
        keystore = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=self.scrypt_n)
        path = self._write_new(name, keystore)
        self._unlocked[name] = account
        return KeystoreEntry(name=name, address=account.address, path=path)

    def import_file(
        self, name: str, source: Path, passphrase: str, *, source_passphrase: str | None = None
    ) -> KeystoreEntry:
        """Import an existing V3 keystore as wallet ``name``: it must open with ``source_passphrase`` (default:
        ``passphrase``); it is re-encrypted under ``passphrase`` with this keystore's scrypt cost (so a weak
        source file does not stay weak). An existing wallet of that name is never overwritten."""
        _check_passphrase(passphrase)
        path = self.path(name)
        if path.exists():
            raise KeystoreError(f"a keystore named {name!r} already exists ({path})", hint="choose another name")
        try:
            raw = source.read_bytes()
        except OSError as exc:
            raise KeystoreError(f"cannot read {source}: {exc.strerror}") from None
        parsed = _parse(raw, str(source))
        try:
            key = _decrypt(str(source), parsed, passphrase if source_passphrase is None else source_passphrase)
        except WrongPassphrase:
            raise WrongPassphrase(
                f"the source passphrase does not open keystore {source}",
                hint="use the passphrase that file was encrypted with (`deworker wallet import --passphrase-env VAR`)",
            ) from None
        account: LocalAccount = Account.from_key(key)
        if "address" in parsed and _address_of(parsed, str(source)) != account.address:
            raise KeystoreError(f"{source}: its address field does not match the key it holds")
        keystore = Account.encrypt(key, passphrase, kdf="scrypt", iterations=self.scrypt_n)
        path = self._write_new(name, keystore)
        self._unlocked[name] = account
        return KeystoreEntry(name=name, address=account.address, path=path)

    def entries(self) -> list[KeystoreEntry]:
        """Every wallet in the directory, by name (addresses read from the files, nothing decrypted)."""
        if not self.directory.exists():
            return []
        out = []
        for path in sorted(self.directory.glob("*.json")):
            name = path.stem
            if NAME_RE.match(name):
                out.append(KeystoreEntry(name=name, address=_address_of(self._read(name), str(path)), path=path))
        return out

    def entry(self, name: str) -> KeystoreEntry:
        return KeystoreEntry(
            name=name, address=_address_of(self._read(name), str(self.path(name))), path=self.path(name)
        )

    def unlock(self, name: str, passphrase: str | Callable[[], str]) -> LocalAccount:
        """The wallet's account, decrypted on first use and kept in memory for the life of this ``Keystore``.
        ``passphrase`` may be a function: it is then called only when the file has to be decrypted."""
        account = self._unlocked.get(name)
        if account is None:
            keystore = self._read(name)
            secret = passphrase if isinstance(passphrase, str) else passphrase()
            account = Account.from_key(_decrypt(str(self.path(name)), keystore, secret))
            self._unlocked[name] = account
        return account

    def unlock_many(self, names: Iterable[str], passphrase: str, *, workers: int | None = None) -> None:
        """Decrypt many keystores at once, one scrypt per CPU in a process pool (scrypt holds the GIL)."""
        todo = [n for n in dict.fromkeys(names) if n not in self._unlocked]
        if not todo:
            return
        jobs = [(str(self.path(n)), self._read(n), passphrase) for n in todo]
        if len(jobs) == 1 or workers == 1:
            keys = [_decrypt_entry(job) for job in jobs]
        else:
            size = min(len(jobs), workers or os.cpu_count() or 1)
            with ProcessPoolExecutor(size, mp_context=get_context("spawn")) as pool:
                keys = list(pool.map(_decrypt_entry, jobs))
        for name, key in zip(todo, keys, strict=True):
            self._unlocked[name] = Account.from_key(key)

    def is_unlocked(self, name: str) -> bool:
        return name in self._unlocked


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < 8:
        raise KeystoreError("the keystore passphrase is shorter than 8 characters", hint="use a longer passphrase")


def _parse(raw: bytes, where: str) -> dict[str, Any]:
    if len(raw) > _MAX_KEYSTORE_BYTES:
        raise KeystoreError(f"{where} is too large to be a keystore ({len(raw)} bytes)")
    try:
        data = json.loads(raw)
    except ValueError:
        raise KeystoreError(
            f"{where} is not a JSON keystore",
            hint="give a V3 keystore file (geth, eth-account); raw private keys are not accepted",
        ) from None
    if not isinstance(data, dict) or data.get("version") != 3 or not isinstance(data.get("crypto"), dict):
        raise KeystoreError(f"{where} is not a version 3 keystore", hint="import a V3 (geth/eth-account) keystore")
    return data


def _address_of(keystore: Mapping[str, Any], where: str) -> str:
    address = keystore.get("address")
    try:
        return to_checksum_address("0x" + str(address).removeprefix("0x"))
    except ValueError:
        raise KeystoreError(f"{where} has no valid address field") from None

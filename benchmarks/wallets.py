"""Wallet benchmarks: unlocking keystores at the production scrypt cost, and the policy gate's signing overhead.

1. ``--keystores`` V3 keystores (default 100) are written at ``--scrypt-n`` (default: the production cost), then
   unlocked by a fresh ``Keystore`` with ``unlock_many`` (one scrypt per CPU) and, for reference, one by one on
   a sample.
2. Signed transactions per second over ``--n`` signatures: signing alone, versus the policy gate's checks plus
   the same signing (the acceptance bar is a ratio >= 0.95).
3. For reference: the whole journaled path (gate, SQLite journal, broadcast, receipt) versus ``TxSender.send``
   on the in-process chain.

    .venv/bin/python benchmarks/wallets.py [--keystores 100] [--n 3000] [--sends 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from eth_account import Account
from rich.console import Console
from rich.table import Table

from orchestrator.adapters.chain import EthTesterChain, TxSender
from orchestrator.adapters.sql import make_engine, migrate
from wallets.config import PolicyConfig, WalletsConfig
from wallets.fleet import WalletFleet
from wallets.journal import Journal
from wallets.keystore import PRODUCTION_SCRYPT_N, Keystore
from wallets.policy import PolicyGate

PASSPHRASE = "benchmark passphrase"
TREASURY = "0x000000000000000000000000000000000000dEaD"
BOARD = "0x1111111111111111111111111111111111111111"


def _create(args: tuple[str, int, int]) -> None:
    directory, index, n = args
    Keystore(Path(directory), scrypt_n=n, weak_kdf_for_tests=n < PRODUCTION_SCRYPT_N).create(
        f"agent-{index:03d}", PASSPHRASE
    )


def bench_unlock(count: int, scrypt_n: int, table: Table) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "keystores"
        started = time.perf_counter()
        with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=get_context("spawn")) as pool:
            list(pool.map(_create, [(str(directory), i, scrypt_n) for i in range(count)]))
        table.add_row(
            f"create {count} keystores (n={scrypt_n}, {os.cpu_count()} processes)",
            f"{time.perf_counter() - started:.1f} s",
        )
        names = [f"agent-{i:03d}" for i in range(count)]
        store = Keystore(directory, scrypt_n=scrypt_n, weak_kdf_for_tests=scrypt_n < PRODUCTION_SCRYPT_N)
        started = time.perf_counter()
        store.unlock_many(names, PASSPHRASE)
        elapsed = time.perf_counter() - started
        table.add_row(
            f"unlock {count} keystores (unlock_many)", f"{elapsed:.1f} s ({elapsed / count * 1000:.0f} ms/key)"
        )
        sample = names[: min(5, count)]
        single = Keystore(directory, scrypt_n=scrypt_n, weak_kdf_for_tests=scrypt_n < PRODUCTION_SCRYPT_N)
        started = time.perf_counter()
        for name in sample:
            single.unlock(name, PASSPHRASE)
        per_key = (time.perf_counter() - started) / len(sample)
        table.add_row("unlock one keystore (serial)", f"{per_key * 1000:.0f} ms")


def bench_gate(n: int, table: Table) -> float:
    account = Account.create()
    gate = PolicyGate(
        PolicyConfig.model_validate({"allow": [{"contract": BOARD, "functions": ["claim(uint256)"]}]}),
        treasury=TREASURY,
    )
    data = bytes.fromhex("379607f5") + (7).to_bytes(32, "big")
    tx = {
        "type": 2,
        "chainId": 31337,
        "to": BOARD,
        "value": 0,
        "data": data,
        "gas": 100_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }

    def sign_only(i: int) -> None:
        account.sign_transaction({**tx, "nonce": i})

    def gated(i: int) -> None:
        gate.check(chain_id=31337, to=BOARD, data=data, value=0, gas=100_000)
        account.sign_transaction({**tx, "nonce": i})

    rates = {}
    for label, fn in (("sign", sign_only), ("gate + sign", gated), ("sign ", sign_only), ("gate + sign ", gated)):
        started = time.perf_counter()
        for i in range(n):
            fn(i)
        rates[label.strip()] = n / (time.perf_counter() - started)  # second round wins (warm caches)
    for label, rate in rates.items():
        table.add_row(f"signed tx/s, {label}", f"{rate:,.0f}")
    ratio = rates["gate + sign"] / rates["sign"]
    table.add_row("ratio gate/no gate (>= 0.95)", f"{ratio:.3f}")
    return ratio


def bench_sends(sends: int, table: Table) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        chain = EthTesterChain()
        funder = TxSender(chain, Account.from_key(chain.dev_accounts()[0].private_key))
        started = time.perf_counter()
        for i in range(sends):
            funder.send(TREASURY, value=i + 1, gas=21_000)
        table.add_row("TxSender.send, in-process chain", f"{sends / (time.perf_counter() - started):,.0f} tx/s")
        engine = make_engine(f"sqlite:///{Path(tmp) / 'deworker.db'}")
        migrate(engine)
        config = WalletsConfig(keystore_dir=Path(tmp) / "ks", treasury=TREASURY)
        fleet = WalletFleet(
            config=config,
            keystore=Keystore(Path(tmp) / "ks", scrypt_n=16, weak_kdf_for_tests=True),
            journal=Journal(engine),
            chain=chain,
            passphrase=lambda: PASSPHRASE,
        )
        funder.send(fleet.create("bench").address, value=10**18)
        wallet = fleet.wallet("bench")
        started = time.perf_counter()
        for i in range(sends):
            wallet.send(TREASURY, value=i + 1, gas=21_000)
        table.add_row(
            "KeystoreWallet.send (gate + journal), same chain", f"{sends / (time.perf_counter() - started):,.0f} tx/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keystores", type=int, default=100)
    parser.add_argument("--scrypt-n", type=int, default=PRODUCTION_SCRYPT_N)
    parser.add_argument("--n", type=int, default=3000, help="signatures per gate measurement")
    parser.add_argument("--sends", type=int, default=200, help="transactions per end-to-end measurement")
    args = parser.parse_args()
    table = Table(title="Wallet benchmarks")
    table.add_column("measurement")
    table.add_column("result", justify="right")
    ratio = bench_gate(args.n, table)
    bench_sends(args.sends, table)
    if args.keystores:
        bench_unlock(args.keystores, args.scrypt_n, table)
    Console().print(table)
    if ratio < 0.95:
        raise SystemExit(f"gate overhead too high: ratio {ratio:.3f} < 0.95")


if __name__ == "__main__":
    main()

"""The fault suite on anvil: fee spikes, stopped mining, expiry while stuck and dropped transactions, against the
journaled wallet (``wallets.wallet``), on the session anvil rolled back after each test. Each case injects the
fault through anvil's own RPC methods (``anvil_setNextBlockBaseFeePerGas``, ``evm_setAutomine``,
``anvil_dropTransaction``, ``evm_increaseTime``) while a thread mines blocks, and checks the chain and the
journal: every nonce mines exactly once, no nonce gap, every attempt journaled with its raw bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from orchestrator.chain import AnvilProcess, RpcChain
from orchestrator.store import make_engine
from tests.conftest import ChainEnv
from tests.test_wallet_fixtures import PASSPHRASE, TEST_SCRYPT_N, TREASURY, FleetFactory, wallets_config
from wallets.errors import TxExpired
from wallets.fleet import WalletFleet
from wallets.journal import Journal, TxStatus
from wallets.keystore import Keystore
from wallets.wallet import KeystoreWallet

pytest_plugins = ["tests.test_wallet_fixtures"]
pytestmark = pytest.mark.anvil

DEADLINE = 30.0  # seconds any wait of this suite may take
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(anvil_snapshot: AnvilProcess) -> Iterator[ChainEnv]:
    with RpcChain(anvil_snapshot.url) as rpc:
        normal = base_fee(rpc)
        yield ChainEnv("anvil", rpc, anvil_snapshot.dev_accounts(), rpc.chain_id)
        rpc.request("evm_setAutomine", [True])
        # anvil's fee tracker survives evm_revert: bring the base fee back down for the next test
        rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(normal)])
        rpc.request("anvil_mine", ["0x1"])


class Miner:
    """Mines a block every ``interval`` seconds in a thread; ``before_block`` runs first (a fee spike, a clock
    jump). Stops when the test's ``with`` block ends."""

    def __init__(self, rpc: RpcChain, before_block: Callable[[], None] | None = None, interval: float = 0.05):
        self.rpc = rpc
        self.before_block = before_block
        self.interval = interval
        self.blocks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.before_block is not None:
                self.before_block()
            self.rpc.request("anvil_mine", ["0x1"])
            self.blocks += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Miner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def quick(wallet: KeystoreWallet) -> KeystoreWallet:
    """Replacement ages a test can wait for: 0.3 s and 2 blocks, checked every 0.05 s."""
    wallet.replace_after_seconds = 0.3
    wallet.replace_after_blocks = 2
    wallet.check_interval = 0.05
    wallet.receipt_timeout = DEADLINE
    return wallet


def base_fee(rpc: RpcChain) -> int:
    return int(rpc.request("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)


def assert_each_nonce_mined_once(env: ChainEnv, wallet: KeystoreWallet, start: int, count: int) -> None:
    rows = wallet.journal.transactions(wallet=wallet.address)
    for nonce in range(start, start + count):
        mined = [r for r in rows if r.nonce == nonce and r.status == TxStatus.MINED]
        assert len(mined) == 1, f"nonce {nonce}: {[(r.attempt, r.status) for r in rows if r.nonce == nonce]}"
        receipt = env.chain.receipt(mined[0].tx_hash)
        assert receipt is not None and receipt.status == 1
    assert env.chain.nonce(wallet.address, pending=True) == start + count  # no gap, nothing else pending
    assert env.chain.nonce(wallet.address, pending=False) == start + count


def test_tenfold_base_fee_spike_replaces_both_pending_transactions(
    env: ChainEnv, db_engine: Engine, make_fleet: FleetFactory
) -> None:
    assert isinstance(env.chain, RpcChain)
    rpc = env.chain
    wallet = quick(make_fleet(env, db_engine).wallet("alice"))
    start = rpc.nonce(wallet.address)
    before = rpc.balance(TREASURY)
    rpc.request("evm_setAutomine", [False])
    rows = [wallet.submit(TREASURY, value=v, gas=21_000) for v in (1, 2)]
    # ten times what they were signed for (on a chain of empty blocks the base fee is ~0 and the tip dominates)
    spike = 10 * max(r.max_fee_per_gas for r in rows)
    signed_fees = [r.max_fee_per_gas for r in rows]
    assert all(fee < spike for fee in signed_fees)  # neither fits under the spike

    with (
        Miner(rpc, lambda: rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])),
        ThreadPoolExecutor(2) as pool,
    ):
        receipts = list(pool.map(lambda r: wallet.wait(r.tx_hash), rows))

    assert all(r.status == 1 for r in receipts)
    assert_each_nonce_mined_once(env, wallet, start, 2)
    for row in rows:
        attempts = wallet.journal.attempts(wallet.address, wallet.chain_id, row.nonce)
        assert len(attempts) >= 2 and all(a.raw_tx for a in attempts)  # the journal shows every attempt
        assert {a.status for a in attempts} == {TxStatus.MINED, TxStatus.REPLACED}
        mined = next(a for a in attempts if a.status == TxStatus.MINED)
        assert mined.max_fee_per_gas > spike and mined.attempt > 0
    assert rpc.balance(TREASURY) - before == 3  # each payment once
    assert len(wallet.journal.audit_events(kind="replaced")) >= 2


def test_a_replacement_above_the_fee_cap_is_refused_with_the_rule(
    env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    assert isinstance(env.chain, RpcChain)
    rpc = env.chain
    fleet = make_fleet(env, sqlite_engine)
    wallet = quick(fleet.wallet("alice"))
    rpc.request("evm_setAutomine", [False])
    row = wallet.submit(TREASURY, value=1, gas=21_000)
    cap = fleet.gate.policy.max_fee_per_gas_wei[wallet.chain_id]
    huge = cap  # the fresh quote at twice this base fee is above the cap
    with Miner(rpc, lambda: rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(huge)])) as miner:
        deadline = time.monotonic() + DEADLINE
        while not wallet.journal.audit_events(kind="policy_denied") and time.monotonic() < deadline:
            wallet._look_after(wallet.journal.get(row.tx_hash))
            time.sleep(0.05)
        assert miner.blocks >= 2
    (denied,) = wallet.journal.audit_events(kind="policy_denied")
    assert denied.rule == "max_fee_per_gas_wei" and denied.tx_hash == row.tx_hash
    assert len(wallet.journal.attempts(wallet.address, wallet.chain_id, row.nonce)) == 1  # nothing signed


def test_stopped_mining_replaces_nothing_and_leaves_no_gap(
    env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    assert isinstance(env.chain, RpcChain)
    rpc = env.chain
    wallet = quick(make_fleet(env, sqlite_engine).wallet("alice"))
    start = rpc.nonce(wallet.address)
    rpc.request("evm_setAutomine", [False])
    rows = [wallet.submit(TREASURY, value=v, gas=21_000) for v in (1, 2, 3)]
    with ThreadPoolExecutor(3) as pool:
        waits = [pool.submit(wallet.wait, r.tx_hash) for r in rows]
        time.sleep(3 * wallet.replace_after_seconds)  # longer than the replacement age, with no block mined
        assert all(not w.done() for w in waits)
        assert wallet.journal.audit_events(kind="replaced") == []  # no blocks: nothing is stuck
        rpc.request("evm_setAutomine", [True])
        rpc.request("anvil_mine", ["0x1"])  # mining resumes
        receipts = [w.result(timeout=DEADLINE) for w in waits]
    assert [r.status for r in receipts] == [1, 1, 1]
    assert_each_nonce_mined_once(env, wallet, start, 3)
    # once blocks come again an attempt may be replaced while its block is being mined; whichever mined is recorded
    # and the chain's nonce count above shows that nothing else did


def test_a_transaction_whose_purpose_expires_while_stuck_is_cancelled(
    env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    assert isinstance(env.chain, RpcChain)
    rpc = env.chain
    wallet = quick(make_fleet(env, sqlite_engine).wallet("alice"))
    start = rpc.nonce(wallet.address)
    before = rpc.balance(TREASURY)
    rpc.request("evm_setAutomine", [False])
    expires_at = rpc.block().timestamp + 60
    row = wallet.submit(TREASURY, value=5, gas=21_000, expires_at=expires_at)
    spike = 10 * row.max_fee_per_gas
    rpc.request("evm_increaseTime", [hex(120)])  # the purpose expires while the transaction is stuck

    spiking = Miner(rpc, lambda: rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(spike)]))
    with spiking, pytest.raises(TxExpired) as info:
        wallet.wait(row.tx_hash)
    assert info.value.tx_hash == row.tx_hash
    assert rpc.balance(TREASURY) == before  # the doomed payment never ran
    attempts = wallet.journal.attempts(wallet.address, wallet.chain_id, row.nonce)
    mined = [a for a in attempts if a.status == TxStatus.MINED]
    assert len(mined) == 1 and mined[0].to == wallet.address and mined[0].value == 0 and mined[0].selector is None
    assert_each_nonce_mined_once(env, wallet, start, 1)
    # sending it again is refused before anything is signed
    with pytest.raises(TxExpired):
        wallet.submit(TREASURY, value=5, gas=21_000, expires_at=expires_at)
    assert len(wallet.journal.transactions(wallet=wallet.address)) == len(attempts)


def test_a_dropped_pending_transaction_is_rebroadcast_and_mined_once(
    env: ChainEnv, db_engine: Engine, make_fleet: FleetFactory
) -> None:
    assert isinstance(env.chain, RpcChain)
    rpc = env.chain
    wallet = quick(make_fleet(env, db_engine).wallet("alice"))
    start = rpc.nonce(wallet.address)
    before = rpc.balance(TREASURY)
    rpc.request("evm_setAutomine", [False])
    row = wallet.submit(TREASURY, value=9, gas=21_000)
    rpc.request("anvil_dropTransaction", [row.tx_hash])
    assert not rpc.transaction_known(row.tx_hash)
    with Miner(rpc):
        receipt = wallet.wait(row.tx_hash)
    assert receipt.tx_hash == row.tx_hash  # the same signed bytes, not a new transaction
    assert rpc.balance(TREASURY) - before == 9
    assert_each_nonce_mined_once(env, wallet, start, 1)
    assert [e.tx_hash for e in wallet.journal.audit_events(kind="rebroadcast")] == [row.tx_hash]


def _crash_worker(args: dict[str, Any]) -> None:
    """The process that gets killed: waits on a stuck transaction and dies between journaling its replacement and
    broadcasting it (the wallet's ``"replacing"`` boundary)."""

    def kill(point: str, _row: object) -> None:
        if point == "replacing":
            os.kill(os.getpid(), signal.SIGKILL)

    root = Path(args["root"])
    cfg = wallets_config(root)
    fleet = WalletFleet(
        config=cfg,
        keystore=Keystore(cfg.keystore_path(root), scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True),
        journal=Journal(make_engine(args["db"])),
        chain=RpcChain(args["url"]),
        passphrase=lambda: PASSPHRASE,
        boundary=kill,
    )
    quick(fleet.wallet("alice")).wait(args["tx_hash"], timeout=DEADLINE)
    raise SystemExit("the wallet never replaced the stuck transaction")


def test_sigkill_between_signing_a_replacement_and_broadcasting_it(
    env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory, tmp_path: Path
) -> None:
    assert isinstance(env.chain, RpcChain)
    rpc = env.chain
    wallet = quick(make_fleet(env, sqlite_engine).wallet("alice"))
    start = rpc.nonce(wallet.address)
    before = rpc.balance(TREASURY)
    rpc.request("evm_setAutomine", [False])
    row = wallet.submit(TREASURY, value=4, gas=21_000)
    spike = 10 * row.max_fee_per_gas
    for _ in range(3):  # stuck: blocks go by at a base fee it cannot pay
        rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])
        rpc.request("anvil_mine", ["0x1"])
    args = {"root": str(tmp_path), "db": str(sqlite_engine.url), "url": rpc.url, "tx_hash": row.tx_hash}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_chain_faults", json.dumps(args)],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    attempts = wallet.journal.attempts(wallet.address, wallet.chain_id, row.nonce)
    assert [a.status for a in attempts] == [TxStatus.REPLACED, TxStatus.PENDING]  # journaled, never broadcast
    assert not rpc.transaction_known(attempts[1].tx_hash)

    restarted = quick(make_fleet(env, sqlite_engine, fund=0).wallet("alice"))  # a new process, same database
    with Miner(rpc, lambda: rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])):
        report = restarted.recover()
    assert report.rebroadcast == [attempts[1].tx_hash]  # the replacement's own bytes, not a new signature
    assert_each_nonce_mined_once(env, restarted, start, 1)
    assert rpc.balance(TREASURY) - before == 4


if __name__ == "__main__":
    _crash_worker(json.loads(sys.argv[1]))

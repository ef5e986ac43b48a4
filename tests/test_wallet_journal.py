"""Money paths of ``KeystoreWallet`` on both chains (in-process py-evm and anvil) and both journal databases:
the Signer port, 50 concurrent sends, crashes on either side of the broadcast (in-process and SIGKILL), "nonce too
low" from a foreign transaction, nonce drift both ways, refusals that free their nonce, sweeps, top-ups and a
board claim/submit through the gate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_abi.abi import encode
from sqlalchemy.engine import Engine

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.onchain import WORK_FUNCTIONS, OnchainTaskBoard
from orchestrator.adapters.chain import RpcChain
from orchestrator.domain.errors import ChainError
from orchestrator.domain.specs import Deliverable, DeliverableKind, TaskSpec
from orchestrator.entry.dao import Dao
from orchestrator.ports.chain import Signer
from orchestrator.ports.wallet import AgentWallet, RecoveryReport
from tests.conftest import ChainEnv, require
from tests.test_wallet_fixtures import (
    ETH,
    PASSPHRASE,
    TEST_SCRYPT_N,
    TREASURY,
    FleetFactory,
    same_key_sender,
    wallets_config,
)
from wallets.errors import NonceDrift, TxUncertain
from wallets.fleet import WalletFleet
from wallets.journal import Journal, TxStatus, WalletTx
from wallets.keystore import Keystore

pytest_plugins = ["tests.test_wallet_fixtures"]


class Crash(BaseException):
    """Stands for the process dying at a boundary (not an Exception: nothing may catch and carry on)."""


def crash_at(point: str):  # type: ignore[no-untyped-def]
    def hook(where: str, row: WalletTx) -> None:
        if where == point:
            raise Crash(row.tx_hash)

    return hook


def signed_count(fleet: WalletFleet) -> int:
    return len(fleet.journal.audit_events(kind="signed"))


def test_wallet_is_a_signer(chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory) -> None:
    wallet = make_fleet(chain_env, sqlite_engine).wallet("alice")
    assert isinstance(wallet, Signer)
    assert "alice" in repr(wallet) and wallet.address in repr(wallet)


def test_wallet_is_the_services_agent_wallet(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    wallet = make_fleet(chain_env, sqlite_engine).wallet("alice")
    assert isinstance(wallet, AgentWallet)  # the port the service holds an agent's wallet by
    report = wallet.recover()
    assert isinstance(report, RecoveryReport) and str(report).startswith("nothing to recover")


def test_fifty_concurrent_sends_mine_with_contiguous_nonces(
    chain_env: ChainEnv, db_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, db_engine)
    wallet = fleet.wallet("alice")
    start = chain_env.chain.nonce(wallet.address)
    with ThreadPoolExecutor(16) as pool:
        receipts = list(pool.map(lambda i: wallet.send(TREASURY, value=i + 1, gas=21_000), range(50)))
    assert all(r.status == 1 for r in receipts) and len({r.tx_hash for r in receipts}) == 50
    rows = fleet.journal.transactions(wallet=wallet.address)
    assert [r.nonce for r in rows] == list(range(start, start + 50))
    assert all(r.status == TxStatus.MINED for r in rows)
    assert chain_env.chain.nonce(wallet.address) == start + 50
    assert sorted(r.value for r in rows) == list(range(1, 51))


def test_crash_after_journal_before_broadcast_mines_the_same_hash_once(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine, boundary=crash_at("journaled"))
    wallet = fleet.wallet("alice")
    start = chain_env.chain.nonce(wallet.address)
    before = chain_env.chain.balance(TREASURY)
    with pytest.raises(Crash) as info:
        wallet.send(TREASURY, value=12345, gas=21_000)
    tx_hash = str(info.value)
    assert chain_env.chain.receipt(tx_hash) is None and chain_env.chain.nonce(wallet.address) == start
    restarted = make_fleet(chain_env, sqlite_engine, fund=0)  # a new process on the same database
    report = restarted.wallet("alice").recover()
    assert report.rebroadcast == [tx_hash] and report.drift == 0
    receipt = chain_env.chain.receipt(tx_hash)
    assert receipt is not None and receipt.status == 1
    assert chain_env.chain.nonce(wallet.address) == start + 1  # exactly one transaction mined
    assert chain_env.chain.balance(TREASURY) - before == 12345
    assert signed_count(restarted) == 1
    assert restarted.wallet("alice").recover().rebroadcast == []  # idempotent
    restarted.wallet("alice").send(TREASURY, value=1, gas=21_000)  # and the next one mines


def test_crash_after_broadcast_finds_the_receipt_and_signs_nothing(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine, boundary=crash_at("broadcast"))
    with pytest.raises(Crash) as info:
        fleet.wallet("alice").send(TREASURY, value=7, gas=21_000)
    tx_hash = str(info.value)
    restarted = make_fleet(chain_env, sqlite_engine, fund=0)
    report = restarted.wallet("alice").recover()
    assert report.recorded == [tx_hash] and report.rebroadcast == []
    (row,) = restarted.journal.transactions()
    assert row.status == TxStatus.MINED and row.mined_block is not None
    assert signed_count(restarted) == 1


def test_start_up_unlocks_each_keystore_once_and_recovers_every_wallet_before_sending(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine, names=("alice", "bob"), boundary=crash_at("journaled"))
    with pytest.raises(Crash) as info:
        fleet.wallet("alice").send(TREASURY, value=3, gas=21_000)
    crashed = str(info.value)
    # a new process: a fresh keystore (nothing decrypted), a passphrase source that counts its reads
    reads: list[str] = []

    def passphrase() -> str:
        reads.append("read")
        return PASSPHRASE

    restarted = WalletFleet(
        config=fleet.config,
        keystore=Keystore(fleet.keystore.directory, scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True),
        journal=Journal(sqlite_engine),
        chain=chain_env.chain,
        passphrase=passphrase,
        receipt_timeout=30.0,
    )
    wallets = restarted.unlock_all()
    assert [w.name for w in wallets] == ["alice", "bob"] and len(reads) == 1
    assert all(restarted.keystore.is_unlocked(w.name) for w in wallets)
    reports = restarted.recover_all()
    assert reports["alice"].rebroadcast == [crashed] and reports["bob"].rebroadcast == []
    assert chain_env.chain.receipt(crashed) is not None
    for wallet in wallets:
        assert restarted.wallet(wallet.name) is wallet
        assert wallet.send(TREASURY, value=1, gas=21_000).status == 1
    assert len(reads) == 1  # decrypted once per process: no send, recovery or lookup decrypted again
    assert signed_count(restarted) == 3


@pytest.mark.anvil
def test_sigkill_between_journal_and_broadcast(
    anvil_snapshot: object, tmp_path: Path, make_fleet: FleetFactory
) -> None:
    from orchestrator.adapters.chain import AnvilProcess

    assert isinstance(anvil_snapshot, AnvilProcess)
    db = tmp_path / "deworker.db"
    from orchestrator.adapters.sql.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    with RpcChain(anvil_snapshot.url) as rpc:
        env = ChainEnv("anvil", rpc, anvil_snapshot.dev_accounts(), 31337)
        fleet = make_fleet(env, engine)
        address = fleet.keystore.entry("alice").address
        start = rpc.nonce(address)
        script = textwrap.dedent(
            f"""
            import os, signal
            from orchestrator.adapters.chain import RpcChain
            from wallets.fleet import WalletFleet
            from orchestrator.adapters.sql.db import make_engine
            from wallets.journal import Journal
            from wallets.keystore import Keystore
            from tests.test_wallet_fixtures import wallets_config
            from pathlib import Path
            def die(point, row):
                if point == "journaled":
                    print(row.tx_hash, flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)
            cfg = wallets_config(Path({str(tmp_path)!r}))
            fleet = WalletFleet(config=cfg, keystore=Keystore(cfg.keystore_path(Path({str(tmp_path)!r})), scrypt_n=16,
                weak_kdf_for_tests=True), journal=Journal(make_engine({f"sqlite:///{db}"!r})),
                chain=RpcChain({anvil_snapshot.url!r}), passphrase=lambda: {PASSPHRASE!r}, boundary=die)
            fleet.wallet("alice").send({TREASURY!r}, value=99, gas=21000)
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=Path.cwd(), timeout=60
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        tx_hash = proc.stdout.strip()
        assert rpc.receipt(tx_hash) is None and rpc.nonce(address) == start
        report = make_fleet(env, engine, fund=0).wallet("alice").recover()
        assert report.rebroadcast == [tx_hash]
        assert rpc.receipt(tx_hash) is not None and rpc.nonce(address) == start + 1
    engine.dispose()


def test_a_foreign_transaction_on_our_nonce_is_resolved_without_resigning(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine)
    wallet = fleet.wallet("alice")
    wallet.send(TREASURY, value=1, gas=21_000)
    same_key_sender(chain_env, fleet, "alice").send(TREASURY, value=2, gas=21_000)  # someone else uses the key
    with pytest.raises(NonceDrift) as info:
        wallet.send(TREASURY, value=3, gas=21_000)
    assert info.value.retryable
    dropped = fleet.journal.transactions(status=TxStatus.DROPPED)
    assert len(dropped) == 1 and "taken by another transaction" in str(dropped[0].reason)
    assert wallet.send(TREASURY, value=3, gas=21_000).status == 1
    assert wallet.nonce_drift() == 0


def test_resending_our_own_mined_bytes_is_not_an_error(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine)
    wallet = fleet.wallet("alice")
    receipt = wallet.send(TREASURY, value=5, gas=21_000)
    (row,) = fleet.journal.transactions()
    assert chain_env.chain.send_raw(row.raw_tx) == receipt.tx_hash  # "nonce too low"/"known": our own hash


def test_chain_ahead_by_three_is_repaired_in_one_cycle(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine)
    wallet = fleet.wallet("alice")
    wallet.send(TREASURY, value=1, gas=21_000)
    other = same_key_sender(chain_env, fleet, "alice")
    for _ in range(3):
        other.send(TREASURY, value=1, gas=21_000)
    assert wallet.nonce_drift() == 3
    report = wallet.repair_nonce()
    assert report.drift == 3 and wallet.nonce_drift() == 0
    assert wallet.send(TREASURY, value=1, gas=21_000).status == 1
    assert [e.kind for e in fleet.journal.audit_events(kind="nonce_drift")] == ["nonce_drift"]


def test_ours_ahead_by_one_rebroadcasts_the_journaled_transaction(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine, boundary=crash_at("journaled"))
    wallet = fleet.wallet("alice")
    with pytest.raises(Crash) as info:
        wallet.send(TREASURY, value=1, gas=21_000)
    wallet.boundary = None
    assert wallet.nonce_drift() == -1
    report = wallet.repair_nonce()
    assert report.drift == -1 and report.rebroadcast == [str(info.value)]
    assert wallet.wait(str(info.value)).status == 1 and wallet.nonce_drift() == 0
    assert wallet.send(TREASURY, value=1, gas=21_000).status == 1


def test_ours_ahead_with_a_hole_falls_back_to_the_chain(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine, boundary=crash_at("journaled"))
    wallet = fleet.wallet("alice")
    hashes = []
    for _ in range(2):
        with pytest.raises(Crash) as info:
            wallet.send(TREASURY, value=1, gas=21_000)
        hashes.append(str(info.value))
    wallet.boundary = None
    fleet.journal.mark_dropped(hashes[0], reason="test: lost", release_nonce=False)  # the first nonce is a hole
    assert wallet.nonce_drift() == -2
    report = wallet.repair_nonce()
    assert report.dropped == [hashes[1]] and wallet.nonce_drift() == 0
    fresh = wallet.send(TREASURY, value=5, gas=21_000)  # takes the chain's nonce
    assert fresh.status == 1 and all(chain_env.chain.receipt(h) is None for h in hashes)
    # the same fields at the same nonce sign to the same bytes: the dropped row is revived, not duplicated
    revived = wallet.send(TREASURY, value=1, gas=21_000)
    assert revived.tx_hash == hashes[1] and len(fleet.journal.transactions()) == 3


@pytest.mark.anvil
def test_anvil_set_nonce_drift_both_ways(
    anvil_snapshot: object, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    from orchestrator.adapters.chain import AnvilProcess

    assert isinstance(anvil_snapshot, AnvilProcess)
    with RpcChain(anvil_snapshot.url) as rpc:
        env = ChainEnv("anvil", rpc, anvil_snapshot.dev_accounts(), 31337)
        fleet = make_fleet(env, sqlite_engine)
        wallet = fleet.wallet("alice")
        wallet.send(TREASURY, value=1, gas=21_000)
        # +3: the chain's nonce jumps ahead of the journal
        rpc.request("anvil_setNonce", [wallet.address, hex(rpc.nonce(wallet.address) + 3)])
        assert wallet.nonce_drift() == 3
        assert wallet.repair_nonce().drift == 3 and wallet.nonce_drift() == 0
        assert wallet.send(TREASURY, value=1, gas=21_000).status == 1
        # -1: a broadcast transaction is evicted from the node's pool
        rpc.request("evm_setAutomine", [False])
        try:
            row = wallet.submit(TREASURY, value=1, gas=21_000)
            rpc.request("anvil_dropTransaction", [row.tx_hash])
        finally:
            rpc.request("evm_setAutomine", [True])
        assert wallet.nonce_drift() == -1
        report = wallet.repair_nonce()
        assert report.drift == -1 and report.rebroadcast == [row.tx_hash]
        assert wallet.wait(row.tx_hash).status == 1 and wallet.nonce_drift() == 0
        assert wallet.send(TREASURY, value=1, gas=21_000).status == 1


def test_a_refused_transaction_frees_its_nonce(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine, fund=ETH // 10)
    wallet = fleet.wallet("alice")
    with pytest.raises(ChainError) as info:
        wallet.send(TREASURY, value=10 * ETH, gas=21_000)  # more than it holds
    assert not isinstance(info.value, TxUncertain)
    (row,) = fleet.journal.transactions()
    assert row.status == TxStatus.DROPPED
    assert wallet.send(TREASURY, value=1, gas=21_000).status == 1
    assert [r.nonce for r in fleet.journal.transactions(status=TxStatus.MINED)] == [row.nonce]


def test_unreachable_node_leaves_the_transaction_pending(
    sqlite_engine: Engine, make_fleet: FleetFactory, chain_env: ChainEnv
) -> None:
    fleet = make_fleet(chain_env, sqlite_engine)
    wallet = fleet.wallet("alice")
    wallet.chain_id  # noqa: B018 - cache it while the node answers
    real = wallet.chain

    class Down:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def send_raw(self, raw_tx: bytes) -> str:
            from orchestrator.domain.errors import ChainUnavailable

            raise ChainUnavailable("connection refused (test)")

    wallet.chain = Down()  # type: ignore[assignment]
    with pytest.raises(TxUncertain) as info:
        wallet.send(TREASURY, value=1, gas=21_000)
    wallet.chain = real
    assert fleet.journal.transactions()[0].status == TxStatus.PENDING
    assert wallet.recover().rebroadcast == [info.value.tx_hash]
    assert fleet.journal.transactions()[0].status == TxStatus.MINED


def deploy_token(env: ChainEnv, tmp_path: Path) -> Dao:
    sender = env.sender(0)
    token, board, _ = Dao.deploy(
        chain=env.chain, sender=sender, name="Reward", symbol="RWD", decimals=18, supply=10_000, claim_ttl=3600
    )
    return Dao(chain=env.chain, signer=sender, store=LocalArtifactStore(tmp_path / "store"), board=board, token=token)


def test_sweep_tokens_then_native_and_top_up(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory, tmp_path: Path
) -> None:
    dao = deploy_token(chain_env, tmp_path)
    base = wallets_config(tmp_path, wallet_daily_cap_wei=ETH // 10)
    cfg = type(base).model_validate(
        {**base.model_dump(), "tokens": [{"address": dao.token, "symbol": "RWD"}], "funder": "funder"}
    )
    fleet = make_fleet(chain_env, sqlite_engine, config=cfg, names=("alice", "funder"))
    alice = fleet.keystore.entry("alice").address
    from orchestrator.entry.dao import token_abi

    dao.signer.send(dao.token, token_abi().encode_call("transfer", alice, 25 * ETH))
    treasury_native = chain_env.chain.balance(TREASURY)
    result = fleet.sweep("alice")
    assert result.swept_tokens == {"RWD": 25 * ETH} and result.swept_native > 0
    assert dao.token_balance(TREASURY) == 25 * ETH and dao.token_balance(alice) == 0
    assert chain_env.chain.balance(TREASURY) - treasury_native == result.swept_native
    assert chain_env.chain.balance(alice) < 10**15  # what is left is the gas estimate's slack
    (balance,) = [b for b in fleet.balances() if b.name == "alice"]
    assert balance.tokens == {"RWD": 0}
    topped = fleet.top_up()
    assert list(topped) == ["alice"] and chain_env.chain.balance(alice) >= cfg.gas_topup_amount_wei
    assert fleet.top_up() == {}


def test_claim_and_submit_through_the_gate(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory, tmp_path: Path
) -> None:
    dao = deploy_token(chain_env, tmp_path)
    cfg = wallets_config(
        tmp_path, allow=[{"contract": "board", "functions": ["claim(uint256)", "submit(uint256,string)"]}]
    )
    fleet = make_fleet(chain_env, sqlite_engine, config=cfg, boards={dao.board_address: list(WORK_FUNCTIONS)})
    wallet = fleet.wallet("alice")
    spec = TaskSpec(
        title="t",
        description="d",
        deliverable=Deliverable(kind=DeliverableKind.TEXT, filename="a.txt"),
        skills=["writing"],
        acceptance=["ok"],
    )
    import time

    posted = dao.post(spec, reward=ETH, deadline=int(time.time()) + 86_400)
    board = OnchainTaskBoard(chain=chain_env.chain, address=dao.board_address, store=dao.store)
    board.claim(str(posted.task_id), wallet=wallet)
    board.deliver(str(posted.task_id), dao.store.put_bytes(b"done"), wallet=wallet)
    assert board.status(str(posted.task_id)).status_text == "SUBMITTED"
    from wallets.errors import PolicyDenied

    with pytest.raises(PolicyDenied):
        board.release(str(posted.task_id), wallet=wallet)  # not allow-listed
    assert [e.rule for e in fleet.journal.audit_events(kind="policy_denied")] == ["allow_list"]
    _ = encode  # keep the import for calldata helpers


def test_environment_is_sane() -> None:
    require(os.name == "posix", "the keystore file modes need POSIX")


def test_auto_sweep_moves_tokens_at_the_threshold_and_leaves_gas(
    chain_env: ChainEnv, sqlite_engine: Engine, make_fleet: FleetFactory, tmp_path: Path
) -> None:
    dao = deploy_token(chain_env, tmp_path)
    base = wallets_config(tmp_path, wallet_daily_cap_wei=ETH // 10)
    cfg = type(base).model_validate(
        {**base.model_dump(), "tokens": [{"address": dao.token, "symbol": "RWD", "auto_sweep_at": "20"}]}
    )
    fleet = make_fleet(chain_env, sqlite_engine, config=cfg, names=("alice", "bob"))
    alice, bob = (fleet.keystore.entry(n).address for n in ("alice", "bob"))
    from orchestrator.entry.dao import token_abi

    dao.signer.send(dao.token, token_abi().encode_call("transfer", alice, 25 * ETH))
    dao.signer.send(dao.token, token_abi().encode_call("transfer", bob, 19 * ETH))  # below the threshold
    native = chain_env.chain.balance(alice)

    done = fleet.upkeep()
    assert done.topped_up == []  # no funder configured: no top-ups
    assert [(r.name, r.swept_tokens, r.swept_native) for r in done.swept] == [("alice", {"RWD": 25 * ETH}, 0)]
    assert dao.token_balance(TREASURY) == 25 * ETH and dao.token_balance(bob) == 19 * ETH
    assert 0 < native - chain_env.chain.balance(alice) < 10**16  # only the transfer's gas left alice
    assert fleet.auto_sweep() == []  # nothing left at the threshold: a second run sends nothing

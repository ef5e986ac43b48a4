"""The fault suite on anvil: fee spikes, stopped mining, expiry while stuck and dropped transactions, against the
journaled wallet (``wallets.wallet``), on the session anvil rolled back after each test. Each case injects the
fault through anvil's own RPC methods (``anvil_setNextBlockBaseFeePerGas``, ``evm_setAutomine``,
``anvil_dropTransaction``, ``evm_increaseTime``) while a thread mines blocks, and checks the chain and the
journal: every nonce mines exactly once, no nonce gap, every attempt journaled with its raw bytes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy.engine import Engine

from orchestrator.adapters.boards.onchain import board_abi
from orchestrator.adapters.chain import AnvilProcess, RpcChain
from orchestrator.adapters.chain.tx import sign_eip1559
from orchestrator.adapters.sql import make_engine
from orchestrator.domain.errors import TaskNotFound
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import dump_spec
from orchestrator.entry.dao import token_abi
from tests.conftest import ChainEnv
from tests.test_service_fixtures import DEADLINE_SECONDS, World, build_world, profile, spec
from tests.test_wallet_fixtures import PASSPHRASE, TEST_SCRYPT_N, TREASURY, FleetFactory, wallets_config
from wallets.errors import TxExpired
from wallets.fleet import WalletFleet
from wallets.journal import Journal, TxStatus
from wallets.keystore import Keystore
from wallets.wallet import KeystoreWallet

pytest_plugins = ["tests.test_wallet_fixtures"]
S = TaskState
pytestmark = [pytest.mark.anvil, pytest.mark.timeout(120)]

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


# ------------------------------------------------------------------------------------ through the orchestrator
#
# The same anvil, a whole Deworker world (``tests.test_service_fixtures``: a DAO's board and token, the agents'
# journaled wallets, an ``Orchestrator``), the orchestrator's store on SQLite and on PostgreSQL (``db_engine``).


@pytest.fixture
def world(env: ChainEnv, db_engine: Engine, tmp_path: Path) -> World:
    return build_world(env.chain, [a.private_key for a in env.accounts], tmp_path, agents=("ada",), engine=db_engine)


class StopAt(Exception):
    """Raised at a service boundary to stop a cycle there (the step before it is persisted)."""


def stop_at(point: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == point:
            raise StopAt(name)

    return hook


def board_events(world: World, name: str, task_id: int) -> int:
    """How many ``name`` events the board's log holds for ``task_id`` on the chain as it is now."""
    abi = board_abi()
    return len(
        world.chain.get_logs(
            address=world.board.address,
            topics=[abi.topic(name), task_id.to_bytes(32, "big")],
            from_block=world.start_block,
            to_block=world.chain.block_number(),
        )
    )


def assert_books_right(world: World, task_id: int) -> None:
    """What every reorg case ends with: the task once on the final chain, each money transaction signed once by
    ada, and the rewards in the database equal to the token balances."""
    assert_once_on_the_board(world, task_id)
    assert_one_claim_and_one_submit_signed(world, "ada")
    assert_rewards_equal_balances(world)


def assert_rewards_equal_balances(world: World) -> None:
    recorded: dict[str, int] = {}
    for reward in world.store.rewards():
        assert reward.agent is not None
        recorded[reward.agent] = recorded.get(reward.agent, 0) + reward.amount
    for name in (e.name for e in world.fleet.entries()):
        address = world.fleet.keystore.entry(name).address
        assert recorded.get(name, 0) == world.dao.token_balance(address), name


def assert_once_on_the_board(world: World, task_id: int) -> None:
    assert board_events(world, "TaskClaimed", task_id) == 1
    assert board_events(world, "TaskSubmitted", task_id) == 1


def assert_one_claim_and_one_submit_signed(world: World, name: str) -> None:
    """The journal holds one signed claim and one signed submit of the agent: nothing was ever re-signed."""
    wallet = world.fleet.wallet(name)
    rows = wallet.journal.transactions(wallet=wallet.address)
    by_selector: dict[str | None, list[str]] = {}
    for row in rows:
        by_selector.setdefault(row.selector, []).append(row.status)
    claim = "0x" + board_abi().encode_call("claim", 0)[:4].hex()
    submit = "0x" + board_abi().encode_call("submit", 0, "")[:4].hex()
    assert by_selector[claim] == [TxStatus.MINED] and by_selector[submit] == [TxStatus.MINED], by_selector


def reorg(rpc: RpcChain, depth: int, txs: Sequence[tuple[bytes, int]] = ()) -> None:
    """``anvil_reorg``: the last ``depth`` blocks are replaced by ``depth`` new ones; their transactions are
    discarded (not returned to the pool) unless listed in ``txs`` as (raw signed bytes, block offset in the new
    blocks). Checked by hand on anvil 1.7.1: the head keeps its number, the blocks below the reorg keep their
    hashes, the removed transactions have no receipt and the node no longer knows them."""
    rpc.request("anvil_reorg", [depth, [["0x" + raw.hex(), offset] for raw, offset in txs]])


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("removed", ["claim", "submit", "payout"])
def test_a_reorg_removing_our_claim_submit_or_payout_is_reconciled(world: World, removed: str, depth: int) -> None:
    rpc = world.chain
    assert isinstance(rpc, RpcChain)
    task_id = world.post("survive a reorg")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.boundary = stop_at("producing") if removed == "claim" else None  # the claim mined, nothing after it
    with contextlib.suppress(StopAt):
        orch.cycle()
    orch.boundary = None
    if removed == "payout":
        world.approve_submitted()
        assert orch.collect() == 1
        assert world.store.find_task(board=world.board.name, task_key=str(task_id)).state is S.PAID  # type: ignore[union-attr]
    gone = {
        "claim": lambda: world.board.status(str(task_id)).status_text == "OPEN",
        "submit": lambda: world.board.status(str(task_id)).status_text == "CLAIMED",
        "payout": lambda: world.board.status(str(task_id)).status_text == "SUBMITTED",
    }[removed]
    assert not gone()
    rpc.request("anvil_mine", [hex(depth - 1)])  # the transaction is in the oldest of the `depth` blocks replaced
    reorg(rpc, depth)
    assert gone()  # the fault happened: the chain no longer has it

    changes = orch.reconcile()

    task = world.store.find_task(board=world.board.name, task_key=str(task_id))
    assert task is not None
    if removed == "payout":
        assert task.state is S.SUBMITTED and world.store.rewards() == []  # un-credited, with an event
        assert_rewards_equal_balances(world)
        assert any("un-credited" in c for c in changes), changes
        world.dao_signer.resync()  # the DAO's approval was discarded with its block: the DAO approves again
        world.approve_submitted()
    else:
        assert any("re-broadcast after a reorg" in c for c in changes), changes
        assert not gone()  # our own transaction is back on the chain
        wallet = world.fleet.wallet("ada")
        (event,) = wallet.journal.audit_events(kind="reorged")
        assert event.tx_hash == (task.claim_tx_hash if removed == "claim" else task.submit_tx_hash)
        orch.cycle()
        world.approve_submitted()
    orch.collect()
    orch.reconcile()
    task = world.store.find_task(board=world.board.name, task_key=str(task_id))
    assert task is not None and task.state is S.PAID
    assert_books_right(world, task_id)
    assert world.dao.token_balance(world.fleet.keystore.entry("ada").address) == 10 * 10**18


def test_a_cycle_before_reconcile_after_our_claim_was_reorged_submits_once_the_claim_is_back(world: World) -> None:
    """The scheduler may run a cycle before the next reconcile: the submit is refused (the board shows no claim),
    and instead of giving the task up the claim is re-broadcast, and the submit goes out once it is back."""
    rpc = world.chain
    assert isinstance(rpc, RpcChain)
    task_id = world.post("cycle first")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.boundary = stop_at("producing")
    with contextlib.suppress(StopAt):
        orch.cycle()
    orch.boundary = None
    reorg(rpc, 1)
    assert world.board.status(str(task_id)).status_text == "OPEN"

    orch.cycle()  # produces, is refused the submit, restores the claim, then submits (resolved from the board)
    task = world.store.find_task(board=world.board.name, task_key=str(task_id))
    assert task is not None and task.state is S.SUBMITTED, task.state_reason
    (event,) = world.fleet.wallet("ada").journal.audit_events(kind="reorged")
    assert event.tx_hash == task.claim_tx_hash
    world.approve_submitted()
    orch.collect()
    task = world.store.find_task(board=world.board.name, task_key=str(task_id))
    assert task is not None and task.state is S.PAID
    assert_books_right(world, task_id)


def test_a_reorg_removing_claim_submit_and_payout_together(world: World) -> None:
    rpc = world.chain
    assert isinstance(rpc, RpcChain)
    task_id = world.post("all three")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    before = rpc.block_number()
    orch.cycle()
    world.approve_submitted()
    assert orch.collect() == 1
    assert rpc.block_number() - before == 3  # claim, submit and the DAO's approval: one block each
    reorg(rpc, 3)
    assert world.board.status(str(task_id)).status_text == "OPEN"

    orch.reconcile()  # our claim and submit re-broadcast in nonce order, the payout un-credited
    assert world.board.status(str(task_id)).status_text == "SUBMITTED"
    assert world.store.rewards() == []
    assert_rewards_equal_balances(world)
    world.dao_signer.resync()
    world.approve_submitted()
    assert orch.collect() == 1
    assert_books_right(world, task_id)


def test_a_reorg_below_the_cursors_is_read_again_from_the_last_common_block(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A reorg that replaces blocks the cursors already read with blocks holding a new task and a payout: only
    a rewind finds them (the cursors are past those block numbers)."""
    rpc = world.chain
    assert isinstance(rpc, RpcChain)
    first = world.post("paid in a replaced block")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()  # claimed and submitted; both cursors saved
    saved = world.store.board(name=world.board.name)
    assert saved is not None and saved.payout_cursor is not None
    common = int(saved.payout_cursor) - 1  # the newest checkpoint the reorg below leaves in place
    token, board = world.dao.token, world.board.address
    world.dao_signer.send(token, token_abi().encode_call("approve", board, 10**20))  # escrow for the late post
    cid = world.artifacts.put_bytes(dump_spec(spec("posted in a replaced block")))
    deadline = world.now() + DEADLINE_SECONDS
    rpc.request("anvil_mine", ["0x2"])
    orch.poll()
    orch.collect()  # the cursors stop at the head, two empty blocks above the last event
    cursors = world.store.board(name=world.board.name)
    assert cursors is not None and cursors.poll_cursor == str(rpc.block_number() + 1)
    approve = world.dao_signer.sign(board, board_abi().encode_call("approve", first))
    post = world.dao_signer.sign(
        board, board_abi().encode_call("post", token, 10**18, deadline, world.dao_signer.address, cid)
    )
    reorg(rpc, 2, [(approve.raw, 0), (post.raw, 0)])  # both land in the older of the two new blocks
    assert rpc.receipt(approve.tx_hash) is not None and rpc.receipt(post.tx_hash) is not None

    with caplog.at_level(logging.WARNING, logger="orchestrator.app.service"):
        assert orch.poll() == 1  # the late task, found by reading again from the last common block
    assert f"poll cursor stopped at (a reorg): reading again from block {common + 1}" in caplog.text
    assert orch.collect() == 1  # the payout in the replaced block
    assert_rewards_equal_balances(world)
    assert orch.poll() == 0 and orch.collect() == 0  # read once: nothing twice
    stored = world.store.board(name=world.board.name)
    assert stored is not None and stored.poll_cursor_hash == rpc.block(rpc.block_number()).hash


def test_a_post_a_reorg_replaced_under_the_same_id_quarantines_the_stored_task(world: World, env: ChainEnv) -> None:
    """The board numbers tasks in order: a reorg that drops a post and mines another in its place gives the new
    post the same id. The task stored from the old post must not be worked on with the old spec and reward."""
    rpc = world.chain
    assert isinstance(rpc, RpcChain)
    task_id = world.post("the original post")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    assert orch.poll() == 1  # stored, not matched yet
    post_nonce = rpc.nonce(world.dao_signer.address) - 1  # the post was the DAO's last transaction
    cid = world.artifacts.put_bytes(dump_spec(spec("another post in its place")))
    token, board = world.dao.token, world.board.address
    call = board_abi().encode_call(
        "post", token, 2 * 10**18, world.now() + DEADLINE_SECONDS, world.dao_signer.address, cid
    )
    rpc.request("anvil_mine", ["0x1"])  # the cursor's block is above the post's, as a poll a little later sees it
    orch.poll()
    dao_account = Account.from_key(env.accounts[0].private_key)
    fees = rpc.fees()
    replaced = sign_eip1559(
        dao_account, chain_id=rpc.chain_id, nonce=post_nonce, to=board, data=call, value=0, gas=500_000, fees=fees
    )
    reorg(rpc, 2, [(replaced.raw, 0)])  # the post's block and the one above it replaced; the new post mined first
    assert world.board.status(str(task_id)).spec_cid == cid  # the fault happened: the same id, another post

    assert orch.poll() == 0
    task = world.store.find_task(board=world.board.name, task_key=str(task_id))
    assert task is not None and task.state is S.QUARANTINED, task.state_reason
    assert "a reorg replaced it" in (task.state_reason or "") and cid in (task.state_reason or "")
    assert orch.match() == []  # nothing is claimed for it
    assert board_events(world, "TaskClaimed", task_id) == 0


def test_a_post_a_reorg_removed_quarantines_the_stored_task_and_the_cycle_goes_on(world: World) -> None:
    rpc = world.chain
    assert isinstance(rpc, RpcChain)
    gone = world.post("posted, then reorganized away")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    assert orch.poll() == 1
    reorg(rpc, 1)  # the post's block replaced by an empty one: anvil discards the post
    with pytest.raises(TaskNotFound):
        world.board.status(str(gone))  # the fault happened

    orch.cycle()  # the match finds no such task on the board: quarantined, and the cycle goes on
    task = world.store.find_task(board=world.board.name, task_key=str(gone))
    assert task is not None and task.state is S.QUARANTINED, task.state_reason
    assert "the post it was discovered from is gone" in (task.state_reason or "")
    world.dao_signer.resync()
    other = world.post("posted after the reorg", skills=["rust"])  # the id again, nobody's skill: skipped
    assert other == gone
    orch.cycle()
    assert board_events(world, "TaskClaimed", gone) == 0


def test_a_reorg_removing_the_post_and_our_claim_gives_the_task_up(world: World) -> None:
    """The post and our claim in the two blocks replaced: the claim is re-broadcast as its same bytes (never
    re-signed), reverts on a board without the task, and the task is ABANDONED; reconcile goes on."""
    rpc = world.chain
    assert isinstance(rpc, RpcChain)
    before = rpc.block_number()
    task_id = world.post("posted and claimed, then both reorganized away")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.boundary = stop_at("producing")
    with contextlib.suppress(StopAt):
        orch.cycle()
    orch.boundary = None
    depth = rpc.block_number() - before - 1  # from the post on (the DAO's escrow approval stays)
    reorg(rpc, depth)
    with pytest.raises(TaskNotFound):
        world.board.status(str(task_id))

    changes = orch.reconcile()
    assert "task 1: post gone (reorg)" in changes, changes
    task = world.store.find_task(board=world.board.name, task_key=str(task_id))
    assert task is not None and task.state is S.ABANDONED
    wallet = world.fleet.wallet("ada")
    claim = "0x" + board_abi().encode_call("claim", 0)[:4].hex()
    claims = [r for r in wallet.journal.transactions(wallet=wallet.address) if r.selector == claim]
    assert [r.status for r in claims] == [TxStatus.REVERTED]  # the same claim, once: re-broadcast, reverted
    assert orch.reconcile() == [] and board_events(world, "TaskClaimed", task_id) == 0


def test_a_claim_whose_ttl_passes_while_stuck_is_cancelled_and_the_task_released(world: World) -> None:
    """Through the orchestrator: a claim stuck under a fee spike until its expiry (deadline - claim_margin)
    passes is replaced by a self-transfer; the task is ABANDONED (released: the board shows it open, nobody
    holds it), not LOST, and no second claim is signed or sent for it."""
    rpc = world.chain
    assert isinstance(rpc, RpcChain)
    task_id = world.post("expires while stuck")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    wallet = quick(world.fleet.wallet("ada"))
    spike = 100 * rpc.fees().max_fee_per_gas
    rpc.request("evm_setAutomine", [False])

    def spike_and_expire() -> None:
        # no block until the claim is signed (at the normal fee) and pending; then every block is too dear for it
        # and comes after the claim's expiry (the task's deadline minus claim_margin)
        while not wallet.journal.transactions(wallet=wallet.address, status=TxStatus.PENDING):
            if done.wait(0.01):
                return
        rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])
        rpc.request("evm_increaseTime", [hex(DEADLINE_SECONDS)])

    orch.poll()
    (chosen,) = orch.match()  # matched at the normal fee
    done = threading.Event()
    with Miner(rpc, spike_and_expire):
        orch.advance(chosen)
        done.set()
    rpc.request("evm_setAutomine", [True])
    task = world.store.find_task(board=world.board.name, task_key=str(task_id))
    assert task is not None and task.state is S.ABANDONED, task.state_reason
    assert "cancelled" in (task.state_reason or "")
    assert world.board.status(str(task_id)).status_text == "OPEN" and world.board.status(str(task_id)).claimant is None
    assert board_events(world, "TaskClaimed", task_id) == 0
    rows = wallet.journal.transactions(wallet=wallet.address)
    claim = "0x" + board_abi().encode_call("claim", 0)[:4].hex()
    claims = [r for r in rows if r.selector == claim]
    assert len(claims) == 1 and claims[0].status == TxStatus.REPLACED  # signed once, never mined
    (cancel,) = [r for r in rows if r.nonce == claims[0].nonce and r.status == TxStatus.MINED]
    assert cancel.to == wallet.address and cancel.value == 0 and cancel.selector is None
    orch.cycle()
    orch.reconcile()
    assert len([r for r in wallet.journal.transactions(wallet=wallet.address) if r.selector == claim]) == 1
    assert board_events(world, "TaskClaimed", task_id) == 0


if __name__ == "__main__":
    _crash_worker(json.loads(sys.argv[1]))

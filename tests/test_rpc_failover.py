"""``MultiRpcChain`` on two real anvil nodes: failover, lag, broadcast, chain id, health.

What "one chain, two nodes" means here. Two anvil processes started alike (chain id 31337, the same mnemonic, so
the same genesis balances) are two nodes of one chain for as long as they see the same transactions in the same
order, and the pool makes that so: it broadcasts every signed transaction to every healthy node, each node
auto-mines it, and both reach the same state at the same height (their block hashes differ, as nothing here
compares them). A restarted node syncs from its peer the way a real node would catch up from the network: the
test loads the peer's state into it (``anvil_dumpState`` / ``anvil_loadState``) before the pool may use it.
Why not ``anvil --fork-url`` of the first: a fork fetches every account it has not touched yet from the node it
forks, so killing the primary would break the secondary too, and it pins the primary's state at the fork block.

Faults are injected for real: a node SIGKILLed at the moment the wallet's broadcast reaches it (connection
refused), a node held 20 blocks behind with ``anvil_mine`` on the other one, a transaction already in a node's
pool when the broadcast arrives ("already imported"; once mined, "nonce too low" for the same hash), a node on
another chain id, a URL where nothing listens. Time in the pool (head checks, backoff) runs on a clock the test
moves, so no case depends on how fast the machine is; every wait is bounded by the wallet's receipt timeout.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from orchestrator.adapters.chain import AnvilFailed, AnvilProcess, MultiRpcChain, RpcChain, TxSender
from orchestrator.adapters.chain.base import checksum_address
from orchestrator.adapters.chain.tx import sign_eip1559
from orchestrator.domain.errors import ChainError, ChainUnavailable
from orchestrator.domain.lifecycle import TaskState
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.cli import context
from orchestrator.entry.cli import service as service_cli
from orchestrator.entry.config import load_config
from tests.conftest import ChainEnv, require
from tests.test_service import events, states
from tests.test_service_fixtures import build_world, profile
from tests.test_wallet_fixtures import TREASURY, FleetFactory
from wallets.journal import TxStatus

pytest_plugins = ["tests.test_wallet_fixtures"]
pytestmark = pytest.mark.anvil

RECEIPT_TIMEOUT = 30.0  # seconds any wait of this module may take


class Clock:
    """The pool's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder(httpx.BaseTransport):
    """A real HTTP transport that records each JSON-RPC method sent through it, and can run a fault just before
    a given method goes out (``before``: method -> action, run once)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.methods: list[str] = []
        self.before: dict[str, Callable[[], None]] = {}
        #: method -> HTTP status to answer with instead of the node (a provider's 429 or 503), once
        self.status: dict[str, int] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        self.methods.append(method)
        action = self.before.pop(method, None)
        if action is not None:
            action()
        status = self.status.pop(method, None)
        if status is not None:
            return httpx.Response(status, json={"error": "try later"}, request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def count(self, *methods: str) -> int:
        return sum(1 for m in self.methods if m in methods)


READS = ("eth_getBalance", "eth_getTransactionCount", "eth_call", "eth_getTransactionReceipt", "eth_getLogs")


@pytest.fixture
def nodes() -> Iterator[tuple[AnvilProcess, AnvilProcess]]:
    """Two anvil nodes of one chain (see the module doc)."""
    try:
        a, b = AnvilProcess(), AnvilProcess()
    except ChainError as exc:
        require(False, f"anvil is not installed: {exc}")
        raise
    with a, b:
        yield a, b


def pool_over(urls: list[str], clock: Clock, **kwargs: Any) -> tuple[MultiRpcChain, dict[str, Recorder]]:
    recorders: dict[str, Recorder] = {}

    def transport(url: str) -> Recorder:
        recorders[url] = Recorder()
        return recorders[url]

    options: dict[str, Any] = {
        "timeout": 5.0,
        "retries": 2,
        "backoff": 0.01,
        "backoff_max": 0.05,
        "head_check_interval": 0.0,
        "node_backoff": 5.0,
        "clock": clock,
    }
    options.update(kwargs)
    return MultiRpcChain.from_urls(urls, transport=transport, **options), recorders


def direct(node: AnvilProcess) -> RpcChain:
    return RpcChain(node.url, retries=0)


def env_of(pool: MultiRpcChain, node: AnvilProcess) -> ChainEnv:
    return ChainEnv("anvil-pool", pool, node.dev_accounts(), 31337)


def restart_on(port: int) -> AnvilProcess:
    """A killed node started again on its port, as the pool knows it by URL. The port was free since the kill, so
    in a parallel run something else may hold it for a while (a connection's local port, another test's server):
    try again until ``RECEIPT_TIMEOUT``. Never someone else's node: ``AnvilProcess`` probes only the port its own
    anvil says it listens on."""
    deadline = time.monotonic() + RECEIPT_TIMEOUT
    while True:
        try:
            return AnvilProcess(port=port).start()
        except AnvilFailed as exc:
            if "already in use" not in exc.message or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def sync_from(peer: RpcChain, node: RpcChain) -> None:
    """A restarted node catching up from the network: the peer's state (blocks, accounts, head) loaded into it."""
    assert node.request("anvil_loadState", [peer.request("anvil_dumpState")]) is True
    assert node.block_number() == peer.block_number()


def test_primary_killed_mid_send_then_restarted_and_used_again(
    nodes: tuple[AnvilProcess, AnvilProcess], sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    a, b = nodes
    clock = Clock()
    pool, rec = pool_over([a.url, b.url], clock)
    ra, rb = direct(a), direct(b)
    env = env_of(pool, a)
    fleet = make_fleet(env, sqlite_engine)  # funds alice through the pool: both nodes mine it
    wallet = fleet.wallet("alice")
    wallet.receipt_timeout = RECEIPT_TIMEOUT
    if rb.balance(wallet.address) != ra.balance(wallet.address):
        # Setup, not the subject: on a loaded machine the second node can miss the funding broadcast (seen once
        # in a parallel run beside other test runs: it mined on the primary only). Give it the primary's state,
        # as a node catching up from the network would; the kill below is what this test is about.
        sync_from(ra, rb)
    assert ra.balance(wallet.address) == rb.balance(wallet.address) > 0
    first = wallet.send(TREASURY, value=1, gas=21_000)
    assert ra.receipt(first.tx_hash) is not None and rb.receipt(first.tx_hash) is not None
    assert rec[a.url].count(*READS) > 0 and rec[b.url].count(*READS) == 0  # reads went to the primary

    port = a.port
    assert port is not None and a.pid is not None
    killed_pid = a.pid

    reads_at_kill: list[int] = []

    def kill_primary() -> None:  # the wallet has journaled the transaction and read from the primary: now it dies
        reads_at_kill.append(rec[a.url].count(*READS))
        os.kill(killed_pid, signal.SIGKILL)
        os.waitpid(killed_pid, 0)

    rec[a.url].before["eth_sendRawTransaction"] = kill_primary
    second = wallet.send(TREASURY, value=2, gas=21_000)  # goes on through the secondary

    assert not a.running
    assert rb.receipt(second.tx_hash) is not None
    (row,) = [r for r in wallet.journal.transactions(wallet=wallet.address) if r.tx_hash == second.tx_hash]
    assert row.status == TxStatus.MINED
    assert pool.balance(TREASURY) == rb.balance(TREASURY)  # a chain read, answered by the secondary
    assert rec[a.url].count(*READS) == reads_at_kill[0]  # nothing was read from the dead node
    health = {h.url: h for h in pool.health()}
    assert health[a.url].state == "down" and health[a.url].last_error
    assert health[b.url].state == "reads" and health[b.url].in_use

    a.stop()
    restarted = restart_on(port)
    try:
        sync_from(rb, ra)  # the restarted node syncs before it is used again
        assert {h.url: h.state for h in pool.health()}[a.url] == "down"  # still backing off: not probed
        clock.advance(pool.node_backoff)
        health = {h.url: h for h in pool.health()}
        assert health[a.url].state == "reads" and health[b.url].state == "standby"

        a_reads_before = rec[a.url].count(*READS)
        third = wallet.send(TREASURY, value=4, gas=21_000)
        assert rec[a.url].count(*READS) > a_reads_before  # the primary serves reads again
        assert ra.receipt(third.tx_hash) is not None and rb.receipt(third.tx_hash) is not None  # broadcast to both
        assert pool.balance(TREASURY) == ra.balance(TREASURY) == rb.balance(TREASURY)
        rows = wallet.journal.transactions(wallet=wallet.address)
        nonces = sorted(r.nonce for r in rows if r.status == TxStatus.MINED)
        assert nonces == list(range(nonces[0], nonces[0] + 3))  # each payment once, no nonce used twice
        assert ra.nonce(wallet.address) == rb.nonce(wallet.address) == nonces[-1] + 1
    finally:
        restarted.stop()
        pool.close()


def test_a_service_cycle_goes_on_through_the_secondary_and_back(
    nodes: tuple[AnvilProcess, AnvilProcess], tmp_path: Path
) -> None:
    """The orchestrator over the pool: the primary dies when the agent's claim is broadcast (after the poll and
    the match read from it); the cycle claims, produces and submits through the secondary, and the reward is
    collected; restarted and synced, the primary carries the next task."""
    a, b = nodes
    clock = Clock()
    pool, rec = pool_over([a.url, b.url], clock)
    ra, rb = direct(a), direct(b)
    world = build_world(pool, [acct.private_key for acct in a.dev_accounts()], tmp_path, agents=("ada",))
    first = world.post("release notes", "10")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    port, pid = a.port, a.pid
    assert port is not None and pid is not None
    rec[a.url].before["eth_sendRawTransaction"] = lambda: (os.kill(pid, signal.SIGKILL), os.waitpid(pid, 0))

    assert orch.cycle().discovered == 1
    assert not a.running
    assert states(world)[first] is TaskState.SUBMITTED
    assert world.approve_submitted() == [first]
    assert orch.collect() == 1 and states(world)[first] is TaskState.PAID
    ada = world.fleet.keystore.entry("ada").address
    assert world.store.pnl_by_agent()["ada"].rewards[world.dao.token] == world.dao.token_balance(ada) == 10 * 10**18
    assert events(world, "TaskClaimed", first) == events(world, "TaskSubmitted", first) == 1

    a.stop()
    restarted = restart_on(port)
    try:
        sync_from(rb, ra)
        clock.advance(pool.node_backoff)
        second = world.post("glossary", "5")
        a_reads = rec[a.url].count(*READS)
        assert orch.cycle().discovered == 1
        assert rec[a.url].count(*READS) > a_reads  # the primary is back in use
        assert world.approve_submitted() == [second]
        assert orch.collect() == 1 and states(world)[second] is TaskState.PAID
        assert world.dao.token_balance(ada) == 15 * 10**18
        assert ra.nonce(ada) == rb.nonce(ada)  # both nodes saw every transaction of the agent
        assert events(world, "TaskClaimed", second) == events(world, "TaskSubmitted", second) == 1
    finally:
        restarted.stop()
        pool.close()


def test_a_read_fails_over_at_once_and_the_failed_node_backs_off(nodes: tuple[AnvilProcess, AnvilProcess]) -> None:
    a, b = nodes
    clock = Clock()
    pool, rec = pool_over([a.url, b.url], clock, head_check_interval=60.0, node_backoff=5.0)
    rb = direct(b)
    assert pool.balance(TREASURY) == 0 and rec[a.url].count("eth_getBalance") == 1
    # a provider answering 429 / 503: the same read goes to the next node, at once
    for status in (429, 503):
        rec[a.url].status["eth_getBalance"] = status
        b_before = rec[b.url].count("eth_getBalance")
        assert pool.balance(TREASURY) == 0
        assert rec[b.url].count("eth_getBalance") == b_before + 1
        clock.advance(5.0)  # past the backoff: the head check probes the primary, which answers again
        assert {h.url: h.state for h in pool.health()}[a.url] == "reads"

    rb.request("anvil_setBalance", [TREASURY, hex(5)])  # only b knows: tells which node answered
    a.stop()  # the primary dies between two reads; no head check is due
    assert pool.balance(TREASURY) == 5
    assert rec[a.url].count("eth_getBalance") == 4  # it was tried, refused the connection, and b answered
    for _ in range(3):
        assert pool.balance(TREASURY) == 5
    assert rec[a.url].count("eth_getBalance") == 4  # backing off: not tried again
    (down,) = [h for h in pool.health() if h.url == a.url]
    assert down.state == "down" and down.retry_in == 5.0 and "Connect" in (down.last_error or "")
    clock.advance(5.0)  # the backoff is over: probed again, still dead, so the pause doubles
    (down,) = [h for h in pool.health() if h.url == a.url]
    assert down.state == "down" and down.retry_in == 10.0
    assert pool.balance(TREASURY) == 5
    pool.close()


def test_a_node_twenty_blocks_behind_is_not_read_from(
    nodes: tuple[AnvilProcess, AnvilProcess], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = nodes
    clock = Clock()
    pool, rec = pool_over([a.url, b.url], clock, max_lag_blocks=5)
    ra, rb = direct(a), direct(b)
    dev = a.dev_accounts()
    recipient = checksum_address("0x00000000000000000000000000000000000c0ffe")
    assert pool.balance(recipient) == 0 and rec[a.url].count("eth_getBalance") == 1  # in sync: the primary
    # the secondary moves on without the primary: a payment only it has, then 20 more blocks
    payer = Account.from_key(dev[0].private_key)
    payment = sign_eip1559(payer, chain_id=31337, nonce=0, to=recipient, data=b"", value=7, gas=21_000, fees=rb.fees())
    rb.wait_receipt(rb.send_raw(payment.raw), timeout=RECEIPT_TIMEOUT)
    rb.request("anvil_mine", [hex(20)])
    assert rb.block_number() - ra.block_number() == 21

    with caplog.at_level(logging.WARNING, logger="orchestrator.adapters.chain.pool"):
        a_reads = rec[a.url].count(*READS)
        assert pool.balance(recipient) == 7  # the primary would say 0
        assert pool.nonce(dev[0].address) == rb.nonce(dev[0].address) == ra.nonce(dev[0].address) + 1
        assert pool.block_number() == rb.block_number()
        assert rec[a.url].count(*READS) == a_reads  # only head checks went to the primary
    assert any("21 blocks behind" in r.getMessage() and a.url in r.getMessage() for r in caplog.records)
    health = {h.url: h for h in pool.health()}
    assert (health[a.url].state, health[a.url].lag, health[a.url].in_use) == ("lagging", 21, False)
    assert health[b.url].state == "reads"

    # the primary catches up (the same payment, the same 20 blocks): it is read from again
    ra.wait_receipt(ra.send_raw(payment.raw), timeout=RECEIPT_TIMEOUT)
    ra.request("anvil_mine", [hex(20)])
    assert ra.block_number() == rb.block_number()
    assert pool.balance(recipient) == 7 and rec[a.url].count("eth_getBalance") == 2
    assert {h.url: h.state for h in pool.health()}[a.url] == "reads"
    pool.close()


def test_heads_are_checked_once_per_interval_not_on_every_read(nodes: tuple[AnvilProcess, AnvilProcess]) -> None:
    a, b = nodes
    clock = Clock()
    pool, rec = pool_over([a.url, b.url], clock, head_check_interval=10.0)
    for _ in range(5):
        pool.balance(TREASURY)
    assert [rec[a.url].count("eth_blockNumber"), rec[b.url].count("eth_blockNumber")] == [1, 1]
    clock.advance(10.0)
    pool.balance(TREASURY)
    assert [rec[a.url].count("eth_blockNumber"), rec[b.url].count("eth_blockNumber")] == [2, 2]
    assert rec[a.url].count("eth_chainId") == rec[b.url].count("eth_chainId") == 1  # asked once per node
    pool.close()


def test_a_broadcast_reaching_both_nodes_counts_once(
    nodes: tuple[AnvilProcess, AnvilProcess], sqlite_engine: Engine, make_fleet: FleetFactory
) -> None:
    a, b = nodes
    clock = Clock()
    pool, rec = pool_over([a.url, b.url], clock)
    ra, rb = direct(a), direct(b)
    fleet = make_fleet(env_of(pool, a), sqlite_engine)
    wallet = fleet.wallet("alice")
    wallet.receipt_timeout = RECEIPT_TIMEOUT
    start = pool.nonce(wallet.address)
    for rpc in (ra, rb):
        rpc.request("evm_setAutomine", [False])

    sends = [rec[a.url].count("eth_sendRawTransaction"), rec[b.url].count("eth_sendRawTransaction")]
    row = wallet.submit(TREASURY, value=3, gas=21_000)  # journaled, then broadcast to both
    assert [rec[a.url].count("eth_sendRawTransaction"), rec[b.url].count("eth_sendRawTransaction")] == [
        sends[0] + 1,
        sends[1] + 1,
    ]
    assert ra.transaction_known(row.tx_hash) and rb.transaction_known(row.tx_hash)
    # the same bytes again (a retry after a lost answer): both nodes answer "already imported": a success
    assert pool.send_raw(row.raw_tx) == row.tx_hash

    # a transaction that reached the secondary first (gossip) and the pool's broadcast after it
    dev = Account.from_key(a.dev_accounts()[1].private_key)
    signed = sign_eip1559(
        dev, chain_id=31337, nonce=ra.nonce(dev.address), to=TREASURY, data=b"", value=1, gas=21_000, fees=pool.fees()
    )
    assert rb.send_raw(signed.raw) == signed.tx_hash
    assert pool.send_raw(signed.raw) == signed.tx_hash

    for rpc in (ra, rb):
        rpc.request("evm_setAutomine", [True])
        rpc.request("anvil_mine", ["0x1"])
    receipt = wallet.wait(row.tx_hash)
    assert receipt.status == 1
    # once mined, the nodes answer "nonce too low" for these very transactions: still the same hash, no error
    assert pool.send_raw(row.raw_tx) == row.tx_hash
    assert pool.send_raw(signed.raw) == signed.tx_hash
    for rpc in (ra, rb):  # one transaction per nonce on each node, nothing else pending
        assert rpc.nonce(wallet.address, pending=True) == rpc.nonce(wallet.address, pending=False) == start + 1
        assert rpc.receipt(row.tx_hash) is not None and rpc.receipt(signed.tx_hash) is not None
    (mined,) = [r for r in wallet.journal.transactions(wallet=wallet.address) if r.nonce == start]
    assert mined.status == TxStatus.MINED and mined.attempt == 0
    following = wallet.send(TREASURY, value=1, gas=21_000)  # the next nonce, no gap
    assert pool.nonce(wallet.address) == start + 2 and ra.receipt(following.tx_hash) is not None
    pool.close()


def test_a_transaction_no_node_accepts_raises_the_first_meaningful_error(
    nodes: tuple[AnvilProcess, AnvilProcess], refused_port: int
) -> None:
    a, b = nodes
    clock = Clock()
    pool, rec = pool_over([b.url, a.url], clock, head_check_interval=60.0)  # no head check before the send
    broke = Account.create()  # no ether: every node refuses its transaction
    signed = sign_eip1559(
        broke, chain_id=31337, nonce=0, to=TREASURY, data=b"", value=10**18, gas=21_000, fees=pool.fees()
    )
    b.stop()  # the first node now refuses connections: a transient fault, tried first
    with pytest.raises(ChainError, match=r"(?i)insufficient funds") as info:
        pool.send_raw(signed.raw)
    assert not isinstance(info.value, ChainUnavailable)  # the chain's answer, not the dead node's fault
    assert rec[b.url].count("eth_sendRawTransaction") == 1 and rec[a.url].count("eth_sendRawTransaction") == 1
    assert {h.url: h.state for h in pool.health()}[b.url] == "down"
    pool.close()

    dead = f"http://127.0.0.1:{refused_port}"
    nowhere, _ = pool_over([dead, b.url], clock, retries=1)
    with pytest.raises(ChainUnavailable) as unavailable:
        nowhere.send_raw(signed.raw)
    assert dead in unavailable.value.message and b.url in unavailable.value.message
    nowhere.close()


def test_a_node_on_another_chain_is_excluded_with_a_log_line(
    nodes: tuple[AnvilProcess, AnvilProcess], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = nodes
    with AnvilProcess(chain_id=999) as other:
        clock = Clock()
        pool, rec = pool_over([other.url, a.url], clock, expected_chain_id=31337)
        with caplog.at_level(logging.ERROR, logger="orchestrator.adapters.chain.pool"):
            assert pool.chain_id == 31337
        (line,) = [r.getMessage() for r in caplog.records if other.url in r.getMessage()]
        assert "chain 999, not 31337" in line and "excluded" in line
        dev = Account.from_key(a.dev_accounts()[0].private_key)
        receipt = TxSender(pool, dev).send(TREASURY, value=1)
        assert direct(a).receipt(receipt.tx_hash) is not None
        assert rec[other.url].count(*READS, "eth_sendRawTransaction", "eth_blockNumber") == 0
        health = {h.url: h for h in pool.health()}
        assert (health[other.url].state, health[other.url].chain_id) == ("wrong chain", 999)
        assert health[a.url].state == "reads"
        pool.close()

        only_wrong, _ = pool_over([other.url], clock, expected_chain_id=31337)
        with pytest.raises(ChainError, match="no node is on chain 31337"):
            _ = only_wrong.chain_id
        only_wrong.close()


def test_health_and_errors_never_show_credentials(nodes: tuple[AnvilProcess, AnvilProcess], refused_port: int) -> None:
    a, _ = nodes
    secret_url = f"http://user:hunter2@127.0.0.1:{refused_port}/v3/KEY123?apikey=SECRET9"
    clock = Clock()
    pool, _rec = pool_over([secret_url, a.url], clock)
    assert pool.balance(TREASURY) >= 0
    shown = repr(pool.health())
    with pytest.raises(ChainUnavailable) as info:
        pool_over([secret_url], clock, retries=0)[0].block_number()
    for text in (shown, str(info.value), info.value.hint or ""):
        assert "hunter2" not in text and "KEY123" not in text and "SECRET9" not in text and "user" not in text
    assert "http://127.0.0.1:" in shown and "down" in shown
    pool.close()


def test_status_shows_each_node(
    nodes: tuple[AnvilProcess, AnvilProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused_port: int
) -> None:
    a, b = nodes
    dead = f"http://127.0.0.1:{refused_port}"
    rb = direct(b)
    rb.request("anvil_mine", [hex(20)])  # b is ahead: a lags
    monkeypatch.setenv("DEWORKER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEWORKER_CHAIN__KIND", "rpc")
    monkeypatch.setenv("DEWORKER_CHAIN__RPC_URLS", f"{a.url},{b.url},{dead}")
    monkeypatch.setattr(context.state, "_config", None)
    monkeypatch.setattr(service_cli.console, "width", 250)
    result = CliRunner().invoke(service_cli.service_app, ["status"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "http://127.0.0.1:" in line}
    assert "lagging" in rows[a.url] and re.search(r"│ +20 │", rows[a.url])  # numbers are right-aligned
    assert "reads" in rows[b.url] and re.search(rf"│ +{rb.block_number()} │", rows[b.url])
    assert "down" in rows[dead] and "Connect" in rows[dead]


def test_runtime_builds_one_pool_from_config(tmp_path: Path) -> None:
    """``chain.rpc_urls`` in order, and ``chain.rpc_url`` as a pool of one, with the pool's settings (nothing is
    contacted until the chain is used)."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "chain:\n  kind: rpc\n  rpc_urls: [http://127.0.0.1:1, 'http://k:s@127.0.0.1:2/v3/key']\n"
        "  max_lag_blocks: 9\n  head_check_interval: 0.5\n  node_backoff: 3\n  node_backoff_max: 30\n  retries: 1\n"
    )
    chain = Runtime(load_config(path, environ={})).chain
    assert isinstance(chain, MultiRpcChain)
    assert [n.display_url for n in chain.nodes] == ["http://127.0.0.1:1", "http://127.0.0.1:2/..."]
    assert (chain.max_lag_blocks, chain.head_check_interval, chain.node_backoff, chain.node_backoff_max) == (
        9,
        0.5,
        3.0,
        30.0,
    )
    assert chain.retries == 1 and all(n.retries == 0 for n in chain.nodes)  # the pool retries across nodes
    path.write_text("chain:\n  kind: rpc\n  rpc_url: http://127.0.0.1:3\n")
    single = Runtime(load_config(path, environ={})).chain
    assert isinstance(single, MultiRpcChain) and [n.url for n in single.nodes] == ["http://127.0.0.1:3/"]


def test_lag_is_measured_against_the_heads_the_nodes_report_now(nodes: tuple[AnvilProcess, AnvilProcess]) -> None:
    """A devnet reset to genesis (every node lower) is not "lagging" behind its own past: lag is against the
    highest head the nodes last reported, not the highest ever seen."""
    a, _ = nodes
    clock = Clock()
    pool, _rec = pool_over([a.url], clock, max_lag_blocks=5)
    ra = direct(a)
    ra.request("anvil_mine", [hex(20)])
    assert pool.block_number() == 20
    ra.request("anvil_reset", [])
    assert ra.block_number() == 0
    assert pool.block_number() == 0 and pool.balance(TREASURY) == 0
    assert [h.state for h in pool.health()] == ["reads"]
    pool.close()

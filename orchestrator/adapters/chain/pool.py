"""``MultiRpcChain``: the ``Chain`` port over several JSON-RPC nodes of one chain, failing over between them.

One adapter, built from ``chain.rpc_urls`` (``chain.rpc_url`` is a list of one). Each node is an ``RpcChain``
that tries once; this pool decides where the next request goes:

- **Reads** go to the first *usable* node in the configured order (the primary first). Usable: it answered
  ``eth_chainId`` with the pool's chain id, it is not backing off after a failure, and its head is no more than
  ``max_lag_blocks`` behind the highest head the nodes last reported (one that fell behind answers with stale state:
  an old nonce, a balance before the last payment, logs that stop short). Heads come from one ``eth_blockNumber``
  per node, at most every ``head_check_interval`` seconds, not on every call. A query about a block (logs up to
  ``to_block``, ``block(n)``) goes to a node whose head has reached it.
- **Transient faults** (the ``ChainUnavailable`` classification of ``RpcChain``: connection refused or reset,
  timeouts, HTTP 429/5xx, JSON-RPC -32005) send the same request to the next usable node at once. The failed node
  is left alone for ``node_backoff`` seconds, doubling per consecutive failure up to ``node_backoff_max``, then
  probed again by the head check; one that answers is used again. When every node failed, the request is tried
  again over all of them after a pause, ``retries`` times, then ``ChainUnavailable`` names each node's fault.
  Other errors (a revert, "insufficient funds") are the chain's answer, not the node's, and are raised at once.
- **Transactions** (``send_raw``) are broadcast to every node that is not backing off, lagging ones included
  (they will catch up and mine it too). A node answering "already known" / "nonce too low" for this very
  transaction (same hash) accepted it; the first hash accepted is returned. A transaction no node accepted raises
  the first refusal that is not a transient fault (else ``ChainUnavailable``), so "nonce too low" from a node
  that holds *another* transaction at that nonce still reaches ``BaseChain.send_raw``'s check.
- **Chain id**: every node is asked once. The expected id is ``expected_chain_id`` (``chain.chain_id``) or, when
  unset, the first node's answer; a node on another chain is excluded for the life of the pool, with an error in
  the log.

``health()`` reports per node: redacted URL, chain id, head, lag, state, last error (``deworker status`` shows it).
Thread-safe: node state changes under one lock; no lock is held during a request. Adapter code: must not import
web3 or eth-tester/py-evm, nor anything above the ports.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx

from orchestrator.adapters.chain.base import DEFAULT_MAX_LOG_RANGE, BaseChain
from orchestrator.adapters.chain.rpc import DEFAULT_FEE_PERCENTILE, RpcChain
from orchestrator.domain.errors import ChainError, ChainUnavailable
from orchestrator.ports.chain import BlockRef, Fees, LogEntry, Receipt

log = logging.getLogger(__name__)

#: A node whose head is more than this many blocks behind the best known head is not read from.
DEFAULT_MAX_LAG_BLOCKS = 5
#: Seconds between head checks (one ``eth_blockNumber`` per node).
DEFAULT_HEAD_CHECK_INTERVAL = 2.0
#: Seconds a failed node is left alone at first, and at most (doubling per consecutive failure in between).
DEFAULT_NODE_BACKOFF = 5.0
DEFAULT_NODE_BACKOFF_MAX = 120.0

T = TypeVar("T")

NodeState = Literal["reads", "standby", "lagging", "down", "wrong chain", "unchecked"]


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """One node as the pool sees it now. ``url`` is redacted (no credentials, path or query)."""

    url: str
    #: ``reads``: requests go here now; ``standby``: usable, after a preferred node; ``lagging``: too far behind
    #: the best head for reads; ``down``: failed, backing off; ``wrong chain``: excluded for good;
    #: ``unchecked``: has not answered yet
    state: NodeState
    chain_id: int | None
    head: int | None
    #: blocks behind the best known head (``None`` until the node reported a head)
    lag: int | None
    last_error: str | None
    #: seconds until a ``down`` node is probed again
    retry_in: float | None

    @property
    def in_use(self) -> bool:
        """Whether reads may go to this node now (``reads`` or ``standby``)."""
        return self.state in ("reads", "standby")


class _Node:
    """Mutable per-node state; changed under the pool's lock."""

    __slots__ = ("chain_id", "down_until", "excluded", "failures", "head", "last_error", "rpc")

    def __init__(self, rpc: RpcChain) -> None:
        self.rpc = rpc
        self.chain_id: int | None = None
        self.excluded: str | None = None
        self.head: int | None = None
        self.failures = 0
        self.down_until = 0.0
        self.last_error: str | None = None

    @property
    def url(self) -> str:
        return self.rpc.display_url


class MultiRpcChain(BaseChain):
    """A chain reached through several JSON-RPC nodes (see the module doc for the routing rules).

    ``nodes`` are ``RpcChain``s in order of preference; give them ``retries=0`` (``from_urls`` does), since the
    pool retries across nodes. ``retries``, ``backoff`` and ``backoff_max`` are the rounds over all nodes when
    every one failed, as ``RpcChain`` uses them for one node. ``clock`` lets a test move time.
    """

    def __init__(
        self,
        nodes: Sequence[RpcChain],
        *,
        expected_chain_id: int | None = None,
        max_lag_blocks: int = DEFAULT_MAX_LAG_BLOCKS,
        head_check_interval: float = DEFAULT_HEAD_CHECK_INTERVAL,
        node_backoff: float = DEFAULT_NODE_BACKOFF,
        node_backoff_max: float = DEFAULT_NODE_BACKOFF_MAX,
        retries: int = 5,
        backoff: float = 0.25,
        backoff_max: float = 8.0,
        max_log_range: int = DEFAULT_MAX_LOG_RANGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_log_range=max_log_range)
        if not nodes:
            raise ChainError("a node pool needs at least one JSON-RPC URL", hint="set chain.rpc_urls")
        urls = [n.url for n in nodes]
        duplicates = sorted({n.display_url for n in nodes if urls.count(n.url) > 1})
        if duplicates:
            raise ChainError(
                f"the same node is listed twice: {', '.join(duplicates)}", hint="list each URL once in chain.rpc_urls"
            )
        if max_lag_blocks < 0 or head_check_interval < 0 or retries < 0:
            raise ChainError("max_lag_blocks, head_check_interval and retries must be >= 0")
        if node_backoff <= 0 or node_backoff_max < node_backoff:
            raise ChainError("node_backoff must be > 0 and node_backoff_max >= node_backoff")
        self._nodes = [_Node(rpc) for rpc in nodes]
        self.expected_chain_id = expected_chain_id
        self.max_lag_blocks = max_lag_blocks
        self.head_check_interval = head_check_interval
        self.node_backoff = node_backoff
        self.node_backoff_max = node_backoff_max
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._clock = clock
        self._chain_id = expected_chain_id
        self._heads_at: float | None = None
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._lagging: set[str] = set()  # urls reported lagging, so the log says it once, not on every check

    @classmethod
    def from_urls(
        cls,
        urls: Sequence[str],
        *,
        timeout: float = 10.0,
        fee_percentile: float = DEFAULT_FEE_PERCENTILE,
        max_log_range: int = DEFAULT_MAX_LOG_RANGE,
        transport: Callable[[str], httpx.BaseTransport | None] | None = None,
        **pool: Any,
    ) -> MultiRpcChain:
        """A pool over ``urls`` (the preferred first); ``transport(url)`` may put a custom transport behind a
        node (tests count requests with it); ``pool`` takes the keyword arguments of ``MultiRpcChain``."""
        nodes = [
            RpcChain(
                url,
                timeout=timeout,
                retries=0,
                max_log_range=max_log_range,
                fee_percentile=fee_percentile,
                transport=transport(url) if transport is not None else None,
            )
            for url in urls
        ]
        return cls(nodes, max_log_range=max_log_range, **pool)

    def __repr__(self) -> str:
        return f"MultiRpcChain({[n.url for n in self._nodes]!r})"

    @property
    def nodes(self) -> list[RpcChain]:
        """The nodes, in order of preference."""
        return [n.rpc for n in self._nodes]

    def close(self) -> None:
        """Close every node's connection pool."""
        for node in self._nodes:
            node.rpc.close()

    def __enter__(self) -> MultiRpcChain:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ health

    def health(self) -> list[NodeHealth]:
        """Each node's state now (heads re-checked if older than ``head_check_interval``)."""
        self._refresh_heads()
        now = self._clock()
        readers = self._read_order(None, now)
        first = readers[0] if readers else None
        out = []
        with self._lock:
            for node in self._nodes:
                state = self._state(node, now)
                if state == "standby" and node is first:
                    state = "reads"
                out.append(
                    NodeHealth(
                        url=node.url,
                        state=state,
                        chain_id=node.chain_id,
                        head=node.head,
                        lag=max(0, self._best_head - node.head) if node.head is not None else None,
                        last_error=node.last_error,
                        retry_in=max(0.0, node.down_until - now) if state == "down" else None,
                    )
                )
        return out

    @property
    def _best_head(self) -> int:
        """The highest head the nodes of this chain last reported (-1 before any did). A node that is down still
        counts with its last head: a node far behind it is not read from even while the leader is away, since its
        answers are that stale. A pool of one never lags, and a chain reset on every node lowers it again."""
        heads = [n.head for n in self._nodes if n.head is not None and n.excluded is None]
        return max(heads, default=-1)

    def _state(self, node: _Node, now: float) -> NodeState:
        if node.excluded is not None:
            return "wrong chain"
        if node.failures:
            return "down"
        if node.chain_id is None or node.head is None:
            return "unchecked"
        if self._best_head - node.head > self.max_lag_blocks:
            return "lagging"
        return "standby"

    # --------------------------------------------------------------------------------------- node bookkeeping

    def _failed(self, node: _Node, exc: ChainError) -> None:
        with self._lock:
            node.failures += 1
            pause = min(self.node_backoff_max, self.node_backoff * 2 ** (node.failures - 1))
            node.down_until = self._clock() + pause
            # the fault alone when there is one: the table already names the node
            node.last_error = (exc.fault if isinstance(exc, ChainUnavailable) else None) or exc.message
            failures = node.failures
        if failures == 1:
            log.warning(
                "chain node %s failed (%s); trying the next node, this one again in %.0f s",
                node.url,
                exc.message,
                pause,
            )
        else:
            log.info("chain node %s still failing (%s); next try in %.0f s", node.url, exc.message, pause)

    def _succeeded(self, node: _Node) -> None:
        if not node.failures:
            return
        with self._lock:
            recovered, node.failures, node.down_until = node.failures, 0, 0.0
        if recovered:
            log.warning("chain node %s answers again: back in use", node.url)

    def _saw_head(self, node: _Node, head: int) -> None:
        with self._lock:
            node.head = head  # may go down: a node restarted from an old state is behind again

    def _check_chain_id(self, node: _Node) -> None:
        """Ask ``node`` for its chain id once; exclude it if it is on another chain than the pool."""
        if node.chain_id is not None or node.excluded is not None:
            return
        chain_id = node.rpc.chain_id  # ChainUnavailable propagates: the node is down, asked again later
        with self._lock:
            node.chain_id = chain_id
            if self._chain_id is None:
                self._chain_id = chain_id
            expected = self._chain_id
            if chain_id != expected:
                node.excluded = f"on chain {chain_id}, not {expected}"
        if node.excluded is not None:
            log.error(
                "chain node %s is on chain %d, not %d: excluded (check chain.rpc_urls%s)",
                node.url,
                chain_id,
                expected,
                " and chain.chain_id" if self.expected_chain_id is not None else "",
            )

    def _refresh_heads(self, *, force: bool = False) -> None:
        """Check chain ids (once) and heads: of every node not backing off, at most every ``head_check_interval``
        seconds; in between, only of failed nodes whose backoff is over (so a node is retried when its pause
        ends, not at the next head check). ``force``: every node now, backing off or not (a retry round after
        every node failed). One thread checks; others go on with the heads already known."""
        now = self._clock()
        due = force or self._heads_at is None or now - self._heads_at >= self.head_check_interval
        with self._lock:
            eligible = [
                n for n in self._nodes if n.excluded is None and (force or not n.failures or n.down_until <= now)
            ]
        probe = eligible if due else [n for n in eligible if n.failures]
        if not probe or not self._refreshing.acquire(blocking=force):
            return
        try:
            for node in probe:
                try:
                    self._check_chain_id(node)
                    if node.excluded is not None:
                        continue
                    head = node.rpc.block_number()
                except ChainError as exc:  # a probe failing for any reason (HTTP 401 too) is a node fault
                    self._failed(node, exc)
                    continue
                self._saw_head(node, head)
                self._succeeded(node)
            if due:
                self._heads_at = self._clock()
            self._log_lag()
        finally:
            self._refreshing.release()

    def _log_lag(self) -> None:
        for node in self._nodes:
            if node.head is None or node.excluded is not None:
                continue
            lag = self._best_head - node.head
            if lag > self.max_lag_blocks and node.url not in self._lagging:
                self._lagging.add(node.url)
                log.warning(
                    "chain node %s is %d blocks behind the best head %d (more than chain.max_lag_blocks=%d): "
                    "not used for reads until it catches up",
                    node.url,
                    lag,
                    self._best_head,
                    self.max_lag_blocks,
                )
            elif lag <= self.max_lag_blocks and node.url in self._lagging:
                self._lagging.discard(node.url)
                log.warning("chain node %s caught up (head %d): used for reads again", node.url, node.head)

    def _read_order(self, min_block: int | None, now: float) -> list[_Node]:
        """Nodes reads may go to, the preferred first: healthy ones in config order, then (last resort) the ones
        backing off. Never a node that is excluded, unchecked, lagging, or whose head is below ``min_block``."""
        healthy: list[_Node] = []
        resting: list[_Node] = []
        with self._lock:
            for node in self._nodes:
                if node.excluded is not None or node.chain_id is None or node.head is None:
                    continue
                if self._best_head - node.head > self.max_lag_blocks:
                    continue
                if min_block is not None and node.head < min_block:
                    continue
                (resting if node.failures else healthy).append(node)
        return healthy + resting

    # --------------------------------------------------------------------------------------------- routing

    def _wait(self, round_number: int) -> float:
        delay = min(self.backoff_max, self.backoff * 2 ** (round_number - 1))
        delay += random.uniform(0, self.backoff)  # noqa: S311 - jitter, not cryptography
        return float(min(delay, self.backoff_max))

    def _read(self, what: str, fn: Callable[[RpcChain], T], *, min_block: int | None = None) -> T:
        """``fn`` on the first usable node; on a transient fault the next one, then rounds after a pause."""
        faults: dict[str, str] = {}
        for round_number in range(self.retries + 1):
            if round_number:
                time.sleep(self._wait(round_number))
            self._refresh_heads(force=round_number > 0)
            order = self._read_order(min_block, self._clock())
            if not order and min_block is not None:
                self._refresh_heads(force=True)  # the heads known may be older than the block asked about
                order = self._read_order(min_block, self._clock())
            for node in order:
                try:
                    result = fn(node.rpc)
                except ChainUnavailable as exc:
                    faults[node.url] = exc.message
                    self._failed(node, exc)
                    continue
                self._succeeded(node)
                return result
        raise self._unavailable(what, faults, min_block)

    def _unavailable(self, what: str, faults: Mapping[str, str], min_block: int | None) -> ChainUnavailable:
        attempts = self.retries + 1
        if faults:
            detail = "; ".join(f"{url}: {fault}" for url, fault in faults.items())
        else:
            detail = "; ".join(
                f"{h.url}: {h.state}" + (f" ({h.last_error})" if h.last_error else "") for h in self._snapshot()
            )
        need = f" with block {min_block}" if min_block is not None else ""
        return ChainUnavailable(
            f"no usable node{need} answered {what} after {attempts} round{'s' if attempts != 1 else ''}: {detail}",
            hint="check that the nodes in chain.rpc_urls are running, reachable and synced (`deworker status` "
            "shows each one); add another node, or raise chain.max_lag_blocks for nodes that trail a little",
        )

    def _snapshot(self) -> list[NodeHealth]:
        now = self._clock()
        with self._lock:
            return [
                NodeHealth(n.url, self._state(n, now), n.chain_id, n.head, None, n.last_error, None)
                for n in self._nodes
            ]

    def _broadcast(self, raw_tx: bytes) -> str:
        """Send to every node not backing off (every node if all are); the first accepted hash wins."""
        faults: dict[str, str] = {}
        for round_number in range(self.retries + 1):
            if round_number:
                time.sleep(self._wait(round_number))
            self._refresh_heads(force=round_number > 0)
            now = self._clock()
            with self._lock:
                known = [n for n in self._nodes if n.excluded is None and n.chain_id is not None]
                targets = [n for n in known if not n.failures or n.down_until <= now] or known
            accepted: list[tuple[_Node, str]] = []
            refused: list[tuple[_Node, ChainError]] = []
            for node in targets:
                try:
                    # RpcChain.send_raw: "already known" / "nonce too low" for this very hash is a success
                    tx_hash = node.rpc.send_raw(raw_tx)
                except ChainUnavailable as exc:
                    faults[node.url] = exc.message
                    self._failed(node, exc)
                    continue
                except ChainError as exc:
                    refused.append((node, exc))
                    continue
                self._succeeded(node)
                accepted.append((node, tx_hash))
            if accepted:
                for other, refusal in refused:
                    log.warning(
                        "chain node %s refused transaction %s that %s accepted: %s",
                        other.url,
                        accepted[0][1],
                        accepted[0][0].url,
                        refusal.message,
                    )
                return accepted[0][1]
            if refused:
                raise refused[0][1]  # the chain's answer (nonce too low, insufficient funds, ...): not retried
        raise self._unavailable("eth_sendRawTransaction", faults, None)

    # -------------------------------------------------------------------------------------------- the port

    @property
    def chain_id(self) -> int:
        if self._chain_id is None or not any(n.chain_id is not None for n in self._nodes):
            self._refresh_heads(force=True)
        checked = [n for n in self._nodes if n.chain_id is not None]
        if self._chain_id is None or not checked:
            raise self._unavailable("eth_chainId", {n.url: n.last_error or "no answer" for n in self._nodes}, None)
        if all(n.excluded is not None for n in checked) and len(checked) == len(self._nodes):
            found = ", ".join(f"{n.url}: chain {n.chain_id}" for n in checked)
            raise ChainError(
                f"no node is on chain {self._chain_id} ({found})",
                hint="point chain.rpc_urls at nodes of the intended network, or correct chain.chain_id",
            )
        return self._chain_id

    def block_number(self) -> int:
        def head(rpc: RpcChain) -> int:
            number = rpc.block_number()
            self._saw_head(self._node_of(rpc), number)
            return number

        return self._read("eth_blockNumber", head)

    def _node_of(self, rpc: RpcChain) -> _Node:
        return next(n for n in self._nodes if n.rpc is rpc)

    def block(self, number: int | None = None) -> BlockRef:
        return self._read("eth_getBlockByNumber", lambda rpc: rpc.block(number), min_block=number)

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        return self._read("eth_call", lambda rpc: rpc.call(to, data, sender=sender))

    def estimate_gas(self, *, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        return self._read("eth_estimateGas", lambda rpc: rpc.estimate_gas(sender=sender, to=to, data=data, value=value))

    def fees(self) -> Fees:
        return self._read("eth_feeHistory", lambda rpc: rpc.fees())

    def nonce(self, address: str, *, pending: bool = True) -> int:
        return self._read("eth_getTransactionCount", lambda rpc: rpc.nonce(address, pending=pending))

    def balance(self, address: str) -> int:
        return self._read("eth_getBalance", lambda rpc: rpc.balance(address))

    def receipt(self, tx_hash: str) -> Receipt | None:
        return self._read("eth_getTransactionReceipt", lambda rpc: rpc.receipt(tx_hash))

    def transaction_known(self, tx_hash: str) -> bool:
        return self._read("eth_getTransactionByHash", lambda rpc: rpc.transaction_known(tx_hash))

    def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """A JSON-RPC read the port lacks (e.g. ``eth_getCode``), routed like any read. Not for methods that
        change a node (``anvil_mine``, ``evm_revert``): those would reach one node only; use ``nodes``."""
        return self._read(method, lambda rpc: rpc.request(method, params))

    def _send_raw(self, raw_tx: bytes) -> str:
        return self._broadcast(raw_tx)

    def _revert_reason(self, tx_hash: str, receipt: Receipt) -> str:
        return self._read(
            "the replay of a reverted transaction",
            lambda rpc: rpc._revert_reason(tx_hash, receipt),
            min_block=receipt.block_number,
        )

    def _fetch_logs(
        self, address: str, topics: tuple[bytes | None, ...], from_block: int, to_block: int
    ) -> list[LogEntry]:
        # a node whose head is below to_block would answer with the logs it has, silently short
        return self._read(
            "eth_getLogs", lambda rpc: rpc._fetch_logs(address, topics, from_block, to_block), min_block=to_block
        )

"""``RpcChain``: the ``Chain`` port over Ethereum JSON-RPC (anvil, a hosted node, any EVM node).

Why a plain ``httpx.Client`` rather than web3's ``HTTPProvider``: the adapter needs about ten methods, and it
must decide per answer whether to retry (connection errors, timeouts, HTTP 429/5xx, JSON-RPC -32005), to split
a log range ("query returned more than 10000 results"), or to fail at once (a revert, "nonce too low"). web3
wraps those in its own exception types and middleware and retries on its own terms; one ``POST`` per call
keeps the error mapping in one place (``_classify``) and the hot path short.

Adapter code: must not import web3 or eth-tester/py-evm, nor anything above the ports.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from orchestrator.adapters.chain.base import (
    DEFAULT_MAX_LOG_RANGE,
    FUND_HINT,
    BaseChain,
    NonceTooLow,
    checksum_address,
    decode_revert_reason,
    explain_mined_failure,
    normalize_tx_hash,
)
from orchestrator.domain.errors import (
    ChainError,
    ChainUnavailable,
    InsufficientFunds,
    LogQueryTooLarge,
    TransactionReverted,
)
from orchestrator.ports.chain import BlockRef, Fees, LogEntry, Receipt

GWEI = 10**9
#: Blocks of ``eth_feeHistory`` the tip is taken from, and the reward percentile asked for by default.
FEE_HISTORY_BLOCKS = 10
DEFAULT_FEE_PERCENTILE = 50.0

# How nodes and providers say "this eth_getLogs range holds too many results" (geth/erigon, Infura, Alchemy,
# QuickNode, Ankr, BSC, ...). Matched case-insensitively against the JSON-RPC error message.
LOG_RANGE_MARKERS = (
    "more than",
    "too many results",
    "too many logs",
    "block range",
    "range is too",
    "range too",
    "response size",
    "result size",
    "limit exceeded",
    "is limited to",
    "exceed max",
    "exceeds max",
    "maximum block range",
    "query timeout",
)
# ... and "slow down" (retried with backoff, never split).
RATE_LIMIT_MARKERS = ("rate limit", "too many requests", "request limit", "capacity", "throughput")
# How nodes say a call or estimate failed without a REVERT (invalid opcode, out of gas, bad jump, ...).
EVM_HALT_MARKERS = (
    "evm error",
    "invalid opcode",
    "out of gas",
    "stack underflow",
    "stack overflow",
    "invalid jump",
    "gas required exceeds",
)
NONCE_USED_MARKERS = (
    "nonce too low",
    "already known",
    "known transaction",
    "already imported",
    "already exists",
    "replacement transaction underpriced",
)


class _TransientFault(ChainUnavailable):
    """Internal: a fault worth retrying. Turned into a plain ``ChainUnavailable`` (naming the node and the attempts)
    once the attempts are used up."""

    def __init__(self, description: str, *, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after


def redact_url(url: str) -> str:
    """``url`` safe to show: scheme, host and port; credentials, path and query (API keys live there) go."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    hidden = "/..." if (parts.path not in ("", "/") or parts.query or parts.username or parts.password) else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    raise ChainError(f"the node sent {value!r} where a quantity was expected")


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    raise ChainError(f"the node sent {str(value)[:80]!r} where hex data was expected")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _revert_data(error: Mapping[str, Any]) -> bytes | None:
    data = error.get("data")
    # some nodes nest it: {"data": {"data": "0x..."}} or {"data": {"result": "0x..."}}
    if isinstance(data, Mapping):
        data = data.get("data", data.get("result"))
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


class RpcChain(BaseChain):
    """A chain reached through one JSON-RPC HTTP endpoint.

    Transient faults are retried with exponential backoff and jitter: ``retries`` more attempts after the
    first, waits growing from ``backoff`` to ``backoff_max`` seconds (a ``Retry-After`` header is honoured up
    to that cap); then ``ChainUnavailable``. Reverts and other errors are never retried. ``transport`` lets a
    test put an ``httpx.MockTransport`` behind the client. Thread-safe (httpx's client is).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        max_log_range: int = DEFAULT_MAX_LOG_RANGE,
        retries: int = 5,
        backoff: float = 0.25,
        backoff_max: float = 8.0,
        priority_fee: int | None = None,
        fee_percentile: float = DEFAULT_FEE_PERCENTILE,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(max_log_range=max_log_range)
        if retries < 0:
            raise ChainError(f"retries must be >= 0, got {retries}")
        self.url = url
        self.display_url = redact_url(url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._priority_fee = priority_fee
        if not 0 <= fee_percentile <= 100:
            raise ChainError(f"fee_percentile must be within 0..100, got {fee_percentile}")
        self.fee_percentile = fee_percentile
        self._ids = itertools.count(1)
        self._chain_id: int | None = None
        self._client = httpx.Client(
            timeout=timeout,
            headers={"content-type": "application/json", **dict(headers or {})},
            transport=transport,
            trust_env=False,  # never route a local devnet through a developer's HTTP(S)_PROXY
        )

    def __repr__(self) -> str:
        return f"RpcChain({self.display_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> RpcChain:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ JSON-RPC plumbing

    def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One JSON-RPC call with this adapter's retries and error mapping (for methods the port lacks, e.g.
        ``evm_snapshot`` or ``anvil_mine`` on a devnet). Returns the decoded ``result``."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_TransientFault),
            reraise=True,
        )
        try:
            return retrying(self._request_once, method, list(params))
        except _TransientFault as exc:
            attempts = self.retries + 1
            unavailable = ChainUnavailable(
                f"the node at {self.display_url} did not answer {method} after {attempts} "
                f"attempt{'s' if attempts != 1 else ''}: {exc.description}",
                hint=f"check that the node at {self.display_url} is running and reachable from here "
                "(for a local devnet: is anvil up?), and the provider's rate limits; "
                "raise `retries`/`timeout` for a slow node",
            )
            unavailable.fault = f"{method}: {exc.description}"
            raise unavailable from None

    def _wait(self, state: RetryCallState) -> float:
        delay = min(self.backoff_max, self.backoff * 2 ** (state.attempt_number - 1))
        delay += random.uniform(0, self.backoff)  # noqa: S311 - jitter, not cryptography
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _TransientFault) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return float(min(delay, self.backoff_max))

    def _request_once(self, method: str, params: list[Any]) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.UnsupportedProtocol as exc:
            raise ChainError(
                f"cannot reach {self.display_url}: {exc}", hint="use an http:// or https:// URL for the node"
            ) from exc
        except httpx.TimeoutException as exc:
            raise _TransientFault(f"no answer within {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _TransientFault(f"{type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ChainError(f"request to {self.display_url} failed: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # e.g. an unserializable parameter
            raise ChainError(f"cannot encode the {method} request: {exc}") from exc

        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            # a JSON-RPC error, whatever the HTTP status: a revert inside an HTTP 500 is still a revert
            self._classify(method, body["error"], status, response)
        if status == 429 or status >= 500:
            raise _TransientFault(f"HTTP {status} {response.reason_phrase}", retry_after=_retry_after(response))
        if status != 200:
            raise ChainError(
                f"{self.display_url} answered {method} with HTTP {status} {response.reason_phrase}",
                hint="check the URL (path, API key) and that it is a JSON-RPC endpoint"
                if status in (401, 403, 404, 405)
                else None,
            )
        if not isinstance(body, Mapping):
            raise ChainError(f"{self.display_url} sent a non-JSON-RPC answer to {method}: {response.text[:120]!r}")
        if "error" in body and body["error"] is not None:
            raise ChainError(f"{method} failed on {self.display_url}: {str(body['error'])[:200]}")
        return body.get("result")

    def _classify(self, method: str, error: Mapping[str, Any], status: int, response: httpx.Response) -> NoReturn:
        """Raise the right exception for a JSON-RPC error object (``status``: the HTTP status it came with)."""
        code = error.get("code")
        message = str(error.get("message", ""))
        lowered = message.lower()
        rate_limited = any(marker in lowered for marker in RATE_LIMIT_MARKERS)
        if (
            method == "eth_getLogs"
            and not rate_limited
            and (code == -32005 or any(marker in lowered for marker in LOG_RANGE_MARKERS))
        ):
            raise LogQueryTooLarge(f"{self.display_url} refused the log range: {message} (code {code})")
        if code == -32005 or rate_limited:
            raise _TransientFault(f"JSON-RPC {code}: {message}")
        data = _revert_data(error)
        if code == 3 or "revert" in lowered:
            if data is not None:
                reason = decode_revert_reason(data)
            elif "execution reverted:" in lowered:
                reason = message.split(":", 1)[1].strip()
            else:
                reason = decode_revert_reason(b"") if "revert" in lowered else message
            raise TransactionReverted(reason)
        if method in ("eth_call", "eth_estimateGas") and any(marker in lowered for marker in EVM_HALT_MARKERS):
            raise TransactionReverted(message)  # an exceptional halt fails the same way on every try
        if method in ("eth_sendRawTransaction", "eth_estimateGas") and "insufficient funds" in lowered:
            raise InsufficientFunds(f"transaction refused: {message}", hint=FUND_HINT)
        if method == "eth_sendRawTransaction" and any(marker in lowered for marker in NONCE_USED_MARKERS):
            raise NonceTooLow(f"{message} (code {code})", hint="resync the nonce from the chain")
        if code == -32601:
            raise ChainError(
                f"{self.display_url} does not support {method}: {message}",
                hint="use a node that implements the standard eth_* methods",
            )
        if status == 429 or status >= 500:
            raise _TransientFault(f"HTTP {status}, JSON-RPC {code}: {message}", retry_after=_retry_after(response))
        raise ChainError(f"{method} failed on {self.display_url}: {message} (JSON-RPC {code})")

    # -------------------------------------------------------------------------------------------- the port

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = _int(self.request("eth_chainId"))
        return self._chain_id

    def block_number(self) -> int:
        return _int(self.request("eth_blockNumber"))

    def balance(self, address: str) -> int:
        return _int(self.request("eth_getBalance", [checksum_address(address), "latest"]))

    def nonce(self, address: str, *, pending: bool = True) -> int:
        tag = "pending" if pending else "latest"
        return _int(self.request("eth_getTransactionCount", [checksum_address(address), tag]))

    def fees(self) -> Fees:
        """EIP-1559 fees for the next block: the tip is the ``fee_percentile`` reward of the last
        ``FEE_HISTORY_BLOCKS`` blocks (``eth_feeHistory``; the median over the blocks that paid any), the max fee
        twice the next block's base fee plus that tip (room for several blocks of base-fee growth). A node
        without ``eth_feeHistory`` is asked for the latest block and ``eth_maxPriorityFeePerGas``."""
        try:
            history = self.request("eth_feeHistory", [hex(FEE_HISTORY_BLOCKS), "latest", [self.fee_percentile]])
        except ChainUnavailable:
            raise
        except ChainError:
            history = None  # an old node or a provider that does not serve it
        if isinstance(history, Mapping) and history.get("baseFeePerGas"):
            base_fee = _int(history["baseFeePerGas"][-1])  # the last entry is the next block's base fee
            tips = sorted(_int(r[0]) for r in history.get("reward") or () if r and _int(r[0]) > 0)
            priority = self._priority_fee
            if priority is None:
                priority = tips[len(tips) // 2] if tips else self._suggested_tip()
            return Fees(max_fee_per_gas=2 * base_fee + priority, max_priority_fee_per_gas=priority)
        block = self.request("eth_getBlockByNumber", ["latest", False])
        if not isinstance(block, Mapping) or block.get("baseFeePerGas") is None:
            raise ChainError(
                f"{self.display_url} reports no base fee: the chain is not EIP-1559",
                hint="use an EIP-1559 chain (london or later)",
            )
        base_fee = _int(block["baseFeePerGas"])
        priority = self._priority_fee if self._priority_fee is not None else self._suggested_tip()
        return Fees(max_fee_per_gas=2 * base_fee + priority, max_priority_fee_per_gas=priority)

    def _suggested_tip(self) -> int:
        """The node's suggested tip (no block paid one recently), or 1 gwei, the usual floor."""
        try:
            return _int(self.request("eth_maxPriorityFeePerGas"))
        except ChainError as exc:
            if isinstance(exc, ChainUnavailable):
                raise
            return GWEI  # the method is optional

    def call(self, to: str, data: bytes, *, sender: str | None = None) -> bytes:
        return self._call(sender=sender, to=to, data=data, value=0, gas=None, block="latest")

    def estimate_gas(self, *, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        tx: dict[str, Any] = {
            "from": checksum_address(sender),
            "data": "0x" + bytes(data).hex(),
            "value": hex(value),
        }
        if to is not None:
            tx["to"] = checksum_address(to)
        return _int(self.request("eth_estimateGas", [tx]))

    def _send_raw(self, raw_tx: bytes) -> str:
        result = self.request("eth_sendRawTransaction", ["0x" + raw_tx.hex()])
        if not isinstance(result, str):
            raise ChainError(f"{self.display_url} answered eth_sendRawTransaction with {result!r}")
        return normalize_tx_hash(result)

    def transaction_known(self, tx_hash: str) -> bool:
        return self.request("eth_getTransactionByHash", [normalize_tx_hash(tx_hash)]) is not None

    def block(self, number: int | None = None) -> BlockRef:
        tag = "latest" if number is None else hex(number)
        raw = self.request("eth_getBlockByNumber", [tag, False])
        if not isinstance(raw, Mapping):
            raise ChainError(f"{self.display_url} has no block {tag}")
        return BlockRef(number=_int(raw["number"]), hash=str(raw["hash"]).lower(), timestamp=_int(raw["timestamp"]))

    def receipt(self, tx_hash: str) -> Receipt | None:
        raw = self.request("eth_getTransactionReceipt", [normalize_tx_hash(tx_hash)])
        if raw is None:
            return None
        if not isinstance(raw, Mapping) or raw.get("blockNumber") is None:
            return None  # some nodes answer a pending transaction with a receipt-shaped object
        return Receipt(
            tx_hash=normalize_tx_hash(raw["transactionHash"]),
            block_number=_int(raw["blockNumber"]),
            status=_int(raw.get("status", "0x1")),
            gas_used=_int(raw["gasUsed"]),
            effective_gas_price=_int(raw.get("effectiveGasPrice", "0x0")),
            logs=tuple(self._log_entry(log) for log in raw.get("logs", ())),
        )

    def _revert_reason(self, tx_hash: str, receipt: Receipt) -> str:
        tx = self.request("eth_getTransactionByHash", [tx_hash])
        if not isinstance(tx, Mapping):
            return "reverted (the node no longer returns the transaction, so it cannot be replayed)"
        gas = _int(tx["gas"])
        # Replay on the parent block's state: exact when the transaction was first in its block (always so
        # with auto-mine); "latest" would run on state that its own block already changed.
        replay: str | None = None
        try:
            self._call(
                sender=tx["from"],
                to=tx.get("to"),
                data=_bytes(tx.get("input", tx.get("data", "0x"))),
                value=_int(tx.get("value", "0x0")),
                gas=gas,
                block=hex(max(receipt.block_number - 1, 0)),
            )
        except TransactionReverted as exc:
            replay = exc.reason
        except ChainUnavailable:
            raise
        except ChainError as exc:
            replay = f"the replay failed too: {exc.message}"
        return explain_mined_failure(
            replay, gas_limit=gas, gas_used=receipt.gas_used, block_number=receipt.block_number
        )

    def _fetch_logs(
        self, address: str, topics: tuple[bytes | None, ...], from_block: int, to_block: int
    ) -> list[LogEntry]:
        query: dict[str, Any] = {"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if topics:
            query["topics"] = ["0x" + t.hex() if t is not None else None for t in topics]
        result = self.request("eth_getLogs", [query])
        if not isinstance(result, list):
            raise ChainError(f"{self.display_url} answered eth_getLogs with {str(result)[:80]!r}")
        return [self._log_entry(raw) for raw in result if not raw.get("removed", False)]

    # ------------------------------------------------------------------------------------------ internals

    def _call(
        self, *, sender: str | None, to: str | None, data: bytes, value: int, gas: int | None, block: str
    ) -> bytes:
        tx: dict[str, Any] = {"data": "0x" + bytes(data).hex()}
        if to is not None:
            tx["to"] = checksum_address(to)
        if sender is not None:
            tx["from"] = checksum_address(sender)
        if value:
            tx["value"] = hex(value)
        if gas is not None:
            tx["gas"] = hex(gas)
        return _bytes(self.request("eth_call", [tx, block]))

    @staticmethod
    def _log_entry(raw: Mapping[str, Any]) -> LogEntry:
        return LogEntry(
            address=checksum_address(raw["address"]),
            topics=tuple(_bytes(t) for t in raw.get("topics", ())),
            data=_bytes(raw.get("data", "0x")),
            block_number=_int(raw["blockNumber"]),
            tx_hash=normalize_tx_hash(raw["transactionHash"]),
            log_index=_int(raw["logIndex"]),
        )

"""A small, fast ABI codec for our contracts: calldata, return values and event logs.

web3's ``Contract`` objects want a provider and cost several RPC calls per transaction; the board and the DAO tools
only need to encode calls and decode outputs and logs, so this wraps eth-abi directly. Adapter code: the domain
core must not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from eth_abi.abi import decode, encode
from eth_utils.abi import (
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)
from eth_utils.address import to_checksum_address

from orchestrator.ports.chain import LogEntry


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """An event log decoded against the ABI."""

    name: str
    args: dict[str, Any]
    log: LogEntry


def _normalize(typ: str, value: Any) -> Any:
    """eth-abi decodes addresses in lower case; everything above the edge uses checksummed ones."""
    if typ == "address" and isinstance(value, str):
        return to_checksum_address(value)
    return value


class ContractABI:
    """Encode calls and decode outputs/events for one contract ABI (a list of JSON ABI entries)."""

    def __init__(self, abi: Sequence[dict[str, Any]]) -> None:
        self.abi = list(abi)
        self._functions: dict[str, Any] = {}
        self._events_by_topic: dict[bytes, Any] = {}
        self._topics: dict[str, bytes] = {}
        self._constructor: Any = None
        for entry in self.abi:
            kind = entry.get("type")
            if kind == "function":
                self._functions[entry["name"]] = entry
            elif kind == "event":
                topic = event_abi_to_log_topic(cast(Any, entry))
                self._events_by_topic[topic] = entry
                self._topics[entry["name"]] = topic
            elif kind == "constructor":
                self._constructor = entry

    def _fn(self, name: str) -> Any:
        try:
            return self._functions[name]
        except KeyError:
            raise KeyError(f"no function {name!r} in this ABI") from None

    def function(self, name: str) -> Any:
        """The ABI entry of function ``name`` (``KeyError`` if there is none)."""
        return self._fn(name)

    def encode_call(self, name: str, *args: Any) -> bytes:
        """Calldata for ``name(*args)``: the 4-byte selector plus the ABI-encoded arguments."""
        fn = self._fn(name)
        types = get_abi_input_types(fn)
        return function_abi_to_4byte_selector(fn) + encode(types, list(args))

    def encode_constructor(self, *args: Any) -> bytes:
        if self._constructor is None:
            return b""
        return encode(get_abi_input_types(self._constructor), list(args))

    def decode_output(self, name: str, data: bytes) -> tuple[Any, ...]:
        """The decoded return values of ``name`` (a 1-tuple for single returns)."""
        types = get_abi_output_types(self._fn(name))
        return tuple(decode(types, data))

    def topic(self, event: str) -> bytes:
        """topic0 of an event."""
        return self._topics[event]

    def decode_log(self, log: LogEntry) -> DecodedEvent | None:
        """Decode a log of this contract; None for logs whose topic0 is not one of our events."""
        if not log.topics:
            return None
        entry = self._events_by_topic.get(log.topics[0])
        if entry is None:
            return None
        indexed = [i for i in entry["inputs"] if i.get("indexed")]
        plain = [i for i in entry["inputs"] if not i.get("indexed")]
        args: dict[str, Any] = {}
        for inp, topic in zip(indexed, log.topics[1:], strict=True):
            (args[inp["name"]],) = decode([inp["type"]], topic)
        values = decode([i["type"] for i in plain], log.data) if plain else ()
        for inp, value in zip(plain, values, strict=True):
            args[inp["name"]] = value
        for inp in entry["inputs"]:
            args[inp["name"]] = _normalize(inp["type"], args[inp["name"]])
        return DecodedEvent(entry["name"], args, log)

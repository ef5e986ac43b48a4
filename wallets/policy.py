"""The policy gate: default deny, checked before anything is signed.

A transaction passes only if every rule allows it:

- ``chain_ids``: the chain is listed; a mainnet only with ``allow_mainnet: true``.
- ``allow_list``: calldata calls an allow-listed (contract, function selector) pair. Contract creation and
  calldata shorter than a selector never pass. Sweeps are one built-in call: ``transfer(treasury, amount)`` on
  a configured token. The other is a project pool's revenue ``claim(token)``, from a wallet the gate's ``pools``
  map lists as a share holder of that pool (its own revenue: the pool pays only the caller), and nothing else on
  a pool.
- ``allow_value``: native value is 0 unless a ``ValueRule`` allows it for that target and function (up to its
  ``max_wei``); plain transfers (no calldata) go only to the treasury, a fleet wallet or a ``ValueRule`` target.
- ``recipients``: ERC-20 ``transfer``/``approve``/``transferFrom`` amounts go only to the treasury, a fleet
  wallet or a listed recipient; the calldata must decode exactly.
- ``max_gas_per_tx``: the gas limit.
- ``max_fee_per_gas_wei``: the max fee per gas, per chain (a fee replacement too: a spike does not raise it).
- ``cancel``: the one transaction with neither calldata nor value the gate signs is a replacement that frees a
  nonce (zero value to the wallet itself); it passes every other rule like any transaction.
- daily caps (``wallet_daily_cap_wei``, ``fleet_daily_cap_wei``, ``token_caps``): gas at the max fee, value and
  token amounts per UTC day, per wallet and for the fleet, booked in the journal in the same database
  transaction that reserves the nonce (so they hold across restarts and processes). Amounts bound for the
  treasury are not spending; their gas is. A token without a cap cannot leave except to the treasury.

A refusal raises ``PolicyDenied`` naming the rule; the wallet writes an audit event. Pure logic: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from orchestrator.domain.money import units
from wallets.config import MAINNET_CHAIN_IDS, PolicyConfig
from wallets.errors import PolicyDenied
from wallets.journal import FLEET, NATIVE, Limit, Spend


def _decodes_exactly(types: tuple[str, ...], data: bytes) -> bool:
    """The calldata after the selector is exactly ``types``, ABI-encoded (no trailing bytes)."""
    if len(data) != 4 + 32 * len(types):
        return False
    try:
        decode(list(types), data[4:])
    except DecodingError:
        return False
    return True


@lru_cache(maxsize=4096)
def _gwei(wei: int) -> str:
    return units(wei, 9)


def _checksum(address: str) -> str:
    """EIP-55 form, cached: a keccak per call would be most of the gate's cost on the signing path."""
    return str(to_checksum_address(address))


def selector_of(function: str) -> bytes:
    """``"0xa9059cbb"`` or ``"transfer(address,uint256)"`` (validated by the config) -> the 4-byte selector."""
    text = function.strip()
    return bytes.fromhex(text[2:]) if text.startswith("0x") else keccak(text=text)[:4]


TRANSFER = selector_of("transfer(address,uint256)")
APPROVE = selector_of("approve(address,uint256)")
TRANSFER_FROM = selector_of("transferFrom(address,address,uint256)")
#: ProjectPool.claim(token): pays the caller its own revenue
POOL_CLAIM = selector_of("claim(address)")
_ERC20_ARGS: dict[bytes, tuple[list[str], int, int]] = {
    # selector -> (argument types, index of the recipient/spender, index of the amount)
    TRANSFER: (["address", "uint256"], 0, 1),
    APPROVE: (["address", "uint256"], 0, 1),
    TRANSFER_FROM: (["address", "address", "uint256"], 1, 2),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gate found in an allowed transaction: its selector and what it spends besides gas."""

    selector: bytes | None
    value_counted: int
    token: str | None
    token_amount: int

    def spend(self, gas_wei: int) -> Spend:
        return Spend(gas_wei=gas_wei, value_wei=self.value_counted, token=self.token, token_amount=self.token_amount)


class PolicyGate:
    """The effective policy for one fleet: ``PolicyConfig`` plus the treasury, the fleet's own addresses, the
    configured tokens (for sweeps) and the boards with what their adapters call (what ``contract: board`` means)."""

    def __init__(
        self,
        policy: PolicyConfig,
        *,
        treasury: str | None = None,
        fleet: Iterable[str] = (),
        tokens: Iterable[str] = (),
        boards: Mapping[str, Sequence[str]] | None = None,
        pools: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.policy = policy
        self.treasury = to_checksum_address(treasury) if treasury else None
        self.fleet = frozenset(to_checksum_address(a) for a in fleet)
        self.tokens = frozenset(to_checksum_address(a) for a in tokens)
        #: board contract -> the functions its adapter says an agent's wallet calls there
        self.boards = {to_checksum_address(a): tuple(fs) for a, fs in (boards or {}).items()}
        #: project pool -> the fleet wallets holding shares in it (who may ``claim`` there)
        self.pools: dict[str, frozenset[str]] = {
            str(to_checksum_address(a)): frozenset(str(to_checksum_address(h)) for h in holders)
            for a, holders in (pools or {}).items()
        }
        self._calls: set[tuple[str, bytes]] = set()
        for rule in policy.allow:
            if rule.contract == "board":  # every configured board (none known on this chain: nothing allowed)
                for board, called in self.boards.items():
                    self._calls.update((board, selector_of(f)) for f in (rule.functions or called))
            else:
                assert rule.functions is not None  # AllowRule refuses an address without functions
                contract = to_checksum_address(rule.contract)
                self._calls.update((contract, selector_of(f)) for f in rule.functions)
        self._values: dict[tuple[str, bytes | None], int] = {}
        for value_rule in policy.allow_value:
            key = (
                to_checksum_address(value_rule.to),
                selector_of(value_rule.function) if value_rule.function else None,
            )
            self._values[key] = max(self._values.get(key, 0), value_rule.max_wei)
        self._recipients = (
            frozenset(to_checksum_address(a) for a in policy.recipients)
            | self.fleet
            | ({self.treasury} if self.treasury else set())
        )
        self._token_caps = {to_checksum_address(cap.token): cap for cap in policy.token_caps}

    def __repr__(self) -> str:
        return f"PolicyGate(calls={len(self._calls)}, chains={self.policy.chain_ids})"

    # ------------------------------------------------------------------------------------------- checks

    def check(
        self, *, chain_id: int, to: str | None, data: bytes, value: int, gas: int | None, wallet: str | None = None
    ) -> Verdict:
        """Every static rule for one transaction (the daily caps are checked when the journal books it).
        ``gas=None`` skips the gas rule: call again with the gas limit before signing. ``wallet`` is the signing
        wallet (a pool ``claim`` passes only for a wallet that holds shares in that pool)."""
        self._check_chain(chain_id)
        if to is None:
            raise PolicyDenied(
                "contract creation is not allowed from agent wallets", rule="allow_list", hint="deploy from another key"
            )
        target = _checksum(to)
        if value < 0:
            raise PolicyDenied(f"negative value {value}", rule="allow_value")
        if data and len(data) < 4:
            raise PolicyDenied(f"calldata of {len(data)} bytes is shorter than a function selector", rule="allow_list")
        selector = bytes(data[:4]) if data else None
        token, token_amount, recipient = None, 0, None
        if selector is None:
            self._check_plain_transfer(target, value)
        else:
            if selector in _ERC20_ARGS:
                recipient, token_amount = self._erc20_args(selector, data)
                token = target
            sweep = (
                self.treasury is not None
                and selector == TRANSFER
                and target in self.tokens
                and recipient == self.treasury
            )
            pool_claim = (
                selector == POOL_CLAIM
                and wallet is not None
                and _checksum(wallet) in self.pools.get(target, frozenset())
                and _decodes_exactly(("address",), data)
            )
            if (target, selector) not in self._calls and not sweep and not pool_claim:
                raise PolicyDenied(
                    f"{target} function 0x{selector.hex()} is not on the allow list",
                    rule="allow_list",
                    hint="add {contract, functions} to wallets.policy.allow if agents must call it",
                )
            if value:
                self._check_value(target, selector, value)
        if recipient is not None and recipient not in self._recipients:
            raise PolicyDenied(
                f"token amounts may not go to {recipient} (not the treasury, a fleet wallet or a listed recipient)",
                rule="recipients",
                hint="add the address to wallets.policy.recipients if it is trusted",
            )
        to_treasury = self.treasury is not None and (recipient or target) == self.treasury
        if token is not None and token_amount and not to_treasury and token not in self._token_caps:
            raise PolicyDenied(
                f"token {token} has no daily cap, so none of it may leave except to the treasury",
                rule="token_caps",
                hint="add {token, wallet_daily, fleet_daily} to wallets.policy.token_caps",
            )
        if gas is not None:
            self.check_gas(gas)
        return Verdict(
            selector=selector,
            value_counted=0 if (selector is None and to_treasury) else value,
            token=token,
            token_amount=0 if to_treasury else token_amount,
        )

    def check_gas(self, gas: int) -> None:
        if gas > self.policy.max_gas_per_tx:
            raise PolicyDenied(
                f"gas limit {gas} is above the cap of {self.policy.max_gas_per_tx}",
                rule="max_gas_per_tx",
                hint="raise wallets.policy.max_gas_per_tx if this call really needs it",
            )

    def check_fee(self, chain_id: int, max_fee_per_gas: int) -> None:
        """The per-chain cap on the max fee per gas (checked for every signature, replacements included)."""
        cap = self.policy.max_fee_per_gas_wei.get(chain_id)
        if cap is None or max_fee_per_gas > cap:
            raise PolicyDenied(
                f"max fee per gas {_gwei(max_fee_per_gas)} gwei on chain {chain_id} is above its cap of "
                f"{_gwei(cap)} gwei"
                if cap is not None
                else f"chain {chain_id} has no max fee per gas cap",
                rule="max_fee_per_gas_wei",
                hint=f"wait for fees to fall, or raise wallets.policy.max_fee_per_gas_wei[{chain_id}]",
            )

    def check_cancel(self, *, chain_id: int, wallet: str, to: str | None, data: bytes, value: int) -> Verdict:
        """A nonce-freeing replacement: zero value, no calldata, to ``wallet`` itself (nothing else passes)."""
        self._check_chain(chain_id)
        if to is None or _checksum(to) != _checksum(wallet) or data or value:
            raise PolicyDenied(
                "a cancellation must be a zero-value transfer with no calldata to the wallet itself", rule="cancel"
            )
        return Verdict(selector=None, value_counted=0, token=None, token_amount=0)

    def _check_chain(self, chain_id: int) -> None:
        if chain_id in MAINNET_CHAIN_IDS and not self.policy.allow_mainnet:
            raise PolicyDenied(
                f"chain {chain_id} is a mainnet and allow_mainnet is false",
                rule="allow_mainnet",
                hint="set wallets.policy.allow_mainnet: true to spend real money",
            )
        if chain_id not in self.policy.chain_ids:
            raise PolicyDenied(
                f"chain {chain_id} is not in the allowed chain ids {self.policy.chain_ids}",
                rule="chain_ids",
                hint="add it to wallets.policy.chain_ids",
            )

    def _check_plain_transfer(self, target: str, value: int) -> None:
        if value == 0:
            raise PolicyDenied(f"an empty transaction to {target} (no calldata, no value)", rule="allow_list")
        if target == self.treasury or target in self.fleet:
            return
        self._check_value(target, None, value)

    def _check_value(self, target: str, selector: bytes | None, value: int) -> None:
        limit = self._values.get((target, selector))
        what = "a plain transfer" if selector is None else f"function 0x{selector.hex()}"
        if limit is None:
            raise PolicyDenied(
                f"{units(value)} ETH to {target} with {what}: value must be 0 there",
                rule="allow_value",
                hint="add {to, function, max_wei} to wallets.policy.allow_value if it must carry value",
            )
        if value > limit:
            raise PolicyDenied(
                f"{units(value)} ETH to {target} is above its max_wei of {units(limit)} ETH", rule="allow_value"
            )

    @staticmethod
    def _erc20_args(selector: bytes, data: bytes) -> tuple[str, int]:
        types, who, amount = _ERC20_ARGS[selector]
        if len(data) != 4 + 32 * len(types):
            raise PolicyDenied(f"ERC-20 calldata of {len(data)} bytes does not decode exactly", rule="recipients")
        try:
            args = decode(types, bytes(data[4:]), strict=True)
        except DecodingError:
            raise PolicyDenied("ERC-20 calldata does not decode", rule="recipients") from None
        return _checksum(args[who]), int(args[amount])

    # -------------------------------------------------------------------------------------------- caps

    def limits(self, wallet: str) -> list[Limit]:
        """The daily caps that apply to ``wallet``'s transactions."""
        p = self.policy
        out = [
            Limit(wallet, NATIVE, p.wallet_daily_cap_wei, "wallet_daily_cap_wei"),
            Limit(FLEET, NATIVE, p.fleet_daily_cap_wei, "fleet_daily_cap_wei"),
        ]
        for cap in p.token_caps:
            token = to_checksum_address(cap.token)
            out.append(Limit(wallet, token, cap.wallet_daily, "token_caps.wallet_daily"))
            out.append(Limit(FLEET, token, cap.fleet_daily, "token_caps.fleet_daily"))
        return out

    def describe(self) -> dict[str, Any]:
        """The effective policy, for ``deworker wallet policy``."""
        p = self.policy
        return {
            "chain_ids": p.chain_ids,
            "allow_mainnet": p.allow_mainnet,
            "treasury": self.treasury,
            "calls": sorted(f"{contract} 0x{sel.hex()}" for contract, sel in self._calls),
            "sweeps": sorted(f"{token} transfer(treasury)" for token in self.tokens) if self.treasury else [],
            "value": sorted(
                f"{to} {'plain transfer' if sel is None else '0x' + sel.hex()} <= {cap} wei"
                for (to, sel), cap in self._values.items()
            ),
            "plain_transfers_to": sorted({*self.fleet, *([self.treasury] if self.treasury else [])}),
            "token_recipients": sorted(self._recipients),
            "max_gas_per_tx": p.max_gas_per_tx,
            "max_fee_per_gas_wei": dict(p.max_fee_per_gas_wei),
            "wallet_daily_cap_wei": p.wallet_daily_cap_wei,
            "fleet_daily_cap_wei": p.fleet_daily_cap_wei,
            "token_caps": [c.model_dump() for c in p.token_caps],
        }

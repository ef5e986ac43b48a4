"""Typed configuration of the wallets: where keystores live, where the passphrase comes from, the treasury, the
tokens to track, gas top-ups, and the policy gate.

The lead wires ``WalletsConfig`` into ``orchestrator.entry.config.Config`` as the ``wallets`` section, so every key
here is ``wallets.<key>`` in ``config.yaml`` (``wallets.policy.<key>`` for the policy). Secrets never live here:
``passphrase_env`` / ``passphrase_file`` only say where the keystore passphrase is.

Must not import any adapter: standard library and pydantic only (``orchestrator.entry.config`` imports it). Addresses
are
checked for shape here and checksummed by the policy gate; function signatures become selectors there too.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

#: Chain ids of public main networks (real money). The gate refuses them unless ``allow_mainnet`` is true.
MAINNET_CHAIN_IDS: frozenset[int] = frozenset(
    {
        1,  # Ethereum
        10,  # Optimism
        25,  # Cronos
        56,  # BNB Smart Chain
        100,  # Gnosis
        137,  # Polygon PoS
        250,  # Fantom
        324,  # zkSync Era
        1101,  # Polygon zkEVM
        5000,  # Mantle
        8453,  # Base
        42161,  # Arbitrum One
        42170,  # Arbitrum Nova
        42220,  # Celo
        43114,  # Avalanche C-Chain
        59144,  # Linea
        81457,  # Blast
        534352,  # Scroll
        7777777,  # Zora
    }
)
#: The dev chains Deworker runs on out of the box: anvil and the in-process py-evm chain.
DEV_CHAIN_IDS: tuple[int, ...] = (31337, 131277322940537)
DEFAULT_PASSPHRASE_ENV = "DEWORKER_WALLET_PASSPHRASE"
#: The embedded default fee cap per dev chain: 500 gwei per gas.
DEFAULT_MAX_FEE_PER_GAS_WEI = 500 * 10**9
#: Gas of a plain ETH transfer (no calldata).
PLAIN_TRANSFER_GAS = 21_000


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SELECTOR = re.compile(r"^0x[0-9a-fA-F]{8}$")
_SIGNATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\([A-Za-z0-9_,\[\]()]*\)$")


def unquoted_hex(value: object) -> object:
    """YAML reads an unquoted ``0x...`` as an integer: turn it back into the 20-byte address it was written as
    (lower-case; a leading zero digit survives because the width is fixed)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**160:
        return f"0x{value:040x}"
    return value


def _address(value: str) -> str:
    text = value.strip()
    if not _ADDRESS.match(text):
        raise ValueError("expected a 0x-prefixed 20-byte address (40 hex digits)")
    return text


def _function(value: str) -> str:
    text = value.strip()
    if not (_SELECTOR.match(text) or _SIGNATURE.match(text)):
        raise ValueError(
            f"expected a selector (0x1234abcd) or a signature like transfer(address,uint256), got {text!r}"
        )
    return text


#: An address in config: ``0x`` and 40 hex digits, quoted or not.
Address = Annotated[str, BeforeValidator(unquoted_hex), AfterValidator(_address)]
Function = Annotated[str, AfterValidator(_function)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AllowRule(_Section):
    """Calls the agents' wallets may make: these functions on this contract. ``contract: board`` means every
    configured board, and without ``functions`` the functions each board's adapter says an agent calls there."""

    contract: Address | Annotated[str, Field(pattern=r"^board$")] = Field(
        description="contract address, or 'board' for the configured task board"
    )
    functions: list[Function] | None = Field(
        default=None,
        min_length=1,
        description="selectors (0x1234abcd) or signatures such as claim(uint256); null (contract: board only) = "
        "what the board's adapter calls",
    )

    @model_validator(mode="after")
    def _functions_for_addresses(self) -> AllowRule:
        if self.functions is None and self.contract != "board":
            raise ValueError(f"list the functions allowed on {self.contract}")
        return self


class ValueRule(_Section):
    """Native value a wallet may attach: to this address, with this function (``null``: a plain transfer)."""

    to: Address
    function: Function | None = Field(default=None, description="null = a plain transfer with no calldata")
    max_wei: int = Field(ge=1, description="most wei one transaction may carry")


class TokenCap(_Section):
    """Daily caps on an ERC-20's transfer/approve amounts, in base units. A token without a cap cannot leave
    a wallet (except to the treasury)."""

    token: Address
    wallet_daily: int = Field(ge=0, description="per wallet per UTC day")
    fleet_daily: int = Field(ge=0, description="all wallets together per UTC day")


class PolicyConfig(_Section):
    """The policy gate. Everything not allowed here is refused before anything is signed."""

    chain_ids: list[int] = Field(
        default=list(DEV_CHAIN_IDS), description="chains wallets may sign for (default: anvil and in-process)"
    )
    allow_mainnet: bool = Field(default=False, description="must be true to list a mainnet chain id in chain_ids")
    allow: list[AllowRule] = Field(
        default_factory=lambda: [AllowRule(contract="board")],
        description="(contract, functions) the wallets may call; default: what each board's adapter calls there "
        "(a TaskBoard: claim, submit and release)",
    )
    allow_value: list[ValueRule] = Field(
        default_factory=list, description="where native value may go (the treasury and fleet wallets always may)"
    )
    recipients: list[Address] = Field(
        default_factory=list,
        description="who may receive ERC-20 transfer/approve amounts besides the treasury and fleet wallets",
    )
    max_gas_per_tx: int = Field(default=1_000_000, ge=21_000, description="gas limit cap per transaction")
    max_fee_per_gas_wei: dict[int, int] = Field(
        default_factory=lambda: dict.fromkeys(DEV_CHAIN_IDS, DEFAULT_MAX_FEE_PER_GAS_WEI),
        description="per chain id: the highest max fee per gas a transaction (or a replacement) may be signed "
        "with; every chain in chain_ids needs one",
    )
    wallet_daily_cap_wei: int = Field(
        default=5 * 10**16, ge=0, description="per wallet per UTC day: gas (at max fee) + value, in wei"
    )
    fleet_daily_cap_wei: int = Field(default=5 * 10**17, ge=0, description="all wallets together per UTC day")
    token_caps: list[TokenCap] = Field(default_factory=list, description="daily caps per ERC-20 token")

    @model_validator(mode="after")
    def _mainnet_needs_consent(self) -> Self:
        mainnets = sorted(set(self.chain_ids) & MAINNET_CHAIN_IDS)
        if mainnets and not self.allow_mainnet:
            raise ValueError(
                f"chain_ids lists mainnet chain(s) {mainnets} but allow_mainnet is false: "
                "set allow_mainnet: true to let the wallets spend real money"
            )
        return self

    @model_validator(mode="after")
    def _every_chain_has_a_fee_cap(self) -> Self:
        missing = [c for c in self.chain_ids if c not in self.max_fee_per_gas_wei]
        if missing:
            raise ValueError(
                f"chain_ids lists chain(s) {missing} without a fee cap: add them to max_fee_per_gas_wei, "
                f"e.g. {{{missing[0]}: {DEFAULT_MAX_FEE_PER_GAS_WEI}}} (500 gwei)"
            )
        bad = {c: w for c, w in self.max_fee_per_gas_wei.items() if w < 1}
        if bad:
            raise ValueError(f"max_fee_per_gas_wei must be at least 1 wei per chain, got {bad}")
        return self


class TokenConfig(_Section):
    """An ERC-20 the wallets hold (rewards): shown in balances and swept to the treasury."""

    address: Address
    symbol: str = Field(default="TOKEN", min_length=1, max_length=16)
    decimals: int = Field(default=18, ge=0, le=36)
    auto_sweep_at: Decimal | None = Field(
        default=None,
        gt=0,
        description="`deworker run` sweeps this token to wallets.treasury from any agent wallet holding at least "
        "this many tokens (whole tokens, decimals applied); null = only `deworker wallet sweep`",
    )

    def units(self, amount: Decimal) -> int:
        """``amount`` whole tokens in base units."""
        return int(amount * (Decimal(10) ** self.decimals))


class WalletsConfig(_Section):
    """Agent wallets: one V3 keystore per agent, a policy gate, a transaction journal (in the orchestrator's
    database, ``db_url``: there is no separate journal database to configure)."""

    keystore_dir: Path | None = Field(default=None, description="keystore files (0600); null = <data_dir>/keystores")
    passphrase_env: str = Field(
        default=DEFAULT_PASSPHRASE_ENV,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable holding the keystore passphrase",
    )
    passphrase_file: Path | None = Field(
        default=None, description="file holding the passphrase (mode 0600 or stricter); wins over passphrase_env"
    )
    treasury: Address | None = Field(default=None, description="the operator's address that sweeps pay into")
    funder: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="keystore name of the hot wallet that tops up agents' gas",
    )
    tokens: list[TokenConfig] = Field(default_factory=list, description="ERC-20s to show and sweep")
    # Defaults that pass the default policy: a top-up (0.01 ETH plus its gas) is well under wallet_daily_cap_wei
    # (0.05 ETH), so the funder can make four a day; 0.01 ETH pays for dozens of claims and submits.
    gas_topup_threshold_wei: int = Field(default=5 * 10**15, ge=0, description="top up an agent below this balance")
    gas_topup_amount_wei: int = Field(default=10**16, ge=0, description="what one top-up sends")
    replace_after_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="a pending transaction this old (and replace_after_blocks) is replaced",
    )
    replace_after_blocks: int = Field(
        default=3, ge=0, le=10_000, description="... and at least this many blocks old (0: seconds only)"
    )
    fee_bump: float = Field(
        default=0.125, ge=0.1, le=10, description="a replacement raises both fee fields by at least this fraction"
    )
    policy: PolicyConfig = PolicyConfig()

    @model_validator(mode="after")
    def _top_up_fits_the_daily_cap(self) -> Self:
        # a top-up is value plus at least a plain transfer's 21,000 gas at 1 wei: above the cap, none could pass
        least = self.gas_topup_amount_wei + PLAIN_TRANSFER_GAS
        if self.funder is not None and least > self.policy.wallet_daily_cap_wei:
            raise ValueError(
                f"gas_topup_amount_wei ({self.gas_topup_amount_wei}) plus a transfer's gas is more than "
                f"policy.wallet_daily_cap_wei ({self.policy.wallet_daily_cap_wei}): the funder could never top up; "
                "lower gas_topup_amount_wei or raise the cap"
            )
        return self

    def keystore_path(self, data_dir: Path) -> Path:
        return self.keystore_dir or data_dir / "keystores"

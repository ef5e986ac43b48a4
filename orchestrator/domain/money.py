"""Money as people (and scripts) read it, formatted here only: the CLI, the web pages and the JSON output call
these functions. Token amounts: ``TokenBook`` maps an ERC-20 address to its symbol and decimals, from the
configuration (``wallets.tokens``; the DAO's reward token, ``dao.token_symbol`` / ``dao.token_decimals`` at the
address ``deworker dao deploy`` saved). A token the book does not know is shown in raw base units next to its
address: guessing 18 decimals would show a 6-decimal stablecoin a trillion times too small.

Must not import the web framework: standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

#: Decimal places shown for whole-token amounts of at least 1, and below 1 (rounded in the display only).
SHOWN_PLACES = 4
SMALL_PLACES = 8


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is needed to show an ERC-20 amount."""

    address: str
    symbol: str
    decimals: int


class TokenBook:
    """Known tokens by address (case-insensitive). The first entry for an address wins."""

    def __init__(self, tokens: Iterable[TokenInfo] = ()) -> None:
        self._by_address: dict[str, TokenInfo] = {}
        for t in tokens:
            self._by_address.setdefault(t.address.lower(), t)

    def __len__(self) -> int:
        return len(self._by_address)

    def get(self, address: str) -> TokenInfo | None:
        return self._by_address.get(address.lower())

    def known(self) -> list[TokenInfo]:
        return list(self._by_address.values())

    def whole(self, units: int, address: str) -> Decimal | None:
        """``units`` in whole tokens, or None if the token is unknown."""
        info = self.get(address)
        return None if info is None else Decimal(units) / Decimal(10) ** info.decimals

    def symbol(self, address: str) -> str | None:
        info = self.get(address)
        return None if info is None else info.symbol

    def format(self, units: int, address: str) -> str:
        """``12.5 DWR`` for a known token; ``12500000 units of 0x1234…abcd`` (base units) for an unknown one."""
        info = self.get(address)
        if info is None:
            return f"{units:,} units of {address[:6]}…{address[-4:]}"
        return f"{whole_text(Decimal(units) / Decimal(10) ** info.decimals)} {info.symbol}"


def whole_text(value: Decimal) -> str:
    """A whole-token amount with thousands separators and trailing zeros cut: at most ``SHOWN_PLACES`` decimals,
    or ``SMALL_PLACES`` below 1 (gas of one transaction is a few millionths of an ETH)."""
    if not value:
        return "0"
    places = SHOWN_PLACES if abs(value) >= 1 else SMALL_PLACES
    text = f"{value:,.{places}f}".rstrip("0").rstrip(".")
    return text if text not in ("0", "-0") else f"<{Decimal(1).scaleb(-places):f}"


def units(amount: int, decimals: int = 18) -> str:
    """Base units as a decimal amount of whole tokens (gas wei as ETH: ``units(21_000 * 10**9)`` is 0.000021)."""
    return whole_text(Decimal(amount) / Decimal(10) ** decimals)


def amounts_text(amounts: Mapping[str, int], book: TokenBook) -> str:
    """Token amounts (base units by token address) on one line, ``12.5 DWR, 3 USDC``; ``0`` for none. Currencies
    are never added up."""
    return ", ".join(book.format(units, token) for token, units in amounts.items()) or "0"


def base_units(amounts: Mapping[str, int]) -> dict[str, str]:
    """Amounts by token address in base units, as JSON strings of integers (no JSON parser rounds a string)."""
    return {token: str(amount) for token, amount in amounts.items()}


def usd_text(micro: int) -> str:
    """Micro-USD as exact dollars without a sign, for tables and terminals: ``4200`` is ``0.0042``."""
    return f"{Decimal(micro) / 1_000_000:f}"


def dollars(micro_or_dollars: int | Decimal | None, *, micro: bool = True) -> str:
    """Micro-USD (or dollars, ``micro=False``) as ``$0.0123`` (four places, thousands separated); ``—`` for none."""
    if micro_or_dollars is None:
        return "—"
    value = Decimal(micro_or_dollars) / (Decimal(1_000_000) if micro else Decimal(1))
    return f"${value:,.4f}"


#: P&L currency keys besides token addresses: gas in wei of the native coin, LLM cost in micro-USD.
WEI = "wei"
USD_MICRO = "usd_micro"


@dataclass(slots=True)
class PnL:
    """Profit and loss of one agent or task, per currency. Currencies are never added together: a reward in a
    token, gas in wei and LLM cost in USD need prices to be compared, and prices are not the store's business."""

    rewards: dict[str, int] = field(default_factory=dict)  # token address -> base units received (bounties)
    gas_wei: int = 0
    llm_usd_micro: int = 0
    # project pools' revenue claimed (per agent only): (pool address, token address) -> base units
    revenue: dict[tuple[str, str], int] = field(default_factory=dict)

    def net(self) -> dict[str, int]:
        """Signed amounts per currency: token addresses (+bounties, +revenue), ``"wei"`` (-gas), ``"usd_micro"``
        (-LLM cost)."""
        out = dict(self.rewards)
        for (_pool, token), amount in self.revenue.items():
            out[token] = out.get(token, 0) + amount
        if self.gas_wei:
            out[WEI] = -self.gas_wei
        if self.llm_usd_micro:
            out[USD_MICRO] = -self.llm_usd_micro
        return out

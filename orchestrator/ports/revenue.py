"""``RevenuePools``: what the operator needs of the project pools its agents hold shares in — what each holder may
claim, claiming it through the holder's own wallet, and the claims the chain recorded (the revenue side of the P&L).
The adapter is ``orchestrator.adapters.pools.ProjectPoolRevenue``. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.ports.chain import Signer

__all__ = ["Holding", "RevenueClaim", "RevenuePools"]


@dataclass(frozen=True, slots=True)
class Holding:
    """A holder's shares in one pool and what it may claim there of one revenue token (base units)."""

    pool: str
    token: str
    shares: int
    claimable: int


@dataclass(frozen=True, slots=True)
class RevenueClaim:
    """One ``RevenueClaimed`` event: ``amount`` base units of ``token`` paid by ``pool`` to ``holder``."""

    pool: str
    token: str
    holder: str
    amount: int
    tx_hash: str
    block_number: int


class RevenuePools(Protocol):
    def holdings(self, holder: str) -> list[Holding]:
        """Every (pool, revenue token) where ``holder`` has shares, with what it may claim now."""
        ...

    def claim(self, *, pool: str, token: str, wallet: Signer) -> RevenueClaim:
        """Claim ``wallet``'s revenue of ``token`` from ``pool``; a pool that has nothing for it reverts."""
        ...

    def claims(self, holder: str, *, from_block: int = 0) -> list[RevenueClaim]:
        """Every claim the pools paid ``holder``, oldest first (from the chain's logs)."""
        ...

"""Claiming the revenue of the project pools the fleet's agents hold shares in, and the revenue side of the P&L.

``collect`` claims, through each agent's own (policy-gated, journaled) wallet, every (pool, token) whose claimable
amount reaches ``threshold`` base units. It decides from the chain's state alone: after a crash, ``start`` settles
what the wallets journaled (a claim signed before the crash is re-broadcast, never re-signed) before anything is
decided, and a claim already mined leaves nothing claimable, so a restart never claims twice; the pool itself pays
each unit once. ``income`` is read from the pools' ``RevenueClaimed`` logs, so it equals what the chain paid.

Boundaries (``boundary(name)``, for the crash tests): ``revenue-claiming`` before a claim is sent,
``revenue-claimed`` after its receipt, ``revenue-recorded`` after the ledger's write (with ``record``). The ledger
(``record``) gets each claim when it is paid and, in ``start``, every claim the chain's logs show, so a crash
between the receipt and the write loses nothing; the write is idempotent per claim transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from orchestrator.ports.revenue import Holding, RevenueClaim, RevenuePools
from orchestrator.ports.wallet import AgentWallet

log = logging.getLogger(__name__)

REVENUE_BOUNDARIES = ("revenue-claiming", "revenue-claimed", "revenue-recorded")


class RevenueCollector:
    """Claims pool revenue for ``wallets`` (agent name -> wallet)."""

    def __init__(
        self,
        *,
        pools: RevenuePools,
        wallets: Mapping[str, AgentWallet],
        threshold: int = 1,
        boundary: Callable[[str], None] | None = None,
        record: Callable[[str, RevenueClaim], object] | None = None,
        snapshot: Callable[[str, str, list[Holding]], object] | None = None,
    ) -> None:
        if threshold < 1:
            raise ValueError("the claim threshold is at least 1 base unit (a pool refuses to pay nothing)")
        self.pools = pools
        self.wallets = dict(wallets)
        self.threshold = threshold
        self.boundary = boundary
        # the ledger's write (``SqlLedger.record_revenue_claim``): idempotent per (transaction, pool, token)
        self.record = record
        # the ledger's snapshot of what each agent holds (``SqlLedger.record_holdings``): the web app shows it
        self.snapshot = snapshot

    def _hook(self, name: str) -> None:
        if self.boundary is not None:
            self.boundary(name)

    def start(self) -> None:
        """Settle every wallet's journaled transactions first (claims signed before a crash included)."""
        for name, wallet in self.wallets.items():
            report = wallet.recover()
            if report.rebroadcast or report.dropped or report.drift:
                log.warning("wallet %s recovered: %s", name, report)
        self.reconcile()

    def reconcile(self) -> int:
        """Record in the ledger every claim the chain paid the agents (a claim mined before a crash whose ledger
        write was lost included); a claim already recorded changes nothing. Returns how many were read."""
        if self.record is None:
            return 0
        n = 0
        for name, wallet in self.wallets.items():
            for claim in self.pools.claims(wallet.address):
                self.record(name, claim)
                n += 1
        return n

    def collect(self) -> list[RevenueClaim]:
        """Claim what reached the threshold; returns the claims paid now."""
        paid = []
        for name, wallet in self.wallets.items():
            holdings = self.pools.holdings(wallet.address)
            left = []  # what it holds once these claims are paid (a claim takes all that token's claimable)
            for holding in holdings:
                if holding.claimable < self.threshold:
                    left.append(holding)
                    continue
                self._hook("revenue-claiming")
                claim = self.pools.claim(pool=holding.pool, token=holding.token, wallet=wallet)
                self._hook("revenue-claimed")
                if self.record is not None:
                    self.record(name, claim)
                    self._hook("revenue-recorded")
                log.info("agent %s claimed %d of %s from pool %s", name, claim.amount, claim.token, claim.pool)
                paid.append(claim)
                left.append(replace(holding, claimable=max(0, holding.claimable - claim.amount)))
            if self.snapshot is not None:
                self.snapshot(name, wallet.address, left)
        return paid

    def income(self) -> dict[tuple[str, str, str], int]:
        """Revenue paid to each agent: (agent, pool, token) -> base units, from the chain's logs."""
        totals: dict[tuple[str, str, str], int] = {}
        for name, wallet in self.wallets.items():
            for claim in self.pools.claims(wallet.address):
                key = (name, claim.pool, claim.token)
                totals[key] = totals.get(key, 0) + claim.amount
        return totals

"""``AgentWallet``: what the orchestrator needs of an agent's wallet: a ``Signer`` (address, ``send``) that can also
settle what it journaled before a restart (``recover``), reporting it as a ``RecoveryReport``. The adapter is
``wallets.wallet.KeystoreWallet`` (policy-gated, journaled). Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from orchestrator.ports.chain import Signer

__all__ = ["AgentWallet", "RecoveryReport"]


@dataclass
class RecoveryReport:
    """What ``recover()`` did, by transaction hash."""

    recorded: list[str] = field(default_factory=list)
    rebroadcast: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    reorged: list[str] = field(default_factory=list)
    drift: int = 0
    next_nonce: int | None = None

    def __str__(self) -> str:
        """One line for a log: ``2 found mined, 1 re-sent; nonce drift +8 (the chain is ahead of the journal:
        transactions sent with this key outside Deworker); next nonce 12``."""
        parts = [
            f"{len(hashes)} {what}"
            for hashes, what in (
                (self.recorded, "found mined"),
                (self.rebroadcast, "re-sent"),
                (self.dropped, "dropped (another transaction took the nonce)"),
            )
            if hashes
        ]
        if self.drift:
            side = "the chain is ahead of the journal" if self.drift > 0 else "the journal is ahead of the chain"
            parts.append(f"nonce drift {self.drift:+d} ({side})")
        text = ", ".join(parts) or "nothing to recover"
        return text if self.next_nonce is None else f"{text}; next nonce {self.next_nonce}"


@runtime_checkable
class AgentWallet(Signer, Protocol):
    """An agent's wallet: ``Signer``'s ``address`` and ``send`` (a transaction it never re-signs), and ``recover``."""

    def recover(self, *, wait: bool = True) -> RecoveryReport:
        """Settle every journaled transaction still pending (receipt found, the same bytes re-broadcast, or
        dropped when another transaction took its nonce), find ours a reorg removed (``reorged``: re-broadcast),
        repair nonce drift. With ``wait``, wait for the re-broadcast transactions' receipts. Safe to call often."""
        ...

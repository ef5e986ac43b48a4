"""What the ledger records besides rewards: the kinds of cost, each with its unit. Standard library only."""

from __future__ import annotations

import enum


class CostKind(enum.StrEnum):
    """What a cost is; its ``amount`` unit follows from it (never added across kinds: see ``money.PnL``)."""

    GAS = "gas"  # wei of the chain's native coin
    LLM = "llm"  # micro-USD

"""Bids on open ERC-8183 jobs, on the client's side: accept a signed bid (the bid endpoint of ``deworker review
serve``), keep it, list a job's bids for ``deworker dao bids`` and ``deworker dao hire --bid N``.

A bid is ``(board, jobId, amount, bidder, signature)``: the bidder's EIP-191 signature over
``keccak256(abi.encode(chainId, boardAddress, jobId, amount))`` (``adapters.boards.erc8183.bid_digest``). A bid is
accepted only if the signature recovers the bidder, the market is one of ours, and the job is Open with no
provider; ``amount`` must be positive and at most the job's budget (what the client offered). Each bidder has one
bid per job: a new one replaces it. Bids are files under ``<data_dir>/bids/<board>/<job>/<bidder>.json``, written
atomically (the DAO's machine serves the endpoint and runs the DAO commands); every listed bid is verified again
when read, so a file edited by hand is refused, not hired.

Rate limits, per client address and per bidder, in memory (a restarted server starts afresh; the signature check
is the gate, the limit only keeps one client from filling the disk): ``MAX_BIDS_PER_WINDOW`` in ``WINDOW_SECONDS``.

Errors: ``BidRefused`` (``BoardError``): the bid is refused, with the reason.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.adapters.boards.erc8183 import Erc8183Board, bid_signer, load_profile
from orchestrator.domain.board import BoardPhase
from orchestrator.domain.errors import BoardError, TaskNotFound

if TYPE_CHECKING:
    from orchestrator.entry.bootstrap import Runtime

#: Bids one client (or one bidder) may send per window.
MAX_BIDS_PER_WINDOW = 20
WINDOW_SECONDS = 60
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class BidRefused(BoardError):
    """A bid that is not accepted (bad signature, unknown market or job, job not open, amount out of range, too
    many bids): nothing was stored."""


class BidRateLimited(BidRefused):
    """Too many bids from one client or bidder in the window: try again later."""

    retryable = True


@dataclass(frozen=True, slots=True)
class Bid:
    """A verified bid."""

    board: str
    job_id: int
    bidder: str
    amount: int
    signature: str  # 0x-hex, 65 bytes
    received_at: float


class _Window:
    """A sliding-window counter per key."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float]) -> None:
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> bool:
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True


class BidBook:
    """The bids on our markets (``markets``: board name -> the adapter) on chain ``chain_id``, kept under
    ``root``."""

    def __init__(
        self,
        *,
        root: Path,
        chain_id: int,
        markets: Mapping[str, Erc8183Board],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.chain_id = chain_id
        self.markets = dict(markets)
        self._lock = threading.Lock()
        self._clients = _Window(MAX_BIDS_PER_WINDOW, WINDOW_SECONDS, clock)
        self._bidders = _Window(MAX_BIDS_PER_WINDOW, WINDOW_SECONDS, clock)

    def _market(self, board: str) -> Erc8183Board:
        """The market by its name here, or by its address (what an agent knows of it)."""
        market = self.markets.get(board) or next(
            (m for m in self.markets.values() if m.address.lower() == board.lower()), None
        )
        if market is None:
            raise BidRefused(f"no market named {board[:64]!r} takes bids here")
        return market

    def _verified(self, market: Erc8183Board, job_id: int, bidder: str, amount: int, signature: bytes) -> str:
        if not _ADDRESS.fullmatch(bidder):
            raise BidRefused("the bidder is not an address (0x and 40 hex digits)")
        signer = bid_signer(self.chain_id, market.address, job_id, amount, signature)
        if signer.lower() != bidder.lower():
            raise BidRefused(f"the signature is {signer}'s, not the bidder {bidder}'s")
        return signer

    def accept(self, *, board: str, job_id: int, bidder: str, amount: int, signature: bytes, client: str) -> Bid:
        """Verify and keep a bid (``BidRefused`` with the reason; ``BidRateLimited`` past the window's limit)."""
        with self._lock:
            if not self._clients.hit(f"client:{client}") or not self._bidders.hit(f"bidder:{bidder.lower()}"):
                raise BidRateLimited(f"more than {MAX_BIDS_PER_WINDOW} bids in {WINDOW_SECONDS} s: try again later")
        market = self._market(board)
        signer = self._verified(market, job_id, bidder, amount, signature)
        try:
            job = market.status(str(job_id))
        except TaskNotFound:
            raise BidRefused(f"market {board!r} has no job {job_id}") from None
        if job.phase is not BoardPhase.OPEN or job.claimant is not None:
            raise BidRefused(f"job {job_id} is not open for bids: it is {job.status_text}, provider {job.claimant}")
        if not 0 < amount <= job.reward:
            raise BidRefused(f"the amount {amount} is not between 1 and the job's budget {job.reward}")
        bid = Bid(market.name, job_id, signer, amount, "0x" + signature.hex(), time.time())
        self._write(bid)
        return bid

    def _folder(self, board: str, job_id: int) -> Path:
        return self.root / board / str(job_id)

    def _write(self, bid: Bid) -> None:
        folder = self._folder(bid.board, bid.job_id)
        folder.mkdir(parents=True, exist_ok=True)
        doc = {"bidder": bid.bidder, "amount": str(bid.amount), "signature": bid.signature, "at": bid.received_at}
        tmp = folder / f".{bid.bidder}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(doc), "utf-8")
        os.replace(tmp, folder / f"{bid.bidder}.json")  # atomic: a reader sees the old bid or the new one

    def bids(self, board: str, job_id: int) -> list[Bid]:
        """The job's bids, cheapest first (then earliest), each verified again; files that do not verify are
        skipped."""
        market = self._market(board)
        folder = self._folder(board, job_id)
        out = []
        for path in sorted(folder.glob("0x*.json")) if folder.is_dir() else []:
            try:
                doc = json.loads(path.read_text("utf-8"))
                amount, signature = int(doc["amount"]), bytes.fromhex(str(doc["signature"]).removeprefix("0x"))
                bidder = self._verified(market, job_id, str(doc["bidder"]), amount, signature)
            except (ValueError, KeyError, TypeError, BoardError):
                continue
            out.append(Bid(board, job_id, bidder, amount, "0x" + signature.hex(), float(doc.get("at", 0))))
        return sorted(out, key=lambda b: (b.amount, b.received_at))


def bid_book(rt: Runtime) -> BidBook | None:
    """The bids on the runtime's markets (``boards:`` entries of kind erc8183 with an address), kept under
    ``<data_dir>/bids``; None without a market."""
    markets = {
        entry.name: Erc8183Board(
            chain=rt.chain,
            address=entry.address,
            store=rt.artifacts,
            name=entry.name,
            profile=load_profile(entry.abi),
            token=entry.token,
            start_block=entry.start_block,
        )
        for entry in rt.config.board_list
        if entry.kind == "erc8183" and entry.address is not None
    }
    if not markets:
        return None
    return BidBook(root=rt.config.data_dir / "bids", chain_id=rt.chain.chain_id, markets=markets)

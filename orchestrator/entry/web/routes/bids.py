"""The bid endpoint of open ERC-8183 jobs: ``POST /bids`` (``entry.bids``). No account or token: anyone may bid,
and the bid's EIP-191 signature is its authentication (it must recover the bidder). Answers: 201 with the bid
accepted; 400 a malformed bid or a signature that is not the bidder's; 404 an unknown market or job; 409 a job not
open for bids or an amount outside (0, budget]; 429 too many bids from this client or bidder (``Retry-After``).
Mounted only when the review app is given a ``BidBook`` (``deworker review serve`` with a market configured).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from orchestrator.entry.bids import WINDOW_SECONDS, BidBook, BidRateLimited, BidRefused


class BidIn(BaseModel):
    """A signed bid: ``amount`` in the payment token's base units, as a decimal string (it may exceed 2^53)."""

    board: str = Field(min_length=1, max_length=64, description="the market's address (or its name on this side)")
    job_id: int = Field(ge=1, lt=2**256)
    amount: str = Field(pattern=r"^[0-9]{1,78}$")
    bidder: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes: EIP-191 over the bid digest")


class BidOut(BaseModel):
    board: str
    job_id: int
    bidder: str
    amount: str


def bids_router(book: BidBook) -> APIRouter:
    """The ``/bids`` route over ``book``."""
    router = APIRouter(tags=["bids"])

    @router.post("/bids", status_code=status.HTTP_201_CREATED, response_model=None)
    def bid(body: BidIn, request: Request) -> BidOut | JSONResponse:
        """Place (or replace) a bid on an open job."""
        client = request.client.host if request.client is not None else "unknown"
        try:
            accepted = book.accept(
                board=body.board,
                job_id=body.job_id,
                bidder=body.bidder,
                amount=int(body.amount),
                signature=bytes.fromhex(body.signature[2:]),
                client=client,
            )
        except BidRateLimited as exc:
            headers = {"Retry-After": str(WINDOW_SECONDS)}
            return JSONResponse({"detail": exc.message}, status_code=429, headers=headers)
        except BidRefused as exc:
            code = 404 if "no market" in exc.message or "has no job" in exc.message else 409
            if "signature" in exc.message or "not an address" in exc.message:
                code = 400
            return JSONResponse({"detail": exc.message}, status_code=code)
        return BidOut(board=accepted.board, job_id=accepted.job_id, bidder=accepted.bidder, amount=str(accepted.amount))

    return router

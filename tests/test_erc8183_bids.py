"""Bids on an open ERC-8183 job, the client's side: the bid endpoint ``POST /bids`` of the review app (what
``deworker review serve`` mounts with a market configured) on a real HTTP server on 127.0.0.1, then ``deworker dao
bids`` and ``deworker dao hire --bid N`` through Typer's runner, on one in-process chain. Bids are signed with the
bidders' keys (EIP-191 over keccak256(abi.encode(chainId, board, jobId, amount))); forged, stale, out-of-range and
too frequent bids are refused with the status that says why, and nothing of them is kept."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from orchestrator.adapters.boards.erc8183 import bid_digest, bid_signer, sign_bid
from orchestrator.domain.board import BoardPhase
from orchestrator.domain.errors import BoardError
from orchestrator.entry.bids import MAX_BIDS_PER_WINDOW, BidBook, bid_book
from orchestrator.entry.bootstrap import Runtime
from orchestrator.entry.config import load_config
from orchestrator.entry.web.app import create_app
from orchestrator.entry.web.config import WebSettings
from orchestrator.entry.web.server import bind, serve_in_thread
from tests.test_dao_cli import FIZZBUZZ
from tests.test_erc8183_dao_cli import ETH, Setup, market_setup


@dataclass
class Bidding:
    s: Setup
    url: str
    book: BidBook
    keys: list[bytes]  # two bidders' keys (dev accounts 2 and 3)
    addresses: list[str]

    def bid(
        self, job: int, amount: int, who: int = 0, *, key: bytes | None = None, board: str = "acp"
    ) -> httpx.Response:
        signature = sign_bid(key or self.keys[who], self.s.chain.chain_id, self.s.market, job, amount)
        body = {
            "board": board, "job_id": job, "amount": str(amount), "bidder": self.addresses[who],
            "signature": "0x" + signature.hex(),
        }  # fmt: skip
        return httpx.post(f"{self.url}/bids", json=body, timeout=10)


@pytest.fixture
def bidding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bidding]:
    with market_setup(tmp_path, monkeypatch) as s:
        yield from _serving(s)


def _serving(s: Setup) -> Iterator[Bidding]:
    rt = Runtime(load_config(s.config, environ={}), chain_override=s.chain)
    book = bid_book(rt)
    assert book is not None
    app = create_app(
        engine=rt.engine,
        store=rt.db,
        artifacts=rt.artifacts,
        users=rt.users,
        settings=WebSettings.resolve(rt.config.web, data_dir=rt.config.data_dir),
        bids=book,
    )
    accounts = s.chain.dev_accounts()
    with serve_in_thread(app, bind("127.0.0.1", 0)) as url:
        yield Bidding(s, url, book, [accounts[i].private_key for i in (2, 3)], [accounts[i].address for i in (2, 3)])


def open_job(s: Setup, budget: str = "20") -> int:
    out = s.ok("dao", "post", "--board", "acp", "--provider", "open", "--budget", budget, "--spec", s.spec(FIZZBUZZ))
    return int(out.split("posted job ")[1].split()[0])


def test_the_bid_message_is_the_issue_s(bidding: Bidding) -> None:
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    chain_id, market = bidding.s.chain.chain_id, bidding.s.market
    expected = keccak(encode(["uint256", "address", "uint256", "uint256"], [chain_id, market, 7, 5]))
    assert bid_digest(chain_id, market, 7, 5) == expected
    signature = sign_bid(bidding.keys[0], chain_id, market, 7, 5)
    assert bid_signer(chain_id, market, 7, 5, signature) == bidding.addresses[0]
    assert bid_signer(chain_id, market, 7, 6, signature) != bidding.addresses[0]  # another amount, another signer
    with pytest.raises(BoardError):
        bid_signer(chain_id, market, 7, 5, b"\x01" * 10)  # not a signature


def test_two_bids_listed_cheapest_first_and_one_hired(bidding: Bidding) -> None:
    s = bidding.s
    job = open_job(s)
    assert bidding.bid(job, 15 * ETH, 0).status_code == 201
    answer = bidding.bid(job, 12 * ETH, 1)
    assert answer.status_code == 201 and answer.json()["bidder"] == bidding.addresses[1]
    assert bidding.bid(job, 14 * ETH, 0).status_code == 201  # a bidder's new bid replaces its old one
    listed = s.ok("dao", "bids", str(job), "--board", "acp")
    rows = [line for line in listed.splitlines() if "0x" in line]
    assert len(rows) == 2 and bidding.addresses[1] in rows[0] and "12 DWR" in rows[0] and "14 DWR" in rows[1]
    hired = s.ok("dao", "hire", str(job), "--board", "acp", "--bid", "2")
    assert f"hired {bidding.addresses[0]} for job {job}: 14 DWR escrowed" in hired
    state = s.board().status(str(job))
    assert (state.phase, state.claimant, state.reward) == (BoardPhase.HELD, bidding.addresses[0], 14 * ETH)
    assert s.balance(s.market) == 14 * ETH
    late = bidding.bid(job, 11 * ETH, 1)  # hired: no more bids
    assert late.status_code == 409 and "not open for bids" in late.json()["detail"]
    missing = s.run("dao", "hire", str(job), "--board", "acp", "--bid", "9")
    assert missing.exit_code == 1


def test_refused_bids_say_why_and_are_not_kept(bidding: Bidding) -> None:
    s = bidding.s
    job = open_job(s, budget="20")
    forged = bidding.bid(job, ETH, 0, key=bidding.keys[1])  # signed by the other bidder's key
    assert forged.status_code == 400 and "not the bidder" in forged.json()["detail"]
    assert bidding.bid(job, 21 * ETH, 0).status_code == 409  # above the budget
    assert bidding.bid(job, 0, 0).status_code == 409
    assert bidding.bid(job + 5, ETH, 0).status_code == 404  # no such job
    assert bidding.bid(job, ETH, 0, board="nope").status_code == 404
    malformed = httpx.post(f"{bidding.url}/bids", json={"board": "acp", "job_id": job}, timeout=10)
    assert malformed.status_code == 422
    assert bidding.book.bids("acp", job) == []
    assert "no bids yet" in s.ok("dao", "bids", str(job), "--board", "acp")


def test_bids_are_rate_limited(bidding: Bidding) -> None:
    job = open_job(bidding.s)
    codes = [bidding.bid(job, ETH + i, 0).status_code for i in range(MAX_BIDS_PER_WINDOW + 1)]
    assert codes[:MAX_BIDS_PER_WINDOW] == [201] * MAX_BIDS_PER_WINDOW
    limited = bidding.bid(job, ETH, 1)  # the same client, another bidder: the client's window is full
    assert codes[-1] == 429 and limited.status_code == 429 and limited.headers["Retry-After"] == "60"


def test_a_bid_file_edited_by_hand_is_not_listed(bidding: Bidding) -> None:
    job = open_job(bidding.s)
    assert bidding.bid(job, 3 * ETH, 0).status_code == 201
    (path,) = (bidding.s.tmp / "dao" / "bids" / "acp" / str(job)).glob("0x*.json")
    path.write_text(path.read_text().replace(str(3 * ETH), str(ETH)))  # a cheaper amount, the old signature
    assert bidding.book.bids("acp", job) == []


def test_an_agent_bids_its_price_within_the_budget() -> None:
    from decimal import Decimal

    from orchestrator.app.matching import Estimate, MatchingConfig, bid_amount

    costs = Estimate(reward_usd=Decimal(50), llm_usd=Decimal("0.40"), gas_usd=Decimal("0.50"))
    config = MatchingConfig(min_margin_usd=Decimal("0.10"), token_usd=Decimal(2), token_decimals=6)
    assert bid_amount(costs, config=config, budget=10**9) == 500_000  # $1.00 at $2 a token, 6 decimals
    assert bid_amount(costs, config=config, budget=400_000) == 400_000  # never above the budget
    free = Estimate(reward_usd=Decimal(1), llm_usd=Decimal(0), gas_usd=Decimal(0))
    assert bid_amount(free, config=MatchingConfig(min_margin_usd=Decimal(0)), budget=10) == 1  # at least 1
    assert bid_amount(costs, config=MatchingConfig(token_usd=Decimal(0)), budget=7) == 7  # no price: the budget

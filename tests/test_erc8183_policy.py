"""The policy gate on an ERC-8183 market: an agent's wallet, with the default allow-list (``contract: board``: what
each board's adapter declares in ``calls()``), may call ``submit`` on the market and nothing else there; it cannot
complete, reject, refund, fund, re-price or create a job, nor move the payment token anywhere but home. A real fleet
wallet on the in-process chain, the agent being the job's provider: a refusal signs nothing and sends nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.erc8183 import Erc8183Board, bid_signer
from orchestrator.adapters.chain import EthTesterChain
from orchestrator.domain.board import BoardPhase
from orchestrator.entry.dao import Dao, token_abi
from orchestrator.entry.market import Market, reason_bytes
from tests.conftest import ETH_TESTER_CHAIN_ID, ChainEnv
from tests.test_erc8183_adapter import ARTIFACT
from tests.test_wallet_fixtures import FleetFactory
from wallets.errors import PolicyDenied

pytest_plugins = ["tests.test_wallet_fixtures"]


def test_an_agent_wallet_may_only_submit_on_the_market(
    db_engine: Engine, make_fleet: FleetFactory, tmp_path: Path
) -> None:
    chain = EthTesterChain()
    env = ChainEnv("ethtester", chain, chain.dev_accounts(), ETH_TESTER_CHAIN_ID)
    client, stranger = env.sender(0), env.sender(3)
    token, _, _ = Dao.deploy(
        chain=chain, sender=client, name="Reward", symbol="RWD", decimals=18, supply=10_000, claim_ttl=3600
    )
    address, _ = Market.deploy(chain=chain, sender=client, token=token, treasury=client.address, fee_bp=0)
    store = LocalArtifactStore(tmp_path / "store")
    board = Erc8183Board(chain=chain, address=address, store=store)
    calls: dict[str, list[str]] = {}
    for call in board.calls():
        calls.setdefault(call.contract, []).append(call.signature)
    fleet = make_fleet(env, db_engine, boards=calls)
    wallet = fleet.wallet("alice")
    market = Market(chain=chain, signer=client, store=store, address=address)
    now = chain.block().timestamp
    job = market.post("a brief", provider=wallet.address, evaluator=wallet.address, budget=10, expired_at=now + 600)
    client.send(token, token_abi().encode_call("transfer", wallet.address, 5))  # the agent holds some tokens too
    abi = board.abi
    key = job.job_id
    nonce = chain.nonce(wallet.address)
    # even where the contract would let the agent act (it is the evaluator here), the gate does not
    refused = {
        "complete": abi.encode_call("complete", key, reason_bytes("self-approved"), b""),
        "reject": abi.encode_call("reject", key, reason_bytes("no"), b""),
        "claimRefund": abi.encode_call("claimRefund", key),
        "setBudget": abi.encode_call("setBudget", key, 10**24, b""),
        "fund": abi.encode_call("fund", key, 10, b""),
        "setProvider": abi.encode_call("setProvider", key, stranger.address, b""),
        "createJob": abi.encode_call("createJob", wallet.address, wallet.address, now + 600, "x", "0x" + "0" * 40),
    }
    for name, data in refused.items():
        with pytest.raises(PolicyDenied) as info:
            wallet.send(address, data)
        assert info.value.rule == "allow_list", name
    for data in (
        token_abi().encode_call("transfer", stranger.address, 5),
        token_abi().encode_call("approve", address, 5),
        token_abi().encode_call("transferFrom", client.address, wallet.address, 1),
    ):
        with pytest.raises(PolicyDenied):
            wallet.send(token, data)
    with pytest.raises(PolicyDenied):  # native value to a stranger
        wallet.send(stranger.address, value=1)
    assert chain.nonce(wallet.address) == nonce  # nothing was signed or sent
    board.deliver(str(key), ARTIFACT, wallet=wallet)  # the one call an agent makes on the market
    assert board.status(str(key)).phase is BoardPhase.DELIVERED


def test_an_agent_wallet_signs_bids_only_for_a_configured_board(
    db_engine: Engine, make_fleet: FleetFactory, tmp_path: Path
) -> None:
    chain = EthTesterChain()
    env = ChainEnv("ethtester", chain, chain.dev_accounts(), ETH_TESTER_CHAIN_ID)
    market = "0x" + "12" * 20
    fleet = make_fleet(env, db_engine, boards={market: ["submit(uint256,bytes32,bytes)"]}, fund=0)
    wallet = fleet.wallet("alice")
    signature = wallet.sign_bid(market, 7, 5)
    assert bid_signer(chain.chain_id, market, 7, 5, signature) == wallet.address
    for board, job, amount in (("0x" + "34" * 20, 7, 5), (market, 0, 5), (market, 7, 0)):
        with pytest.raises(PolicyDenied):
            wallet.sign_bid(board, job, amount)

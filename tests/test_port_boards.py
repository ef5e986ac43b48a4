"""Conformance of every ``TaskBoard`` adapter to the board port (``orchestrator/ports/board.py``).

One list, ``KINDS_UNDER_TEST``: each entry builds a board through the registry with what the DAO does to it
(post, approve, reject). A new kind of board is tested by adding it there. The TaskBoard runs on the in-process
chain with real contracts and signed transactions; the ``memory`` kind (tests/boards_memory.py) is the second,
small adapter, registered for this module by one line in the registry.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.compile import BUILD_DIR, load_artifact
from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.artifacts.unixfs import DAG_PB, Cid
from orchestrator.adapters.boards import registry
from orchestrator.adapters.boards.abi import ContractABI
from orchestrator.adapters.boards.erc8183 import load_profile
from orchestrator.adapters.boards.registry import BoardSettings, build_board
from orchestrator.adapters.chain import EthTesterChain
from orchestrator.domain.board import BoardPhase
from orchestrator.domain.errors import ClaimGone, TaskNotFound, TaskTaken
from orchestrator.domain.specs import TaskSpec, dump_spec
from orchestrator.entry.dao import Dao
from orchestrator.entry.market import Market
from orchestrator.ports.board import Claimable, Delivery, Settlement, TaskBoard, TaskSource
from orchestrator.ports.chain import Signer
from tests.boards_memory import MemoryBoard
from tests.conftest import ETH_TESTER_CHAIN_ID, ChainEnv
from tests.test_board import REWARD, SPEC


@dataclass
class Harness:
    """A board under test, two agents' signers, and the DAO's hand on it."""

    board: TaskBoard
    agents: tuple[Signer, Signer]
    start: str  # ``first_cursor`` before anything was posted
    post: Callable[[TaskSpec], str]
    approve: Callable[[str], None]
    reject: Callable[[str, str], None]
    mine: Callable[[], None]
    #: what the board pays the agent of a task posted with ``REWARD`` (a market may keep a platform fee)
    paid: int = REWARD


def taskboard(env: ChainEnv, tmp_path: Path) -> Harness:
    store = LocalArtifactStore(tmp_path / "store")
    dao_sender = env.sender(0)
    token, address, block = Dao.deploy(
        chain=env.chain, sender=dao_sender, name="Reward", symbol="RWD", decimals=18, supply=10_000, claim_ttl=3600
    )
    dao = Dao(chain=env.chain, signer=dao_sender, store=store, board=address, token=token)
    settings = BoardSettings(name="tb", kind="taskboard", address=address, max_spec_bytes=262_144)
    board = build_board(settings, chain=env.chain, artifacts=store)
    return Harness(
        board=board,
        agents=(env.sender(1), env.sender(2)),
        start=board.first_cursor(block),
        post=lambda spec: str(dao.post(spec, reward=REWARD, deadline=int(time.time()) + 86_400).task_id),
        approve=lambda key: dao.approve(int(key)) and None,
        reject=lambda key, reason: dao.reject(int(key), reason) and None,
        mine=env.mine,
    )


def memory(env: ChainEnv, tmp_path: Path) -> Harness:
    store = LocalArtifactStore(tmp_path / "store")
    token = "0x" + "ab" * 20
    settings = BoardSettings(name="mem", kind="memory", address="", max_spec_bytes=262_144, options={"token": token})
    board = build_board(settings, chain=env.chain, artifacts=store)
    assert isinstance(board, MemoryBoard)
    return Harness(
        board=board,
        agents=(env.sender(1), env.sender(2)),  # only their addresses are used: nothing is signed here
        start=board.first_cursor(env.chain.block_number()),
        post=lambda spec: board.post(
            store.put_bytes(dump_spec(spec)), reward=REWARD, deadline=int(time.time()) + 86_400, poster=token
        ),
        approve=lambda key: board.approve(key) and None,
        reject=board.reject,
        mine=lambda: None,
    )


def erc8183(env: ChainEnv, tmp_path: Path, *, alt: bool = False) -> Harness:
    """An ERC-8183 market: ours (1% fee, profile ``erc8183-spec``) or the deliberately different
    ``AltAgenticCommerce`` (2.5% fee, provider not indexed, another getter order; its build file is its profile).
    ``post`` is a direct hire of the first agent, funded."""
    store = LocalArtifactStore(tmp_path / "store")
    client = env.sender(0)
    token, _, _ = Dao.deploy(
        chain=env.chain, sender=client, name="Reward", symbol="RWD", decimals=18, supply=10_000, claim_ttl=3600
    )
    if alt:
        art = load_artifact("AltAgenticCommerce")
        args = ContractABI(art["abi"]).encode_constructor(token)
        address = env.sender(5).deploy(bytes.fromhex(art["bytecode"].removeprefix("0x")), args)
        profile_ref, fee_bp = str(BUILD_DIR / "AltAgenticCommerce.json"), 250
    else:
        address, _ = Market.deploy(
            chain=env.chain, sender=client, token=token, treasury=env.sender(5).address, fee_bp=100
        )
        profile_ref, fee_bp = "erc8183-spec", 100
    block = env.chain.block_number()
    market = Market(chain=env.chain, signer=client, store=store, address=address, profile=load_profile(profile_ref))
    agents = (env.sender(1), env.sender(2))
    settings = BoardSettings(
        name="acp", kind="erc8183", address=address, max_spec_bytes=262_144,
        options={"abi": profile_ref, "start_block": block, "providers": [a.address for a in agents]},
    )  # fmt: skip
    board = build_board(settings, chain=env.chain, artifacts=store)
    expires = int(env.chain.block().timestamp) + 86_400
    return Harness(
        board=board,
        agents=agents,
        start=board.first_cursor(block + 1),
        post=lambda spec: str(
            market.post(
                spec, provider=agents[0].address, evaluator=client.address, budget=REWARD, expired_at=expires
            ).job_id
        ),
        approve=lambda key: market.complete(int(key), "good") and None,
        reject=lambda key, reason: market.reject(int(key), reason) and None,
        mine=env.mine,
        paid=REWARD - REWARD * fee_bp // 10_000,
    )


def erc8183_alt(env: ChainEnv, tmp_path: Path) -> Harness:
    return erc8183(env, tmp_path, alt=True)


#: Every kind of board the port is checked against: (kind, harness factory).
KINDS_UNDER_TEST: list[tuple[str, Callable[[ChainEnv, Path], Harness]]] = [
    ("taskboard", taskboard), ("memory", memory), ("erc8183", erc8183), ("erc8183-alt", erc8183_alt)
]  # fmt: skip


@pytest.fixture(params=[kind for kind, _ in KINDS_UNDER_TEST])
def harness(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    # the one line that adds a kind of board to the registry
    monkeypatch.setitem(registry.KINDS, "memory", "tests.boards_memory:from_settings")
    chain = EthTesterChain()
    env = ChainEnv("ethtester", chain, chain.dev_accounts(), ETH_TESTER_CHAIN_ID)
    yield dict(KINDS_UNDER_TEST)[request.param](env, tmp_path)


def test_a_board_declares_what_it_can_do(harness: Harness) -> None:
    board = harness.board
    assert isinstance(board, TaskBoard | TaskSource) and isinstance(board, Delivery) and isinstance(board, Settlement)
    assert isinstance(board.capabilities.reopens_on_rejection, bool)
    assert isinstance(board.capabilities.block_cursors, bool)
    for call in board.calls():  # what the wallet policy will allow: functions on the board's own contract
        assert call.signature.endswith(")") and call.contract


def test_poll_returns_each_post_once_with_text_keys(harness: Harness) -> None:
    first, second = harness.post(SPEC), harness.post(SPEC)
    harness.mine()
    tasks, cursor = harness.board.poll(harness.start)
    assert [t.key for t in tasks] == [first, second] and all(isinstance(t.key, str) for t in tasks)
    # a claimable board lists open tasks; a job market lists the jobs assigned to us, funded (held by the agent)
    phase = BoardPhase.OPEN if isinstance(harness.board, Claimable) else BoardPhase.HELD
    assert all(t.phase is phase and t.spec is None for t in tasks)
    assert harness.board.read_spec(tasks[0]) == SPEC
    assert harness.board.poll(cursor)[0] == []
    third = harness.post(SPEC)
    harness.mine()
    assert [t.key for t in harness.board.poll(cursor)[0]] == [third]


def test_status_of_an_unknown_key_is_task_not_found(harness: Harness) -> None:
    harness.post(SPEC)
    for key in ("999999", "not-a-key", ""):
        with pytest.raises(TaskNotFound):
            harness.board.status(key)


def test_claim_deliver_settle(harness: Harness) -> None:
    board, (a, b) = harness.board, harness.agents
    if not isinstance(board, Claimable):
        pytest.skip("not a claimable board")  # an assigned board's acquisition is checked by its own suite
    key = harness.post(SPEC)
    receipt = board.claim(key, wallet=a)
    held = board.status(key)
    assert held.phase is BoardPhase.HELD and (held.claimant or "").lower() == a.address.lower()
    with pytest.raises(TaskTaken):
        board.claim(key, wallet=b)
    with pytest.raises(ClaimGone):
        board.deliver(key, "bafkqaaa", wallet=b)
    assert board.action_tx(key, "claim", actor=a.address, since=harness.start) == receipt.tx_hash
    assert board.action_tx(key, "claim", actor=b.address, since=harness.start) is None
    board.deliver(key, "bafkqaaa", wallet=a)
    delivered = board.status(key)
    assert delivered.phase is BoardPhase.DELIVERED and delivered.artifact_cid == "bafkqaaa"
    harness.approve(key)
    harness.mine()
    assert board.status(key).phase is BoardPhase.SETTLED
    payouts, cursor = board.payouts(harness.start)
    assert [(p.key, p.recipient.lower(), p.amount) for p in payouts] == [(key, a.address.lower(), harness.paid)]
    assert board.payouts(cursor)[0] == []


def test_release_and_rejection_follow_the_declared_capabilities(harness: Harness) -> None:
    board, (a, _) = harness.board, harness.agents
    if not isinstance(board, Claimable):
        pytest.skip("not a claimable board")
    key = harness.post(SPEC)
    board.claim(key, wallet=a)
    board.release(key, wallet=a)
    assert board.status(key).phase is BoardPhase.OPEN
    with pytest.raises(ClaimGone):
        board.release(key, wallet=a)
    board.claim(key, wallet=a)
    board.deliver(key, "bafkqaaa", wallet=a)
    assert board.rejection(key, since=harness.start) is None
    harness.reject(key, "too short")
    rejection = board.rejection(key, since=harness.start)
    assert rejection is not None and rejection.reason == "too short" and rejection.key == key
    after = board.status(key).phase
    assert after is (BoardPhase.OPEN if board.capabilities.reopens_on_rejection else BoardPhase.CLOSED)


#: A directory root CID (dag-pb, sha2-256): what an agent delivers. (The claimable boards' ``bafkqaaa`` is an
#: identity-hash CID, which a board that commits to the sha2-256 digest refuses.)
ARTIFACT = str(Cid(DAG_PB, hashlib.sha256(b"an artifact").digest()))


def test_assigned_deliver_settle(harness: Harness) -> None:
    board, (a, b) = harness.board, harness.agents
    if isinstance(board, Claimable):
        pytest.skip("a claimable board: its tasks are claimed (test_claim_deliver_settle)")
    key = harness.post(SPEC)
    held = board.status(key)
    assert held.phase is BoardPhase.HELD and (held.claimant or "").lower() == a.address.lower()
    assert board.action_tx(key, "claim", actor=a.address, since=harness.start) is None  # nothing is claimed
    with pytest.raises(ClaimGone):
        board.deliver(key, ARTIFACT, wallet=b)
    receipt = board.deliver(key, ARTIFACT, wallet=a)
    delivered = board.status(key)
    assert delivered.phase is BoardPhase.DELIVERED and delivered.artifact_cid == ARTIFACT
    assert board.action_tx(key, "submit", actor=a.address, since=harness.start) == receipt.tx_hash
    assert board.action_tx(key, "submit", actor=b.address, since=harness.start) is None
    with pytest.raises(ClaimGone):  # once: a delivered job takes no second delivery
        board.deliver(key, ARTIFACT, wallet=a)
    harness.approve(key)
    harness.mine()
    assert board.status(key).phase is BoardPhase.SETTLED
    payouts, cursor = board.payouts(harness.start)
    assert [(p.key, p.recipient.lower(), p.amount) for p in payouts] == [(key, a.address.lower(), harness.paid)]
    assert board.payouts(cursor)[0] == []


def test_assigned_rejection_follows_the_declared_capabilities(harness: Harness) -> None:
    board, (a, _) = harness.board, harness.agents
    if isinstance(board, Claimable):
        pytest.skip("a claimable board (test_release_and_rejection_follow_the_declared_capabilities)")
    key = harness.post(SPEC)
    board.deliver(key, ARTIFACT, wallet=a)
    assert board.rejection(key, since=harness.start) is None
    harness.reject(key, "too short")
    rejection = board.rejection(key, since=harness.start)
    assert rejection is not None and rejection.reason == "too short" and rejection.key == key
    after = board.status(key).phase
    assert after is (BoardPhase.OPEN if board.capabilities.reopens_on_rejection else BoardPhase.CLOSED)
    with pytest.raises(ClaimGone):
        board.deliver(key, ARTIFACT, wallet=a)

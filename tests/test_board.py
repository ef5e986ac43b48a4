"""The TaskBoard port against ``OnchainTaskBoard``, on every chain adapter (py-evm in-process and anvil).

Real contracts from ``contracts/build``, real signed transactions, a real artifact store for specs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.onchain import OnchainTaskBoard, board_abi
from orchestrator.domain.board import BoardPhase, BoardTask
from orchestrator.domain.errors import SpecError, TaskNotFound, TaskTaken, TransactionReverted
from orchestrator.domain.specs import Deliverable, DeliverableKind, TaskSpec, dump_spec
from orchestrator.entry.dao import Dao, token_abi
from orchestrator.ports.board import TaskBoard
from tests.conftest import ChainEnv

SPEC = TaskSpec(
    title="Write a haiku about escrow",
    description="Three lines, 5-7-5 syllables.",
    deliverable=Deliverable(kind=DeliverableKind.TEXT, filename="haiku.txt"),
    skills=["writing"],
    acceptance=["5-7-5"],
)
REWARD = 10 * 10**18


@pytest.fixture
def setup(chain_env: ChainEnv, tmp_path: Path) -> tuple[ChainEnv, Dao, OnchainTaskBoard, int]:
    store = LocalArtifactStore(tmp_path / "store")
    dao_sender = chain_env.sender(0)
    token, board, block = Dao.deploy(
        chain=chain_env.chain,
        sender=dao_sender,
        name="Reward",
        symbol="RWD",
        decimals=18,
        supply=10_000,
        claim_ttl=3600,
    )
    dao = Dao(chain=chain_env.chain, signer=dao_sender, store=store, board=board, token=token)
    return (
        chain_env,
        dao,
        OnchainTaskBoard(chain=chain_env.chain, address=board, store=store, name="t"),
        block,
    )


def deadline(env: ChainEnv) -> int:
    return int(time.time()) + 7 * 86_400


def test_board_satisfies_the_port(setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int]) -> None:
    _, _, board, _ = setup
    assert isinstance(board, TaskBoard)


def read(board: OnchainTaskBoard, task: BoardTask) -> tuple[TaskSpec | None, str | None]:
    """``read_spec`` as the service calls it: the spec, or the reason to quarantine the task."""
    try:
        return board.read_spec(task), None
    except SpecError as exc:
        return None, exc.message


def test_poll_returns_new_tasks_once_and_reads_their_specs(
    setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int],
) -> None:
    env, dao, board, block = setup
    first = dao.post(SPEC, reward=REWARD, deadline=deadline(env))
    second = dao.post(SPEC.model_copy(update={"title": "Another"}), reward=REWARD, deadline=deadline(env))
    tasks, cursor = board.poll(str(block))
    assert [int(t.key) for t in tasks] == [first.task_id, second.task_id]
    assert all(t.spec is None and t.quarantine_reason is None for t in tasks)  # poll reads no spec
    assert tasks[0].reward == REWARD and tasks[0].poster == dao.signer.address
    assert read(board, tasks[0]) == (SPEC, None)
    assert board.read_spec(tasks[1]).title == "Another"
    again, cursor2 = board.poll(str(cursor))
    assert again == [] and cursor2 == cursor
    third = dao.post(SPEC, reward=REWARD, deadline=deadline(env))
    new, _ = board.poll(str(cursor))
    assert [int(t.key) for t in new] == [third.task_id]


def test_bad_specs_are_quarantined_and_polling_goes_on(
    setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int], tmp_path: Path
) -> None:
    env, dao, board, block = setup
    d = deadline(env)
    dao.post_raw(b"{not json", reward=REWARD, deadline=d)
    dao.post_raw(json.dumps({"title": "x"}).encode(), reward=REWARD, deadline=d)
    dao.post_raw(b" " * (50 * 1024 * 1024), reward=REWARD, deadline=d)  # 50 MB spec
    # A spec nobody stored: post with a CID the store has never seen.
    missing_cid = LocalArtifactStore(tmp_path / "elsewhere").put_bytes(b"not shared")
    dao.signer.send(dao.token, token_abi().encode_call("approve", dao.board_address, 2 * REWARD))
    abi = board.abi
    dao.signer.send(dao.board_address, abi.encode_call("post", dao.token, REWARD, d, dao.signer.address, missing_cid))
    dao.signer.send(dao.board_address, abi.encode_call("post", dao.token, REWARD, d, dao.signer.address, "not-a-cid"))
    good = dao.post(SPEC, reward=REWARD, deadline=d)
    tasks, _ = board.poll(str(block))
    specs, reasons = zip(*(read(board, t) for t in tasks), strict=True)
    assert len(tasks) == 6
    assert "not valid JSON" in reasons[0]
    assert "does not match deworker/task-spec@1" in reasons[1]
    assert "larger than the 262,144-byte limit" in reasons[2]
    assert "not in the artifact store" in reasons[3] and "could not be fetched" in reasons[3]
    assert "invalid CID" in reasons[4]
    assert reasons[5] is None and tasks[5].key == str(good.task_id) and specs[5] == SPEC
    assert all(spec is None for spec in specs[:5])


def test_claim_submit_status_and_payout(setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int]) -> None:
    env, dao, board, block = setup
    agent = env.sender(1)
    posted = dao.post(SPEC, reward=REWARD, deadline=deadline(env))
    board.claim(str(posted.task_id), wallet=agent)
    status = board.status(str(posted.task_id))
    assert status.status_text == "CLAIMED" and status.claimant == agent.address
    assert status.claim_expires > 0
    cid = board.store.put_bytes(b"escrow holds / the reward until review / then it flows to you")
    board.deliver(str(posted.task_id), cid, wallet=agent)
    status = board.status(str(posted.task_id))
    assert status.status_text == "SUBMITTED" and status.artifact_cid == cid
    receipt = dao.approve(posted.task_id)
    payouts, cursor = board.payouts(str(block))
    assert len(payouts) == 1
    p = payouts[0]
    assert (p.key, p.recipient, p.amount, p.token) == (str(posted.task_id), agent.address, REWARD, dao.token)
    assert p.tx_hash == receipt.tx_hash
    assert dao.token_balance(agent.address) == REWARD
    assert board.payouts(str(cursor))[0] == []
    assert board.status(str(posted.task_id)).status_text == "APPROVED"


def test_losing_a_claim_race_is_task_taken_not_a_retry(
    setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int],
) -> None:
    env, dao, board, _ = setup
    posted = dao.post(SPEC, reward=REWARD, deadline=deadline(env))
    board.claim(str(posted.task_id), wallet=env.sender(1))
    with pytest.raises(TaskTaken) as info:
        board.claim(str(posted.task_id), wallet=env.sender(2))
    assert isinstance(info.value.__cause__, TransactionReverted) and not info.value.retryable


def test_release_reopens_and_reject_reopens(setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int]) -> None:
    env, dao, board, _ = setup
    agent = env.sender(1)
    posted = dao.post(SPEC, reward=REWARD, deadline=deadline(env))
    board.claim(str(posted.task_id), wallet=agent)
    board.release(str(posted.task_id), wallet=agent)
    assert board.status(str(posted.task_id)).status_text == "OPEN"
    board.claim(str(posted.task_id), wallet=agent)
    board.deliver(str(posted.task_id), board.store.put_bytes(b"draft"), wallet=agent)
    dao.reject(posted.task_id, "too short")
    after = board.status(str(posted.task_id))
    assert after.status_text == "OPEN" and after.claimant is None and after.artifact_cid is None


def test_cancel_refunds_and_dao_lists_tasks(setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int]) -> None:
    env, dao, _, _ = setup
    before = dao.token_balance(dao.signer.address)
    posted = dao.post(SPEC, reward=REWARD, deadline=deadline(env))
    assert dao.token_balance(dao.signer.address) == before - REWARD
    dao.cancel(posted.task_id)
    assert dao.token_balance(dao.signer.address) == before
    assert [(t.key, t.status_text, t.phase) for t in dao.tasks()] == [
        (str(posted.task_id), "CANCELLED", BoardPhase.CLOSED)
    ]


def test_unknown_task_is_task_not_found(setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int]) -> None:
    _, _, board, _ = setup
    with pytest.raises(TaskNotFound, match="no task 99"):
        board.status("99")


def test_events_are_taken_only_once_they_are_confirmations_deep(
    setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int],
) -> None:
    env, dao, latest, block = setup
    board = OnchainTaskBoard(chain=env.chain, address=latest.address, store=latest.store, name="t", confirmations=3)
    posted = dao.post(SPEC, reward=REWARD, deadline=deadline(env))
    at = posted.receipt.block_number
    assert [int(t.key) for t in latest.poll(str(block))[0]] == [posted.task_id]  # 0 confirmations: at once

    cursor = block
    for on_top in range(3):  # the post's block with 0, 1, 2 blocks on top: not deep enough yet
        assert env.chain.block_number() - at == on_top
        tasks, cursor = board.poll(str(cursor))
        assert tasks == [] and int(cursor) <= at  # the cursor never passes an unconfirmed block
        env.mine()
    tasks, cursor = board.poll(str(cursor))  # 3 blocks on top
    assert [int(t.key) for t in tasks] == [posted.task_id] and cursor == str(at + 1)
    assert board.poll(str(cursor)) == ([], cursor)  # taken once

    # a payout waits the same depth
    agent = env.sender(1)
    board.claim(str(posted.task_id), wallet=agent)
    board.deliver(str(posted.task_id), board.store.put_bytes(b"deep enough"), wallet=agent)
    approved = dao.approve(posted.task_id)
    paid_cursor = block
    for _ in range(3):
        payouts, paid_cursor = board.payouts(str(paid_cursor))
        assert payouts == [] and int(paid_cursor) <= approved.block_number
        env.mine()
    payouts, paid_cursor = board.payouts(str(paid_cursor))
    assert [(p.key, p.tx_hash) for p in payouts] == [(str(posted.task_id), approved.tx_hash)]
    assert paid_cursor == str(approved.block_number + 1)


def test_a_spec_no_gateway_serves_quarantines_its_task_with_each_gateways_answer(
    setup: tuple[ChainEnv, Dao, OnchainTaskBoard, int], tmp_path: Path
) -> None:
    """An operator on another machine reads specs through ``artifacts.gateways`` only: a spec no gateway serves
    quarantines its task with every gateway's answer, and the next task's spec is read through them."""
    from orchestrator.adapters.artifacts.gateway import TrustlessGateways
    from orchestrator.adapters.artifacts.remote import RemoteArtifactStore
    from tests.ipfs_fakes import FakeGateways

    env, dao, _, block = setup
    fakes = FakeGateways()
    try:
        empty = fakes.gateway(LocalArtifactStore(tmp_path / "nothing"), mode="missing")
        daos = fakes.gateway(dao.store, mode="good")  # type: ignore[arg-type]  # the DAO's own gateway
        d = deadline(env)
        unshared = LocalArtifactStore(tmp_path / "unshared").put_bytes(dump_spec(SPEC))
        dao.signer.send(dao.token, token_abi().encode_call("approve", dao.board_address, REWARD))
        post = board_abi().encode_call("post", dao.token, REWARD, d, dao.signer.address, unshared)
        dao.signer.send(dao.board_address, post)
        shared = dao.post(SPEC.model_copy(update={"title": "Shared"}), reward=REWARD, deadline=d)
        cache = LocalArtifactStore(tmp_path / "operator-cache")
        gateways = TrustlessGateways([empty.url, daos.url], timeout=5)
        operator = OnchainTaskBoard(
            chain=env.chain, address=dao.board_address, store=RemoteArtifactStore(cache, gateways=gateways)
        )
        tasks, _ = operator.poll(block)
        (_, reason), (spec, none) = (read(operator, t) for t in tasks)
        assert reason is not None and "could not be fetched" in reason and empty.url in reason and daos.url in reason
        assert none is None and spec is not None and spec.title == "Shared" and tasks[1].key == str(shared.task_id)
        assert cache.has(shared.spec_cid) and not cache.has(unshared)  # verified, cached; nothing of the other
    finally:
        fakes.close()

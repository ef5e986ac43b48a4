"""The ``Orchestrator`` end to end on both chains (in-process py-evm and anvil): a DAO posts tasks, the service
polls, matches (skips with reasons, quarantines bad specs), claims with the agents' wallets, produces, reviews,
submits; the DAO approves; collect records rewards that equal the on-chain balances. Plus lost claim races,
failed agents, human review with revisions and rejection, and resolution of steps interrupted mid-way (the crash
points are simulated here with an exception at each boundary; ``test_crash.py`` kills a real process)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from langchain_core.messages import BaseMessage
from sqlalchemy import update
from sqlmodel import col

from agents.config import AgentsConfig, Budgets, ModelPrice
from agents.langchain_agent import LangChainAgent
from agents.ports import AgentResult, AgentTask, Usage
from orchestrator.adapters.boards.onchain import board_abi
from orchestrator.adapters.chain import TxSender
from orchestrator.adapters.sql import DbSpendLedger, PendingReview, ReviewDecision, RunStatus, TaskPublic
from orchestrator.adapters.sql.models import Task
from orchestrator.app.matching import Candidate, Decision, MatchingConfig, decide
from orchestrator.app.service import NO_REASON_FEEDBACK
from orchestrator.domain.errors import DeworkerError
from orchestrator.domain.lifecycle import TaskState
from orchestrator.entry.demo import InstantAgent
from tests.conftest import ChainEnv
from tests.test_agents import FakeToolModel, fake, submit
from tests.test_service_fixtures import World, build_world, profile, spec
from wallets.policy import selector_of

S = TaskState


@pytest.fixture
def world(chain_env: ChainEnv, tmp_path: Path) -> World:
    return build_world(chain_env.chain, [a.private_key for a in chain_env.accounts], tmp_path)


def events(world: World, name: str, task_id: int) -> int:
    """How many ``name`` events the board emitted for ``task_id``."""
    abi = board_abi()
    logs = world.chain.get_logs(
        address=world.board.address,
        topics=[abi.topic(name), task_id.to_bytes(32, "big")],
        from_block=world.start_block,
        to_block=world.chain.block_number(),
    )
    return len(logs)


def states(world: World) -> dict[int, TaskState]:
    return {int(t.task_key): t.state for t in world.store.tasks()}


# ------------------------------------------------------------------------------------------------ end to end


def test_end_to_end_rewards_equal_balances(world: World) -> None:
    writing = [world.post(f"release notes {i}", "10") for i in range(3)]
    no_skill = world.post("a rust crate", "10", skills=["rust"])
    tiny = world.post("fix a typo", "0.000001")
    bad = world.dao.post_raw(b"{not json", reward=10**18, deadline=world.now() + 86_400).task_id
    orch = world.orchestrator([profile("ada"), profile("grace")])
    orch.start()

    report = orch.cycle()

    assert report.discovered == 6
    got = states(world)
    assert {got[i] for i in writing} == {S.SUBMITTED}
    assert got[no_skill] is S.SKIPPED and got[tiny] is S.SKIPPED and got[bad] is S.QUARANTINED
    reasons = {int(t.task_key): t.state_reason or "" for t in world.store.tasks()}
    assert "no agent has all the skills ['rust']" in reasons[no_skill]
    assert reasons[tiny].startswith("not worth it: reward $0.0000")
    assert sorted(world.approve_submitted()) == writing

    assert orch.collect() == 3
    assert {states(world)[i] for i in writing} == {S.PAID}
    pnl = world.store.pnl_by_agent()
    for name in ("ada", "grace"):
        address = world.fleet.keystore.entry(name).address
        recorded = pnl[name].rewards.get(world.dao.token, 0) if name in pnl else 0
        assert recorded == world.dao.token_balance(address)
        assert pnl[name].gas_wei > 0
    assert sum(p.rewards.get(world.dao.token, 0) for p in pnl.values()) == 3 * 10 * 10**18
    for i in writing:
        assert events(world, "TaskClaimed", i) == 1 and events(world, "TaskSubmitted", i) == 1
    assert orch.collect() == 0  # a second collect changes nothing
    assert orch.cycle().discovered == 0


def test_capacity_waits_instead_of_skipping(world: World) -> None:
    ids = [world.post(f"t{i}") for i in range(3)]
    orch = world.orchestrator([profile("ada")], matching=MatchingConfig(min_seconds_left=60, max_tasks_per_agent=1))
    orch.start()
    orch.poll()
    assert orch.match() == [world.store.find_task(board=world.board.name, task_key=str(ids[0])).id]  # type: ignore[union-attr]
    assert [states(world)[i] for i in ids] == [S.CLAIMING, S.DISCOVERED, S.DISCOVERED]


# --------------------------------------------------------------------------------------------- claim races


def test_lost_claim_race_is_lost_once(world: World, chain_env: ChainEnv) -> None:
    task = world.post("contested")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.poll()
    (task_id,) = orch.match()
    rival = TxSender(world.chain, Account.from_key(chain_env.accounts[3].private_key))
    world.board.claim(str(task), wallet=rival)

    assert orch.advance(task_id).state is S.LOST
    assert "another worker claimed it first" in (world.store.get_task(task_id=task_id).state_reason or "")
    orch.cycle()
    assert states(world)[task] is S.LOST
    assert events(world, "TaskClaimed", task) == 1


def test_failed_agent_releases_the_claim(world: World) -> None:
    task = world.post("write a haiku")
    # an artifact outside its folder is never valid (a reply with no tool call is a draft now, not a failure)
    failing = LangChainAgent(
        profile("ada").model_copy(update={"max_revisions": 0}), fake(*[submit({"../escape.md": "x"})] * 4)
    )
    orch = world.orchestrator([profile("ada")], runners={"ada": failing})
    orch.start()
    orch.cycle()
    got = world.store.find_task(board=world.board.name, task_key=str(task))
    assert got is not None and got.state is S.ABANDONED
    assert (got.state_reason or "").startswith("the agent failed")
    assert world.board.status(str(task)).status_text == "OPEN"
    assert events(world, "TaskReleased", task) == 1
    assert world.store.runs(task_id=got.id)[0].status == "failed"


def test_langchain_agent_with_fake_model_end_to_end(world: World) -> None:
    task = world.post("write a haiku")
    agent = LangChainAgent(
        profile("ada").model_copy(update={"tools": []}),
        fake(submit({"out.md": "escrow holds the coin\nthe board keeps its word\npaid"})),
    )
    orch = world.orchestrator([profile("ada")], runners={"ada": agent}, review_mode="auto_if_tests_pass")
    orch.start()
    orch.cycle()
    got = world.store.find_task(board=world.board.name, task_key=str(task))
    assert got is not None and got.state is S.AWAITING_REVIEW  # no acceptance tests: a human decides
    (pending,) = world.store.pending_reviews()
    assert pending.artifact.manifest["agent"] == "ada"
    assert world.artifacts.has(pending.artifact.cid)


# -------------------------------------------------------------------------------------------- human review


def review_as_alice(
    world: World, pending: PendingReview, decision: ReviewDecision, feedback: str | None = None
) -> None:
    """Reviewer alice decides on the artifact she was shown."""
    world.store.record_review(
        task_id=pending.task.id,
        artifact_cid=pending.artifact.cid,
        decision=decision,
        reviewer="alice",
        feedback=feedback,
    )


def test_human_review_revise_then_approve(world: World) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")], review_mode="human")
    orch.start()
    orch.cycle()
    (pending,) = world.store.pending_reviews()
    review_as_alice(world, pending, ReviewDecision.REQUEST_CHANGES, "mention the escrow fix")
    orch.cycle()
    (revised,) = world.store.pending_reviews()
    assert revised.artifact.cid != pending.artifact.cid
    assert revised.task.revision_count == 1
    assert revised.artifact.manifest["feedback"] == "mention the escrow fix"
    review_as_alice(world, revised, ReviewDecision.APPROVE)
    orch.cycle()
    assert states(world)[task] is S.SUBMITTED
    assert world.board.status(str(task)).artifact_cid == revised.artifact.cid


class Recording(InstantAgent):
    """The instant agent, noting how it was asked: (feedback, start_over) per run."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.calls: list[tuple[str | None, bool]] = []

    def run(
        self, task: AgentTask, workspace: Path, *, feedback: str | None = None, start_over: bool = False
    ) -> AgentResult:
        self.calls.append((feedback, start_over))
        return super().run(task, workspace, feedback=feedback, start_over=start_over)


def test_a_human_rejection_has_the_agent_start_over(world: World) -> None:
    task = world.post("write the changelog")
    agent = Recording("ada")
    orch = world.orchestrator([profile("ada")], runners={"ada": agent}, review_mode="human")
    orch.start()
    orch.cycle()
    (pending,) = world.store.pending_reviews()
    review_as_alice(world, pending, ReviewDecision.REJECT, "this is a tutorial, not a changelog")
    orch.cycle()
    (redone,) = world.store.pending_reviews()
    assert redone.artifact.cid != pending.artifact.cid and redone.task.revision_count == 1
    review_as_alice(world, redone, ReviewDecision.REQUEST_CHANGES, "add the date")
    orch.cycle()
    assert agent.calls == [(None, False), ("this is a tutorial, not a changelog", True), ("add the date", False)]
    (revised,) = world.store.pending_reviews()
    assert revised.task.revision_count == 2
    assert events(world, "TaskClaimed", task) == 1  # the claim is kept throughout


def test_abandoning_releases_the_claim(world: World) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")], review_mode="human")
    orch.start()
    orch.cycle()
    (pending,) = world.store.pending_reviews()
    review_as_alice(world, pending, ReviewDecision.ABANDON, "off topic")
    orch.cycle()
    assert states(world)[task] is S.ABANDONED
    assert world.board.status(str(task)).status_text == "OPEN"
    orch.cycle()
    assert events(world, "TaskReleased", task) == 1


def test_dao_rejection_ends_the_task_without_resubmissions(world: World) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")], dao_resubmissions=0)
    orch.start()
    orch.cycle()
    world.dao.reject(task, "not what we asked")
    assert orch.reconcile() == [f"task {world.store.tasks()[0].id}: rejected by the DAO"]
    assert states(world)[task] is S.REJECTED
    reason = world.store.tasks()[0].state_reason
    assert reason == "the DAO rejected the submission: not what we asked (review.dao_resubmissions=0 used)"
    orch.cycle()
    assert events(world, "TaskClaimed", task) == 1


def test_dao_rejection_without_a_reason_still_gives_the_agent_feedback(world: World) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()
    # `deworker dao reject` refuses an empty reason; the contract does not, and any DAO tool may send one
    world.dao_signer.send(world.board.address, board_abi().encode_call("reject", task, ""))
    orch.reconcile()
    stored = world.store.tasks()[0]
    assert stored.state is S.CLAIMING
    assert world.store.reviews(task_id=stored.id)[-1].feedback == NO_REASON_FEEDBACK


def test_dao_rejection_is_revised_with_its_reason_and_submitted_again(world: World) -> None:
    """The DAO rejects with a reason and the task is open again: the same agent claims it again, revises with the
    reason as feedback, submits the revision; the DAO approves and pays. Both rounds' gas is on the task; a second
    rejection (one resubmission allowed by default) ends it."""
    paid = world.post("write the changelog")
    ended = world.post("write the roadmap")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()
    first = {int(t.task_key): t.artifact_cid for t in world.store.tasks()}
    for task in (paid, ended):
        world.dao.reject(task, "mention the migration step")
    ids = {int(t.task_key): t.id for t in world.store.tasks()}

    changes = orch.reconcile()

    assert sorted(changes) == sorted(f"task {ids[t]}: rejected by the DAO: claiming it again to revise" for t in ids)
    assert {states(world)[t] for t in ids} == {S.CLAIMING}
    orch = world.orchestrator([profile("ada")])  # a restart here: CLAIMING is resolved from the board, claimed once
    orch.start()
    orch.cycle()
    assert {states(world)[t] for t in ids} == {S.SUBMITTED}
    for task in (paid, ended):
        bt = world.board.status(str(task))
        assert bt.status_text == "SUBMITTED" and bt.artifact_cid != first[task]
        folder = world.artifacts.get_path(bt.artifact_cid or "", world.root / f"revision-{task}")
        texts = [p.read_text("utf-8") for p in folder.rglob("*.md")]
        assert any("Revised after review: mention the migration step" in text for text in texts)
        assert events(world, "TaskClaimed", task) == 2 and events(world, "TaskSubmitted", task) == 2
    revised = world.store.get_task(task_id=ids[paid])
    assert revised.revision_count == 1
    auto, review, again = world.store.reviews(task_id=ids[paid])  # the gate approved both revisions (auto mode)
    assert (auto.reviewer, auto.artifact_cid, again.reviewer, again.artifact_cid) == (
        "auto",
        first[paid],
        "auto",
        revised.artifact_cid,
    )
    assert (
        review.decision is ReviewDecision.REQUEST_CHANGES
        and review.reviewer == f"dao:{world.dao_signer.address}"
        and review.feedback == "mention the migration step"
    )
    assert review.artifact_cid == first[paid]

    world.dao.approve(paid)
    world.dao.reject(ended, "still no migration step")
    assert orch.collect() == 1
    assert orch.reconcile() == [f"task {ids[ended]}: rejected by the DAO"]
    assert states(world)[paid] is S.PAID and states(world)[ended] is S.REJECTED
    assert "still no migration step (review.dao_resubmissions=1 used)" in (
        world.store.get_task(task_id=ids[ended]).state_reason or ""
    )
    sent = [e.tx_hash for e in world.store.task_events(task_id=ids[paid]) if e.to_state in (S.CLAIMED, S.SUBMITTED)]
    assert len(set(sent)) == 4  # two claims, two submissions
    fees = [receipt.fee_wei for receipt in map(world.chain.receipt, filter(None, sent)) if receipt is not None]
    assert len(fees) == 4 and world.store.pnl_by_task()[ids[paid]].gas_wei == sum(fees)


# ------------------------------------------------------------------------------------ interrupted steps


class Crash(Exception):
    """Stands in for the process dying at a boundary."""


def crash_at(point: str) -> object:
    def hook(name: str) -> None:
        if name == point:
            raise Crash(name)

    return hook


@pytest.mark.parametrize(
    "point", ["claiming", "claim-mined", "producing", "artifact-stored", "submitting", "submit-mined"]
)
def test_interrupted_step_resumes_without_a_second_transaction(world: World, point: str) -> None:
    task = world.post("write the changelog")
    first = world.orchestrator([profile("ada")], boundary=crash_at(point))
    first.start()
    with pytest.raises(Crash):
        first.cycle()
    restarted = world.orchestrator([profile("ada")])  # a new process: nothing in memory
    restarted.start()
    restarted.cycle()
    assert states(world)[task] is S.SUBMITTED
    assert events(world, "TaskClaimed", task) == 1 and events(world, "TaskSubmitted", task) == 1
    (stored,) = world.store.tasks()
    assert world.artifacts.has(stored.artifact_cid or "")


@pytest.mark.parametrize("point", ["journaled", "broadcast"])
def test_claim_interrupted_inside_the_wallet_is_rebroadcast_not_resent(world: World, point: str) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    wallet = world.fleet.wallet("ada")

    def hook(name: str, _row: object) -> None:
        if name == point:
            raise Crash(name)

    wallet.boundary = hook
    with pytest.raises(Crash):
        orch.cycle()
    wallet.boundary = None
    restarted = world.orchestrator([profile("ada")])
    restarted.start()
    restarted.cycle()
    assert states(world)[task] is S.SUBMITTED
    assert events(world, "TaskClaimed", task) == 1
    claims = [
        r
        for r in world.fleet.journal.transactions(wallet=wallet.address)
        if r.selector == "0x" + selector_of("claim(uint256)").hex()
    ]
    assert len(claims) == 1


# --------------------------------------------------------------------------------------- the profit gate


PRICES = AgentsConfig.model_validate(
    {"prices": {"smollm2-135m-instruct": {"input_per_mtok": 1, "output_per_mtok": 2}}}
).prices
GATE = MatchingConfig(min_margin_usd=Decimal("0.10"), token_usd=Decimal(2), native_usd=Decimal(3000))


def gate(
    reward_tokens: str, *, fee: int = 10**9, load: dict[str, int] | None = None, skills: Sequence[str] = ("writing",)
) -> Decision:
    candidate = Candidate(spec=spec("t", skills), reward=int(Decimal(reward_tokens) * 10**18), deadline=10_000)
    return decide(
        candidate,
        profiles=[profile("ada"), profile("bob", ["writing", "python"])],
        prices=PRICES,
        load=load or {},
        max_fee_per_gas=fee,
        now=0,
        config=GATE,
    )


def test_profit_gate_arithmetic() -> None:
    # LLM: 6000 * $1/M + 1500 * $2/M = $0.009; gas: 270k * 1 gwei = 0.00027 ETH = $0.81
    ok = gate("1")
    assert ok.agent == "ada" and ok.estimate is not None
    assert ok.estimate.llm_usd == Decimal("0.009") and ok.estimate.gas_usd == Decimal("0.81")
    assert ok.estimate.margin_usd == Decimal("2") - Decimal("0.819")
    no = gate("0.45")
    assert no.skip and no.reason.startswith("not worth it") and "below matching.min_margin_usd=$0.10" in no.reason
    assert gate("1", fee=10**10).skip  # the same task is not worth it when gas is 10x dearer


def test_the_gate_counts_a_claim_only_where_tasks_are_claimed() -> None:
    """A job market assigns its jobs: the agent pays for its submit alone (150k gas at 1 gwei = $0.45), so a job
    the TaskBoard's claim + submit (270k gas) would price out is worth taking there."""
    job = Candidate(spec=spec("t", ["writing"]), reward=int(Decimal("0.4") * 10**18), deadline=10_000, claims=False)
    market = decide(job, profiles=[profile("ada")], prices=PRICES, load={}, max_fee_per_gas=10**9, now=0, config=GATE)
    assert market.agent == "ada" and market.estimate is not None
    assert market.estimate.gas_usd == Decimal("0.45")
    claimed = dataclasses.replace(job, claims=True)
    board = decide(
        claimed, profiles=[profile("ada")], prices=PRICES, load={}, max_fee_per_gas=10**9, now=0, config=GATE
    )
    assert board.skip and board.estimate is not None and board.estimate.gas_usd == Decimal("0.81")


def test_match_prefers_free_agents_and_waits_when_all_busy() -> None:
    assert gate("5", load={"ada": 2}).agent == "bob"
    busy = gate("5", load={"ada": 2, "bob": 2})
    assert busy.agent is None and busy.wait and not busy.skip
    assert gate("5", skills=["python"]).agent == "bob"
    assert gate("5", skills=["rust"]).skip


def test_unknown_agent_is_an_error_not_a_guess(world: World) -> None:
    world.post("t")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.poll()
    (task_id,) = orch.match()
    other = world.orchestrator([profile("grace")])
    with pytest.raises(DeworkerError, match="not in this fleet"):
        other.claim(task_id)


def test_claim_near_expiry_is_released_before_it_lapses(world: World) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")], review_mode="human", claim_margin=2 * 3600)  # TTL is 1 h
    orch.start()
    orch.cycle()
    assert states(world)[task] is S.AWAITING_REVIEW
    (change,) = orch.reconcile()
    assert change.endswith("released before expiry")
    assert states(world)[task] is S.ABANDONED
    assert world.board.status(str(task)).status_text == "OPEN"
    assert world.store.pending_reviews() == []


def test_agent_budget_below_the_expected_cost_is_a_skip() -> None:
    frugal = profile("ada").model_copy(update={"budgets": Budgets(max_cost_per_task=Decimal("0.001"))})
    candidate = Candidate(spec=spec("t"), reward=10**20, deadline=10_000)
    decision = decide(candidate, profiles=[frugal], prices=PRICES, load={}, max_fee_per_gas=10**9, now=0, config=GATE)
    assert decision.skip and "budgets.max_cost_per_task" in decision.reason


class Exploding:
    """An agent whose run raises a non-retryable error."""

    name = "ada"

    def run(
        self, task: AgentTask, workspace: Path, *, feedback: str | None = None, start_over: bool = False
    ) -> AgentResult:
        raise DeworkerError("the sandbox is broken")


def test_non_retryable_error_releases_the_claim(world: World) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")], runners={"ada": Exploding()})
    orch.start()
    orch.cycle()
    (stored,) = world.store.tasks()
    assert stored.state is S.ABANDONED
    assert stored.state_reason == "gave up after an error: the sandbox is broken"
    assert world.board.status(str(task)).status_text == "OPEN"


def test_claim_is_persisted_with_its_gas_and_goes_on_to_producing(world: World) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.poll()
    (task_id,) = orch.match()
    claimed = orch.claim(task_id)
    assert claimed.state is S.PRODUCING and claimed.claim_tx_hash is not None
    steps = [(e.from_state, e.to_state) for e in world.store.task_events(task_id=task_id)][-2:]
    assert steps == [(S.CLAIMING, S.CLAIMED), (S.CLAIMED, S.PRODUCING)]
    receipt = world.chain.receipt(claimed.claim_tx_hash)
    assert receipt is not None and world.store.pnl_by_task()[task_id].gas_wei == receipt.fee_wei
    assert orch.advance(task_id).state is S.SUBMITTED
    assert events(world, "TaskClaimed", task) == 1


def test_a_conflict_after_the_claim_is_mined_is_resolved_from_the_chain(world: World) -> None:
    task = world.post("write the changelog")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.poll()
    (task_id,) = orch.match()
    stale = world.store.get_task(task_id=task_id)
    with world.store._engine.begin() as conn:  # another worker touched the task after this one read it
        conn.execute(update(Task).where(col(Task.id) == task_id).values(version=stale.version + 1))

    after = orch._step(stale)  # the claim is sent; recording it conflicts: reload, do not give the task up
    assert after.state is S.CLAIMING and after.version == stale.version + 1
    assert orch.advance(task_id).state is S.SUBMITTED  # the restart path: the chain shows the claim is ours
    assert events(world, "TaskClaimed", task) == 1 and events(world, "TaskSubmitted", task) == 1
    (stored,) = world.store.tasks()
    fees = [world.chain.receipt(h) for h in (stored.claim_tx_hash or "", stored.submit_tx_hash or "")]
    assert world.store.pnl_by_task()[task_id].gas_wei == sum(r.fee_wei for r in fees if r is not None)


# ------------------------------------------------------------------------------- LLM cost across a crash


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, not even ``except Exception`` handlers."""


class CrashingModel(FakeToolModel):
    """Answers from its script, and dies on call number ``crash_on``."""

    crash_on: int = 0

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        if len(self.seen) + 1 == self.crash_on:
            raise Killed
        return super()._generate(messages, *args, **kwargs)


#: 100 prompt + 20 completion tokens (the scripted usage) cost 15.5 + 12 = 27.5 micro-USD: not a whole number.
ODD_PRICE = ModelPrice(input_per_mtok=Decimal("0.155"), output_per_mtok=Decimal("0.6"))


#: An agent without tools (one model call per attempt); the tests give it the ledger in the world's database.
TOOLLESS = profile("ada").model_copy(update={"tools": []})


def crash_mid_run(world: World) -> tuple[int, TaskPublic]:
    """Post a task and run the agent on it until the process "dies" in the run's second model call (the first
    submission lacks out.md, so the agent asks again). Returns the board id and the stored task."""
    task = world.post("write the changelog")
    doomed = CrashingModel(messages=iter([submit({"notes.md": "x"})]), crash_on=2)
    agent = LangChainAgent(TOOLLESS, doomed, price=ODD_PRICE, ledger=DbSpendLedger(world.store.engine))
    orch = world.orchestrator([TOOLLESS], runners={"ada": agent})
    orch.start()
    with pytest.raises(Killed):
        orch.cycle()
    (stored,) = world.store.tasks()
    assert stored.state is S.PRODUCING and world.store.runs(task_id=stored.id) == []
    return task, stored


def test_a_run_cut_short_by_a_crash_still_counts_its_model_cost(world: World) -> None:
    task, stored = crash_mid_run(world)
    key = f"{world.board.name}:{task}"
    ledger = DbSpendLedger(world.store.engine)
    assert ledger.spent_on(key) == (Usage(prompt_tokens=100, completion_tokens=20, calls=1), Decimal("0.0000275"))

    # a new process: the crashed run's call is accounted for before the agent runs again
    agent = LangChainAgent(TOOLLESS, fake(submit({"out.md": "changes"})), price=ODD_PRICE, ledger=ledger)
    orch = world.orchestrator([TOOLLESS], runners={"ada": agent})
    orch.start()
    orch.cycle()
    assert states(world)[task] is S.SUBMITTED
    runs = world.store.runs(task_id=stored.id)
    assert [(r.status, r.prompt_tokens, r.completion_tokens) for r in runs] == [
        (RunStatus.INTERRUPTED, 100, 20),
        (RunStatus.PRODUCED, 100, 20),
    ]
    # 27.5 + 27.5 micro-USD: the shares are taken from the exact running total, so they add up to its floor (55)
    assert [r.cost_usd_micro for r in runs] == [27, 28]
    assert world.store.pnl_by_task()[stored.id].llm_usd_micro == 55
    assert world.store.settle_unrecorded_run(task_id=stored.id, spend_key=key, agent="ada") is None  # idempotent


def test_a_crashed_run_is_accounted_for_when_the_task_is_given_up(world: World) -> None:
    task, stored = crash_mid_run(world)
    orch = world.orchestrator([TOOLLESS])  # a new process
    orch.start()
    assert orch.release(stored.id, reason="the operator gave it up").state is S.ABANDONED
    (run,) = world.store.runs(task_id=stored.id)
    assert (run.status, run.cost_usd_micro) == (RunStatus.INTERRUPTED, 27)
    assert world.board.status(str(task)).status_text == "OPEN"


# ------------------------------------------------------------------------------------ passing faults, retries


def test_a_claim_without_gas_waits_and_goes_through_once_funded(world: World) -> None:
    """Regression: a claim refused for lack of gas ("insufficient funds for gas * price + value") made the task
    FAILED for good. It now waits with its reason and a backoff, keeps its place, and is claimed once funded."""
    from orchestrator.app.service import retry_failed

    zed = world.fleet.create("zed")  # a wallet nobody funded
    task = world.post("write a haiku")
    orch = world.orchestrator([profile("zed")])
    orch.start()
    orch.cycle()
    got = world.store.find_task(board=world.board.name, task_key=str(task))
    assert got is not None and got.state is S.CLAIMING and got.retries == 1
    assert got.wait_reason is not None and "insufficient funds" in got.wait_reason.lower(), got.wait_reason
    assert orch.actionable() == []  # waiting out its backoff: the next cycle sends nothing
    orch.cycle()
    assert world.store.get_task(task_id=got.id).retries == 1
    assert world.board.status(str(task)).status_text == "OPEN"

    world.dao_signer.send(zed.address, value=10**17)  # the operator funds the wallet ...
    retry_failed(
        repos=world.runtime.repositories, board=world.board, task_id=got.id, now=world.now(), actor="ops"
    )  # ... retries
    orch.cycle()
    done = world.store.get_task(task_id=got.id)
    assert done.state is S.SUBMITTED and done.wait_reason is None and done.retries == 0
    assert events(world, "TaskClaimed", task) == 1


def test_an_operator_retries_a_failed_task_without_a_second_claim(world: World) -> None:
    from orchestrator.app.service import retry_failed
    from orchestrator.domain.errors import LifecycleError

    task = world.post("write a haiku")
    orch = world.orchestrator([profile("ada")], review_mode="human")
    orch.start()
    orch.cycle()
    got = world.store.find_task(board=world.board.name, task_key=str(task))
    assert got is not None and got.state is S.AWAITING_REVIEW
    failed = world.store.transition(task_id=got.id, to=S.ABANDONED, actor="test", reason="given up")
    with pytest.raises(LifecycleError, match="only a FAILED task"):
        retry_failed(
            repos=world.runtime.repositories, board=world.board, task_id=failed.id, now=world.now(), actor="ops"
        )

    other = world.post("write a limerick")
    orch.cycle()
    second = world.store.find_task(board=world.board.name, task_key=str(other))
    assert second is not None and second.state is S.AWAITING_REVIEW
    assert second.artifact_cid is not None
    world.store.record_review(  # sent back to the agent, whose run then fails for good: the claim is still ours
        task_id=second.id,
        artifact_cid=second.artifact_cid,
        decision=ReviewDecision.REQUEST_CHANGES,
        reviewer="carol",
        feedback="shorter",
    )
    world.store.transition(task_id=second.id, to=S.FAILED, actor="ada", reason="the model endpoint is gone")
    retried = retry_failed(
        repos=world.runtime.repositories, board=world.board, task_id=second.id, now=world.now(), actor="ops"
    )
    assert retried.state is S.CLAIMING
    orch.cycle()  # the claim step finds our claim on the board: confirmed, not sent again; the agent produces
    assert world.store.get_task(task_id=second.id).state is S.AWAITING_REVIEW
    assert events(world, "TaskClaimed", other) == 1


def test_a_fresh_database_imports_our_own_tasks_from_the_board(world: World) -> None:
    """Regression: pointing db.url at a fresh database with the same wallets marked the fleet's own tasks LOST
    ("another worker claimed it first"). A task one of our wallets holds on the board is ours: imported as the
    chain says — paid (the reward collected), submitted, or claimed (confirmed, never claimed again)."""
    paid, submitted = world.post("write a haiku"), world.post("write a limerick")
    orch = world.orchestrator([profile("ada")])
    orch.start()
    orch.cycle()
    world.dao.approve(paid)
    orch.cycle()
    claimed = world.post("write a sonnet")
    human = world.orchestrator([profile("ada")], review_mode="human")
    human.cycle()  # claimed and produced, awaiting a human: the claim is ours on the board
    assert states(world) == {paid: S.PAID, submitted: S.SUBMITTED, claimed: S.AWAITING_REVIEW}

    fresh = world.elsewhere(db_url=f"sqlite:///{world.root / 'fresh.db'}")
    again = fresh.orchestrator([profile("ada")], review_mode="human")
    again.start()
    again.cycle()
    assert states(fresh) == {paid: S.PAID, submitted: S.SUBMITTED, claimed: S.AWAITING_REVIEW}
    assert fresh.store.pnl_by_agent()["ada"].rewards == {world.dao.token: 10 * 10**18}
    for task in (paid, submitted, claimed):
        assert events(world, "TaskClaimed", task) == 1
    assert events(world, "TaskSubmitted", submitted) == 1


def test_an_artifact_no_gateway_serves_yet_is_not_submitted_and_keeps_its_claim(world: World) -> None:
    """Publish before submit: the artifact is read back through the configured gateways before the transaction
    that names its CID. While no gateway serves it, the task waits in SUBMITTING with its claim and the reason;
    once one does, it is submitted, once."""

    from orchestrator.adapters.artifacts import LocalArtifactStore
    from orchestrator.adapters.artifacts.gateway import TrustlessGateways
    from orchestrator.adapters.artifacts.remote import RemoteArtifactStore
    from orchestrator.app.service import retry_failed
    from tests.ipfs_fakes import FakeGateways

    fakes = FakeGateways()
    try:
        cache = LocalArtifactStore(world.root / "artifacts")
        gateway = fakes.gateway(cache, mode="missing")  # the operator's own gateway, not serving yet
        remote = RemoteArtifactStore(cache, gateways=TrustlessGateways([gateway.url], timeout=5))
        operator = world.elsewhere(artifacts=remote)
        task = operator.post("write a haiku")
        orch = operator.orchestrator([profile("ada")])
        orch.start()
        orch.cycle()
        got = world.store.find_task(board=world.board.name, task_key=str(task))
        assert got is not None and got.state is S.SUBMITTING
        assert "not published yet" in (got.wait_reason or ""), got.wait_reason
        assert world.board.status(str(task)).status_text == "CLAIMED" and events(world, "TaskSubmitted", task) == 0

        gateway.mode = "good"
        retry_failed(repos=world.runtime.repositories, board=world.board, task_id=got.id, now=world.now(), actor="ops")
        orch.cycle()
        assert world.store.get_task(task_id=got.id).state is S.SUBMITTED
        assert events(world, "TaskSubmitted", task) == 1 and events(world, "TaskClaimed", task) == 1
        assert any(fmt == "car" for fmt, _ in gateway.requests)  # it really was read back through the gateway
    finally:
        fakes.close()


def test_a_board_of_another_kind_is_worked_through_the_port_alone(world: World) -> None:
    """The service on a board that is not a TaskBoard (tests/boards_memory.py): keys that are not numbers, no
    transaction to claim or deliver, and a rejection that closes the task instead of reopening it — the service
    asks the board's declared capabilities, so the task ends REJECTED and is never claimed again."""
    import dataclasses

    from orchestrator.app.service import Orchestrator
    from orchestrator.domain.board import BoardPhase
    from orchestrator.domain.specs import dump_spec
    from tests.boards_memory import MemoryBoard

    memory = MemoryBoard(name="mem", store=world.artifacts, token=world.dao.token)
    first = memory.post(
        world.artifacts.put_bytes(dump_spec(spec("a memo"))),
        reward=100 * 10**18,
        deadline=world.now() + 86_400,
        poster="x",
    )
    second = memory.post(
        world.artifacts.put_bytes(dump_spec(spec("a note"))),
        reward=100 * 10**18,
        deadline=world.now() + 86_400,
        poster="x",
    )
    settings = dataclasses.replace(
        world.runtime.settings(review_mode="auto"), matching=MatchingConfig(min_seconds_left=60)
    )
    orch = Orchestrator(
        boards=[memory],
        agents=world.runtime.fleet_agents([profile("ada")], runner=lambda p: InstantAgent(p.name)),
        artifacts=world.artifacts,
        repos=world.runtime.repositories,
        chain=world.chain,
        workspace=world.root / "work-mem",
        settings=settings,
        clock=world.now,
    )
    orch.start()
    orch.cycle()
    by_key = {t.task_key: t for t in world.store.tasks()}
    assert set(by_key) == {first, second} and all(t.board == "mem" for t in by_key.values())
    assert {t.state for t in by_key.values()} == {S.SUBMITTED}, [t.state_reason for t in by_key.values()]
    assert memory.status(first).phase is BoardPhase.DELIVERED and memory.status(first).artifact_cid
    memory.approve(second)
    memory.reject(first, "too short")
    assert orch.collect() == 1
    orch.reconcile()
    after = {t.task_key: t for t in world.store.tasks()}
    assert after[second].state is S.PAID
    assert after[first].state is S.REJECTED
    assert "does not reopen a rejected task" in (after[first].state_reason or "")
    orch.cycle()
    assert memory.status(first).phase is BoardPhase.CLOSED  # nothing claimed it again

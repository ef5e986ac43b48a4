"""``Orchestrator``: one method per arrow of the flow — poll, match, claim, produce, review, submit, collect — and
``reconcile`` (database vs chain), over the ports: ``TaskBoard``, ``AgentRunner``, ``ArtifactStore``, the repositories
and one policy-gated wallet per agent (``AgentWallet``).

Crash safety. Every money step is persisted before and after it runs::

    DISCOVERED --match--> CLAIMING (agent chosen; persisted) --claim tx (journaled by the wallet)--> CLAIMED
    APPROVED --submit--> SUBMITTING (artifact CID; persisted) --publish, read back, submit tx (journaled)--> SUBMITTED

A task found in CLAIMING or SUBMITTING that this process did not put there (a restart, or a node that did not
answer) is resolved from the chain, never by sending blindly: the wallet's ``recover()`` settles its journaled
transactions first (re-broadcasting the same signed bytes), then the board's view decides — claimant is our
wallet: CLAIMED; someone else or not open: LOST; still open: no claim of ours is in flight, so it is sent now.
A claim the board refuses as taken (``TaskTaken``) is a lost race: LOST, never retried. On a board that reopens
a rejected task (``capabilities.reopens_on_rejection``), ``reconcile`` may move a rejected submission SUBMITTED ->
CLAIMING (the DAO's reason becomes the agent's feedback), and the claim above runs again from there. A board whose
tasks are assigned rather than claimed (not ``Claimable``) is asked whether the task is ours instead. Agent runs are
repeatable (same workspace; artifacts are content-addressed, so recording the same CID again is a no-op); rewards
and gas are recorded idempotently by board task and by transaction hash; a run's model cost is its share of the
task's running total in the spend ledger (written per call), so a run the process died in is recorded as
INTERRUPTED, with its cost, before the agent runs again or the task is given up.

``boundary(name)`` is an observation hook called at each step boundary (see ``BOUNDARIES``); the crash tests kill
the process there. It does nothing unless a caller passes one.

Must not import the CLI, the scheduler or any chain adapter: chains, boards and agents arrive through the ports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from agents.config import AgentProfile, ModelPrice
from agents.ports import AgentRunner, AgentStatus, AgentTask
from agents.store import store_artifact
from orchestrator.app.matching import Candidate, MatchingConfig, bid_amount, decide, estimate
from orchestrator.domain.board import BoardPhase, BoardTask
from orchestrator.domain.errors import (
    ChainError,
    ClaimGone,
    Conflict,
    DeworkerError,
    DuplicateRecord,
    LifecycleError,
    RecordNotFound,
    SpecError,
    StoreError,
    StoreUnavailable,
    TaskNotFound,
    TaskTaken,
    TransactionReverted,
)
from orchestrator.domain.ledger import CostKind
from orchestrator.domain.lifecycle import TRANSITIONS, TaskState
from orchestrator.domain.review import AUTO_APPROVE, ReviewDecision, ReviewMode, SelfCheck
from orchestrator.domain.task import RunStatus, Task
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.board import Biddable, BidSigner, BoardAction, Claimable, TaskBoard
from orchestrator.ports.chain import Chain, Receipt
from orchestrator.ports.repos import AgentValues, Repositories, RunValues
from orchestrator.ports.wallet import AgentWallet
from wallets.errors import TxExpired, TxUncertain

log = logging.getLogger(__name__)

S = TaskState
Boundary = Callable[[str], None]

#: Where ``boundary`` is called: after the state named is persisted, or after the chain answered and before the
#: next state is persisted.
BOUNDARIES = (
    "polled",  # tasks stored, cursor not yet saved
    "claiming",  # CLAIMING persisted, claim not sent
    "claim-mined",  # claim receipt in hand, CLAIMED not persisted
    "producing",  # PRODUCING persisted, agent not run
    "artifact-stored",  # artifact in the CID store, not recorded
    "produced",  # PRODUCED persisted
    "approved",  # APPROVED persisted
    "submitting",  # SUBMITTING persisted, submit not sent
    "submit-mined",  # submit receipt in hand, SUBMITTED not persisted
    "collected",  # rewards recorded, payout cursor not saved
)
#: States in which a task holds one of our claims on the board.
IN_HAND = frozenset({S.CLAIMING, S.CLAIMED, S.PRODUCING, S.PRODUCED, S.AWAITING_REVIEW, S.APPROVED, S.SUBMITTING})
#: States in which a non-retryable error gives the task up by releasing its claim (in CLAIMING and SUBMITTING the
#: chain decides first: they fail instead).
_RELEASABLE = frozenset({S.CLAIMED, S.PRODUCING, S.PRODUCED, S.APPROVED})
#: The agent's feedback when the DAO rejected a submission without giving a reason.
NO_REASON_FEEDBACK = "the DAO's reviewer rejected this without a reason: check every acceptance criterion again"
#: Polls in a row a spec may fail to be read for a reason that may pass (a store that does not answer) before its
#: task is quarantined.
MAX_SPEC_READS = 5
#: Characters of a board's spec CID kept when a task is stored in quarantine (the column's size).
CID_TEXT_LIMIT = 128
#: The quarantine reason of a task whose spec read was cut short by the process dying.
INTERRUPTED_READ = (
    "the process stopped while reading this task's spec (a crash or a kill); the task is quarantined so that a spec"
    " that crashes the reader cannot stop the fleet again"
)
#: How far back a cursor is rewound after a reorg when none of the board's checkpoints is on the chain any more:
#: 64 blocks, two epochs (Ethereum's finality). Reading blocks again is idempotent (tasks are found stored,
#: payouts recorded), so a rewind deeper than the reorg costs log queries, never a second action.
REORG_WINDOW = 64
Cursor = Literal["poll", "payout"]

#: States ``advance`` can move forward without outside input.
ACTIONABLE = frozenset({S.CLAIMING, S.CLAIMED, S.PRODUCING, S.PRODUCED, S.APPROVED, S.SUBMITTING})


def _spend_key(task: Task) -> str:
    """The task's id for its agent and the spend ledger (``AgentTask.task_id``)."""
    return f"{task.board}:{task.task_key}"


@dataclass(frozen=True, slots=True)
class FleetAgent:
    """One agent as the orchestrator drives it: its profile, what produces its work, and the wallet that signs."""

    profile: AgentProfile
    runner: AgentRunner
    wallet: AgentWallet

    @property
    def name(self) -> str:
        return self.profile.name


@dataclass
class CycleReport:
    """What one ``cycle`` did."""

    discovered: int = 0
    advanced: int = 0
    rewards: int = 0


def _utc_seconds() -> int:
    return int(time.time())


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long a step that failed with a passing fault (``DeworkerError.retryable``) waits: ``initial`` seconds,
    doubled after each further failure, at most ``maximum`` (``service.retry_*``)."""

    initial: float = 5.0
    maximum: float = 300.0

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first)."""
        return float(min(self.maximum, self.initial * 2 ** min(max(failures - 1, 0), 30)))


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What the service's steps read from config (``orchestrator.entry.bootstrap.Runtime.settings`` builds it):
    the profit gate, model prices, the review gate, where polling starts when no cursor is saved, how close to its
    end a claim is given up (``service.claim_margin``), how often a rejected submission is revised
    (``review.dao_resubmissions``), and the backoff of passing faults."""

    matching: MatchingConfig = field(default_factory=MatchingConfig)
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    review_mode: ReviewMode = "auto_if_tests_pass"
    start_block: int = 0
    claim_margin: int = 600
    dao_resubmissions: int = 1
    backoff: Backoff = field(default_factory=Backoff)


def retry_failed(*, repos: Repositories, board: TaskBoard, task_id: int, now: int, actor: str) -> Task:
    """An operator's retry of a task (``deworker tasks retry``): a task waiting out a backoff is tried at once; a
    FAILED one goes back to SUBMITTING (its claim still ours and valid, an approved artifact in hand) or to
    CLAIMING (our claim still valid: the claim step confirms it and the agent produces again; or the task open
    again: it is claimed anew), for ``deworker run`` to pick up. Anything else is refused with the reason."""
    task = repos.tasks.get_task(task_id=task_id)
    if task.state is not S.FAILED:
        if task.state in ACTIONABLE and task.retry_at is not None:
            return repos.tasks.wait(
                task_id=task.id,
                reason=task.wait_reason or "retry now",
                retry_at=datetime.fromtimestamp(now, UTC),
                expect_version=task.version,
            )
        raise LifecycleError(
            f"task {task_id} is {task.state.value}: only a FAILED task, or one waiting to be tried again, is retried",
            hint="see `deworker tasks` for what each task is doing",
        )
    if task.deadline <= now:
        raise LifecycleError(f"task {task_id}: its deadline has passed; it cannot be retried")
    agent = next((a for a in repos.agents.agents() if a.name == task.agent_name), None)
    bt = board.status(task.task_key)
    ours = agent is not None and bt.claimant is not None and bt.claimant.lower() == agent.address.lower()
    failed_at = next(
        (e.from_state for e in reversed(repos.tasks.task_events(task_id=task.id)) if e.to_state is S.FAILED), None
    )
    if bt.phase is BoardPhase.HELD and ours and bt.claim_expires > now:
        to = S.SUBMITTING if failed_at is S.SUBMITTING and task.artifact_cid is not None else S.CLAIMING
    elif bt.phase is BoardPhase.OPEN:
        to = S.CLAIMING
    else:
        by = f" by {bt.claimant}" if bt.claimant else ""
        raise LifecycleError(
            f"task {task_id} cannot be retried: the board shows it {bt.status_text}{by}"
            + (" and our claim has expired" if ours else ""),
            hint="nothing of ours is left on the board for it",
        )
    return repos.tasks.transition(
        task_id=task.id,
        to=to,
        actor=actor,
        reason=f"retried by the operator (failed at {failed_at})",
        expect_version=task.version,
    )


class Orchestrator:
    """The service steps over the ports. Thread-safe per task: a task is advanced by one thread at a time."""

    def __init__(
        self,
        *,
        boards: Sequence[TaskBoard],
        agents: Sequence[FleetAgent],
        artifacts: ArtifactStore,
        repos: Repositories,
        chain: Chain,
        workspace: Path,
        settings: ServiceSettings | None = None,
        clock: Callable[[], int] = _utc_seconds,
        boundary: Boundary | None = None,
    ) -> None:
        settings = settings or ServiceSettings()
        self.boards = {b.name: b for b in boards}
        self.agents = {a.name: a for a in agents}
        self.artifacts = artifacts
        self.repos = repos
        self.chain = chain
        self.workspace = workspace
        self.matching = settings.matching  # one attribute per setting: the steps read them directly
        self.prices = dict(settings.prices)
        self.review_mode: ReviewMode = settings.review_mode
        self.start_block = settings.start_block
        self.claim_margin = settings.claim_margin
        self.dao_resubmissions = settings.dao_resubmissions
        self.backoff = settings.backoff
        self.clock = clock
        self.boundary = boundary
        self._fresh: set[int] = set()  # tasks this process moved to CLAIMING/SUBMITTING: no chain check needed
        self._busy: set[int] = set()
        self._released: set[int] = set()  # ABANDONED tasks whose board claim this process has checked
        self._import_checked: set[int] = set()  # DISCOVERED tasks whose board state this process has checked
        self._lock = threading.Lock()
        self._by_address = {a.wallet.address.lower(): a for a in agents}

    def _hook(self, name: str) -> None:
        if self.boundary is not None:
            self.boundary(name)

    # -------------------------------------------------------------------------------------------- start-up

    def start(self) -> None:
        """Register boards and agents; settle every wallet's journaled transactions (``recover``)."""
        for board in self.boards.values():
            self.repos.cursors.ensure_board(name=board.name, kind=type(board).__name__)
        for agent in self.agents.values():
            self.repos.agents.upsert_agent(
                agent=AgentValues(name=agent.name, address=agent.wallet.address, skills=list(agent.profile.skills))
            )
            report = agent.wallet.recover()
            if report.rebroadcast or report.dropped or report.drift:
                log.warning("wallet %s recovered: %s", agent.name, report)

    # ------------------------------------------------------------------------------------------------ poll

    def poll(self) -> int:
        """Read every board from its saved cursor; store new tasks (bad specs quarantined). Returns how many
        were new. One task never stops a board: whatever its spec or data, it is stored or quarantined and the
        cursor moves past it; only a fault outside the task (the database, a store that may answer later) leaves
        the cursor where it was, to poll the same blocks again."""
        new = 0
        for board in self.boards.values():
            tasks, next_cursor = board.poll(self._cursor(board, "poll"))
            complete = True
            for bt in tasks:
                created = self._discover(board, bt)
                if created is None:
                    complete = False
                    break
                new += created
            self._hook("polled")
            if complete:
                # the hash is read just after the logs: a reorg in between (one round trip) saves the new chain's
                # hash over the old chain's logs, and that reorg goes unseen; chain.confirmations covers it
                self.repos.cursors.set_poll_cursor(
                    board=board.name, cursor=next_cursor, block_hash=self._cursor_block_hash(board, next_cursor)
                )
        return new

    # ------------------------------------------------------------------------------------------ cursors

    def _cursor(self, board: TaskBoard, kind: Cursor, *, changes: list[str] | None = None) -> str:
        """Where to read ``board``'s ``kind`` events from: the saved cursor (``first_cursor`` if none). For a
        board whose cursors are block numbers (``capabilities.block_cursors``), when a reorg replaced the block
        it stopped at (its saved hash differs from the chain's), the block after the last common one.

        The last common block is the newest of the board's checkpoints (the blocks the cursors stopped at in
        recent polls, ``MAX_CHECKPOINTS`` of them) whose hash the chain still has; if none has, the cursor goes
        back ``REORG_WINDOW`` blocks. Checkpoints rather than a walk block by block: only blocks we read have a
        hash to compare with, and a window of them costs one row, not a table. The rewound cursor is saved
        before anything is read, with its own block's hash; for payouts, the rewards recorded from the replaced
        blocks whose transaction the chain no longer has are un-credited first (``collect`` records them again
        when they reappear)."""
        row = self.repos.cursors.board(name=board.name)
        saved_cursor: str | None = getattr(row, f"{kind}_cursor") if row is not None else None
        if row is None or saved_cursor is None:
            return board.first_cursor(self.start_block)
        if not board.capabilities.block_cursors:
            return saved_cursor
        cursor = int(saved_cursor)
        saved: str | None = getattr(row, f"{kind}_cursor_hash")
        if saved is None or cursor - 1 < self.start_block or self._block_hash(cursor - 1) == saved:
            return saved_cursor
        start = max(self.start_block, cursor - REORG_WINDOW)
        for number, block_hash in reversed(row.checkpoints or []):
            if int(number) < cursor - 1 and self._block_hash(int(number)) == block_hash:
                start = max(self.start_block, int(number) + 1)
                break
        log.warning(
            "board %s: block %s is not the one the %s cursor stopped at (a reorg): reading again from block %s",
            board.name,
            cursor - 1,
            kind,
            start,
        )
        if kind == "payout":
            uncredited = self._uncredit_vanished(board, from_block=start)
            if changes is not None:
                changes.extend(uncredited)
        setter = self.repos.cursors.set_poll_cursor if kind == "poll" else self.repos.cursors.set_payout_cursor
        setter(board=board.name, cursor=str(start), block_hash=self._block_hash(start - 1), rewind=True)
        return str(start)

    def _cursor_block_hash(self, board: TaskBoard, cursor: str) -> str | None:
        """The hash saved with a cursor, to notice a reorg: its last block's, for a board of block cursors."""
        return self._block_hash(int(cursor) - 1) if board.capabilities.block_cursors else None

    def _block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` on the chain now; ``None`` before the first block or past the head (a
        reorg to a shorter chain). A node that does not answer raises, and the poll fails as it would anyway."""
        if number < 0:
            return None
        try:
            return self.chain.block(number).hash
        except ChainError as exc:
            if exc.retryable:
                raise
            return None

    def _uncredit_vanished(self, board: TaskBoard, *, from_block: int) -> list[str]:
        """Un-credit the rewards of ``board`` recorded from block ``from_block`` on whose payout transaction the
        chain no longer has (a reorg removed it): reward row removed, task PAID -> SUBMITTED, with an event."""
        changes = []
        for reward in self.repos.ledger.rewards(from_block=from_block):
            if reward.board != board.name or self.chain.receipt(reward.tx_hash) is not None:
                continue
            reason = (
                f"payout {reward.tx_hash} of block {reward.block_number} is gone from the chain (a reorg): "
                "un-credited until it mines again"
            )
            log.warning("task %s/%s: %s", reward.board, reward.task_key, reason)
            self.repos.ledger.uncredit_reward(reward_id=reward.id, reason=reason)
            changes.append(f"task {reward.task_id}: payout un-credited (reorg)")
        return changes

    def _discover(self, board: TaskBoard, bt: BoardTask) -> int | None:
        """Read one new task's spec and store the task (1), or find it stored already (0); None: its spec may be
        readable later, poll it again. The task is marked before its spec is read: if the process dies reading
        it, the next poll quarantines it instead of reading it again."""
        stored = self.repos.tasks.find_task(board=bt.board, task_key=bt.key)
        if stored is not None:  # polled again: a crash before the cursor was saved, or a rewind after a reorg
            self._check_same_post(stored, bt)
            return 0
        if bt.quarantine_reason is not None:  # the board could not even list it properly
            return self._store_discovered(bt)
        mark = self.repos.tasks.begin_spec_read(board=bt.board, task_key=bt.key)
        if mark.reading:
            return self._store_discovered(replace(bt, quarantine_reason=INTERRUPTED_READ))
        try:
            found = replace(bt, spec=board.read_spec(bt))
        except SpecError as exc:
            found = replace(bt, quarantine_reason=exc.message)
        except DeworkerError as exc:
            if not exc.retryable:
                found = replace(bt, quarantine_reason=f"spec {bt.spec_cid} could not be read: {exc.message}")
            elif mark.attempts + 1 >= MAX_SPEC_READS:
                found = replace(
                    bt, quarantine_reason=f"spec {bt.spec_cid} could not be read in {MAX_SPEC_READS} polls: {exc}"
                )
            else:
                log.warning("task %s/%s: spec not read yet, polling again: %s", bt.board, bt.key, exc)
                self.repos.tasks.spec_read_failed(board=bt.board, task_key=bt.key, error=str(exc))
                return None
        except Exception as exc:  # a parser bug must cost one task, never the board: quarantined, the poll goes on
            log.exception("task %s/%s: reading its spec failed unexpectedly", bt.board, bt.key)
            found = replace(bt, quarantine_reason=f"reading the spec failed unexpectedly: {type(exc).__name__}")
        return self._store_discovered(found)

    def _check_same_post(self, stored: Task, bt: BoardTask) -> None:
        """A task read again must be the post it was stored from. A reorg can replace a post with another under
        the same id (the board numbers tasks in order): a task still DISCOVERED is quarantined, its stored spec and
        reward not being the board's; one we already act on is logged (its claim, if a reorg removed it too, is
        re-broadcast and claims the new post; its deadline and reward are read from the board again on submit)."""
        if bt.quarantine_reason is not None:
            return  # an undecodable post: nothing to compare
        board_view = (bt.spec_cid, bt.reward, bt.deadline, bt.token.lower())
        if (stored.spec_cid, stored.reward, stored.deadline, stored.token.lower()) == board_view:
            return
        reason = (
            f"the board's post of this task changed (a reorg replaced it): spec {bt.spec_cid}, reward {bt.reward}, "
            f"deadline {bt.deadline}; stored from spec {stored.spec_cid}, reward {stored.reward}, deadline "
            f"{stored.deadline}"
        )
        if stored.state is S.DISCOVERED:
            log.warning("task %s: %s: quarantined", stored.id, reason)
            self._move(stored, S.QUARANTINED, "poller", reason)
        else:
            log.error("task %s (%s): %s", stored.id, stored.state.value, reason)

    def _store_discovered(self, bt: BoardTask) -> int:
        """Store a task read from a board. If the database refuses the task's own data (a deadline beyond 64 bits,
        say), the task is quarantined in a transaction of its own with only what any database can hold."""
        try:
            _, created = self.repos.tasks.upsert_discovered(board_task=bt)
        except StoreUnavailable:
            raise  # the database's fault, not the task's: the poll fails and the cursor stays
        except StoreError as exc:
            log.warning("task %s/%s could not be stored, quarantining it: %s", bt.board, bt.key, exc.message)
            safe = replace(
                bt,
                spec=None,
                spec_cid=bt.spec_cid[:CID_TEXT_LIMIT],
                reward=min(max(bt.reward, 0), 2**256 - 1),
                deadline=min(max(bt.deadline, 0), 2**63 - 1),
                quarantine_reason=f"the task's data could not be stored: {exc.message}",
            )
            _, created = self.repos.tasks.upsert_discovered(board_task=safe)
        self.repos.tasks.end_spec_read(board=bt.board, task_key=bt.key)
        return int(created)

    # ----------------------------------------------------------------------------------------------- match

    def load(self) -> dict[str, int]:
        """Tasks each agent holds now (claims in hand)."""
        out: dict[str, int] = {}
        for task in self.repos.tasks.resumable():
            if task.state in IN_HAND and task.agent_name is not None:
                out[task.agent_name] = out.get(task.agent_name, 0) + 1
        return out

    def match(self) -> list[int]:
        """Decide every DISCOVERED task: SKIPPED with the reason, or CLAIMING for the chosen agent (persisted
        before any transaction). Returns the ids moved to CLAIMING."""
        discovered = self.repos.tasks.tasks(state=S.DISCOVERED)
        if not discovered:
            return []
        load = self.load()
        fee = self.chain.fees().max_fee_per_gas
        profiles = [a.profile for a in self.agents.values()]
        chosen: list[int] = []
        for task in discovered:
            assert task.spec is not None  # quarantined tasks never stay DISCOVERED
            assignee: str | None = None
            if not isinstance(self._board(task), Claimable):
                found = self._assignment(task)
                if found is False:
                    continue
                assignee = found  # the agent the client hired, or None: an open job every agent may bid on
            elif self._imported(task):
                continue
            claims = isinstance(self._board(task), Claimable)
            candidate = Candidate(spec=task.spec, reward=task.reward, deadline=task.deadline, claims=claims)
            # a job a client assigned to one of our agents is that agent's or no one's (the gate still decides)
            decision = decide(
                candidate,
                profiles=profiles if assignee is None else [self.agents[assignee].profile],
                prices=self.prices,
                load=load,
                max_fee_per_gas=fee,
                now=self.clock(),
                config=self.matching,
            )
            if decision.wait:
                continue
            if decision.agent is None:
                self._move(task, S.SKIPPED, "matcher", decision.reason)
                continue
            self._move(task, S.CLAIMING, "matcher", decision.reason, agent=decision.agent)
            with self._lock:
                self._fresh.add(task.id)
            load[decision.agent] = load.get(decision.agent, 0) + 1
            chosen.append(task.id)
        return chosen

    def _assignment(self, task: Task) -> str | Literal[False] | None:
        """A DISCOVERED task on a board that assigns its tasks (not ``Claimable``), read from the board at every
        match. Held by one of our agents (hired and funded): that agent's name, for the gate to decide. Open
        without a provider, with a bid endpoint, on a board that takes bids (``Biddable``): None, every agent may
        bid. False when it is settled here: waiting (ours but not funded yet, or open without a bid endpoint)
        until the deadline is closer than ``matching.min_seconds_left`` (then SKIPPED); held or delivered by
        someone else, closed: SKIPPED; delivered or paid by our wallet: imported (``_imported``)."""
        board = self._board(task)
        try:
            bt = board.status(task.task_key)
        except TaskNotFound:  # its post was in blocks a reorg replaced
            self._move(task, S.QUARANTINED, "matcher", "the board has no such task any more (a reorg)")
            return False
        agent = self._by_address.get(bt.claimant.lower()) if bt.claimant is not None else None
        if bt.phase is BoardPhase.HELD and agent is not None:
            return agent.name
        if bt.phase in (BoardPhase.DELIVERED, BoardPhase.SETTLED) and agent is not None:
            if not self._imported(task):
                self._move(task, S.SKIPPED, "matcher", f"the board shows it {bt.status_text}, not imported")
            return False
        if bt.phase is not BoardPhase.OPEN or (bt.claimant is not None and agent is None):
            self._move(task, S.SKIPPED, "matcher", f"the board shows it {bt.status_text} for {bt.claimant}")
            return False
        assert task.spec is not None
        if agent is None and task.spec.bid_endpoint is not None and isinstance(board, Biddable):
            return None
        left = bt.deadline - self.clock()
        if left < self.matching.min_seconds_left:
            why = "hired but never funded" if agent is not None else "open, and nobody hired us"
            self._move(task, S.SKIPPED, "matcher", f"{why}; it expires in {left}s (matching.min_seconds_left)")
        return False

    def _imported(self, task: Task) -> bool:
        """A DISCOVERED task that one of our own wallets already holds on the board is ours, not lost: a database
        that did not see it happen (a fresh ``db.url``, the same wallets) imports it with what the chain says —
        claimed: CLAIMING, which the claim step confirms from the board without sending anything; submitted or
        paid: SUBMITTED with the submitted CID, and ``collect`` records the payout. Checked once per process (a
        board that assigns its tasks is read by ``_assignment`` instead, which calls this for a delivered one)."""
        if task.id in self._import_checked:
            return False
        try:
            bt = self._board(task).status(task.task_key)
        except TaskNotFound:  # its post was in blocks a reorg replaced, and the new chain has none at that id
            self._import_checked.add(task.id)
            reason = "the board has no such task any more: the post it was discovered from is gone (a reorg)"
            self._move(task, S.QUARANTINED, "matcher", reason)
            return True
        self._import_checked.add(task.id)
        agent = self._by_address.get(bt.claimant.lower()) if bt.claimant is not None else None
        if agent is None:
            return False
        if bt.phase is BoardPhase.HELD:
            reason = f"the board shows it claimed by our wallet {agent.wallet.address}: imported"
            self._move(task, S.CLAIMING, "importer", reason, agent=agent.name)  # not fresh: confirmed, never sent
            return True
        if bt.phase in (BoardPhase.DELIVERED, BoardPhase.SETTLED) and bt.artifact_cid:
            state = "paid" if bt.phase is BoardPhase.SETTLED else "submitted"
            self.repos.tasks.import_submitted(
                task_id=task.id,
                agent=agent.name,
                artifact_cid=bt.artifact_cid,
                reason=f"the board shows it {state} by our wallet {agent.wallet.address}: imported",
                expect_version=task.version,
            )
            return True
        return False

    # ----------------------------------------------------------------------------------------------- claim

    def _agent(self, task: Task) -> FleetAgent:
        if task.agent_name is None or task.agent_name not in self.agents:
            raise DeworkerError(
                f"task {task.id} belongs to agent {task.agent_name!r}, which is not in this fleet",
                hint="add the agent's profile back to agents.profiles, or finish the task by hand",
            )
        return self.agents[task.agent_name]

    def _board(self, task: Task) -> TaskBoard:
        return self.boards[task.board]

    def _take_fresh(self, task_id: int) -> bool:
        with self._lock:
            if task_id in self._fresh:
                self._fresh.discard(task_id)
                return True
            return False

    def _is_ours(self, bt: BoardTask, agent: FleetAgent) -> bool:
        return bt.claimant is not None and bt.claimant.lower() == agent.wallet.address.lower()

    def claim(self, task_id: int) -> Task:
        """CLAIMING -> CLAIMED -> PRODUCING (or LOST / FAILED). A task this process did not just move to CLAIMING is
        resolved from the chain first, so a claim is never sent twice. A confirmed claim is persisted with its gas
        and straight on to PRODUCING, in one transaction: the agent runs next (``produce``)."""
        return self._claim(self.repos.tasks.get_task(task_id=task_id))

    def _claim(self, task: Task) -> Task:
        agent = self._agent(task)
        board = self._board(task)
        if not self._take_fresh(task.id):
            agent.wallet.recover()
            bt = board.status(task.task_key)
            if self._is_ours(bt, agent):
                return self._claimed(
                    task, agent, self._confirmed(task, agent, board, "claim"), "claim confirmed on the board"
                )
            if bt.phase is not BoardPhase.OPEN:
                return self._move(task, S.LOST, agent.name, f"board shows {bt.status_text} by {bt.claimant}")
        self._hook("claiming")
        if not isinstance(board, Claimable):  # assigned to us by the client: nothing to claim, the board says
            bt = board.status(task.task_key)
            if bt.phase is BoardPhase.HELD and self._is_ours(bt, agent):
                return self._claimed(task, agent, None, "assigned to us on the board")
            if bt.phase is BoardPhase.OPEN and bt.claimant is None and isinstance(board, Biddable):
                return self._bid(task, agent, board, bt)
            return self._move(task, S.LOST, agent.name, f"board shows {bt.status_text}, not assigned to us")
        try:
            # a claim that mines with less than claim_margin left would be released at once: past that, cancel it
            receipt = board.claim(task.task_key, wallet=agent.wallet, expires_at=task.deadline - self.claim_margin)
        except TxExpired as exc:
            return self._move(task, S.ABANDONED, agent.name, f"claim not sent or cancelled: {exc.message}")
        except TaskTaken:
            return self._move(task, S.LOST, agent.name, "another worker claimed it first")
        except TransactionReverted as exc:
            return self._move(task, S.FAILED, agent.name, f"claim reverted: {exc.reason}")
        self._hook("claim-mined")
        return self._claimed(task, agent, receipt, "claimed")

    def _bid(self, task: Task, agent: FleetAgent, board: Biddable, bt: BoardTask) -> Task:
        """Bid on an open job at the agent's price (``bid_amount``) and wait in CLAIMING for the client: hired and
        funded, the claim step finds it held by us (PRODUCING); another bidder hired, or the job closed: LOST.
        The same bid is sent again after each wait (the endpoint keeps one bid per bidder)."""
        assert task.spec is not None
        endpoint = task.spec.bid_endpoint
        if endpoint is None or not isinstance(agent.wallet, BidSigner):
            return self._move(task, S.LOST, agent.name, "an open job we cannot bid on (no endpoint, or no bid signer)")
        candidate = Candidate(spec=task.spec, reward=bt.reward, deadline=bt.deadline, claims=False)
        price = self.prices.get(agent.profile.model.model)
        gate = estimate(candidate, price=price, max_fee_per_gas=self.chain.fees().max_fee_per_gas, config=self.matching)
        amount = bid_amount(gate, config=self.matching, budget=bt.reward)
        try:
            board.bid(task.task_key, amount, wallet=agent.wallet, endpoint=endpoint)
        except TaskTaken as exc:
            return self._move(task, S.LOST, agent.name, f"bid refused: {exc.message}")
        return self._wait(task, DeworkerError(f"bid of {amount} sent: waiting for the client to hire ({endpoint})"))

    def _claimed(self, task: Task, agent: FleetAgent, receipt: Receipt | None, reason: str) -> Task:
        """CLAIMING -> CLAIMED (with the claim's hash and gas) -> PRODUCING, in one transaction."""
        return self._move(task, S.PRODUCING, agent.name, reason, via=S.CLAIMED, receipt=receipt)

    def _confirmed(self, task: Task, agent: FleetAgent, board: TaskBoard, action: BoardAction) -> Receipt | None:
        """The receipt of a claim or submission found confirmed on the board after a restart, so that its hash and
        gas are recorded like any other (idempotent by hash); None if the board's events no longer have it."""
        tx_hash = board.action_tx(task.task_key, action, actor=agent.wallet.address, since=str(self.start_block))
        receipt = self.chain.receipt(tx_hash) if tx_hash is not None else None
        if receipt is None:
            log.warning("task %s: no %s transaction found on the board for its gas", task.id, action)
        return receipt

    def _move(
        self,
        task: Task,
        to: TaskState,
        actor: str,
        reason: str | None = None,
        *,
        receipt: Receipt | None = None,
        via: TaskState | None = None,
        cid: str | None = None,
        agent: str | None = None,
    ) -> Task:
        """Persist ``task`` -> ``to`` from the version this step decided on (``Conflict`` if another worker moved
        it meanwhile); a ``receipt`` gives the transition its transaction hash and gas."""
        return self.repos.tasks.transition(
            task_id=task.id,
            to=to,
            actor=actor,
            reason=reason,
            via=via,
            cid=cid,
            agent=agent,
            tx_hash=None if receipt is None else receipt.tx_hash,
            gas_wei=None if receipt is None else receipt.fee_wei,
            expect_version=task.version,
        )

    def _record_gas(self, agent: FleetAgent, task_id: int | None, receipt: Receipt) -> None:
        try:
            self.repos.ledger.record_cost(
                agent=agent.name, kind=CostKind.GAS, amount=receipt.fee_wei, task_id=task_id, tx_hash=receipt.tx_hash
            )
        except DuplicateRecord:
            log.warning("gas of %s was already recorded differently", receipt.tx_hash)

    # --------------------------------------------------------------------------------------------- produce

    def produce(self, task_id: int) -> Task:
        """CLAIMED/PRODUCING -> PRODUCED: run the agent (with the reviewer's feedback on a revision), store the
        artifact by CID, then record the run, the artifact and PRODUCED in one transaction. A failed run is
        recorded and releases the claim (ABANDONED)."""
        return self._produce(self.repos.tasks.get_task(task_id=task_id))

    def _produce(self, task: Task) -> Task:
        agent = self._agent(task)
        if task.state is S.CLAIMED:
            task = self._move(task, S.PRODUCING, agent.name)
        self._hook("producing")
        feedback = None
        start_over = False
        if task.revision_count > 0:
            reviews = self.repos.reviews.reviews(task_id=task.id)
            feedback = reviews[-1].feedback if reviews else task.state_reason
            # a rejected artifact is thrown away: the agent starts again from the task, told why
            start_over = bool(reviews) and reviews[-1].decision is ReviewDecision.REJECT
        assert task.spec is not None
        key = _spend_key(task)
        # a run this task's agent died in has its calls in the spend ledger but no run row yet: account for it first
        self.repos.runs.settle_unrecorded_run(task_id=task.id, spend_key=key, agent=agent.name)
        started = datetime.now(UTC)
        result = agent.runner.run(
            AgentTask(task_id=key, spec=task.spec),
            self.workspace / f"{task.board}-{task.task_key}",
            feedback=feedback,
            start_over=start_over,
        )
        produced = result.status is AgentStatus.PRODUCED
        run = RunValues(
            task_id=task.id,
            agent=agent.name,
            started_at=started,
            finished_at=datetime.now(UTC),
            status=RunStatus.PRODUCED if produced else RunStatus.FAILED,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            cost_usd_micro=int(result.cost * Decimal(1_000_000)),
            error=result.reason,
        )
        if not produced:
            self.repos.runs.record_run(run=run, spend_key=key)
            return self.release(task.id, reason=f"the agent failed: {result.reason}")
        try:
            cid = store_artifact(result, self.artifacts)
        except Exception:
            self.repos.runs.record_run(run=run, spend_key=key)  # the LLM cost was spent even if the artifact is lost
            raise
        self._hook("artifact-stored")
        task = self.repos.runs.record_produced(
            run=run,
            cid=cid,
            manifest=result.manifest.model_dump(mode="json", by_alias=True),
            self_check=SelfCheck(result.self_check.status.value),
            actor=agent.name,
            expect_version=task.version,
            spend_key=key,
        )
        self._hook("produced")
        return task

    def release(self, task_id: int, *, reason: str) -> Task:
        """Give the task up: release our claim on the board (if we still hold it), then ABANDONED."""
        task = self.repos.tasks.get_task(task_id=task_id)
        agent = self._agent(task)
        if task.state is S.PRODUCING:  # an agent run cut short by a crash still cost what its calls cost
            self.repos.runs.settle_unrecorded_run(task_id=task_id, spend_key=_spend_key(task), agent=agent.name)
        board = self._board(task)
        bt = board.status(task.task_key)
        if isinstance(board, Claimable) and bt.phase is BoardPhase.HELD and self._is_ours(bt, agent):
            try:
                receipt = board.release(task.task_key, wallet=agent.wallet)
                self._record_gas(agent, task_id, receipt)
            except (ClaimGone, TransactionReverted) as exc:
                log.warning("release of task %s refused (%s): the claim is gone anyway", task_id, exc.message)
        self._released.add(task_id)
        if task.state is S.ABANDONED:
            return task
        return self.repos.tasks.transition(task_id=task_id, to=S.ABANDONED, actor=agent.name, reason=reason)

    # ---------------------------------------------------------------------------------------------- review

    def review(self, task_id: int) -> Task:
        """PRODUCED -> APPROVED (automatic policy) or AWAITING_REVIEW (a human decides, in the review queue)."""
        return self._review(self.repos.tasks.get_task(task_id=task_id))

    def _review(self, task: Task) -> Task:
        task = self.repos.reviews.auto_review(
            task_id=task.id,
            approve=AUTO_APPROVE[self.review_mode],
            reason=f"review.mode is {self.review_mode}",
            expect_version=task.version,
        )
        if task.state is S.APPROVED:
            self._hook("approved")
        return task

    # ---------------------------------------------------------------------------------------------- submit

    def submit(self, task_id: int) -> Task:
        """APPROVED -> SUBMITTING (persisted) -> SUBMITTED. A SUBMITTING task this process did not just create is
        resolved from the chain first."""
        return self._submit(self.repos.tasks.get_task(task_id=task_id))

    def _submit(self, task: Task) -> Task:
        agent = self._agent(task)
        board = self._board(task)
        cid = task.artifact_cid
        assert cid is not None
        if task.state is S.APPROVED:
            task = self._move(task, S.SUBMITTING, agent.name, cid=cid)
            with self._lock:
                self._fresh.add(task.id)
        if not self._take_fresh(task.id):
            agent.wallet.recover()
            bt = board.status(task.task_key)
            if bt.phase in (BoardPhase.DELIVERED, BoardPhase.SETTLED) and self._is_ours(bt, agent):
                receipt = self._confirmed(task, agent, board, "submit")
                return self._move(task, S.SUBMITTED, agent.name, "submission confirmed on the board", receipt=receipt)
            if not (bt.phase is BoardPhase.HELD and self._is_ours(bt, agent)):
                return self._move(task, S.ABANDONED, agent.name, f"our claim is gone: {bt.status_text}")
        # Publish before the transaction that names the CID: the DAO must be able to fetch what it is asked to pay
        # for. A failed publish or read-back is retryable (ArtifactUnavailable): the task waits in SUBMITTING with
        # its claim, and the next attempt resolves it from the chain as above.
        self.artifacts.publish(cid)
        if self.artifacts.confirm_published(cid):
            log.info("task %s: artifact %s read back through the gateways, every block verified", task.id, cid)
        self._hook("submitting")
        try:
            # the board refuses a submit after the deadline (or the claim's expiry, which is never later)
            receipt = board.deliver(task.task_key, cid, wallet=agent.wallet, expires_at=task.deadline)
        except TxExpired as exc:
            return self._move(task, S.ABANDONED, agent.name, f"submit not sent or cancelled: {exc.message}")
        except ClaimGone as exc:
            if self._claim_restored(task, agent, board):
                return task  # SUBMITTING, our claim back on the board: the next attempt submits (resolved first)
            return self._move(task, S.ABANDONED, agent.name, f"submit refused: {exc.message}")
        except TransactionReverted as exc:
            return self._move(task, S.FAILED, agent.name, f"submit reverted: {exc.reason}")
        self._hook("submit-mined")
        return self._move(task, S.SUBMITTED, agent.name, "submitted", receipt=receipt, cid=cid)

    def _claim_restored(self, task: Task, agent: FleetAgent, board: TaskBoard) -> bool:
        """A submit refused because the board shows no claim of ours: was our claim removed by a reorg that no
        ``reconcile`` has seen yet? The wallet's ``recover()`` re-broadcasts reorged transactions as their same
        bytes; True if the board then shows our claim again. Only on this failure path: no cost otherwise."""
        if not agent.wallet.recover().reorged:
            return False
        bt = board.status(task.task_key)
        restored = bt.phase is BoardPhase.HELD and self._is_ours(bt, agent)
        if restored:
            log.warning("task %s: our claim was removed by a reorg and is mined again: submitting again", task.id)
        return restored

    # --------------------------------------------------------------------------------------------- collect

    def collect(self) -> int:
        """Record every payout to our wallets since the saved cursor (SUBMITTED -> PAID). Returns how many."""
        new = 0
        for board in self.boards.values():
            payouts, next_cursor = board.payouts(self._cursor(board, "payout"))
            for payout in payouts:
                if payout.recipient.lower() not in self._by_address:
                    continue
                try:
                    _, created = self.repos.ledger.record_reward(payout=payout)
                except RecordNotFound:
                    continue
                new += created
            self._hook("collected")
            self.repos.cursors.set_payout_cursor(
                board=board.name, cursor=next_cursor, block_hash=self._cursor_block_hash(board, next_cursor)
            )
        return new

    def release_abandoned(self) -> int:
        """Release the board claim of tasks given up outside ``release`` (a reviewer's ABANDON decision moves the
        task to ABANDONED in the database only). Each such task is checked once per process, while its deadline
        is open. Returns how many claims were released."""
        now = self.clock()
        released = 0
        for task in self.repos.tasks.tasks(state=S.ABANDONED):
            if task.id in self._released or task.deadline <= now or task.agent_name not in self.agents:
                continue
            agent = self._agent(task)
            board = self._board(task)
            bt = board.status(task.task_key)
            if isinstance(board, Claimable) and bt.phase is BoardPhase.HELD and self._is_ours(bt, agent):
                self._record_gas(agent, task.id, board.release(task.task_key, wallet=agent.wallet))
                released += 1
            self._released.add(task.id)
        return released

    # ------------------------------------------------------------------------------------------- reconcile

    def reconcile(self) -> list[str]:
        """Compare the database with the chain for every task holding a claim or a submission, and act on what
        differs: claims another took or that expired -> ABANDONED; claims within ``claim_margin`` seconds of their
        TTL or the deadline and not yet submitted -> released; submissions the DAO rejected -> REJECTED. Tasks in
        CLAIMING/SUBMITTING are left to ``claim``/``submit``. Returns one line per change.

        Reorgs first: each wallet's ``recover()`` finds our claims and submits whose block a reorg removed (the
        chain's nonce fell below the journal's mined ones, the receipt is gone) and re-broadcasts their same
        signed bytes, waiting for them to mine again, so the board shows them before it is compared with the
        database; a re-broadcast that now reverts (another worker claimed the task in the new chain) leaves the
        claim gone, handled below like any other. Each board's payout cursor is checked too (``_cursor``): a
        payout a reorg removed is un-credited."""
        changes: list[str] = []
        for agent in self.agents.values():
            report = agent.wallet.recover()
            changes.extend(f"wallet {agent.name}: {tx} re-broadcast after a reorg" for tx in report.reorged)
        for board in self.boards.values():
            self._cursor(board, "payout", changes=changes)
        now = self.clock()
        for task in self.repos.tasks.resumable():
            if task.state not in IN_HAND and task.state is not S.SUBMITTED:
                continue
            if task.state in (S.CLAIMING, S.SUBMITTING):
                continue  # claim()/submit() resolve these from the chain themselves
            with self._lock:
                if task.id in self._busy:
                    continue
                self._busy.add(task.id)
            try:
                change = self._reconcile_task(task, now)
            except TaskNotFound:  # a reorg removed its post (and our claim with it: re-broadcast, it reverted)
                reason = "the board has no such task any more: a reorg removed its post"
                self._move(task, S.ABANDONED, "reconciler", reason)
                change = "post gone (reorg)"
            except Conflict:
                change = None  # a reviewer decided meanwhile: the next reconcile sees the new state
            finally:
                with self._lock:
                    self._busy.discard(task.id)
            if change is not None:
                changes.append(f"task {task.id}: {change}")
        return changes

    def _reconcile_task(self, task: Task, now: int) -> str | None:
        agent = self._agent(task)
        bt = self._board(task).status(task.task_key)
        ours = self._is_ours(bt, agent)
        if task.state is S.SUBMITTED:
            # our delivery is off the board without a payout: rejected (a board that reopens a rejected task shows
            # it open, or already taken by someone else; one that does not shows it closed)
            reopened = bt.phase is BoardPhase.OPEN or (bt.phase is BoardPhase.HELD and not ours)
            if reopened or (bt.phase is BoardPhase.CLOSED and not self._board(task).capabilities.reopens_on_rejection):
                return self._rejected(task, agent, bt, now)
            return None
        if not (bt.phase is BoardPhase.HELD and ours):
            self._move(
                task, S.ABANDONED, "reconciler", f"the board shows {bt.status_text} by {bt.claimant}: our claim is gone"
            )
            return "claim gone"
        closes = min(bt.claim_expires, bt.deadline)
        if closes - now <= self.claim_margin:
            self.release(task.id, reason=f"claim closes in {closes - now}s, before we could submit")
            return "released before expiry"
        return None

    def _rejected(self, task: Task, agent: FleetAgent, bt: BoardTask, now: int) -> str:
        """The DAO rejected our submission. If the task is open again and worth another try, claim it again to
        revise with the DAO's reason as feedback (SUBMITTED -> CLAIMING); otherwise REJECTED."""
        rejection = self._board(task).rejection(task.task_key, since=str(self.start_block))
        reason = f": {rejection.reason}" if rejection is not None and rejection.reason else ""
        if rejection is None and bt.phase is BoardPhase.CLOSED:  # closed unpaid by no one's decision: an expiry
            self._move(task, S.REJECTED, "reconciler", f"the board shows it {bt.status_text}, unpaid (no rejection)")
            return f"closed unpaid: {bt.status_text}"
        why_not = self._no_rework(task, agent, bt, now) if rejection is not None else "no rejection event found"
        if why_not is not None:
            self._move(task, S.REJECTED, "reconciler", f"the DAO rejected the submission{reason} ({why_not})")
            return "rejected by the DAO"
        assert rejection is not None
        self.repos.reviews.rework_rejected(
            task_id=task.id,
            reviewer=rejection.reviewer,
            reason=rejection.reason or NO_REASON_FEEDBACK,
            expect_version=task.version,
        )
        with self._lock:
            self._fresh.add(task.id)
        return "rejected by the DAO: claiming it again to revise"

    def _no_rework(self, task: Task, agent: FleetAgent, bt: BoardTask, now: int) -> str | None:
        """Why a rejected task is not claimed again (None: it is)."""
        if not self._board(task).capabilities.reopens_on_rejection:
            return "the board does not reopen a rejected task"
        earlier = sum(1 for r in self.repos.reviews.reviews(task_id=task.id) if r.reviewer.startswith("dao:"))
        if earlier >= self.dao_resubmissions:
            return f"review.dao_resubmissions={self.dao_resubmissions} used"
        if task.revision_count >= self.repos.reviews.max_revisions:
            return f"review.max_revisions={self.repos.reviews.max_revisions} used"
        if bt.phase is not BoardPhase.OPEN:
            return f"the board shows {bt.status_text} by {bt.claimant}"
        if bt.deadline - now < self.matching.min_seconds_left:
            return f"deadline in {bt.deadline - now}s, less than matching.min_seconds_left"
        price = self.prices.get(agent.profile.model.model)
        fee = self.chain.fees().max_fee_per_gas
        assert task.spec is not None
        claims = isinstance(self._board(task), Claimable)
        candidate = Candidate(spec=task.spec, reward=task.reward, deadline=task.deadline, claims=claims)
        gate = estimate(candidate, price=price, max_fee_per_gas=fee, config=self.matching)
        if gate.margin_usd < self.matching.min_margin_usd:
            return f"another try is not worth it: {gate.describe()}"
        return None

    # ---------------------------------------------------------------------------------------- orchestration

    def advance(self, task_id: int) -> Task:
        """Move one task forward until it waits for something outside (a human review, the DAO, a payout)."""
        with self._lock:
            if task_id in self._busy:
                return self.repos.tasks.get_task(task_id=task_id)
            self._busy.add(task_id)
        try:
            task = self.repos.tasks.get_task(task_id=task_id)
            while task.state in ACTIONABLE and not self._waiting(task):
                before = (task.state, task.version)
                task = self._step(task)
                if (task.state, task.version) == before:
                    break
            return task
        finally:
            with self._lock:
                self._busy.discard(task_id)

    def _step(self, task: Task) -> Task:
        try:
            if task.state is S.CLAIMING:
                return self._claim(task)
            if task.state in (S.CLAIMED, S.PRODUCING):
                return self._produce(task)
            if task.state is S.PRODUCED:
                return self._review(task)
            return self._submit(task)
        except Conflict as exc:
            log.info("task %s: %s; deciding again from the stored state", task.id, exc)
            return self.repos.tasks.get_task(task_id=task.id)
        except TxUncertain as exc:
            log.warning("task %s: %s; resolved from the chain on the next attempt", task.id, exc)
            return task
        except DeworkerError as exc:
            if exc.retryable:
                return self._wait(task, exc)
            log.error("task %s failed at %s: %s", task.id, task.state, exc)
            current = self.repos.tasks.get_task(task_id=task.id)
            if current.state in _RELEASABLE:
                try:
                    return self.release(task.id, reason=f"gave up after an error: {exc}")
                except DeworkerError as release_error:
                    log.error("task %s: releasing the claim failed too: %s", task.id, release_error)
            if S.FAILED in TRANSITIONS[current.state]:
                return self.repos.tasks.transition(task_id=task.id, to=S.FAILED, actor="orchestrator", reason=str(exc))
            return current

    def _wait(self, task: Task, exc: DeworkerError) -> Task:
        """The step failed with a fault that passes by itself (no gas yet, a node or gateway not answering): the
        task keeps its state and its claim, says why it waits, and is tried again after the backoff."""
        current = self.repos.tasks.get_task(task_id=task.id)
        delay = self.backoff.delay(current.retries + 1)
        log.warning("task %s: %s (waiting; tried again in %ds)", task.id, exc.message, delay)
        retry_at = datetime.fromtimestamp(self.clock() + delay, UTC)
        try:
            return self.repos.tasks.wait(
                task_id=task.id, reason=exc.message, retry_at=retry_at, expect_version=current.version
            )
        except Conflict:
            return self.repos.tasks.get_task(task_id=task.id)

    def _waiting(self, task: Task) -> bool:
        """Whether the task is waiting out a backoff now."""
        return task.retry_at is not None and task.retry_at > datetime.fromtimestamp(self.clock(), UTC)

    def actionable(self) -> list[Task]:
        """Tasks ``advance`` can move now, oldest first: not those waiting out a backoff."""
        return [t for t in self.repos.tasks.resumable() if t.state in ACTIONABLE and not self._waiting(t)]

    def cycle(self, *, advance: Callable[[Task], None] | None = None) -> CycleReport:
        """poll -> match -> advance every actionable task -> collect. ``advance`` hands tasks to a worker pool
        (the scheduler's); without one they run here, one after the other."""
        report = CycleReport()
        report.discovered = self.poll()
        self.match()
        for task in self.actionable():
            if advance is not None:
                advance(task)
            else:
                self.advance(task.id)
            report.advanced += 1
        self.release_abandoned()
        report.rewards = self.collect()
        return report

"""``SqlLedger``: money in and out (``orchestrator.ports.repos.Ledger``): rewards a board paid (idempotent per
board and task key; a SUBMITTED task becomes PAID with it), costs (gas in wei, idempotent per transaction hash;
LLM usage in micro-USD), a payout a reorg removed un-credited, and P&L summed in SQL (``queries``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from orchestrator.adapters.sql.base import S, SqlRepository, T
from orchestrator.adapters.sql.errors import DuplicateRecord, RecordNotFound, StoreError
from orchestrator.adapters.sql.models import (
    Agent,
    Cost,
    CostKind,
    CostPublic,
    EventKind,
    PoolHolding,
    PoolHoldingPublic,
    RevenueClaim,
    RevenueClaimPublic,
    Reward,
    RewardPublic,
)
from orchestrator.adapters.sql.models import Task as TaskRow
from orchestrator.adapters.sql.queries import Queries
from orchestrator.domain.board import Payout
from orchestrator.domain.lifecycle import TRANSITIONS, check_transition
from orchestrator.domain.money import PnL


class SqlLedger(SqlRepository[T]):
    """The ``reward`` and ``cost`` tables."""

    def record_reward(self, *, payout: Payout, actor: str = "collector") -> tuple[RewardPublic, bool]:
        """Record a board's payout; returns it and whether it is new. The same payout again changes nothing.

        A SUBMITTED task moves to PAID in the same transaction. Raises ``DuplicateRecord`` when the task already
        has a different payout, ``RecordNotFound`` when neither the task nor the recipient is ours.
        """
        p = payout
        try:
            # not durable: the payout cursor saved after it is; a lost payout is collected again
            with self._transaction(f"recording the payout of {p.board}/{p.key}", durable=False) as s:
                existing = self._reward(s, p)
                if existing is not None:
                    return self._same_reward(existing, p), False
                task = s.exec(
                    select(TaskRow)
                    .where(col(TaskRow.board) == p.board, col(TaskRow.task_key) == p.key)
                    .with_for_update()
                ).one_or_none()
                agent = task.agent_name if task is not None else None
                if agent is None:
                    agent = s.exec(
                        select(Agent.name).where(func.lower(col(Agent.address)) == p.recipient.lower())
                    ).first()
                if task is None and agent is None:
                    raise RecordNotFound(
                        f"payout {p.tx_hash} for {p.board}/{p.key} to {p.recipient}: neither the task nor the "
                        "recipient is ours",
                        hint="record only payouts to the fleet's agent addresses",
                    )
                reward = Reward(
                    board=p.board,
                    task_key=p.key,
                    task_id=None if task is None else task.id,
                    agent=agent,
                    recipient=p.recipient,
                    token=p.token,
                    amount=p.amount,
                    tx_hash=p.tx_hash,
                    block_number=p.block_number,
                    at=self._clock(),
                )
                s.add(reward)
                if task is not None:
                    assert task.id is not None
                    before = task.state
                    after = S.PAID if S.PAID in TRANSITIONS[before] else before
                    reason = f"paid {self.amount_text(p.amount, p.token)} in block {p.block_number}"
                    if after is not before:
                        self._guarded_update(s, task, {"state": after, "state_reason": reason})
                    s.add(self._event(task.id, EventKind.REWARD, before, after, actor, reason, tx_hash=p.tx_hash))
                s.flush()
                return RewardPublic.model_validate(reward), True
        except DuplicateRecord:
            with self._transaction(f"reading the payout of {p.board}/{p.key}", reads_only=True) as s:
                existing = self._reward(s, p)
                if existing is None:
                    raise
                return self._same_reward(existing, p), False

    def rewards(self, *, from_block: int = 0) -> list[RewardPublic]:
        """Recorded payouts mined in block ``from_block`` or later, oldest first."""
        with self._transaction("listing rewards", reads_only=True) as s:
            query = select(Reward).where(col(Reward.block_number) >= from_block).order_by(col(Reward.block_number))
            return [RewardPublic.model_validate(r) for r in s.exec(query)]

    def uncredit_reward(self, *, reward_id: int, reason: str, actor: str = "reconciler") -> T | None:
        """A payout a reorg removed from the chain: delete its reward row and move its task PAID -> SUBMITTED with
        an event, in one transaction, so that the rewards equal what the chain paid; ``collect`` records the payout
        again when it reappears. Returns the task (``None`` for a payout to one of our addresses on a task that is
        not ours, or a reward already gone)."""
        with self._transaction(f"un-crediting reward {reward_id}") as s:
            reward = s.get(Reward, reward_id, with_for_update=True)
            if reward is None:
                return None
            task = self._task(s, reward.task_id, lock=True) if reward.task_id is not None else None
            tx_hash = reward.tx_hash
            s.delete(reward)
            if task is None:
                return None
            assert task.id is not None
            before = task.state
            after = S.SUBMITTED if before is S.PAID else before
            if after is not before:
                check_transition(before, after)
                self._guarded_update(s, task, {"state": after, "state_reason": reason})
            s.add(self._event(task.id, EventKind.REWARD, before, after, actor, reason, tx_hash=tx_hash))
            s.flush()
            return self._out(task)

    @staticmethod
    def _reward(s: Session, p: Payout) -> Reward | None:
        return s.exec(select(Reward).where(col(Reward.board) == p.board, col(Reward.task_key) == p.key)).one_or_none()

    @staticmethod
    def _same_reward(existing: Reward, p: Payout) -> RewardPublic:
        if (existing.tx_hash, existing.amount, existing.token) != (p.tx_hash, p.amount, p.token):
            raise DuplicateRecord(
                f"task {p.board}/{p.key} was already paid {existing.amount} of {existing.token} in "
                f"{existing.tx_hash}; now a payout of {p.amount} in {p.tx_hash}",
                hint="a board pays a task once: check the board's events for a reorg or a second board",
            )
        return RewardPublic.model_validate(existing)

    def record_cost(
        self,
        *,
        agent: str,
        kind: CostKind,
        amount: int,
        task_id: int | None = None,
        tx_hash: str | None = None,
    ) -> tuple[CostPublic, bool]:
        """Record a cost: gas in wei (``tx_hash`` required; the same transaction again changes nothing) or LLM
        usage in micro-USD (``record_run`` does that for runs). Returns it and whether it is new."""
        if (kind is CostKind.GAS) != (tx_hash is not None):
            raise StoreError(f"a {kind} cost {'needs' if kind is CostKind.GAS else 'cannot have'} a tx_hash")
        row = Cost(task_id=task_id, agent=agent, kind=kind, amount=amount, tx_hash=tx_hash, at=self._clock())
        try:
            # gas is recorded after the receipt, as the step's record; the task's next durable commit flushes it
            with self._transaction(f"recording a {kind} cost of {agent!r}", durable=kind is not CostKind.GAS) as s:
                if tx_hash is not None:
                    existing = s.exec(select(Cost).where(col(Cost.tx_hash) == tx_hash)).one_or_none()
                    if existing is not None:
                        return self._same_cost(existing, row), False
                s.add(row)
                s.flush()
                return CostPublic.model_validate(row), True
        except DuplicateRecord:
            with self._transaction(f"reading the cost of {tx_hash}", reads_only=True) as s:
                existing = s.exec(select(Cost).where(col(Cost.tx_hash) == tx_hash)).one_or_none()
                if existing is None:
                    raise
                return self._same_cost(existing, row), False

    @staticmethod
    def _same_cost(existing: Cost, new: Cost) -> CostPublic:
        if (existing.agent, existing.kind, existing.amount, existing.task_id) != (
            new.agent,
            new.kind,
            new.amount,
            new.task_id,
        ):
            raise DuplicateRecord(
                f"transaction {existing.tx_hash} already has a {existing.kind} cost of {existing.amount} "
                f"for {existing.agent!r}; now {new.amount} for {new.agent!r}"
            )
        return CostPublic.model_validate(existing)

    def record_revenue_claim(
        self, *, agent: str, pool: str, token: str, holder: str, amount: int, tx_hash: str, block_number: int
    ) -> tuple[RevenueClaimPublic, bool]:
        """Record a project pool's ``RevenueClaimed`` event paid to ``agent``; returns it and whether it is new.
        The same claim (transaction, pool, token) again changes nothing, so the collector may record every claim
        it reads from the chain after a crash; a different amount for it raises ``DuplicateRecord``."""
        row = RevenueClaim(
            pool=pool,
            token=token,
            holder=holder,
            agent=agent,
            amount=amount,
            tx_hash=tx_hash,
            block_number=block_number,
            at=self._clock(),
        )
        try:
            with self._transaction(f"recording the revenue claim {tx_hash} of {agent!r}") as s:
                existing = self._revenue_claim(s, row)
                if existing is not None:
                    return self._same_revenue_claim(existing, row), False
                s.add(row)
                s.flush()
                return RevenueClaimPublic.model_validate(row), True
        except DuplicateRecord:
            with self._transaction(f"reading the revenue claim {tx_hash}", reads_only=True) as s:
                existing = self._revenue_claim(s, row)
                if existing is None:
                    raise
                return self._same_revenue_claim(existing, row), False

    def revenue_claims(self) -> list[RevenueClaimPublic]:
        """Every recorded revenue claim, oldest first."""
        with self._transaction("listing revenue claims", reads_only=True) as s:
            query = select(RevenueClaim).order_by(col(RevenueClaim.block_number), col(RevenueClaim.id))
            return [RevenueClaimPublic.model_validate(r) for r in s.exec(query)]

    def record_holdings(self, *, agent: str, holder: str, holdings: Sequence[tuple[str, str, int, int]]) -> None:
        """Replace ``agent``'s snapshot of its pool holdings, ``(pool, token, shares, claimable)`` as just read
        from the chain, in one transaction (a pool it no longer holds shares in drops out)."""
        at = self._clock()
        with self._transaction(f"recording the pool holdings of {agent!r}") as s:
            s.execute(delete(PoolHolding).where(col(PoolHolding.agent) == agent))
            for pool, token, shares, claimable in holdings:
                s.add(
                    PoolHolding(
                        agent=agent, pool=pool, token=token, holder=holder, shares=shares, claimable=claimable, at=at
                    )
                )

    def holdings(self) -> list[PoolHoldingPublic]:
        """Every agent's last-read pool holdings, by agent, pool and token."""
        with self._transaction("listing pool holdings", reads_only=True) as s:
            query = select(PoolHolding).order_by(col(PoolHolding.agent), col(PoolHolding.pool), col(PoolHolding.token))
            return [PoolHoldingPublic.model_validate(r) for r in s.exec(query)]

    @staticmethod
    def _revenue_claim(s: Session, row: RevenueClaim) -> RevenueClaim | None:
        return s.exec(
            select(RevenueClaim).where(
                col(RevenueClaim.tx_hash) == row.tx_hash,
                col(RevenueClaim.pool) == row.pool,
                col(RevenueClaim.token) == row.token,
            )
        ).one_or_none()

    @staticmethod
    def _same_revenue_claim(existing: RevenueClaim, new: RevenueClaim) -> RevenueClaimPublic:
        if (existing.amount, existing.holder, existing.agent) != (new.amount, new.holder, new.agent):
            raise DuplicateRecord(
                f"revenue claim {existing.tx_hash} on pool {existing.pool} was recorded as {existing.amount} to "
                f"{existing.agent!r}; now {new.amount} to {new.agent!r}",
                hint="a claim transaction pays once: check the chain for a reorg",
            )
        return RevenueClaimPublic.model_validate(existing)

    def pnl_by_agent(self) -> dict[str, PnL]:
        """Rewards received minus gas and LLM cost, per agent name, per currency (see ``PnL``): summed in SQL."""
        return self._queries().pnl_by_agent()

    def pnl_by_task(self) -> dict[int, PnL]:
        """Rewards received minus gas and LLM cost, per task id, per currency. Costs not tied to a task (e.g.
        a sweep's gas) are left out: they appear in ``pnl_by_agent`` only."""
        return self._queries().pnl_by_task()

    def _queries(self) -> Queries:
        return Queries(self._engine)

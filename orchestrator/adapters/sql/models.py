"""The database tables, in the FastAPI template's SQLModel pattern: ``XBase`` (shared fields) → ``X(table=True)``
(the row) and ``XPublic`` (what ``Store`` returns: validated, detached from any session); ``XCreate`` where a caller
supplies a whole record.

Units, stated once: token amounts (rewards) are the ERC-20's base units; gas is wei of the chain's native coin;
LLM cost is micro-USD (1 USD = 1_000_000). They are never added together (see ``Store.pnl_by_agent``).
All timestamps are timezone-aware UTC.

``task_event`` is append-only: the initial migration installs triggers that refuse UPDATE and DELETE on it.

Importing this module registers the tables in ``SQLModel.metadata`` and sets its constraint naming convention
(named constraints are what lets a later migration alter them on SQLite). It creates no engine.
Must not import the orchestrator's services or any adapter other than SQLAlchemy/SQLModel.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from orchestrator.adapters.sql.types import U256, StrEnumText, UtcDateTime
from orchestrator.domain.ledger import CostKind as CostKind  # re-exported: the tables use them
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.review import ReviewDecision, SelfCheck
from orchestrator.domain.task import RunStatus as RunStatus

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LEN = 64  # board and agent names
ADDRESS_LEN = 42  # 0x + 40 hex
TX_HASH_LEN = 66  # 0x + 64 hex
CID_LEN = 128  # a CIDv1 base32 sha2-256 is 59 characters; room for other codecs
KEY_LEN = 128  # a task's key on its board, a board cursor: a uint256 in decimal is 78 characters; room for others


class EventKind(enum.StrEnum):
    """What a ``task_event`` row records."""

    DISCOVERED = "discovered"  # the task was first stored (from_state is NULL)
    TRANSITION = "transition"  # a lifecycle transition
    ARTIFACT = "artifact"  # a new current artifact (state unchanged)
    REVIEW = "review"  # a reviewer's decision (actor = the reviewer)
    REWARD = "reward"  # a payout was recorded (SUBMITTED -> PAID, or state unchanged)


# ---------------------------------------------------------------------------------------------------- boards


class BoardBase(SQLModel):
    name: str = Field(primary_key=True, max_length=NAME_LEN)
    kind: str = Field(max_length=32, description="adapter kind, e.g. 'onchain'")
    poll_cursor: str | None = Field(default=None, max_length=KEY_LEN, description="where to poll for tasks next")
    payout_cursor: str | None = Field(default=None, max_length=KEY_LEN, description="where to poll for payouts next")
    poll_cursor_hash: str | None = Field(
        default=None, max_length=TX_HASH_LEN, description="hash of block poll_cursor - 1, as it was read"
    )
    payout_cursor_hash: str | None = Field(
        default=None, max_length=TX_HASH_LEN, description="hash of block payout_cursor - 1, as it was read"
    )
    checkpoints: list[list[int | str]] | None = Field(
        default=None,
        sa_type=JSON,
        description="recent [number, hash] pairs of blocks a cursor stopped at, oldest first (reorg rewinds)",
    )


class Board(BoardBase, table=True):
    __tablename__ = "board"


class BoardPublic(BoardBase):
    pass


class SpecRead(SQLModel, table=True):
    """A task whose spec is being read, marked (durably) before the read starts and deleted in the transaction
    that stores the task: a row still ``reading`` at the next read means the process died reading this spec, and
    the task is quarantined instead of read again (a spec that crashes the reader cannot crash it twice)."""

    __tablename__ = "spec_read"

    board: str = Field(primary_key=True, max_length=NAME_LEN)
    task_key: str = Field(primary_key=True, max_length=KEY_LEN)
    attempts: int = Field(default=0, description="reads started so far")
    reading: bool = Field(default=False, description="a read started and did not finish")
    last_error: str | None = Field(default=None, sa_type=Text, description="why the last read could not finish")
    updated_at: datetime = Field(sa_type=UtcDateTime)


class SpecReadPublic(SQLModel):
    """A ``SpecRead`` mark as ``Store.begin_spec_read`` found it."""

    attempts: int = 0
    reading: bool = False
    last_error: str | None = None


# ----------------------------------------------------------------------------------------------------- tasks


class TaskBase(SQLModel):
    board: str = Field(max_length=NAME_LEN)
    task_key: str = Field(max_length=KEY_LEN, description="the task's key on its board")
    title: str | None = Field(default=None, max_length=200, description="None when the spec was quarantined")
    spec_cid: str = Field(max_length=CID_LEN)
    spec: dict[str, Any] | None = Field(default=None, sa_type=JSON, description="the TaskSpec, as JSON")
    token: str = Field(max_length=ADDRESS_LEN)
    reward: int = Field(sa_type=U256, description="token base units")
    deadline: int = Field(sa_type=BigInteger, description="unix seconds")
    state: TaskState = Field(sa_type=StrEnumText(TaskState), index=True)
    state_reason: str | None = Field(default=None, sa_type=Text, description="why the last transition happened")
    agent_name: str | None = Field(default=None, max_length=NAME_LEN, index=True)
    claim_tx_hash: str | None = Field(default=None, max_length=TX_HASH_LEN)
    submit_tx_hash: str | None = Field(default=None, max_length=TX_HASH_LEN)
    artifact_cid: str | None = Field(default=None, max_length=CID_LEN, description="the current artifact")
    revision_count: int = Field(default=0, description="changes requested by reviewers so far")
    wait_reason: str | None = Field(
        default=None, sa_type=Text, description="why the current step waits to be tried again (a passing fault)"
    )
    retry_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="not tried again before this")
    retries: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="tries of the current step that failed with a passing fault",
    )
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    version: int = Field(default=1, description="bumped by every change: optimistic locking")


class Task(TaskBase, table=True):
    __tablename__ = "task"
    __table_args__ = (UniqueConstraint("board", "task_key"),)

    id: int | None = Field(default=None, primary_key=True)


class TaskPublic(TaskBase):
    id: int


class TaskEventBase(SQLModel):
    task_id: int = Field(foreign_key="task.id", index=True)
    kind: EventKind = Field(sa_type=StrEnumText(EventKind))
    from_state: TaskState | None = Field(default=None, sa_type=StrEnumText(TaskState))
    to_state: TaskState = Field(sa_type=StrEnumText(TaskState))
    reason: str | None = Field(default=None, sa_type=Text)
    actor: str = Field(max_length=NAME_LEN, description="who did it: a worker, an agent, a reviewer's name")
    tx_hash: str | None = Field(default=None, max_length=TX_HASH_LEN)
    cid: str | None = Field(default=None, max_length=CID_LEN)
    at: datetime = Field(sa_type=UtcDateTime)


class TaskEvent(TaskEventBase, table=True):
    """Append-only: one row per change of a task, written in the same transaction as the change."""

    __tablename__ = "task_event"

    id: int | None = Field(default=None, primary_key=True)


class TaskEventPublic(TaskEventBase):
    id: int


# ---------------------------------------------------------------------------------------------------- agents


class AgentBase(SQLModel):
    name: str = Field(max_length=NAME_LEN, unique=True)
    address: str = Field(max_length=ADDRESS_LEN, description="the agent wallet's address")
    skills: list[str] = Field(default_factory=list, sa_type=JSON)
    enabled: bool = True


class AgentCreate(AgentBase):
    pass


class Agent(AgentBase, table=True):
    __tablename__ = "agent"

    id: int | None = Field(default=None, primary_key=True)


class AgentPublic(AgentBase):
    id: int


# ------------------------------------------------------------------------------------------------------ runs


class RunBase(SQLModel):
    task_id: int = Field(foreign_key="task.id", index=True)
    agent: str = Field(max_length=NAME_LEN)
    started_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime = Field(sa_type=UtcDateTime)
    status: RunStatus = Field(sa_type=StrEnumText(RunStatus))
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost_usd_micro: int = Field(default=0, ge=0, sa_type=BigInteger, description="LLM cost in micro-USD")
    error: str | None = Field(default=None, sa_type=Text)


class RunCreate(RunBase):
    pass


class Run(RunBase, table=True):
    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    attempt: int = Field(description="1 for the task's first run, 2 for the next, ...")


class RunPublic(RunBase):
    id: int
    attempt: int


# ------------------------------------------------------------------------------------------- artifacts, reviews


class ArtifactBase(SQLModel):
    task_id: int = Field(foreign_key="task.id", index=True)
    cid: str = Field(max_length=CID_LEN)
    revision: int = Field(description="the task's revision_count when it was produced (0 = first version)")
    manifest: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    self_check: SelfCheck = Field(sa_type=StrEnumText(SelfCheck))
    created_at: datetime = Field(sa_type=UtcDateTime)


class Artifact(ArtifactBase, table=True):
    __tablename__ = "artifact"
    __table_args__ = (UniqueConstraint("task_id", "cid"),)

    id: int | None = Field(default=None, primary_key=True)


class ArtifactPublic(ArtifactBase):
    id: int


class ReviewBase(SQLModel):
    task_id: int = Field(foreign_key="task.id", index=True)
    artifact_cid: str = Field(max_length=CID_LEN, description="the artifact the reviewer was shown")
    decision: ReviewDecision = Field(sa_type=StrEnumText(ReviewDecision))
    feedback: str | None = Field(default=None, sa_type=Text)
    reviewer: str = Field(max_length=NAME_LEN)
    at: datetime = Field(sa_type=UtcDateTime)


class Review(ReviewBase, table=True):
    __tablename__ = "review"

    id: int | None = Field(default=None, primary_key=True)


class ReviewPublic(ReviewBase):
    id: int


# ----------------------------------------------------------------------------------------------- money: in, out


class RewardBase(SQLModel):
    board: str = Field(max_length=NAME_LEN)
    task_key: str = Field(max_length=KEY_LEN, description="the task's key on its board")
    task_id: int | None = Field(default=None, foreign_key="task.id", description="None if the task is not ours")
    agent: str | None = Field(default=None, max_length=NAME_LEN, description="None if no agent has this address")
    recipient: str = Field(max_length=ADDRESS_LEN)
    token: str = Field(max_length=ADDRESS_LEN)
    amount: int = Field(sa_type=U256, description="token base units")
    # Not unique on its own: one transaction (a DAO's batched approvals) may pay several tasks.
    tx_hash: str = Field(max_length=TX_HASH_LEN, index=True)
    block_number: int = Field(sa_type=BigInteger)
    at: datetime = Field(sa_type=UtcDateTime)


class Reward(RewardBase, table=True):
    __tablename__ = "reward"
    __table_args__ = (UniqueConstraint("board", "task_key"),)

    id: int | None = Field(default=None, primary_key=True)


class RewardPublic(RewardBase):
    id: int


class RevenueClaimBase(SQLModel):
    pool: str = Field(max_length=ADDRESS_LEN, index=True, description="the ProjectPool that paid")
    token: str = Field(max_length=ADDRESS_LEN)
    holder: str = Field(max_length=ADDRESS_LEN)
    agent: str = Field(max_length=NAME_LEN, index=True)
    amount: int = Field(sa_type=U256, description="token base units")
    tx_hash: str = Field(max_length=TX_HASH_LEN)
    block_number: int = Field(sa_type=BigInteger)
    at: datetime = Field(sa_type=UtcDateTime)


class RevenueClaim(RevenueClaimBase, table=True):
    """A pool's ``RevenueClaimed`` event to one of our agents: one row per (transaction, pool, token), since one
    ``claim(token)`` call pays once, so recording the same claim again (after a crash) changes nothing."""

    __tablename__ = "revenue_claim"
    __table_args__ = (UniqueConstraint("tx_hash", "pool", "token"),)

    id: int | None = Field(default=None, primary_key=True)


class RevenueClaimPublic(RevenueClaimBase):
    id: int


class PoolHoldingBase(SQLModel):
    agent: str = Field(primary_key=True, max_length=NAME_LEN)
    pool: str = Field(primary_key=True, max_length=ADDRESS_LEN, description="the ProjectPool")
    token: str = Field(primary_key=True, max_length=ADDRESS_LEN, description="one of its revenue tokens")
    holder: str = Field(max_length=ADDRESS_LEN, description="the agent's wallet")
    shares: int = Field(sa_type=U256, description="shares held (base units of the pool's share token)")
    claimable: int = Field(sa_type=U256, description="revenue of this token it may still claim (base units)")
    at: datetime = Field(sa_type=UtcDateTime, description="when the chain was read")


class PoolHolding(PoolHoldingBase, table=True):
    """What an agent held in a pool when the revenue collector last read the chain: its shares and what it may
    still claim per revenue token. A snapshot, replaced on each read, so the web app (which reads only the
    database) can show it; the chain stays the truth."""

    __tablename__ = "pool_holding"


class PoolHoldingPublic(PoolHoldingBase):
    pass


class CostBase(SQLModel):
    task_id: int | None = Field(default=None, foreign_key="task.id", index=True)
    run_id: int | None = Field(default=None, foreign_key="run.id")
    agent: str = Field(max_length=NAME_LEN, index=True)
    kind: CostKind = Field(sa_type=StrEnumText(CostKind))
    amount: int = Field(sa_type=U256, description="wei for gas, micro-USD for llm")
    tx_hash: str | None = Field(default=None, max_length=TX_HASH_LEN, unique=True, description="gas: the tx paid")
    at: datetime = Field(sa_type=UtcDateTime)


class Cost(CostBase, table=True):
    __tablename__ = "cost"

    id: int | None = Field(default=None, primary_key=True)


class CostPublic(CostBase):
    id: int

"""The task-board port, split by what a board can do. Standard library and the domain only.

Every board is a ``TaskSource`` (tasks from a cursor, their specs, a task's state now), delivers work
(``Delivery``) and pays for it (``Settlement``); how a task becomes ours differs: a TaskBoard is claimed first come,
first served (``Claimable``), a job market assigns a provider (nothing to claim). A board says what it can do in
``capabilities`` and the service acts on that, never on the board's kind.

Keys and cursors are text: a board decides what its ids and resume points look like (a TaskBoard's task id and block
number, in decimal). A board whose cursors are block numbers says so (``capabilities.block_cursors``), and the
service's reorg recovery compares the hash of a cursor's block with the chain's (``app.service``). Adapters raise
the typed ``BoardError``s (``TaskTaken``, ``ClaimGone``, ``TaskNotFound``) for the refusals the service acts on; a
contract's revert reason never travels above the adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from orchestrator.domain.board import BoardTask, Payout, Rejection
from orchestrator.domain.specs import TaskSpec
from orchestrator.ports.chain import Receipt, Signer

#: What an agent does on a board that costs gas and must never happen twice.
BoardAction = Literal["claim", "submit"]


@dataclass(frozen=True, slots=True)
class BoardCall:
    """A contract function an agent's wallet calls on a board (``submit(uint256,string)``): the wallet policy's
    allow-list is built from these, per board, so a wallet can call nothing else there."""

    contract: str
    signature: str


@dataclass(frozen=True, slots=True)
class BoardCapabilities:
    """What a board can do, declared by its adapter. (How a task becomes ours is the board's type: a ``Claimable``
    board's tasks are claimed; any other board's are assigned to us by the client.)"""

    #: A rejected delivery opens the task again on the board (TaskBoard): the agent may take it again and revise
    #: with the DAO's reason. False: a rejection ends the task (a job market refunds the client).
    reopens_on_rejection: bool
    #: The cursors are block numbers in decimal (a board on an EVM chain read by block): the service then checks
    #: the block a cursor stopped at for a reorg and rewinds it. False: cursors are opaque to the service.
    block_cursors: bool = True


@runtime_checkable
class TaskSource(Protocol):
    """Where tasks come from."""

    name: str

    def first_cursor(self, start_block: int) -> str:
        """The cursor of a board never read before (a board of block cursors starts at ``start_block``)."""
        ...

    def poll(self, cursor: str) -> tuple[list[BoardTask], str]:
        """Tasks posted since ``cursor``, specs not read yet, and the next cursor."""
        ...

    def read_spec(self, task: BoardTask) -> TaskSpec:
        """Fetch and validate the spec of a task ``poll`` returned. ``SpecError`` (with the reason) quarantines
        the task; a retryable error means the spec may be readable later. Reading is a step of its own so that
        the caller can mark the task first: a spec that crashes the reader must not be read again."""
        ...

    def status(self, key: str) -> BoardTask:
        """The task as the board sees it now; ``TaskNotFound`` if the board has no such task."""
        ...


@runtime_checkable
class Claimable(Protocol):
    """A board whose tasks are claimed, first come first served, and may be given back."""

    def claim(self, key: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        """Claim the task for ``wallet``'s address (pointless after ``expires_at``, chain time). ``TaskTaken`` if
        someone else has it or it is not open."""
        ...

    def release(self, key: str, *, wallet: Signer) -> Receipt:
        """Give the claim back (``ClaimGone`` if it is not ours any more)."""
        ...


@runtime_checkable
class BidSigner(Protocol):
    """A wallet that signs bids on open jobs (an agent's, through its policy: only for a configured board)."""

    @property
    def address(self) -> str: ...

    def sign_bid(self, board: str, job_id: int, amount: int) -> bytes:
        """The 65-byte EIP-191 signature over ``keccak256(abi.encode(chainId, board, jobId, amount))``."""
        ...


@runtime_checkable
class Biddable(Protocol):
    """A board whose open tasks take bids (an ERC-8183 market's open jobs): the client hires one bidder."""

    def bid(self, key: str, amount: int, *, wallet: BidSigner, endpoint: str) -> None:
        """Send ``wallet``'s signed bid of ``amount`` for the task to ``endpoint``. ``TaskTaken`` if the client
        refuses it because the task is no longer open; a retryable error if the endpoint may answer later."""
        ...


@runtime_checkable
class Delivery(Protocol):
    """A board that takes delivered work."""

    def deliver(self, key: str, artifact_cid: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        """Deliver ``artifact_cid`` (pointless after ``expires_at``, chain time). ``ClaimGone`` if the task is not
        held by ``wallet`` any more (a claim expired, another holder)."""
        ...


@runtime_checkable
class Settlement(Protocol):
    """What a board paid, what it rejected, and which of our transactions did what."""

    def payouts(self, cursor: str) -> tuple[list[Payout], str]:
        """Rewards paid since ``cursor``, and the next cursor."""
        ...

    def rejection(self, key: str, *, since: str) -> Rejection | None:
        """The latest rejection of the task's delivery since cursor ``since`` (None: none)."""
        ...

    def action_tx(self, key: str, action: BoardAction, *, actor: str, since: str) -> str | None:
        """The transaction in which ``actor`` last made ``action`` on the task since cursor ``since`` (None:
        none). Lets a restarted service attribute the gas of a claim or delivery it finds confirmed."""
        ...


@runtime_checkable
class TaskBoard(TaskSource, Delivery, Settlement, Protocol):
    """A DAO task board: a source of tasks that takes deliveries and settles them. Adapters: ``OnchainTaskBoard``
    (our TaskBoard contract, ``kind: taskboard``; also ``Claimable``)."""

    @property
    def capabilities(self) -> BoardCapabilities: ...

    def calls(self) -> Sequence[BoardCall]:
        """Every contract function an agent's wallet calls on this board (for the wallet policy's allow-list)."""
        ...

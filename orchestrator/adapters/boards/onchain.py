"""``OnchainTaskBoard``: the ``TaskBoard`` port over our TaskBoard contract.

New tasks come from ``TaskPosted`` logs read from a block cursor in bounded ranges (the Chain adapter splits
ranges the node refuses), so one poll costs O(new tasks), not O(backlog). Each task's spec is fetched from the
artifact store by CID and validated by ``read_spec``, a step of its own so that the service can mark a task before
its spec is read (a spec that crashed the reader is quarantined on restart, not read again); a bad spec raises
``SpecError`` with the reason to quarantine the task.

Events read from a cursor (new tasks, payouts) are taken only once ``confirmations`` blocks are mined on top of
theirs (``chain.confirmations``): a shallow reorg can drop or reorder the latest blocks, and a task discovered or
a payout booked from a block that then vanished would be acted on for nothing. The cursor stops at that depth, so
the events of the newer blocks are read by a later poll.

Keys are task ids and cursors block numbers, both in decimal. The contract's revert reasons are read here and
nowhere else: a refused claim is ``TaskTaken``, a refused submission or release ``ClaimGone``.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from typing import Any

from eth_utils.address import to_checksum_address

from contracts.compile import load_artifact
from orchestrator.adapters.boards.abi import ContractABI
from orchestrator.adapters.boards.registry import BoardSettings
from orchestrator.domain.board import BoardPhase, BoardTask, Payout, Rejection
from orchestrator.domain.errors import (
    ArtifactError,
    ArtifactNotFound,
    ArtifactTooLarge,
    BoardError,
    ClaimGone,
    SpecError,
    TaskNotFound,
    TaskTaken,
    TransactionReverted,
)
from orchestrator.domain.specs import TaskSpec, parse_spec
from orchestrator.domain.untrusted import printable
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.board import BoardAction, BoardCall, BoardCapabilities
from orchestrator.ports.chain import Chain, Receipt, Signer

#: What a CID's text can look like (multibase base32/base36/base58, CIDv0 and v1): anything else is refused before
#: it reaches the store, a log line or an error message.
_CID_TEXT = re.compile(r"[A-Za-z0-9]{1,128}")


class BoardStatus(enum.IntEnum):
    """The TaskBoard contract's status codes."""

    OPEN = 1
    CLAIMED = 2
    SUBMITTED = 3
    APPROVED = 4
    CANCELLED = 5


#: The phase every kind of board maps onto, for each of the contract's status codes.
PHASES: dict[BoardStatus, BoardPhase] = {
    BoardStatus.OPEN: BoardPhase.OPEN,
    BoardStatus.CLAIMED: BoardPhase.HELD,
    BoardStatus.SUBMITTED: BoardPhase.DELIVERED,
    BoardStatus.APPROVED: BoardPhase.SETTLED,
    BoardStatus.CANCELLED: BoardPhase.CLOSED,
}
#: What an agent's wallet calls on the contract: the default allow-list of the wallet policy for this board.
WORK_FUNCTIONS: tuple[str, ...] = ("claim(uint256)", "submit(uint256,string)", "release(uint256)")
#: Revert reasons of ``claim`` meaning someone else has the task (a lost race).
_TAKEN = ("task not open",)
#: Revert reasons of ``submit`` and ``release`` meaning the claim is not ours any more.
_GONE = ("claim expired", "not claimant", "task not claimed")
CAPABILITIES = BoardCapabilities(reopens_on_rejection=True)


def task_key(key: str) -> int:
    """A TaskBoard task id from its key (decimal text); ``TaskNotFound`` for anything else."""
    if not key.isdigit() or len(key) > 78:  # 78 digits: the largest uint256
        raise TaskNotFound(f"{key[:80]!r} is not a TaskBoard task id (a positive integer)")
    return int(key)


def _typed(exc: TransactionReverted, reasons: Sequence[str], error: type[BoardError], what: str) -> Exception:
    """The board error a revert means, when its reason is one of ``reasons``; else the revert itself."""
    if any(r in exc.reason for r in reasons):
        return error(f"{what}: {exc.reason}")
    return exc


def fetch_spec(store: ArtifactStore, cid: str, *, max_bytes: int) -> TaskSpec:
    """Fetch a spec by CID (at most ``max_bytes``) and validate it; every board whose specs are CIDs reads them
    so. Raises ``SpecError`` with the reason to quarantine the task; a retryable ``ArtifactError`` when the store
    may answer later."""
    shown = printable(cid[:100])
    if not _CID_TEXT.fullmatch(cid):
        raise SpecError(f"invalid CID {shown!r} for the spec: a CID is at most 128 letters and digits")
    try:
        raw = store.get_bytes(cid, max_bytes=max_bytes)
    except ArtifactTooLarge:
        raise SpecError(f"spec {cid} is larger than the {max_bytes:,}-byte limit (boards[].max_spec_bytes)") from None
    except ArtifactNotFound as exc:  # no store and no gateway holds it (each one's answer is in the message)
        raise SpecError(f"spec {cid} could not be fetched: {exc.message}") from None
    except ArtifactError as exc:
        if exc.retryable:
            raise
        raise SpecError(f"spec {cid} could not be fetched: {exc.message}") from None
    return parse_spec(raw, max_bytes=max_bytes)


@functools.cache
def board_abi() -> ContractABI:
    """The TaskBoard ABI (from ``contracts/build``), parsed once per process."""
    return ContractABI(load_artifact("TaskBoard")["abi"])


class OnchainTaskBoard:
    """A TaskBoard contract at ``address``, reached through ``chain``; specs come from ``store``."""

    def __init__(
        self,
        *,
        chain: Chain,
        address: str,
        store: ArtifactStore,
        name: str = "main",
        max_spec_bytes: int = 262_144,
        confirmations: int = 0,
    ) -> None:
        if confirmations < 0:
            raise BoardError(f"confirmations must be >= 0, got {confirmations}", hint="set chain.confirmations >= 0")
        self.chain = chain
        self.address = address
        self.store = store
        self.name = name
        self.max_spec_bytes = max_spec_bytes
        self.confirmations = confirmations
        self.abi = board_abi()

    @property
    def capabilities(self) -> BoardCapabilities:
        return CAPABILITIES

    def first_cursor(self, start_block: int) -> str:
        return str(start_block)

    def calls(self) -> Sequence[BoardCall]:
        return [BoardCall(contract=self.address, signature=s) for s in WORK_FUNCTIONS]

    def __repr__(self) -> str:
        return f"OnchainTaskBoard(name={self.name!r}, address={self.address})"

    # ------------------------------------------------------------------------------------------------ reads

    def confirmed_head(self) -> int:
        """The newest block with ``confirmations`` blocks on top of it (-1 while the chain is shorter)."""
        return self.chain.block_number() - self.confirmations

    def poll(self, cursor: str) -> tuple[list[BoardTask], str]:
        """Tasks posted in blocks ``[cursor, confirmed head]``, specs not read yet (``read_spec``); the next cursor
        is ``confirmed head + 1`` (``confirmed_head``: ``confirmations`` blocks deep)."""
        start = int(cursor)
        head = self.confirmed_head()
        if start > head:
            return [], cursor
        logs = self.chain.get_logs(
            address=self.address, topics=[self.abi.topic("TaskPosted")], from_block=start, to_block=head
        )
        tasks = []
        for log in logs:
            try:
                event = self.abi.decode_log(log)
            except Exception as exc:  # a poster's string that is not UTF-8 (a Vyper String holds any bytes)
                tasks.append(self._undecodable_post(log.topics, exc))
                continue
            if event is None:  # pragma: no cover - we filter on topic0
                continue
            tasks.append(self._task_from_post(event.args))
        return tasks, str(head + 1)

    def _undecodable_post(self, topics: tuple[bytes, ...], exc: Exception) -> BoardTask:
        """A ``TaskPosted`` event whose data does not decode: its task (the id is an indexed topic) is quarantined
        instead of failing every poll of the board."""
        zero = "0x" + "0" * 40
        return BoardTask(
            board=self.name,
            key=str(int.from_bytes(topics[1], "big")),
            poster=zero,
            token=zero,
            reward=0,
            deadline=0,
            reviewer=zero,
            spec_cid="",
            phase=BoardPhase.OPEN,
            status_text=BoardStatus.OPEN.name,
            quarantine_reason=f"the board's TaskPosted event could not be decoded ({type(exc).__name__})",
        )

    def _task_from_post(self, args: dict[str, Any]) -> BoardTask:
        return BoardTask(
            board=self.name,
            key=str(int(args["task_id"])),
            poster=args["poster"],
            token=args["token"],
            reward=int(args["reward"]),
            deadline=int(args["deadline"]),
            reviewer=args["reviewer"],
            spec_cid=args["spec_cid"],
            phase=BoardPhase.OPEN,
            status_text=BoardStatus.OPEN.name,
        )

    def read_spec(self, task: BoardTask) -> TaskSpec:
        """Fetch the task's spec by CID (at most ``max_spec_bytes``) and validate it (``fetch_spec``)."""
        return fetch_spec(self.store, task.spec_cid, max_bytes=self.max_spec_bytes)

    def status(self, key: str) -> BoardTask:
        """The task as the contract holds it now (spec not fetched)."""
        task_id = task_key(key)
        try:
            out = self.chain.call(self.address, self.abi.encode_call("task", task_id))
        except TransactionReverted as exc:
            if "unknown task" in exc.reason:
                raise TaskNotFound(
                    f"board {self.name!r} has no task {task_id}", hint="list tasks with `deworker dao tasks`"
                ) from None
            raise
        (t,) = self.abi.decode_output("task", out)
        poster, token, reward, deadline, reviewer, spec_cid, code, claimant, expires, artifact_cid = t
        status = BoardStatus(code)
        return BoardTask(
            board=self.name,
            key=str(task_id),
            poster=to_checksum_address(poster),
            token=to_checksum_address(token),
            reward=int(reward),
            deadline=int(deadline),
            reviewer=to_checksum_address(reviewer),
            spec_cid=spec_cid,
            phase=PHASES[status],
            status_text=status.name,
            claimant=None if int(claimant, 16) == 0 else to_checksum_address(claimant),
            claim_expires=int(expires),
            artifact_cid=artifact_cid or None,
        )

    def task_count(self) -> int:
        out = self.chain.call(self.address, self.abi.encode_call("task_count"))
        return int(self.abi.decode_output("task_count", out)[0])

    def payouts(self, cursor: str) -> tuple[list[Payout], str]:
        """``TaskApproved`` events (the board paying a claimant) in blocks ``[cursor, confirmed head]``."""
        start = int(cursor)
        head = self.confirmed_head()
        if start > head:
            return [], cursor
        logs = self.chain.get_logs(
            address=self.address, topics=[self.abi.topic("TaskApproved")], from_block=start, to_block=head
        )
        payouts = []
        for log in logs:
            event = self.abi.decode_log(log)
            if event is None:  # pragma: no cover
                continue
            payouts.append(
                Payout(
                    board=self.name,
                    key=str(int(event.args["task_id"])),
                    recipient=event.args["claimant"],
                    token=event.args["token"],
                    amount=int(event.args["reward"]),
                    tx_hash=log.tx_hash,
                    block_number=log.block_number,
                )
            )
        return payouts, str(head + 1)

    # ----------------------------------------------------------------------------------------------- writes

    def claim(self, key: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        data = self.abi.encode_call("claim", task_key(key))
        try:
            return wallet.send(self.address, data, expires_at=expires_at)
        except TransactionReverted as exc:
            raise _typed(exc, _TAKEN, TaskTaken, f"task {key} is taken") from exc

    def release(self, key: str, *, wallet: Signer) -> Receipt:
        try:
            return wallet.send(self.address, self.abi.encode_call("release", task_key(key)))
        except TransactionReverted as exc:
            raise _typed(exc, _GONE, ClaimGone, f"task {key}: no claim of ours to release") from exc

    def deliver(self, key: str, artifact_cid: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        data = self.abi.encode_call("submit", task_key(key), artifact_cid)
        try:
            return wallet.send(self.address, data, expires_at=expires_at)
        except TransactionReverted as exc:
            raise _typed(exc, _GONE, ClaimGone, f"task {key}: our claim is gone") from exc

    # ------------------------------------------------------------------------------------------ look-ups

    def rejection(self, key: str, *, since: str) -> Rejection | None:
        """The latest ``TaskRejected`` event of the task since block ``since``: the reviewer and the reason."""
        topics: list[bytes | None] = [self.abi.topic("TaskRejected"), task_key(key).to_bytes(32, "big")]
        head = self.chain.block_number()
        logs = self.chain.get_logs(address=self.address, topics=topics, from_block=int(since), to_block=head)
        for log in reversed(logs):
            event = self.abi.decode_log(log)
            if event is not None:
                return Rejection(
                    board=self.name,
                    key=key,
                    reviewer=to_checksum_address(event.args["reviewer"]),
                    reason=str(event.args["reason"]),
                    tx_hash=log.tx_hash,
                )
        return None

    def action_tx(self, key: str, action: BoardAction, *, actor: str, since: str) -> str | None:
        """The hash of the latest ``action`` ("claim" or "submit") ``actor`` made on the task since block
        ``since``, from the board's events; ``None`` if there is none."""
        topics: list[bytes | None] = [
            self.abi.topic(_ACTION_EVENTS[action]),
            task_key(key).to_bytes(32, "big"),
            bytes.fromhex(actor.removeprefix("0x").rjust(64, "0")),
        ]
        head = self.chain.block_number()
        logs = self.chain.get_logs(address=self.address, topics=topics, from_block=int(since), to_block=head)
        return logs[-1].tx_hash if logs else None


_ACTION_EVENTS: dict[BoardAction, str] = {"claim": "TaskClaimed", "submit": "TaskSubmitted"}


def from_settings(settings: BoardSettings, chain: Chain, artifacts: ArtifactStore) -> OnchainTaskBoard:
    """The registry's factory for ``kind: taskboard``."""
    return OnchainTaskBoard(
        chain=chain,
        address=settings.address,
        store=artifacts,
        name=settings.name,
        max_spec_bytes=settings.max_spec_bytes,
        confirmations=settings.confirmations,
    )

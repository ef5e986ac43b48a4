"""Project pools and the DAO's vote: deploy a ``ProjectPool`` and an OpenZeppelin Governor with its
TimelockController and voting token, fund a pool by proposal (propose, vote, queue, execute), read proposals.

The contracts are ``contracts/ProjectPool.vy`` and ``contracts/governor/*.sol`` (the committed artifacts in
``contracts/build``). Every write goes through a ``Signer``; every read is an ``eth_call`` on the ``Chain`` port.
A proposal's actions are read back from its ``ProposalCreated`` event, so ``queue`` and ``execute`` need only
its id.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from contracts.compile import load_artifact
from orchestrator.adapters.boards.abi import ContractABI
from orchestrator.domain.errors import DeworkerError
from orchestrator.ports.chain import Chain, Receipt, Signer

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class ProposalState(IntEnum):
    """OpenZeppelin ``IGovernor.ProposalState``, in its order."""

    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7


#: ``castVote`` support values (GovernorCountingSimple)
SUPPORT = {"against": 0, "for": 1, "abstain": 2}


@functools.cache
def abi(name: str) -> ContractABI:
    """The ABI of a committed contract artifact."""
    return ContractABI(load_artifact(name)["abi"])


def _deploy(sender: Signer, name: str, *args: Any) -> str:
    artifact = load_artifact(name)
    code = bytes.fromhex(artifact["bytecode"].removeprefix("0x")) + abi(name).encode_constructor(*args)
    receipt = sender.send(None, code)
    address = _created_address(receipt)
    return address


def _created_address(receipt: Receipt) -> str:
    # the Receipt port carries no contractAddress: the first log of a deployment is emitted by the new contract,
    # and every contract deployed here logs in its constructor (role grants, mints, token registration)
    if not receipt.logs:
        raise DeworkerError(f"deployment {receipt.tx_hash} emitted no log: cannot tell the contract's address")
    return to_checksum_address(receipt.logs[0].address)


def call(chain: Chain, contract: str, name: str, fn: str, *args: Any) -> Any:
    """``fn(*args)`` on ``contract`` (artifact ``name``); a single return value is unwrapped."""
    raw = chain.call(contract, abi(name).encode_call(fn, *args))
    try:
        out = tuple(_checksummed(v) for v in abi(name).decode_output(fn, raw))
    except DecodingError as exc:  # no code there, or not this contract
        raise DeworkerError(
            f"{contract} did not answer {fn}() as a {name} would ({len(raw)} bytes back)",
            hint=f"check that {contract} is a {name} on this chain",
        ) from exc
    return out[0] if len(out) == 1 else out


def _checksummed(value: Any) -> Any:
    """Addresses checksummed, also inside structs and arrays (eth_abi decodes them lower-case)."""
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    if isinstance(value, tuple | list):
        return type(value)(_checksummed(v) for v in value)
    return value


# ---------------------------------------------------------------------------------------------------- the pool


def deploy_pool(
    *,
    sender: Signer,
    name: str,
    symbol: str,
    board: str,
    token: str,
    owner: str,
    reviewer: str,
    guardian: str = ZERO_ADDRESS,
    veto_window: int,
) -> str:
    """Deploy a ``ProjectPool`` posting on ``board`` with a budget in ``token``; returns its address."""
    return _deploy(sender, "ProjectPool", name, symbol, board, token, owner, reviewer, guardian, veto_window)


def fund_pool_actions(chain: Chain, pool: str, amount: int) -> tuple[list[str], list[int], list[bytes]]:
    """The proposal actions that fund ``pool`` with ``amount`` base units of its budget token from the executor
    (the timelock): approve the pool, then ``fund`` (which pulls and counts it)."""
    token = call(chain, pool, "ProjectPool", "budget_token")
    return (
        [token, pool],
        [0, 0],
        [abi("RewardToken").encode_call("approve", pool, amount), abi("ProjectPool").encode_call("fund", amount)],
    )


# ---------------------------------------------------------------------------------------------------- the DAO


@dataclass(frozen=True, slots=True)
class Governance:
    """A deployed DAO: voting token, timelock (executor and treasury) and governor."""

    token: str
    timelock: str
    governor: str


def deploy_governance(
    *,
    sender: Signer,
    name: str = "Deworker DAO",
    token_name: str = "Deworker DAO",  # noqa: S107 (a token name, not a secret)
    token_symbol: str = "DWDAO",  # noqa: S107 (a token symbol)
    supply: int,
    min_delay: int,
    voting_delay: int,
    voting_period: int,
    quorum_percent: int,
    votes_token: str | None = None,
) -> Governance:
    """Deploy the voting token (unless ``votes_token``, e.g. a pool's shares, is given), a TimelockController and
    a DeworkerGovernor; the governor becomes the timelock's only proposer and canceller, anyone may execute, and the
    deployer gives up the timelock's admin role, so from then on only a vote moves the treasury."""
    token = votes_token
    if token is None:
        token = _deploy(sender, "DaoToken", token_name, token_symbol, supply)
        # ERC20Votes counts only delegated balances: the deployer's supply votes until it hands tokens out
        sender.send(token, abi("DaoToken").encode_call("delegate", sender.address))
    timelock = _deploy(sender, "TimelockController", min_delay, [], [ZERO_ADDRESS], sender.address)
    governor = _deploy(
        sender, "DeworkerGovernor", name, token, timelock, voting_delay, voting_period, 0, quorum_percent
    )
    tl = abi("TimelockController")
    for role in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
        sender.send(timelock, tl.encode_call("grantRole", keccak(text=role), governor))
    sender.send(timelock, tl.encode_call("renounceRole", bytes(32), sender.address))  # DEFAULT_ADMIN_ROLE
    return Governance(token=token, timelock=timelock, governor=governor)


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposal as its ``ProposalCreated`` event recorded it, with its current state."""

    id: int
    proposer: str
    targets: list[str]
    values: list[int]
    calldatas: list[bytes]
    description: str
    vote_start: int
    vote_end: int
    state: ProposalState

    @property
    def description_hash(self) -> bytes:
        return keccak(text=self.description)


class Governor:
    """Propose, vote, queue and execute on one DeworkerGovernor."""

    def __init__(self, *, chain: Chain, governor: str, from_block: int = 0) -> None:
        self.chain = chain
        self.address = governor
        self.from_block = from_block

    def state(self, proposal_id: int) -> ProposalState:
        return ProposalState(call(self.chain, self.address, "DeworkerGovernor", "state", proposal_id))

    def propose(
        self, signer: Signer, targets: list[str], values: list[int], calldatas: list[bytes], description: str
    ) -> int:
        """Submit a proposal; returns its id."""
        gov = abi("DeworkerGovernor")
        signer.send(self.address, gov.encode_call("propose", targets, values, calldatas, description))
        return int(
            call(
                self.chain,
                self.address,
                "DeworkerGovernor",
                "hashProposal",
                targets,
                values,
                calldatas,
                keccak(text=description),
            )
        )

    def vote(self, signer: Signer, proposal_id: int, support: str, reason: str = "") -> Receipt:
        """Cast ``support`` ("for", "against", "abstain") with an optional reason."""
        if support not in SUPPORT:
            raise DeworkerError(f"unknown vote {support!r}", hint="vote for, against or abstain")
        gov = abi("DeworkerGovernor")
        if reason:
            data = gov.encode_call("castVoteWithReason", proposal_id, SUPPORT[support], reason)
        else:
            data = gov.encode_call("castVote", proposal_id, SUPPORT[support])
        return signer.send(self.address, data)

    def queue(self, signer: Signer, proposal_id: int) -> Receipt:
        p = self.proposal(proposal_id)
        gov = abi("DeworkerGovernor")
        return signer.send(self.address, gov.encode_call("queue", p.targets, p.values, p.calldatas, p.description_hash))

    def execute(self, signer: Signer, proposal_id: int) -> Receipt:
        p = self.proposal(proposal_id)
        gov = abi("DeworkerGovernor")
        return signer.send(
            self.address, gov.encode_call("execute", p.targets, p.values, p.calldatas, p.description_hash)
        )

    def proposals(self) -> list[Proposal]:
        """Every proposal of this governor, oldest first, with its state now."""
        gov = abi("DeworkerGovernor")
        logs = self.chain.get_logs(
            address=self.address,
            topics=[gov.topic("ProposalCreated")],
            from_block=self.from_block,
            to_block=self.chain.block_number(),
        )
        found = []
        for log in logs:
            event = gov.decode_log(log)
            if event is None:
                continue
            a = event.args
            found.append(
                Proposal(
                    id=int(a["proposalId"]),
                    proposer=to_checksum_address(a["proposer"]),
                    targets=[to_checksum_address(t) for t in a["targets"]],
                    values=[int(v) for v in a["values"]],
                    calldatas=[bytes(c) for c in a["calldatas"]],
                    description=a["description"],
                    vote_start=int(a["voteStart"]),
                    vote_end=int(a["voteEnd"]),
                    state=self.state(int(a["proposalId"])),
                )
            )
        return found

    def proposal(self, proposal_id: int) -> Proposal:
        for p in self.proposals():
            if p.id == proposal_id:
                return p
        raise DeworkerError(
            f"governor {self.address} has no proposal {proposal_id}", hint="list them with: deworker dao proposals"
        )


# ------------------------------------------------------------------------------------------- a pool's operations


@dataclass(frozen=True, slots=True)
class PoolTaskView:
    """One task of a pool: the pool's record and the board's status."""

    task_id: int
    weight: int
    reward: int
    status: str
    contributor: str | None
    veto_ends: int


@dataclass(frozen=True, slots=True)
class RevenueView:
    token: str
    deposited: int
    claimed: int


POOL_STATUS = {1: "posted", 2: "pending (veto window)", 3: "finalized", 4: "cancelled"}


class Pool:
    """A deployed ProjectPool: reads, and the writes of its owner, reviewer, guardian and depositors."""

    def __init__(self, *, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)

    def view(self, fn: str, *args: Any) -> Any:
        return call(self.chain, self.address, "ProjectPool", fn, *args)

    def _send(self, signer: Signer, fn: str, *args: Any) -> Receipt:
        return signer.send(self.address, abi("ProjectPool").encode_call(fn, *args))

    @property
    def token(self) -> str:
        return str(self.view("budget_token"))

    def fund(self, signer: Signer, amount: int) -> Receipt:
        """Approve and ``fund`` ``amount`` base units of the budget token from ``signer``."""
        signer.send(self.token, abi("RewardToken").encode_call("approve", self.address, amount))
        return self._send(signer, "fund", amount)

    def post(self, signer: Signer, *, spec_cid: str, reward: int, deadline: int, weight: int) -> int:
        """Post a task (the pool escrows ``reward`` from its budget on the board); returns the board's task id."""
        receipt = self._send(signer, "post_task", spec_cid, reward, deadline, weight)
        for log in receipt.logs:
            event = abi("ProjectPool").decode_log(log) if log.address.lower() == self.address.lower() else None
            if event is not None and event.name == "PoolTaskPosted":
                return int(event.args["task_id"])
        raise DeworkerError(f"post {receipt.tx_hash} logged no PoolTaskPosted")

    def approve(self, signer: Signer, task_id: int) -> Receipt:
        return self._send(signer, "approve_task", task_id)

    def veto(self, signer: Signer, task_id: int, reason: str) -> Receipt:
        return self._send(signer, "veto", task_id, reason)

    def finalize(self, signer: Signer, task_id: int) -> Receipt:
        return self._send(signer, "finalize", task_id)

    def deposit(self, signer: Signer, token: str, amount: int) -> Receipt:
        """Approve and ``deposit_revenue`` ``amount`` base units of ``token`` from ``signer``."""
        signer.send(token, abi("RewardToken").encode_call("approve", self.address, amount))
        return self._send(signer, "deposit_revenue", token, amount)

    def claim(self, signer: Signer, token: str) -> Receipt:
        return self._send(signer, "claim", token)

    def tasks(self) -> list[PoolTaskView]:
        found = []
        for index in range(int(self.view("task_count"))):
            task_id = int(self.view("task_at", index))
            weight, reward, status, contributor, veto_ends = self.view("task", task_id)
            found.append(
                PoolTaskView(
                    task_id=task_id,
                    weight=int(weight),
                    reward=int(reward),
                    status=POOL_STATUS.get(int(status), str(status)),
                    contributor=None if int(contributor, 16) == 0 else contributor,
                    veto_ends=int(veto_ends),
                )
            )
        return found

    def holders(self) -> list[tuple[str, int]]:
        """(holder, shares), in first-mint order."""
        holders = [str(self.view("holder_at", i)) for i in range(int(self.view("holder_count")))]
        return [(h, int(self.view("balanceOf", h))) for h in holders]

    def revenue_tokens(self) -> list[str]:
        tokens: list[str] = []
        for index in range(8):  # MAX_REVENUE_TOKENS
            try:
                tokens.append(str(self.view("revenue_tokens", index)))
            except DeworkerError:  # past the end of the array: the call reverts
                break
        return tokens

    def revenue(self) -> list[RevenueView]:
        return [
            RevenueView(token=t, deposited=int(self.view("deposited", t)), claimed=int(self.view("total_claimed", t)))
            for t in self.revenue_tokens()
        ]


def pool_task_weights(chain: Chain, posters: Iterable[str]) -> dict[int, int]:
    """Share weight of each board task a project pool posted: board task id -> weight. One read per distinct
    poster; a poster that is not a pool (an account, another contract) adds nothing."""
    weights: dict[int, int] = {}
    for poster in sorted({p.lower() for p in posters if p}):
        try:
            pool_tasks = Pool(chain=chain, address=to_checksum_address(poster)).tasks()
        except (DeworkerError, ValueError):  # no such function there (reverts) or nothing to decode (an account)
            continue
        weights.update({t.task_id: t.weight for t in pool_tasks})
    return weights


def pool_of_task(chain: Chain, board: str, task_id: int) -> Pool:
    """The pool that posted board task ``task_id`` (its poster), refused if the poster is not a pool."""
    record = call(chain, board, "TaskBoard", "task", task_id)
    poster = to_checksum_address(record[0])
    pool = Pool(chain=chain, address=poster)
    try:
        pool.view("task", task_id)
    except DeworkerError as exc:
        raise DeworkerError(
            f"task {task_id} on board {board} was not posted by a project pool (poster {poster})",
            hint="approve, reject or cancel it with `deworker dao approve|reject|cancel`",
        ) from exc
    return pool

"""Project pools and the DAO's vote: deploy a ``ProjectPool`` and an OpenZeppelin Governor with its
TimelockController and voting token, fund a pool by proposal (propose, vote, queue, execute), read proposals.

The contracts are ``contracts/ProjectPool.vy`` and ``contracts/governor/*.sol`` (the committed artifacts in
``contracts/build``). Every write goes through a ``Signer``; every read is an ``eth_call`` on the ``Chain`` port.
A proposal's actions are read back from its ``ProposalCreated`` event, so ``queue`` and ``execute`` need only
its id.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

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
    out = tuple(
        _checksummed(v) for v in abi(name).decode_output(fn, chain.call(contract, abi(name).encode_call(fn, *args)))
    )
    return out[0] if len(out) == 1 else out


def _checksummed(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
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
    token = votes_token or _deploy(sender, "DaoToken", token_name, token_symbol, supply)
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

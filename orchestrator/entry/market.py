"""What a client and an evaluator do on an ERC-8183 job market (``kind: erc8183``): deploy our implementation, post a
job (direct hire or open), hire a provider, complete, reject, refund.

Used by ``deworker dao ...`` for boards of this kind, the demo and the tests. Every write goes through a
``Signer``; a spec is stored by CID in the artifact store (and published) before the job that points at it. Every
write is checked against the job getter first (its state, who may act, the client's balance), so a refused action
is a plain sentence and sends nothing.

A reason (``complete``/``reject``) is bytes32 on chain: text of at most 32 UTF-8 bytes is stored as itself (zero
padded, so the adapter shows it back as text); a longer one as its sha2-256 digest (an attestation commitment, as
the ERC suggests), and the text is the caller's to keep.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from contracts.compile import load_artifact
from orchestrator.adapters.boards.abi import ContractABI
from orchestrator.adapters.boards.erc8183 import Erc8183Board, Profile
from orchestrator.adapters.chain import TxSender
from orchestrator.domain.board import BoardPhase, BoardTask
from orchestrator.domain.errors import BoardError, DeworkerError
from orchestrator.domain.specs import TaskSpec, dump_spec
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.chain import Chain, Receipt, Signer

ZERO = "0x" + "0" * 40


class JobRefused(BoardError):
    """The job is not in the state the action needs, or the account may not act on it: nothing was sent."""


@functools.cache
def _erc20() -> ContractABI:
    return ContractABI(load_artifact("RewardToken")["abi"])


def reason_bytes(reason: str) -> bytes:
    """A reason as bytes32: the text itself when it fits in 32 UTF-8 bytes, else its sha2-256 digest."""
    raw = reason.encode("utf-8")
    return raw.ljust(32, b"\0") if len(raw) <= 32 else hashlib.sha256(raw).digest()


@dataclass(frozen=True, slots=True)
class PostedJob:
    job_id: int
    description: str
    receipts: tuple[Receipt, ...]


class Market:
    """A client/evaluator account (``signer``) on one ERC-8183 market, read through the adapter."""

    def __init__(
        self,
        *,
        chain: Chain,
        signer: Signer,
        store: ArtifactStore,
        address: str,
        name: str = "market",
        profile: Profile | None = None,
    ) -> None:
        self.chain = chain
        self.signer = signer
        self.store = store
        self.board = Erc8183Board(chain=chain, address=address, store=store, name=name, profile=profile)
        self.abi = self.board.abi
        self.address = self.board.address

    @staticmethod
    def deploy(*, chain: Chain, sender: TxSender, token: str, treasury: str, fee_bp: int = 0) -> tuple[str, int]:
        """Deploy our AgenticCommerce for ``token``; returns (address, block)."""
        art = load_artifact("AgenticCommerce")
        args = ContractABI(art["abi"]).encode_constructor(token, treasury, fee_bp)
        address = sender.deploy(bytes.fromhex(art["bytecode"].removeprefix("0x")), args)
        return address, chain.block_number()

    # ------------------------------------------------------------------------------------------------ client

    def description_of(self, spec: TaskSpec | str) -> str:
        """A spec becomes ``ipfs://<CID>`` (stored and published first); text stays the plain-text brief."""
        if isinstance(spec, str):
            return spec
        cid = self.store.put_bytes(dump_spec(spec))
        self.store.publish(cid)
        return f"ipfs://{cid}"

    def post(
        self,
        spec: TaskSpec | str,
        *,
        provider: str | None,
        evaluator: str,
        budget: int,
        expired_at: int,
    ) -> PostedJob:
        """Create a job; with a provider (direct hire) also set its budget, approve the escrow and fund it. An open
        job (``provider=None``) stays Open with its budget set: ``hire`` names the provider and funds it."""
        if budget <= 0:
            raise DeworkerError(f"budget {budget} is not positive", hint="give a budget above zero")
        if expired_at <= self.chain.block().timestamp:
            raise DeworkerError("the expiry is not in the chain's future", hint="give --expires such as 3d")
        if provider is not None:
            self._check_funds(budget)
        description = self.description_of(spec)
        data = self.abi.encode_call("createJob", provider or ZERO, evaluator, expired_at, description, ZERO)
        created = self.signer.send(self.address, data)
        receipts = [created]
        job_id = self._created_id(created)
        receipts.append(self._send("setBudget", job_id, budget, b""))
        if provider is not None:
            receipts += self._fund(job_id, budget)
        return PostedJob(job_id=job_id, description=description, receipts=tuple(receipts))

    def hire(self, job_id: int, provider: str, budget: int) -> list[Receipt]:
        """Name the provider of an open job, set the agreed budget, approve and fund it."""
        job = self._job(job_id, BoardPhase.OPEN, "hire for")
        if job.claimant is not None:
            raise JobRefused(f"job {job_id} already has provider {job.claimant}")
        self._client_of(job, "hire for")
        self._check_funds(budget)
        receipts = [self._send("setProvider", job_id, provider, b"")]
        if job.reward != budget:
            receipts.append(self._send("setBudget", job_id, budget, b""))
        return receipts + self._fund(job_id, budget)

    def _fund(self, job_id: int, budget: int) -> list[Receipt]:
        receipts = []
        token = self.board.token
        out = self.chain.call(token, _erc20().encode_call("allowance", self.me, self.address))
        if int(_erc20().decode_output("allowance", out)[0]) < budget:
            receipts.append(self.signer.send(token, _erc20().encode_call("approve", self.address, budget)))
        receipts.append(self._send("fund", job_id, budget, b""))
        return receipts

    def _check_funds(self, budget: int) -> None:
        out = self.chain.call(self.board.token, _erc20().encode_call("balanceOf", self.me))
        have = int(_erc20().decode_output("balanceOf", out)[0])
        if have < budget:
            raise JobRefused(f"the client {self.me} holds {have} base units of the payment token, less than {budget}")

    # --------------------------------------------------------------------------------------------- evaluator

    def complete(self, job_id: int, reason: str = "") -> Receipt:
        job = self._job(job_id, BoardPhase.DELIVERED, "complete")
        self._evaluator_of(job, "complete")
        return self._send("complete", job_id, reason_bytes(reason), b"")

    def reject(self, job_id: int, reason: str) -> Receipt:
        """The client rejects an Open job; the evaluator a Funded or Submitted one (refunding the client)."""
        job = self.board.status(str(job_id))
        if job.phase is BoardPhase.OPEN:
            self._client_of(job, "reject")
        elif job.phase in (BoardPhase.HELD, BoardPhase.DELIVERED):
            self._evaluator_of(job, "reject")
        else:
            raise JobRefused(f"job {job_id} is {job.status_text}: it cannot be rejected any more")
        return self._send("reject", job_id, reason_bytes(reason), b"")

    def refund(self, job_id: int) -> Receipt:
        """``claimRefund`` of a Funded or Submitted job whose ``expiredAt`` has come (anyone may)."""
        job = self.board.status(str(job_id))
        if job.phase not in (BoardPhase.HELD, BoardPhase.DELIVERED):
            raise JobRefused(f"job {job_id} is {job.status_text}: only a Funded or Submitted job is refunded")
        now = self.chain.block().timestamp
        if now < job.deadline:
            raise JobRefused(f"job {job_id} expires at {job.deadline}, {job.deadline - now}s from the chain's now")
        return self._send("claimRefund", job_id)

    # ----------------------------------------------------------------------------------------------- helpers

    @property
    def me(self) -> str:
        return self.signer.address

    def _send(self, fn: str, *args: object) -> Receipt:
        return self.signer.send(self.address, self.abi.encode_call(fn, *args))

    def _created_id(self, receipt: Receipt) -> int:
        """The job id of the ``JobCreated`` log our ``createJob`` emitted (not a prediction: others create too)."""
        topic = self.abi.topic("JobCreated")
        for log in receipt.logs:
            if log.topics and log.topics[0] == topic and log.address.lower() == self.address.lower():
                event = self.abi.decode_log(log)
                if event is not None:
                    return int(event.args["jobId"])
        raise BoardError(f"createJob in {receipt.tx_hash} emitted no JobCreated: is {self.address} an ERC-8183 market?")

    def _job(self, job_id: int, phase: BoardPhase, what: str) -> BoardTask:
        job = self.board.status(str(job_id))
        if job.phase is not phase:
            raise JobRefused(f"cannot {what} job {job_id}: it is {job.status_text}")
        return job

    def _client_of(self, job: BoardTask, what: str) -> None:
        if job.poster.lower() != self.me.lower():
            raise JobRefused(f"cannot {what} job {job.key}: {self.me} is not its client ({job.poster})")

    def _evaluator_of(self, job: BoardTask, what: str) -> None:
        if job.reviewer.lower() != self.me.lower():
            raise JobRefused(f"cannot {what} job {job.key}: {self.me} is not its evaluator ({job.reviewer})")

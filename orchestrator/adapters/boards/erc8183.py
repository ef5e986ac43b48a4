"""``Erc8183Board``: the board port over an ERC-8183 ("Agentic Commerce") job market, ``kind: erc8183``.

A job market assigns work: the client names a provider (at ``createJob`` or with ``setProvider``) and escrows the
budget (``fund``); nothing is claimed, so this board is not ``Claimable``, and a rejection or an expiry ends the job
(``reopens_on_rejection=False``: the standard has no resubmission).

- **ABI profile.** Implementations disagree on details (which event fields are indexed, the job getter's tuple, the
  token getter's name), so the ABI is a profile (``boards[].abi``): ``erc8183-spec`` (``profiles/erc8183-spec.json``,
  the normative surface with the reference implementation's choices) or the path of another profile or ABI JSON
  file. Only the names matter to this module: the getter's fields are read by name, events are decoded by the
  profile's ABI. A deployment that differs is a new profile, not a change here.
- **State from the getter, events as hints.** Discovery reads ``JobCreated`` logs from a block cursor in bounded
  ranges (one ``eth_getLogs`` per range): a job is created once, so each job is found exactly once. Its state
  always comes from ``getJob``: a direct hire still Open waits for its funding, and the service sees the change
  through ``status``; the profit gate and the time left before ``expiredAt`` (``matching.min_seconds_left``) are
  the matcher's, on the job's budget and expiry.
- **Direct hire and open jobs.** With ``providers`` set (the fleet's addresses), a job whose provider is another
  address is skipped: nobody else's job enters the database. A job without a provider (open) is listed: if its spec
  names a ``bid_endpoint``, an agent may bid (``Biddable.bid``: its wallet's EIP-191 signature over
  ``keccak256(abi.encode(chainId, market, jobId, amount))``, posted there); a bid the client hires makes the job
  ours, another hired bidder makes it lost.
- **Specs.** The job's ``description`` is the spec: ``ipfs://<CID>`` of a Deworker spec (fetched and verified like
  any spec), inline spec JSON (it starts with ``{``), or plain text from any other client, which becomes a text task
  with that brief. A malformed one raises ``SpecError``: the task is quarantined with the reason.
- **Deliverable rule.** ``submit(jobId, deliverable, optParams)`` with ``deliverable`` = the 32-byte sha2-256
  digest inside the artifact's root CID multihash, and ``optParams`` = the UTF-8 JSON ``{"cid":"<root CID>"}``. The
  CID is rebuilt from the digest alone as CIDv1, codec dag-pb (0x70), multihash sha2-256 (0x12, 32 bytes), base32:
  Deworker artifacts are directories, whose roots are dag-pb (``deliverable_cid``).
- **Settlement.** ``PaymentReleased`` gives the amount actually released to the provider (after any platform fee);
  ``JobRejected``'s ``reason`` (bytes32) is shown as text when it is printable UTF-8, else as hex.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from orchestrator.adapters.artifacts.unixfs import DAG_PB, Cid
from orchestrator.adapters.boards.abi import ContractABI
from orchestrator.adapters.boards.onchain import fetch_spec
from orchestrator.adapters.boards.registry import BoardSettings
from orchestrator.domain.board import BoardPhase, BoardTask, Payout, Rejection
from orchestrator.domain.errors import (
    ArtifactError,
    BoardError,
    ClaimGone,
    ConfigError,
    SpecError,
    TaskNotFound,
    TaskTaken,
    TransactionReverted,
)
from orchestrator.domain.specs import Deliverable, DeliverableKind, TaskSpec, parse_spec
from orchestrator.domain.untrusted import printable
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.board import BidSigner, BoardAction, BoardCall, BoardCapabilities
from orchestrator.ports.chain import Chain, LogEntry, Receipt, Signer

#: The built-in profile: the normative surface with the reference implementation's choices.
SPEC_PROFILE = "erc8183-spec"
#: The reference implementation's status codes (the ERC's ``JobStatus`` enum), and the phase each maps onto.
STATUSES: tuple[str, ...] = ("Open", "Funded", "Submitted", "Completed", "Rejected", "Expired")
PHASES: dict[str, BoardPhase] = {
    "Open": BoardPhase.OPEN,
    "Funded": BoardPhase.HELD,  # assigned and funded: the provider may deliver
    "Submitted": BoardPhase.DELIVERED,
    "Completed": BoardPhase.SETTLED,
    "Rejected": BoardPhase.CLOSED,
    "Expired": BoardPhase.CLOSED,
}
#: The job getter's fields this adapter reads, by name.
JOB_FIELDS: tuple[str, ...] = ("client", "provider", "evaluator", "description", "budget", "expiredAt", "status")
#: What an agent's wallet calls on the market: submit only (funding and judging are the client's and evaluator's).
WORK_FUNCTIONS: tuple[str, ...] = ("submit(uint256,bytes32,bytes)",)
CAPABILITIES = BoardCapabilities(reopens_on_rejection=False, block_cursors=True)
#: The skills of a text task made from a plain-text description (any client's brief): ``boards[].text_skills``.
TEXT_SKILLS: tuple[str, ...] = ("writing",)
_ZERO = "0x" + "0" * 40


@dataclass(frozen=True, slots=True)
class Profile:
    """An ERC-8183 ABI profile: the ABI, and the name of the getter of the payment token (None: the token comes
    from config, ``boards[].token``)."""

    name: str
    abi: ContractABI
    token_getter: str | None


def load_profile(ref: str | None) -> Profile:
    """The profile ``ref`` names: ``erc8183-spec`` (the default), or a JSON file holding an ABI list, a build
    artifact (``{"abi": [...]}``) or a profile (``{"abi": [...], "token_getter": "..."}``). ``ConfigError`` naming
    ``boards[].abi`` for a file that cannot be read or lacks what the adapter needs."""
    ref = ref or SPEC_PROFILE
    try:
        if ref == SPEC_PROFILE:
            text = (resources.files(__package__) / "profiles" / f"{SPEC_PROFILE}.json").read_text("utf-8")
        else:
            text = Path(ref).expanduser().read_text("utf-8")
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"ERC-8183 ABI profile {ref!r} could not be read: {exc}",
            key="boards[].abi",
            hint=f"use {SPEC_PROFILE!r} or the path of an ABI JSON file",
        ) from None
    entries = doc if isinstance(doc, list) else doc.get("abi") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"ERC-8183 ABI profile {ref!r} holds no ABI list", key="boards[].abi")
    abi = ContractABI(entries)
    names = {e.get("name") for e in entries if e.get("type") == "function"}
    events = {e.get("name") for e in entries if e.get("type") == "event"}
    missing = sorted(
        ({"getJob", "submit"} - names) | ({"JobCreated", "JobSubmitted", "JobRejected", "PaymentReleased"} - events)
    )
    if not missing:
        fields = {c["name"] for c in abi.function("getJob")["outputs"][0].get("components", [])}
        missing = [f"getJob().{f}" for f in JOB_FIELDS if f not in fields]
    if missing:
        raise ConfigError(
            f"ERC-8183 ABI profile {ref!r} lacks {', '.join(missing)}",
            key="boards[].abi",
            hint="a profile needs getJob (a struct with named fields), submit and the ERC's events",
        )
    getter = doc.get("token_getter") if isinstance(doc, dict) else None
    if getter is None:
        getter = next((g for g in ("paymentToken", "token") if g in names), None)
    return Profile(name=ref, abi=abi, token_getter=getter)


@functools.cache
def spec_profile() -> Profile:
    """The built-in ``erc8183-spec`` profile, parsed once per process."""
    return load_profile(SPEC_PROFILE)


def deliverable_of(cid: str) -> bytes:
    """The ``deliverable`` of an artifact: the sha2-256 digest in its root CID's multihash (``ArtifactError`` for a
    CID that is not sha2-256)."""
    return Cid.parse(cid).digest


def deliverable_cid(deliverable: bytes) -> str:
    """The root CID a ``deliverable`` stands for under the rule: CIDv1, dag-pb, sha2-256, base32."""
    return str(Cid(DAG_PB, bytes(deliverable)))


def bid_digest(chain_id: int, board: str, job_id: int, amount: int) -> bytes:
    """What a bid signs: ``keccak256(abi.encode(chainId, boardAddress, jobId, amount))`` (EIP-191 signed over it)."""
    return bytes(keccak(encode(["uint256", "address", "uint256", "uint256"], [chain_id, board, job_id, amount])))


def bid_signer(chain_id: int, board: str, job_id: int, amount: int, signature: bytes) -> str:
    """The address that signed the bid (EIP-191 ``personal_sign`` over ``bid_digest``); ``BoardError`` for a
    signature that does not recover."""
    message = encode_defunct(primitive=bid_digest(chain_id, board, job_id, amount))
    try:
        return str(Account.recover_message(message, signature=signature))
    except Exception as exc:  # eth_account raises ValueError, BadSignature and friends for malformed signatures
        raise BoardError(f"the bid's signature does not recover a signer ({type(exc).__name__})") from None


def sign_bid(key: bytes, chain_id: int, board: str, job_id: int, amount: int) -> bytes:
    """A bid signature by ``key`` (65 bytes, EIP-191): for DAO tools and tests signing with a key they hold."""
    message = encode_defunct(primitive=bid_digest(chain_id, board, job_id, amount))
    return bytes(Account.sign_message(message, private_key=key).signature)


def reason_text(reason: bytes) -> str:
    """A bytes32 reason as people read it: printable UTF-8 text (zero padding dropped), else ``0x`` hex."""
    raw = bytes(reason).rstrip(b"\0")
    if not raw:
        return ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + bytes(reason).hex()
    return text if printable(text) == text else "0x" + bytes(reason).hex()


def job_key(key: str) -> int:
    """A job id from its key (decimal text); ``TaskNotFound`` for anything else."""
    if not key.isdigit() or len(key) > 78 or int(key) == 0:
        raise TaskNotFound(f"{key[:80]!r} is not an ERC-8183 job id (a positive integer)")
    return int(key)


def text_spec(brief: str, *, skills: Sequence[str]) -> TaskSpec:
    """The text task a plain-text job description becomes (``SpecError`` for one that is no brief)."""
    text = brief.strip()
    if not text:
        raise SpecError("the job's description is empty: there is no brief to work from")
    first = printable(text.splitlines()[0])[:200].strip() or "ERC-8183 job"
    try:
        return TaskSpec(
            title=first,
            description=text,
            deliverable=Deliverable(kind=DeliverableKind.TEXT),
            skills=list(skills),
            acceptance=["the evaluator accepts the work as answering the brief"],
        )
    except ValueError as exc:  # control characters, a brief over the spec's 20,000 characters
        raise SpecError(f"the job's plain-text description is not a usable brief: {str(exc)[:300]}") from None


class Erc8183Board:
    """An ERC-8183 job market at ``address`` (read with ``profile``), reached through ``chain``."""

    def __init__(
        self,
        *,
        chain: Chain,
        address: str,
        store: ArtifactStore,
        name: str = "market",
        profile: Profile | None = None,
        providers: Collection[str] | Callable[[], Collection[str]] | None = None,
        token: str | None = None,
        start_block: int = 0,
        max_spec_bytes: int = 262_144,
        confirmations: int = 0,
        text_skills: Sequence[str] = TEXT_SKILLS,
        bid_hosts: Collection[str] = (),
    ) -> None:
        if confirmations < 0:
            raise BoardError(f"confirmations must be >= 0, got {confirmations}", hint="set chain.confirmations >= 0")
        self.chain = chain
        self.address = to_checksum_address(address)
        self.store = store
        self.name = name
        self.profile = profile or spec_profile()
        self.abi = self.profile.abi
        self._providers = providers
        self._token = None if token is None else to_checksum_address(token)
        self.start_block = start_block
        self.max_spec_bytes = max_spec_bytes
        self.confirmations = confirmations
        self.text_skills = tuple(text_skills)
        self.bid_hosts = frozenset(host.lower() for host in bid_hosts)
        #: descriptions read by ``poll``, so that ``read_spec`` does not read the job again (popped when read)
        self._descriptions: dict[str, str] = {}
        #: job id -> the CID its submission stands for (found once: a job is submitted at most once)
        self._submitted: dict[int, str] = {}

    @property
    def capabilities(self) -> BoardCapabilities:
        return CAPABILITIES

    def first_cursor(self, start_block: int) -> str:
        return str(start_block)

    def calls(self) -> Sequence[BoardCall]:
        return [BoardCall(contract=self.address, signature=s) for s in WORK_FUNCTIONS]

    def __repr__(self) -> str:
        return f"Erc8183Board(name={self.name!r}, address={self.address}, profile={self.profile.name!r})"

    # ------------------------------------------------------------------------------------------------ reads

    @property
    def token(self) -> str:
        """The payment token: from config, else the profile's token getter (read once)."""
        if self._token is None:
            if self.profile.token_getter is None:
                raise ConfigError(
                    f"board {self.name!r}: its ABI profile has no token getter",
                    key="boards[].token",
                    hint="set the market's payment token address",
                )
            out = self.chain.call(self.address, self.abi.encode_call(self.profile.token_getter))
            self._token = to_checksum_address(self.abi.decode_output(self.profile.token_getter, out)[0])
        return self._token

    def providers(self) -> set[str] | None:
        """The addresses (lower case) whose jobs are listed; None: every job."""
        found = self._providers() if callable(self._providers) else self._providers
        return None if found is None else {p.lower() for p in found}

    def confirmed_head(self) -> int:
        return self.chain.block_number() - self.confirmations

    def poll(self, cursor: str) -> tuple[list[BoardTask], str]:
        """Jobs created in blocks ``[cursor, confirmed head]`` for one of ``providers`` (if set) or with no provider
        (open), as the getter shows them now; the next cursor is ``confirmed head + 1``."""
        start = int(cursor)
        head = self.confirmed_head()
        if start > head:
            return [], cursor
        logs = self.chain.get_logs(
            address=self.address, topics=[self.abi.topic("JobCreated")], from_block=start, to_block=head
        )
        tasks: list[BoardTask] = []
        seen: set[int] = set()
        providers = self.providers()
        for log in logs:
            job_id = _job_id(log, self.abi)
            if job_id is None or job_id in seen:
                continue
            seen.add(job_id)
            try:
                job = self._job(job_id)
            except TaskNotFound:  # a log the getter does not back (a reorg in flight): the getter is the truth
                continue
            except Exception as exc:  # a job the getter cannot return decodably (a description not UTF-8, say)
                tasks.append(self._undecodable(job_id, exc))
                continue
            # ours (a direct hire, funded or not yet) or open (no provider: anyone may bid); never another's
            provider = str(job["provider"]).lower()
            if providers is not None and provider not in providers and int(provider, 16) != 0:
                continue
            task = self._task(job_id, job)
            self._descriptions[task.key] = job["description"]
            tasks.append(task)
        return tasks, str(head + 1)

    def _undecodable(self, job_id: int, exc: Exception) -> BoardTask:
        return BoardTask(
            board=self.name, key=str(job_id), poster=_ZERO, token=_ZERO, reward=0, deadline=0, reviewer=_ZERO,
            spec_cid="", phase=BoardPhase.OPEN, status_text="undecodable",
            quarantine_reason=f"the market's getJob({job_id}) could not be decoded ({type(exc).__name__})",
        )  # fmt: skip

    def _job(self, job_id: int) -> dict[str, Any]:
        """``getJob(job_id)`` by field name; ``TaskNotFound`` for a job the market does not have."""
        try:
            out = self.chain.call(self.address, self.abi.encode_call("getJob", job_id))
        except TransactionReverted:  # a view that reverts for an id has no such job (each implementation's words)
            raise TaskNotFound(
                f"market {self.name!r} has no job {job_id}", hint="list jobs with `deworker dao show`"
            ) from None
        (values,) = self.abi.decode_output("getJob", out)
        components = self.abi.function("getJob")["outputs"][0]["components"]
        job = {c["name"]: v for c, v in zip(components, values, strict=True)}
        if int(job["client"], 16) == 0:  # the reference implementation returns an empty struct for unknown ids
            raise TaskNotFound(f"market {self.name!r} has no job {job_id}")
        for field in ("client", "provider", "evaluator"):
            job[field] = to_checksum_address(job[field])
        return job

    def _task(self, job_id: int, job: Mapping[str, Any]) -> BoardTask:
        code = int(job["status"])
        status = STATUSES[code] if code < len(STATUSES) else f"status {code}"
        description = str(job["description"])
        spec_cid = description.removeprefix("ipfs://").strip() if description.startswith("ipfs://") else ""
        provider = None if int(job["provider"], 16) == 0 else job["provider"]
        artifact = None
        phase = PHASES.get(status, BoardPhase.CLOSED)
        if phase in (BoardPhase.DELIVERED, BoardPhase.SETTLED):
            artifact = self._submitted_cid(job_id)
        return BoardTask(
            board=self.name,
            key=str(job_id),
            poster=job["client"],
            token=self.token,
            reward=int(job["budget"]),
            deadline=int(job["expiredAt"]),
            reviewer=job["evaluator"],
            spec_cid=spec_cid[:128],
            phase=phase,
            status_text=status,
            claimant=provider,
            claim_expires=int(job["expiredAt"]),
            artifact_cid=artifact,
        )

    def read_spec(self, task: BoardTask) -> TaskSpec:
        """The job's description as a spec: an ``ipfs://`` CID's Deworker spec, inline spec JSON, or plain text
        (a text task). ``SpecError`` with the reason for a malformed one."""
        description = self._descriptions.pop(task.key, None)
        if description is None:
            description = str(self._job(job_key(task.key))["description"])
        if description.startswith("ipfs://"):
            return fetch_spec(self.store, description.removeprefix("ipfs://").strip(), max_bytes=self.max_spec_bytes)
        if description.lstrip().startswith("{"):
            return parse_spec(description.encode("utf-8"), max_bytes=self.max_spec_bytes)
        return text_spec(description, skills=self.text_skills)

    def status(self, key: str) -> BoardTask:
        job_id = job_key(key)
        return self._task(job_id, self._job(job_id))

    def _submitted_cid(self, job_id: int) -> str | None:
        """The CID the job's ``JobSubmitted`` stands for (the deliverable rule). A job is submitted at most once
        (Submitted never goes back to Funded), so the answer is kept: one log search per job, not per status read."""
        if job_id in self._submitted:
            return self._submitted[job_id]
        logs = self._job_logs("JobSubmitted", job_id, since=self.start_block)
        for log in reversed(logs):
            event = self.abi.decode_log(log)
            if event is not None:
                cid = deliverable_cid(event.args["deliverable"])
                self._submitted[job_id] = cid
                return cid
        return None

    def _job_logs(self, event: str, job_id: int, *, since: int) -> list[LogEntry]:
        topics: list[bytes | None] = [self.abi.topic(event), job_id.to_bytes(32, "big")]
        head = self.chain.block_number()
        return self.chain.get_logs(address=self.address, topics=topics, from_block=since, to_block=head)

    def payouts(self, cursor: str) -> tuple[list[Payout], str]:
        """``PaymentReleased`` events in blocks ``[cursor, confirmed head]``: what the provider actually got."""
        start = int(cursor)
        head = self.confirmed_head()
        if start > head:
            return [], cursor
        logs = self.chain.get_logs(
            address=self.address, topics=[self.abi.topic("PaymentReleased")], from_block=start, to_block=head
        )
        payouts = []
        for log in logs:
            event = self.abi.decode_log(log)
            if event is None:  # pragma: no cover - filtered on topic0
                continue
            payouts.append(
                Payout(
                    board=self.name,
                    key=str(int(event.args["jobId"])),
                    recipient=event.args["provider"],
                    token=self.token,
                    amount=int(event.args["amount"]),
                    tx_hash=log.tx_hash,
                    block_number=log.block_number,
                )
            )
        return payouts, str(head + 1)

    def rejection(self, key: str, *, since: str) -> Rejection | None:
        """The job's ``JobRejected`` since block ``since``: the rejector (client or evaluator) and the reason."""
        for log in reversed(self._job_logs("JobRejected", job_key(key), since=int(since))):
            event = self.abi.decode_log(log)
            if event is not None:
                return Rejection(
                    board=self.name,
                    key=key,
                    reviewer=to_checksum_address(event.args["rejector"]),
                    reason=reason_text(event.args["reason"]),
                    tx_hash=log.tx_hash,
                )
        return None

    def action_tx(self, key: str, action: BoardAction, *, actor: str, since: str) -> str | None:
        """The latest ``submit`` by ``actor`` on the job since block ``since`` (nothing is claimed here). The
        provider is compared after decoding: not every implementation indexes it."""
        if action != "submit":
            return None
        for log in reversed(self._job_logs("JobSubmitted", job_key(key), since=int(since))):
            event = self.abi.decode_log(log)
            if event is not None and str(event.args["provider"]).lower() == actor.lower():
                return log.tx_hash
        return None

    # ----------------------------------------------------------------------------------------------- writes

    def bid(self, key: str, amount: int, *, wallet: BidSigner, endpoint: str) -> None:
        """POST ``wallet``'s signed bid to ``endpoint`` (the ``entry.bids`` route's body: the market's address as
        ``board``). A 409 (the job is not open any more) is ``TaskTaken``; a 429, a 5xx or no answer a retryable
        ``BoardError``; any other refusal a ``BoardError`` with the endpoint's words."""
        job_id = job_key(key)
        # The endpoint comes from the job's description, which anyone can write: the fleet sends a request only to
        # a host the operator listed, never to an address the task chose (its own network, a metadata service).
        host = (httpx.URL(endpoint).host or "").lower()
        if host not in self.bid_hosts:
            raise TaskTaken(
                f"job {key}: its bid endpoint's host {printable(host)!r} is not in boards[].bid_hosts of board "
                f"{self.name!r}: no bid sent"
            )
        signature = wallet.sign_bid(self.address, job_id, amount)
        body = {
            "board": self.address, "job_id": job_id, "amount": str(amount), "bidder": wallet.address,
            "signature": "0x" + signature.hex(),
        }  # fmt: skip
        try:
            answer = httpx.post(endpoint, json=body, timeout=10.0, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise BoardError(
                f"job {key}: the bid endpoint did not answer ({type(exc).__name__})", retryable=True
            ) from None
        if answer.status_code == 201:
            return
        detail = printable(answer.text[:200])
        if answer.status_code == 409:
            raise TaskTaken(f"job {key}: the client refused the bid: {detail}")
        retry = answer.status_code == 429 or answer.status_code >= 500
        raise BoardError(f"job {key}: the bid endpoint answered {answer.status_code}: {detail}", retryable=retry)

    def deliver(self, key: str, artifact_cid: str, *, wallet: Signer, expires_at: int | None = None) -> Receipt:
        """``submit(jobId, deliverable, {"cid": ...})`` (the module's deliverable rule). ``ClaimGone`` if the job
        is no longer Funded for ``wallet`` (rejected, refunded, another provider), read from the getter."""
        job_id = job_key(key)
        try:
            digest = deliverable_of(artifact_cid)
        except ArtifactError as exc:
            raise BoardError(f"job {key}: {exc.message}", hint="deliver a CIDv1 with a sha2-256 multihash") from None
        opt = json.dumps({"cid": artifact_cid}, separators=(",", ":")).encode("utf-8")
        data = self.abi.encode_call("submit", job_id, digest, opt)
        try:
            return wallet.send(self.address, data, expires_at=expires_at)
        except TransactionReverted as exc:
            now = self.status(key)  # the revert's words are the implementation's; the getter says why
            if now.phase is not BoardPhase.HELD or (now.claimant or "").lower() != wallet.address.lower():
                raise ClaimGone(f"job {key} is {now.status_text}, not Funded for {wallet.address}") from exc
            raise


def _job_id(log: LogEntry, abi: ContractABI) -> int | None:
    """The job id of an event: decoded with the profile (None for a log it does not decode)."""
    try:
        event = abi.decode_log(log)
    except Exception:  # a log that does not fit the profile: a hint lost, never a failed poll
        return None
    return None if event is None else int(event.args["jobId"])


def from_settings(settings: BoardSettings, chain: Chain, artifacts: ArtifactStore) -> Erc8183Board:
    """The registry's factory for ``kind: erc8183``. Options: ``abi`` (the profile), ``providers`` (our agents'
    addresses: direct hire only), ``token``, ``start_block``, ``text_skills``, ``bid_hosts``."""
    opts = settings.options
    providers = opts.get("providers")
    return Erc8183Board(
        chain=chain,
        address=settings.address,
        store=artifacts,
        name=settings.name,
        profile=load_profile(opts.get("abi")),
        providers=providers if providers is None or callable(providers) else list(providers),
        token=opts.get("token"),
        start_block=int(opts.get("start_block", 0)),
        max_spec_bytes=settings.max_spec_bytes,
        confirmations=settings.confirmations,
        text_skills=tuple(opts.get("text_skills") or TEXT_SKILLS),
        bid_hosts=tuple(opts.get("bid_hosts") or ()),
    )

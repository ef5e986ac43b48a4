"""What a DAO does with a board: deploy it with a reward token, post funded tasks, look at and test what was
submitted, approve, reject, cancel.

Used by ``deworker dao ...``, ``deworker devnet fund`` and the demo. Every write goes through a ``Signer``; specs
are stored by CID in the artifact store before the task that points at them is posted.

A DAO needs only the chain and the board's address: each task carries its reward token on the board, and a
token's symbol and decimals come from the token contract. Posting needs a token: the one given to ``Dao``
(``dao.token`` in config, else the address book's), else the token of the board's most recent task.

Every write is checked against the board first (the task's state, who may act, the DAO's balance), so a refused
action is a plain sentence and sends nothing, never a revert or a dangling allowance.

Errors besides the shared tree: ``WrongTaskState`` and ``NotAllowed`` (``BoardError``), ``CannotPay``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from eth_abi.exceptions import DecodingError

from agents.config import TestRunConfig
from contracts.compile import load_artifact
from orchestrator.adapters.boards.abi import ContractABI
from orchestrator.adapters.boards.onchain import BoardStatus, OnchainTaskBoard, board_abi
from orchestrator.adapters.chain import TxSender
from orchestrator.domain.board import BoardTask
from orchestrator.domain.errors import ArtifactError, BoardError, ChainError, ConfigError, DeworkerError
from orchestrator.domain.money import TokenInfo, whole_text
from orchestrator.domain.specs import TaskSpec, dump_spec
from orchestrator.domain.untrusted import printable
from orchestrator.entry.config import DaoConfig
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.chain import Chain, Receipt, Signer
from tools.sandbox import TestRun, run_acceptance_tests

#: Longest rejection reason the board stores (``REASON_LEN`` in TaskBoard.vy, in bytes).
MAX_REASON_BYTES = 256


class WrongTaskState(BoardError):
    """The task is not in the state the action needs (checked before anything is sent)."""


class NotAllowed(BoardError):
    """The DAO account is not the task's reviewer (approve, reject) or poster (cancel)."""


class CannotPay(DeworkerError):
    """The DAO account lacks the tokens or the gas for a post or a transfer: nothing was sent."""


@functools.cache
def token_abi() -> ContractABI:
    """The ERC-20 ABI of our RewardToken (any standard ERC-20 shares the calls we use)."""
    return ContractABI(load_artifact("RewardToken")["abi"])


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_CID_TEXT = re.compile(r"[A-Za-z0-9]{1,128}")
_SYMBOL = re.compile(r"^[A-Za-z0-9$._-]{1,16}$")


def parse_duration(text: str) -> int:
    """``"90s"``, ``"30m"``, ``"12h"``, ``"3d"``, ``"2w"`` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise DeworkerError(f"cannot read duration {text!r}", hint="use a number and a unit: 90s, 30m, 12h, 3d or 2w")
    if int(match.group(1)) == 0:
        raise DeworkerError(
            f"duration {text!r} is zero: it would be over before it started", hint="give more than zero, e.g. 90m or 3d"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def to_base_units(amount: str | Decimal | int, decimals: int, *, allow_zero: bool = False) -> int:
    """``"50.5"`` tokens with 18 decimals -> 50500000000000000000 base units; refuses finer than 1 unit, and zero
    unless ``allow_zero``."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise DeworkerError(f"{amount!r} is not a number", hint="give a token amount such as 50 or 12.5") from None
    if not value.is_finite():
        raise DeworkerError(f"{amount!r} is not a number", hint="give a token amount such as 50 or 12.5")
    units = value * (Decimal(10) ** decimals)
    if allow_zero and value == 0:
        return 0
    if value <= 0:
        raise DeworkerError(f"{amount} is not a positive amount", hint="give an amount above zero, such as 50 or 12.5")
    if units != units.to_integral_value():
        raise DeworkerError(
            f"{amount} is not a positive amount in whole base units of a {decimals}-decimal token",
            hint=f"use at most {decimals} decimal places",
        )
    return int(units)


def from_base_units(units: int, decimals: int) -> Decimal:
    return Decimal(units) / (Decimal(10) ** decimals)


def format_amount(units: int, token: TokenInfo | None, address: str) -> str:
    """``12.5 DWR``; a token without readable ``symbol()``/``decimals()`` in base units next to its address."""
    if token is None:
        return f"{units:,} base units of {address}"
    return f"{whole_text(from_base_units(units, token.decimals))} {token.symbol}"


@dataclass(frozen=True, slots=True)
class Posted:
    task_id: int
    spec_cid: str
    receipt: Receipt
    #: the spec was read back through the configured gateways before the post (False: no gateways configured)
    read_back: bool = False


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    path: str  # relative, with forward slashes
    size: int


def artifact_files(root: Path) -> list[ArtifactFile]:
    """The regular files of a fetched artifact (a folder, or one file named after its CID), sorted by path.
    Symlinks are not followed."""
    if root.is_file():
        return [ArtifactFile(path=root.name, size=root.stat().st_size)]
    out = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in names:
            location = Path(folder, name)
            if location.is_file() and not location.is_symlink():
                out.append(ArtifactFile(path=location.relative_to(root).as_posix(), size=location.stat().st_size))
    return sorted(out, key=lambda f: f.path)


def read_text_file(root: Path, relpath: str) -> str:
    """One text file of a fetched artifact, by a path ``artifact_files`` lists. Refuses a path outside the
    artifact, a missing file and binary content (a NUL byte, or not UTF-8) with a ``DeworkerError`` that says
    what to do instead. Only listed paths are read: they are regular files inside, never symlinks."""
    wanted = relpath.strip().removeprefix("./")
    listed = {f.path for f in artifact_files(root)}
    if wanted not in listed:
        parts = Path(wanted).parts
        outside = Path(wanted).is_absolute() or ".." in parts
        what = "is not a path inside the artifact" if outside else "is not a file of the artifact"
        raise DeworkerError(f"{relpath!r} {what}", hint="give one of the paths `deworker dao show ID` lists")
    data = (root if root.is_file() else root / wanted).read_bytes()
    if b"\x00" not in data:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    raise DeworkerError(
        f"{relpath} is a binary file ({len(data):,} bytes): it is not printed",
        hint="write the artifact's files to a folder with `-o DIR` and open it there",
    )


def check_export_target(dest: Path) -> None:
    """``DeworkerError`` unless ``dest`` is a new or an empty folder (checked before anything is fetched)."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DeworkerError(f"{dest} exists and is not an empty folder", hint="give a new folder to -o")


def export_artifact(root: Path, dest: Path) -> Path:
    """Copy a fetched artifact into ``dest`` (a new or empty folder); returns ``dest``."""
    check_export_target(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if root.is_file():
        shutil.copy2(root, dest / root.name)
    else:
        shutil.copytree(root, dest, symlinks=True, dirs_exist_ok=True)
    return dest


class Dao:
    """A DAO account acting on one board. ``token`` is the reward token for new posts (``None``: the token of
    the board's most recent task); reading, approving, rejecting and cancelling never need one."""

    def __init__(
        self,
        *,
        chain: Chain,
        signer: Signer,
        store: ArtifactStore,
        board: str,
        token: str | None = None,
        name: str = "main",
        max_spec_bytes: int = 262_144,
    ) -> None:
        self.chain = chain
        self.signer = signer
        self.store = store
        self.board_address = board
        self._token = token
        self.board = OnchainTaskBoard(chain=chain, address=board, store=store, name=name, max_spec_bytes=max_spec_bytes)
        self._token_info: dict[str, TokenInfo | None] = {}

    @staticmethod
    def deploy(
        *, chain: Chain, sender: TxSender, name: str, symbol: str, decimals: int, supply: int, claim_ttl: int
    ) -> tuple[str, str, int]:
        """Deploy a RewardToken (``supply`` whole tokens to the sender) and a TaskBoard.

        Returns (token address, board address, block of the board's deployment).
        """
        token_art = load_artifact("RewardToken")
        board_art = load_artifact("TaskBoard")
        token_args = ContractABI(token_art["abi"]).encode_constructor(name, symbol, decimals, supply * 10**decimals)
        token = sender.deploy(bytes.fromhex(token_art["bytecode"].removeprefix("0x")), token_args)
        board_args = ContractABI(board_art["abi"]).encode_constructor(claim_ttl)
        board = sender.deploy(bytes.fromhex(board_art["bytecode"].removeprefix("0x")), board_args)
        # Auto-mining dev chains and real ones alike: the board exists at or before the current head.
        return token, board, chain.block_number()

    @staticmethod
    def deploy_configured(*, chain: Chain, sender: TxSender, config: DaoConfig) -> tuple[str, str, int]:
        """``deploy`` with the token and claim TTL of the ``dao`` config section."""
        return Dao.deploy(
            chain=chain,
            sender=sender,
            name=config.token_name,
            symbol=config.token_symbol,
            decimals=config.token_decimals,
            supply=config.token_supply,
            claim_ttl=config.claim_ttl,
        )

    # ------------------------------------------------------------------------------------------------ token

    @property
    def token(self) -> str:
        """The reward token new tasks are posted with (see the class docstring)."""
        if self._token is None:
            self._token = self._latest_task_token()
        if self._token is None:
            raise ConfigError(
                f"no reward token to post with: dao.token is not set, no deployment is saved for this board and "
                f"board {self.board_address} has no task to take the token from",
                key="dao.token",
                hint="set dao.token in config.yaml to the ERC-20 address of the reward "
                "(or export DEWORKER_DAO__TOKEN=0x...)",
            )
        return self._token

    def token_or_none(self) -> str | None:
        """``token``, or ``None`` where it would raise (nothing to post with yet)."""
        try:
            return self.token
        except ConfigError:
            return None

    def _latest_task_token(self) -> str | None:
        count = self.board.task_count()
        return self.board.status(str(count)).token if count else None

    def _token_call(self, fn: str, *args: object, token: str | None = None) -> Any:
        """One ERC-20 read; an answer that does not decode (no contract at the address) is a ``ChainError``."""
        abi = token_abi()
        address = token or self.token
        out = self.chain.call(address, abi.encode_call(fn, *args))
        try:
            (value,) = abi.decode_output(fn, out)
        except (DecodingError, ValueError):
            raise ChainError(
                f"{address} did not answer {fn}() as an ERC-20 does ({len(out)} bytes back)",
                hint=f"check dao.token: it must be an ERC-20 on chain {self.chain.chain_id}",
            ) from None
        return value

    def token_info(self, token: str) -> TokenInfo | None:
        """Symbol and decimals from the token contract (``symbol()``, ``decimals()``), once per token; ``None``
        when it does not answer them readably (no code, a bytes32 symbol, a symbol that is not a ticker)."""
        key = token.lower()
        if key not in self._token_info:
            info: TokenInfo | None = None
            try:
                symbol = str(self._token_call("symbol", token=token))
                decimals = int(self._token_call("decimals", token=token))
                if _SYMBOL.match(symbol) and 0 <= decimals <= 36:
                    info = TokenInfo(address=token, symbol=symbol, decimals=decimals)
            except (ChainError, DecodingError, ValueError):
                info = None
            self._token_info[key] = info
        return self._token_info[key]

    def amount(self, units: int, token: str) -> str:
        """``units`` of ``token`` as people read them (``12.5 DWR``)."""
        return format_amount(units, self.token_info(token), token)

    def decimals(self) -> int:
        return int(self._token_call("decimals"))

    def symbol(self) -> str:
        return str(self._token_call("symbol"))

    def token_balance(self, address: str, token: str | None = None) -> int:
        return int(self._token_call("balanceOf", address, token=token))

    def allowance(self, token: str | None = None) -> int:
        """What the board may pull from the DAO account."""
        return int(self._token_call("allowance", self.signer.address, self.board_address, token=token))

    # ------------------------------------------------------------------------------------------------ reads

    def task(self, task_id: int) -> BoardTask:
        """The task as the board holds it now (``TaskNotFound`` if there is none)."""
        return self.board.status(str(task_id))

    def spec(self, task: BoardTask) -> TaskSpec:
        """The task's spec, fetched by CID and validated (``SpecError`` says why it cannot be read)."""
        return self.board.read_spec(task)

    def tasks(self) -> list[BoardTask]:
        """Every task on the board, newest first."""
        count = self.board.task_count()
        return [self.board.status(str(i)) for i in range(count, 0, -1)]

    def fetch_artifact(self, task: BoardTask, workdir: Path) -> Path:
        """Fetch the task's submitted artifact into ``workdir`` through the artifact store, which verifies every
        block against its CID; returns the artifact (a folder, or one file). ``WrongTaskState`` if nothing is
        submitted; an ``ArtifactError`` naming the task and CID if it cannot be fetched."""
        cid = task.artifact_cid
        if not cid:
            raise WrongTaskState(
                f"task {task.key} has nothing submitted (it is {task.status_text})",
                hint="wait for a contributor to submit, then try again",
            )
        if not _CID_TEXT.fullmatch(cid):
            raise ArtifactError(f"task {task.key}'s artifact CID {shown(cid, 100)!r} is not a CID")
        try:
            return self.store.get_path(cid, workdir / cid)
        except ArtifactError as exc:
            # the same kind of error (not found, corrupt, ...), now naming the task
            kind = type(exc) if type(exc).__init__ is DeworkerError.__init__ else ArtifactError
            raise kind(
                f"cannot fetch the artifact {cid} of task {task.key}: {exc.message}",
                hint=exc.hint
                or "the artifact store must reach a node or gateway that has it (see artifacts in config.yaml)",
                retryable=exc.retryable,
            ) from None

    def run_checks(self, spec: TaskSpec, artifact: Path, workdir: Path, limits: TestRunConfig) -> TestRun | None:
        """The spec's acceptance tests against a fetched artifact, in the sandbox the agents' ``run_tests`` tool
        uses; ``None`` when the spec has none."""
        if spec.acceptance_tests is None:
            return None
        files = artifact
        if artifact.is_file():  # a one-file artifact: the tests import it by the spec's file name
            files = workdir / "files"
            files.mkdir()
            shutil.copy2(artifact, files / (spec.deliverable.filename or artifact.name))
        return run_acceptance_tests(
            files,
            spec.acceptance_tests.files,
            timeout=limits.timeout,
            memory_bytes=limits.memory_bytes,
            max_output_chars=limits.max_output_chars,
        )

    # ---------------------------------------------------------------------------------------------- actions

    def post(self, spec: TaskSpec, *, reward: int, deadline: int, reviewer: str | None = None) -> Posted:
        """Store the spec, approve the escrow if needed, post. ``reward`` in token base units."""
        return self.post_raw(dump_spec(spec), reward=reward, deadline=deadline, reviewer=reviewer)

    def check_can_pay(self, reward: int, *, token: str | None = None) -> None:
        """``CannotPay`` unless the DAO account holds ``reward`` of the token and some gas."""
        token = token or self.token
        me = self.signer.address
        balance = self.token_balance(me, token)
        if balance < reward:
            raise CannotPay(
                f"the DAO account {me} holds {self.amount(balance, token)}, less than the "
                f"{self.amount(reward, token)} needed: nothing was sent",
                hint="send it more of the token (on a devnet the DAO is dev account 0), or lower the amount",
            )
        if self.chain.balance(me) == 0:
            raise CannotPay(
                f"the DAO account {me} has no ETH for gas: nothing was sent",
                hint=f"send it ETH (on a devnet: `deworker devnet fund {me} --eth 1`)",
            )

    def post_raw(self, spec_bytes: bytes, *, reward: int, deadline: int, reviewer: str | None = None) -> Posted:
        """Post a task whose spec document is ``spec_bytes`` as given (the demo uses it to post a bad spec).

        Checked before anything is sent (so a refused post leaves no allowance behind): a positive reward, a
        deadline in the chain's future, the DAO's token balance and gas."""
        token = self.token
        if reward <= 0:
            raise DeworkerError("the reward must be positive", hint="give a reward such as 50 or 12.5")
        now = self.chain.block().timestamp
        if deadline <= now:
            raise DeworkerError(
                f"the deadline {deadline} is not after the chain's time {now}", hint="give a later --deadline"
            )
        self.check_can_pay(reward, token=token)
        cid = self.store.put_bytes(spec_bytes)
        # Publish before the transaction that names the CID, and read it back through the gateways: agents on
        # other machines must be able to fetch the spec. A failure here sends nothing (ArtifactUnavailable).
        self.store.publish(cid)
        read_back = self.store.confirm_published(cid)
        if self.allowance(token) < reward:
            self.signer.send(token, token_abi().encode_call("approve", self.board_address, reward))
        receipt = self.signer.send(
            self.board_address,
            board_abi().encode_call("post", token, reward, deadline, reviewer or self.signer.address, cid),
        )
        for log in receipt.logs:
            if log.address.lower() != self.board_address.lower():
                continue
            event = board_abi().decode_log(log)
            if event is not None and event.name == "TaskPosted":
                return Posted(task_id=int(event.args["task_id"]), spec_cid=cid, receipt=receipt, read_back=read_back)
        raise BoardError(f"post transaction {receipt.tx_hash} emitted no TaskPosted event")  # pragma: no cover

    def transfer(self, to: str, units: int, *, token: str | None = None) -> Receipt:
        """Send ``units`` of the token (default: the reward token) from the DAO account, balance checked first."""
        token = token or self.token
        self.check_can_pay(units, token=token)
        return self.signer.send(token, token_abi().encode_call("transfer", to, units))

    def _require(self, task: BoardTask, wanted: BoardStatus, verb: str) -> None:
        if task.status_text != wanted.name:
            raise WrongTaskState(
                f"task {task.key} is {task.status_text}: only {_article(wanted.name)} {wanted.name} task can be {verb}",
                hint=f"see its state with `deworker dao show {task.key}`",
            )

    def _require_actor(self, task: BoardTask, role: str, address: str, verb: str) -> None:
        if address.lower() != self.signer.address.lower():
            raise NotAllowed(
                f"task {task.key}'s {role} is {address}, not the DAO account {self.signer.address}: "
                f"only its {role} can {verb} it",
                hint=f"act from the {role}'s account: put its key in the variable dao.key_env names",
            )

    def check_approvable(self, task_id: int) -> BoardTask:
        """The task, if the DAO account may approve it now; ``WrongTaskState`` / ``NotAllowed`` otherwise."""
        task = self.task(task_id)
        self._require(task, BoardStatus.SUBMITTED, "approved")
        self._require_actor(task, "reviewer", task.reviewer, "approve")
        return task

    def approve(self, task_id: int) -> Receipt:
        """Approve the submitted work: the board pays the claimant."""
        self.check_approvable(task_id)
        return self.signer.send(self.board_address, board_abi().encode_call("approve", task_id))

    def reject(self, task_id: int, reason: str) -> Receipt:
        """Reject the submission with a reason (the contributor's feedback); the task reopens with its reward
        still escrowed."""
        if not reason.strip():
            raise DeworkerError(
                "a rejection needs a reason: the contributor revises from it",
                hint='say what is missing, e.g. --reason "define all six terms"',
            )
        if len(reason.encode("utf-8")) > MAX_REASON_BYTES:
            raise DeworkerError(
                f"the reason is {len(reason.encode('utf-8'))} bytes; the board stores at most {MAX_REASON_BYTES}",
                hint="shorten it",
            )
        task = self.task(task_id)
        self._require(task, BoardStatus.SUBMITTED, "rejected")
        self._require_actor(task, "reviewer", task.reviewer, "reject")
        return self.signer.send(self.board_address, board_abi().encode_call("reject", task_id, reason))

    def cancel(self, task_id: int) -> Receipt:
        """Cancel an unclaimed task; the escrowed reward is refunded."""
        task = self.task(task_id)
        self._require(task, BoardStatus.OPEN, "cancelled")
        self._require_actor(task, "poster", task.poster, "cancel")
        return self.signer.send(self.board_address, board_abi().encode_call("cancel", task_id))


def _article(word: str) -> str:
    return "an" if word[:1].upper() in "AEIOU" else "a"


def shown(text: str, limit: int = 200) -> str:
    """Untrusted text (a title, a symbol) for one line: control characters escaped, cut at ``limit``."""
    out = printable(text)
    return out if len(out) <= limit else out[: limit - 1] + "…"

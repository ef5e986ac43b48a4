"""What a DAO does with a board: deploy it with a reward token, post funded tasks, approve, reject, cancel.

Used by ``deworker dao ...`` and by the demo. Every write goes through a ``Signer``; specs are stored by CID
in the artifact store before the task that points at them is posted.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts.compile import load_artifact
from orchestrator.boards.abi import ContractABI
from orchestrator.boards.onchain import OnchainTaskBoard, board_abi
from orchestrator.chain import TxSender
from orchestrator.config import DaoConfig
from orchestrator.domain import BoardTask, TaskSpec
from orchestrator.errors import BoardError, DeworkerError
from orchestrator.ports import ArtifactStore, Chain, Receipt, Signer
from orchestrator.specs import dump_spec


@functools.cache
def token_abi() -> ContractABI:
    """The ERC-20 ABI of our RewardToken (any standard ERC-20 shares the calls we use)."""
    return ContractABI(load_artifact("RewardToken")["abi"])


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> int:
    """``"90s"``, ``"30m"``, ``"12h"``, ``"3d"``, ``"2w"`` -> seconds."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise DeworkerError(f"cannot read duration {text!r}", hint="use a number and a unit: 90s, 30m, 12h, 3d or 2w")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def to_base_units(amount: str | Decimal | int, decimals: int) -> int:
    """``"50.5"`` tokens with 18 decimals -> 50500000000000000000 base units; refuses finer than 1 unit."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise DeworkerError(f"{amount!r} is not a number", hint="give a token amount such as 50 or 12.5") from None
    units = value * (Decimal(10) ** decimals)
    if value <= 0 or units != units.to_integral_value():
        raise DeworkerError(
            f"{amount} is not a positive amount in whole base units of a {decimals}-decimal token",
            hint=f"use at most {decimals} decimal places",
        )
    return int(units)


def from_base_units(units: int, decimals: int) -> Decimal:
    return Decimal(units) / (Decimal(10) ** decimals)


@dataclass(frozen=True, slots=True)
class Posted:
    task_id: int
    spec_cid: str
    receipt: Receipt


class Dao:
    """A DAO account acting on one board with one reward token."""

    def __init__(self, *, chain: Chain, signer: Signer, store: ArtifactStore, board: str, token: str) -> None:
        self.chain = chain
        self.signer = signer
        self.store = store
        self.board_address = board
        self.token = token
        self.board = OnchainTaskBoard(chain=chain, address=board, store=store)

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

    def _token_call(self, fn: str, *args: object) -> Any:
        abi = token_abi()
        (value,) = abi.decode_output(fn, self.chain.call(self.token, abi.encode_call(fn, *args)))
        return value

    def decimals(self) -> int:
        return int(self._token_call("decimals"))

    def symbol(self) -> str:
        return str(self._token_call("symbol"))

    def token_balance(self, address: str) -> int:
        return int(self._token_call("balanceOf", address))

    # ---------------------------------------------------------------------------------------------- actions

    def post(self, spec: TaskSpec, *, reward: int, deadline: int, reviewer: str | None = None) -> Posted:
        """Store the spec, approve the escrow if needed, post. ``reward`` in token base units."""
        return self.post_raw(dump_spec(spec), reward=reward, deadline=deadline, reviewer=reviewer)

    def post_raw(self, spec_bytes: bytes, *, reward: int, deadline: int, reviewer: str | None = None) -> Posted:
        """Post a task whose spec document is ``spec_bytes`` as given (the demo uses it to post a bad spec)."""
        cid = self.store.put_bytes(spec_bytes)
        abi = token_abi()
        allowance = int(self._token_call("allowance", self.signer.address, self.board_address))
        if allowance < reward:
            self.signer.send(self.token, abi.encode_call("approve", self.board_address, reward))
        receipt = self.signer.send(
            self.board_address,
            board_abi().encode_call("post", self.token, reward, deadline, reviewer or self.signer.address, cid),
        )
        for log in receipt.logs:
            if log.address.lower() != self.board_address.lower():
                continue
            event = board_abi().decode_log(log)
            if event is not None and event.name == "TaskPosted":
                return Posted(task_id=int(event.args["task_id"]), spec_cid=cid, receipt=receipt)
        raise BoardError(f"post transaction {receipt.tx_hash} emitted no TaskPosted event")  # pragma: no cover

    def approve(self, task_id: int) -> Receipt:
        """Approve the submitted work: the board pays the claimant."""
        return self.signer.send(self.board_address, board_abi().encode_call("approve", task_id))

    def reject(self, task_id: int, reason: str) -> Receipt:
        """Reject the submission; the task reopens with its reward still escrowed."""
        return self.signer.send(self.board_address, board_abi().encode_call("reject", task_id, reason))

    def cancel(self, task_id: int) -> Receipt:
        """Cancel an unclaimed task; the escrowed reward is refunded."""
        return self.signer.send(self.board_address, board_abi().encode_call("cancel", task_id))

    def tasks(self) -> list[BoardTask]:
        """Every task on the board, newest first."""
        count = self.board.task_count()
        return [self.board.status(i) for i in range(count, 0, -1)]

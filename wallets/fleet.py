"""``WalletFleet``: the agents' wallets together — create, unlock, balances, sweeps to the treasury, gas top-ups.

Built from ``WalletsConfig`` by ``WalletFleet.build`` (the CLI and the orchestrator call it; nothing at import
time) on the orchestrator's database engine, already migrated (the journal's tables are Alembic revision 0003).
At start-up ``unlock_all`` decrypts every keystore once and ``recover_all`` settles every wallet's journal before
its first send. Every transfer goes through a ``KeystoreWallet``, so through the policy gate and the journal: a sweep
is ``transfer(treasury, balance)`` on each configured token, then the native balance minus the gas it needs;
a top-up is a plain transfer from the funder wallet (``wallets.funder``) to an agent below the threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from eth_abi.abi import decode, encode
from sqlalchemy.engine import Engine

from orchestrator.adapters.chain.base import checksum_address
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.money import units
from orchestrator.ports.chain import Chain, Receipt
from wallets.config import TokenConfig, WalletsConfig
from wallets.errors import PolicyDenied
from wallets.journal import Journal
from wallets.keystore import Keystore, KeystoreEntry, passphrase_from
from wallets.policy import TRANSFER, PolicyGate
from wallets.wallet import Boundary, KeystoreWallet

if TYPE_CHECKING:
    from orchestrator.ports.wallet import RecoveryReport

log = logging.getLogger(__name__)

BALANCE_OF = bytes.fromhex("70a08231")  # balanceOf(address)
PLAIN_TRANSFER_GAS = 21_000


@dataclass(frozen=True, slots=True)
class WalletBalance:
    name: str
    address: str
    native: int
    tokens: dict[str, int] = field(default_factory=dict)  # symbol -> base units


@dataclass(frozen=True, slots=True)
class SweepResult:
    name: str
    receipts: list[Receipt]
    swept_native: int
    swept_tokens: dict[str, int]


@dataclass(frozen=True, slots=True)
class Upkeep:
    """What one ``WalletFleet.upkeep`` did."""

    topped_up: list[str]
    swept: list[SweepResult]

    def __bool__(self) -> bool:
        return bool(self.topped_up or any(r.receipts for r in self.swept))

    def __str__(self) -> str:
        """One line for a log: ``topped up ada, grace; swept bob (2 tx)``."""
        parts = []
        if self.topped_up:
            parts.append("topped up " + ", ".join(self.topped_up))
        swept = [f"{r.name} ({len(r.receipts)} tx)" for r in self.swept if r.receipts]
        if swept:
            parts.append("swept " + ", ".join(swept))
        return "; ".join(parts) or "nothing to do"


class WalletFleet:
    """Every wallet in the keystore directory, on one chain, with one journal and one policy gate."""

    def __init__(
        self,
        *,
        config: WalletsConfig,
        keystore: Keystore,
        journal: Journal,
        chain: Chain,
        passphrase: Callable[[], str],
        boards: Mapping[str, Sequence[str]] | None = None,
        receipt_timeout: float = 120.0,
        boundary: Boundary | None = None,
    ) -> None:
        self.config = config
        self.keystore = keystore
        self.journal = journal
        self.chain = chain
        self._passphrase = passphrase
        self.boards = dict(boards or {})
        self.receipt_timeout = receipt_timeout
        self.boundary = boundary
        self._wallets: dict[str, KeystoreWallet] = {}
        #: project pool -> fleet wallets holding shares in it (what the gate lets ``claim`` there)
        self.pool_holders: dict[str, list[str]] = {}

    @classmethod
    def build(
        cls,
        config: WalletsConfig,
        *,
        engine: Engine,
        data_dir: Path,
        chain: Chain,
        boards: Mapping[str, Sequence[str]] | None = None,
        receipt_timeout: float = 120.0,
    ) -> WalletFleet:
        """The fleet as ``config`` describes it, journaling into ``engine``: the orchestrator's database, which
        the caller has migrated (``orchestrator.adapters.sql.migrate``)."""
        return cls(
            config=config,
            keystore=Keystore(config.keystore_path(data_dir)),
            journal=Journal(engine),
            chain=chain,
            passphrase=lambda: passphrase_from(env_var=config.passphrase_env, file=config.passphrase_file),
            boards=boards,
            receipt_timeout=receipt_timeout,
        )

    def __repr__(self) -> str:
        return f"WalletFleet({self.keystore.directory}, wallets={len(self.keystore.entries())})"

    @cached_property
    def gate(self) -> PolicyGate:
        """The policy with the fleet's addresses, tokens, treasury and board filled in (built once)."""
        return PolicyGate(
            self.config.policy,
            treasury=self.config.treasury,
            fleet=[e.address for e in self.keystore.entries()],
            tokens=[t.address for t in self.config.tokens],
            boards=self.boards,
            pools=self.pool_holders,
        )

    # --------------------------------------------------------------------------------------------- wallets

    def create(self, name: str) -> KeystoreEntry:
        entry = self.keystore.create(name, self._passphrase())
        self._fleet_changed()
        return entry

    def set_pool_holders(self, holders: Mapping[str, Sequence[str]]) -> None:
        """Which fleet wallets hold shares in which project pool (read from the pools): each may ``claim`` its
        revenue there, nothing else. Rebuilds the gate."""
        self.pool_holders = {pool: list(wallets) for pool, wallets in holders.items()}
        self._fleet_changed()

    def _fleet_changed(self) -> None:
        """A wallet was added: rebuild the gate (fleet addresses) and hand it to the unlocked wallets."""
        self.__dict__.pop("gate", None)
        for wallet in self._wallets.values():
            wallet.gate = self.gate

    def entries(self) -> list[KeystoreEntry]:
        return self.keystore.entries()

    def wallet(self, name: str) -> KeystoreWallet:
        """The named wallet, unlocked once per process."""
        wallet = self._wallets.get(name)
        if wallet is None:
            wallet = KeystoreWallet(
                name=name,
                account=self.keystore.unlock(name, self._passphrase),
                chain=self.chain,
                journal=self.journal,
                gate=self.gate,
                receipt_timeout=self.receipt_timeout,
                boundary=self.boundary,
                replace_after_seconds=self.config.replace_after_seconds,
                replace_after_blocks=self.config.replace_after_blocks,
                fee_bump=self.config.fee_bump,
            )
            self._wallets[name] = wallet
        return wallet

    def import_keystore(self, name: str, source: Path, *, source_passphrase: str) -> KeystoreEntry:
        """Import the V3 keystore ``source`` (opened with ``source_passphrase``) as wallet ``name``, re-encrypted
        under the fleet's passphrase and scrypt cost. Nothing is ever exported: there is no way back out."""
        entry = self.keystore.import_file(name, source, self._passphrase(), source_passphrase=source_passphrase)
        self._fleet_changed()
        return entry

    def unlock_all(self) -> list[KeystoreWallet]:
        """Decrypt every keystore now, in parallel, once for the life of this process (start-up), and return
        every wallet. Later ``wallet(name)`` calls and sends reuse the decrypted accounts."""
        names = [e.name for e in self.entries()]
        locked = [name for name in names if not self.keystore.is_unlocked(name)]
        if locked:  # the passphrase is read only when something is still to decrypt
            self.keystore.unlock_many(locked, self._passphrase())
        return [self.wallet(name) for name in names]

    def recover_all(self) -> dict[str, RecoveryReport]:
        """``recover()`` every wallet (unlocking them first): settle journaled transactions and repair nonce
        drift before anything new is sent. Returns each wallet's report by name."""
        return {wallet.name: wallet.recover() for wallet in self.unlock_all()}

    # -------------------------------------------------------------------------------------------- balances

    def token_balance(self, token: TokenConfig, address: str) -> int:
        out = self.chain.call(token.address, BALANCE_OF + encode(["address"], [checksum_address(address)]))
        return int(decode(["uint256"], out)[0])

    def balances(self) -> list[WalletBalance]:
        return [
            WalletBalance(
                name=e.name,
                address=e.address,
                native=self.chain.balance(e.address),
                tokens={t.symbol: self.token_balance(t, e.address) for t in self.config.tokens},
            )
            for e in self.entries()
        ]

    # ---------------------------------------------------------------------------------------------- moving

    def _treasury(self, to: str | None) -> str:
        target = to or self.config.treasury
        if target is None:
            raise ConfigError(
                "no sweep destination: wallets.treasury is not set and no --to was given",
                key="wallets.treasury",
                hint="set wallets.treasury to the operator's address",
            )
        return checksum_address(target)

    def sweep(self, name: str, *, to: str | None = None) -> SweepResult:
        """Move ``name``'s rewards to the treasury (or ``to``, if the policy allows it): each configured token's
        whole balance first, then the native balance minus the gas of the transfer."""
        target = self._treasury(to)
        wallet = self.wallet(name)
        receipts: list[Receipt] = []
        tokens: dict[str, int] = {}
        for token in self.config.tokens:
            amount = self.token_balance(token, wallet.address)
            if amount:
                receipts.append(wallet.send(token.address, TRANSFER + encode(["address", "uint256"], [target, amount])))
                tokens[token.symbol] = amount
        # the wallet's own fee view: the transfer is signed with exactly these fees
        native = self.chain.balance(wallet.address) - PLAIN_TRANSFER_GAS * wallet.fees().max_fee_per_gas
        swept_native = 0
        if native > 0:
            receipts.append(wallet.send(target, value=native, gas=PLAIN_TRANSFER_GAS))
            swept_native = native
        return SweepResult(name=name, receipts=receipts, swept_native=swept_native, swept_tokens=tokens)

    def auto_sweep(self) -> list[SweepResult]:
        """Sweep, token by token, every agent wallet holding at least a token's ``auto_sweep_at`` to the
        treasury. Tokens only: the native balance stays for gas. Nothing happens without ``wallets.treasury``."""
        if self.config.treasury is None:
            return []
        target = checksum_address(self.config.treasury)
        results = []
        for entry in self.entries():
            if entry.name == self.config.funder:
                continue
            receipts: list[Receipt] = []
            swept: dict[str, int] = {}
            for token in self.config.tokens:
                if token.auto_sweep_at is None:
                    continue
                amount = self.token_balance(token, entry.address)
                if amount and amount >= token.units(token.auto_sweep_at):
                    wallet = self.wallet(entry.name)
                    receipts.append(
                        wallet.send(token.address, TRANSFER + encode(["address", "uint256"], [target, amount]))
                    )
                    swept[token.symbol] = amount
            if receipts:
                results.append(SweepResult(name=entry.name, receipts=receipts, swept_native=0, swept_tokens=swept))
        return results

    def upkeep(self) -> Upkeep:
        """What the service does with the wallets on a schedule: gas top-ups from the funder (when
        ``wallets.funder`` is set) and automatic token sweeps (tokens with ``auto_sweep_at``)."""
        topped = self.top_up() if self.config.funder is not None else {}
        return Upkeep(topped_up=sorted(topped), swept=self.auto_sweep())

    def funder(self) -> KeystoreWallet:
        if self.config.funder is None:
            raise ConfigError(
                "no funder wallet: wallets.funder is not set",
                key="wallets.funder",
                hint="create a hot wallet (`deworker wallet new funder`), fund it, and set wallets.funder: funder",
            )
        return self.wallet(self.config.funder)

    def fund(self, name: str, amount: int) -> Receipt:
        """Send ``amount`` wei from the funder wallet to wallet ``name``."""
        target = self.keystore.entry(name).address
        return self.funder().send(target, value=amount, gas=PLAIN_TRANSFER_GAS)

    def top_up(self) -> dict[str, Receipt]:
        """Send ``gas_topup_amount_wei`` to every agent wallet whose balance is below the threshold. A top-up the
        policy gate refuses is logged as one warning line (the rule and the amounts) and skipped: the next
        upkeep tries again."""
        funder = self.config.funder
        amount = self.config.gas_topup_amount_wei
        out: dict[str, Receipt] = {}
        for entry in self.entries():
            if entry.name == funder:
                continue
            balance = self.chain.balance(entry.address)
            if balance >= self.config.gas_topup_threshold_wei:
                continue
            try:
                out[entry.name] = self.fund(entry.name, amount)
            except PolicyDenied as exc:
                log.warning(
                    "gas top-up of %s refused by the policy [%s]: %s ETH (wallets.gas_topup_amount_wei) from %s to "
                    "%s, which holds %s ETH (below wallets.gas_topup_threshold_wei, %s ETH): %s%s",
                    entry.name,
                    exc.rule,
                    units(amount),
                    funder,
                    entry.address,
                    units(balance),
                    units(self.config.gas_topup_threshold_wei),
                    exc.message.removeprefix(f"policy refused the transaction [{exc.rule}]: "),
                    f"; fix: {exc.hint}" if exc.hint else "",
                )
        return out

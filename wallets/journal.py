"""The transaction journal: local nonces, every signed transaction (raw bytes) before it is broadcast, daily
spend ledgers and an append-only audit log, in SQL (SQLite or PostgreSQL) through SQLModel.

The one write that matters is ``Journal.reserve``: in a single database transaction it locks the wallet's nonce
row (``SELECT ... FOR UPDATE`` on PostgreSQL; every SQLite write transaction here is ``BEGIN IMMEDIATE``), checks and
books the daily spend caps, signs with the reserved nonce, inserts the journal row with the raw signed bytes and
an audit event, and advances the nonce. Only after it commits does the wallet broadcast, so a crash at any point
leaves either nothing signed or a journaled transaction that ``recover()`` re-broadcasts as the same bytes.

The tables live in the orchestrator's database; Alembic revision 0003 (``orchestrator/migrations``) creates them,
so ``orchestrator.adapters.sql.migrate(engine)`` is the only way they come to exist. Nothing here creates an engine at
import time; ``orchestrator.adapters.sql.make_engine`` builds one.

Wei amounts can exceed 64 bits, so they are stored as decimal text (``U256``) and summed in Python under the
row locks. Must not import web3 or any chain adapter: it sees signed transactions only as ``SignedTx``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, LargeBinary, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, select

from orchestrator.adapters.chain import SignedTx
from orchestrator.adapters.sql.db import insert_of, transaction
from orchestrator.adapters.sql.types import U256
from orchestrator.domain.money import units
from orchestrator.ports.chain import Receipt
from wallets.errors import JournalError, PolicyDenied

#: The journal's amount columns were created 80 characters wide (revision 0003); ``U256`` in that width.
WIDE_U256 = U256(80)

FLEET = "fleet"
NATIVE = "native"


class TxStatus:
    """Journal row states. ``pending``: signed and journaled, no receipt yet (maybe not broadcast).
    ``replaced``: an earlier attempt at a nonce that a later one (higher fees, or a cancellation) superseded; the
    node may still mine it, and if it does it becomes the nonce's mined row and the later attempt is ``replaced``."""

    PENDING = "pending"
    MINED = "mined"
    REVERTED = "reverted"
    DROPPED = "dropped"
    REPLACED = "replaced"


#: Rows that hold their nonce: at most one per (wallet, chain, nonce).
LIVE_NONCE = "status NOT IN ('dropped', 'replaced')"


# ------------------------------------------------------------------------------------------------------ tables


class WalletNonce(SQLModel, table=True):
    """The next nonce each wallet will use on each chain: the row ``reserve`` locks."""

    __tablename__ = "wallet_nonce"

    wallet: str = Field(primary_key=True, max_length=42)
    chain_id: int = Field(primary_key=True, sa_type=BigInteger)
    next_nonce: int = Field(sa_type=BigInteger)


class WalletTx(SQLModel, table=True):
    """One signed transaction (one attempt at a nonce). ``raw_tx`` is exactly what is (re-)broadcast. Its nonce
    is unique per wallet and chain among live rows (a dropped row frees its nonce; a replaced one hands it to the
    next attempt). ``attempt`` counts the attempts at the nonce from 0; ``sent_block`` is the chain's head when it
    was signed (its age in blocks); ``expires_at`` is the chain time after which its purpose is void (a claim
    past its TTL, a submit past the deadline): a stuck attempt past it is replaced by a cancellation."""

    __tablename__ = "wallet_tx"
    __table_args__ = (
        Index(
            "uq_wallet_tx_live_nonce",
            "wallet",
            "chain_id",
            "nonce",
            unique=True,
            sqlite_where=text(LIVE_NONCE),
            postgresql_where=text(LIVE_NONCE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    wallet: str = Field(max_length=42, index=True)
    chain_id: int = Field(sa_type=BigInteger)
    nonce: int = Field(sa_type=BigInteger)
    tx_hash: str = Field(max_length=66, unique=True)
    raw_tx: bytes = Field(sa_type=LargeBinary, repr=False)
    to: str | None = Field(default=None, max_length=42)
    selector: str | None = Field(default=None, max_length=10)
    value: int = Field(sa_type=WIDE_U256)
    gas: int = Field(sa_type=BigInteger)
    max_fee_per_gas: int = Field(sa_type=WIDE_U256)
    status: str = Field(default=TxStatus.PENDING, max_length=10, index=True)
    reason: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    mined_block: int | None = Field(default=None, sa_type=BigInteger)
    gas_used: int | None = Field(default=None, sa_type=BigInteger)
    effective_gas_price: int | None = Field(default=None, sa_type=WIDE_U256)
    spend_day: str = Field(max_length=10)
    spend_gas: int = Field(sa_type=WIDE_U256)
    spend_value: int = Field(sa_type=WIDE_U256)
    token: str | None = Field(default=None, max_length=42)
    token_amount: int = Field(default=0, sa_type=WIDE_U256)
    attempt: int = Field(default=0)
    sent_block: int | None = Field(default=None, sa_type=BigInteger)
    expires_at: int | None = Field(default=None, sa_type=BigInteger)


class WalletSpend(SQLModel, table=True):
    """What a wallet (or the whole fleet, scope ``fleet``) spent of one asset on one chain on one UTC day."""

    __tablename__ = "wallet_spend"

    scope: str = Field(primary_key=True, max_length=42)
    chain_id: int = Field(primary_key=True, sa_type=BigInteger)
    day: str = Field(primary_key=True, max_length=10)
    asset: str = Field(primary_key=True, max_length=42)
    amount: int = Field(default=0, sa_type=WIDE_U256)


class AuditEvent(SQLModel, table=True):
    """Append-only: every signature, refusal, receipt, drop and nonce repair. Never updated or deleted."""

    __tablename__ = "wallet_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    kind: str = Field(max_length=32, index=True)
    wallet: str | None = Field(default=None, max_length=42, index=True)
    chain_id: int | None = Field(default=None, sa_type=BigInteger)
    rule: str | None = Field(default=None, max_length=64)
    tx_hash: str | None = Field(default=None, max_length=66)
    detail: str = "{}"


#: The journal's tables (Alembic revision 0003).
TABLES = ("wallet_nonce", "wallet_tx", "wallet_spend", "wallet_audit")


# ------------------------------------------------------------------------------------------------ value types


@dataclass(frozen=True, slots=True)
class Spend:
    """What one transaction may spend at most, as booked against the daily caps: ``gas_wei`` (gas limit times
    max fee), ``value_wei`` and ``token_amount`` of ``token``. The gate leaves out amounts bound for the
    treasury (moving money home is not spending it); gas always counts."""

    gas_wei: int
    value_wei: int = 0
    token: str | None = None
    token_amount: int = 0

    @property
    def native(self) -> int:
        return self.gas_wei + self.value_wei


@dataclass(frozen=True, slots=True)
class Limit:
    """A daily cap: ``scope`` (a wallet address or ``fleet``) may spend at most ``cap`` of ``asset`` per day.
    ``rule`` names the policy key for the refusal."""

    scope: str
    asset: str
    cap: int
    rule: str


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


# ------------------------------------------------------------------------------------------------- the journal


class Journal:
    """The wallet tables behind one engine. Thread-safe (a session per call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        return f"Journal({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _transaction(self, *, durable: bool = True, reads_only: bool = False) -> Iterator[Session]:
        """One database transaction; database errors become ``JournalError``. ``durable=False`` commits without
        waiting for the disk (``relax``): only for what ``recover()`` re-derives from the chain. ``reads_only``
        takes no write lock (``read_only``): for pure reads only."""
        try:
            with transaction(self.engine, durable=durable, reads_only=reads_only) as session:
                yield session
        except IntegrityError as exc:
            raise JournalError(
                f"the journal refused a write: {exc.orig.__class__.__name__}: {str(exc.orig).splitlines()[0]}",
                hint="another process may be using the same wallet and nonce; run recover() and retry",
            ) from None
        except SQLAlchemyError as exc:
            raise JournalError(
                f"journal database error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                hint="check that the database is reachable and migrated (`orchestrator.adapters.sql.migrate`)",
                retryable=True,
            ) from None

    def _insert_ignore(self, session: Session, model: type[SQLModel], values: dict[str, Any]) -> None:
        session.execute(insert_of(session, model).values(**values).on_conflict_do_nothing())

    # ----------------------------------------------------------------------------------------- nonces

    def next_nonce(self, wallet: str, chain_id: int) -> int | None:
        with self._transaction(reads_only=True) as s:
            row = s.get(WalletNonce, (wallet, chain_id))
            return None if row is None else row.next_nonce

    def ensure_nonce(self, wallet: str, chain_id: int, chain_nonce: int) -> None:
        """Start the wallet's nonce counter at the chain's nonce unless it already has one."""
        with self._transaction() as s:
            self._insert_ignore(s, WalletNonce, {"wallet": wallet, "chain_id": chain_id, "next_nonce": chain_nonce})

    def set_next_nonce(self, wallet: str, chain_id: int, value: int, *, reason: str) -> None:
        with self._transaction() as s:
            row = s.exec(
                select(WalletNonce)
                .where(WalletNonce.wallet == wallet, WalletNonce.chain_id == chain_id)
                .with_for_update()
            ).one_or_none()
            old = None if row is None else row.next_nonce
            if row is None:
                s.add(WalletNonce(wallet=wallet, chain_id=chain_id, next_nonce=value))
            else:
                row.next_nonce = value
            s.add(_event("nonce_set", wallet, chain_id, detail={"from": old, "to": value, "reason": reason}))

    # ---------------------------------------------------------------------------------------- reserve

    def reserve(
        self,
        *,
        wallet: str,
        chain_id: int,
        spend: Spend,
        limits: Sequence[Limit],
        sign: Callable[[int], SignedTx],
        selector: bytes | None,
        now: datetime,
        sent_block: int | None = None,
        expires_at: int | None = None,
    ) -> WalletTx:
        """Lock the nonce, book the spend against ``limits`` (``PolicyDenied`` if one would be exceeded), sign
        with the reserved nonce and journal the raw bytes, all in one database transaction."""
        day = utc_day(now)
        with self._transaction() as s:
            nonce_row = s.exec(
                select(WalletNonce)
                .where(WalletNonce.wallet == wallet, WalletNonce.chain_id == chain_id)
                .with_for_update()
            ).one_or_none()
            if nonce_row is None:
                raise JournalError(
                    f"wallet {wallet} has no nonce counter on chain {chain_id}", hint="ensure_nonce first"
                )
            amounts = {NATIVE: spend.native}
            if spend.token is not None and spend.token_amount:
                amounts[spend.token] = spend.token_amount
            self._book(s, wallet, chain_id, day, amounts, limits)
            signed = sign(nonce_row.next_nonce)
            if signed.nonce != nonce_row.next_nonce:
                raise JournalError(f"signed nonce {signed.nonce} differs from the reserved {nonce_row.next_nonce}")
            fields: dict[str, Any] = {
                "wallet": wallet,
                "chain_id": chain_id,
                "nonce": signed.nonce,
                "tx_hash": signed.tx_hash,
                "raw_tx": signed.raw,
                "to": signed.to,
                "selector": None if selector is None else "0x" + selector.hex(),
                "value": signed.value,
                "gas": signed.gas,
                "max_fee_per_gas": signed.fees.max_fee_per_gas,
                "spend_day": day,
                "spend_gas": spend.gas_wei,
                "spend_value": spend.value_wei,
                "token": spend.token,
                "token_amount": spend.token_amount,
                "sent_block": sent_block,
                "expires_at": expires_at,
            }
            # Identical fields at a nonce freed by a drop sign to identical bytes: revive that row, same hash.
            row = s.exec(select(WalletTx).where(WalletTx.tx_hash == signed.tx_hash)).one_or_none()
            if row is None:
                row = WalletTx(**fields)
            elif row.status == TxStatus.DROPPED:
                row.sqlmodel_update({**fields, "status": TxStatus.PENDING, "reason": None})
            else:
                raise JournalError(f"transaction {signed.tx_hash} is already journaled as {row.status}")
            s.add(row)
            nonce_row.next_nonce += 1
            s.add(nonce_row)
            s.add(
                _event(
                    "signed",
                    wallet,
                    chain_id,
                    tx_hash=signed.tx_hash,
                    detail={"nonce": signed.nonce, "to": signed.to, "value": str(signed.value), "gas": signed.gas},
                )
            )
        return row

    def _book(
        self, s: Session, wallet: str, chain_id: int, day: str, amounts: dict[str, int], limits: Sequence[Limit]
    ) -> None:
        """Add ``amounts`` (per asset) to the day's ledgers under ``limits``; ``PolicyDenied`` if a cap would be
        exceeded. A negative amount (a replacement that spends less) gives back and is never refused."""
        # lock order: the wallet's ledger rows before the fleet's (reserve and settle agree, so no deadlock)
        for limit in sorted(limits, key=lambda lim: (lim.scope == FLEET, lim.scope, lim.asset)):
            amount = amounts.get(limit.asset, 0)
            if amount == 0:
                continue
            ledger = self._ledger(s, limit.scope, chain_id, day, limit.asset)
            if amount > 0 and ledger.amount + amount > limit.cap:
                raise PolicyDenied(
                    f"{'the fleet' if limit.scope == FLEET else 'wallet ' + wallet} has spent "
                    f"{_amount(ledger.amount, limit.asset)} of its daily {_amount(limit.cap, limit.asset)} today "
                    f"({day} UTC); this transaction needs {_amount(amount, limit.asset)} more",
                    rule=limit.rule,
                    hint=f"wait for the next UTC day or raise wallets.policy.{limit.rule.replace('.', '_')}",
                )
            ledger.amount = max(0, ledger.amount + amount)
            s.add(ledger)

    def replace(
        self,
        tx_hash: str,
        *,
        spend: Spend,
        limits: Sequence[Limit],
        sign: Callable[[int], SignedTx],
        now: datetime,
        sent_block: int | None,
        selector: bytes | None,
        reason: str,
    ) -> WalletTx:
        """Supersede the pending attempt ``tx_hash`` with a new one at the same nonce (``sign(nonce)``), in one
        database transaction: the difference between the new attempt's spend and the old one's is booked on the
        old one's day against ``limits`` (``PolicyDenied`` if a cap would be exceeded: a replacement books its
        higher fee), the old row becomes ``replaced`` and the new one, with its raw bytes, ``pending``."""
        with self._transaction() as s:
            old = s.exec(select(WalletTx).where(WalletTx.tx_hash == tx_hash).with_for_update()).one_or_none()
            if old is None or old.status != TxStatus.PENDING:
                raise JournalError(
                    f"transaction {tx_hash} cannot be replaced: it is {'unknown' if old is None else old.status}",
                    hint="only the pending attempt of a nonce can be replaced",
                )
            delta = _spend_amounts(spend)
            for asset, amount in _row_amounts(old).items():
                delta[asset] = delta.get(asset, 0) - amount
            self._book(s, old.wallet, old.chain_id, old.spend_day, delta, limits)
            signed = sign(old.nonce)
            if signed.nonce != old.nonce:
                raise JournalError(f"a replacement signed nonce {signed.nonce}, not {old.nonce}")
            old.status = TxStatus.REPLACED
            old.reason = reason[:500]
            s.add(old)
            s.flush()  # the old attempt leaves the live-nonce index before the new one enters it
            row = WalletTx(
                wallet=old.wallet,
                chain_id=old.chain_id,
                nonce=old.nonce,
                tx_hash=signed.tx_hash,
                raw_tx=signed.raw,
                to=signed.to,
                selector=None if selector is None else "0x" + selector.hex(),
                value=signed.value,
                gas=signed.gas,
                max_fee_per_gas=signed.fees.max_fee_per_gas,
                spend_day=old.spend_day,
                spend_gas=spend.gas_wei,
                spend_value=spend.value_wei,
                token=spend.token,
                token_amount=spend.token_amount,
                attempt=old.attempt + 1,
                sent_block=sent_block,
                expires_at=old.expires_at,
                created_at=now,
            )
            s.add(row)
            s.add(
                _event(
                    "replaced",
                    old.wallet,
                    old.chain_id,
                    tx_hash=signed.tx_hash,
                    detail={
                        "nonce": old.nonce,
                        "replaces": old.tx_hash,
                        "attempt": row.attempt,
                        "max_fee_per_gas": str(signed.fees.max_fee_per_gas),
                        "max_priority_fee_per_gas": str(signed.fees.max_priority_fee_per_gas),
                        "reason": reason,
                    },
                )
            )
            return row

    def undo_replacement(self, tx_hash: str, *, reason: str) -> WalletTx:
        """The node refused the replacement ``tx_hash`` (it never held it): drop it and give its nonce back to
        the attempt it replaced, re-booking that one's spend. Returns the attempt that is pending again."""
        with self._transaction() as s:
            new = s.exec(select(WalletTx).where(WalletTx.tx_hash == tx_hash).with_for_update()).one()
            old = s.exec(
                select(WalletTx)
                .where(
                    WalletTx.wallet == new.wallet,
                    WalletTx.chain_id == new.chain_id,
                    WalletTx.nonce == new.nonce,
                    WalletTx.attempt == new.attempt - 1,
                )
                .with_for_update()
            ).one()
            if new.status != TxStatus.PENDING or old.status != TxStatus.REPLACED:
                return old
            delta = _row_amounts(old)
            for asset, amount in _row_amounts(new).items():
                delta[asset] = delta.get(asset, 0) - amount
            for scope in (new.wallet, FLEET):  # give back without a cap check: this only restores the old booking
                for asset, amount in delta.items():
                    if amount:
                        ledger = self._ledger(s, scope, new.chain_id, new.spend_day, asset)
                        ledger.amount = max(0, ledger.amount + amount)
                        s.add(ledger)
            new.status = TxStatus.DROPPED
            new.reason = reason[:500]
            s.add(new)
            s.flush()
            old.status = TxStatus.PENDING
            old.reason = None
            s.add(old)
            s.add(_event("replacement_refused", new.wallet, new.chain_id, tx_hash=tx_hash, detail={"reason": reason}))
            return old

    def _ledger(self, s: Session, scope: str, chain_id: int, day: str, asset: str) -> WalletSpend:
        """The day's ledger row, locked; created (at 0) only the first time, so a reserve usually reads it only."""
        query = (
            select(WalletSpend)
            .where(
                WalletSpend.scope == scope,
                WalletSpend.chain_id == chain_id,
                WalletSpend.day == day,
                WalletSpend.asset == asset,
            )
            .with_for_update()
        )
        row = s.exec(query).one_or_none()
        if row is None:
            # insert-or-ignore, then read: two workers creating the same day's row both end up locking it
            key = {"scope": scope, "chain_id": chain_id, "day": day, "asset": asset}
            self._insert_ignore(s, WalletSpend, {**key, "amount": 0})
            row = s.exec(query).one()
        return row

    def _refund(self, s: Session, tx: WalletTx, native: int, token_amount: int, limits_scopes: Sequence[str]) -> None:
        for scope in limits_scopes:
            for asset, amount in ((NATIVE, native), (tx.token, token_amount)):
                if asset is None or amount <= 0:
                    continue
                row = s.exec(
                    select(WalletSpend)
                    .where(
                        WalletSpend.scope == scope,
                        WalletSpend.chain_id == tx.chain_id,
                        WalletSpend.day == tx.spend_day,
                        WalletSpend.asset == asset,
                    )
                    .with_for_update()
                ).one_or_none()
                if row is not None:
                    row.amount = max(0, row.amount - amount)
                    s.add(row)

    # ------------------------------------------------------------------------------------------ settle

    def _pending_row(self, s: Session, tx_hash: str) -> WalletTx | None:
        row = s.exec(select(WalletTx).where(WalletTx.tx_hash == tx_hash).with_for_update()).one_or_none()
        if row is None:
            raise JournalError(f"transaction {tx_hash} is not in the journal")
        return row if row.status in (TxStatus.PENDING, TxStatus.DROPPED, TxStatus.REPLACED) else None

    def _take_over_nonce(self, s: Session, row: WalletTx) -> None:
        """An earlier attempt mined after all: it becomes the nonce's live row and takes over the booking of the
        attempt that was pending (which the chain can no longer mine: it is ``replaced`` now)."""
        live = s.exec(
            select(WalletTx)
            .where(
                WalletTx.wallet == row.wallet,
                WalletTx.chain_id == row.chain_id,
                WalletTx.nonce == row.nonce,
                col(WalletTx.status).not_in((TxStatus.DROPPED, TxStatus.REPLACED)),
            )
            .with_for_update()
        ).one_or_none()
        if live is not None:
            if live.status != TxStatus.PENDING:
                raise JournalError(
                    f"nonce {row.nonce} of {row.wallet} is recorded as {live.status} by {live.tx_hash}, but "
                    f"{row.tx_hash} mined at it",
                    hint="the chain reorganized: run recover() to settle the journal from the chain",
                )
            delta = _row_amounts(row)
            for asset, amount in _row_amounts(live).items():
                delta[asset] = delta.get(asset, 0) - amount
            # the ledgers hold the live row's booking: swap it for this row's, which the receipt then settles
            for scope in (row.wallet, FLEET):
                for asset, amount in delta.items():
                    if amount:
                        ledger = self._ledger(s, scope, row.chain_id, row.spend_day, asset)
                        ledger.amount = max(0, ledger.amount + amount)
                        s.add(ledger)
            live.status = TxStatus.REPLACED
            live.reason = f"attempt {row.attempt} ({row.tx_hash}) of nonce {row.nonce} mined instead"
            s.add(live)
            s.flush()
            s.add(
                _event(
                    "earlier_attempt_mined",
                    row.wallet,
                    row.chain_id,
                    tx_hash=row.tx_hash,
                    detail={"nonce": row.nonce, "superseded": live.tx_hash},
                )
            )
        row.status = TxStatus.PENDING

    def record_receipt(self, tx_hash: str, receipt: Receipt) -> WalletTx:
        """Mark a transaction mined (status 1) or reverted (0) and settle its spend to what it really cost:
        gas used at the effective price, plus value and token amounts only if it succeeded. Idempotent.

        Not durable: a power loss can only drop it back to a pending row, which ``recover()`` settles from the
        chain's receipt again (and the next ``reserve`` is durable, which makes this commit durable too)."""
        with self._transaction(durable=False) as s:
            row = self._pending_row(s, tx_hash)
            if row is None:
                return s.exec(select(WalletTx).where(WalletTx.tx_hash == tx_hash)).one()
            if row.status == TxStatus.REPLACED:
                self._take_over_nonce(s, row)
            was_dropped = row.status == TxStatus.DROPPED
            settled = row.gas_used is not None  # mined before a reorg removed it (``unmine``): booked already
            ok = receipt.status == 1
            row.status = TxStatus.MINED if ok else TxStatus.REVERTED
            row.mined_block = receipt.block_number
            row.gas_used = receipt.gas_used
            row.effective_gas_price = receipt.effective_gas_price
            # a dropped row's spend was refunded already (it mined after all: re-book nothing); a re-mined one's too
            if not was_dropped and not settled:
                refund = max(0, row.spend_gas - receipt.fee_wei) + (0 if ok else row.spend_value)
                self._refund(s, row, refund, 0 if ok else row.token_amount, (row.wallet, FLEET))
            s.add(row)
            s.add(
                _event(
                    "dropped_tx_mined" if was_dropped else row.status,
                    row.wallet,
                    row.chain_id,
                    tx_hash=tx_hash,
                    detail={"block": receipt.block_number, "gas_used": receipt.gas_used, "nonce": row.nonce},
                )
            )
            return row

    def settled_from(self, wallet: str, chain_id: int, nonce: int) -> list[WalletTx]:
        """Mined or reverted rows of ``wallet`` with a nonce of at least ``nonce``, oldest nonce first: after a
        reorg, the ones whose block the chain no longer has (``KeystoreWallet.recover``)."""
        with self._transaction(reads_only=True) as s:
            query = select(WalletTx).where(
                WalletTx.wallet == wallet,
                WalletTx.chain_id == chain_id,
                WalletTx.nonce >= nonce,
                col(WalletTx.status).in_((TxStatus.MINED, TxStatus.REVERTED)),
            )
            return list(s.exec(query.order_by(col(WalletTx.nonce))).all())

    def unmine(self, tx_hash: str, *, reason: str) -> WalletTx:
        """A reorg removed the block that mined ``tx_hash``: the row is pending again, to be re-broadcast as its
        same raw bytes. Its spend stays settled at what the receipt said (``gas_used`` is kept, so recording the
        receipt again books nothing twice). Audited as ``reorged``."""
        with self._transaction() as s:
            row = s.exec(select(WalletTx).where(WalletTx.tx_hash == tx_hash).with_for_update()).one()
            if row.status not in (TxStatus.MINED, TxStatus.REVERTED):
                return row
            s.add(
                _event(
                    "reorged",
                    row.wallet,
                    row.chain_id,
                    tx_hash=tx_hash,
                    detail={"nonce": row.nonce, "was": row.status, "block": row.mined_block, "reason": reason},
                )
            )
            row.status = TxStatus.PENDING
            row.reason = reason
            row.mined_block = None
            s.add(row)
            return row

    def mark_dropped(self, tx_hash: str, *, reason: str, release_nonce: bool) -> WalletTx:
        """The transaction will never mine (refused, or its nonce went to another transaction): refund its
        booked spend, free its nonce slot, and with ``release_nonce`` give the nonce back if no later one was
        reserved."""
        with self._transaction() as s:
            row = self._pending_row(s, tx_hash)
            if row is None or row.status != TxStatus.PENDING:
                return s.exec(select(WalletTx).where(WalletTx.tx_hash == tx_hash)).one()
            row.status = TxStatus.DROPPED
            row.reason = reason[:500]
            self._refund(s, row, row.spend_gas + row.spend_value, row.token_amount, (row.wallet, FLEET))
            s.add(row)
            if release_nonce:
                counter = s.exec(
                    select(WalletNonce)
                    .where(WalletNonce.wallet == row.wallet, WalletNonce.chain_id == row.chain_id)
                    .with_for_update()
                ).one()
                if counter.next_nonce == row.nonce + 1:
                    counter.next_nonce = row.nonce
                    s.add(counter)
            s.add(
                _event(
                    "dropped", row.wallet, row.chain_id, tx_hash=tx_hash, detail={"nonce": row.nonce, "reason": reason}
                )
            )
            return row

    # ------------------------------------------------------------------------------------------- reads

    def transactions(
        self, *, wallet: str | None = None, chain_id: int | None = None, status: str | None = None
    ) -> list[WalletTx]:
        """Journal rows, oldest nonce first."""
        with self._transaction(reads_only=True) as s:
            query = select(WalletTx)
            if wallet is not None:
                query = query.where(WalletTx.wallet == wallet)
            if chain_id is not None:
                query = query.where(WalletTx.chain_id == chain_id)
            if status is not None:
                query = query.where(WalletTx.status == status)
            return list(s.exec(query.order_by(col(WalletTx.nonce), col(WalletTx.id))).all())

    def live_at(self, wallet: str, chain_id: int, nonce: int) -> WalletTx | None:
        """The row holding ``nonce`` (not dropped or replaced), if any."""
        with self._transaction(reads_only=True) as s:
            return s.exec(
                select(WalletTx).where(
                    WalletTx.wallet == wallet,
                    WalletTx.chain_id == chain_id,
                    WalletTx.nonce == nonce,
                    col(WalletTx.status).not_in((TxStatus.DROPPED, TxStatus.REPLACED)),
                )
            ).one_or_none()

    def attempts(self, wallet: str, chain_id: int, nonce: int) -> list[WalletTx]:
        """Every attempt at ``nonce`` (dropped ones too), oldest first."""
        with self._transaction(reads_only=True) as s:
            return list(
                s.exec(
                    select(WalletTx)
                    .where(WalletTx.wallet == wallet, WalletTx.chain_id == chain_id, WalletTx.nonce == nonce)
                    .order_by(col(WalletTx.attempt), col(WalletTx.id))
                ).all()
            )

    def get(self, tx_hash: str) -> WalletTx:
        """The journal row of ``tx_hash``; ``JournalError`` if there is none."""
        with self._transaction(reads_only=True) as s:
            row = s.exec(select(WalletTx).where(WalletTx.tx_hash == tx_hash)).one_or_none()
            if row is None:
                raise JournalError(f"transaction {tx_hash} is not in the journal")
            return row

    def spent(self, *, scope: str, chain_id: int, day: date | str, asset: str = NATIVE) -> int:
        key = day if isinstance(day, str) else day.isoformat()
        with self._transaction(reads_only=True) as s:
            row = s.get(WalletSpend, (scope, chain_id, key, asset))
            return 0 if row is None else row.amount

    def audit_events(self, *, wallet: str | None = None, kind: str | None = None) -> list[AuditEvent]:
        with self._transaction(reads_only=True) as s:
            query = select(AuditEvent)
            if wallet is not None:
                query = query.where(AuditEvent.wallet == wallet)
            if kind is not None:
                query = query.where(AuditEvent.kind == kind)
            return list(s.exec(query.order_by(col(AuditEvent.id))).all())

    # ------------------------------------------------------------------------------------------- audit

    def audit(
        self,
        kind: str,
        *,
        wallet: str | None = None,
        chain_id: int | None = None,
        rule: str | None = None,
        tx_hash: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one audit event in its own transaction."""
        with self._transaction() as s:
            s.add(_event(kind, wallet, chain_id, rule=rule, tx_hash=tx_hash, detail=detail))


def _event(
    kind: str,
    wallet: str | None,
    chain_id: int | None,
    *,
    rule: str | None = None,
    tx_hash: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        kind=kind,
        wallet=wallet,
        chain_id=chain_id,
        rule=rule,
        tx_hash=tx_hash,
        detail=json.dumps(detail or {}, sort_keys=True, default=str),
    )


def _spend_amounts(spend: Spend) -> dict[str, int]:
    amounts = {NATIVE: spend.native}
    if spend.token is not None and spend.token_amount:
        amounts[spend.token] = spend.token_amount
    return amounts


def _row_amounts(row: WalletTx) -> dict[str, int]:
    """What a journal row has booked in the ledgers, per asset."""
    amounts = {NATIVE: row.spend_gas + row.spend_value}
    if row.token is not None and row.token_amount:
        amounts[row.token] = amounts.get(row.token, 0) + row.token_amount
    return amounts


def _amount(amount: int, asset: str) -> str:
    """An amount in a refusal people read: ETH for the native asset (the journal does not know a token's
    decimals, so token amounts stay in base units, with the token named)."""
    if asset == NATIVE:
        return f"{units(amount)} ETH"
    return f"{amount} base units of token {asset}"

"""The wallet branch of Deworker's exception tree (``WalletError`` and below), drawn with every other branch in
``orchestrator.domain.errors``.

Messages never contain key material, passphrases or raw signed transactions: they name the wallet by its name
and address, transactions by their hash.
"""

from __future__ import annotations

from orchestrator.domain.errors import DeworkerError


class WalletError(DeworkerError):
    """Something failed in a wallet: keys, the policy gate or the journal."""


class KeystoreError(WalletError):
    """A keystore file is missing, malformed, loosely permissioned, or would be overwritten."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not decrypt this keystore."""


class PolicyDenied(WalletError):
    """The policy gate refused a transaction. ``rule`` is the policy key that refused it (e.g. ``allow_list``,
    ``max_gas_per_tx``, ``daily_cap.wallet``); nothing was signed."""

    def __init__(self, message: str, *, rule: str, hint: str | None = None) -> None:
        super().__init__(f"policy refused the transaction [{rule}]: {message}", hint=hint)
        self.rule = rule


class JournalError(WalletError):
    """The transaction journal cannot be read or written, or holds something inconsistent."""


class NonceDrift(JournalError):
    """The chain consumed one of our nonces with another transaction: the journal was repaired, the
    transaction asked for was not sent. Sending again is safe (a new transaction, a new nonce)."""

    retryable = True


class TxUncertain(JournalError):
    """A signed, journaled transaction may or may not have reached the node (the node did not answer).

    Never send the same thing again: ``KeystoreWallet.recover()`` re-broadcasts the journaled bytes or finds
    the receipt. ``tx_hash`` is the journaled transaction.
    """

    def __init__(self, message: str, *, tx_hash: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.tx_hash = tx_hash


class TxExpired(JournalError):
    """A transaction's purpose expired (its ``expires_at`` passed on the chain's clock) before it mined: the wallet
    replaced it with a zero-value transfer to itself, so nothing of it ran and its nonce was freed, or refused to
    sign it at all. Not retryable: sending it again is pointless. ``tx_hash`` is the original attempt, if any."""

    def __init__(self, message: str, *, tx_hash: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.tx_hash = tx_hash

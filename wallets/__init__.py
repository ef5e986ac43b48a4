"""Agent wallets: one encrypted V3 keystore per agent, a default-deny policy gate, a crash-safe transaction
journal, sweeps and gas top-ups.

- ``keystore``: create/import/unlock keystores (scrypt, files 0600); the passphrase from an env var or a file.
- ``policy``: ``PolicyGate``, checked before anything is signed; ``PolicyDenied(rule=...)`` on refusal.
- ``journal``: SQLModel tables (nonces, signed transactions with raw bytes, daily spend, audit) in the
  orchestrator's database (Alembic revision 0003), and the one-transaction nonce reservation.
- ``wallet``: ``KeystoreWallet``, the ``Signer`` port through gate and journal; ``recover()`` and nonce repair.
- ``fleet``: ``WalletFleet``: balances, sweeps to the treasury, top-ups; ``cli``: ``deworker wallet ...``.

Adapter-level package: the domain core and the ports must not import it.
"""

"""``deworker wallet ...``: the Typer sub-app for agent wallets (registered by ``orchestrator.entry.cli.main``).

Commands build a ``WalletFleet`` through ``fleet_factory``: by default from the CLI's config and
``orchestrator.entry.bootstrap.Runtime`` (chain, board); tests and embedders swap it with ``use_fleet_factory``.
Errors are ``DeworkerError``s, printed as one line plus the fix by ``orchestrator.entry.cli.main.main``.

Keys come in (``new``, ``import``) and never go out: there is deliberately no export command, and no command
prints key material or passphrases (passphrases are read from environment variables, never from arguments).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from orchestrator.domain.errors import DeworkerError
from orchestrator.domain.money import units
from orchestrator.entry.cli.context import runtime
from orchestrator.entry.listing import JsonOption, WideOption, cell, emit_json, show, table
from orchestrator.entry.terminal import literal
from wallets.config import DEFAULT_PASSPHRASE_ENV
from wallets.errors import KeystoreError

if TYPE_CHECKING:  # imported lazily: `deworker --help` should not load web3 and SQLAlchemy
    from wallets.fleet import WalletFleet

console = Console()
wallet_app = typer.Typer(help="Agent wallets: encrypted keystores, a default-deny policy gate, a transaction journal.")


def _default_fleet() -> WalletFleet:
    return runtime().fleet


fleet_factory: Callable[[], WalletFleet] = _default_fleet


def use_fleet_factory(factory: Callable[[], WalletFleet]) -> None:
    """Build the commands' fleet with ``factory`` from now on."""
    global fleet_factory
    fleet_factory = factory


@wallet_app.command("new")
def wallet_new(name: Annotated[str, typer.Argument(help="Agent name: lowercase letters, digits, - and _.")]) -> None:
    """Generate a key for agent NAME and store it as an encrypted V3 keystore (mode 0600)."""
    entry = fleet_factory().create(name)
    console.print(f"created wallet [bold]{entry.name}[/] {entry.address} ({entry.path})")


@wallet_app.command("import")
def wallet_import(
    name: Annotated[str, typer.Argument(help="Agent name for the imported wallet (must not exist yet).")],
    keystore_file: Annotated[
        Path, typer.Argument(help="An existing V3 keystore file (geth, eth-account, MetaMask export).")
    ],
    passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--passphrase-env",
            help="Environment variable holding KEYSTORE_FILE's own passphrase "
            f"(default: the fleet's, wallets.passphrase_env, usually {DEFAULT_PASSPHRASE_ENV}).",
        ),
    ] = None,
) -> None:
    """Import an existing V3 keystore as wallet NAME: decrypted with its own passphrase, re-encrypted under the
    fleet's passphrase and scrypt cost, written 0600 into the keystore folder. Keys are never exported."""
    fleet = fleet_factory()
    env_var = passphrase_env or fleet.config.passphrase_env
    source_passphrase = os.environ.get(env_var)
    if not source_passphrase:
        raise KeystoreError(
            f"no passphrase for {keystore_file}: ${env_var} is not set",
            hint=f"export {env_var}=... (the passphrase the file was encrypted with), or pass --passphrase-env VAR",
        )
    entry = fleet.import_keystore(name, keystore_file, source_passphrase=source_passphrase)
    console.print(f"imported wallet [bold]{entry.name}[/] {entry.address} ({entry.path})")


@wallet_app.command("list")
def wallet_list(wide: WideOption = False, as_json: JsonOption = False) -> None:
    """A table of every wallet with its native (ETH) and token balances.

    Examples: `deworker wallet list`, `deworker wallet list --wide` (full addresses), `deworker wallet list
    --json` (balances in base units: wei)."""
    fleet = fleet_factory()
    tokens = fleet.config.tokens
    balances = fleet.balances()
    if as_json:
        emit_json(
            {
                "chain_id": fleet.chain.chain_id,
                "wallets": [
                    {
                        "name": bal.name,
                        "address": bal.address,
                        "native_wei": str(bal.native),
                        "tokens": {t.address: str(bal.tokens[t.symbol]) for t in tokens},
                    }
                    for bal in balances
                ],
            }
        )
        return
    out = table(
        f"Wallets on chain {fleet.chain.chain_id}",
        [("agent", "id"), ("address", "id"), ("ETH", "number"), *[(literal(t.symbol), "number") for t in tokens]],
        wide=wide,
    )
    for bal in balances:
        out.add_row(
            literal(bal.name),
            cell(bal.address, wide=wide),
            units(bal.native),
            *[units(bal.tokens[t.symbol], t.decimals) for t in tokens],
        )
    if not balances:
        out.caption = "no wallets yet: `deworker wallet new NAME`"
    show(console, out, wide=wide)


@wallet_app.command("sweep")
def wallet_sweep(
    name: Annotated[str | None, typer.Argument(help="Wallet to sweep (or --all).")] = None,
    all_wallets: Annotated[bool, typer.Option("--all", help="Sweep every wallet except the funder.")] = False,
    to: Annotated[
        str | None, typer.Option("--to", help="Destination (default: wallets.treasury); the policy must allow it.")
    ] = None,
) -> None:
    """Move rewards to the treasury: each configured token first, then native minus the gas it needs."""
    fleet = fleet_factory()
    if all_wallets == (name is not None):
        raise DeworkerError("give either a wallet NAME or --all", hint="e.g. `deworker wallet sweep alice`")
    decimals = {t.symbol: t.decimals for t in fleet.config.tokens}
    names = [e.name for e in fleet.entries() if e.name != fleet.config.funder] if all_wallets else [str(name)]
    for each in names:
        result = fleet.sweep(each, to=to)
        moved = (
            ", ".join(f"{units(amount, decimals[symbol])} {symbol}" for symbol, amount in result.swept_tokens.items())
            or "no tokens"
        )
        console.print(
            f"{each}: swept {literal(moved)} and {units(result.swept_native)} ETH in {len(result.receipts)} tx",
            highlight=False,
        )


@wallet_app.command("fund")
def wallet_fund(
    name: Annotated[str, typer.Argument(help="Wallet to fund.")],
    amount: Annotated[str, typer.Option("--amount", help="ETH to send from the funder wallet, e.g. 0.05.")],
) -> None:
    """Send gas money from the funder wallet (wallets.funder) to wallet NAME."""
    from orchestrator.entry.dao import to_base_units

    wei = to_base_units(amount, 18)
    receipt = fleet_factory().fund(name, wei)
    console.print(f"sent {amount} ETH to {name} (tx {receipt.tx_hash})")


@wallet_app.command("policy")
def wallet_policy() -> None:
    """Print the effective policy: chains, allowed calls, value rules, gas and daily caps."""
    console.print_json(data=fleet_factory().gate.describe())

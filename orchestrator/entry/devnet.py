"""``deworker devnet up|down|status|fund``: a local anvil node with the reward token and the board deployed, and
money for a fleet out of its dev accounts.

The node runs detached (it outlives the command) with ``--state`` so its chain survives ``down``/``up``; its pid,
URL and chain id go to ``<data_dir>/devnet.json`` and the deployment to ``<data_dir>/addresses.json``, where
``chain.kind: devnet`` finds them.

Roles of the dev accounts: #0 is the DAO (the default ``deworker dao`` signer while ``$DEWORKER_DAO_KEY`` is
unset; it holds the reward tokens), #1 is the devnet funder that ``fund`` sends ETH from. The fleet's own gas
top-ups come from the keystore wallet ``wallets.funder`` names (unlocked with ``$DEWORKER_WALLET_PASSPHRASE``,
``wallets.passphrase_env``): ``fund`` is how that wallet, and any agent's, gets its first ETH on a devnet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from orchestrator.adapters.chain import (
    ANVIL_CHAIN_ID,
    AnvilProcess,
    DetachedAnvil,
    EthTesterChain,
    RpcChain,
    anvil_dev_accounts,
)
from orchestrator.adapters.chain.base import checksum_address
from orchestrator.domain.errors import ConfigError, DeworkerError
from orchestrator.entry.bootstrap import Deployment, Runtime, devnet_pidfile
from orchestrator.entry.config import Config
from orchestrator.entry.dao import Dao
from orchestrator.ports.chain import Chain, Receipt
from wallets.errors import KeystoreError

#: Dev account indexes: the DAO's (the default DAO signer) and the devnet funder's (``fund`` sends ETH from it).
DAO_ACCOUNT = 0
FUNDER_ACCOUNT = 1
PLAIN_TRANSFER_GAS = 21_000
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True, slots=True)
class DevnetInfo:
    url: str
    chain_id: int
    block: int
    pid: int
    deployment: Deployment | None


def _runtime_on(config: Config, url: str) -> Runtime:
    return Runtime(config, node_url=url)


def up(config: Config, *, port: int = 8545) -> DevnetInfo:
    """Start the devnet (or reuse the running one) and make sure the contracts are deployed on it."""
    pid_file = devnet_pidfile(config)
    running = DetachedAnvil.read(pid_file)
    if running is None or not running.alive():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        node = AnvilProcess(
            port=port or None,
            state_file=config.data_dir / "devnet-state.json",
            log_file=config.data_dir / "devnet.log",
        )
        node.start(pid_file=pid_file)
        running = DetachedAnvil.read(pid_file)
        assert running is not None
    rt = _runtime_on(config, running.url)
    dep = rt.addresses.get(rt.chain.chain_id)
    if dep is None or not _has_code(rt, dep.board):
        token, board, block = Dao.deploy_configured(chain=rt.chain, sender=rt.dao_signer(), config=config.dao)
        dep = Deployment(chain_id=rt.chain.chain_id, token=token, board=board, block=block)
        rt.addresses.save(dep)
    return DevnetInfo(running.url, rt.chain.chain_id, rt.chain.block_number(), running.pid, dep)


def _has_code(rt: Runtime, address: str) -> bool:
    """A saved address may point at nothing if the devnet's state was deleted: then deploy again."""
    chain = rt.chain
    assert isinstance(chain, RpcChain)
    code = chain.request("eth_getCode", [address, "latest"])
    return isinstance(code, str) and code not in ("0x", "0x0")


def down(config: Config) -> bool:
    """Stop the devnet; True if one was running. Its chain state is kept for the next ``up``."""
    pid_file = devnet_pidfile(config)
    running = DetachedAnvil.read(pid_file)
    if running is None or not running.alive():
        pid_file.unlink(missing_ok=True)
        return False
    running.stop()
    pid_file.unlink(missing_ok=True)
    return True


def status(config: Config) -> DevnetInfo | None:
    running = DetachedAnvil.read(devnet_pidfile(config))
    if running is None or not running.alive():
        return None
    rt = _runtime_on(config, running.url)
    return DevnetInfo(
        running.url,
        rt.chain.chain_id,
        rt.chain.block_number(),
        running.pid,
        rt.addresses.get(rt.chain.chain_id),
    )


def print_info(console: Console, info: DevnetInfo) -> None:
    table = Table(title="devnet (anvil)", show_header=False)
    table.add_row("RPC URL", info.url)
    table.add_row("chain id", str(info.chain_id))
    table.add_row("block", str(info.block))
    table.add_row("pid", str(info.pid))
    if info.deployment:
        table.add_row("reward token", info.deployment.token)
        table.add_row("task board", info.deployment.board)
    console.print(table)
    accounts = Table(title="dev accounts (well-known anvil keys: never use them on a real chain)")
    accounts.add_column("#")
    accounts.add_column("address")
    accounts.add_column("role")
    roles = {
        DAO_ACCOUNT: "DAO: signs `deworker dao ...` while $DEWORKER_DAO_KEY is unset; holds the reward tokens",
        FUNDER_ACCOUNT: "devnet funder: `deworker devnet fund` sends ETH from it",
    }
    for i, acct in enumerate(anvil_dev_accounts(4)):
        accounts.add_row(str(i), acct.address, roles.get(i, "spare (a reviewer, a second DAO, tests)"))
    console.print(accounts)
    console.print("use it: [bold]export DEWORKER_CHAIN__KIND=devnet[/] (or chain.kind: devnet in config.yaml)")
    console.print(
        "fund a wallet: [bold]deworker devnet fund NAME|ADDRESS --eth 1 --tokens 100[/]; the fleet's gas top-ups "
        "come from the keystore wallet wallets.funder names (unlocked with $DEWORKER_WALLET_PASSPHRASE)"
    )


# ----------------------------------------------------------------------------------------------------- fund


def is_dev_chain(chain: Chain) -> bool:
    """The in-process chain, or anvil's chain id: the chains whose dev accounts ``fund`` may spend."""
    return isinstance(chain, EthTesterChain) or chain.chain_id == ANVIL_CHAIN_ID


def resolve_target(config: Config, target: str) -> tuple[str, str]:
    """``(label, address)`` for an address, an agent's name (``agents.profiles``: its wallet) or a wallet's
    name (a keystore in the fleet's folder)."""
    if _ADDRESS.match(target):
        address = checksum_address(target)
        return address, address
    wallet = {p.name: p.wallet for p in config.agents.profiles}.get(target, target)
    keystore = Runtime(config).keystore  # reads the file: nothing is decrypted, no chain is needed
    try:
        entry = keystore.entry(wallet)
    except KeystoreError as exc:
        agents = ", ".join(p.name for p in config.agents.profiles) or "none configured"
        raise ConfigError(
            f"{target!r} is neither an address, an agent (agents: {agents}) nor a wallet: {exc.message}",
            key="agents.profiles",
            hint="give a 0x address, or create the wallet first with `deworker wallet new NAME`",
        ) from None
    label = target if wallet == target else f"{target} (wallet {wallet})"
    return label, entry.address


@dataclass(frozen=True, slots=True)
class Funding:
    """What ``fund`` sent and the balances after it."""

    label: str
    address: str
    funder: str
    eth_wei: int
    eth_receipt: Receipt | None
    token: str | None
    tokens: int
    token_receipt: Receipt | None
    eth_balance: int
    token_balance: int | None


def fund(rt: Runtime, dao: Dao, target: str, *, eth_wei: int, tokens: int) -> Funding:
    """Send ``eth_wei`` from the devnet funder (dev account 1) and ``tokens`` base units of the reward token
    from the DAO to ``target``. Refuses a chain that is not a dev chain before anything is sent."""
    chain = rt.chain
    if not is_dev_chain(chain):
        raise DeworkerError(
            f"chain {chain.chain_id} is not a dev chain: `deworker devnet fund` only spends dev accounts "
            f"(anvil's chain {ANVIL_CHAIN_ID} or the in-process chain)",
            hint="on a real chain send ETH from your own wallet, or `deworker wallet fund NAME --amount X` from "
            "wallets.funder",
        )
    label, address = resolve_target(rt.config, target)
    funder = rt.sender(rt.dev_key(FUNDER_ACCOUNT))
    token = dao.token if tokens else None
    if token is not None:
        dao.check_can_pay(tokens, token=token)  # before the ETH moves: nothing half-done
    eth_receipt = None
    if eth_wei:
        eth_receipt = funder.send(address, value=eth_wei, gas=PLAIN_TRANSFER_GAS)
    token_receipt = dao.transfer(address, tokens, token=token) if token is not None else None
    shown_token = token if token is not None else dao.token_or_none()
    return Funding(
        label=label,
        address=address,
        funder=funder.address,
        eth_wei=eth_wei,
        eth_receipt=eth_receipt,
        token=shown_token,
        tokens=tokens,
        token_receipt=token_receipt,
        eth_balance=chain.balance(address),
        token_balance=dao.token_balance(address, shown_token) if shown_token else None,
    )

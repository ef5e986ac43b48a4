"""``deworker devnet up|down|status``: a local anvil node with the reward token and the board deployed.

The node runs detached (it outlives the command) with ``--state`` so its chain survives ``down``/``up``; its pid,
URL and chain id go to ``<data_dir>/devnet.json`` and the deployment to ``<data_dir>/addresses.json``, where
``chain.kind: devnet`` finds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from orchestrator.bootstrap import Deployment, Runtime, devnet_pidfile
from orchestrator.chain import AnvilProcess, DetachedAnvil, RpcChain, anvil_dev_accounts
from orchestrator.config import Config
from orchestrator.dao import Dao


@dataclass(frozen=True, slots=True)
class DevnetInfo:
    url: str
    chain_id: int
    block: int
    pid: int
    deployment: Deployment | None


def _runtime_on(config: Config, url: str) -> Runtime:
    rpc = RpcChain(
        url,
        timeout=config.chain.request_timeout,
        retries=config.chain.retries,
        max_log_range=config.chain.max_log_range,
    )
    return Runtime(config, chain_override=rpc)


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
    for i, acct in enumerate(anvil_dev_accounts(4)):
        accounts.add_row(str(i), acct.address, "DAO (default signer)" if i == 0 else "agent / reviewer")
    console.print(accounts)
    console.print("use it: [bold]export DEWORKER_CHAIN__KIND=devnet[/] (or chain.kind: devnet in config.yaml)")

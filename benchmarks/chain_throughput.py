"""Signed transactions per second: plain locally-signed web3 versus Deworker's ``TxSender``, on both chains.

Same workload on both sides: ``--n`` plain value transfers from one dev account, each signed locally with
every field filled by hand (nonce from a local counter, gas 21000, EIP-1559 fees fetched once, chain id), sent
raw and waited for until its receipt is in. Each measurement gets a fresh chain: a new in-process
eth-tester/py-evm chain, or a new anvil node started here. A few warm-up transactions are not timed.

    .venv/bin/python benchmarks/chain_throughput.py [--n 200]

Benchmark script: may import web3 (it is the baseline); nothing in ``orchestrator`` imports this.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from orchestrator.adapters.chain import AnvilNotFound, AnvilProcess, EthTesterChain, RpcChain, TxSender, find_anvil
from orchestrator.ports.chain import Chain

RECIPIENT = "0x000000000000000000000000000000000000dEaD"
WARMUP = 5
ETH_TESTER_KEY = (1).to_bytes(32, "big")  # eth-tester's first default account


@dataclass
class Result:
    chain: str
    side: str
    n: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.n / self.seconds


# ------------------------------------------------------------------------------------------------ workloads


def plain_web3(w3: Web3, key: bytes) -> Callable[[], None]:
    """One transfer per call with web3's own primitives; nonce, gas, fees and chain id filled by hand once."""
    account = Account.from_key(key)
    chain_id = w3.eth.chain_id
    nonce = int(w3.eth.get_transaction_count(account.address, "pending"))
    base_fee = int(w3.eth.get_block("latest")["baseFeePerGas"])
    priority = 10**9
    state: dict[str, int] = {"nonce": nonce}

    def one() -> None:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": chain_id,
            "nonce": state["nonce"],
            "to": RECIPIENT,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 2 * base_fee + priority,
            "maxPriorityFeePerGas": priority,
        }
        signed = w3.eth.account.sign_transaction(tx, key)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        state["nonce"] += 1

    return one


def ours(chain: Chain, key: bytes) -> Callable[[], None]:
    """One transfer per call through ``TxSender.send`` (local nonce, cached fees, explicit gas)."""
    sender = TxSender(chain, Account.from_key(key))

    def one() -> None:
        sender.send(RECIPIENT, value=1, gas=21_000)

    return one


# ------------------------------------------------------------------------------------------------ chains


def setups(anvil_binary: str | None) -> list[tuple[str, str, Callable[[], Any]]]:
    """(chain, side, factory) triples; a factory returns (send_one, cleanup)."""

    def eth_tester_plain() -> tuple[Callable[[], None], Callable[[], None]]:
        w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))
        return plain_web3(w3, ETH_TESTER_KEY), lambda: None

    def eth_tester_ours() -> tuple[Callable[[], None], Callable[[], None]]:
        chain = EthTesterChain()
        return ours(chain, chain.dev_accounts()[0].private_key), lambda: None

    result: list[tuple[str, str, Callable[[], Any]]] = [
        ("eth-tester (in-process)", "plain web3", eth_tester_plain),
        ("eth-tester (in-process)", "TxSender", eth_tester_ours),
    ]
    if anvil_binary is None:
        return result

    def anvil_plain() -> tuple[Callable[[], None], Callable[[], None]]:
        node = AnvilProcess(binary=anvil_binary).start()
        w3 = Web3(Web3.HTTPProvider(node.url))
        return plain_web3(w3, node.dev_accounts()[0].private_key), node.stop

    def anvil_ours() -> tuple[Callable[[], None], Callable[[], None]]:
        node = AnvilProcess(binary=anvil_binary).start()
        chain = RpcChain(node.url)

        def cleanup() -> None:
            chain.close()
            node.stop()

        return ours(chain, node.dev_accounts()[0].private_key), cleanup

    result += [("anvil (JSON-RPC)", "plain web3", anvil_plain), ("anvil (JSON-RPC)", "TxSender", anvil_ours)]
    return result


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=200, help="timed transactions per measurement (default 200)")
    args = parser.parse_args()
    console = Console()
    try:
        anvil_binary: str | None = str(find_anvil())
    except AnvilNotFound as exc:
        console.print(f"[yellow]anvil skipped:[/] {exc}")
        anvil_binary = None

    results: list[Result] = []
    plan = setups(anvil_binary)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        for chain_name, side, factory in plan:
            task = progress.add_task(f"{chain_name:<24} {side:<10}", total=args.n)
            send_one, cleanup = factory()
            try:
                for _ in range(WARMUP):
                    send_one()
                started = time.perf_counter()
                for _ in range(args.n):
                    send_one()
                    progress.advance(task)
                results.append(Result(chain_name, side, args.n, time.perf_counter() - started))
            finally:
                cleanup()

    table = Table(title=f"Signed value transfers with receipt, {args.n} per run (higher is better)")
    table.add_column("chain")
    table.add_column("plain web3 tx/s", justify="right")
    table.add_column("TxSender tx/s", justify="right")
    table.add_column("ours / plain", justify="right")
    for chain_name in dict.fromkeys(r.chain for r in results):
        by_side = {r.side: r for r in results if r.chain == chain_name}
        plain, mine = by_side["plain web3"], by_side["TxSender"]
        ratio = mine.per_second / plain.per_second
        style = "green" if ratio >= 0.9 else "red"
        table.add_row(chain_name, f"{plain.per_second:.1f}", f"{mine.per_second:.1f}", f"[{style}]{ratio:.2f}[/]")
    console.print(table)


if __name__ == "__main__":
    main()

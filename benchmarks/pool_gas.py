"""Gas of ProjectPool's ``finalize``, ``deposit_revenue`` and ``claim`` with 10 and with 1,000 share holders.

The pool's revenue accounting is an accumulator per token (no loop over holders), so the three costs must not grow
with the number of holders; this measures them on the in-process py-evm chain. Every holder gets its shares the
production way (a task posted by the pool, claimed and submitted by the holder, approved, finalized after the veto
window). Measured for each holder count in one run:

- ``finalize`` minting to a new holder (first shares: holder list, self-delegation) and to an existing one;
- ``deposit_revenue`` of the budget token (balance before/after, accumulator, carry);
- ``claim`` of a holder's revenue (first claim of that token).

    .venv/bin/python -m benchmarks.pool_gas [--holders 10 1000]

Benchmark script: may import web3; nothing in ``orchestrator`` imports this. Takes about 10 minutes for 1,000
holders (six transactions per holder to set up).
"""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from eth_account import Account
from rich.console import Console
from rich.table import Table
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from contracts.compile import load_artifact

SPEC = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
ARTIFACT = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
VETO = 3_600
GAS = 3_000_000


class Bench:
    def __init__(self) -> None:
        self.w3 = Web3(EthereumTesterProvider())
        self.tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        self.tester.time_travel(int(self.w3.eth.get_block("latest")["timestamp"]) + 10**6)
        a = list(self.w3.eth.accounts)
        self.deployer, self.owner, self.depositor = a[0], a[1], a[2]
        self.token = self.deploy("RewardToken", "Reward", "RWD", 18, 10**30)
        self.board = self.deploy("TaskBoard", 30 * 86_400)
        self.pool = self.deploy(
            "ProjectPool", "Bench", "B", self.board.address, self.token.address, self.owner, self.owner,
            "0x" + "00" * 20, VETO,
        )  # fmt: skip
        self.tx(self.token.functions.transfer(self.owner, 10**29), self.deployer)
        self.tx(self.token.functions.transfer(self.depositor, 10**29), self.deployer)
        self.tx(self.token.functions.approve(self.pool.address, 10**29), self.owner)
        self.tx(self.pool.functions.fund(10**27), self.owner)
        self.tx(self.token.functions.approve(self.pool.address, 10**29), self.depositor)
        self.holders: list[str] = []

    def deploy(self, name: str, *args: Any) -> Contract:
        art = load_artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self.w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact({"from": self.deployer}))
        contract = self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
        assert isinstance(contract, Contract)
        return contract

    def tx(self, fn: ContractFunction, sender: str) -> int:
        receipt = self.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": GAS}))
        assert receipt["status"] == 1
        return int(receipt["gasUsed"])

    def new_holder(self) -> str:
        key = "0x" + secrets.token_hex(32)
        address = self.tester.add_account(key)
        self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_transaction({"from": self.deployer, "to": address, "value": Web3.to_wei(1, "ether")})
        )
        assert Account.from_key(key).address == address
        return str(address)

    def contribute(self, holder: str, weight: int = 10) -> int:
        """Run one task through the pool for ``holder``; returns the gas of its ``finalize``."""
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        fn = self.pool.functions.post_task(SPEC, 1, now + 10 * 86_400, weight)
        task_id = int(fn.call({"from": self.owner}, block_identifier="pending"))
        self.tx(fn, self.owner)
        self.tx(self.board.functions.claim(task_id), holder)
        self.tx(self.board.functions.submit(task_id, ARTIFACT), holder)
        self.tx(self.pool.functions.approve_task(task_id), self.owner)
        veto_ends = self.pool.functions.task(task_id).call()[4]
        self.tester.time_travel(veto_ends)
        return self.tx(self.pool.functions.finalize(task_id), self.owner)

    def grow_to(self, count: int) -> None:
        while len(self.holders) < count:
            holder = self.new_holder()
            self.contribute(holder)
            self.holders.append(holder)

    def measure(self) -> dict[str, int]:
        gas = {"finalize (new holder)": self.contribute(self.new_holder())}
        gas["finalize (existing holder)"] = self.contribute(self.holders[0])
        gas["deposit_revenue"] = self.tx(
            self.pool.functions.deposit_revenue(self.token.address, 10**21), self.depositor
        )
        gas["claim"] = self.tx(self.pool.functions.claim(self.token.address), self.holders[-1])
        return gas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holders", type=int, nargs="+", default=[10, 1000])
    args = parser.parse_args(argv)
    console = Console()
    bench = Bench()
    results: dict[int, dict[str, int]] = {}
    for count in sorted(args.holders):
        with console.status(f"minting shares to {count} holders"):
            bench.grow_to(count)
            # a deposit before measuring, so finalize's mint also pays the per-token debt it does in production
            bench.tx(bench.pool.functions.deposit_revenue(bench.token.address, 10**20), bench.depositor)
            results[count] = bench.measure()
    table = Table(title="ProjectPool gas by number of holders")
    counts = sorted(results)
    table.add_column("call")
    for count in counts:
        table.add_column(f"{count} holders", justify="right")
    table.add_column(f"ratio {counts[-1]}/{counts[0]}", justify="right")
    for call in results[counts[0]]:
        row = [f"{results[c][call]:,}" for c in counts]
        table.add_row(call, *row, f"{results[counts[-1]][call] / results[counts[0]][call]:.3f}")
    console.print(table)


if __name__ == "__main__":
    main()

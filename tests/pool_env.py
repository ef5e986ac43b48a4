"""A ProjectPool on the in-process py-evm chain, for the pool's contract and property tests.

The pool, its TaskBoard and tokens are deployed from the committed artifacts in contracts/build; ``contribute``
runs a task through the whole flow (post, claim, submit, approve, veto window, finalize) so shares are only ever
minted the way production mints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.types import TxReceipt

from tests.test_contracts import TesterChain, deploy

TTL = 30 * 24 * 3_600  # the board's claim ttl: longer than any veto window here
VETO = 2 * 24 * 3_600
SUPPLY = 10**30
SPEC = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
ARTIFACT = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
ZERO = "0x0000000000000000000000000000000000000000"
POSTED, PENDING, FINALIZED, CANCELLED = 1, 2, 3, 4
POOL_TASK_FIELDS = ("weight", "reward", "status", "contributor", "veto_ends")


@dataclass
class PoolEnv(TesterChain):
    w3: Web3
    board: Contract
    token: Contract  # the budget token (RewardToken)
    fee_token: Contract  # NoReturnToken: no return value, optional fee on transfer
    pool: Contract
    deployer: str
    owner: str
    reviewer: str
    guardian: str
    agents: list[str]
    stranger: str
    depositor: str
    _task_seq: list[int] = field(default_factory=list)

    def balance(self, token: Contract, who: str) -> int:
        return int(token.functions.balanceOf(who).call())

    def pool_task(self, task_id: int) -> dict[str, Any]:
        return dict(zip(POOL_TASK_FIELDS, self.pool.functions.task(task_id).call(), strict=True))

    def board_status(self, task_id: int) -> int:
        return int(self.board.functions.task(task_id).call()[6])

    def fund(self, amount: int) -> TxReceipt:
        self.tx(self.token.functions.approve(self.pool.address, amount), self.owner)
        return self.tx(self.pool.functions.fund(amount), self.owner)

    def post(self, reward: int = 10**18, weight: int = 10, deadline: int | None = None) -> int:
        deadline = self.now() + 10 * VETO if deadline is None else deadline
        fn = self.pool.functions.post_task(SPEC, reward, deadline, weight)
        task_id = int(fn.call({"from": self.owner}, block_identifier="pending"))
        self.tx(fn, self.owner)
        return task_id

    def submitted(self, agent: str, reward: int = 10**18, weight: int = 10) -> int:
        task_id = self.post(reward, weight)
        self.tx(self.board.functions.claim(task_id), agent)
        self.tx(self.board.functions.submit(task_id, ARTIFACT), agent)
        return task_id

    def pending(self, agent: str, reward: int = 10**18, weight: int = 10) -> int:
        task_id = self.submitted(agent, reward, weight)
        self.tx(self.pool.functions.approve_task(task_id), self.reviewer)
        return task_id

    def contribute(self, agent: str, weight: int, reward: int = 1) -> TxReceipt:
        """Mint ``weight`` shares to ``agent`` the only way the pool mints: a task finalized after its window."""
        task_id = self.pending(agent, reward, weight)
        self.travel(self.pool_task(task_id)["veto_ends"])
        return self.tx(self.pool.functions.finalize(task_id), self.stranger)

    def deposit(self, token: Contract, amount: int) -> TxReceipt:
        self.tx(token.functions.approve(self.pool.address, amount), self.depositor)
        return self.tx(self.pool.functions.deposit_revenue(token.address, amount), self.depositor)

    def claimable(self, holder: str, token: Contract) -> int:
        return int(self.pool.functions.claimable(holder, token.address).call())


def make_pool_env() -> tuple[PoolEnv, Any]:
    """Deploy everything on a fresh chain; returns the env and a snapshot to revert to after each test."""
    w3 = Web3(EthereumTesterProvider())
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    # the chain clock well ahead of the wall clock: py-evm then stamps blocks parent + 1 (or the travel target)
    tester.time_travel(int(w3.eth.get_block("latest")["timestamp"]) + 10**6)
    a = list(w3.eth.accounts)
    deployer, owner, reviewer, guardian, stranger, depositor = a[0], a[1], a[2], a[3], a[4], a[5]
    agents = a[6:10]
    token = deploy(w3, "RewardToken", deployer, "Deworker Reward", "DWR", 18, SUPPLY)
    fee_token = deploy(w3, "NoReturnToken", deployer, 0)
    board = deploy(w3, "TaskBoard", deployer, TTL)
    pool = deploy(
        w3, "ProjectPool", deployer, "Atlas", "ATLAS", board.address, token.address, owner, reviewer, guardian, VETO
    )
    env = PoolEnv(w3, board, token, fee_token, pool, deployer, owner, reviewer, guardian, agents, stranger, depositor)
    env.tx(token.functions.transfer(owner, SUPPLY // 2), deployer)
    env.tx(token.functions.transfer(depositor, SUPPLY // 4), deployer)
    env.tx(fee_token.functions.mint(depositor, SUPPLY), deployer)
    env.tx(pool.functions.add_revenue_token(fee_token.address), owner)
    return env, tester.take_snapshot()

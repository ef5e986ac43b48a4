"""A whole Deworker world for the service tests (``test_service*.py`` and ``test_crash*.py`` import it; this module
defines no tests): a DAO with a deployed board and token on the chain under test, a SQLite store, a local CID
store, a wallet fleet (test-only low scrypt cost, funded from a dev account) and an ``Orchestrator`` over them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

from agents.config import AgentProfile
from agents.ports import AgentRunner
from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.onchain import OnchainTaskBoard
from orchestrator.adapters.chain import EthTesterChain, TxSender
from orchestrator.adapters.sql import Store
from orchestrator.app.matching import MatchingConfig
from orchestrator.app.service import FleetAgent, Orchestrator
from orchestrator.domain.money import TokenBook, TokenInfo
from orchestrator.domain.review import ReviewMode
from orchestrator.domain.specs import TaskSpec
from orchestrator.entry.config import DaoConfig
from orchestrator.entry.dao import Dao, to_base_units
from orchestrator.entry.demo import InstantAgent, deploy, make_fleet, open_store
from orchestrator.ports.chain import Chain
from wallets.fleet import WalletFleet
from wallets.keystore import Keystore

TEST_SCRYPT_N = 16
PASSPHRASE = "correct horse battery staple"
DEADLINE_SECONDS = 3 * 86_400


def spec(title: str, skills: Sequence[str] = ("writing",), filename: str = "out.md") -> TaskSpec:
    return TaskSpec(
        title=title,
        description=f"Write {filename} for: {title}.",
        deliverable={"kind": "markdown", "filename": filename},
        skills=list(skills),
        acceptance=["it exists"],
    )


def profile(name: str, skills: Sequence[str] = ("writing",)) -> AgentProfile:
    return AgentProfile(name=name, skills=list(skills), wallet=name)


@dataclass
class World:
    """Everything the service needs, on one chain, rooted in one folder."""

    chain: Chain
    root: Path
    dao: Dao
    start_block: int
    board: OnchainTaskBoard
    artifacts: LocalArtifactStore
    store: Store
    fleet: WalletFleet
    dao_signer: TxSender

    def now(self) -> int:
        """The chain's clock (the in-process chain's can differ from the wall clock)."""
        if isinstance(self.chain, EthTesterChain):
            return int(self.chain.latest_timestamp())
        return int(time.time())

    def post(self, title: str, reward: str = "10", *, skills: Sequence[str] = ("writing",)) -> int:
        reward_units = to_base_units(reward, self.dao.decimals())
        deadline = self.now() + DEADLINE_SECONDS
        return self.dao.post(spec(title, skills), reward=reward_units, deadline=deadline).task_id

    def approve_submitted(self) -> list[int]:
        """The DAO approves every submitted task; returns their board ids."""
        done = []
        for bt in self.dao.tasks():
            if bt.status_text == "SUBMITTED":
                self.dao.approve(int(bt.key))
                done.append(int(bt.key))
        return done

    def orchestrator(
        self,
        profiles: Sequence[AgentProfile],
        *,
        runners: Mapping[str, AgentRunner] | None = None,
        review_mode: ReviewMode = "auto",
        matching: MatchingConfig | None = None,
        **kwargs: object,
    ) -> Orchestrator:
        agents = [
            FleetAgent(
                profile=p,
                runner=(runners or {}).get(p.name) or InstantAgent(p.name),
                wallet=self.fleet.wallet(p.wallet),
            )
            for p in profiles
        ]
        return Orchestrator(
            boards=[self.board],
            agents=agents,
            artifacts=self.artifacts,
            store=self.store,
            chain=self.chain,
            workspace=self.root / "work",
            matching=matching or MatchingConfig(min_seconds_left=60),
            review_mode=review_mode,
            start_block=self.start_block,
            clock=self.now,
            **kwargs,  # type: ignore[arg-type]
        )


def build_world(
    chain: Chain,
    dev_keys: Sequence[bytes | str],
    root: Path,
    *,
    agents: Sequence[str] = ("ada", "grace"),
    deployment: tuple[str, str, int] | None = None,
) -> World:
    """Deploy (or, with ``deployment`` = (token, board, block), reuse) a board; open the stores; build the fleet."""
    artifacts = LocalArtifactStore(root / "artifacts")
    signer = TxSender(chain, Account.from_key(dev_keys[0]))
    if deployment is None:
        dao, block = deploy(chain, signer, artifacts, DaoConfig(claim_ttl=3600))
    else:
        token, board_address, block = deployment
        dao = Dao(chain=chain, signer=signer, store=artifacts, board=board_address, token=token)
    fleet = make_fleet(
        chain,
        board=dao.board_address,
        root=root,
        names=agents,
        funder=signer,
        passphrase=PASSPHRASE,
        keystore=Keystore(root / "keystores", scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True),
    )
    return World(
        chain=chain,
        root=root,
        dao=dao,
        start_block=block,
        board=OnchainTaskBoard(chain=chain, address=dao.board_address, store=artifacts),
        artifacts=artifacts,
        # as the bootstrap does: reasons name amounts in the DAO token's units (TokenBook.format)
        store=open_store(
            f"sqlite:///{root / 'deworker.db'}",
            amount_text=TokenBook([TokenInfo(address=dao.token, symbol=dao.symbol(), decimals=dao.decimals())]).format,
        ),
        fleet=fleet,
        dao_signer=signer,
    )

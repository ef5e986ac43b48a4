"""A whole Deworker world for the service tests (``test_service*.py`` and ``test_crash*.py`` import it; this module
defines no tests): a DAO with a deployed board and token on the chain under test, and a ``Runtime`` (the composition
root) over it — SQLite, a local CID store, a wallet fleet (test-only low scrypt cost, funded from a dev account) —
that builds the ``Orchestrator``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from agents.config import AgentProfile
from agents.ports import AgentRunner
from orchestrator.adapters.chain import TxSender
from orchestrator.adapters.sql import Store
from orchestrator.app.matching import MatchingConfig
from orchestrator.app.service import Boundary, Orchestrator
from orchestrator.domain.review import ReviewMode
from orchestrator.domain.specs import TaskSpec
from orchestrator.entry.bootstrap import Deployment, Runtime
from orchestrator.entry.config import ChainConfig, Config, DaoConfig
from orchestrator.entry.dao import Dao, to_base_units
from orchestrator.entry.demo import InstantAgent, deploy_board, fund_wallets
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.board import TaskBoard
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
    """Everything the service needs, on one chain, rooted in one folder: the ``Runtime`` builds it."""

    runtime: Runtime
    dao: Dao
    start_block: int
    dao_signer: TxSender

    @property
    def chain(self) -> Chain:
        return self.runtime.chain

    @property
    def root(self) -> Path:
        return self.runtime.config.data_dir

    @property
    def board(self) -> TaskBoard:
        return self.runtime.board

    @property
    def artifacts(self) -> ArtifactStore:
        return self.runtime.artifacts

    @property
    def store(self) -> Store:
        return self.runtime.db

    @property
    def fleet(self) -> WalletFleet:
        return self.runtime.fleet

    def now(self) -> int:
        """The chain's clock (the in-process chain's can differ from the wall clock)."""
        return self.runtime.now()

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

    def elsewhere(self, *, db_url: str | None = None, artifacts: ArtifactStore | None = None) -> World:
        """The same world as another process sees it: a new ``Runtime`` on the same chain, keystore and
        deployment, with another database or artifact store."""
        config = self.runtime.config
        if db_url is not None:
            config = config.model_copy(update={"db": config.db.model_copy(update={"url": db_url})})
        runtime = dataclasses.replace(
            self.runtime, config=config, artifacts_override=artifacts or self.runtime.artifacts_override
        )
        return dataclasses.replace(self, runtime=runtime)

    def orchestrator(
        self,
        profiles: Sequence[AgentProfile],
        *,
        runners: Mapping[str, AgentRunner] | None = None,
        review_mode: ReviewMode = "auto",
        matching: MatchingConfig | None = None,
        claim_margin: int | None = None,
        dao_resubmissions: int | None = None,
        boundary: Boundary | None = None,
    ) -> Orchestrator:
        """The runtime's service for ``profiles`` (instant agents unless ``runners`` names one), with the
        settings from config except those given here."""
        settings = self.runtime.settings(review_mode=review_mode)
        if matching is not None:
            settings = dataclasses.replace(settings, matching=matching)
        if claim_margin is not None:
            settings = dataclasses.replace(settings, claim_margin=claim_margin)
        if dao_resubmissions is not None:
            settings = dataclasses.replace(settings, dao_resubmissions=dao_resubmissions)
        agents = self.runtime.fleet_agents(
            profiles, runner=lambda p: (runners or {}).get(p.name) or InstantAgent(p.name)
        )
        return self.runtime.orchestrator(agents, settings=settings, boundary=boundary)


def build_world(
    chain: Chain,
    dev_keys: Sequence[bytes | str],
    root: Path,
    *,
    agents: Sequence[str] = ("ada", "grace"),
    deployment: tuple[str, str, int] | None = None,
    engine: Engine | None = None,
) -> World:
    """Deploy (or, with ``deployment`` = (token, board, block), reuse) a board; a ``Runtime`` over it with the
    tests' matching (deadlines a minute away still taken) and its database in ``root``, or ``engine``; the fleet's
    wallets created and funded."""
    config = Config(
        data_dir=root,
        chain=ChainConfig(receipt_timeout=60.0),
        dao=DaoConfig(claim_ttl=3600),
        matching=MatchingConfig(min_seconds_left=60),
    )
    rt = Runtime(
        config,
        chain_override=chain,
        engine_override=engine,
        keystore_override=Keystore(root / "keystores", scrypt_n=TEST_SCRYPT_N, weak_kdf_for_tests=True),
        passphrase_override=lambda: PASSPHRASE,
    )
    signer = rt.sender(dev_keys[0])
    if deployment is None:
        dao, block = deploy_board(rt, signer)
    else:
        token, board_address, block = deployment
        rt.addresses.save(Deployment(chain_id=chain.chain_id, token=token, board=board_address, block=block))
        dao = Dao(chain=chain, signer=signer, store=rt.artifacts, board=board_address, token=token)
    fund_wallets(rt.fleet, agents, funder=signer)
    return World(runtime=rt, dao=dao, start_block=block, dao_signer=signer)

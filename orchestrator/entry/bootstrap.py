"""The one place that builds the object graph from typed config: chain, artifact store, database, board, wallet
fleet, agents (profile -> runner + wallet), the service's settings, the ``Orchestrator`` and its scheduler.

The CLI, the web app, the demo, the service tests and the benchmarks all get their objects from a ``Runtime``;
nothing else constructs adapters (``tests/test_composition_root.py`` checks it for ``orchestrator/``). What a caller
needs differently (another chain, a cheap keystore, agents without a model, the chain's clock, a crash hook) is a
keyword argument of ``Runtime``, never its own wiring. Nothing is built at import time, and each part is built once
per ``Runtime`` on first use.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account import Account
from sqlalchemy.engine import Engine

from agents.config import AgentProfile
from agents.ports import AgentRunner
from orchestrator.adapters.artifacts import KuboRpc, LocalArtifactStore, RemoteArtifactStore, TrustlessGateways
from orchestrator.adapters.artifacts.kubo import authorization
from orchestrator.adapters.boards.onchain import OnchainTaskBoard
from orchestrator.adapters.boards.onchain import from_settings as taskboard_from_settings
from orchestrator.adapters.boards.registry import BoardSettings, build_board
from orchestrator.adapters.chain import (
    ANVIL_CHAIN_ID,
    DetachedAnvil,
    EthTesterChain,
    MultiRpcChain,
    RpcChain,
    TxSender,
    anvil_dev_accounts,
)
from orchestrator.adapters.sql import Store, make_engine, migrate, repositories
from orchestrator.adapters.sql.queries import Queries
from orchestrator.app.service import Backoff, Boundary, CycleReport, FleetAgent, Orchestrator, ServiceSettings
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.money import TokenBook, TokenInfo
from orchestrator.domain.review import ReviewMode
from orchestrator.domain.secrets import secret_from_env
from orchestrator.entry.config import Config
from orchestrator.entry.web.users import UserStore
from orchestrator.ports.artifacts import ArtifactStore
from orchestrator.ports.board import TaskBoard
from orchestrator.ports.chain import Chain
from orchestrator.ports.repos import Repositories
from wallets.fleet import WalletFleet
from wallets.journal import Journal
from wallets.keystore import Keystore, passphrase_from

if TYPE_CHECKING:
    from orchestrator.adapters.sql.endpoints import DbEndpointGate
    from orchestrator.app.revenue import RevenueCollector
    from orchestrator.entry.guard import ProcessGuard
    from orchestrator.entry.scheduler import ServiceRunner
    from orchestrator.ports.revenue import Holding, RevenueClaim
    from orchestrator.ports.wallet import AgentWallet

#: Makes the agent runner of one profile (``Runtime(runner_factory=...)``).
RunnerFactory = Callable[[AgentProfile], AgentRunner]


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where a DAO's token and board live on one chain."""

    chain_id: int
    token: str | None
    board: str
    block: int


class AddressBook:
    """``<data_dir>/addresses.json``: the deployments ``deworker dao deploy`` made, keyed by chain id."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data: dict[str, Any] = json.loads(self.path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"cannot read {self.path}: {exc}",
                hint=f"delete {self.path} and run `deworker dao deploy` again",
            ) from exc
        return data

    def get(self, chain_id: int) -> Deployment | None:
        entry = self._read().get(str(chain_id))
        if entry is None:
            return None
        return Deployment(chain_id=chain_id, token=entry["token"], board=entry["board"], block=entry["block"])

    def chain_ids(self) -> list[int]:
        """The chain ids with a saved deployment; none if the file is missing or unreadable (``get`` reports a
        broken file when a deployment is actually needed)."""
        try:
            data = self._read()
        except ConfigError:
            return []
        return [int(k) for k in data if k.isdigit()]

    def save(self, dep: Deployment) -> None:
        data = self._read()
        data[str(dep.chain_id)] = {"token": dep.token, "board": dep.board, "block": dep.block}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
        os.replace(tmp, self.path)


@dataclass
class Runtime:
    """Lazily built adapters for one process, and the service over them.

    The overrides, for the demo, the tests and the benchmarks (None: built from ``config``):
    ``chain_override`` a chain to use (a node the caller started, a counting proxy); ``node_url`` one JSON-RPC
    node to use instead of the ``chain`` section's (the devnet's, as ``deworker devnet`` starts it);
    ``engine_override`` the database (migrated by the caller) instead of ``db.url``'s; ``artifacts_override`` the
    artifact store; ``keystore_override`` the fleet's keystore (tests: a cheap KDF); ``passphrase_override`` where
    the fleet's passphrase comes from instead of ``wallets.passphrase_env``/``_file``; ``runner_factory`` what runs
    each agent profile instead of a LangChain agent on its model (then no embedded model is started);
    ``clock`` the service's clock (default: ``now``); ``boundary`` the service's step-boundary hook."""

    config: Config
    chain_override: Chain | None = None
    node_url: str | None = None
    engine_override: Engine | None = None
    artifacts_override: ArtifactStore | None = None
    keystore_override: Keystore | None = None
    passphrase_override: Callable[[], str] | None = None
    runner_factory: RunnerFactory | None = None
    clock: Callable[[], int] | None = None
    boundary: Boundary | None = None
    _senders: dict[str, TxSender] = field(default_factory=dict)

    @cached_property
    def chain(self) -> Chain:
        if self.chain_override is not None:
            return self.chain_override
        cfg = self.config.chain
        if self.node_url is not None:
            return RpcChain(
                self.node_url, timeout=cfg.request_timeout, retries=cfg.retries, max_log_range=cfg.max_log_range
            )
        chain: Chain
        if cfg.kind == "in-process":
            chain = EthTesterChain()
        else:
            # one adapter for one node or several: a devnet is a pool of one
            urls = [devnet_url(self.config)] if cfg.kind == "devnet" else cfg.urls
            chain = MultiRpcChain.from_urls(
                urls,
                timeout=cfg.request_timeout,
                fee_percentile=cfg.fee_percentile,
                max_log_range=cfg.max_log_range,
                expected_chain_id=cfg.chain_id,
                retries=cfg.retries,
                max_lag_blocks=cfg.max_lag_blocks,
                head_check_interval=cfg.head_check_interval,
                node_backoff=cfg.node_backoff,
                node_backoff_max=cfg.node_backoff_max,
            )
        if cfg.chain_id is not None and chain.chain_id != cfg.chain_id:
            raise ConfigError(
                f"the node reports chain id {chain.chain_id}, but chain.chain_id is {cfg.chain_id}",
                key="chain.chain_id",
                hint="point chain.rpc_url at the right network, or correct chain.chain_id",
            )
        return chain

    @cached_property
    def local_artifacts(self) -> LocalArtifactStore:
        """The blocks on this machine (``artifacts.path``): the whole store for ``kind: local``, the cache of
        every other kind, and what ``deworker artifact serve`` serves."""
        return LocalArtifactStore(self.config.artifacts_path)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The configured kind: ``local`` (this machine's store, reading what it lacks through
        ``artifacts.gateways``) or ``kubo`` (the same store as a cache, published to a Kubo node)."""
        if self.artifacts_override is not None:
            return self.artifacts_override
        cfg = self.config.artifacts
        gateways = None
        if cfg.gateways:
            gateways = TrustlessGateways(cfg.gateway_urls, timeout=cfg.gateway_timeout, max_bytes=cfg.max_fetch_bytes)
        kubo = None
        if cfg.kind == "kubo":
            kubo = KuboRpc(cfg.kubo.base_url, timeout=cfg.kubo.timeout, authorization=kubo_authorization(self.config))
        if kubo is None and gateways is None:
            return self.local_artifacts
        return RemoteArtifactStore(self.local_artifacts, kubo=kubo, gateways=gateways)

    @cached_property
    def engine(self) -> Engine:
        """The database engine, migrated to the newest schema on first use. One per process."""
        if self.engine_override is not None:
            return self.engine_override
        engine = make_engine(self.config.db_url)
        migrate(engine)
        return engine

    @cached_property
    def db(self) -> Store:
        """The orchestrator's database (``artifacts`` is the artifact store)."""
        return Store(self.engine, max_revisions=self.config.review.max_revisions, amount_text=self.token_book().format)

    @cached_property
    def repositories(self) -> Repositories:
        """The database as the service's repository ports (each returning the domain ``Task``), with the same
        settings as ``db``."""
        return repositories(
            self.engine, max_revisions=self.config.review.max_revisions, amount_text=self.token_book().format
        )

    @cached_property
    def queries(self) -> Queries:
        """The read-only views over the database (listings, sums in SQL)."""
        return Queries(self.engine)

    @cached_property
    def keystore(self) -> Keystore:
        """The fleet's keystore files (``wallets.keystore_dir``); reading addresses decrypts nothing."""
        if self.keystore_override is not None:
            return self.keystore_override
        return Keystore(self.config.wallets.keystore_path(self.config.data_dir))

    @cached_property
    def users(self) -> UserStore:
        """Reviewer accounts, sessions and API tokens of the review web app."""
        return UserStore(self.engine)

    @cached_property
    def addresses(self) -> AddressBook:
        return AddressBook(self.config.data_dir / "addresses.json")

    def token_book(self) -> TokenBook:
        """The tokens amounts are shown in: ``wallets.tokens`` first, then the DAO's reward token
        (``dao.token_symbol``, ``dao.token_decimals``) at ``dao.token`` and at every address ``deworker dao deploy``
        saved — for ``chain.chain_id`` only, when it is set. Reads files only: it never connects to the chain."""
        cfg = self.config
        tokens = [TokenInfo(address=t.address, symbol=t.symbol, decimals=t.decimals) for t in cfg.wallets.tokens]
        chain_ids = [cfg.chain.chain_id] if cfg.chain.chain_id is not None else self.addresses.chain_ids()
        dao_tokens = [cfg.dao.token] if cfg.dao.token else []
        for chain_id in chain_ids:
            dep = self.addresses.get(chain_id)
            if dep is not None and dep.token is not None:
                dao_tokens.append(dep.token)
        for address in dao_tokens:
            tokens.append(TokenInfo(address=address, symbol=cfg.dao.token_symbol, decimals=cfg.dao.token_decimals))
        return TokenBook(tokens)

    def deployment(self) -> Deployment:
        """The board and token for the connected chain: from config, else from the address book."""
        chain_id = self.chain.chain_id
        dep = self.addresses.get(chain_id)
        if self.config.dao_board.address is not None:
            # Only the board is configured (a machine that shares nothing but the chain): the token is dao.token,
            # or the address book's; None otherwise — each task carries its own token on the board.
            token = self.config.dao.token or (dep.token if dep else None)
            return Deployment(chain_id, token, self.config.dao_board.address, self.config.dao_board.start_block)
        if dep is None:
            raise ConfigError(
                f"no TaskBoard known on chain {chain_id}",
                key="boards[].address",
                hint="run `deworker dao deploy`, or set the first taskboard's address under boards: in config.yaml",
            )
        return dep

    @cached_property
    def boards(self) -> list[TaskBoard]:
        """Every board of ``boards:`` (or the deprecated ``board:``), built by its kind's adapter (the registry). A
        TaskBoard entry without an address is the deployment ``deworker dao deploy`` saved for this chain."""
        confirmations = self.config.chain.confirmations_for(self.chain.chain_id)
        built: list[TaskBoard] = []
        for entry in self.config.board_list:
            if entry is self.config.dao_board:
                built.append(self.board)
                continue
            if entry.address is None:
                raise ConfigError(
                    f"board {entry.name!r} has no address", key="boards[].address", hint="set its contract address"
                )
            settings = BoardSettings(
                name=entry.name,
                kind=entry.kind,
                address=entry.address,
                max_spec_bytes=entry.max_spec_bytes,
                confirmations=confirmations,
                options={
                    "abi": entry.abi,
                    "token": entry.token,
                    "start_block": entry.start_block,
                    "text_skills": entry.text_skills,
                    "bid_hosts": entry.bid_hosts,
                    # a job market lists only jobs assigned to the fleet (read per poll: wallets come and go)
                    "providers": lambda: [e.address for e in self.keystore.entries()],
                },
            )
            built.append(build_board(settings, chain=self.chain, artifacts=self.artifacts))
        return built

    @cached_property
    def board(self) -> OnchainTaskBoard:
        """The TaskBoard the DAO commands act on (``Config.dao_board``; also one of ``boards``)."""
        dep = self.deployment()
        entry = self.config.dao_board
        settings = BoardSettings(
            name=entry.name,
            kind="taskboard",
            address=dep.board,
            max_spec_bytes=entry.max_spec_bytes,
            confirmations=self.config.chain.confirmations_for(self.chain.chain_id),
        )
        return taskboard_from_settings(settings, self.chain, self.artifacts)

    def board_calls(self) -> dict[str, list[str]]:
        """Each board's contract and the functions its adapter calls there: the wallet policy's ``contract: board``
        allow-list. A TaskBoard not deployed on this chain yet contributes nothing (nothing is allowed there)."""
        calls: dict[str, list[str]] = {}
        try:
            boards = self.boards
        except ConfigError:
            return calls  # no board on this chain yet: `contract: board` rules allow nothing
        for board in boards:
            for call in board.calls():
                calls.setdefault(call.contract, []).append(call.signature)
        return calls

    @cached_property
    def fleet(self) -> WalletFleet:
        """The agents' wallets: keystores, the policy gate (bound to this chain's boards) and the journal."""
        cfg = self.config.wallets
        return WalletFleet(
            config=cfg,
            keystore=self.keystore,
            journal=Journal(self.engine),
            chain=self.chain,
            passphrase=self.passphrase_override
            or (lambda: passphrase_from(env_var=cfg.passphrase_env, file=cfg.passphrase_file)),
            boards=self.board_calls(),
            receipt_timeout=self.config.chain.receipt_timeout,
        )

    # ------------------------------------------------------------------------------------------- the service

    def now(self) -> int:
        """The service's clock by default: the in-process chain's (it can differ from the wall clock), else the
        wall clock in unix seconds."""
        chain = self.chain
        if isinstance(chain, EthTesterChain):
            return int(chain.latest_timestamp())
        return int(time.time())

    def settings(self, *, review_mode: ReviewMode | None = None) -> ServiceSettings:
        """The service's settings from config; ``review_mode`` overrides ``review.mode`` (``deworker run
        --review``). Connects to the chain: the start block is the board's deployment block."""
        cfg = self.config
        return ServiceSettings(
            matching=cfg.matching,
            prices=cfg.agents.prices,
            review_mode=review_mode or cfg.review.mode,
            start_block=self.deployment().block,
            claim_margin=cfg.service.claim_margin,
            dao_resubmissions=cfg.review.dao_resubmissions,
            backoff=Backoff(cfg.service.retry_initial_seconds, cfg.service.retry_max_seconds),
        )

    def fleet_agents(
        self, profiles: Sequence[AgentProfile], *, runner: RunnerFactory | None = None
    ) -> list[FleetAgent]:
        """``profiles`` as the service drives them: each with ``runner(profile)`` (default: the runtime's
        ``runner_factory``) and its wallet from the fleet."""
        make = runner or self.runner_factory
        if make is None:
            raise ConfigError("no agent runner: use Runtime.agents(), which starts the model the profiles need")
        return [FleetAgent(profile=p, runner=make(p), wallet=self.fleet.wallet(p.wallet)) for p in profiles]

    @contextmanager
    def agents(self, profiles: Sequence[AgentProfile] | None = None) -> Iterator[list[FleetAgent]]:
        """The agent profiles (default ``agents.profiles``) as ``FleetAgent``s, for as long as the block runs: a
        LangChain agent on each profile's model, starting the embedded model if a profile uses it (unless
        ``runner_factory`` was given); every wallet unlocked once, in parallel, before the first send."""
        profiles = list(self.config.agents.profiles if profiles is None else profiles)
        if not profiles:
            raise ConfigError(
                "no agents configured: agents.profiles is empty",
                key="agents.profiles",
                hint="add a profile (config.yaml shows an example), or try `deworker demo`",
            )
        with ExitStack() as stack:
            runner = self.runner_factory or self.runners(stack, profiles)
            self.fleet.unlock_all()
            yield self.fleet_agents(profiles, runner=runner)

    def runners(self, stack: ExitStack, profiles: Sequence[AgentProfile] | None = None) -> RunnerFactory:
        """LangChain agents on the models of ``profiles`` (default ``agents.profiles``), their daily spend and their
        endpoints' limits in the database; the embedded model is reused if ``deworker model serve --detach`` left it
        running, else started for as long as ``stack`` is open."""
        from agents.langchain_agent import agent_from_profile
        from agents.llm_server import LocalModelServer, detached_status
        from orchestrator.adapters.sql import DbSpendLedger

        profiles = self.config.agents.profiles if profiles is None else profiles
        local_url = local_model = None
        if any(p.model.base_url is None for p in profiles):
            running = detached_status(self.config.data_dir)
            if running is None:
                server = stack.enter_context(LocalModelServer(self.config.agents.local_model))
                local_url, local_model = server.base_url, server.model
            else:
                local_url, local_model = running.base_url, running.model
        ledger = DbSpendLedger(self.engine)  # daily budgets hold across restarts and processes
        agents_cfg, limits, gate = self.config.agents, self.config.endpoints, self.endpoint_gate

        def runner(profile: AgentProfile) -> AgentRunner:
            return agent_from_profile(
                profile,
                agents_cfg,
                local_base_url=local_url,
                local_model=local_model,
                ledger=ledger,
                gate=gate,
                limits=limits,
            )

        return runner

    def orchestrator(
        self,
        agents: Sequence[FleetAgent],
        *,
        settings: ServiceSettings | None = None,
        boundary: Boundary | None = None,
    ) -> Orchestrator:
        """The service over this runtime's boards, artifacts, database and chain, driving ``agents``, with
        ``settings`` (default: ``settings()``) and ``boundary`` (default: the runtime's)."""
        return Orchestrator(
            boards=self.boards,
            agents=agents,
            artifacts=self.artifacts,
            repos=self.repositories,
            chain=self.chain,
            workspace=self.config.data_dir / "work",
            settings=settings or self.settings(),
            clock=self.clock or self.now,
            boundary=boundary or self.boundary,
        )

    def scheduler(
        self, orchestrator: Orchestrator, *, on_cycle: Callable[[CycleReport], None] | None = None
    ) -> ServiceRunner:
        """The scheduler of ``orchestrator``'s cycles and steps (``service.*``), with the fleet's upkeep, guarded by
        the database's single-process lease (a second one on the same database is refused)."""
        from orchestrator.entry.scheduler import ServiceRunner  # APScheduler: only for the commands that run

        revenue = self.revenue_collector({a.name: a.wallet for a in orchestrator.agents.values()})

        def upkeep() -> object:
            done = self.fleet.upkeep()
            self.endpoint_gate.compact()  # yesterday's per-minute counts, folded: the table stays small
            if revenue is None:
                return done
            self.refresh_pool_holders()  # shares minted since the last run: their holders may claim now
            claims = revenue.collect()
            return f"{done}; revenue claimed: {len(claims)}" if claims else done

        return ServiceRunner(
            orchestrator, self.config.service, on_cycle=on_cycle, upkeep=upkeep, guard=self.process_guard
        )

    def refresh_pool_holders(self) -> None:
        """Tell the fleet's gate which wallets hold shares in which of ``revenue.pools`` (read from the pools), so
        those may ``claim`` there and nobody else."""
        from orchestrator.adapters.pools import ProjectPoolRevenue

        pools = ProjectPoolRevenue(chain=self.chain, pools=self.config.revenue.pools)
        self.fleet.set_pool_holders({pool: pools.holders(pool) for pool in pools.pools})

    def revenue_collector(self, wallets: Mapping[str, AgentWallet]) -> RevenueCollector | None:
        """The claimer of ``revenue.pools``' revenue for ``wallets`` (None without pools)."""
        from orchestrator.adapters.pools import ProjectPoolRevenue
        from orchestrator.app.revenue import RevenueCollector

        cfg = self.config.revenue
        if not cfg.pools:
            return None
        pools = ProjectPoolRevenue(chain=self.chain, pools=cfg.pools)
        return RevenueCollector(
            pools=pools,
            wallets=wallets,
            threshold=cfg.claim_threshold,
            record=self.record_revenue_claim,
            snapshot=self.record_holdings,
        )

    def record_revenue_claim(self, agent: str, claim: RevenueClaim) -> object:
        """Write one pool revenue claim of ``agent`` to the ledger (idempotent per transaction, pool and token)."""
        c = claim
        return self.db.record_revenue_claim(
            agent=agent, pool=c.pool, token=c.token, holder=c.holder, amount=c.amount, tx_hash=c.tx_hash,
            block_number=c.block_number,
        )  # fmt: skip

    def record_holdings(self, agent: str, holder: str, holdings: list[Holding]) -> None:
        """Replace ``agent``'s snapshot of its pool shares and still-claimable revenue in the ledger."""
        rows = [(h.pool, h.token, h.shares, h.claimable) for h in holdings]
        self.db.record_holdings(agent=agent, holder=holder, holdings=rows)

    @cached_property
    def endpoint_gate(self) -> DbEndpointGate:
        """Where agents wait for their model endpoint's limit (``endpoints:``), in the database: fleet-wide."""
        from orchestrator.adapters.sql.endpoints import DbEndpointGate

        return DbEndpointGate(self.engine)

    @cached_property
    def process_guard(self) -> ProcessGuard:
        """The single-process service's lease on the database (``service.lease_seconds``)."""
        from orchestrator.adapters.sql.leases import SqlLeases
        from orchestrator.entry.guard import ProcessGuard

        return ProcessGuard(SqlLeases(self.engine), ttl=self.config.service.lease_seconds)

    def sender(self, private_key: str | bytes) -> TxSender:
        """One ``TxSender`` per key per process, so local nonce tracking stays consistent."""
        account = Account.from_key(private_key)
        if account.address not in self._senders:
            self._senders[account.address] = TxSender(
                self.chain, account, receipt_timeout=self.config.chain.receipt_timeout
            )
        return self._senders[account.address]

    def dao_signer(self) -> TxSender:
        """The DAO's account: the key in ``$<dao.key_env>``, or on a dev chain its first dev account."""
        key = secret_from_env(self.config.dao.key_env)
        return self.sender(key if key is not None else self._dev_key(0))

    def dev_key(self, index: int) -> bytes:
        """A pre-funded dev account key (in-process chain or anvil only): for the demo and tests."""
        return self._dev_key(index)

    def _dev_key(self, index: int) -> bytes:
        chain = self.chain
        if isinstance(chain, EthTesterChain):
            return chain.dev_accounts()[index].private_key
        if chain.chain_id == ANVIL_CHAIN_ID:
            return anvil_dev_accounts(index + 1)[index].private_key
        raise ConfigError(
            f"${self.config.dao.key_env} is not set and chain {chain.chain_id} is not a dev chain",
            key="dao.key_env",
            hint=f"export {self.config.dao.key_env}=<the DAO account's private key> (never put it in config.yaml)",
        )


def kubo_authorization(config: Config, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The Authorization header for the Kubo RPC API, from the environment variable the config names."""
    cfg = config.artifacts.kubo
    for key, var in (("auth_header_env", cfg.auth_header_env), ("basic_auth_env", cfg.basic_auth_env)):
        if var is None:
            continue
        value = secret_from_env(var, environ=environ)
        if value is None:
            raise ConfigError(
                f"artifacts.kubo.{key} names ${var}, which is not set",
                key=f"artifacts.kubo.{key}",
                hint=f"export {var}=... (never put the secret in config.yaml), or remove artifacts.kubo.{key}",
            )
        if key == "basic_auth_env":
            if ":" not in value:
                raise ConfigError(
                    f"${var} (artifacts.kubo.basic_auth_env) must hold 'user:password'",
                    key="artifacts.kubo.basic_auth_env",
                    hint=f"export {var}=user:password",
                )
            return authorization(basic=value)
        return authorization(header=value)
    return None


def devnet_url(config: Config) -> str:
    """The URL of the anvil that `deworker devnet up` started for this data dir."""
    proc = DetachedAnvil.read(devnet_pidfile(config))
    if proc is None or not proc.alive():
        raise ConfigError(
            "chain.kind is 'devnet' but no devnet is running",
            key="chain.kind",
            hint="start one with `deworker devnet up`",
        )
    return proc.url


def devnet_pidfile(config: Config) -> Path:
    return config.data_dir / "devnet.json"

"""Typed configuration: ``config.yaml`` plus ``DEWORKER_*`` environment overrides, loaded once and passed down.

Secrets never live in ``config.yaml``: the file only names the environment variable that holds one
(e.g. ``dao.key_env``). A bad or unknown key raises ``ConfigError`` naming the dotted key, the file and line,
what was expected and how to fix it.

Environment overrides use ``DEWORKER_<SECTION>__<KEY>``, e.g. ``DEWORKER_CHAIN__RPC_URL=http://127.0.0.1:8545``.

Must not import any adapter: standard library, pydantic and PyYAML only.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from agents.config import AgentsConfig, EndpointLimit
from orchestrator.adapters.boards.registry import KINDS as BOARD_KINDS
from orchestrator.app.matching import MatchingConfig
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.review import ReviewMode
from orchestrator.entry.web.config import WebConfig
from wallets.config import WalletsConfig, unquoted_hex

ENV_PREFIX = "DEWORKER_"
DEFAULT_CONFIG_FILE = "config.yaml"
#: Environment variables that are not config overrides.
#: ``scheme://user:password@`` at the start of a URL: a secret that must not live in config.
_URL_WITH_PASSWORD = re.compile(r"^[A-Za-z0-9+.-]+://[^/@]*:[^/@]*@")
_NOT_OVERRIDES = {"DEWORKER_CONFIG"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: An address in config: ``0x`` and 40 hex digits, quoted or not.
ConfigAddress = Annotated[str, BeforeValidator(unquoted_hex), StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]


#: ``chain.confirmations`` when it is null, per chain id: how deep a block must be before a board event in it is
#: acted on. Dev chains mine only when a transaction arrives and never reorganize by themselves: 0 (with more, an
#: idle devnet would never show a new task). Ethereum and its testnets: 12 blocks (~2.5 minutes; reorgs deeper
#: than 2 blocks have not been seen since the merge, finality is 64). Rollups order transactions through a
#: sequencer, so their latest blocks reorganize only when the sequencer misbehaves: a few seconds' worth. Sidechains
#: with a history of deep reorgs (Polygon PoS: 157 blocks in 2023) get more. A chain not listed gets
#: ``SAFE_CONFIRMATIONS``.
CONFIRMATIONS_BY_CHAIN_ID: Mapping[int, int] = {
    31337: 0,  # anvil / hardhat
    1337: 0,  # geth --dev, ganache
    131277322940537: 0,  # eth-tester (the in-process py-evm chain)
    1: 12,  # Ethereum
    11155111: 12,  # Sepolia
    17000: 12,  # Holesky
    560048: 12,  # Hoodi
    10: 10,  # OP Mainnet (2 s blocks: 20 s)
    8453: 10,  # Base
    11155420: 10,  # OP Sepolia
    84532: 10,  # Base Sepolia
    42161: 20,  # Arbitrum One (0.25 s blocks: 5 s)
    42170: 20,  # Arbitrum Nova
    421614: 20,  # Arbitrum Sepolia
    324: 10,  # zkSync Era
    59144: 10,  # Linea
    534352: 10,  # Scroll
    100: 12,  # Gnosis
    56: 15,  # BNB Smart Chain
    43114: 1,  # Avalanche C-Chain (single-slot finality)
    137: 64,  # Polygon PoS (2 s blocks: about 2 minutes)
    80002: 64,  # Polygon Amoy
}
#: The default for a chain id not in ``CONFIRMATIONS_BY_CHAIN_ID``: Ethereum's, which is safe on any chain whose
#: blocks are at least as frequent (a slower chain only waits longer).
SAFE_CONFIRMATIONS = 12


def default_confirmations(chain_id: int) -> int:
    """``chain.confirmations`` for ``chain_id`` when the key is null (``CONFIRMATIONS_BY_CHAIN_ID``)."""
    return CONFIRMATIONS_BY_CHAIN_ID.get(chain_id, SAFE_CONFIRMATIONS)


class ChainConfig(_Section):
    kind: Literal["in-process", "devnet", "rpc"] = Field(
        default="in-process",
        description="'in-process': py-evm inside this process (gone when it exits); 'devnet': the anvil that "
        "`deworker devnet up` started; 'rpc': JSON-RPC nodes at rpc_urls (or the one at rpc_url)",
    )
    rpc_url: HttpUrl | None = Field(
        default=None,
        description="one JSON-RPC endpoint (kind 'rpc'); the same as rpc_urls with one entry; never set both",
    )
    rpc_urls: list[HttpUrl] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="JSON-RPC endpoints of one chain (kind 'rpc'), the preferred first: reads fail over to the "
        "next healthy, synced node; transactions go to every healthy node. In the environment: comma-separated",
    )
    chain_id: int | None = Field(default=None, ge=1, description="expected chain id; checked on connect")
    max_log_range: int = Field(default=2000, ge=1, le=1_000_000, description="blocks per eth_getLogs request")
    request_timeout: float = Field(default=10.0, gt=0, le=600, description="seconds per JSON-RPC request")
    retries: int = Field(default=5, ge=0, le=20, description="attempts for transient faults (connection, 429)")
    receipt_timeout: float = Field(default=120.0, gt=0, description="seconds to wait for a transaction receipt")
    fee_percentile: float = Field(
        default=50.0, ge=0, le=100, description="eth_feeHistory reward percentile the priority fee is taken from"
    )
    confirmations: int | None = Field(
        default=None,
        ge=0,
        le=1_000,
        description="blocks mined on top of a board event's block before it is acted on (new tasks, payouts); "
        "0 = the latest block; null = the default for the connected chain id (CONFIRMATIONS_BY_CHAIN_ID)",
    )
    max_lag_blocks: int = Field(
        default=5,
        ge=0,
        le=10_000,
        description="a node more than this many blocks behind the best head any node reported is not read from",
    )
    head_check_interval: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description="seconds between head checks (one eth_blockNumber per node); 0 = before every read",
    )
    node_backoff: float = Field(
        default=5.0, gt=0, le=3600, description="seconds a failed node is left alone before it is probed again"
    )
    node_backoff_max: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="longest pause for a node that keeps failing (the pause doubles per failure up to this)",
    )

    @field_validator("rpc_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        """``DEWORKER_CHAIN__RPC_URLS="http://a,http://b"``: a comma-separated string is a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _one_url_key(self) -> ChainConfig:
        if self.rpc_url is not None and self.rpc_urls is not None:
            raise ValueError("set chain.rpc_url or chain.rpc_urls, not both")
        if self.rpc_urls is not None and len(set(map(str, self.rpc_urls))) != len(self.rpc_urls):
            raise ValueError("chain.rpc_urls lists the same URL twice")
        if self.node_backoff_max < self.node_backoff:
            raise ValueError("chain.node_backoff_max must be >= chain.node_backoff")
        return self

    def confirmations_for(self, chain_id: int) -> int:
        """``confirmations`` when set, else the default for ``chain_id`` (``default_confirmations``); the
        in-process chain is a dev chain whatever its id."""
        if self.confirmations is not None:
            return self.confirmations
        return 0 if self.kind == "in-process" else default_confirmations(chain_id)

    @property
    def urls(self) -> list[str]:
        """The JSON-RPC endpoints, the preferred first (``rpc_url`` is a list of one)."""
        if self.rpc_urls is not None:
            return [str(url) for url in self.rpc_urls]
        return [str(self.rpc_url)] if self.rpc_url is not None else []


class BoardConfig(_Section):
    """One board the fleet works (an entry of ``boards:``)."""

    name: str = Field(default="main", min_length=1, max_length=64, description="label for this board")
    kind: str = Field(default="taskboard", description=f"the kind of board: {', '.join(sorted(BOARD_KINDS))}")
    address: ConfigAddress | None = Field(
        default=None,
        description="the board's contract address; null (taskboard) = the one `deworker dao deploy` saved",
    )
    start_block: int = Field(default=0, ge=0, description="first block to scan when no cursor is saved")
    max_spec_bytes: int = Field(default=262_144, ge=1024, le=10_485_760, description="larger specs are quarantined")
    abi: str | None = Field(
        default=None,
        description="kind erc8183: the ABI profile, 'erc8183-spec' (null: the same) or the path of an ABI JSON file",
    )
    token: ConfigAddress | None = Field(
        default=None, description="kind erc8183: the payment token; null = read from the market's token getter"
    )
    text_skills: list[str] = Field(
        default=["writing"],
        min_length=1,
        description="kind erc8183: the skills of a text task made from a job's plain-text description",
    )
    bid_hosts: list[str] = Field(
        default=[],
        description=(
            "kind erc8183: the hosts an open job's bid_endpoint may name (a task's text is untrusted: the fleet "
            "POSTs a signed bid to no other host); empty = never bid"
        ),
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in BOARD_KINDS:
            raise ValueError(f"unknown kind of board {kind!r}; known: {', '.join(sorted(BOARD_KINDS))}")
        return kind

    @model_validator(mode="after")
    def _market_keys_on_markets(self) -> BoardConfig:
        misplaced = [k for k in ("abi", "token") if getattr(self, k) is not None and self.kind != "erc8183"]
        misplaced += ["bid_hosts"] if self.bid_hosts and self.kind != "erc8183" else []
        if misplaced:
            verb = "is" if len(misplaced) == 1 else "are"
            raise ValueError(f"{' and '.join(misplaced)} {verb} for kind erc8183 only (this board is a {self.kind})")
        return self


_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"


def _plain_http_url(url: HttpUrl, *, what: str) -> str:
    """``url`` as a string without a trailing slash, refusing what must not be in it: a password or user
    (secrets come from the environment), a query or a fragment (paths are appended to it)."""
    if url.username or url.password:
        raise ValueError(f"{what} must not contain a user or password; name an environment variable instead")
    if url.query or url.fragment:
        raise ValueError(f"{what} must not have a query (?...) or a fragment (#...)")
    return str(url).rstrip("/")


class KuboConfig(_Section):
    """A Kubo node's RPC API (self-hosted, or a hosted pinning endpoint speaking the same API)."""

    url: HttpUrl = Field(
        default=HttpUrl("http://127.0.0.1:5001"),
        description="base URL of the Kubo RPC API (the part before /api/v0), e.g. http://127.0.0.1:5001",
    )
    timeout: float = Field(default=60.0, gt=0, le=3600, description="seconds per RPC request (connect, each read)")
    auth_header_env: str | None = Field(
        default=None,
        pattern=_ENV_NAME,
        description="environment variable holding a whole Authorization header value (e.g. 'Bearer ...')",
    )
    basic_auth_env: str | None = Field(
        default=None,
        pattern=_ENV_NAME,
        description="environment variable holding 'user:password' for HTTP Basic authentication",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: HttpUrl) -> HttpUrl:
        _plain_http_url(url, what="the Kubo RPC URL")
        return url

    @model_validator(mode="after")
    def _one_auth(self) -> KuboConfig:
        if self.auth_header_env and self.basic_auth_env:
            raise ValueError("set auth_header_env or basic_auth_env, not both")
        return self

    @property
    def base_url(self) -> str:
        return _plain_http_url(self.url, what="the Kubo RPC URL")


class ArtifactsConfig(_Section):
    kind: Literal["local", "kubo"] = Field(
        default="local",
        description="'local': the block store at path (plus reads through gateways); 'kubo': the same store as a "
        "cache, published to and read from a Kubo node's RPC API",
    )
    path: Path | None = Field(
        default=None,
        description="block store folder (the whole store, or every kind's cache); null = <data_dir>/artifacts",
    )
    gateways: list[HttpUrl] = Field(
        default_factory=list,
        max_length=32,
        description="IPFS trustless gateways read from, in order, for blocks not held locally, e.g. https://ipfs.io",
    )
    gateway_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="seconds a gateway may take to connect, answer, or send more bytes"
    )
    max_fetch_bytes: int = Field(
        default=1_073_741_824,
        ge=65_536,
        description="bytes one fetch of a DAG (or a block) may receive from one gateway; past it, the next is tried",
    )
    kubo: KuboConfig = KuboConfig()

    @field_validator("gateways", mode="before")
    @classmethod
    def _split_gateways(cls, value: object) -> object:
        # From the environment a list arrives as one string: "https://a, https://b".
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("gateways")
    @classmethod
    def _gateways(cls, urls: list[HttpUrl]) -> list[HttpUrl]:
        for number, url in enumerate(urls, 1):
            plain = _plain_http_url(url, what=f"gateway URL number {number}")
            if plain.lower().endswith("/ipfs"):
                raise ValueError(f"gateway URL {plain!r} must be the gateway's base URL, without /ipfs")
        return urls

    @property
    def gateway_urls(self) -> list[str]:
        return [str(url).rstrip("/") for url in self.gateways]


class DaoConfig(_Section):
    key_env: str = Field(
        default="DEWORKER_DAO_KEY",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable holding the DAO account's private key (dev chains: first dev account)",
    )
    token: ConfigAddress | None = Field(
        default=None,
        description="ERC-20 that `deworker dao post` escrows rewards in; null = the token `deworker dao deploy` "
        "saved for this board, else the token of the board's most recent task",
    )
    claim_ttl: int = Field(default=86_400, ge=60, description="seconds a claim lasts on a board this DAO deploys")
    token_name: str = Field(default="Deworker Reward", description="name of the token `deworker dao deploy` creates")
    token_symbol: str = Field(default="DWR", description="its symbol (shown amounts read the token contract)")
    token_decimals: int = Field(default=18, ge=0, le=36, description="its decimals")
    token_supply: int = Field(default=1_000_000, ge=0, description="whole tokens minted to the DAO on deploy")
    governor: ConfigAddress | None = Field(
        default=None,
        description="the DAO's OpenZeppelin Governor that `deworker dao propose|proposals|vote|queue|execute` act "
        "on; null = the one `deworker dao governor deploy` printed must be given with --governor",
    )


class RevenueConfig(_Section):
    pools: list[ConfigAddress] = Field(
        default_factory=list,
        description="project pools (ProjectPool contracts) whose revenue `deworker run` claims for the agents that "
        "hold shares in them",
    )
    claim_threshold: int = Field(
        default=1,
        ge=1,
        description="claim a token's revenue from a pool once an agent may claim at least this many base units",
    )


class DbConfig(_Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL: sqlite:///path or postgresql://user@host:5432/db; null = <data_dir>/deworker.db",
    )


#: How the review gate decides: a human in the review queue, always automatic, or automatic when the agent's
#: acceptance tests passed (a human otherwise).


class ReviewConfig(_Section):
    mode: ReviewMode = Field(default="auto_if_tests_pass", description="human | auto | auto_if_tests_pass")
    max_revisions: int = Field(
        default=3, ge=0, le=20, description="revisions per task (change requests and rejections)"
    )
    dao_resubmissions: int = Field(
        default=1, ge=0, le=5, description="times a submission the DAO rejected is revised and submitted again"
    )


class ServiceConfig(_Section):
    """The orchestrator service: scheduling and claim safety margins."""

    poll_interval: float = Field(default=5.0, gt=0, le=3600, description="seconds between board polls")
    reconcile_interval: float = Field(default=60.0, gt=0, description="seconds between database-vs-chain checks")
    misfire_grace: float = Field(default=30.0, gt=0, description="seconds a late scheduled run may still start")
    workers: int = Field(default=4, ge=1, le=64, description="threads running task steps (agent runs included)")
    agent_concurrency: int = Field(default=1, ge=1, le=16, description="task steps one agent runs at a time")
    claim_margin: int = Field(
        default=600, ge=0, description="release a claim whose TTL or deadline is this many seconds away, unsubmitted"
    )
    retry_initial_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="a step that failed with a passing fault waits this long first"
    )
    retry_max_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="the wait doubles after each such failure, up to this"
    )
    lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="the single-process service's lease on its database: renewed every third of this; a second "
        "`deworker run` is refused while it is alive, and may take over this long after the first one died",
    )


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(_Section):
    """The whole configuration. Build it with ``load_config``; never at import time."""

    data_dir: Path = Field(default=Path(".deworker"), description="state: addresses, artifacts, databases")
    chain: ChainConfig = ChainConfig()
    boards: list[BoardConfig] = Field(
        default_factory=lambda: [BoardConfig()], min_length=1, description="every board the fleet polls"
    )
    board: BoardConfig | None = Field(default=None, description="deprecated: one board; write it under boards:")
    artifacts: ArtifactsConfig = ArtifactsConfig()
    dao: DaoConfig = DaoConfig()
    revenue: RevenueConfig = RevenueConfig()
    agents: AgentsConfig = AgentsConfig()
    wallets: WalletsConfig = WalletsConfig()
    web: WebConfig = WebConfig()
    db: DbConfig = DbConfig()
    review: ReviewConfig = ReviewConfig()
    service: ServiceConfig = ServiceConfig()
    matching: MatchingConfig = MatchingConfig()
    logging: LoggingConfig = LoggingConfig()
    endpoints: list[EndpointLimit] = Field(
        default_factory=list,
        description="model endpoints' limits (concurrency, requests and tokens per minute), shared by the fleet",
    )

    @model_validator(mode="after")
    def _one_limit_per_endpoint(self) -> Config:
        seen = [(None if e.base_url is None else str(e.base_url), e.model) for e in self.endpoints]
        dupes = sorted(
            {f"{url or 'embedded'} {model or '(any model)'}" for url, model in seen if seen.count((url, model)) > 1}
        )
        if dupes:
            raise ValueError(f"endpoints lists one endpoint twice: {', '.join(dupes)}; keep one entry each")
        return self

    @model_validator(mode="after")
    def _one_way_to_name_boards(self) -> Config:
        if self.board is not None and "boards" in self.model_fields_set:
            raise ValueError("'board' and 'boards' are both set: move the 'board' section into the 'boards' list")
        names = [b.name for b in self.board_list]
        if len(set(names)) != len(names):
            raise ValueError(f"board names must be unique, got {names}")
        return self

    @property
    def board_list(self) -> list[BoardConfig]:
        """Every board the fleet polls (the deprecated single ``board:`` section counts as a one-entry list)."""
        return [self.board] if self.board is not None else self.boards

    @property
    def dao_board(self) -> BoardConfig:
        """The TaskBoard the DAO commands and the demo act on: the first ``kind: taskboard`` entry."""
        for board in self.board_list:
            if board.kind == "taskboard":
                return board
        return BoardConfig()

    def deprecations(self) -> list[str]:
        """One line per deprecated key in use, with what to write instead (``deworker config check`` prints them)."""
        if self.board is None:
            return []
        return [
            "config key 'board' is deprecated: write it as a one-entry list, 'boards: [{name: "
            f"{self.board.name}, kind: {self.board.kind}, ...}}]' (the keys inside stay the same)"
        ]

    @property
    def artifacts_path(self) -> Path:
        return self.artifacts.path or self.data_dir / "artifacts"

    @property
    def db_url(self) -> str:
        return self.db.url or f"sqlite:///{self.data_dir / 'deworker.db'}"


# ------------------------------------------------------------------------------------------------------ loading


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key, so errors can point at it."""

    lines: dict[tuple[int, Any], int]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in out:
            raise ConfigError(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1}",
                key=str(key),
                hint="remove one of the two entries",
            )
        out[key] = loader.construct_object(value_node)
        loader.lines[id(out), key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse ``path``; return the data and a map dotted-key -> line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}",
            source=str(path),
            hint="check the path in --config",
        ) from exc
    loader = _LineLoader(text)
    loader.lines = {}
    try:
        data = loader.get_single_data() or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(
            f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})",
            source=where,
            hint="fix the YAML syntax",
        ) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys", source=str(path))
    lines: dict[str, int] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            line = loader.lines.get((id(node), key))
            if line is not None:
                lines[dotted] = line
            if isinstance(value, dict):
                walk(value, dotted + ".")

    walk(data, "")
    return data, lines


def _env_overrides(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``DEWORKER_CHAIN__RPC_URL`` -> ``{"chain.rpc_url": (value, "DEWORKER_CHAIN__RPC_URL")}``.

    A variable with ``__`` is always an override (so a typo in it is reported, not ignored); one without is an
    override only when it names a top-level key (``DEWORKER_DATA_DIR``). Other ``DEWORKER_*`` variables, such as
    secrets (``DEWORKER_WALLET_PASSPHRASE``), are not config.
    """
    top_level = set(Config.model_fields)
    out: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_OVERRIDES:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if "." in dotted or dotted in top_level:
            out[dotted] = (value, name)
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


#: Keys still read but no longer documented in config.yaml (``Config.deprecations`` says what replaces them).
DEPRECATED_KEYS = frozenset({"board"})


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        if prefix + name in DEPRECATED_KEYS:
            continue
        keys.append(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(_known_keys(ann, f"{prefix}{name}."))
    return keys


def load_config(path: Path | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Load config from ``path`` (default: ``$DEWORKER_CONFIG`` or ``./config.yaml`` if present) and the environment.

    A missing default file is fine (embedded defaults); a missing explicit file is an error.
    """
    env = os.environ if environ is None else environ
    explicit = path is not None or "DEWORKER_CONFIG" in env
    cfg_path = Path(path or env.get("DEWORKER_CONFIG") or DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if cfg_path.exists() or explicit:
        data, lines = _read_yaml(cfg_path)
    sources = {key: f"{cfg_path}:{line}" for key, line in lines.items()}
    for dotted, (value, var) in _env_overrides(env).items():
        _set_dotted(data, dotted, value)
        sources[dotted] = f"environment variable {var}"
    chain = data.get("chain")
    if isinstance(chain, dict) and chain.get("rpc_url") is not None and chain.get("rpc_urls") is not None:
        both = ", ".join(f"{key} at {sources.get(key, str(cfg_path))}" for key in ("chain.rpc_url", "chain.rpc_urls"))
        raise ConfigError(
            f"config keys 'chain.rpc_url' and 'chain.rpc_urls' are both set ({both})",
            key="chain.rpc_urls",
            source=sources.get("chain.rpc_urls", str(cfg_path)),
            hint="keep one: chain.rpc_urls for several nodes (the preferred first), or chain.rpc_url for one",
        )
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, sources, cfg_path) from None
    if config.chain.kind == "rpc" and not config.chain.urls:
        where = sources.get("chain.kind", str(cfg_path))
        raise ConfigError(
            f"config key 'chain.rpc_url' is missing: chain.kind is 'rpc' ({where})",
            key="chain.rpc_url",
            source=where,
            hint="set chain.rpc_url to the node's URL, e.g. http://127.0.0.1:8545 (see `deworker devnet up`), "
            "or chain.rpc_urls to several nodes of the chain",
        )
    if config.db.url is not None and _URL_WITH_PASSWORD.match(config.db.url):
        where = sources.get("db.url", str(cfg_path))
        raise ConfigError(  # the URL itself is not echoed: it holds a secret
            f"config key 'db.url' contains a password ({where})",
            key="db.url",
            source=where,
            hint="remove it from the URL; psycopg reads the password from PGPASSWORD or ~/.pgpass",
        )
    return config


def _config_error(exc: ValidationError, sources: Mapping[str, str], cfg_path: Path) -> ConfigError:
    """Turn pydantic's first error into one line: key, where it was set, what was expected, the fix."""
    err = exc.errors()[0]
    dotted = ".".join(str(p) for p in err["loc"])
    children = [src for key, src in sources.items() if key.startswith(dotted + ".")]
    where = sources.get(dotted) or (children[0] if children else None) or sources.get(dotted.rsplit(".", 1)[0])
    where = where or str(cfg_path)
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(dotted, _known_keys(Config), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "remove it; see the comments in config.yaml for valid keys"
        return ConfigError(f"unknown config key {dotted!r} ({where})", key=dotted, source=where, hint=hint)
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, dict) or got is None or _holds_password(got) else f", got {got!r}"
    if where.startswith("environment variable"):
        hint = f"fix or unset {where.removeprefix('environment variable ')}"
    else:
        hint = f"set {dotted} in {cfg_path} to a valid value (config.yaml documents each key)"
    return ConfigError(
        f"config key {dotted or '(top level)'!r} ({where}): {msg}{shown}", key=dotted, source=where, hint=hint
    )


def _holds_password(value: object) -> bool:
    """Whether a rejected value is (or lists) a URL with a password in it: such a value is never echoed."""
    items = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(item, str) and _URL_WITH_PASSWORD.match(item) for item in items)

"""The ERC-8183 adapter's own behaviour (``orchestrator/adapters/boards/erc8183.py``), beyond the board port's
conformance suite (tests/test_port_boards.py runs that for this kind): discovery of direct-hire jobs from a cursor,
the three kinds of description, quarantine reasons, the deliverable rule, expiry, profiles. On the in-process chain
with our contract and, where the difference matters, the deliberately different AltAgenticCommerce.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_abi.abi import decode, encode

from contracts.compile import BUILD_DIR, load_artifact
from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.artifacts.unixfs import DAG_PB, RAW, Cid
from orchestrator.adapters.boards.abi import ContractABI
from orchestrator.adapters.boards.erc8183 import (
    SPEC_PROFILE,
    Erc8183Board,
    deliverable_cid,
    deliverable_of,
    load_profile,
    reason_text,
)
from orchestrator.adapters.boards.registry import BoardSettings, build_board
from orchestrator.adapters.chain import EthTesterChain
from orchestrator.domain.board import BoardPhase
from orchestrator.domain.errors import BoardError, ConfigError, SpecError, TaskNotFound
from orchestrator.domain.specs import DeliverableKind, dump_spec
from orchestrator.entry.dao import Dao, token_abi
from orchestrator.entry.market import JobRefused, Market, reason_bytes
from orchestrator.ports.chain import Signer
from tests.conftest import ETH_TESTER_CHAIN_ID, ChainEnv
from tests.test_board import REWARD, SPEC

ARTIFACT = str(Cid(DAG_PB, hashlib.sha256(b"an artifact").digest()))
DAY = 86_400


@dataclass
class Env:
    env: ChainEnv
    chain: EthTesterChain
    store: LocalArtifactStore
    market: Market
    board: Erc8183Board
    client: Signer
    agent: Signer
    stranger: Signer
    token: str
    start: str

    def now(self) -> int:
        return self.chain.block().timestamp

    def hire(self, spec: object = SPEC, *, provider: Signer | None = None, expires: int = DAY) -> str:
        provider = self.agent if provider is None else provider
        posted = self.market.post(
            spec,  # type: ignore[arg-type]
            provider=provider.address,
            evaluator=self.client.address,
            budget=REWARD,
            expired_at=self.now() + expires,
        )
        return str(posted.job_id)


def make_env(tmp_path: Path, *, alt: bool = False) -> Env:
    chain = EthTesterChain()
    env = ChainEnv("ethtester", chain, chain.dev_accounts(), ETH_TESTER_CHAIN_ID)
    store = LocalArtifactStore(tmp_path / "store")
    client = env.sender(0)
    token, _, _ = Dao.deploy(
        chain=chain, sender=client, name="Reward", symbol="RWD", decimals=18, supply=10_000, claim_ttl=3600
    )
    if alt:
        art = load_artifact("AltAgenticCommerce")
        args = ContractABI(art["abi"]).encode_constructor(token)
        address = env.sender(5).deploy(bytes.fromhex(art["bytecode"].removeprefix("0x")), args)
        profile = str(BUILD_DIR / "AltAgenticCommerce.json")
    else:
        address, _ = Market.deploy(chain=chain, sender=client, token=token, treasury=env.sender(5).address, fee_bp=100)
        profile = SPEC_PROFILE
    block = chain.block_number() + 1
    agent, stranger = env.sender(1), env.sender(3)
    settings = BoardSettings(
        name="acp", kind="erc8183", address=address, max_spec_bytes=262_144,
        options={"abi": profile, "start_block": block, "providers": [agent.address]},
    )  # fmt: skip
    board = build_board(settings, chain=chain, artifacts=store)
    assert isinstance(board, Erc8183Board)
    market = Market(chain=chain, signer=client, store=store, address=address, profile=load_profile(profile))
    return Env(env, chain, store, market, board, client, agent, stranger, token, str(block))


@pytest.fixture(params=["ours", "alt"])
def e(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    return make_env(tmp_path, alt=request.param == "alt")


@pytest.fixture
def ours(tmp_path: Path) -> Env:
    return make_env(tmp_path)


# ------------------------------------------------------------------------------------------------ discovery


def test_discovery_lists_our_direct_hires_and_open_jobs_once(e: Env) -> None:
    mine = e.hire()
    e.hire(provider=e.stranger)  # someone else's job: never listed
    open_job = e.market.post(SPEC, provider=None, evaluator=e.client.address, budget=REWARD, expired_at=e.now() + DAY)
    tasks, cursor = e.board.poll(e.start)
    assert [t.key for t in tasks] == [mine, str(open_job.job_id)]
    task, offered = tasks
    assert (task.phase, task.status_text, task.claimant) == (BoardPhase.HELD, "Funded", e.agent.address)
    assert task.reward == REWARD
    assert task.poster == e.client.address and task.reviewer == e.client.address and task.token == e.token
    assert task.spec_cid and e.board.read_spec(task) == SPEC
    # an open job (anyone may bid) is listed as open, with its budget (the most the client pays)
    assert (offered.phase, offered.status_text, offered.claimant, offered.reward) == (
        BoardPhase.OPEN,
        "Open",
        None,
        REWARD,
    )
    assert e.board.poll(cursor)[0] == []
    e.market.hire(open_job.job_id, e.agent.address, REWARD // 2)
    assert e.board.poll(cursor)[0] == []  # created once, listed once: its state is the getter's from now on
    hired = e.board.status(str(open_job.job_id))
    assert (hired.phase, hired.claimant, hired.reward) == (BoardPhase.HELD, e.agent.address, REWARD // 2)


def test_discovery_reads_bounded_ranges_and_respects_confirmations(ours: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    ranges: list[tuple[int, int]] = []
    real = ours.chain.get_logs

    def spy(**kw: object) -> object:
        ranges.append((int(kw["from_block"]), int(kw["to_block"])))  # type: ignore[call-overload]
        return real(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ours.chain, "get_logs", spy)
    key = ours.hire()
    deep = Erc8183Board(
        chain=ours.chain, address=ours.board.address, store=ours.store, confirmations=10,
        providers=[ours.agent.address], start_block=int(ours.start),
    )  # fmt: skip
    tasks, cursor = deep.poll(ours.start)
    assert tasks == [] and cursor == ours.start  # the creation is not 10 blocks deep: the cursor waits
    ours.env.mine(10)
    tasks, _ = deep.poll(cursor)
    assert [t.key for t in tasks] == [key]
    assert all(lo <= hi for lo, hi in ranges) and ranges[-1][0] == int(cursor)


def test_descriptions_ipfs_inline_and_plain_text(ours: Env) -> None:
    inline = ours.hire(dump_spec(SPEC).decode())
    brief = ours.hire("Translate the attached README to French.\nKeep the headings.")
    tasks = {t.key: t for t in ours.board.poll(ours.start)[0]}
    assert ours.board.read_spec(tasks[inline]) == SPEC and tasks[inline].spec_cid == ""
    text = ours.board.read_spec(tasks[brief])
    assert text.title == "Translate the attached README to French."
    assert text.description.endswith("Keep the headings.") and text.deliverable.kind is DeliverableKind.TEXT
    assert text.skills == ["writing"]
    # read_spec works without the poll's copy too (a restarted service reads the job again)
    assert ours.board.read_spec(ours.board.status(inline)) == SPEC


def test_malformed_descriptions_are_quarantined_with_a_reason(ours: Env) -> None:
    cases = {
        ours.hire('{"title": "no deliverable"}'): "",
        ours.hire("ipfs://not a cid!"): "invalid CID",
        ours.hire("ipfs://" + str(Cid(RAW, hashlib.sha256(b"nowhere").digest()))): "could not be fetched",
        ours.hire("   "): "description is empty",
        ours.hire("bad \x07 bell"): "not a usable brief",
    }
    tasks = {t.key: t for t in ours.board.poll(ours.start)[0]}
    assert set(tasks) == set(cases)
    for key, words in cases.items():
        with pytest.raises(SpecError) as info:
            ours.board.read_spec(tasks[key])
        assert words in info.value.message


def test_status_of_unknown_jobs(e: Env) -> None:
    e.hire()
    for key in ("0", "2", "99", "x", "", "1" * 80):
        with pytest.raises(TaskNotFound):
            e.board.status(key)


# ------------------------------------------------------------------------------------------------ delivery


def test_the_deliverable_rule(e: Env) -> None:
    key = e.hire()
    receipt = e.board.deliver(key, ARTIFACT, wallet=e.agent)
    (log,) = [entry for entry in receipt.logs if entry.topics[0] == e.board.abi.topic("JobSubmitted")]
    event = e.board.abi.decode_log(log)
    assert event is not None and event.args["deliverable"] == Cid.parse(ARTIFACT).digest == deliverable_of(ARTIFACT)
    assert deliverable_cid(event.args["deliverable"]) == ARTIFACT  # any evaluator rebuilds the CID from the digest
    tx = e.chain._tester.get_transaction_by_hash(receipt.tx_hash)  # the calldata an evaluator reads
    _, digest, opt = decode(["uint256", "bytes32", "bytes"], bytes.fromhex(tx["data"].removeprefix("0x"))[4:])
    assert digest == deliverable_of(ARTIFACT) and json.loads(opt) == {"cid": ARTIFACT}
    assert e.board.status(key).artifact_cid == ARTIFACT


def test_a_cid_without_a_sha2_256_digest_is_not_delivered(ours: Env) -> None:
    key = ours.hire()
    with pytest.raises(BoardError, match="sha2-256"):
        ours.board.deliver(key, "bafkqaaa", wallet=ours.agent)  # identity multihash
    assert ours.board.status(key).phase is BoardPhase.HELD


def test_expiry_ends_the_job(e: Env) -> None:
    key = e.hire(expires=600)
    e.board.deliver(key, ARTIFACT, wallet=e.agent)
    with pytest.raises(JobRefused, match="expires at"):
        e.market.refund(int(key))
    e.chain.time_travel(700)
    e.market.refund(int(key))
    after = e.board.status(key)
    assert (after.phase, after.status_text) == (BoardPhase.CLOSED, "Expired")
    assert e.board.rejection(key, since=e.start) is None  # expired, not rejected
    assert e.board.payouts(e.start)[0] == []


def test_rejection_reasons_are_text_or_hex(ours: Env) -> None:
    key = ours.hire()
    ours.market.reject(int(key), "x" * 40)  # longer than 32 bytes: its sha2-256
    rejection = ours.board.rejection(key, since=ours.start)
    assert rejection is not None and rejection.reason == "0x" + hashlib.sha256(b"x" * 40).hexdigest()
    assert reason_text(reason_bytes("short")) == "short" and reason_text(b"\0" * 32) == ""
    assert reason_text(b"\x07" + b"\0" * 31) == "0x07" + "00" * 31


def test_platform_fee_is_what_the_payout_reports(e: Env) -> None:
    key = e.hire()
    e.board.deliver(key, ARTIFACT, wallet=e.agent)
    before = e.market.chain.call(e.token, bytes.fromhex("70a08231") + bytes(12) + bytes.fromhex(e.agent.address[2:]))
    e.market.complete(int(key), "good")
    after = e.market.chain.call(e.token, bytes.fromhex("70a08231") + bytes(12) + bytes.fromhex(e.agent.address[2:]))
    (payout,) = e.board.payouts(e.start)[0]
    assert payout.amount == int.from_bytes(after, "big") - int.from_bytes(before, "big") < REWARD


# ------------------------------------------------------------------------------------------------ profiles


def test_the_spec_profile_is_a_subset_of_our_contract() -> None:
    ours = {json.dumps(e, sort_keys=True) for e in load_artifact("AgenticCommerce")["abi"]}
    doc = json.loads(
        (Path(__file__).parents[1] / "orchestrator/adapters/boards/profiles/erc8183-spec.json").read_text()
    )
    assert doc["token_getter"] == "paymentToken"
    assert {json.dumps(e, sort_keys=True) for e in doc["abi"]} <= ours


def test_bad_profiles_name_the_config_key(tmp_path: Path) -> None:
    for content, words in (
        (None, "could not be read"),
        ("not json", "could not be read"),
        ('{"x": 1}', "holds no ABI list"),
        (json.dumps(load_artifact("TaskBoard")["abi"]), "lacks JobCreated"),
    ):
        path = tmp_path / "p.json"
        if content is not None:
            path.write_text(content)
        with pytest.raises(ConfigError) as info:
            load_profile(str(path if content is not None else tmp_path / "missing.json"))
        assert info.value.key == "boards[].abi" and words in info.value.message
    assert load_profile(str(BUILD_DIR / "AltAgenticCommerce.json")).token_getter == "token"


def test_calls_are_submit_only(ours: Env) -> None:
    assert [(c.contract, c.signature) for c in ours.board.calls()] == [
        (ours.board.address, "submit(uint256,bytes32,bytes)")
    ]
    assert ours.board.capabilities.reopens_on_rejection is False


def test_a_job_the_getter_cannot_decode_is_quarantined_and_the_poll_goes_on(ours: Env) -> None:
    good = ours.hire()
    # a description that is not UTF-8 (an ABI string holds any bytes): sent as raw calldata, string = bytes
    abi, client = ours.board.abi, ours.client
    selector = abi.encode_call("createJob", ours.agent.address, client.address, 1, "", "0x" + "0" * 40)[:4]
    args = encode(
        ["address", "address", "uint256", "bytes", "address"],
        [ours.agent.address, client.address, ours.now() + DAY, b"\xff\xfe bad", "0x" + "0" * 40],
    )
    bad = ours.market._created_id(client.send(ours.board.address, selector + args))
    client.send(ours.board.address, abi.encode_call("setBudget", bad, REWARD, b""))
    client.send(ours.token, token_abi().encode_call("approve", ours.board.address, REWARD))
    client.send(ours.board.address, abi.encode_call("fund", bad, REWARD, b""))
    tasks = {t.key: t for t in ours.board.poll(ours.start)[0]}
    assert set(tasks) == {good, str(bad)}
    assert tasks[good].quarantine_reason is None
    assert "could not be decoded" in (tasks[str(bad)].quarantine_reason or "")


def test_the_submitted_cid_is_searched_once(ours: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    key = ours.hire()
    ours.board.deliver(key, ARTIFACT, wallet=ours.agent)
    searches = []
    real = ours.chain.get_logs
    monkeypatch.setattr(ours.chain, "get_logs", lambda **kw: searches.append(kw) or real(**kw))
    for _ in range(3):
        assert ours.board.status(key).artifact_cid == ARTIFACT
    assert len(searches) == 1


def test_market_keys_in_config(tmp_path: Path) -> None:
    from orchestrator.entry.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("boards:\n  - name: main\n    abi: erc8183-spec\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "abi is for kind erc8183 only" in info.value.message
    path.write_text(f"boards:\n  - name: acp\n    kind: erc8183\n    address: '0x{'1' * 40}'\n    abi: erc8183-spec\n")
    (board,) = load_config(path, environ={}).board_list
    assert (board.kind, board.abi, board.text_skills) == ("erc8183", "erc8183-spec", ["writing"])
    assert board.bid_hosts == []  # default: never bid (a job's bid endpoint is untrusted text)
    path.write_text("boards:\n  - name: main\n    bid_hosts: [bids.example.org]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "bid_hosts is for kind erc8183 only" in info.value.message

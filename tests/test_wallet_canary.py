"""Canary: a known key goes through a full claim/submit flow on each chain (in-process and anvil) with forced
signing, RPC, policy and passphrase errors: first by hand through the board, then through the real
``Orchestrator`` (poll, claim, produce, human review through the REST API, a submit whose broadcast fails, recovery,
payout) on the same migrated database. Then the review web app is started on that database and every page, JSON
endpoint and error response is fetched. Logs, every row of every table, every file written, exception texts (with
their chains and tracebacks), reprs, every HTTP body to and from the node and every web response are searched for
the key (hex with and without 0x, upper case, bytes repr, raw bytes): zero hits."""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from agents.config import AgentProfile
from orchestrator.adapters.artifacts import LocalArtifactStore
from orchestrator.adapters.boards.onchain import WORK_FUNCTIONS, OnchainTaskBoard
from orchestrator.adapters.chain import EthTesterChain, RpcChain
from orchestrator.adapters.sql import Store, repositories
from orchestrator.app.matching import MatchingConfig
from orchestrator.app.service import FleetAgent, Orchestrator, ServiceSettings
from orchestrator.domain.errors import ChainError, ChainUnavailable, DeworkerError
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import Deliverable, DeliverableKind, TaskSpec
from orchestrator.entry.dao import Dao
from orchestrator.entry.demo import InstantAgent
from orchestrator.entry.web.app import create_app
from orchestrator.entry.web.config import Role, WebConfig, WebSettings
from orchestrator.entry.web.users import UserStore
from tests.conftest import ChainEnv
from tests.test_wallet_fixtures import ETH, PASSPHRASE, TREASURY, FleetFactory, wallets_config
from tests.test_web_api import FAST_HASHER, PASSWORD, csrf_of, login

pytest_plugins = ["tests.test_wallet_fixtures"]

CANARY = bytes.fromhex("c0ffee" * 10 + "c0de")  # 32 recognizable bytes, a valid secp256k1 key
assert len(CANARY) == 32


def needles(key: bytes) -> list[bytes]:
    hexed = key.hex()
    return [
        hexed.encode(),
        ("0x" + hexed).encode(),
        hexed.upper().encode(),
        repr(key).encode(),
        key,
    ]


class FlakyChain:
    """The wallet's view of the chain, with broadcasts that can be made to fail: ``mode`` ``"down"`` (the node
    does not answer) or ``"refuse"`` (the node refuses the transaction). Everything else is the real chain."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.mode: str | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def send_raw(self, raw_tx: bytes) -> str:
        if self.mode == "down":
            raise ChainUnavailable("connection refused (forced)")
        if self.mode == "refuse":
            raise ChainError("the node refused the transaction (forced)")
        return self.real.send_raw(raw_tx)  # type: ignore[attr-defined, no-any-return]


class RecordingTransport(httpx.HTTPTransport):
    """A real HTTP transport that keeps every request and response body."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        response = super().handle_request(request)
        body = response.read()
        self.bodies.append(body)
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


def test_the_canary_key_never_leaks(
    chain_env: ChainEnv,
    sqlite_engine: Engine,
    make_fleet: FleetFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = RecordingTransport()
    env = chain_env
    if isinstance(chain_env.chain, RpcChain):
        env = ChainEnv("anvil", RpcChain(chain_env.chain.url, transport=recorder), chain_env.accounts, 31337)
    sender = env.sender(0)
    token, board_address, _ = Dao.deploy(
        chain=env.chain, sender=sender, name="R", symbol="R", decimals=18, supply=1000, claim_ttl=3600
    )
    store = LocalArtifactStore(tmp_path / "store")
    dao = Dao(chain=env.chain, signer=sender, store=store, board=board_address, token=token)
    cfg = wallets_config(
        tmp_path, allow=[{"contract": "board", "functions": ["claim(uint256)", "submit(uint256,string)"]}]
    )
    source = tmp_path / "canary-source.json"
    source.write_text(json.dumps(Account.encrypt(CANARY, PASSPHRASE, kdf="scrypt", iterations=16)))
    fleet = make_fleet(env, sqlite_engine, config=cfg, names=(), boards={board_address: list(WORK_FUNCTIONS)})
    entry = fleet.keystore.import_file("canary", source, PASSPHRASE)
    source.unlink()
    sender.send(entry.address, value=ETH)
    wallet = fleet.wallet("canary")
    assert wallet.address == Account.from_key(CANARY).address

    spec = TaskSpec(
        title="canary",
        description="d",
        deliverable=Deliverable(kind=DeliverableKind.TEXT, filename="a.txt"),
        skills=["writing"],
        acceptance=["ok"],
    )
    posted = dao.post(spec, reward=ETH, deadline=int(time.time()) + 86_400)
    board = OnchainTaskBoard(chain=env.chain, address=board_address, store=store)
    errors: list[BaseException] = []
    board.claim(str(posted.task_id), wallet=wallet)
    for action in (
        lambda: wallet.send(TREASURY, value=2**256, gas=21_000),  # forced signing error (value overflows)
        lambda: board.release(str(posted.task_id), wallet=wallet),  # policy refusal
        lambda: board.claim(str(posted.task_id), wallet=wallet),  # revert in the gas estimate (already claimed)
        lambda: fleet.keystore.__class__(fleet.keystore.directory, scrypt_n=16, weak_kdf_for_tests=True).unlock(
            "canary", "a wrong passphrase"
        ),
    ):
        try:
            action()
        except DeworkerError as exc:
            errors.append(exc)
    real_chain = wallet.chain

    class Unreachable:
        def __getattr__(self, name: str) -> object:
            return getattr(real_chain, name)

        def send_raw(self, raw_tx: bytes) -> str:
            raise ChainUnavailable("connection refused (forced)")

    wallet.chain = Unreachable()  # type: ignore[assignment]
    try:
        board.deliver(str(posted.task_id), store.put_bytes(b"canary work"), wallet=wallet)
    except DeworkerError as exc:
        errors.append(exc)
    wallet.chain = real_chain
    wallet.recover()
    assert len(errors) == 5
    dao.approve(posted.task_id)

    # ---- the same key through the real orchestrator, on the same (migrated) database
    db = Store(sqlite_engine)
    flaky = FlakyChain(real_chain)
    wallet.chain = flaky  # type: ignore[assignment]

    def now() -> int:
        chain = env.chain
        return int(chain.latest_timestamp()) if isinstance(chain, EthTesterChain) else int(time.time())

    def boundary(point: str) -> None:
        if point == "submitting":
            flaky.mode = "down"  # the submit's broadcast gets no answer: TxUncertain, recovered next cycle
        elif point == "claiming" and refuse_next_claim:
            flaky.mode = "refuse"

    refuse_next_claim = False
    orch = Orchestrator(
        boards=[board],
        agents=[
            FleetAgent(
                profile=AgentProfile(name="canary", skills=["writing"], wallet="canary"),
                runner=InstantAgent("canary"),
                wallet=wallet,
            )
        ],
        artifacts=store,
        repos=repositories(sqlite_engine),
        chain=env.chain,
        workspace=tmp_path / "work",
        settings=ServiceSettings(
            matching=MatchingConfig(min_seconds_left=60),
            review_mode="human",
            start_block=env.chain.block_number() + 1,
        ),
        clock=now,
        boundary=boundary,
    )
    orch.start()
    work = dao.post(spec, reward=10 * ETH, deadline=now() + 86_400).task_id
    orch.cycle()
    (task,) = db.tasks()
    assert task.state is TaskState.AWAITING_REVIEW and task.artifact_cid is not None, task.state_reason

    # ---- the review web app on the same database: a reviewer approves through the REST API
    users = UserStore(sqlite_engine, hasher=FAST_HASHER)
    users.add_user(name="carol", password=PASSWORD, role=Role.REVIEWER)
    token, _ = users.create_token(name="carol", label="canary")
    app = create_app(
        engine=sqlite_engine,
        store=db,
        artifacts=store,
        users=users,
        settings=WebSettings.resolve(WebConfig(), data_dir=tmp_path / "web"),
    )
    api = TestClient(app, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)
    responses: list[httpx.Response] = []
    responses.append(
        api.post(f"/api/tasks/{task.id}/review", json={"artifact_cid": "bafystale", "decision": "approve"})
    )
    assert responses[-1].status_code == 409
    responses.append(
        api.post(f"/api/tasks/{task.id}/review", json={"artifact_cid": task.artifact_cid, "decision": "approve"})
    )
    assert responses[-1].status_code == 201, responses[-1].text

    orch.cycle()  # submit: the broadcast fails, the transaction stays journaled
    assert db.get_task(task_id=task.id).state is TaskState.SUBMITTING
    flaky.mode = None
    orch.cycle()  # recover() re-broadcasts the same bytes
    assert db.get_task(task_id=task.id).state is TaskState.SUBMITTED
    dao.approve(work)
    refuse_next_claim = True  # the next task's claim is refused by the node: the task fails with the error text
    failing = dao.post(spec, reward=10 * ETH, deadline=now() + 86_400).task_id
    orch.cycle()
    flaky.mode = None
    by_board_id = {int(t.task_key): t for t in db.tasks()}
    assert by_board_id[work].state is TaskState.PAID
    assert by_board_id[failing].state is not TaskState.PAID and by_board_id[failing].state_reason
    wallet.chain = real_chain

    # ---- every page, JSON document and error response of the web app
    browser = TestClient(app, follow_redirects=False)
    responses.append(browser.get("/inbox"))  # not logged in: a redirect
    responses.append(login(browser, "nobody", "wrong password!"))
    assert login(browser, "carol").status_code == 303
    ids = [t.id for t in db.tasks()]
    cids = [a.cid for i in ids for a in db.artifacts(task_id=i)]
    pages = ["/", "/login", "/inbox", "/tasks", "/dashboard", "/docs", "/openapi.json"]
    pages += [f"/tasks/{i}" for i in ids] + [f"/review/{i}" for i in ids]
    pages += [f"/tasks/{task.id}/artifacts/{cid}/raw" for cid in cids]
    pages += ["/tasks/999999", "/review/999999", "/tasks/not-a-number", "/no/such/page"]
    pages += [f"/tasks/{task.id}/artifacts/bafynotthere/raw"]
    responses += [browser.get(page) for page in pages]
    inbox = browser.get("/inbox")
    responses.append(inbox)
    responses.append(  # a form post with a bad CSRF token, then one for a task not awaiting review
        browser.post(f"/review/{task.id}", data={"csrf_token": "forged", "artifact_cid": "x", "decision": "approve"})
    )
    responses.append(
        browser.post(
            f"/review/{task.id}",
            data={"csrf_token": csrf_of(inbox.text), "artifact_cid": str(task.artifact_cid), "decision": "approve"},
        )
    )
    api_paths = ["/api/me", "/api/reviews", "/api/tasks", "/api/fleet", *[f"/api/tasks/{i}" for i in ids]]
    api_paths += ["/api/tasks/999999", "/api/tasks?state=bogus", "/api/reviews?limit=0"]
    responses += [api.get(path) for path in api_paths]
    responses.append(TestClient(app).get("/api/tasks"))  # no token: 401
    responses.append(api.post(f"/api/tasks/{task.id}/review", content=b"{not json"))  # 422
    statuses = {r.status_code for r in responses}
    assert {200, 303, 401, 404, 409, 422} <= statuses, statuses
    assert any(str(Account.from_key(CANARY).address) in r.text for r in responses)  # the pages do show the wallet

    haystacks: list[bytes] = [r.getMessage().encode() for r in caplog.records]
    for response in responses:
        haystacks.append(response.content)
        haystacks.append(repr(dict(response.headers)).encode())
    haystacks += ["".join(traceback.format_exception(e)).encode() for e in errors]
    haystacks += [repr(e).encode() for e in errors]
    haystacks += [
        repr(x).encode() for x in (wallet, fleet, fleet.keystore, fleet.journal, *fleet.journal.transactions())
    ]
    tables = inspect(sqlite_engine).get_table_names()
    assert {"wallet_tx", "wallet_audit", "task", "task_event", "run", "cost", "review"} <= set(tables)
    with sqlite_engine.connect() as conn:
        for table in tables:
            for row in conn.execute(text(f'select * from "{table}"')):
                haystacks.append(repr(tuple(row)).encode())
                haystacks += [bytes(v) for v in row if isinstance(v, bytes | memoryview)]
    haystacks += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    haystacks += recorder.bodies
    if isinstance(env.chain, RpcChain):
        assert len(recorder.bodies) > 20
    leaks = [(i, n) for i, hay in enumerate(haystacks) for n in needles(CANARY) if n in hay]
    assert leaks == []

"""Canary: a known key goes through a full claim/submit flow with forced signing, RPC, policy and passphrase
errors; then logs, every database row, every file written, exception texts (with their chains and tracebacks),
reprs and every HTTP body to and from the node are searched for the key: zero hits."""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from sqlalchemy import text
from sqlalchemy.engine import Engine

from orchestrator.artifacts import LocalArtifactStore
from orchestrator.boards.onchain import OnchainTaskBoard
from orchestrator.chain import RpcChain
from orchestrator.dao import Dao
from orchestrator.domain import Deliverable, DeliverableKind, TaskSpec
from orchestrator.errors import ChainUnavailable, DeworkerError
from tests.conftest import ChainEnv
from tests.test_wallet_fixtures import ETH, PASSPHRASE, TREASURY, FleetFactory, wallets_config

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
    fleet = make_fleet(env, sqlite_engine, config=cfg, names=(), board=board_address)
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
    board.claim(posted.task_id, wallet=wallet)
    for action in (
        lambda: wallet.send(TREASURY, value=2**256, gas=21_000),  # forced signing error (value overflows)
        lambda: board.release(posted.task_id, wallet=wallet),  # policy refusal
        lambda: board.claim(posted.task_id, wallet=wallet),  # revert in the gas estimate (already claimed)
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
        board.submit(posted.task_id, store.put_bytes(b"canary work"), wallet=wallet)
    except DeworkerError as exc:
        errors.append(exc)
    wallet.chain = real_chain
    wallet.recover()
    assert len(errors) == 5
    dao.approve(posted.task_id)

    haystacks: list[bytes] = [r.getMessage().encode() for r in caplog.records]
    haystacks += ["".join(traceback.format_exception(e)).encode() for e in errors]
    haystacks += [repr(e).encode() for e in errors]
    haystacks += [
        repr(x).encode() for x in (wallet, fleet, fleet.keystore, fleet.journal, *fleet.journal.transactions())
    ]
    with sqlite_engine.connect() as conn:
        for table in ("wallet_tx", "wallet_nonce", "wallet_spend", "wallet_audit"):
            for row in conn.execute(text(f"select * from {table}")):
                haystacks.append(repr(tuple(row)).encode())
                haystacks += [bytes(v) for v in row if isinstance(v, bytes | memoryview)]
    haystacks += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    haystacks += recorder.bodies
    if isinstance(env.chain, RpcChain):
        assert len(recorder.bodies) > 20
    leaks = [(i, n) for i, hay in enumerate(haystacks) for n in needles(CANARY) if n in hay]
    assert leaks == []

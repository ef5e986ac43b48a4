"""The policy gate: default deny (property-tested), value, gas, ERC-20 recipients and caps, mainnet, and daily
spend caps that hold across a restart, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_abi.abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from orchestrator.adapters.chain import EthTesterChain
from tests.conftest import ETH_TESTER_CHAIN_ID, ChainEnv
from tests.test_wallet_fixtures import TREASURY, FleetFactory, wallets_config
from wallets.config import MAINNET_CHAIN_IDS, PolicyConfig
from wallets.errors import PolicyDenied
from wallets.policy import APPROVE, TRANSFER, PolicyGate

pytest_plugins = ["tests.test_wallet_fixtures"]

BOARD = "0x1111111111111111111111111111111111111111"
TOKEN = "0x2222222222222222222222222222222222222222"
FLEET_PEER = "0x3333333333333333333333333333333333333333"
STRANGER = "0x4444444444444444444444444444444444444444"
CLAIM = bytes.fromhex("379607f5")  # claim(uint256)
SUBMIT = bytes.fromhex("2c4d4d18")
ALLOWED = {(BOARD, CLAIM), (BOARD, SUBMIT)}
MAX_GAS = 400_000
POLICY = PolicyConfig(
    allow=[{"contract": BOARD, "functions": ["claim(uint256)", "0x2c4d4d18"]}],  # type: ignore[list-item]
    max_gas_per_tx=MAX_GAS,
)


def gate(policy: PolicyConfig = POLICY, **kwargs: object) -> PolicyGate:
    return PolicyGate(policy, treasury=TREASURY, fleet=[FLEET_PEER], tokens=[TOKEN], **kwargs)  # type: ignore[arg-type]


addresses = st.one_of(
    st.sampled_from([BOARD, TOKEN, TREASURY, FLEET_PEER, STRANGER]),
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
)
selectors = st.one_of(st.sampled_from([CLAIM, SUBMIT, TRANSFER, APPROVE]), st.binary(min_size=4, max_size=4))
chain_ids = st.one_of(st.sampled_from([31337, ETH_TESTER_CHAIN_ID, *sorted(MAINNET_CHAIN_IDS)]), st.integers(1, 2**40))


@settings(max_examples=600, deadline=None)
@given(
    chain_id=chain_ids,
    to=addresses,
    selector=selectors,
    args=st.binary(max_size=100),
    value=st.one_of(st.just(0), st.integers(0, 10**24)),
    gas=st.integers(21_000, 5_000_000),
)
def test_nothing_passes_unless_allow_listed(
    chain_id: int, to: str, selector: bytes, args: bytes, value: int, gas: int
) -> None:
    from eth_utils.address import to_checksum_address

    target = to_checksum_address(to)
    expected = chain_id in (31337, ETH_TESTER_CHAIN_ID) and (target, selector) in ALLOWED and not value
    expected = expected and gas <= MAX_GAS
    try:
        verdict = gate().check(chain_id=chain_id, to=to, data=selector + args, value=value, gas=gas)
    except PolicyDenied as exc:
        assert not expected, f"refused an allowed call: {exc}"
        assert exc.rule in {"chain_ids", "allow_mainnet", "allow_list", "allow_value", "max_gas_per_tx", "recipients"}
        return
    assert expected, "an unlisted transaction passed the gate"
    assert verdict.selector == selector and verdict.value_counted == 0 and verdict.token_amount == 0


@settings(max_examples=300, deadline=None)
@given(to=addresses, value=st.integers(0, 10**24))
def test_plain_transfers_only_reach_home(to: str, value: int) -> None:
    from eth_utils.address import to_checksum_address

    home = to_checksum_address(to) in (TREASURY, FLEET_PEER)
    try:
        verdict = gate().check(chain_id=31337, to=to, data=b"", value=value, gas=21_000)
    except PolicyDenied as exc:
        assert not (home and value > 0), exc
        return
    assert home and value > 0
    assert verdict.value_counted == (0 if to_checksum_address(to) == TREASURY else value)


def erc20(selector: bytes, recipient: str, amount: int) -> bytes:
    return selector + encode(["address", "uint256"], [recipient, amount])


def test_erc20_recipients_token_caps_and_sweeps() -> None:
    g = gate()
    sweep = g.check(chain_id=31337, to=TOKEN, data=erc20(TRANSFER, TREASURY, 10**20), value=0, gas=60_000)
    assert sweep.token == TOKEN and sweep.token_amount == 0  # to the treasury: not spending
    with pytest.raises(PolicyDenied) as info:
        g.check(chain_id=31337, to=TOKEN, data=erc20(TRANSFER, STRANGER, 1), value=0, gas=60_000)
    assert info.value.rule == "allow_list"  # only sweeps are built in
    listed = PolicyConfig(
        allow=[{"contract": TOKEN, "functions": ["transfer(address,uint256)", "approve(address,uint256)"]}],  # type: ignore[list-item]
        recipients=[BOARD],
    )
    with pytest.raises(PolicyDenied) as info:
        gate(listed).check(chain_id=31337, to=TOKEN, data=erc20(TRANSFER, STRANGER, 1), value=0, gas=60_000)
    assert info.value.rule == "recipients"
    with pytest.raises(PolicyDenied) as info:
        gate(listed).check(chain_id=31337, to=TOKEN, data=erc20(APPROVE, BOARD, 5), value=0, gas=60_000)
    assert info.value.rule == "token_caps"
    capped = PolicyConfig.model_validate(
        {**listed.model_dump(), "token_caps": [{"token": TOKEN, "wallet_daily": 9, "fleet_daily": 9}]}
    )
    verdict = gate(capped).check(chain_id=31337, to=TOKEN, data=erc20(APPROVE, BOARD, 5), value=0, gas=60_000)
    assert (verdict.token, verdict.token_amount) == (TOKEN, 5)
    with pytest.raises(PolicyDenied, match="does not decode exactly"):
        gate(capped).check(chain_id=31337, to=TOKEN, data=erc20(APPROVE, BOARD, 5) + b"\0", value=0, gas=60_000)


def test_value_rules_board_alias_creation_and_mainnet() -> None:
    policy = PolicyConfig.model_validate(
        {
            "allow": [{"contract": "board", "functions": ["claim(uint256)"]}],
            "allow_value": [{"to": BOARD, "function": "claim(uint256)", "max_wei": 100}],
        }
    )
    g = gate(policy, boards={BOARD: ["claim(uint256)", "release(uint256)"]})
    assert g.check(chain_id=31337, to=BOARD, data=CLAIM + bytes(32), value=100, gas=None).value_counted == 100
    with pytest.raises(PolicyDenied, match="max_wei"):
        g.check(chain_id=31337, to=BOARD, data=CLAIM + bytes(32), value=101, gas=None)
    with pytest.raises(PolicyDenied) as info:
        gate(policy).check(chain_id=31337, to=BOARD, data=CLAIM, value=0, gas=None)  # no board known
    assert info.value.rule == "allow_list"
    with pytest.raises(PolicyDenied, match="contract creation"):
        g.check(chain_id=31337, to=None, data=b"\x60\x00", value=0, gas=None)
    with pytest.raises(ValidationError, match="allow_mainnet"):
        PolicyConfig(chain_ids=[1])
    with pytest.raises(PolicyDenied) as info:
        gate(PolicyConfig(chain_ids=[8453], allow_mainnet=True, max_fee_per_gas_wei={8453: 10**11})).check(
            chain_id=1, to=TREASURY, data=b"", value=1, gas=None
        )
    assert info.value.rule == "chain_ids"
    assert gate(PolicyConfig(chain_ids=[1], allow_mainnet=True, max_fee_per_gas_wei={1: 10**11})).check(
        chain_id=1, to=TREASURY, data=b"", value=1, gas=None
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_daily_caps_hold_across_a_restart(
    chain_env: ChainEnv, db_engine: Engine, make_fleet: FleetFactory, tmp_path: Path
) -> None:
    """On both chains and both databases. On anvil fees only fall while blocks are nearly empty, and the
    journal settles each send to its real fee, so the slack that leaves is far below one more send."""
    env = chain_env
    chain = env.chain
    gas_wei = 21_000 * chain.fees().max_fee_per_gas
    peer_value = 10**15
    cfg = wallets_config(tmp_path, wallet_daily_cap_wei=3 * (gas_wei + peer_value), fleet_daily_cap_wei=10**18)
    fleet = make_fleet(env, db_engine, config=cfg, names=("alice", "bob"))
    clock = Clock()
    alice = fleet.wallet("alice")
    alice.clock = clock
    bob_address = fleet.keystore.entry("bob").address
    for _ in range(3):
        alice.send(bob_address, value=peer_value, gas=21_000)
    with pytest.raises(PolicyDenied) as info:
        alice.send(bob_address, value=peer_value, gas=21_000)
    assert info.value.rule == "wallet_daily_cap_wei"
    # restart: a new fleet (new process) on the same database still sees today's spend
    restarted = make_fleet(env, db_engine, config=cfg, names=("alice", "bob"), fund=0)
    again = restarted.wallet("alice")
    again.clock = clock
    with pytest.raises(PolicyDenied) as info:
        again.send(bob_address, value=peer_value, gas=21_000)
    assert info.value.rule == "wallet_daily_cap_wei"
    denials = restarted.journal.audit_events(kind="policy_denied")
    assert [d.rule for d in denials] == ["wallet_daily_cap_wei"] * 2
    # the sweep home is not spending: only its gas would count, and that no longer fits either
    clock.now += timedelta(days=1)
    again.send(bob_address, value=peer_value, gas=21_000)  # a new UTC day
    day = clock.now.date()
    assert restarted.journal.spent(scope=again.address, chain_id=chain.chain_id, day=day) <= 3 * (gas_wei + peer_value)


def test_fleet_cap_spans_wallets(db_engine: Engine, make_fleet: FleetFactory, tmp_path: Path) -> None:
    chain = EthTesterChain()
    env = ChainEnv("ethtester", chain, chain.dev_accounts(), ETH_TESTER_CHAIN_ID)
    gas_wei = 21_000 * chain.fees().max_fee_per_gas
    cfg = wallets_config(tmp_path, wallet_daily_cap_wei=10**18, fleet_daily_cap_wei=2 * (gas_wei + 1000) + 10)
    fleet = make_fleet(env, db_engine, config=cfg, names=("alice", "bob"))
    alice, bob = fleet.wallet("alice"), fleet.wallet("bob")
    alice.send(bob.address, value=1000, gas=21_000)
    bob.send(alice.address, value=1000, gas=21_000)
    with pytest.raises(PolicyDenied) as info:
        alice.send(bob.address, value=1000, gas=21_000)
    assert info.value.rule == "fleet_daily_cap_wei"


def test_refusals_speak_eth_and_gwei_not_wei() -> None:
    # issue 15 item 2: a person reads these; wei stays in the config keys' names only
    policy = PolicyConfig.model_validate(
        {
            "allow": [{"contract": BOARD, "functions": ["claim(uint256)"]}],
            "allow_value": [{"to": BOARD, "function": "claim(uint256)", "max_wei": 10**16}],
            "chain_ids": [31337],
            "max_fee_per_gas_wei": {31337: 50 * 10**9},
        }
    )
    with pytest.raises(PolicyDenied) as info:
        gate(policy).check(chain_id=31337, to=BOARD, data=CLAIM + bytes(32), value=2 * 10**16, gas=None)
    assert "[allow_value]: 0.02 ETH to " in info.value.message and "max_wei of 0.01 ETH" in info.value.message
    with pytest.raises(PolicyDenied) as info:
        gate(policy).check_fee(31337, 75 * 10**9)
    assert "max fee per gas 75 gwei on chain 31337 is above its cap of 50 gwei" in info.value.message


def test_the_default_allow_list_is_what_each_board_adapter_calls() -> None:
    """``contract: board`` without functions (the default) allows, on each configured board, exactly the functions
    its adapter declares (``TaskBoard.calls()``), and nothing of that on any other contract."""
    from orchestrator.adapters.artifacts import LocalArtifactStore
    from orchestrator.adapters.boards.onchain import WORK_FUNCTIONS, OnchainTaskBoard, board_abi
    from orchestrator.adapters.chain import EthTesterChain

    other_board = "0x5555555555555555555555555555555555555555"
    board = OnchainTaskBoard(chain=EthTesterChain(), address=BOARD, store=LocalArtifactStore(Path("/nonexistent")))
    assert sorted(c.signature for c in board.calls()) == sorted(WORK_FUNCTIONS)
    assert {c.contract for c in board.calls()} == {BOARD}
    calls: dict[str, list[str]] = {}
    for c in board.calls():
        calls.setdefault(c.contract, []).append(c.signature)
    calls[other_board] = ["claim(uint256)"]  # a second board whose adapter calls only claim
    g = gate(PolicyConfig(), boards=calls)
    abi = board_abi()
    for data in (abi.encode_call("claim", 1), abi.encode_call("submit", 1, "bafy"), abi.encode_call("release", 1)):
        g.check(chain_id=31337, to=BOARD, data=data, value=0, gas=None)
    g.check(chain_id=31337, to=other_board, data=abi.encode_call("claim", 1), value=0, gas=None)
    with pytest.raises(PolicyDenied) as info:  # not declared for that board
        g.check(chain_id=31337, to=other_board, data=abi.encode_call("release", 1), value=0, gas=None)
    assert info.value.rule == "allow_list"
    with pytest.raises(PolicyDenied):  # a board function on a contract that is no board
        g.check(chain_id=31337, to=STRANGER, data=abi.encode_call("claim", 1), value=0, gas=None)
    with pytest.raises(ValidationError, match="list the functions"):
        PolicyConfig.model_validate({"allow": [{"contract": STRANGER}]})

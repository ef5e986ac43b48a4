"""The policy gate and project pools: an agent wallet may ``claim(token)`` on a pool it holds shares in, and that
is all the pools add (property-tested over random targets, selectors, calldata, wallets and values)."""

from __future__ import annotations

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ETH_TESTER_CHAIN_ID
from tests.test_wallet_fixtures import TREASURY
from wallets.config import PolicyConfig
from wallets.errors import PolicyDenied
from wallets.policy import POOL_CLAIM, PolicyGate, selector_of

POOL = "0x5555555555555555555555555555555555555555"
OTHER_POOL = "0x6666666666666666666666666666666666666666"
HOLDER = "0x7777777777777777777777777777777777777777"
OTHER_AGENT = "0x8888888888888888888888888888888888888888"
TOKEN = "0x2222222222222222222222222222222222222222"
POOL_FUNCTIONS = [
    selector_of(f)
    for f in (
        "finalize(uint256)",
        "deposit_revenue(address,uint256)",
        "delegate(address)",
        "transfer(address,uint256)",
        "fund(uint256)",
        "veto(uint256,string)",
        "approve_task(uint256)",
    )
]


def gate() -> PolicyGate:
    policy = PolicyConfig(allow=[])  # nothing allow-listed: whatever passes comes from the pools rule
    return PolicyGate(policy, treasury=TREASURY, fleet=[HOLDER, OTHER_AGENT], pools={POOL: [HOLDER], OTHER_POOL: []})


def claim(token: str = TOKEN) -> bytes:
    return POOL_CLAIM + encode(["address"], [token])


def check(to: str, data: bytes, wallet: str | None, value: int = 0) -> bool:
    try:
        gate().check(chain_id=ETH_TESTER_CHAIN_ID, to=to, data=data, value=value, gas=200_000, wallet=wallet)
    except PolicyDenied as exc:
        assert exc.rule in {"allow_list", "allow_value", "recipients", "token_caps"}, exc.rule
        return False
    return True


def test_a_holder_may_claim_on_its_pool() -> None:
    verdict = gate().check(chain_id=ETH_TESTER_CHAIN_ID, to=POOL, data=claim(), value=0, gas=200_000, wallet=HOLDER)
    assert verdict.selector == POOL_CLAIM and verdict.token is None and verdict.token_amount == 0
    assert check(POOL.lower(), claim(), HOLDER.lower())  # any address spelling


def test_nobody_else_and_nothing_else() -> None:
    assert not check(POOL, claim(), OTHER_AGENT)  # holds no shares there
    assert not check(POOL, claim(), None)  # unknown signer
    assert not check(OTHER_POOL, claim(), HOLDER)  # a pool it holds nothing in
    assert not check(TOKEN, claim(), HOLDER)  # not a pool
    assert not check(POOL, claim() + b"\x00", HOLDER)  # trailing calldata
    assert not check(POOL, POOL_CLAIM, HOLDER)  # no argument
    assert not check(POOL, claim(), HOLDER, value=1)  # no value with it
    for selector in POOL_FUNCTIONS:
        assert not check(POOL, selector + bytes(64), HOLDER), selector.hex()


addresses = st.sampled_from([POOL, OTHER_POOL, TOKEN, HOLDER, TREASURY])
wallets = st.one_of(st.none(), st.sampled_from([HOLDER, OTHER_AGENT]))
selectors = st.one_of(st.sampled_from([POOL_CLAIM, *POOL_FUNCTIONS]), st.binary(min_size=4, max_size=4))


@settings(max_examples=400, deadline=None)
@given(to=addresses, selector=selectors, args=st.binary(max_size=80), wallet=wallets, value=st.sampled_from([0, 1]))
def test_the_pool_rule_adds_only_a_holders_claim(
    to: str, selector: bytes, args: bytes, wallet: str | None, value: int
) -> None:
    data = selector + args
    expected = (
        to_checksum_address(to) == POOL
        and wallet == HOLDER
        and selector == POOL_CLAIM
        and len(args) == 32
        and args[:12] == bytes(12)  # a well-formed address argument
        and value == 0
    )
    assert check(to, data, wallet, value) == expected

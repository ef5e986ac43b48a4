"""Property test of ProjectPool's revenue accounting over random sequences of mints, deposits and claims.

Deposits use the budget token and a fee-on-transfer token (a random fee per deposit). After every step, per token:
the sum claimed plus claimable never exceeds what was deposited (what actually arrived); no holder's claimable
drops, except to zero by its own claim, and claimed plus claimable never drops. At the end each holder's
entitlement falls short of its exact pro-rata share (a rational number, computed here) by at most one base unit
of rounding (strictly: less than ``1 + shares * deposits / 2**128``, the carried remainder being worth less than
``totalSupply / 2**128`` units), so the pool as a whole keeps at most one base unit per holder.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.contract import Contract

from tests.pool_env import PoolEnv, make_pool_env

HOLDERS = 4
mint = st.tuples(st.just("mint"), st.integers(0, HOLDERS - 1), st.integers(1, 10**6))
deposit = st.tuples(st.just("deposit"), st.integers(0, 1), st.integers(1, 10**21), st.sampled_from([0, 1, 333, 5000]))
claim = st.tuples(st.just("claim"), st.integers(0, HOLDERS - 1), st.integers(0, 1))
steps = st.lists(st.one_of(mint, deposit, claim), min_size=1, max_size=14)


@pytest.fixture(scope="module")
def funded_pool() -> tuple[PoolEnv, Any]:
    env, _ = make_pool_env()
    env.fund(10**6)  # every task pays 1 base unit: the budget never runs out here
    return env, env.w3.provider.ethereum_tester.take_snapshot()  # type: ignore[attr-defined]


def read(env: PoolEnv, tokens: list[Contract]) -> dict[tuple[int, int], tuple[int, int]]:
    """(holder, token) -> (claimed, claimable) on chain."""
    p = env.pool.functions
    return {
        (h, t): (int(p.claimed(env.agents[h], tok.address).call()), env.claimable(env.agents[h], tok))
        for h in range(HOLDERS)
        for t, tok in enumerate(tokens)
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_revenue_never_exceeds_deposits_and_never_drops(
    funded_pool: tuple[PoolEnv, Any], sequence: list[tuple[Any, ...]]
) -> None:
    env, snapshot = funded_pool
    env.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)  # type: ignore[attr-defined]
    tokens = [env.token, env.fee_token]
    shares = [0] * HOLDERS
    exact = {(h, t): Fraction(0) for h in range(HOLDERS) for t in range(2)}
    deposited = [0, 0]
    deposits = 0
    before = read(env, tokens)
    for step in sequence:
        claimer: tuple[int, int] | None = None
        if step[0] == "mint":
            _, holder, weight = step
            env.contribute(env.agents[holder], weight)
            shares[holder] += weight
        elif step[0] == "deposit":
            _, t, amount, fee_bps = step
            if sum(shares) == 0:
                continue  # refused on chain ("no shares outstanding"): tested in test_pool_contract.py
            if t == 1:
                env.tx(env.fee_token.functions.set_fee_bps(fee_bps), env.deployer)
            pool_before = env.balance(tokens[t], env.pool.address)
            env.deposit(tokens[t], amount)
            received = env.balance(tokens[t], env.pool.address) - pool_before
            assert received == amount if t == 0 else received <= amount
            deposited[t] += received
            deposits += 1
            for h in range(HOLDERS):
                exact[(h, t)] += Fraction(received * shares[h], sum(shares))
        else:
            _, holder, t = step
            if env.claimable(env.agents[holder], tokens[t]) == 0:
                continue  # refused on chain ("nothing to claim")
            env.tx(env.pool.functions.claim(tokens[t].address), env.agents[holder])
            claimer = (holder, t)
        after = read(env, tokens)
        for key, (claimed, claimable) in after.items():
            was_claimed, was_claimable = before[key]
            assert claimed + claimable >= was_claimed + was_claimable, f"entitlement dropped for {key}"
            assert claimable >= was_claimable or (key == claimer and claimable == 0), f"claimable dropped for {key}"
        for t in range(2):
            assert sum(sum(after[(h, t)]) for h in range(HOLDERS)) <= deposited[t]
            assert int(env.pool.functions.deposited(tokens[t].address).call()) == deposited[t]
        before = after
    for key, (claimed, claimable) in before.items():
        short = exact[key] - (claimed + claimable)
        slack = Fraction(shares[key[0]] * deposits, 2**128)
        assert -slack <= short < 1 + slack, f"holder {key} is off its exact share by {float(short)}"
    holders = sum(1 for s in shares if s)
    for t in range(2):
        total_short = deposited[t] - sum(sum(before[(h, t)]) for h in range(HOLDERS))
        assert 0 <= total_short <= holders

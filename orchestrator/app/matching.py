"""Matching and the profit gate: which of our agents should take a discovered task, if any, and why not.

A task goes to the first agent (in configured order) whose skills cover the spec's skills, whose per-task LLM
budget covers the expected LLM cost, that has a free slot and whose profit gate passes; otherwise it is skipped
with a reason that names the rule. The gate compares three currencies, so the operator states the prices
(nothing here fetches a price feed):

    reward_usd = reward / 10**token_decimals * token_usd
    llm_usd    = expected prompt/completion tokens * the agent model's price per million tokens
    gas_usd    = ([claim_gas, on a board whose tasks are claimed] + submit_gas) * max fee per gas / 10**18 * native_usd
    take it iff reward_usd - llm_usd - gas_usd >= min_margin_usd

Every reward token is valued at ``token_usd`` (one price for all tokens; a per-token table is a later step).

Pure: standard library, pydantic and the domain only. No adapter, no database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from agents.config import AgentProfile, ModelPrice
from orchestrator.domain.specs import TaskSpec

WEI_PER_NATIVE = Decimal(10) ** 18


class MatchingConfig(BaseModel):
    """The ``matching`` section: the profit gate's prices and estimates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_margin_usd: Decimal = Field(
        default=Decimal("0.10"), description="take a task only if reward - LLM cost - gas is at least this (USD)"
    )
    token_usd: Decimal = Field(default=Decimal(1), ge=0, description="USD value of one whole reward token")
    token_decimals: int = Field(default=18, ge=0, le=36, description="decimals of the reward tokens")
    native_usd: Decimal = Field(default=Decimal(3000), ge=0, description="USD value of one native coin (ETH)")
    claim_gas: int = Field(default=120_000, ge=21_000, description="gas a claim is expected to use")
    submit_gas: int = Field(default=150_000, ge=21_000, description="gas a submit is expected to use")
    expected_prompt_tokens: int = Field(default=6_000, ge=0, description="LLM input tokens one task is expected to use")
    expected_completion_tokens: int = Field(default=1_500, ge=0, description="LLM output tokens per task")
    min_seconds_left: int = Field(default=3_600, ge=0, description="skip tasks whose deadline is closer than this")
    max_tasks_per_agent: int = Field(default=2, ge=1, le=100, description="tasks one agent holds at a time")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A task to match: what the gate needs to know about it."""

    spec: TaskSpec
    reward: int  # token base units
    deadline: int  # unix seconds
    #: The task is claimed with a transaction first (a TaskBoard); False: it is assigned (a job market), and
    #: delivering is the only transaction the agent pays for.
    claims: bool = True


@dataclass(frozen=True, slots=True)
class Estimate:
    """The profit gate's arithmetic for one (task, agent), in USD."""

    reward_usd: Decimal
    llm_usd: Decimal
    gas_usd: Decimal

    @property
    def margin_usd(self) -> Decimal:
        return self.reward_usd - self.llm_usd - self.gas_usd

    def describe(self) -> str:
        return (
            f"reward ${self.reward_usd:.4f} - LLM ${self.llm_usd:.4f} - gas ${self.gas_usd:.4f} "
            f"= ${self.margin_usd:.4f}"
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """``agent`` is set when the task should be claimed; otherwise ``skip`` says why it is not for us, and
    ``wait`` says it may be for us later (every fitting agent is busy)."""

    agent: str | None
    reason: str
    estimate: Estimate | None = None
    wait: bool = False

    @property
    def skip(self) -> bool:
        return self.agent is None and not self.wait


def estimate(task: Candidate, *, price: ModelPrice | None, max_fee_per_gas: int, config: MatchingConfig) -> Estimate:
    """The gate's numbers for one task and one agent's model price (None: the model is free)."""
    reward_usd = Decimal(task.reward) / (Decimal(10) ** config.token_decimals) * config.token_usd
    llm_usd = Decimal(0)
    if price is not None:
        llm_usd = price.cost(
            prompt_tokens=config.expected_prompt_tokens, completion_tokens=config.expected_completion_tokens
        )
    gas = (config.claim_gas if task.claims else 0) + config.submit_gas
    gas_wei = Decimal(gas * max_fee_per_gas)
    return Estimate(reward_usd=reward_usd, llm_usd=llm_usd, gas_usd=gas_wei / WEI_PER_NATIVE * config.native_usd)


def decide(
    task: Candidate,
    *,
    profiles: Sequence[AgentProfile],
    prices: Mapping[str, ModelPrice],
    load: Mapping[str, int],
    max_fee_per_gas: int,
    now: int,
    config: MatchingConfig,
) -> Decision:
    """Pick an agent for ``task``. ``load`` is the number of tasks each agent holds now."""
    left = task.deadline - now
    if left < config.min_seconds_left:
        return Decision(None, f"deadline in {left}s, less than matching.min_seconds_left={config.min_seconds_left}s")
    wanted = {s.lower() for s in task.spec.skills}
    skilled = [p for p in profiles if wanted <= {s.lower() for s in p.skills}]
    if not skilled:
        return Decision(None, f"no agent has all the skills {sorted(wanted)}")
    estimates = {
        p.name: estimate(task, price=prices.get(p.model.model), max_fee_per_gas=max_fee_per_gas, config=config)
        for p in skilled
    }
    affordable = [
        p
        for p in skilled
        if p.budgets.max_cost_per_task is None or estimates[p.name].llm_usd <= p.budgets.max_cost_per_task
    ]
    if not affordable:
        cheapest = min(estimates.values(), key=lambda e: e.llm_usd)
        return Decision(
            None,
            f"expected LLM cost ${cheapest.llm_usd:.4f} is above every skilled agent's budgets.max_cost_per_task",
            cheapest,
        )
    worth = [p for p in affordable if estimates[p.name].margin_usd >= config.min_margin_usd]
    if not worth:
        best = max(estimates.values(), key=lambda e: e.margin_usd)
        return Decision(
            None, f"not worth it: {best.describe()} is below matching.min_margin_usd=${config.min_margin_usd}", best
        )
    for profile in worth:
        if load.get(profile.name, 0) < config.max_tasks_per_agent:
            est = estimates[profile.name]
            return Decision(profile.name, f"{profile.name}: {est.describe()}", est)
    return Decision(None, "every agent with the skills is at matching.max_tasks_per_agent", wait=True)


def bid_amount(est: Estimate, *, config: MatchingConfig, budget: int) -> int:
    """What an agent bids on an open job, in token base units: its price, the gate's costs plus the minimum
    margin (``llm + gas + min_margin_usd``, in tokens at ``token_usd``), at least 1 and at most the budget."""
    if config.token_usd <= 0:
        return budget
    price_usd = est.llm_usd + est.gas_usd + config.min_margin_usd
    units = (price_usd / config.token_usd * (Decimal(10) ** config.token_decimals)).to_integral_value(
        rounding="ROUND_CEILING"
    )
    return min(max(int(units), 1), budget)

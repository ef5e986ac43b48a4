# pragma version ~=0.4.3
"""
@title Deworker ProjectPool
@license Apache-2.0
@notice One pool per project: a budget, tasks posted on the TaskBoard with a share
        `weight` each, optimistic acceptance with a veto window, non-transferable
        shares that vote (the votes interface OpenZeppelin's Governor reads), and
        revenue paid to the share holders pro rata.

        Roles:
        - `owner` (the DAO: a Governor's timelock, a Safe or an EOA) posts and
          cancels tasks, sets the other roles and accepts revenue tokens;
        - `reviewer` (the owner's reviewer) starts a task's acceptance with
          `approve_task` once the contributor has submitted on the board;
        - `guardian` (or the owner) may `veto` during the veto window.

        Task lifecycle in the pool (the board's own status is separate):

            post_task ──> Posted(1) ──approve_task──> Pending(2) ──finalize──> Finalized(3)
                            │  ^                         │   (anyone, after the window)
                            │  └────────veto─────────────┘   (window open; the board task reopens)
                            └──cancel_task──> Cancelled(4)

        `finalize` approves the task on the board (which pays the bounty to the
        contributor from its escrow) and mints `weight` shares to the contributor.
        It is idempotent: a second call on a finalized task does nothing.

        Shares are an ERC-20 that cannot be transferred (transfer, transferFrom and
        approve revert), so revenue needs no accounting across transfers. Each
        holder delegates to itself on its first mint; votes are checkpointed by
        block number (ERC-6372 clock "mode=blocknumber&from=default").

        Revenue: `deposit_revenue(token, amount)` pulls `amount` and counts what
        actually arrived (balance before and after, so fee-on-transfer tokens are
        right), then adds `received * 2**128 / totalSupply` to the token's
        accumulator and carries the division remainder to the next deposit. A
        holder's entitlement is `(shares * acc - debt) / 2**128` where `debt` is
        `minted * acc` summed over its mints: minting after a deposit gets nothing
        of it, and a holder's claimable never drops. Revenue tokens are accepted by
        the owner (at most MAX_REVENUE_TOKENS, so a mint's cost is bounded; the
        budget token is accepted from the start). At most MAX_SHARES (2**40) shares
        are ever minted, and a deposit that would raise a token's accumulator past
        max_value(uint256) // MAX_SHARES is refused ("revenue per share too large":
        with one share outstanding that is about 2**88 base units), so no later
        mint or claim can overflow.

        The budget (`budget`) is what `fund` brought in minus the rewards escrowed
        on the board (plus refunds of cancelled tasks); revenue in the budget token
        is accounted separately and never spent on tasks. Tokens sent to the pool
        by plain transfer are counted nowhere.
"""

import TaskBoard

STATUS_POSTED: constant(uint8) = 1
STATUS_PENDING: constant(uint8) = 2
STATUS_FINALIZED: constant(uint8) = 3
STATUS_CANCELLED: constant(uint8) = 4

BOARD_SUBMITTED: constant(uint8) = 3

CID_LEN: constant(uint256) = 128
REASON_LEN: constant(uint256) = 256
MAX_REVENUE_TOKENS: constant(uint256) = 8
SCALE: constant(uint256) = 2**128
# Shares ever minted are capped so `shares * revenue_per_share` can never overflow: a deposit that would push
# the accumulator past max_value(uint256) // MAX_SHARES is refused instead of bricking later mints and claims.
MAX_SHARES: constant(uint256) = 2**40


struct PoolTask:
    weight: uint256
    reward: uint256
    status: uint8
    contributor: address
    veto_ends: uint256


struct Checkpoint:
    from_block: uint256
    votes: uint256


# --------------------------------------------------------------------------- events

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


event DelegateChanged:
    delegator: indexed(address)
    fromDelegate: indexed(address)
    toDelegate: indexed(address)


event DelegateVotesChanged:
    delegate: indexed(address)
    previousVotes: uint256
    newVotes: uint256


event BudgetFunded:
    funder: indexed(address)
    amount: uint256
    budget: uint256


event PoolTaskPosted:
    task_id: indexed(uint256)
    reward: uint256
    weight: uint256
    deadline: uint256
    spec_cid: String[CID_LEN]


event PoolTaskApproved:
    task_id: indexed(uint256)
    reviewer: indexed(address)
    contributor: indexed(address)
    veto_ends: uint256


event PoolTaskVetoed:
    task_id: indexed(uint256)
    vetoer: indexed(address)
    contributor: indexed(address)
    reason: String[REASON_LEN]


event PoolTaskFinalized:
    task_id: indexed(uint256)
    caller: indexed(address)
    contributor: indexed(address)
    reward: uint256
    weight: uint256


event PoolTaskCancelled:
    task_id: indexed(uint256)
    refund: uint256


event RevenueTokenAdded:
    token: indexed(address)


event RevenueDeposited:
    token: indexed(address)
    depositor: indexed(address)
    amount: uint256
    received: uint256
    revenue_per_share: uint256


event RevenueClaimed:
    token: indexed(address)
    holder: indexed(address)
    amount: uint256


event RoleChanged:
    role: String[16]
    previous: indexed(address)
    new: indexed(address)


# --------------------------------------------------------------------------- state

board: public(immutable(address))
budget_token: public(immutable(address))
veto_window: public(immutable(uint256))

owner: public(address)
reviewer: public(address)
guardian: public(address)

name: public(String[64])
symbol: public(String[16])

budget: public(uint256)
task_count: public(uint256)
task_at: public(HashMap[uint256, uint256])  # index 0..task_count-1 -> board task id
_tasks: HashMap[uint256, PoolTask]

# shares
balanceOf: public(HashMap[address, uint256])
totalSupply: public(uint256)
holder_count: public(uint256)
holder_at: public(HashMap[uint256, address])  # index 0..holder_count-1 -> holder (first mint order)

# votes
_delegates: HashMap[address, address]
_checkpoints: HashMap[address, HashMap[uint256, Checkpoint]]
_checkpoint_count: HashMap[address, uint256]
_supply_checkpoints: HashMap[uint256, Checkpoint]
_supply_checkpoint_count: uint256

# revenue
revenue_tokens: public(DynArray[address, MAX_REVENUE_TOKENS])
accepted: public(HashMap[address, bool])
revenue_per_share: public(HashMap[address, uint256])  # scaled by 2**128
revenue_carry: public(HashMap[address, uint256])  # remainder of the last division, numerator units
deposited: public(HashMap[address, uint256])
total_claimed: public(HashMap[address, uint256])
claimed: public(HashMap[address, HashMap[address, uint256]])
_debt: HashMap[address, HashMap[address, uint256]]  # holder -> token -> sum(minted * acc at mint)


@deploy
def __init__(
    name_: String[64],
    symbol_: String[16],
    board_: address,
    budget_token_: address,
    owner_: address,
    reviewer_: address,
    guardian_: address,
    veto_window_: uint256,
):
    """
    @param name_ Name of the share token (the project's name).
    @param symbol_ Symbol of the share token.
    @param board_ The TaskBoard the pool posts on (as poster and reviewer).
    @param budget_token_ The ERC-20 of the budget and of the bounties (also accepted as revenue).
    @param owner_ The DAO (timelock, Safe or EOA).
    @param reviewer_ Who may start a task's acceptance.
    @param guardian_ Who may veto besides the owner (zero: the owner alone).
    @param veto_window_ Seconds between approval and the earliest finalize; must be > 0.
    """
    assert board_.is_contract, "board has no code"
    assert budget_token_.is_contract, "token has no code"
    assert owner_ != empty(address), "zero owner"
    assert reviewer_ != empty(address), "zero reviewer"
    assert veto_window_ > 0, "zero veto window"
    board = board_
    budget_token = budget_token_
    veto_window = veto_window_
    self.name = name_
    self.symbol = symbol_
    self.owner = owner_
    self.reviewer = reviewer_
    self.guardian = guardian_
    self.revenue_tokens.append(budget_token_)
    self.accepted[budget_token_] = True
    log RevenueTokenAdded(token=budget_token_)


# --------------------------------------------------------------------------- share token (ERC-20, not transferable)


@external
@pure
def decimals() -> uint8:
    """
    @notice Shares are whole units: one share per unit of task weight.
    """
    return 0


@external
@view
def allowance(owner_: address, spender: address) -> uint256:
    return 0


@external
def transfer(receiver: address, amount: uint256) -> bool:
    raise "shares are not transferable"


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    raise "shares are not transferable"


@external
def approve(spender: address, amount: uint256) -> bool:
    raise "shares are not transferable"


# --------------------------------------------------------------------------- votes (IERC5805 / IERC6372)


@external
@view
def clock() -> uint48:
    return convert(block.number, uint48)


@external
@view
def CLOCK_MODE() -> String[32]:
    return "mode=blocknumber&from=default"


@external
@view
def delegates(account: address) -> address:
    return self._delegates[account]


@external
@view
def getVotes(account: address) -> uint256:
    count: uint256 = self._checkpoint_count[account]
    if count == 0:
        return 0
    return self._checkpoints[account][count - 1].votes


@external
@view
def getPastVotes(account: address, timepoint: uint256) -> uint256:
    assert timepoint < block.number, "future lookup"
    return self._lookup_account(account, timepoint)


@external
@view
def getPastTotalSupply(timepoint: uint256) -> uint256:
    assert timepoint < block.number, "future lookup"
    return self._lookup_supply(timepoint)


@external
def delegate(delegatee: address):
    """
    @notice Move the caller's votes to `delegatee` (shares stay where they are).
    """
    self._delegate(msg.sender, delegatee)


# --------------------------------------------------------------------------- budget and tasks


@external
@nonreentrant
def fund(amount: uint256):
    """
    @notice Add `amount` of the budget token to the budget (pulled from the caller,
            who must have approved the pool; a DAO does approve + fund in one proposal).
    """
    assert amount > 0, "zero amount"
    before: uint256 = self._balance_of(budget_token)
    self._safe_transfer_from(budget_token, msg.sender, self, amount)
    assert self._balance_of(budget_token) == before + amount, "budget not received"
    self.budget += amount
    log BudgetFunded(funder=msg.sender, amount=amount, budget=self.budget)


@external
@nonreentrant
def post_task(spec_cid: String[CID_LEN], reward: uint256, deadline: uint256, weight: uint256) -> uint256:
    """
    @notice The owner posts a task on the board, escrowing `reward` from the budget;
            the contributor it is finalized for gets `weight` shares.
    @return The board's task id.
    """
    assert msg.sender == self.owner, "not owner"
    assert weight > 0, "zero weight"
    assert weight <= MAX_SHARES, "weight too large"
    assert reward <= self.budget, "budget exceeded"
    self.budget -= reward
    self._safe_approve(budget_token, board, reward)
    task_id: uint256 = extcall TaskBoard.__interface__(board).post(budget_token, reward, deadline, self, spec_cid)
    self._tasks[task_id] = PoolTask(
        weight=weight, reward=reward, status=STATUS_POSTED, contributor=empty(address), veto_ends=0
    )
    self.task_at[self.task_count] = task_id
    self.task_count += 1
    log PoolTaskPosted(task_id=task_id, reward=reward, weight=weight, deadline=deadline, spec_cid=spec_cid)
    return task_id


@external
@view
def task(task_id: uint256) -> PoolTask:
    """
    @notice The pool's record of a board task; reverts "unknown task" for tasks the pool did not post.
    """
    assert self._tasks[task_id].status != 0, "unknown task"
    return self._tasks[task_id]


@external
@nonreentrant
def approve_task(task_id: uint256):
    """
    @notice The reviewer accepts the submission on the board: the veto window starts.
    """
    assert msg.sender == self.reviewer, "not reviewer"
    assert self._tasks[task_id].status == STATUS_POSTED, "task not posted"
    record: TaskBoard.Task = staticcall TaskBoard.__interface__(board).task(task_id)
    assert record.status == BOARD_SUBMITTED, "task not submitted"
    veto_ends: uint256 = block.timestamp + veto_window
    self._tasks[task_id].status = STATUS_PENDING
    self._tasks[task_id].contributor = record.claimant
    self._tasks[task_id].veto_ends = veto_ends
    log PoolTaskApproved(task_id=task_id, reviewer=msg.sender, contributor=record.claimant, veto_ends=veto_ends)


@external
@nonreentrant
def veto(task_id: uint256, reason: String[REASON_LEN]):
    """
    @notice The guardian or the owner vetoes a pending task during its window: no pay, no
            shares; the board task is rejected (it reopens for a new submission).
    """
    assert msg.sender == self.guardian or msg.sender == self.owner, "not guardian or owner"
    assert self._tasks[task_id].status == STATUS_PENDING, "task not pending"
    assert block.timestamp < self._tasks[task_id].veto_ends, "veto window over"
    contributor: address = self._tasks[task_id].contributor
    self._tasks[task_id].status = STATUS_POSTED
    self._tasks[task_id].contributor = empty(address)
    self._tasks[task_id].veto_ends = 0
    log PoolTaskVetoed(task_id=task_id, vetoer=msg.sender, contributor=contributor, reason=reason)
    extcall TaskBoard.__interface__(board).reject(task_id, reason)


@external
@nonreentrant
def finalize(task_id: uint256):
    """
    @notice Anyone, once the veto window is over: the board pays the bounty and the
            contributor gets `weight` shares. A finalized task is a no-op.
    """
    status: uint8 = self._tasks[task_id].status
    if status == STATUS_FINALIZED:
        return
    assert status == STATUS_PENDING, "task not pending"
    assert block.timestamp >= self._tasks[task_id].veto_ends, "veto window open"
    contributor: address = self._tasks[task_id].contributor
    weight: uint256 = self._tasks[task_id].weight
    self._tasks[task_id].status = STATUS_FINALIZED
    self._mint(contributor, weight)
    log PoolTaskFinalized(
        task_id=task_id, caller=msg.sender, contributor=contributor, reward=self._tasks[task_id].reward, weight=weight
    )
    extcall TaskBoard.__interface__(board).approve(task_id)


@external
@nonreentrant
def cancel_task(task_id: uint256):
    """
    @notice The owner cancels a posted task nobody holds on the board; the reward returns to the budget.
    """
    assert msg.sender == self.owner, "not owner"
    assert self._tasks[task_id].status == STATUS_POSTED, "task not posted"
    reward: uint256 = self._tasks[task_id].reward
    self._tasks[task_id].status = STATUS_CANCELLED
    self.budget += reward
    log PoolTaskCancelled(task_id=task_id, refund=reward)
    extcall TaskBoard.__interface__(board).cancel(task_id)


# --------------------------------------------------------------------------- revenue


@external
@nonreentrant
def add_revenue_token(token: address):
    """
    @notice The owner accepts `token` as revenue (at most MAX_REVENUE_TOKENS, never removed).
    """
    assert msg.sender == self.owner, "not owner"
    assert token.is_contract, "token has no code"
    assert not self.accepted[token], "token already accepted"
    assert len(self.revenue_tokens) < MAX_REVENUE_TOKENS, "too many revenue tokens"
    self.revenue_tokens.append(token)
    self.accepted[token] = True
    log RevenueTokenAdded(token=token)


@external
@nonreentrant
def deposit_revenue(token: address, amount: uint256):
    """
    @notice Pull `amount` of an accepted `token` from the caller and share what arrived among
            the current holders, pro rata to their shares.
    """
    assert amount > 0, "zero amount"
    assert self.accepted[token], "token not accepted"
    supply: uint256 = self.totalSupply
    assert supply > 0, "no shares outstanding"
    before: uint256 = self._balance_of(token)
    self._safe_transfer_from(token, msg.sender, self, amount)
    received: uint256 = self._balance_of(token) - before
    assert received > 0, "nothing received"
    numerator: uint256 = received * SCALE + self.revenue_carry[token]
    acc: uint256 = self.revenue_per_share[token] + numerator // supply
    assert acc <= max_value(uint256) // MAX_SHARES, "revenue per share too large"
    self.revenue_per_share[token] = acc
    self.revenue_carry[token] = numerator % supply
    self.deposited[token] += received
    log RevenueDeposited(
        token=token,
        depositor=msg.sender,
        amount=amount,
        received=received,
        revenue_per_share=self.revenue_per_share[token],
    )


@external
@view
def claimable(holder: address, token: address) -> uint256:
    """
    @notice Revenue of `token` that `holder` may claim now.
    """
    return self._claimable(holder, token)


@external
@nonreentrant
def claim(token: address) -> uint256:
    """
    @notice Pay the caller its claimable revenue of `token`.
    @return The amount paid.
    """
    amount: uint256 = self._claimable(msg.sender, token)
    assert amount > 0, "nothing to claim"
    self.claimed[msg.sender][token] += amount
    self.total_claimed[token] += amount
    log RevenueClaimed(token=token, holder=msg.sender, amount=amount)
    self._safe_transfer(token, msg.sender, amount)
    return amount


# --------------------------------------------------------------------------- roles


@external
def transfer_ownership(new_owner: address):
    assert msg.sender == self.owner, "not owner"
    assert new_owner != empty(address), "zero owner"
    log RoleChanged(role="owner", previous=self.owner, new=new_owner)
    self.owner = new_owner


@external
def set_reviewer(new_reviewer: address):
    assert msg.sender == self.owner, "not owner"
    assert new_reviewer != empty(address), "zero reviewer"
    log RoleChanged(role="reviewer", previous=self.reviewer, new=new_reviewer)
    self.reviewer = new_reviewer


@external
def set_guardian(new_guardian: address):
    """
    @notice Zero removes the guardian (the owner can still veto).
    """
    assert msg.sender == self.owner, "not owner"
    log RoleChanged(role="guardian", previous=self.guardian, new=new_guardian)
    self.guardian = new_guardian


# --------------------------------------------------------------------------- internals


@internal
@view
def _claimable(holder: address, token: address) -> uint256:
    earned: uint256 = (self.balanceOf[holder] * self.revenue_per_share[token] - self._debt[holder][token]) // SCALE
    return earned - self.claimed[holder][token]


@internal
def _mint(holder: address, amount: uint256):
    assert self.totalSupply + amount <= MAX_SHARES, "share supply cap"
    # the new shares owe what the accumulators already hold: they earn only later deposits
    for token: address in self.revenue_tokens:
        acc: uint256 = self.revenue_per_share[token]
        if acc != 0:
            self._debt[holder][token] += amount * acc
    if self.balanceOf[holder] == 0:
        # first mint (shares are never burned or moved): a new holder, delegated to itself unless it chose
        self.holder_at[self.holder_count] = holder
        self.holder_count += 1
        if self._delegates[holder] == empty(address):
            self._delegates[holder] = holder
            log DelegateChanged(delegator=holder, fromDelegate=empty(address), toDelegate=holder)
    self.balanceOf[holder] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=holder, value=amount)
    self._push_supply(self.totalSupply)
    self._move_votes(empty(address), self._delegates[holder], amount)


@internal
def _delegate(account: address, delegatee: address):
    previous: address = self._delegates[account]
    self._delegates[account] = delegatee
    log DelegateChanged(delegator=account, fromDelegate=previous, toDelegate=delegatee)
    self._move_votes(previous, delegatee, self.balanceOf[account])


@internal
def _move_votes(source: address, destination: address, amount: uint256):
    if source == destination or amount == 0:
        return
    if source != empty(address):
        old: uint256 = self._latest_votes(source)
        self._push_account(source, old - amount)
        log DelegateVotesChanged(delegate=source, previousVotes=old, newVotes=old - amount)
    if destination != empty(address):
        old: uint256 = self._latest_votes(destination)
        self._push_account(destination, old + amount)
        log DelegateVotesChanged(delegate=destination, previousVotes=old, newVotes=old + amount)


@internal
@view
def _latest_votes(account: address) -> uint256:
    count: uint256 = self._checkpoint_count[account]
    if count == 0:
        return 0
    return self._checkpoints[account][count - 1].votes


@internal
def _push_account(account: address, votes: uint256):
    count: uint256 = self._checkpoint_count[account]
    if count > 0 and self._checkpoints[account][count - 1].from_block == block.number:
        self._checkpoints[account][count - 1].votes = votes
        return
    self._checkpoints[account][count] = Checkpoint(from_block=block.number, votes=votes)
    self._checkpoint_count[account] = count + 1


@internal
def _push_supply(supply: uint256):
    count: uint256 = self._supply_checkpoint_count
    if count > 0 and self._supply_checkpoints[count - 1].from_block == block.number:
        self._supply_checkpoints[count - 1].votes = supply
        return
    self._supply_checkpoints[count] = Checkpoint(from_block=block.number, votes=supply)
    self._supply_checkpoint_count = count + 1


@internal
@view
def _lookup_account(account: address, timepoint: uint256) -> uint256:
    # binary search for the last checkpoint at or before `timepoint` (at most 256 halvings)
    low: uint256 = 0
    high: uint256 = self._checkpoint_count[account]
    for i: uint256 in range(256):
        if low >= high:
            break
        mid: uint256 = (low + high) // 2
        if self._checkpoints[account][mid].from_block > timepoint:
            high = mid
        else:
            low = mid + 1
    if high == 0:
        return 0
    return self._checkpoints[account][high - 1].votes


@internal
@view
def _lookup_supply(timepoint: uint256) -> uint256:
    low: uint256 = 0
    high: uint256 = self._supply_checkpoint_count
    for i: uint256 in range(256):
        if low >= high:
            break
        mid: uint256 = (low + high) // 2
        if self._supply_checkpoints[mid].from_block > timepoint:
            high = mid
        else:
            low = mid + 1
    if high == 0:
        return 0
    return self._supply_checkpoints[high - 1].votes


@internal
@view
def _balance_of(token: address) -> uint256:
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        token,
        abi_encode(self, method_id=method_id("balanceOf(address)")),
        max_outsize=32,
        is_static_call=True,
        revert_on_failure=False,
    )
    assert success and len(response) == 32, "token balanceOf failed"
    return convert(response, uint256)


@internal
@view
def _check_token_call(token: address, success: bool, response: Bytes[32]):
    # ok iff the call succeeded, the token has code, and it returned nothing or exactly `true`
    assert token.is_contract, "token transfer failed"
    assert success, "token transfer failed"
    if len(response) != 0:
        assert len(response) == 32 and convert(response, uint256) == 1, "token transfer failed"


@internal
def _safe_transfer(token: address, to: address, amount: uint256):
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        token,
        abi_encode(to, amount, method_id=method_id("transfer(address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    self._check_token_call(token, success, response)


@internal
def _safe_transfer_from(token: address, owner_: address, to: address, amount: uint256):
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        token,
        abi_encode(owner_, to, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    self._check_token_call(token, success, response)


@internal
def _safe_approve(token: address, spender: address, amount: uint256):
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        token,
        abi_encode(spender, amount, method_id=method_id("approve(address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    self._check_token_call(token, success, response)

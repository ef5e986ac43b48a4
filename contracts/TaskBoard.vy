# pragma version ~=0.4.3
"""
@title Deworker TaskBoard
@license Apache-2.0
@notice An on-chain task board with ERC-20 reward escrow.

        Lifecycle of a task (status values are the uint8 constants below):

            post ──> Open(1) ──claim──> Claimed(2) ──submit──> Submitted(3) ──approve──> Approved(4)
                      │  ^                 │                      │
                      │  └──release/expire─┘                      │
                      │  ^────────────────────────reject──────────┘
                      └──cancel──> Cancelled(5)

        - `post` escrows `reward` units of the ERC-20 `token` (pulled with
          `transferFrom`; the board's balance must grow by exactly `reward`,
          so fee-on-transfer tokens are refused).
        - A claim lasts `claim_ttl` seconds, but never past the task deadline,
          so a dead agent cannot lock a task: after `claim_expires` anyone may
          call `expire` to reopen the task.
        - `approve` / `reject` are restricted to the task's reviewer, which can
          be any address (an EOA, a Safe multisig, a Governor timelock).
        - Every state change emits an event with the task id and the acting
          address indexed: the board's history is its event log.

        Token calls are made with `raw_call` and accept tokens that return
        nothing (USDT-style) as well as tokens that return a bool; a call that
        reverts, returns false, or targets an address without code fails
        with "token transfer failed". `post` also reads the board's token
        balance before and after the pull ("token balanceOf failed" if the
        token has no working `balanceOf`).
"""

# Status values (uint8, easy to decode off-chain). 0 means "no such task".
STATUS_OPEN: constant(uint8) = 1
STATUS_CLAIMED: constant(uint8) = 2
STATUS_SUBMITTED: constant(uint8) = 3
STATUS_APPROVED: constant(uint8) = 4
STATUS_CANCELLED: constant(uint8) = 5

CID_LEN: constant(uint256) = 128
REASON_LEN: constant(uint256) = 256


struct Task:
    poster: address
    token: address
    reward: uint256
    deadline: uint256
    reviewer: address
    spec_cid: String[CID_LEN]
    status: uint8
    claimant: address
    claim_expires: uint256
    artifact_cid: String[CID_LEN]


event TaskPosted:
    task_id: indexed(uint256)
    poster: indexed(address)
    token: address
    reward: uint256
    deadline: uint256
    reviewer: indexed(address)
    spec_cid: String[CID_LEN]


event TaskClaimed:
    task_id: indexed(uint256)
    claimant: indexed(address)
    expires: uint256


event TaskReleased:
    task_id: indexed(uint256)
    claimant: indexed(address)


event TaskSubmitted:
    task_id: indexed(uint256)
    claimant: indexed(address)
    artifact_cid: String[CID_LEN]


event TaskApproved:
    task_id: indexed(uint256)
    reviewer: indexed(address)
    claimant: indexed(address)
    token: address
    reward: uint256


event TaskRejected:
    task_id: indexed(uint256)
    reviewer: indexed(address)
    claimant: indexed(address)
    reason: String[REASON_LEN]


event TaskCancelled:
    task_id: indexed(uint256)
    poster: indexed(address)
    refund: uint256


event TaskExpired:
    task_id: indexed(uint256)
    caller: indexed(address)
    claimant: indexed(address)


# Seconds a claim lasts (capped by the task deadline).
claim_ttl: public(immutable(uint256))

# Number of tasks ever posted; task ids are 1..task_count.
task_count: public(uint256)

_tasks: HashMap[uint256, Task]


@deploy
def __init__(claim_ttl_: uint256):
    """
    @param claim_ttl_ Seconds a claim lasts; must be > 0.
    """
    assert claim_ttl_ > 0, "zero claim ttl"
    claim_ttl = claim_ttl_


# --------------------------------------------------------------------------- views


@external
@view
def task(task_id: uint256) -> Task:
    """
    @notice The full record of a task; reverts "unknown task" for ids that do not exist.
    """
    self._check_exists(task_id)
    return self._tasks[task_id]


# --------------------------------------------------------------------------- actions


@external
@nonreentrant
def post(token: address, reward: uint256, deadline: uint256, reviewer: address, spec_cid: String[CID_LEN]) -> uint256:
    """
    @notice Post a task and escrow `reward` units of `token` (the caller must have
            approved the board for at least `reward`).
    @return The new task id (ids start at 1).
    """
    assert reward > 0, "zero reward"
    assert deadline > block.timestamp, "deadline passed"
    assert reviewer != empty(address), "zero reviewer"
    assert token.is_contract, "token has no code"
    assert len(spec_cid) > 0, "empty spec cid"

    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    self._tasks[task_id] = Task(
        poster=msg.sender,
        token=token,
        reward=reward,
        deadline=deadline,
        reviewer=reviewer,
        spec_cid=spec_cid,
        status=STATUS_OPEN,
        claimant=empty(address),
        claim_expires=0,
        artifact_cid="",
    )

    # the board's balance must grow by exactly `reward` (refuses fee-on-transfer tokens)
    balance_before: uint256 = self._balance_of(token)
    self._safe_transfer_from(token, msg.sender, self, reward)
    assert self._balance_of(token) == balance_before + reward, "reward not received"

    log TaskPosted(
        task_id=task_id,
        poster=msg.sender,
        token=token,
        reward=reward,
        deadline=deadline,
        reviewer=reviewer,
        spec_cid=spec_cid,
    )
    return task_id


@external
@nonreentrant
def claim(task_id: uint256):
    """
    @notice Claim an open task. The claim lasts `claim_ttl` seconds, capped at the deadline.
    """
    self._check_exists(task_id)
    assert self._tasks[task_id].status == STATUS_OPEN, "task not open"
    deadline: uint256 = self._tasks[task_id].deadline
    assert block.timestamp < deadline, "deadline passed"
    assert msg.sender != self._tasks[task_id].reviewer, "reviewer cannot claim"

    expires: uint256 = min(block.timestamp + claim_ttl, deadline)
    self._tasks[task_id].status = STATUS_CLAIMED
    self._tasks[task_id].claimant = msg.sender
    self._tasks[task_id].claim_expires = expires
    log TaskClaimed(task_id=task_id, claimant=msg.sender, expires=expires)


@external
@nonreentrant
def release(task_id: uint256):
    """
    @notice The claimant gives the task back; it becomes Open again.
    """
    self._check_exists(task_id)
    assert self._tasks[task_id].status == STATUS_CLAIMED, "task not claimed"
    assert msg.sender == self._tasks[task_id].claimant, "not claimant"

    self._reopen(task_id)
    log TaskReleased(task_id=task_id, claimant=msg.sender)


@external
@nonreentrant
def submit(task_id: uint256, artifact_cid: String[CID_LEN]):
    """
    @notice The claimant submits the artifact CID (once per claim, before the claim expires).
    """
    self._check_exists(task_id)
    assert self._tasks[task_id].status == STATUS_CLAIMED, "task not claimed"
    assert msg.sender == self._tasks[task_id].claimant, "not claimant"
    assert block.timestamp <= self._tasks[task_id].claim_expires, "claim expired"
    assert len(artifact_cid) > 0, "empty artifact cid"

    self._tasks[task_id].status = STATUS_SUBMITTED
    self._tasks[task_id].artifact_cid = artifact_cid
    log TaskSubmitted(task_id=task_id, claimant=msg.sender, artifact_cid=artifact_cid)


@external
@nonreentrant
def approve(task_id: uint256):
    """
    @notice The reviewer accepts the submission; the escrowed reward is paid to the claimant.
    """
    self._check_exists(task_id)
    assert self._tasks[task_id].status == STATUS_SUBMITTED, "task not submitted"
    assert msg.sender == self._tasks[task_id].reviewer, "not reviewer"

    # effects first, then the token transfer
    self._tasks[task_id].status = STATUS_APPROVED
    claimant: address = self._tasks[task_id].claimant
    token: address = self._tasks[task_id].token
    reward: uint256 = self._tasks[task_id].reward
    log TaskApproved(task_id=task_id, reviewer=msg.sender, claimant=claimant, token=token, reward=reward)
    self._safe_transfer(token, claimant, reward)


@external
@nonreentrant
def reject(task_id: uint256, reason: String[REASON_LEN]):
    """
    @notice The reviewer rejects the submission; the task is Open again and the reward stays escrowed.
    """
    self._check_exists(task_id)
    assert self._tasks[task_id].status == STATUS_SUBMITTED, "task not submitted"
    assert msg.sender == self._tasks[task_id].reviewer, "not reviewer"

    claimant: address = self._tasks[task_id].claimant
    self._reopen(task_id)
    log TaskRejected(task_id=task_id, reviewer=msg.sender, claimant=claimant, reason=reason)


@external
@nonreentrant
def cancel(task_id: uint256):
    """
    @notice The poster cancels an open (unclaimed) task and gets the reward back.
    """
    self._check_exists(task_id)
    assert self._tasks[task_id].status == STATUS_OPEN, "task not open"
    assert msg.sender == self._tasks[task_id].poster, "not poster"

    # effects first, then the token transfer
    self._tasks[task_id].status = STATUS_CANCELLED
    reward: uint256 = self._tasks[task_id].reward
    log TaskCancelled(task_id=task_id, poster=msg.sender, refund=reward)
    self._safe_transfer(self._tasks[task_id].token, msg.sender, reward)


@external
@nonreentrant
def expire(task_id: uint256):
    """
    @notice Anyone may reopen a task whose claim has expired without a submission.
    """
    self._check_exists(task_id)
    assert self._tasks[task_id].status == STATUS_CLAIMED, "task not claimed"
    assert block.timestamp > self._tasks[task_id].claim_expires, "claim not expired"

    claimant: address = self._tasks[task_id].claimant
    self._reopen(task_id)
    log TaskExpired(task_id=task_id, caller=msg.sender, claimant=claimant)


# --------------------------------------------------------------------------- internals


@internal
@view
def _check_exists(task_id: uint256):
    assert task_id > 0 and task_id <= self.task_count, "unknown task"


@internal
def _reopen(task_id: uint256):
    self._tasks[task_id].status = STATUS_OPEN
    self._tasks[task_id].claimant = empty(address)
    self._tasks[task_id].claim_expires = 0
    self._tasks[task_id].artifact_cid = ""


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
def _safe_transfer_from(token: address, owner: address, to: address, amount: uint256):
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        token,
        abi_encode(owner, to, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    self._check_token_call(token, success, response)

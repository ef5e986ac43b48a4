# pragma version ~=0.4.3
"""
@title Deworker AgenticCommerce (ERC-8183)
@license Apache-2.0
@notice Job escrow with evaluator attestation, written from the normative text of ERC-8183
        ("Agentic Commerce", Draft 2026-02-25; /work/shared/standards/erc-8183.md).

        States (the reference implementation's enum codes, so off-chain readers agree):

            Open(0) ──fund──> Funded(1) ──submit──> Submitted(2) ──complete──> Completed(3)
              │                 │  │                   │  │
              │                 │  └──reject (evaluator)┴──┼──> Rejected(4)   (escrow refunded to the client)
              └──reject (client)┘                          │
                                └──claimRefund after expiredAt (anyone)──> Expired(5) (refunded)

        - One ERC-20 payment token per contract (`paymentToken`). `fund` pulls `budget` with
          `transferFrom` and checks that the escrow grew by exactly `budget`, so fee-on-transfer
          tokens are refused ("budget not received"): an escrow that holds less than it owes
          could not pay every job it has.
        - The platform fee (`platformFeeBP`, basis points of the budget, fixed at deployment so it
          cannot change under a funded job) is paid to `platformTreasury` on completion only; the
          provider receives the rest (`PaymentReleased.amount`).
        - A non-hooked kernel (the ERC allows it): `createJob` refuses any hook other than the zero
          address ("hooks not supported") rather than accept one it would never call. `optParams`
          are accepted and not interpreted, as the ERC says.
        - Token calls are made with `raw_call` and accept tokens that return nothing (USDT-style) as
          well as tokens that return a bool; a call that reverts, returns false, or targets an
          address without code fails with "token transfer failed".
        - The owner (snekmate `ownable`) may move the treasury; nothing else is administered.
"""

from snekmate.auth import ownable
initializes: ownable

exports: (ownable.owner, ownable.transfer_ownership, ownable.renounce_ownership)

STATUS_OPEN: constant(uint8) = 0
STATUS_FUNDED: constant(uint8) = 1
STATUS_SUBMITTED: constant(uint8) = 2
STATUS_COMPLETED: constant(uint8) = 3
STATUS_REJECTED: constant(uint8) = 4
STATUS_EXPIRED: constant(uint8) = 5

DESCRIPTION_LEN: constant(uint256) = 8192
OPT_PARAMS_LEN: constant(uint256) = 2048
MAX_FEE_BP: constant(uint256) = 10000


struct Job:
    id: uint256
    client: address
    provider: address
    evaluator: address
    description: String[DESCRIPTION_LEN]
    budget: uint256
    expiredAt: uint256
    status: uint8
    hook: address


event JobCreated:
    jobId: indexed(uint256)
    client: indexed(address)
    provider: indexed(address)
    evaluator: address
    expiredAt: uint256
    hook: address


event ProviderSet:
    jobId: indexed(uint256)
    provider: indexed(address)


event BudgetSet:
    jobId: indexed(uint256)
    amount: uint256


event JobFunded:
    jobId: indexed(uint256)
    client: indexed(address)
    amount: uint256


event JobSubmitted:
    jobId: indexed(uint256)
    provider: indexed(address)
    deliverable: bytes32


event JobCompleted:
    jobId: indexed(uint256)
    evaluator: indexed(address)
    reason: bytes32


event JobRejected:
    jobId: indexed(uint256)
    rejector: indexed(address)
    reason: bytes32


event JobExpired:
    jobId: indexed(uint256)


event PaymentReleased:
    jobId: indexed(uint256)
    provider: indexed(address)
    amount: uint256


event Refunded:
    jobId: indexed(uint256)
    client: indexed(address)
    amount: uint256


event TreasurySet:
    treasury: indexed(address)


paymentToken: public(immutable(address))
platformFeeBP: public(immutable(uint256))
platformTreasury: public(address)

# Number of jobs ever created; job ids are 1..jobCounter.
jobCounter: public(uint256)

_jobs: HashMap[uint256, Job]


@deploy
def __init__(payment_token: address, treasury: address, fee_bp: uint256):
    """
    @param payment_token The ERC-20 every job of this contract is paid in.
    @param treasury Where the platform fee goes (may be any address but zero).
    @param fee_bp The platform fee in basis points of a job's budget, taken on completion (0..10000).
    """
    assert payment_token.is_contract, "token has no code"
    assert treasury != empty(address), "zero treasury"
    assert fee_bp <= MAX_FEE_BP, "fee too high"
    ownable.__init__()
    paymentToken = payment_token
    platformFeeBP = fee_bp
    self.platformTreasury = treasury


# --------------------------------------------------------------------------- views


@external
@view
def getJob(jobId: uint256) -> Job:
    """
    @notice The full record of a job; reverts "unknown job" for ids that do not exist.
    """
    self._check_exists(jobId)
    return self._jobs[jobId]


# --------------------------------------------------------------------------- admin


@external
def setTreasury(treasury: address):
    """
    @notice The owner moves the platform treasury (the fee rate itself is fixed at deployment).
    """
    ownable._check_owner()
    assert treasury != empty(address), "zero treasury"
    self.platformTreasury = treasury
    log TreasurySet(treasury=treasury)


# --------------------------------------------------------------------------- lifecycle


@external
@nonreentrant
def createJob(
    provider: address, evaluator: address, expiredAt: uint256, description: String[DESCRIPTION_LEN], hook: address
) -> uint256:
    """
    @notice Create a job in Open with the caller as client. `provider` may be zero (set later
            with `setProvider`, before funding).
    @return The new job id (ids start at 1).
    """
    assert evaluator != empty(address), "zero evaluator"
    assert expiredAt > block.timestamp, "expiry not in future"
    assert hook == empty(address), "hooks not supported"

    jobId: uint256 = self.jobCounter + 1
    self.jobCounter = jobId
    self._jobs[jobId] = Job(
        id=jobId,
        client=msg.sender,
        provider=provider,
        evaluator=evaluator,
        description=description,
        budget=0,
        expiredAt=expiredAt,
        status=STATUS_OPEN,
        hook=empty(address),
    )
    log JobCreated(
        jobId=jobId, client=msg.sender, provider=provider, evaluator=evaluator, expiredAt=expiredAt, hook=hook
    )
    return jobId


@external
@nonreentrant
def setProvider(jobId: uint256, provider: address, optParams: Bytes[OPT_PARAMS_LEN]):
    """
    @notice The client names the provider of a job created without one (Open only, once).
    """
    self._check_exists(jobId)
    assert self._jobs[jobId].status == STATUS_OPEN, "job not open"
    assert msg.sender == self._jobs[jobId].client, "not client"
    assert self._jobs[jobId].provider == empty(address), "provider already set"
    assert provider != empty(address), "zero provider"
    self._jobs[jobId].provider = provider
    log ProviderSet(jobId=jobId, provider=provider)


@external
@nonreentrant
def setBudget(jobId: uint256, amount: uint256, optParams: Bytes[OPT_PARAMS_LEN]):
    """
    @notice The client or the provider sets (proposes) the job's budget while it is Open.
    """
    self._check_exists(jobId)
    assert self._jobs[jobId].status == STATUS_OPEN, "job not open"
    assert msg.sender == self._jobs[jobId].client or msg.sender == self._jobs[jobId].provider, (
        "not client or provider"
    )
    self._jobs[jobId].budget = amount
    log BudgetSet(jobId=jobId, amount=amount)


@external
@nonreentrant
def fund(jobId: uint256, expectedBudget: uint256, optParams: Bytes[OPT_PARAMS_LEN]):
    """
    @notice The client escrows the budget (it must have approved this contract for it).
            `expectedBudget` must equal the budget: a provider's last-moment `setBudget` cannot
            make the client pay more than it agreed to.
    """
    self._check_exists(jobId)
    assert self._jobs[jobId].status == STATUS_OPEN, "job not open"
    assert msg.sender == self._jobs[jobId].client, "not client"
    budget: uint256 = self._jobs[jobId].budget
    assert budget > 0, "zero budget"
    assert self._jobs[jobId].provider != empty(address), "provider not set"
    assert budget == expectedBudget, "budget mismatch"
    # funding a job that anyone may refund at once would only cost the client gas
    assert block.timestamp < self._jobs[jobId].expiredAt, "job expired"

    self._jobs[jobId].status = STATUS_FUNDED
    balance_before: uint256 = self._balance_of()
    self._safe_transfer_from(msg.sender, self, budget)
    assert self._balance_of() == balance_before + budget, "budget not received"
    log JobFunded(jobId=jobId, client=msg.sender, amount=budget)


@external
@nonreentrant
def submit(jobId: uint256, deliverable: bytes32, optParams: Bytes[OPT_PARAMS_LEN]):
    """
    @notice The provider submits a reference to its work (Funded only).
    """
    self._check_exists(jobId)
    assert self._jobs[jobId].status == STATUS_FUNDED, "job not funded"
    assert msg.sender == self._jobs[jobId].provider, "not provider"
    self._jobs[jobId].status = STATUS_SUBMITTED
    log JobSubmitted(jobId=jobId, provider=msg.sender, deliverable=deliverable)


@external
@nonreentrant
def complete(jobId: uint256, reason: bytes32, optParams: Bytes[OPT_PARAMS_LEN]):
    """
    @notice The evaluator accepts the submission: the escrow goes to the provider, less the
            platform fee to the treasury.
    """
    self._check_exists(jobId)
    assert self._jobs[jobId].status == STATUS_SUBMITTED, "job not submitted"
    assert msg.sender == self._jobs[jobId].evaluator, "not evaluator"

    # effects first, then the token transfers
    self._jobs[jobId].status = STATUS_COMPLETED
    budget: uint256 = self._jobs[jobId].budget
    provider: address = self._jobs[jobId].provider
    fee: uint256 = budget * platformFeeBP // MAX_FEE_BP
    net: uint256 = budget - fee
    log JobCompleted(jobId=jobId, evaluator=msg.sender, reason=reason)
    log PaymentReleased(jobId=jobId, provider=provider, amount=net)
    if fee > 0:
        self._safe_transfer(self.platformTreasury, fee)
    if net > 0:
        self._safe_transfer(provider, net)


@external
@nonreentrant
def reject(jobId: uint256, reason: bytes32, optParams: Bytes[OPT_PARAMS_LEN]):
    """
    @notice The client rejects an Open job, or the evaluator a Funded or Submitted one (the
            escrow is refunded to the client). Terminal.
    """
    self._check_exists(jobId)
    status: uint8 = self._jobs[jobId].status
    if status == STATUS_OPEN:
        assert msg.sender == self._jobs[jobId].client, "not client"
    elif status == STATUS_FUNDED or status == STATUS_SUBMITTED:
        assert msg.sender == self._jobs[jobId].evaluator, "not evaluator"
    else:
        raise "job not rejectable"

    self._jobs[jobId].status = STATUS_REJECTED
    log JobRejected(jobId=jobId, rejector=msg.sender, reason=reason)
    if status != STATUS_OPEN:
        self._refund(jobId)


@external
@nonreentrant
def claimRefund(jobId: uint256):
    """
    @notice Anyone may refund the client of a Funded or Submitted job once `expiredAt` has come.
            Deliberately unconditional beyond that: refunds after expiry cannot be blocked.
    """
    self._check_exists(jobId)
    status: uint8 = self._jobs[jobId].status
    assert status == STATUS_FUNDED or status == STATUS_SUBMITTED, "job not refundable"
    assert block.timestamp >= self._jobs[jobId].expiredAt, "job not expired"

    self._jobs[jobId].status = STATUS_EXPIRED
    log JobExpired(jobId=jobId)
    self._refund(jobId)


# --------------------------------------------------------------------------- internals


@internal
@view
def _check_exists(jobId: uint256):
    assert jobId > 0 and jobId <= self.jobCounter, "unknown job"


@internal
def _refund(jobId: uint256):
    client: address = self._jobs[jobId].client
    budget: uint256 = self._jobs[jobId].budget
    log Refunded(jobId=jobId, client=client, amount=budget)
    self._safe_transfer(client, budget)


@internal
@view
def _balance_of() -> uint256:
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        paymentToken,
        abi_encode(self, method_id=method_id("balanceOf(address)")),
        max_outsize=32,
        is_static_call=True,
        revert_on_failure=False,
    )
    assert success and len(response) == 32, "token balanceOf failed"
    return convert(response, uint256)


@internal
@view
def _check_token_call(success: bool, response: Bytes[32]):
    # ok iff the call succeeded and returned nothing or exactly `true` (the token's code is checked at deployment)
    assert success, "token transfer failed"
    if len(response) != 0:
        assert len(response) == 32 and convert(response, uint256) == 1, "token transfer failed"


@internal
def _safe_transfer(to: address, amount: uint256):
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        paymentToken,
        abi_encode(to, amount, method_id=method_id("transfer(address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    self._check_token_call(success, response)


@internal
def _safe_transfer_from(owner: address, to: address, amount: uint256):
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(
        paymentToken,
        abi_encode(owner, to, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    self._check_token_call(success, response)

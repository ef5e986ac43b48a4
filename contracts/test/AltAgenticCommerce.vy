# pragma version ~=0.4.3
"""
@title AltAgenticCommerce (TEST ONLY)
@notice A second, deliberately different ERC-8183 implementation, so that the adapter is tested
        against an implementation it was not written beside. Where the standard leaves room it
        differs from contracts/AgenticCommerce.vy:
        - `JobCreated` and `JobSubmitted` do not index the provider;
        - the job getter's tuple has another field order and no `id` field;
        - a fixed 2.5% platform fee (250 basis points) to the deployer;
        - terse revert reasons ("wrong status", "unauthorized"), and no check of what `fund` received.
        Status codes are the ERC reference's (Open 0 .. Expired 5). Never deploy outside tests.
"""

FEE_BP: constant(uint256) = 250

struct Job:
    status: uint8
    client: address
    evaluator: address
    provider: address
    budget: uint256
    expiredAt: uint256
    description: String[4096]
    hook: address


event JobCreated:
    jobId: indexed(uint256)
    client: indexed(address)
    provider: address
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
    provider: address
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


interface Token:
    def transfer(to: address, amount: uint256) -> bool: nonpayable
    def transferFrom(owner: address, to: address, amount: uint256) -> bool: nonpayable


token: public(immutable(address))
treasury: public(immutable(address))
jobCounter: public(uint256)
jobs: HashMap[uint256, Job]


@deploy
def __init__(token_: address):
    token = token_
    treasury = msg.sender


@external
@view
def getJob(jobId: uint256) -> Job:
    assert jobId > 0 and jobId <= self.jobCounter, "no job"
    return self.jobs[jobId]


@external
@nonreentrant
def createJob(provider: address, evaluator: address, expiredAt: uint256, description: String[4096], hook: address) -> uint256:
    assert evaluator != empty(address) and hook == empty(address), "bad args"
    assert expiredAt > block.timestamp, "bad expiry"
    self.jobCounter += 1
    jobId: uint256 = self.jobCounter
    self.jobs[jobId] = Job(
        status=0, client=msg.sender, evaluator=evaluator, provider=provider, budget=0, expiredAt=expiredAt,
        description=description, hook=empty(address)
    )
    log JobCreated(jobId=jobId, client=msg.sender, provider=provider, evaluator=evaluator, expiredAt=expiredAt, hook=hook)
    return jobId


@external
@nonreentrant
def setProvider(jobId: uint256, provider: address, optParams: Bytes[1024]):
    job: Job = self.jobs[jobId]
    assert job.status == 0 and job.client != empty(address), "wrong status"
    assert msg.sender == job.client, "unauthorized"
    assert job.provider == empty(address) and provider != empty(address), "bad provider"
    self.jobs[jobId].provider = provider
    log ProviderSet(jobId=jobId, provider=provider)


@external
@nonreentrant
def setBudget(jobId: uint256, amount: uint256, optParams: Bytes[1024]):
    job: Job = self.jobs[jobId]
    assert job.status == 0 and job.client != empty(address), "wrong status"
    assert msg.sender == job.client or msg.sender == job.provider, "unauthorized"
    self.jobs[jobId].budget = amount
    log BudgetSet(jobId=jobId, amount=amount)


@external
@nonreentrant
def fund(jobId: uint256, expectedBudget: uint256, optParams: Bytes[1024]):
    job: Job = self.jobs[jobId]
    assert job.status == 0 and job.client != empty(address), "wrong status"
    assert msg.sender == job.client, "unauthorized"
    assert job.budget > 0 and job.budget == expectedBudget and job.provider != empty(address), "bad budget"
    self.jobs[jobId].status = 1
    assert extcall Token(token).transferFrom(msg.sender, self, job.budget), "transfer"
    log JobFunded(jobId=jobId, client=msg.sender, amount=job.budget)


@external
@nonreentrant
def submit(jobId: uint256, deliverable: bytes32, optParams: Bytes[1024]):
    job: Job = self.jobs[jobId]
    assert job.status == 1, "wrong status"
    assert msg.sender == job.provider, "unauthorized"
    self.jobs[jobId].status = 2
    log JobSubmitted(jobId=jobId, provider=msg.sender, deliverable=deliverable)


@external
@nonreentrant
def complete(jobId: uint256, reason: bytes32, optParams: Bytes[1024]):
    job: Job = self.jobs[jobId]
    assert job.status == 2, "wrong status"
    assert msg.sender == job.evaluator, "unauthorized"
    self.jobs[jobId].status = 3
    fee: uint256 = job.budget * FEE_BP // 10000
    assert extcall Token(token).transfer(treasury, fee), "transfer"
    assert extcall Token(token).transfer(job.provider, job.budget - fee), "transfer"
    log PaymentReleased(jobId=jobId, provider=job.provider, amount=job.budget - fee)
    log JobCompleted(jobId=jobId, evaluator=msg.sender, reason=reason)


@external
@nonreentrant
def reject(jobId: uint256, reason: bytes32, optParams: Bytes[1024]):
    job: Job = self.jobs[jobId]
    if job.status == 0 and job.client != empty(address):
        assert msg.sender == job.client, "unauthorized"
    else:
        assert job.status == 1 or job.status == 2, "wrong status"
        assert msg.sender == job.evaluator, "unauthorized"
        assert extcall Token(token).transfer(job.client, job.budget), "transfer"
        log Refunded(jobId=jobId, client=job.client, amount=job.budget)
    self.jobs[jobId].status = 4
    log JobRejected(jobId=jobId, rejector=msg.sender, reason=reason)


@external
@nonreentrant
def claimRefund(jobId: uint256):
    job: Job = self.jobs[jobId]
    assert job.status == 1 or job.status == 2, "wrong status"
    assert block.timestamp >= job.expiredAt, "not expired"
    self.jobs[jobId].status = 5
    assert extcall Token(token).transfer(job.client, job.budget), "transfer"
    log Refunded(jobId=jobId, client=job.client, amount=job.budget)
    log JobExpired(jobId=jobId)

# pragma version ~=0.4.3
"""
@title NoReturnToken (TEST ONLY)
@notice A USDT-like token: `transfer`, `transferFrom` and `approve` return nothing and
        revert on insufficient balance/allowance. Like USDT it can charge a transfer fee
        (`set_fee_bps`, default 0; the fee is burned) so tests can model fee-on-transfer tokens.
        Anyone may mint. Never deploy outside tests.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)
fee_bps: public(uint256)


@deploy
def __init__(initial_supply: uint256):
    self._mint(msg.sender, initial_supply)


@external
def mint(owner: address, amount: uint256):
    self._mint(owner, amount)


@external
def set_fee_bps(fee_bps: uint256):
    assert fee_bps <= 10000
    self.fee_bps = fee_bps


@external
def transfer(to: address, amount: uint256):
    self._transfer(msg.sender, to, amount)


@external
def transferFrom(owner: address, to: address, amount: uint256):
    allowed: uint256 = self.allowance[owner][msg.sender]
    assert allowed >= amount, "insufficient allowance"
    self.allowance[owner][msg.sender] = allowed - amount
    self._transfer(owner, to, amount)


@external
def approve(spender: address, amount: uint256):
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)


@internal
def _mint(owner: address, amount: uint256):
    self.balanceOf[owner] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=owner, value=amount)


@internal
def _transfer(owner: address, to: address, amount: uint256):
    assert self.balanceOf[owner] >= amount, "insufficient balance"
    fee: uint256 = amount * self.fee_bps // 10000
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - fee
    self.totalSupply -= fee
    log Transfer(sender=owner, receiver=to, value=amount - fee)

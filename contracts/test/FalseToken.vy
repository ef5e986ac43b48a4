# pragma version ~=0.4.3
"""
@title FalseToken (TEST ONLY)
@notice An ERC-20 whose `transfer` / `transferFrom` return `false` instead of reverting
        when the balance or allowance is insufficient. Anyone may mint and anyone may
        overwrite any balance (`set_balance`) so tests can make a payout fail.
        Never deploy outside tests.
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


@deploy
def __init__(initial_supply: uint256):
    self.balanceOf[msg.sender] = initial_supply
    self.totalSupply = initial_supply
    log Transfer(sender=empty(address), receiver=msg.sender, value=initial_supply)


@external
def mint(owner: address, amount: uint256):
    self.balanceOf[owner] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=owner, value=amount)


@external
def set_balance(owner: address, amount: uint256):
    self.totalSupply = self.totalSupply - self.balanceOf[owner] + amount
    self.balanceOf[owner] = amount


@external
def transfer(to: address, amount: uint256) -> bool:
    return self._transfer(msg.sender, to, amount)


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed < amount:
        return False
    if not self._transfer(owner, to, amount):
        return False
    self.allowance[owner][msg.sender] = allowed - amount
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@internal
def _transfer(owner: address, to: address, amount: uint256) -> bool:
    if self.balanceOf[owner] < amount:
        return False
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=owner, receiver=to, value=amount)
    return True

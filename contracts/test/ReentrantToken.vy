# pragma version ~=0.4.3
"""
@title ReentrantToken (TEST ONLY)
@notice An ERC-20 whose `transfer` calls back into `target` with `payload` before
        moving the tokens (a hostile revenue token), and records whether that
        reentrant call succeeded. Anyone may mint and set the callback. Never
        deploy outside tests.
"""

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)
target: public(address)
payload: public(Bytes[100])
attempts: public(uint256)
reentered: public(bool)


@external
def mint(owner: address, amount: uint256):
    self.balanceOf[owner] += amount
    self.totalSupply += amount


@external
def set_callback(target: address, payload: Bytes[100]):
    self.target = target
    self.payload = payload


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    if self.target != empty(address):
        self.attempts += 1
        ok: bool = raw_call(self.target, self.payload, revert_on_failure=False)
        self.reentered = self.reentered or ok
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    assert self.allowance[owner][msg.sender] >= amount, "insufficient allowance"
    self.allowance[owner][msg.sender] -= amount
    self._move(owner, to, amount)
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    assert self.balanceOf[owner] >= amount, "insufficient balance"
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount

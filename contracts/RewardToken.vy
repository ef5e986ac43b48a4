# pragma version ~=0.4.3
"""
@title Deworker RewardToken
@license Apache-2.0
@notice A plain ERC-20 (snekmate 0.1.2, with EIP-2612 permit) for demos and tests.
        The deployer becomes `owner` and receives `initial_supply`. Minting is
        restricted to minters: the owner is the only minter unless it adds
        others with `set_minter` (ownership transfer moves the minter role).
        Any standard ERC-20 works as a TaskBoard reward; this one is not special.
"""

from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8, initial_supply_: uint256):
    """
    @param name_ Token name (also the EIP-712 domain name, version "1").
    @param symbol_ Token symbol.
    @param decimals_ Decimal places.
    @param initial_supply_ Units minted to the deployer.
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
    if initial_supply_ != 0:
        erc20._mint(msg.sender, initial_supply_)

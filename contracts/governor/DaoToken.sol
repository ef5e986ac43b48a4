// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title Deworker DAO token
/// @notice The DAO's voting token, deployed with the Governor: OpenZeppelin's ERC20Votes (block-number clock),
///         the whole fixed supply minted to the deployer, who hands it out. Holders must delegate (to themselves or
///         others) before their tokens count as votes, as with any ERC20Votes token.
contract DaoToken is ERC20, ERC20Permit, ERC20Votes {
    constructor(string memory name_, string memory symbol_, uint256 supply_)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
    {
        _mint(msg.sender, supply_);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}

"""The ``Chain`` port's adapters and the transaction sender.

- ``EthTesterChain``: in-process py-evm (eth-tester), the default for demos and tests.
- ``RpcChain``: any EVM node over JSON-RPC (anvil, a hosted node), with bounded retries for transient faults.
- ``MultiRpcChain``: several nodes of one chain: reads fail over and skip lagging nodes, transactions go to all.
- ``TxSender``: local signing, nonces, gas and fees for one key, over either adapter.
- ``AnvilProcess``: a local anvil dev node for tests and ``deworker devnet``.

Adapter package: the domain core and the ports must not import it; only the bootstrap, the CLI and tests do.
"""

from orchestrator.adapters.chain.anvil import (
    ANVIL_CHAIN_ID,
    AnvilFailed,
    AnvilNotFound,
    AnvilProcess,
    DetachedAnvil,
    anvil_dev_accounts,
    find_anvil,
)
from orchestrator.adapters.chain.base import (
    BaseChain,
    DevAccount,
    NonceTooLow,
    ReceiptTimeout,
    decode_revert_reason,
)
from orchestrator.adapters.chain.ethtester import EthTesterChain
from orchestrator.adapters.chain.pool import MultiRpcChain, NodeHealth
from orchestrator.adapters.chain.rpc import RpcChain
from orchestrator.adapters.chain.tx import SignedTx, TxSender, contract_address

__all__ = [
    "ANVIL_CHAIN_ID",
    "AnvilFailed",
    "AnvilNotFound",
    "AnvilProcess",
    "BaseChain",
    "DetachedAnvil",
    "DevAccount",
    "EthTesterChain",
    "MultiRpcChain",
    "NodeHealth",
    "NonceTooLow",
    "ReceiptTimeout",
    "RpcChain",
    "SignedTx",
    "TxSender",
    "anvil_dev_accounts",
    "contract_address",
    "decode_revert_reason",
    "find_anvil",
]

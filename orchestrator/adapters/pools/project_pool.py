"""``RevenuePools`` over deployed ``ProjectPool`` contracts: reads are ``eth_call``s, claims go through the holder's
wallet (policy-gated), claims paid are read back from ``RevenueClaimed`` logs filtered by the holder's topic."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address

from contracts.compile import load_artifact
from orchestrator.adapters.boards.abi import ContractABI
from orchestrator.domain.errors import ChainError
from orchestrator.ports.chain import Chain, LogEntry, Signer
from orchestrator.ports.revenue import Holding, RevenueClaim

MAX_REVENUE_TOKENS = 8  # ProjectPool.vy


@functools.cache
def pool_abi() -> ContractABI:
    return ContractABI(load_artifact("ProjectPool")["abi"])


class ProjectPoolRevenue:
    """The pools in ``pools`` (addresses), on ``chain``."""

    def __init__(self, *, chain: Chain, pools: Sequence[str], from_block: int = 0) -> None:
        self.chain = chain
        self.pools = [to_checksum_address(p) for p in pools]
        self.from_block = from_block
        self._tokens: dict[str, list[str]] = {}

    def _view(self, pool: str, fn: str, *args: object) -> object:
        out = pool_abi().decode_output(fn, self.chain.call(pool, pool_abi().encode_call(fn, *args)))
        return out[0]

    def _revenue_tokens(self, pool: str) -> list[str]:
        tokens = self._tokens.get(pool, [])
        while len(tokens) < MAX_REVENUE_TOKENS:  # tokens are only ever appended: read the new ones
            try:
                tokens.append(to_checksum_address(str(self._view(pool, "revenue_tokens", len(tokens)))))
            except ChainError:  # past the end of the array
                break
        self._tokens[pool] = tokens
        return tokens

    def holders(self, pool: str) -> list[str]:
        """Every holder of ``pool``'s shares, in first-mint order."""
        count = int(self._view(pool, "holder_count"))  # type: ignore[call-overload]
        return [to_checksum_address(str(self._view(pool, "holder_at", i))) for i in range(count)]

    def holdings(self, holder: str) -> list[Holding]:
        found = []
        for pool in self.pools:
            shares = int(self._view(pool, "balanceOf", holder))  # type: ignore[call-overload]
            if shares == 0:
                continue
            for token in self._revenue_tokens(pool):
                claimable = int(self._view(pool, "claimable", holder, token))  # type: ignore[call-overload]
                found.append(Holding(pool=pool, token=token, shares=shares, claimable=claimable))
        return found

    def claim(self, *, pool: str, token: str, wallet: Signer) -> RevenueClaim:
        receipt = wallet.send(pool, pool_abi().encode_call("claim", token))
        for log in receipt.logs:
            claim = self._decode(log)
            if claim is not None and claim.holder == to_checksum_address(wallet.address):
                return claim
        raise ChainError(f"claim {receipt.tx_hash} on pool {pool} logged no RevenueClaimed")

    def claims(self, holder: str, *, from_block: int = 0) -> list[RevenueClaim]:
        topic = pool_abi().topic("RevenueClaimed")
        holder_topic = encode(["address"], [holder])
        head = self.chain.block_number()
        found: list[RevenueClaim] = []
        for pool in self.pools:
            logs = self.chain.get_logs(
                address=pool,
                topics=[topic, None, holder_topic],
                from_block=max(from_block, self.from_block),
                to_block=head,
            )
            found.extend(c for c in map(self._decode, logs) if c is not None)
        return sorted(found, key=lambda c: (c.block_number, c.tx_hash))

    def _decode(self, log: LogEntry) -> RevenueClaim | None:
        if to_checksum_address(log.address) not in self.pools:
            return None
        event = pool_abi().decode_log(log)
        if event is None or event.name != "RevenueClaimed":
            return None
        return RevenueClaim(
            pool=to_checksum_address(log.address),
            token=to_checksum_address(event.args["token"]),
            holder=to_checksum_address(event.args["holder"]),
            amount=int(event.args["amount"]),
            tx_hash=log.tx_hash,
            block_number=log.block_number,
        )

"""KV-cache blocks with a prefix cache, as vLLM V1's block manager keeps them.

Blocks hold `block_size` tokens. Full prompt blocks are registered under a
chained hash of everything before them; a later request whose prompt starts
with the same blocks reuses them instead of computing them again. A cached
block nobody references stays cached until its space is needed (LRU).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass(eq=False)
class BlockTable:
    """The blocks one sequence holds."""

    shared: list[int] = field(default_factory=list)
    """Hashes of cached prompt blocks, in prompt order (always a prefix of the prompt)."""
    private: int = 0
    """Blocks not (yet) in the prefix cache."""

    @property
    def blocks(self) -> int:
        return len(self.shared) + self.private


class KVCache:
    """Block accounting for every running sequence."""

    def __init__(self, total_tokens: int, block_size: int) -> None:
        self.block_size = block_size
        self.total_blocks = max(1, total_tokens // block_size)
        self._cached: OrderedDict[int, int] = OrderedDict()  # hash -> reference count
        self._shared_in_use = 0
        self._private_used = 0

    @property
    def used_blocks(self) -> int:
        """Blocks referenced by some sequence (evictable cached blocks count as free)."""
        return self._private_used + self._shared_in_use

    @property
    def usage(self) -> float:
        """Fraction of blocks in use, as `vllm:kv_cache_usage_perc` reports it (0..1)."""
        return self.used_blocks / self.total_blocks

    def match_prefix(self, table: BlockTable, hashes: list[int], prompt_tokens: int) -> int:
        """Take references on the cached leading blocks of a prompt; return the tokens they cover.

        At least one prompt token is always left to compute, as in vLLM.
        """
        usable = hashes
        if len(hashes) * self.block_size >= prompt_tokens:
            usable = hashes[:-1]
        for block_hash in usable:
            refs = self._cached.get(block_hash)
            if refs is None:
                break
            if refs == 0:
                self._shared_in_use += 1
            self._cached[block_hash] = refs + 1
            self._cached.move_to_end(block_hash)
            table.shared.append(block_hash)
        return len(table.shared) * self.block_size

    def allocate(self, table: BlockTable, tokens: int) -> bool:
        """Make room in `table` for `tokens` tokens in total; False if the cache is full."""
        need = -(-tokens // self.block_size) - table.blocks
        if need <= 0:
            return True
        if need > self.total_blocks - self.used_blocks:
            return False
        overflow = self._private_used + len(self._cached) + need - self.total_blocks
        while overflow > 0:  # evict unreferenced cached blocks, least recently used first
            for block_hash, refs in self._cached.items():
                if refs == 0:
                    del self._cached[block_hash]
                    break
            overflow -= 1
        self._private_used += need
        table.private += need
        return True

    def register(self, table: BlockTable, hashes: list[int], computed_tokens: int) -> None:
        """Move the sequence's newly computed full prompt blocks into the prefix cache."""
        full = min(len(hashes), computed_tokens // self.block_size)
        while len(table.shared) < full and table.private > 0:
            block_hash = hashes[len(table.shared)]
            refs = self._cached.get(block_hash)
            table.private -= 1
            self._private_used -= 1
            if refs is None or refs == 0:
                self._shared_in_use += 1
            self._cached[block_hash] = (refs or 0) + 1
            self._cached.move_to_end(block_hash)
            table.shared.append(block_hash)

    def release(self, table: BlockTable) -> None:
        """Drop every block the sequence holds; its cached blocks stay cached."""
        for block_hash in table.shared:
            refs = self._cached[block_hash] - 1
            self._cached[block_hash] = refs
            if refs == 0:
                self._shared_in_use -= 1
        self._private_used -= table.private
        table.shared.clear()
        table.private = 0

"""The repository map: the paths of the base commit, bounded, shown to planner and workers."""

from __future__ import annotations

import asyncio
from collections import Counter


async def repo_map(repo: str, commit: str, max_files: int) -> str:
    """Paths tracked at `commit`, one per line; past `max_files`, the rest are summarised by directory.

    Read from the commit (not the working tree), so every worker sees the same
    bytes and the map is a shared prompt prefix.
    """
    process = await asyncio.create_subprocess_exec(
        "git", "-C", repo, "ls-tree", "-r", "--name-only", commit,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    paths = out.decode("utf-8", errors="replace").splitlines()
    if len(paths) <= max_files:
        return "\n".join(paths) or "(empty repository)"
    shown = paths[:max_files]
    rest = Counter(p.rsplit("/", 1)[0] if "/" in p else "." for p in paths[max_files:])
    folded = ", ".join(f"{folder}/ ({n})" for folder, n in rest.most_common(20))
    more = f" and {len(rest) - 20} more folders" if len(rest) > 20 else ""
    return "\n".join(shown) + f"\n... {len(paths) - max_files} more files in: {folded}{more}"

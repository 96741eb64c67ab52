"""Which tool calls on one worktree may run at the same time (issue 17: parallel edits of one file were lost).

A worker runs one turn's tool calls concurrently. Two edits of one file each
read it, change it and write it back: run together, one edit is lost while
both report success. So every call holds a lock for what it touches:

- a call on one path (view, create, str_replace, insert) holds that path, shared
  to read and exclusive to write, after announcing itself on the whole tree;
- a call over the whole tree holds the tree: shared to read it (list_files,
  grep, git_status, git_diff), exclusive when it may change anything
  (run_command, run_tests).

On the tree, a path reader and a path writer announce different intents, so a
whole-tree reader waits for writers of single paths but not for their readers:

|               | path read | path write | tree read | tree write |
| ------------- | --------- | ---------- | --------- | ---------- |
| path read     | yes       | yes        | yes       | no         |
| path write    | yes       | yes        | no        | no         |
| tree read     | yes       | no         | yes       | no         |
| tree write    | no        | no         | no        | no         |

Locks are granted first come, first served, so a waiting whole-tree writer is
not starved by a stream of readers. A call takes the tree before its path and
holds at most one path, so no two calls can wait on each other in a cycle.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from sevenfold.tools.paths import resolve_in

T = TypeVar("T")

_TREE: Mapping[str, frozenset[str]] = {
    "path read": frozenset({"path read", "path write", "tree read"}),
    "path write": frozenset({"path read", "path write"}),
    "tree read": frozenset({"path read", "tree read"}),
    "tree write": frozenset(),
}
_PATH: Mapping[str, frozenset[str]] = {"read": frozenset({"read"}), "write": frozenset()}


class ModeLock:
    """An asyncio lock held in modes; two holders may overlap only if their modes are compatible. First come, first served."""

    def __init__(self, compatible: Mapping[str, frozenset[str]]) -> None:
        self._compatible = compatible
        self._held: Counter[str] = Counter()
        self._queue: deque[tuple[str, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """How many callers are queued (for tests and debugging)."""
        return len(self._queue)

    @asynccontextmanager
    async def hold(self, mode: str) -> AsyncIterator[None]:
        """Hold the lock in `mode` for the body; released on exit, also on cancellation."""
        await self._acquire(mode)
        try:
            yield
        finally:
            self._release(mode)

    def _fits(self, mode: str) -> bool:
        return all(held in self._compatible[mode] for held, count in self._held.items() if count)

    async def _acquire(self, mode: str) -> None:
        if not self._queue and self._fits(mode):
            self._held[mode] += 1
            return
        granted = asyncio.get_running_loop().create_future()
        self._queue.append((mode, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():  # granted, then cancelled before it could run
                self._release(mode)
            else:
                self._queue.remove((mode, granted))
                self._grant()  # the head of the queue may have been what held the others back
            raise

    def _release(self, mode: str) -> None:
        self._held[mode] -= 1
        self._grant()

    def _grant(self) -> None:
        while self._queue and self._fits(self._queue[0][0]):
            mode, granted = self._queue.popleft()
            self._held[mode] += 1
            granted.set_result(None)


class WorktreeLocks:
    """The locks of one worktree's tools: one for the whole tree, one per path (kept for the toolset's life)."""

    def __init__(self, worktree: Path) -> None:
        self.worktree = worktree
        self.tree = ModeLock(_TREE)
        self._paths: dict[str, ModeLock] = {}

    @asynccontextmanager
    async def whole_tree(self, *, write: bool) -> AsyncIterator[None]:
        """Hold the whole worktree: exclusively to `write` (a command may change anything), else shared with readers."""
        async with self.tree.hold("tree write" if write else "tree read"):
            yield

    @asynccontextmanager
    async def path(self, path: str, *, write: bool) -> AsyncIterator[None]:
        """Hold one path: calls on the same file (however it is spelled) never overlap if either writes."""
        async with self.tree.hold("path write" if write else "path read"):
            # Resolved under the tree lock, so no command can re-point a symlink between this and the call.
            key = await asyncio.to_thread(self._key, path)
            lock = self._paths.setdefault(key, ModeLock(_PATH))
            async with lock.hold("write" if write else "read"):
                yield

    def _key(self, path: str) -> str:
        """The real path `path` names, so `a.py`, `./a.py`, `sub/../a.py` and a link to it share one lock."""
        try:
            return str(resolve_in(self.worktree, path))
        except Exception:  # the call will refuse it with a message; the text is key enough
            return path


async def in_thread(function: Callable[..., T], *args: object) -> T:
    """`function(*args)`, run in a thread.

    If the caller is cancelled, this still waits for the thread to finish before
    raising, so a lock held around the call is never released while the work
    is still writing.
    """
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise

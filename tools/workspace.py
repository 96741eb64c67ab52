"""A run's workspace: a git worktree and branch per worker, in the user's repository, never its checkout.

Branches are named `sevenfold/<run-id>/<key>`; worktrees live outside the
repository (under the run directory). The user's working tree, index and
current branch are never touched: worktrees start from a commit, so
uncommitted changes in the user's checkout are neither read nor lost (they are
reported as `dirty_paths`). Git commands that change shared repository state
(adding or removing worktrees, moving branches) are serialized per repository;
everything else runs in parallel. All git work runs in subprocesses, off the
event loop, through `sevenfold.tools.git`: no hooks, no fsmonitor, no network,
no secrets in the environment. A worktree's git directory is found in the
repository's common directory, never read from the worktree's `.git` file,
which the model can rewrite.
"""

from __future__ import annotations

import asyncio
import shutil
import weakref
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from sevenfold.errors import WorkspaceError
from sevenfold.tools.git import (
    DIFF_FLAGS,
    GitError,
    Repository,
    open_repository,
    registered_worktrees,
    restore_gitfile,
    run_git,
    run_git_sync,
)

# One lock per repository and event loop: an asyncio.Lock cannot be shared between loops.
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()

__all__ = ["GitError", "MergeConflict", "MergeResult", "Repository", "Workspace", "Worktree", "open_repository"]


@dataclass(frozen=True)
class Worktree:
    """A checked-out branch in its own folder."""

    path: Path
    branch: str


class MergeConflict(BaseModel):
    """Where a merge stopped."""

    branch: str
    files: list[str]
    hunks: str = ""


class MergeResult(BaseModel):
    """Which branches merged, in order, and the first conflict if any (that merge was aborted)."""

    merged: list[str] = Field(default_factory=list)
    conflict: MergeConflict | None = None
    commit: str = ""


class Workspace:
    """Worktrees and branches of one run in one repository."""

    def __init__(self, repo: Repository, run_id: str, worktrees_root: Path) -> None:
        self.repo_path = repo.path
        self.common_dir = repo.common_dir
        self.run_id = run_id
        self.worktrees_root = worktrees_root
        self._pruned = False
        self._restored: set[Path] = set()
        self._gitdirs: dict[Path, Path] = {}
        self.base_commit = repo.head
        # --no-optional-locks: looking must not rewrite the user's index
        status = run_git_sync("--no-optional-locks", "status", "--porcelain", "--untracked-files=all", cwd=repo.path)
        self.dirty_paths = [line[3:] for line in status.splitlines() if line]

    @classmethod
    def open(cls, repo: Path, run_id: str, worktrees_root: Path) -> Workspace:
        """Validate the repository and describe the run's workspace; writes nothing."""
        return cls(open_repository(repo), run_id, worktrees_root)

    def branch_for(self, key: str) -> str:
        """The branch of a worker (or of integration, or the result)."""
        return f"sevenfold/{self.run_id}/{key}"

    @property
    def _lock(self) -> asyncio.Lock:
        per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
        return per_loop.setdefault(str(self.repo_path), asyncio.Lock())

    async def _git(
        self, *args: str, worktree: Path | None = None, check: bool = True, index: Path | None = None
    ) -> str:
        """Git in the user's repository, or in one of this run's worktrees with its git directory named."""
        if worktree is None:
            return await run_git(*args, cwd=self.repo_path, check=check, index=index)
        gitdir = await self._gitdir(worktree)
        return await run_git(*args, cwd=worktree, git_dir=gitdir, work_tree=worktree, index=index, check=check)

    async def _gitdir(self, worktree: Path) -> Path:
        if worktree not in self._gitdirs:
            found = await asyncio.to_thread(self._registered_gitdir, worktree)
            if found is None:
                raise WorkspaceError(
                    f"{worktree} is not a worktree of {self.repo_path} (no entry in {self.common_dir / 'worktrees'})"
                )
            self._gitdirs[worktree] = found
        return self._gitdirs[worktree]

    def _registered_gitdir(self, worktree: Path) -> Path | None:
        return registered_worktrees(self.common_dir).get(worktree.resolve())

    def _restore_gitfiles(self) -> None:
        """Point this run's worktrees' `.git` files back at their git directories, wherever a command changed them.

        Sevenfold never reads them, but `git worktree prune` drops a worktree whose `.git` is gone, `git worktree
        remove` refuses one whose `.git` points elsewhere, and the model's own git commands should use the real one.
        """
        root = self.worktrees_root.resolve()
        for folder, gitdir in registered_worktrees(self.common_dir).items():
            if folder.parent == root and folder.is_dir():
                restore_gitfile(folder, gitdir)

    async def ensure_worktree(self, key: str, base: str) -> Worktree:
        """The worktree of `key`, created on branch `sevenfold/<run>/<key>` from `base`, or found again after a restart."""
        path = self.worktrees_root / key
        branch = self.branch_for(key)
        async with self._lock:
            if not self._pruned:  # once per workspace: stale entries come from before this process started
                await asyncio.to_thread(self._restore_gitfiles)  # a worktree whose `.git` was removed is not stale
                await self._git("worktree", "prune")
                self._pruned = True
            if await asyncio.to_thread(self._registered_gitdir, path) is not None:
                self._gitdirs.pop(path, None)
                await asyncio.to_thread(self._restore_gitfiles)
                return Worktree(path, branch)
            await asyncio.to_thread(self.worktrees_root.mkdir, parents=True, exist_ok=True)
            exists = await self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
            if exists.strip():
                await self._git("worktree", "add", "--quiet", str(path), branch)
            else:
                await self._git("worktree", "add", "--quiet", "-b", branch, str(path), base)
        return Worktree(path, branch)

    async def nested_repositories(self, worktree: Path) -> list[str]:
        """Untracked folders of the worktree that are git repositories of their own: never snapshotted or committed.

        git cannot add one without commits, and would add one with commits as a submodule pointing at a commit that
        exists nowhere else; so they stay out of the worker's branch, and the worker's report should name them.
        """
        listing = await self._git("ls-files", "-z", "--others", "--exclude-standard", worktree=worktree)
        return sorted(entry.rstrip("/") for entry in listing.split("\0") if entry.endswith("/"))

    async def _addable(self, worktree: Path) -> list[str]:
        """Pathspecs for `git add -A`: everything but nested repositories and submodules.

        A submodule's checkout is the model's (its config too): `git add` would start git inside it.
        """
        staged = await self._git("ls-files", "-z", "--stage", worktree=worktree)
        submodules = [line.split("\t", 1)[1] for line in staged.split("\0") if line.startswith("160000 ")]
        left_out = await self.nested_repositories(worktree) + submodules
        return ["--", ".", *(f":(exclude,literal){name}" for name in left_out)]

    async def snapshot(self, worktree: Path) -> str:
        """The tree of the worktree's files as they are now (tracked or new, not ignored), written to the object store.

        Uses a scratch copy of the worktree's index, so what the worker sees staged in `git status` and
        `git diff` does not change. A snapshot taken after each step that may write files is what `restore_once`
        goes back to. Nested repositories and submodule checkouts are left out.
        """
        gitdir = await self._gitdir(worktree)
        scratch = gitdir / "sevenfold-snapshot.index"
        await asyncio.to_thread(_copy_index, gitdir / "index", scratch)
        await self._git("add", "-A", *await self._addable(worktree), worktree=worktree, index=scratch)
        return (await self._git("write-tree", worktree=worktree, index=scratch)).strip()

    def restore_again(self, worktree: Path) -> None:
        """A step in this worktree was cut short in this process (cancelled): check it again on the next visit."""
        self._restored.discard(worktree)

    async def restore_once(self, worktree: Path, tree: str) -> bool:
        """Once per process and worktree: put the worktree back to `tree` (a snapshot or commit-ish).

        A run killed mid-step leaves the worktree as that step left it: files a tool call wrote after the last
        checkpoint, a merge half done, lock files of git commands that died. The step runs again on resume, so
        the worktree must be as it was when the checkpoint was written. Safe because a run is driven by one
        process at a time (`sevenfold.runs` holds a lock). Returns whether anything had to be undone.
        """
        if worktree in self._restored:
            return False
        self._restored.add(worktree)
        gitdir = await self._gitdir(worktree)
        branch = (await self._git("symbolic-ref", "--quiet", "HEAD", worktree=worktree, check=False)).strip()
        debris = [gitdir / "index.lock", gitdir / "HEAD.lock"] + (
            [self.common_dir / f"{branch}.lock"] if branch else []
        )
        undone = await asyncio.to_thread(_remove_existing, debris)
        if await asyncio.to_thread((gitdir / "MERGE_HEAD").exists):
            await self._git("merge", "--abort", worktree=worktree, check=False)
            undone = True
        wanted = (await self._git("rev-parse", f"{tree}^{{tree}}", worktree=worktree)).strip()
        if await self.snapshot(worktree) != wanted:
            await self._git("read-tree", "--reset", "-u", wanted, worktree=worktree)
            await self._git("clean", "-fdq", worktree=worktree)
            await self._git("reset", "-q", worktree=worktree)  # the index back to the branch; the files stay
            undone = True
        return undone

    def existing_worktrees(self) -> list[Worktree]:
        """This run's worktrees on disk (after a restart)."""
        if not self.worktrees_root.is_dir():
            return []
        registered = registered_worktrees(self.common_dir)
        return [
            Worktree(p, self.branch_for(p.name))
            for p in sorted(self.worktrees_root.iterdir())
            if p.resolve() in registered
        ]

    async def commit_worktree(
        self, worktree: Path, message: str, base: str | None = None
    ) -> tuple[str | None, list[str]]:
        """Commit everything changed in a worktree; returns (commit or None if nothing changed, files changed since `base`).

        Nested repositories are left out (see `nested_repositories`), as are submodule checkouts.
        """
        await self._git("add", "-A", *await self._addable(worktree), worktree=worktree)
        staged = await self._git("diff", *DIFF_FLAGS, "--cached", "--name-only", worktree=worktree)
        commit = None
        if staged.strip():
            await self._git("commit", "--quiet", "--no-verify", "-m", message, worktree=worktree)
            commit = (await self._git("rev-parse", "HEAD", worktree=worktree)).strip()
        files = (
            await self._git("diff", *DIFF_FLAGS, "--name-only", f"{base or self.base_commit}...HEAD", worktree=worktree)
        ).split()
        if commit is None and files:
            commit = (await self._git("rev-parse", "HEAD", worktree=worktree)).strip()  # committed before a restart
        return commit, files

    async def head(self, worktree: Worktree) -> str:
        """The commit a worktree is at."""
        return (await self._git("rev-parse", "HEAD", worktree=worktree.path)).strip()

    async def merge_branches(self, branches: list[str], into: Worktree) -> MergeResult:
        """Merge branches into a worktree's branch in order; stop at the first conflict, abort it, report it."""
        result = MergeResult()
        async with self._lock:
            for branch in branches:
                merged = await self._git(
                    "merge", "--no-ff", "--no-edit", "-m", f"Merge {branch}", branch, worktree=into.path, check=False
                )
                conflicted = (
                    await self._git("diff", *DIFF_FLAGS, "--name-only", "--diff-filter=U", worktree=into.path)
                ).split()
                if conflicted:
                    hunks = await self._conflict_hunks(into.path, conflicted)
                    await self._git("merge", "--abort", worktree=into.path, check=False)
                    result.conflict = MergeConflict(branch=branch, files=conflicted, hunks=hunks)
                    break
                if "fatal" in merged.lower():
                    raise GitError(f"merging {branch} failed: {merged.strip()[-300:]}")
                result.merged.append(branch)
            result.commit = (await self._git("rev-parse", "HEAD", worktree=into.path)).strip()
        return result

    async def _conflict_hunks(self, path: Path, files: list[str], limit: int = 4000) -> str:
        return await asyncio.to_thread(_conflict_hunks, path, files, limit)

    async def diff(self, worktree: Worktree, base: str) -> tuple[str, str]:
        """(diff --stat, diff) of a worktree's branch against `base`; the diff is text whatever `.gitattributes` says.

        No textconv, no external diff; a file marked `-diff` is diffed line by line all the same (its line in the
        stat still reads "Bin": git's diffstat ignores `--text`).
        """
        stat = await self._git("diff", *DIFF_FLAGS, "--stat", base, "HEAD", worktree=worktree.path)
        full = await self._git("diff", *DIFF_FLAGS, base, "HEAD", worktree=worktree.path)
        return stat.strip(), full

    async def create_result_branch(self, name: str, commit: str) -> None:
        """Point branch `name` at `commit` in the user's repository, without checking it out."""
        async with self._lock:
            await self._git("branch", "--force", name, commit)

    async def remove(self, delete_branches: bool = False) -> list[str]:
        """Remove this run's worktrees (and optionally its branches except the result); returns what was removed."""
        removed = []
        async with self._lock:
            await asyncio.to_thread(self._restore_gitfiles)
            for worktree in await asyncio.to_thread(self.existing_worktrees):
                await self._git("worktree", "remove", "--force", str(worktree.path), check=False)
                # git refuses some (a nested repository inside); the folder is this run's own either way
                await asyncio.to_thread(shutil.rmtree, worktree.path, ignore_errors=True)
                removed.append(str(worktree.path))
            await self._git("worktree", "prune")
            self._gitdirs.clear()
            if delete_branches:
                listing = await self._git(
                    "for-each-ref", "--format=%(refname:short)", f"refs/heads/sevenfold/{self.run_id}/"
                )
                for branch in listing.split():
                    if not branch.endswith("/result"):
                        await self._git("branch", "-D", branch, check=False)
        return removed


def _conflict_hunks(path: Path, files: list[str], limit: int) -> str:
    """The conflict-marked blocks of conflicted files, up to `limit` characters; none read through a symlink."""
    parts: list[str] = []
    root = path.resolve()
    for name in files:
        target = path / name
        if target.is_symlink() or not target.resolve().is_relative_to(root):
            continue
        try:
            text = target.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        inside, block = False, []
        for line in text.splitlines():
            if line.startswith("<<<<<<<"):
                inside, block = True, [f"{name}:"]
            if inside:
                block.append(line)
            if line.startswith(">>>>>>>") and inside:
                inside = False
                parts.append("\n".join(block))
    joined = "\n".join(parts)
    return joined if len(joined) <= limit else joined[:limit] + "\n[... more conflicting lines ...]"


def _copy_index(source: Path, target: Path) -> None:
    """Copy an index (its cached file stats make `git add -A` fast); none yet means an empty one.

    With its modification time: git trusts an entry's cached stat only if the file changed before the index was
    written, and a copy stamped "now" would hide an edit made in the same second as the checkout (racy git).
    """
    if source.exists():
        shutil.copy2(source, target)
    else:
        target.unlink(missing_ok=True)


def _remove_existing(paths: list[Path]) -> bool:
    removed = False
    for path in paths:
        if path.exists():
            path.unlink()
            removed = True
    return removed

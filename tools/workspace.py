"""A run's workspace: a git worktree and branch per worker, in the user's repository, never its checkout.

Branches are named `sevenfold/<run-id>/<key>`; worktrees live outside the
repository (under the run directory). The user's working tree, index and
current branch are never touched: worktrees start from a commit, so
uncommitted changes in the user's checkout are neither read nor lost (they are
reported as `dirty_paths`). Git commands that change shared repository state
(adding or removing worktrees, moving branches) are serialized per repository;
everything else runs in parallel. All git work runs in subprocesses, off the
event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import weakref
from dataclasses import dataclass
from pathlib import Path

import git
from pydantic import BaseModel, Field

from sevenfold.errors import WorkspaceError

_IDENTITY = ["-c", "user.name=sevenfold", "-c", "user.email=sevenfold@localhost", "-c", "commit.gpgsign=false"]
# One lock per repository and event loop: an asyncio.Lock cannot be shared between loops.
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


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


class GitError(WorkspaceError):
    """A git command failed."""


def open_repository(path: Path) -> git.Repo:
    """The repository at `path`; `WorkspaceError` with one line if it cannot be used."""
    if not path.exists():
        raise WorkspaceError(f"repository path does not exist: {path}")
    if not path.is_dir():
        raise WorkspaceError(f"repository path is not a directory: {path}")
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except git.InvalidGitRepositoryError:
        raise WorkspaceError(f"not a git repository: {path} (run `git init` and commit first)") from None
    if repo.bare:
        raise WorkspaceError(f"{path} is a bare repository; sevenfold needs a repository with a working tree")
    if not repo.head.is_valid():
        raise WorkspaceError(f"repository {path} has no commits yet; commit something first")
    return repo


class Workspace:
    """Worktrees and branches of one run in one repository."""

    def __init__(self, repo: git.Repo, run_id: str, worktrees_root: Path) -> None:
        self.repo_path = Path(repo.working_tree_dir or ".").resolve()
        self.run_id = run_id
        self.worktrees_root = worktrees_root
        self._pruned = False
        self._recovered: set[Path] = set()
        self._gitdirs: dict[Path, Path] = {}
        self.base_commit = repo.head.commit.hexsha
        self.dirty_paths = [
            line[3:] for line in repo.git.status("--porcelain", "--untracked-files=all").splitlines() if line
        ]

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

    async def _git(self, *args: str, cwd: Path | None = None, check: bool = True, index: Path | None = None) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true", "GIT_MERGE_AUTOEDIT": "no"}
        if index is not None:
            env["GIT_INDEX_FILE"] = str(index)
        process = await asyncio.create_subprocess_exec(
            "git", *_IDENTITY, *args, cwd=cwd or self.repo_path, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        if check and process.returncode != 0:
            raise GitError(
                f"git {' '.join(args[:3])} failed: {err.decode(errors='replace').strip().splitlines()[-1:] or ['(no message)']}"
            )
        return out.decode("utf-8", errors="replace")

    async def ensure_worktree(self, key: str, base: str) -> Worktree:
        """The worktree of `key`, created on branch `sevenfold/<run>/<key>` from `base`, or found again after a restart."""
        path = self.worktrees_root / key
        branch = self.branch_for(key)
        async with self._lock:
            if await asyncio.to_thread((path / ".git").exists):
                return Worktree(path, branch)
            await asyncio.to_thread(self.worktrees_root.mkdir, parents=True, exist_ok=True)
            if not self._pruned:  # once per workspace: stale entries come from before this process started
                await self._git("worktree", "prune")
                self._pruned = True
            exists = await self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
            if exists.strip():
                await self._git("worktree", "add", "--quiet", str(path), branch)
            else:
                await self._git("worktree", "add", "--quiet", "-b", branch, str(path), base)
        return Worktree(path, branch)

    async def _gitdir(self, worktree: Path) -> Path:
        if worktree not in self._gitdirs:
            self._gitdirs[worktree] = Path((await self._git("rev-parse", "--absolute-git-dir", cwd=worktree)).strip())
        return self._gitdirs[worktree]

    async def snapshot(self, worktree: Path) -> str:
        """The tree of the worktree's files as they are now (tracked or new, not ignored), written to the object store.

        Uses a scratch copy of the worktree's index, so what the worker sees staged in `git status` and
        `git diff` does not change. A snapshot taken after each step that may write files is what `recover`
        goes back to.
        """
        gitdir = await self._gitdir(worktree)
        scratch = gitdir / "sevenfold-snapshot.index"
        await asyncio.to_thread(_copy_index, gitdir / "index", scratch)
        await self._git("add", "-A", cwd=worktree, index=scratch)
        return (await self._git("write-tree", cwd=worktree, index=scratch)).strip()

    def forget_recovery(self, worktree: Path) -> None:
        """A step in this worktree was cut short in this process (cancelled): check it again on the next visit."""
        self._recovered.discard(worktree)

    async def recover(self, worktree: Path, tree: str) -> bool:
        """Once per process and worktree: put the worktree back to `tree` (a snapshot or commit-ish).

        A run killed mid-step leaves the worktree as that step left it: files a tool call wrote after the last
        checkpoint, a merge half done, lock files of git commands that died. The step runs again on resume, so
        the worktree must be as it was when the checkpoint was written. Safe because a run is driven by one
        process at a time (`sevenfold.runs` holds a lock). Returns whether anything had to be undone.
        """
        if worktree in self._recovered:
            return False
        self._recovered.add(worktree)
        gitdir = await self._gitdir(worktree)
        common = Path(
            (await self._git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=worktree)).strip()
        )
        branch = (await self._git("symbolic-ref", "--quiet", "HEAD", cwd=worktree, check=False)).strip()
        debris = [gitdir / "index.lock", gitdir / "HEAD.lock"] + ([common / f"{branch}.lock"] if branch else [])
        undone = await asyncio.to_thread(_remove_existing, debris)
        if await asyncio.to_thread((gitdir / "MERGE_HEAD").exists):
            await self._git("merge", "--abort", cwd=worktree, check=False)
            undone = True
        wanted = (await self._git("rev-parse", f"{tree}^{{tree}}", cwd=worktree)).strip()
        if await self.snapshot(worktree) != wanted:
            await self._git("read-tree", "--reset", "-u", wanted, cwd=worktree)
            await self._git("clean", "-fdq", cwd=worktree)
            await self._git("reset", "-q", cwd=worktree)  # the index back to the branch; the files stay
            undone = True
        return undone

    def existing_worktrees(self) -> list[Worktree]:
        """This run's worktrees on disk (after a restart)."""
        if not self.worktrees_root.is_dir():
            return []
        return [
            Worktree(p, self.branch_for(p.name)) for p in sorted(self.worktrees_root.iterdir()) if (p / ".git").exists()
        ]

    async def commit_worktree(
        self, worktree: Path, message: str, base: str | None = None
    ) -> tuple[str | None, list[str]]:
        """Commit everything changed in a worktree; returns (commit or None if nothing changed, files changed since `base`)."""
        await self._git("add", "-A", cwd=worktree)
        staged = await self._git("diff", "--cached", "--name-only", cwd=worktree)
        commit = None
        if staged.strip():
            await self._git("commit", "--quiet", "--no-verify", "-m", message, cwd=worktree)
            commit = (await self._git("rev-parse", "HEAD", cwd=worktree)).strip()
        files = (await self._git("diff", "--name-only", f"{base or self.base_commit}...HEAD", cwd=worktree)).split()
        if commit is None and files:
            commit = (await self._git("rev-parse", "HEAD", cwd=worktree)).strip()  # committed before a restart
        return commit, files

    async def head(self, worktree: Worktree) -> str:
        """The commit a worktree is at."""
        return (await self._git("rev-parse", "HEAD", cwd=worktree.path)).strip()

    async def merge_branches(self, branches: list[str], into: Worktree) -> MergeResult:
        """Merge branches into a worktree's branch in order; stop at the first conflict, abort it, report it."""
        result = MergeResult()
        async with self._lock:
            for branch in branches:
                merged = await self._git(
                    "merge", "--no-ff", "--no-edit", "-m", f"Merge {branch}", branch, cwd=into.path, check=False
                )
                conflicted = (await self._git("diff", "--name-only", "--diff-filter=U", cwd=into.path)).split()
                if conflicted:
                    hunks = await self._conflict_hunks(into.path, conflicted)
                    await self._git("merge", "--abort", cwd=into.path, check=False)
                    result.conflict = MergeConflict(branch=branch, files=conflicted, hunks=hunks)
                    break
                if "fatal" in merged.lower():
                    raise GitError(f"merging {branch} failed: {merged.strip()[-300:]}")
                result.merged.append(branch)
            result.commit = (await self._git("rev-parse", "HEAD", cwd=into.path)).strip()
        return result

    async def _conflict_hunks(self, path: Path, files: list[str], limit: int = 4000) -> str:
        return await asyncio.to_thread(_conflict_hunks, path, files, limit)

    async def diff(self, worktree: Worktree, base: str) -> tuple[str, str]:
        """(diff --stat, diff) of a worktree's branch against `base`."""
        stat = await self._git("diff", "--stat", base, "HEAD", cwd=worktree.path)
        full = await self._git("diff", base, "HEAD", cwd=worktree.path)
        return stat.strip(), full

    async def create_result_branch(self, name: str, commit: str) -> None:
        """Point branch `name` at `commit` in the user's repository, without checking it out."""
        async with self._lock:
            await self._git("branch", "--force", name, commit)

    async def remove(self, delete_branches: bool = False) -> list[str]:
        """Remove this run's worktrees (and optionally its branches except the result); returns what was removed."""
        removed = []
        async with self._lock:
            for worktree in await asyncio.to_thread(self.existing_worktrees):
                await self._git("worktree", "remove", "--force", str(worktree.path), check=False)
                removed.append(str(worktree.path))
            await self._git("worktree", "prune")
            if delete_branches:
                listing = await self._git(
                    "for-each-ref", "--format=%(refname:short)", f"refs/heads/sevenfold/{self.run_id}/"
                )
                for branch in listing.split():
                    if not branch.endswith("/result"):
                        await self._git("branch", "-D", branch, check=False)
        return removed


def _conflict_hunks(path: Path, files: list[str], limit: int) -> str:
    """The conflict-marked blocks of conflicted files, up to `limit` characters."""
    parts: list[str] = []
    for name in files:
        try:
            text = (path / name).read_text(encoding="utf-8", errors="replace")
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

"""Sevenfold's own git commands, hardened against what a model can write into a worktree.

A worker's model runs shell commands in its worktree: it can commit a
`.gitattributes`, create nested repositories, rewrite the worktree's `.git`
file and write any file a shell can. Sevenfold's own git commands run outside
any sandbox with sevenfold's environment, so each one is built here to run
nothing the model chose:

- no hooks (`core.hooksPath=/dev/null`), no fsmonitor command, no transport
  (`protocol.allow=never`, no credential helper, no ssh), no background gc;
- `-c` values reach every git process git itself starts (git passes them on in
  `GIT_CONFIG_PARAMETERS`), so a nested repository's or submodule's own config
  cannot turn them back on;
- submodule checkouts are not inspected (`diff.ignoreSubmodules=dirty`): that
  starts git inside them, under their config, which the model may have written
  (`git add` ignores the setting: `Workspace` leaves them out of its pathspecs);
- the environment is an allow-list, so no secret (an API key) is in any git
  process's environment, nor in a filter or driver git starts;
- commands in a worktree name its git directory (`--git-dir`, `--work-tree`),
  found with `registered_worktrees` in the common directory, never in the
  worktree's `.git` file (a model can point that at a git directory it made,
  whose config runs its commands).

Trusted: the git binary, the system config (written by the machine's
administrator), the user's global config (they wrote it) and the repository's
config (read-only to the model's commands in the sandbox). The user's own
choice of config files (`GIT_CONFIG_GLOBAL`, `GIT_CONFIG_SYSTEM`,
`GIT_CONFIG_NOSYSTEM`) is kept; nothing here turns the system config off.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sevenfold.errors import WorkspaceError

HARDENING: tuple[str, ...] = (
    "-c", "core.hooksPath=/dev/null",  # no hook runs: post-checkout on `worktree add`, commit and merge hooks
    "-c", "core.fsmonitor=false",
    "-c", "protocol.allow=never",  # sevenfold never fetches or pushes; neither does anything it starts
    "-c", "credential.helper=",
    "-c", "core.sshCommand=false",
    "-c", "submodule.recurse=false",
    "-c", "diff.ignoreSubmodules=dirty",  # changed submodule commits still show; their checkouts are not opened
    "-c", "gc.auto=0",  # no detached gc or maintenance left running in the user's repository
    "-c", "maintenance.auto=false",
)  # fmt: skip
"""Config every sevenfold git command runs with (and every git process it starts inherits)."""

IDENTITY: tuple[str, ...] = (
    "-c", "user.name=sevenfold", "-c", "user.email=sevenfold@localhost", "-c", "commit.gpgsign=false",
)  # fmt: skip
"""Who sevenfold's commits are by; unsigned, so no signing program runs."""

DIFF_FLAGS: tuple[str, ...] = ("--no-color", "--no-ext-diff", "--no-textconv", "--text")
"""For every diff a person or the reviewer reads: a `-diff` attribute or a textconv driver cannot hide a change."""

_PASSED = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "XDG_CONFIG_HOME", "SYSTEMROOT"}
    | {"GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM"}
)


class GitError(WorkspaceError):
    """A git command failed."""


def git_environment(index: Path | None = None) -> dict[str, str]:
    """The environment of a sevenfold git command: allowed names from ours, plus what sevenfold sets.

    Never prompts, never opens an editor or a pager. `index` replaces the index file (a scratch copy).
    """
    env = {k: v for k, v in os.environ.items() if k in _PASSED or k.startswith("LC_")}
    env |= {"GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true", "GIT_MERGE_AUTOEDIT": "no", "GIT_PAGER": "cat"}
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    return env


def git_command(args: tuple[str, ...], git_dir: Path | None = None, work_tree: Path | None = None) -> list[str]:
    """The argv of a hardened git command; with `git_dir` and `work_tree`, no repository discovery happens."""
    location = [f"--git-dir={git_dir}", f"--work-tree={work_tree}"] if git_dir is not None else []
    return ["git", "--no-pager", *HARDENING, *IDENTITY, *location, *args]


async def run_git(
    *args: str,
    cwd: Path,
    git_dir: Path | None = None,
    work_tree: Path | None = None,
    index: Path | None = None,
    check: bool = True,
) -> str:
    """Run a hardened git command in a subprocess, off the event loop; its stdout.

    Raises `GitError` (one line: the command and git's last message) if it fails and `check` is set.
    """
    process = await asyncio.create_subprocess_exec(
        *git_command(args, git_dir, work_tree), cwd=cwd, env=git_environment(index),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    return _checked(args, process.returncode, out, err, check)


def run_git_sync(
    *args: str, cwd: Path, git_dir: Path | None = None, work_tree: Path | None = None, check: bool = True
) -> str:
    """`run_git` for code that runs in a thread already (opening a repository, listing a worktree's files)."""
    result = subprocess.run(
        git_command(args, git_dir, work_tree), cwd=cwd, env=git_environment(),
        stdin=subprocess.DEVNULL, capture_output=True, check=False,
    )  # fmt: skip
    return _checked(args, result.returncode, result.stdout, result.stderr, check)


@dataclass(frozen=True)
class Repository:
    """A user's repository, as `open_repository` found it."""

    path: Path
    """The top of its working tree (the user's checkout)."""
    common_dir: Path
    """Its git directory shared by every worktree: objects, refs, config, and each worktree's own git directory."""
    head: str
    """The commit checked out."""


def open_repository(path: Path) -> Repository:
    """The repository at `path` (or above it); `WorkspaceError` with one line if it cannot be used. Writes nothing."""
    if not path.exists():
        raise WorkspaceError(f"repository path does not exist: {path}")
    if not path.is_dir():
        raise WorkspaceError(f"repository path is not a directory: {path}")
    try:
        bare = run_git_sync("rev-parse", "--is-bare-repository", cwd=path).strip()
    except GitError as exc:
        if "not a git repository" in str(exc):
            raise WorkspaceError(f"not a git repository: {path} (run `git init` and commit first)") from None
        raise
    if bare == "true":
        raise WorkspaceError(f"{path} is a bare repository; sevenfold needs a repository with a working tree")
    top, common = run_git_sync(
        "rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir", cwd=path
    ).splitlines()
    head = run_git_sync("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=path, check=False).strip()
    if not head:
        raise WorkspaceError(f"repository {path} has no commits yet; commit something first")
    return Repository(Path(top).resolve(), Path(common).resolve(), head)


def registered_worktrees(common_dir: Path) -> dict[Path, Path]:
    """Each linked worktree's folder (resolved) and its git directory, as the common directory records them.

    Read from `<common>/worktrees/*/gitdir`, which git writes and the model's commands cannot (the sandbox keeps
    the common directory read-only); never from a worktree's own `.git` file, which they can.
    """
    found: dict[Path, Path] = {}
    admin = common_dir / "worktrees"
    for gitdir in sorted(admin.iterdir()) if admin.is_dir() else []:
        try:
            gitfile = (gitdir / "gitdir").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        found[Path(gitfile).parent.resolve()] = gitdir
    return found


def restore_gitfile(worktree: Path, gitdir: Path) -> None:
    """Make `<worktree>/.git` the file git wrote (`gitdir: <its git directory>`); a `.git` folder is left alone."""
    gitfile = worktree / ".git"
    wanted = f"gitdir: {gitdir}\n"
    if gitfile.is_dir() and not gitfile.is_symlink():
        return
    if not gitfile.is_symlink() and gitfile.is_file() and gitfile.read_text(errors="replace") == wanted:
        return
    gitfile.unlink(missing_ok=True)  # never written through: it may be a symlink to anywhere
    with gitfile.open("x", encoding="utf-8") as handle:
        handle.write(wanted)


def _checked(args: tuple[str, ...], returncode: int | None, out: bytes, err: bytes, check: bool) -> str:
    if check and returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        # git's own verdict, not the hint after it ("dubious ownership" ends with a command to run)
        verdicts = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
        raise GitError(f"git {' '.join(args[:3])} failed: {verdicts[-1] if verdicts else f'exit status {returncode}'}")
    return out.decode("utf-8", errors="replace")

"""Confinement: every path a model gives resolves inside its worktree, or is refused.

This is the check. Opening what it names without following a link swapped in
afterwards is `tools/confined.py`'s job.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from sevenfold.errors import PathOutsideWorkspaceError


def resolve_in(worktree: Path, path: str, *, for_writing: bool = False) -> Path:
    """The real path of `path` (relative to the worktree, or absolute inside it).

    Symlinks inside the worktree that point inside it are followed. Raises
    `PathOutsideWorkspaceError` naming the rule broken: `..` leading out, an
    absolute path elsewhere, a symlink (or a symlinked directory on the way)
    pointing out, a symlink loop, or a write to anything under a `.git` folder
    or file at any depth (`.git`, `sub/.git/config`; any case).
    """
    root = worktree.resolve()
    given = Path(path)
    candidate = given if given.is_absolute() else root / given
    lexical = Path(*_normalise(candidate.parts))
    if not _is_within(lexical, root):
        rule = (
            "absolute paths must be inside the worktree"
            if given.is_absolute()
            else "'..' may not lead out of the worktree"
        )
        raise PathOutsideWorkspaceError(
            f"path {path!r} is outside the worktree: {rule}; use a path relative to the worktree root"
        )
    try:
        real = candidate.resolve()
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError for a symlink loop
        raise PathOutsideWorkspaceError(
            f"path {path!r} cannot be resolved (a symlink loop or an unreadable folder); use a real file's path"
        ) from None
    if not _is_within(real, root):
        raise PathOutsideWorkspaceError(
            f"path {path!r} resolves outside the worktree through a symlink; only paths inside the worktree may be used"
        )
    if for_writing and (_names_git(lexical.relative_to(root)) or _names_git(real.relative_to(root))):
        raise PathOutsideWorkspaceError(f"path {path!r} is inside .git; the repository's internals may not be edited")
    return real


def resolve_names(worktree: Path, names: Iterable[str]) -> dict[str, Path]:
    """The real path of each name (relative, as git prints them) that resolves inside the worktree; others are left out.

    The same rule as `resolve_in`, but each folder is resolved once: 10,000
    files in 350 folders cost 350 resolutions, not 10,000.
    """
    root = worktree.resolve()
    folders: dict[str, Path | None] = {}
    found: dict[str, Path] = {}
    for name in names:
        folder, _, leaf = name.rpartition("/")
        if folder not in folders:
            real_folder = Path(os.path.realpath(root / folder))
            folders[folder] = real_folder if _is_within(real_folder, root) else None
        base = folders[folder]
        if base is None or leaf in ("", ".", ".."):
            continue
        candidate = base / leaf
        if candidate.is_symlink():  # rare: resolve it the slow, complete way
            with contextlib.suppress(PathOutsideWorkspaceError):
                found[name] = resolve_in(root, f"{base}/{leaf}")
        else:
            found[name] = candidate
    return found


def relative(worktree: Path, path: Path) -> str:
    """`path` relative to the worktree, with forward slashes."""
    return path.resolve().relative_to(worktree.resolve()).as_posix()


def _names_git(inside: Path) -> bool:
    # Case-insensitive: on macOS `.GIT/config` is `.git/config`.
    return any(part.casefold() == ".git" for part in inside.parts)


def _normalise(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            if len(out) > 1:
                out.pop()
        elif part != ".":
            out.append(part)
    return out


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents

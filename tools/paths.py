"""Confinement: every path a model gives resolves inside its worktree, or is refused."""

from __future__ import annotations

from pathlib import Path

from sevenfold.errors import PathOutsideWorkspaceError


def resolve_in(worktree: Path, path: str, *, for_writing: bool = False) -> Path:
    """The real path of `path` (relative to the worktree, or absolute inside it).

    Raises `PathOutsideWorkspaceError` naming the rule broken: `..` leading
    out, an absolute path elsewhere, a symlink (or a symlinked directory on the
    way) pointing out, or a write into `.git`.
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
    real = candidate.resolve()
    if not _is_within(real, root):
        raise PathOutsideWorkspaceError(
            f"path {path!r} resolves outside the worktree through a symlink; only paths inside the worktree may be used"
        )
    if for_writing and (real == root / ".git" or _is_within(real, root / ".git")):
        raise PathOutsideWorkspaceError(f"path {path!r} is inside .git; the repository's internals may not be edited")
    return real


def relative(worktree: Path, path: Path) -> str:
    """`path` relative to the worktree, with forward slashes."""
    return path.resolve().relative_to(worktree.resolve()).as_posix()


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

"""grep over a worktree, in Python, reading each file through the same link-refusing open as the file tools.

There is no ripgrep path: `rg` follows the symlinks it is handed and would race
with a link swapped in between the check and its open.
"""

from __future__ import annotations

import re
from pathlib import Path

from sevenfold.errors import ToolError
from sevenfold.settings import ToolLimits
from sevenfold.tools.confined import read_bytes
from sevenfold.tools.files import _glob_match, files_inside
from sevenfold.tools.paths import relative, resolve_in


def grep(
    worktree: Path,
    limits: ToolLimits,
    pattern: str,
    path: str = ".",
    glob: str | None = None,
    ignore_case: bool = False,
) -> str:
    """Lines matching a regular expression, as `path:line:text`, sorted by path and line, bounded.

    Ignored files (.gitignore), binary files, files over the size limit, and
    anything the file tools would refuse (a symlink pointing out of the
    worktree, a pipe or device, a hard-linked file) are skipped.
    """
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ToolError(f"bad regular expression {pattern!r}: {exc}") from None
    root = resolve_in(worktree, path)
    if not root.exists():
        raise ToolError(f"{path} does not exist")
    matches = _matching_lines(worktree, root, regex, glob, limits)
    matches.sort(key=lambda m: (m[0], m[1]))
    if not matches:
        return f"No matches for {pattern!r}."
    shown = matches[: limits.grep_max_matches]
    lines = [f"{name}:{number}:{text[:500]}" for name, number, text in shown]
    if len(matches) > len(shown):
        lines.append(f"[{len(matches) - len(shown)} more matches not shown; narrow the pattern or path]")
    return "\n".join(lines)


def _candidates(worktree: Path, root: Path, glob: str | None) -> dict[str, Path]:
    prefix = relative(worktree, root)
    names = files_inside(worktree)
    if prefix != ".":
        names = {n: p for n, p in names.items() if n == prefix or n.startswith(prefix + "/")}
    if glob:
        names = {n: p for n, p in names.items() if _glob_match(n, glob) or _glob_match(n.rsplit("/", 1)[-1], glob)}
    return names


def _matching_lines(
    worktree: Path, root: Path, regex: re.Pattern[str], glob: str | None, limits: ToolLimits
) -> list[tuple[str, int, str]]:
    found: list[tuple[str, int, str]] = []
    top = worktree.resolve()
    for name, real in _candidates(worktree, root, glob).items():
        try:
            data = read_bytes(top, real, name, limits.max_file_bytes)
        except ToolError:
            continue
        if b"\0" in data[:8192]:
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if regex.search(line):
                found.append((name, number, line))
    return found

"""grep over a worktree: ripgrep when installed, else Python, with the same output either way."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from sevenfold.errors import ToolError
from sevenfold.settings import ToolLimits
from sevenfold.tools.files import _glob_match, tracked_and_untracked
from sevenfold.tools.paths import relative, resolve_in


def grep(
    worktree: Path,
    limits: ToolLimits,
    pattern: str,
    path: str = ".",
    glob: str | None = None,
    ignore_case: bool = False,
    use_ripgrep: bool | None = None,
) -> str:
    """Lines matching a regular expression, as `path:line:text`, sorted by path and line, bounded.

    Ignored files (.gitignore) and binary files are skipped.
    """
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ToolError(f"bad regular expression {pattern!r}: {exc}") from None
    root = resolve_in(worktree, path)
    if not root.exists():
        raise ToolError(f"{path} does not exist")
    rg = shutil.which("rg") if use_ripgrep is not False else None
    if use_ripgrep and rg is None:
        raise ToolError("ripgrep is not installed")
    matches = (
        _ripgrep(rg, worktree, root, pattern, glob, ignore_case)
        if rg
        else _python_grep(worktree, root, regex, glob, limits)
    )
    matches.sort(key=lambda m: (m[0], m[1]))
    if not matches:
        return f"No matches for {pattern!r}."
    shown = matches[: limits.grep_max_matches]
    lines = [f"{name}:{number}:{text[:500]}" for name, number, text in shown]
    if len(matches) > len(shown):
        lines.append(f"[{len(matches) - len(shown)} more matches not shown; narrow the pattern or path]")
    return "\n".join(lines)


def _candidates(worktree: Path, root: Path, glob: str | None) -> list[str]:
    prefix = relative(worktree, root)
    names = tracked_and_untracked(worktree)
    if prefix != ".":
        names = [n for n in names if n == prefix or n.startswith(prefix + "/")]
    if glob:
        names = [n for n in names if _glob_match(n, glob) or _glob_match(n.rsplit("/", 1)[-1], glob)]
    return names


def _python_grep(
    worktree: Path, root: Path, regex: re.Pattern[str], glob: str | None, limits: ToolLimits
) -> list[tuple[str, int, str]]:
    found: list[tuple[str, int, str]] = []
    for name in _candidates(worktree, root, glob):
        file = worktree / name
        try:
            if file.stat().st_size > limits.max_file_bytes:
                continue
            data = file.read_bytes()
        except OSError:
            continue
        if b"\0" in data[:8192]:
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if regex.search(line):
                found.append((name, number, line))
    return found


def _ripgrep(
    rg: str, worktree: Path, root: Path, pattern: str, glob: str | None, ignore_case: bool
) -> list[tuple[str, int, str]]:
    names = _candidates(worktree, root, glob)
    if not names:
        return []
    command = [
        rg,
        "--no-heading",
        "--line-number",
        "--with-filename",
        "--no-messages",
        "--color",
        "never",
        "-e",
        pattern,
    ]
    if ignore_case:
        command.append("--ignore-case")
    found: list[tuple[str, int, str]] = []
    for start in range(0, len(names), 500):  # bounded argv
        result = subprocess.run(
            [*command, "--", *names[start : start + 500]],
            cwd=worktree,
            capture_output=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        for line in result.stdout.decode("utf-8", errors="replace").splitlines():
            name, _, rest = line.partition(":")
            number, _, text = rest.partition(":")
            if number.isdigit():
                found.append((name, int(number), text))
    return found

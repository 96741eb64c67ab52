"""Reading and editing files in a worktree: the plain functions behind the model's file tools.

Each returns the text the model reads, or raises `ToolError` with a message
that says what to do instead.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sevenfold.errors import ToolError
from sevenfold.settings import ToolLimits
from sevenfold.tools.confined import read_bytes, replace_file
from sevenfold.tools.git import run_git_sync
from sevenfold.tools.outputs import is_reference, view_reference
from sevenfold.tools.paths import resolve_in, resolve_names


def _read_text(worktree: Path, path: str, limits: ToolLimits, *, for_writing: bool = False) -> tuple[Path, str, bool]:
    real = resolve_in(worktree, path, for_writing=for_writing)
    data = read_bytes(worktree.resolve(), real, path, limits.max_file_bytes)
    if b"\0" in data[:8192]:
        raise ToolError(f"{path} is a binary file; it cannot be viewed or edited as text")
    try:
        return real, data.decode("utf-8"), False
    except UnicodeDecodeError:
        return real, data.decode("utf-8", errors="replace"), True


def view_file(
    worktree: Path, limits: ToolLimits, path: str, start_line: int | None = None, end_line: int | None = None
) -> str:
    """A file's lines with line numbers (1-based, inclusive range); long files are cut with a notice.

    `path` may also be a `tool-output:NAME` reference to one of this worker's offloaded tool outputs
    (`tools/outputs.py`), read from the run directory, never from the worktree.
    """
    if is_reference(path):
        text, lossy = view_reference(worktree, path, limits.max_file_bytes), False
    else:
        _, text, lossy = _read_text(worktree, path, limits)
    lines = text.splitlines()
    first = max(1, start_line or 1)
    last = min(len(lines), end_line or len(lines))
    if first > max(len(lines), 1):
        raise ToolError(f"{path} has {len(lines)} lines; start_line {first} is past the end")
    shown_last = min(last, first + limits.view_max_lines - 1)
    width = len(str(shown_last))
    body = "\n".join(f"{n:>{width}}\t{lines[n - 1]}" for n in range(first, shown_last + 1))
    notes = []
    if shown_last < last:
        notes.append(
            f"[lines {shown_last + 1}-{last} not shown ({limits.view_max_lines}-line limit); view them with start_line={shown_last + 1}]"
        )
    if lossy:
        notes.append("[the file is not valid UTF-8; undecodable bytes are shown as U+FFFD]")
    if not lines:
        return f"[{path} is empty]"
    return "\n".join([body, *notes])


def create_file(worktree: Path, path: str, content: str) -> str:
    """Write a file (making parent folders); says whether it replaced an existing one.

    The old entry is replaced, never written through (see `confined.replace_file`).
    """
    real = resolve_in(worktree, path, for_writing=True)
    existed = replace_file(worktree.resolve(), real, path, content.encode("utf-8"), make_folders=True)
    lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    return f"{'Replaced' if existed else 'Created'} {real.relative_to(worktree.resolve()).as_posix()} ({lines} lines)"


def str_replace(worktree: Path, limits: ToolLimits, path: str, old: str, new: str) -> str:
    """Replace the one occurrence of `old` with `new`; zero or several matches are an error naming where."""
    real, text, lossy = _read_text(worktree, path, limits, for_writing=True)
    if lossy:
        raise ToolError(f"{path} is not valid UTF-8; rewrite it with create_file instead")
    if not old:
        raise ToolError("old must not be empty; use insert to add text at a line")
    count = text.count(old)
    if count == 0:
        hint = ""
        squashed = " ".join(old.split())
        if squashed and squashed in " ".join(text.split()):
            hint = " The text exists with different whitespace or indentation: copy it exactly from view_file."
        raise ToolError(f"no match for old in {path} (0 matches).{hint}")
    if count > 1:
        lines, start = [], 0
        for _ in range(count):
            index = text.index(old, start)
            lines.append(text.count("\n", 0, index) + 1)
            start = index + 1
        raise ToolError(
            f"old matches {count} times in {path} (lines {', '.join(map(str, lines))}); include more surrounding lines so it matches once"
        )
    replace_file(worktree.resolve(), real, path, text.replace(old, new, 1).encode("utf-8"))
    line = text.count("\n", 0, text.index(old)) + 1
    return (
        f"Edited {path}: replaced {old.count(chr(10)) + 1} line(s) at line {line} with {new.count(chr(10)) + 1} line(s)"
    )


def insert(worktree: Path, limits: ToolLimits, path: str, line: int, text: str) -> str:
    """Insert `text` after line `line` (0 inserts at the top)."""
    real, content, lossy = _read_text(worktree, path, limits, for_writing=True)
    if lossy:
        raise ToolError(f"{path} is not valid UTF-8; rewrite it with create_file instead")
    lines = content.splitlines(keepends=True)
    if not 0 <= line <= len(lines):
        raise ToolError(f"line must be between 0 and {len(lines)} for {path}")
    if lines and not lines[-1].endswith("\n") and line == len(lines):
        lines[-1] += "\n"
    addition = text if text.endswith("\n") else text + "\n"
    lines.insert(line, addition)
    replace_file(worktree.resolve(), real, path, "".join(lines).encode("utf-8"))
    return f"Inserted {addition.count(chr(10))} line(s) into {path} after line {line}"


def tracked_and_untracked(worktree: Path) -> list[str]:
    """Files git would consider (tracked plus untracked, minus ignored), sorted; symlinks pointing out are left out."""
    return sorted(files_inside(worktree))


def files_inside(worktree: Path) -> dict[str, Path]:
    """The files git would consider, each name mapped to its real path inside the worktree (symlinks pointing out are left out)."""
    # Hardened like every sevenfold git call: a model-written config must not get its fsmonitor command run here.
    listing = run_git_sync("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=worktree, check=False)
    names = {n for n in listing.split("\0") if n}
    return {name: real for name, real in resolve_names(worktree, names).items() if real.is_file()}


def list_files(worktree: Path, limits: ToolLimits, pattern: str = "**/*") -> str:
    """Files matching a glob (`**` for any depth), respecting .gitignore, bounded in number."""
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise ToolError("pattern must be relative to the worktree root, e.g. 'src/**/*.py'")
    names = tracked_and_untracked(worktree)
    matched = [n for n in names if _glob_match(n, pattern)]
    if not matched:
        return f"No files match {pattern!r}."
    shown = matched[: limits.list_max_files]
    more = f"\n[{len(matched) - len(shown)} more not shown; narrow the pattern]" if len(matched) > len(shown) else ""
    return "\n".join(shown) + more


def _glob_match(name: str, pattern: str) -> bool:
    return _glob_regex(pattern).fullmatch(name) is not None


@cache
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex: `**/` any folders (or none), `**` anything, `*` and `?` within one path part."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))

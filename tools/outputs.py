"""Big tool outputs, kept out of the transcript: written once to the run directory, paged back with `view_file`.

A worker's transcript is sent whole on every turn, so a 30 kB test log would be
paid for on every later turn. When a tool's output is longer than
`context.offload_chars`, the whole text goes to a file and the tool message
keeps its head, its tail and a reference, `tool-output:NAME`, that `view_file`
accepts like a path (`view_file(path="tool-output:NAME", start_line=...)`).

The files live in the run directory, `<run>/outputs/<worker key>/`, beside the
worktrees (`<run>/worktrees/<worker key>/`), never inside one: they are never
committed to the worker's branch, and sandboxed commands cannot see them. Each
file is named after its content's hash and written once (`O_EXCL`): a step redone
after a crash writes the same name and finds it there; nothing is ever rewritten.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from sevenfold.errors import ToolError
from sevenfold.tools.confined import read_bytes

REFERENCE_PREFIX = "tool-output:"
"""How the model names an offloaded output in `view_file`'s `path`."""
_NAME = re.compile(r"^[a-z0-9_]{1,40}-[0-9a-f]{16}\.txt$")


def outputs_dir(worktree: Path) -> Path:
    """Where the offloaded outputs of the worker working in `worktree` go: `<run>/outputs/<worker key>`."""
    return worktree.parent.parent / "outputs" / worktree.name


def is_reference(path: str) -> bool:
    """Whether a path the model gave names an offloaded output rather than a file of the worktree."""
    return path.startswith(REFERENCE_PREFIX)


def offload(text: str, tool: str, folder: Path, keep_chars: int) -> str:
    """Write `text` to a new file in `folder`; the head, the tail and the reference the transcript keeps instead.

    The head and tail are cut at line ends where one is near, `keep_chars` characters each at most.
    """
    if len(text) <= 2 * keep_chars:
        return text
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]
    name = f"{re.sub(r'[^a-z0-9_]', '_', tool.lower())[:40] or 'tool'}-{digest}.txt"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:  # the same output, written by this step before a crash
        pass
    else:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as file:
            file.write(text)
    head = _cut(text[:keep_chars], at_end=True)
    tail = _cut(text[-keep_chars:], at_end=False)
    reference = REFERENCE_PREFIX + name
    return (
        f"{head}\n[... {len(text) - len(head) - len(tail):,} characters not shown: the whole output "
        f"({len(text):,} characters, {text.count(chr(10)) + 1:,} lines) is in {reference}; page through it with "
        f'view_file(path="{reference}", start_line=N, end_line=M) ...]\n{tail}'
    )


def view_reference(worktree: Path, reference: str, max_bytes: int) -> str:
    """The text of an offloaded output of this worktree's worker; `ToolError` for anything else.

    The model writes the reference, so it is checked like a path: only a name this module makes (no folders,
    no `..`), opened without following links, a regular file with one link, in this worker's own folder.
    """
    name = reference.removeprefix(REFERENCE_PREFIX)
    if not _NAME.fullmatch(name):
        raise ToolError(
            f"{reference!r} is not a tool output reference; copy the reference exactly as a tool result gave it "
            f"({REFERENCE_PREFIX}NAME.txt)"
        )
    folder = outputs_dir(worktree)
    if not folder.is_dir():
        raise ToolError(f"{reference} does not exist: no tool output of yours has been saved yet")
    root = folder.resolve()
    return read_bytes(root, root / name, reference, max_bytes).decode("utf-8", errors="replace")


def _cut(text: str, at_end: bool) -> str:
    """`text` trimmed to whole lines when a line break falls in its outer quarter."""
    quarter = len(text) // 4
    if at_end:
        index = text.rfind("\n", len(text) - quarter)
        return text[:index] if index > 0 else text
    index = text.find("\n", 0, quarter)
    return text[index + 1 :] if index >= 0 else text

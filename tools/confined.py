"""Reading and replacing files inside a worktree without ever following a link out.

`paths.resolve_in` says where a path really is; between that check and the open,
a shell command can swap a symlink or a hard link in. So every open here starts
from the worktree root's directory and goes one component at a time with
`O_NOFOLLOW`: a link swapped in on the way fails to open instead of being
followed. Only regular files with a single link are read (a hard link may be a
file outside the worktree under a second name), and a write never goes through
the existing entry: a new file is written beside it and renamed over the name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from sevenfold.errors import ToolError

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def read_bytes(root: Path, real: Path, path: str, max_bytes: int) -> bytes:
    """The content of the regular file at `real` (a path `resolve_in` returned), opened without following links.

    `root` is the worktree's resolved path; `path` is the name the model used,
    for messages. Raises `ToolError` if the file is missing, a folder, a link
    swapped in, not a regular file, hard-linked, or bigger than `max_bytes`.
    """
    parts = real.relative_to(root).parts
    if not parts:
        raise ToolError(f"{path} is a directory; use list_files with a pattern like '*'")
    with _folder(root, parts[:-1], path) as folder:
        try:
            fd = os.open(parts[-1], _FILE, dir_fd=folder)
        except OSError as exc:
            raise _refusal(path, exc) from None
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(fd)
            _check_readable(info, path)
            if info.st_size > max_bytes:
                raise _too_big(path, info.st_size, max_bytes)
            data = file.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after the fstat
        raise _too_big(path, len(data), max_bytes)
    return data


def replace_file(root: Path, real: Path, path: str, data: bytes, *, make_folders: bool = False) -> bool:
    """Put `data` at `real` (a path `resolve_in` returned, under the resolved `root`); True if something was there.

    The data goes to a new file in the same folder, which is then renamed over
    the name: whatever the name held (a file, a hard link to a file elsewhere,
    a symlink swapped in) is replaced, never written through. A regular file's
    permission bits are kept. With `make_folders`, missing folders are created
    one at a time, never through a link. Raises `ToolError` if the name is a
    folder or a folder on the way is a link or missing.
    """
    parts = real.relative_to(root).parts
    if not parts:
        raise ToolError(f"{path} is a directory")
    name = parts[-1]
    with _folder(root, parts[:-1], path, make=make_folders) as folder:
        try:
            old: os.stat_result | None = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None and stat.S_ISDIR(old.st_mode):
            raise ToolError(f"{path} is a directory; give a file path inside it")
        temporary = f".sevenfold-{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(temporary, _NEW_FILE, 0o666, dir_fd=folder)
        except OSError as exc:
            raise ToolError(f"{path} could not be written: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as file:
                if old is not None and stat.S_ISREG(old.st_mode):
                    os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777)
                file.write(data)
            os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
            raise ToolError(f"{path} could not be written: {exc.strerror}") from None
    return old is not None


@contextlib.contextmanager
def _folder(root: Path, parts: Sequence[str], path: str, *, make: bool = False) -> Iterator[int]:
    """A descriptor of the folder `root/parts...`, reached without following any link (made on the way if `make`)."""
    fd = os.open(root, _FOLDER)
    try:
        for part in parts:
            if make:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            try:
                inner = os.open(part, _FOLDER, dir_fd=fd)
            except OSError as exc:
                raise _refusal(path, exc, folder=True) from None
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def _check_readable(info: os.stat_result, path: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ToolError(f"{path} is a directory; use list_files with a pattern like '{path.rstrip('/')}/*'")
    if not stat.S_ISREG(info.st_mode):
        raise ToolError(f"{path} is not a regular file (a pipe, socket or device); only regular files can be used")
    if info.st_nlink > 1:
        raise ToolError(
            f"{path} has {info.st_nlink} hard links (one may be a file outside the worktree), so it is refused; "
            "replace it with create_file if it should hold new content"
        )


def _refusal(path: str, exc: OSError, *, folder: bool = False) -> ToolError:
    if exc.errno == errno.ENOENT:
        return ToolError(f"{path} does not exist; use list_files to see what is there")
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        what = "a folder on the way is a symlink or not a folder" if folder else "it is a symlink"
        return ToolError(
            f"{path}: {what} now (it changed after the path was checked); use list_files to see what is there"
        )
    if exc.errno == errno.ENXIO:
        return ToolError(f"{path} is not a regular file (a pipe, socket or device); only regular files can be used")
    return ToolError(f"{path} could not be opened: {exc.strerror}")


def _too_big(path: str, size: int, limit: int) -> ToolError:
    return ToolError(f"{path} is {size:,} bytes, over the {limit:,}-byte limit; use grep to find the part you need")

"""Running commands in a worktree's sandbox: timeout on the whole process group, bounded output, limits named."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from sevenfold.tools.sandbox import MARKER, PAYLOAD_FD, Jail

_GRACE_S = 2.0
_SIGXCPU, _SIGXFSZ = 24, 25
_OUT_OF_MEMORY = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")


@dataclass(frozen=True)
class CommandResult:
    """What a command did."""

    exit_code: int | None
    output: str
    """stdout and stderr interleaved, capped (head and tail kept)."""
    timed_out: bool
    cut_chars: int
    duration_s: float
    limit: str = ""
    """The sandbox limit the command ran into, if one is recognisable ("file size", "CPU time", "memory")."""

    def for_model(self) -> str:
        """The result as the model reads it."""
        status = (
            f"timed out after {self.duration_s:.0f} s (process group killed)"
            if self.timed_out
            else f"exit code {self.exit_code}"
        )
        if self.limit:
            status += f"; stopped by the sandbox's {self.limit} limit"
        return f"[{status}]\n{self.output}" if self.output else f"[{status}] (no output)"


class _CappedBuffer:
    """Keeps the first and last `limit / 2` characters of a stream of any length."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = ""
        self.tail: deque[str] = deque()
        self.tail_len = 0
        self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        if len(self.head) < self.head_limit:
            room = self.head_limit - len(self.head)
            self.head += text[:room]
            text = text[room:]
        if not text:
            return
        self.tail.append(text)
        self.tail_len += len(text)
        while self.tail_len - len(self.tail[0]) >= self.tail_limit:
            self.tail_len -= len(self.tail.popleft())

    def text(self) -> tuple[str, int]:
        tail = "".join(self.tail)[-self.tail_limit :] if self.tail else ""
        cut = self.total - len(self.head) - len(tail)
        if cut > 0:
            return f"{self.head}\n[... {cut:,} characters cut ...]\n{tail}", cut
        return self.head + tail, 0


async def run_command(
    command: str | list[str],
    jail: Jail,
    timeout_s: float,
    output_limit: int,
    extra_env: dict[str, str] | None = None,
) -> CommandResult:
    """Run a bash command (or an argv list) in the jail's worktree, confined by it, with stdin closed.

    At the timeout the whole process group is sent SIGTERM, then SIGKILL, so children left running in the
    background die too (and under bwrap the PID namespace ends with the command). Output is read as it comes
    and capped, so a flood costs no memory.
    """
    argv = ["bash", "-c", command] if isinstance(command, str) else command
    started = time.monotonic()
    prepared = await asyncio.to_thread(jail.prepare, argv, extra_env)
    payload = await asyncio.to_thread(_memory_file, prepared.payload) if prepared.payload is not None else None
    try:
        process = await asyncio.create_subprocess_exec(
            *(str(payload) if word == PAYLOAD_FD else word for word in prepared.argv), cwd=jail.worktree,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=prepared.env, start_new_session=True, pass_fds=() if payload is None else (payload,),
        )  # fmt: skip
    except BaseException:
        if prepared.scratch is not None:
            await asyncio.to_thread(shutil.rmtree, prepared.scratch, True)
        raise
    finally:
        if payload is not None:
            os.close(payload)
    buffer = _CappedBuffer(output_limit)
    assert process.stdout is not None

    async def pump() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(65536):
            buffer.add(chunk.decode("utf-8", errors="replace"))

    reader = asyncio.create_task(pump())
    timed_out = False
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        timed_out = True
    finally:
        # Also after a normal exit: children left in the background would outlive the tool call.
        await _kill_group(process)
        try:
            await asyncio.wait_for(reader, 5.0)
        except TimeoutError:
            reader.cancel()
        if prepared.scratch is not None:
            await asyncio.to_thread(shutil.rmtree, prepared.scratch, True)
    output, cut = buffer.text()
    code = None if timed_out else process.returncode
    return CommandResult(code, output, timed_out, cut, time.monotonic() - started, _limit_hit(code, output))


def _memory_file(data: bytes) -> int:
    """A descriptor of an anonymous in-memory file holding `data`, read from the start (no disk, no name)."""
    fd = os.memfd_create("sevenfold-payload", os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _limit_hit(code: int | None, output: str) -> str:
    """Which limit a command's end points at: its exit code (a signal, directly or as bash's 128+N) or its output."""
    if code in (-_SIGXFSZ, 128 + _SIGXFSZ) or "File too large" in output or "File size limit exceeded" in output:
        return "file size"
    if code in (-_SIGXCPU, 128 + _SIGXCPU) or "CPU time limit exceeded" in output:
        return "CPU time"
    if code not in (0, None) and any(sign in output[-4000:] for sign in _OUT_OF_MEMORY):
        return "memory"
    return ""


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, give it a moment, then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    if process.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), _GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


def reap_leftovers(folder: Path) -> int:
    """Kill the process groups of commands started in `folder` (a run's directory) by a process that has died.

    A run killed with SIGKILL cannot stop the commands it started: they run in their own sessions so that a
    timeout can kill a whole group. Resuming the run calls this first. Linux only (reads `/proc`); elsewhere
    it does nothing. Returns how many process groups were killed.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    prefix = f"{MARKER}={folder}".encode()
    groups: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if any(item == prefix or item.startswith(prefix + b"/") for item in environ.split(b"\0")):
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(int(entry.name)))
    for group in groups - {os.getpgrp()}:  # never our own group (sevenfold run from inside a command)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    return len(groups)

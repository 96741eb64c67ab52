"""Running commands in a worktree: timeout on the whole process group, bounded output, no secrets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

_SECRET = re.compile(
    r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY$|^LANGSMITH_|^LANGCHAIN_|^OPENAI_|^ANTHROPIC_|^HF_|^HUGGING|^SEVENFOLD_|^AWS_|^AZURE_|^GOOGLE_APPLICATION)",
    re.IGNORECASE,
)
_GRACE_S = 2.0
MARKER = "SEVENFOLD_WORKTREE"
"""Set in every command's environment to the worktree it runs in, so a later process can find leftovers."""


def scrubbed_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without anything that looks like a secret."""
    env = {k: v for k, v in os.environ.items() if not _SECRET.search(k)}
    env.update({"GIT_TERMINAL_PROMPT": "0", "PYTHONDONTWRITEBYTECODE": "1", "PAGER": "cat", "GIT_PAGER": "cat"})
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class CommandResult:
    """What a command did."""

    exit_code: int | None
    output: str
    """stdout and stderr interleaved, capped (head and tail kept)."""
    timed_out: bool
    cut_chars: int
    duration_s: float

    def for_model(self) -> str:
        """The result as the model reads it."""
        status = (
            f"timed out after {self.duration_s:.0f} s (process group killed)"
            if self.timed_out
            else f"exit code {self.exit_code}"
        )
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
    command: str | list[str], cwd: Path, timeout_s: float, output_limit: int, env: dict[str, str] | None = None
) -> CommandResult:
    """Run a shell command (or an argv list) in `cwd` with stdin closed.

    At the timeout the whole process group is sent SIGTERM, then SIGKILL, so
    children left running in the background die too. Output is read as it
    comes and capped, so a flood costs no memory.
    """
    argv = ["bash", "-c", command] if isinstance(command, str) else command
    started = time.monotonic()
    env = {**(env if env is not None else scrubbed_environment()), MARKER: str(cwd)}
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=env, start_new_session=True,
    )  # fmt: skip
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
    output, cut = buffer.text()
    return CommandResult(None if timed_out else process.returncode, output, timed_out, cut, time.monotonic() - started)


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

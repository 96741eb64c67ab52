"""The sandbox every model-influenced command runs in: what it may see, write and reach, and its limits.

A run has one `SandboxPolicy` (backend, network, limits, what is hidden and what is shown read-only); each
worktree gets a `Jail` from it, which turns an argv into the argv and environment that run it confined:

- `bwrap` (bubblewrap): new mount, PID, network, IPC, UTS and user namespaces, all capabilities dropped, the
  system read-only, home folders, `/tmp`, `/run`, the user's checkout, the run directory and other private
  places hidden behind empty tmpfs mounts, the worktree writable, the repository's git directory and the
  worktree's `.git` file read-only, a private `/tmp`. When the command ends its PID namespace ends, and with it
  everything it started.
- `landlock` (the Linux Landlock LSM, for machines without user namespaces): the same filesystem allow-list
  enforced by the kernel on an unchanged mount view (hidden paths are unreadable rather than absent; `/proc` is
  not readable), TCP bind/connect denied (ABI 4+), signals and abstract unix sockets scoped (ABI 6+), and a
  launcher that kills whatever the command left running.
- `none`: no boundary at all, only on explicit request; every run that uses it says so.

All backends start the command with an environment built from an allow-list, never sevenfold's own, and under
resource limits (data memory, file size, CPU time, processes, no core dumps).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from sevenfold.errors import SettingsError
from sevenfold.settings import CONFIG_FILES_READ, SandboxSettings, Settings
from sevenfold.tools import landlock_exec
from sevenfold.tools.git import open_repository

Backend = Literal["bwrap", "landlock", "none"]
BACKENDS: tuple[Backend, ...] = ("bwrap", "landlock", "none")
MARKER = "SEVENFOLD_WORKTREE"
"""Set in every command's environment to the worktree it runs in, so a later process can find leftovers."""

_PASSED_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "VIRTUAL_ENV")
_FIXED_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
}
# Private to other users or to the machine: hidden from every sandboxed command.
_HIDDEN = (
    "/home", "/root", "/tmp", "/var/tmp", "/run", "/mnt", "/media", "/var/lib", "/var/log", "/var/mail",
    "/var/spool", "/var/backups", "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh",
    "/etc/ssl/private",
)  # fmt: skip
_BWRAP_TMP_HOME = "/tmp/home"
INSTALL_HINT = (
    "no sandbox is available: install bubblewrap (`sudo apt-get install bubblewrap`, `sudo dnf install bubblewrap`) "
    "or choose one with --sandbox bwrap|landlock, or run unconfined with --sandbox none"
)


class SandboxUnavailableError(SettingsError):
    """The sandbox asked for cannot be used on this machine."""


@functools.cache
def bwrap_works() -> str | None:
    """Why bubblewrap cannot be used here (not installed, or no user namespaces), or None if it can."""
    program = shutil.which("bwrap")
    if program is None:
        return "bubblewrap (bwrap) is not installed"
    probe = subprocess.run(
        [program, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/", "--proc", "/proc",
         "--dev", "/dev", "--tmpfs", "/tmp", "true"],
        capture_output=True, stdin=subprocess.DEVNULL, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        last = probe.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        return f"bubblewrap cannot create namespaces here ({last[0][:160]})"
    return None


@functools.cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none)."""
    return landlock_exec.abi_version() if sys.platform.startswith("linux") else 0


def resolve_backend(choice: str) -> Backend:
    """The backend to use for a setting (`auto` picks the strongest available); `SandboxUnavailableError` if none fits."""
    if choice == "none":
        return "none"
    if choice in ("auto", "bwrap"):
        why = bwrap_works()
        if why is None:
            return "bwrap"
        if choice == "bwrap":
            raise SandboxUnavailableError(f"sandbox bwrap cannot be used: {why} (install the bubblewrap package)")
    if choice in ("auto", "landlock"):
        if landlock_abi() >= 1:
            return "landlock"
        if choice == "landlock":
            raise SandboxUnavailableError("sandbox landlock cannot be used: this kernel has no Landlock LSM enabled")
    if choice == "auto":
        raise SandboxUnavailableError(INSTALL_HINT)
    raise SandboxUnavailableError(f"unknown sandbox {choice!r} (choose auto, bwrap, landlock or none)")


@dataclass(frozen=True)
class Prepared:
    """A command ready to start: its argv and environment, and a scratch folder to remove afterwards.

    With a `payload`, the starter writes it to a memory file and puts that file's descriptor number where `argv`
    says `PAYLOAD_FD`: the launcher reads the command's environment from it. The launcher itself (prlimit, bwrap,
    the Landlock launcher) runs outside the sandbox, so it starts with `launcher_environment()` only: a variable
    the command is given (`LD_PRELOAD`, `PATH`, from the user's settings or a repository's test settings) never
    acts on it, and no value shows in a process listing.
    """

    argv: list[str]
    env: dict[str, str]
    scratch: Path | None = None
    payload: bytes | None = None


PAYLOAD_FD = "@sevenfold-payload-fd@"
"""Stands in `Prepared.argv` for the descriptor number of the payload's memory file."""
_LAUNCHER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def launcher_environment(worktree: Path) -> dict[str, str]:
    """The environment of the process that sets up a sandbox: fixed, nothing the command or the user chose."""
    return {"PATH": _LAUNCHER_PATH, "LANG": "C.UTF-8", MARKER: str(worktree)}


@dataclass(frozen=True)
class SandboxPolicy:
    """What every command of one run may do; `jail(worktree)` applies it to one worktree."""

    backend: Backend
    settings: SandboxSettings
    hidden: tuple[Path, ...] = ()
    """Hidden on top of the machine's private places: the user's checkout, the run root, the config file."""
    shown: tuple[Path, ...] = ()
    """Read-only inside hidden places: the repository's git directory, interpreters the tests need, user paths."""
    warnings: tuple[str, ...] = field(default=())

    @classmethod
    def for_run(
        cls, settings: SandboxSettings, repo: Path, git_dir: Path, run_root: Path, extra_hidden: tuple[Path, ...] = ()
    ) -> SandboxPolicy:
        """The policy of a run on `repo` (whose common git directory is `git_dir`); blocking (probes and stats)."""
        backend = resolve_backend(settings.backend)
        hidden = (repo, run_root, Path.home(), *extra_hidden)
        shown = [git_dir, *settings.read_paths, *_interpreter_paths()]
        if settings.network:
            shown.append(Path("/run/systemd/resolve"))  # where /etc/resolv.conf often points
        warnings: tuple[str, ...] = ()
        if backend == "none":
            warnings = ("sandbox none: commands the model runs are NOT confined (files, secrets, network, processes)",)
        elif backend == "landlock":
            warnings = ("sandbox landlock: commands can change permissions and timestamps of files your user owns",)
            if landlock_abi() < 4 and not settings.network:
                warnings += (f"sandbox landlock: kernel ABI {landlock_abi()} cannot block TCP",)
            if landlock_abi() < 6:
                warnings += (f"sandbox landlock: kernel ABI {landlock_abi()} cannot stop commands signalling others",)
        return cls(backend, settings, _absolute(hidden), _absolute(shown), warnings)

    def describe(self) -> dict[str, object]:
        """What the run report and the events say about the sandbox."""
        return {"backend": self.backend, "network": self.settings.network, "warnings": list(self.warnings)}

    def jail(self, worktree: Path, writable: bool = True) -> Jail:
        """Confinement to one worktree (read-only with `writable=False`, e.g. for a check in the user's checkout)."""
        return Jail(self, Path(os.path.normpath(worktree)), writable)  # no resolve(): it blocks the event loop


@dataclass(frozen=True)
class Jail:
    """A policy applied to one worktree: `prepare(argv)` gives what to start."""

    policy: SandboxPolicy
    worktree: Path
    writable: bool = True
    also_writable: tuple[Path, ...] = ()
    """Folders sevenfold reads back after the command (e.g. where a test report goes)."""

    def with_writable(self, folder: Path) -> Jail:
        """This jail with one more writable folder."""
        return replace(self, also_writable=(*self.also_writable, Path(os.path.normpath(folder))))

    def environment(self, home: str, tmp: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The command's environment: allow-listed names from ours, the user's named ones, fixed values, markers."""
        wanted = (*_PASSED_ENV, *self.policy.settings.pass_env)
        env = {name: os.environ[name] for name in wanted if name in os.environ}
        env.update({k: v for k, v in os.environ.items() if k.startswith("LC_")})
        env.setdefault("PATH", os.defpath)
        env.update(_FIXED_ENV)
        env.update(HOME=home, TMPDIR=tmp, **self.policy.settings.env)
        env.update(extra or {})
        env[MARKER] = str(self.worktree)
        return env

    def prepare(self, argv: list[str], extra_env: dict[str, str] | None = None) -> Prepared:
        """`argv` wrapped for this backend (blocking: may create a scratch folder)."""
        limits = self.policy.settings
        rlimits = {
            "data": limits.memory_mb * 2**20,
            "fsize": limits.file_size_mb * 2**20,
            "cpu": limits.cpu_seconds,
            "nproc": limits.processes,
            "core": 0,
        }
        if self.policy.backend == "landlock":
            return self._landlock(argv, rlimits, extra_env)
        prlimit = _prlimit_argv(rlimits)
        if self.policy.backend == "bwrap":
            env = self.environment(_BWRAP_TMP_HOME, "/tmp", extra_env)
            payload = b"".join(f"{word}\0".encode() for item in env.items() for word in ("--setenv", *item))
            # --clearenv first: the payload's --setenv words are read where --args stands.
            bwrap = [_program("bwrap"), "--clearenv", "--args", PAYLOAD_FD, *self._bwrap_argv()[1:]]
            return Prepared([*prlimit, *bwrap, "--", *argv], launcher_environment(self.worktree), None, payload)
        scratch = Path(tempfile.mkdtemp(prefix="sevenfold-cmd-"))
        return Prepared([*prlimit, *argv], self.environment(str(scratch), str(scratch), extra_env), scratch)

    def _bwrap_argv(self) -> list[str]:
        network = ["--share-net"] if self.policy.settings.network else []
        args = ["bwrap", "--unshare-all", *network, "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path in _hidden_paths(self.policy):
            if path.is_dir() and not path.is_symlink():
                args += ["--tmpfs", str(path)]
            elif path.exists() and not path.is_symlink():
                args += ["--ro-bind", "/dev/null", str(path)]
        args += ["--dir", _BWRAP_TMP_HOME]
        for path in sorted(self.policy.shown, key=lambda p: len(p.parts)):
            if path.exists():
                args += ["--ro-bind", str(path), str(path)]
        args += ["--bind" if self.writable else "--ro-bind", str(self.worktree), str(self.worktree)]
        dot_git = self.worktree / ".git"
        if dot_git.exists() or dot_git.is_symlink():
            args += ["--ro-bind", str(dot_git), str(dot_git)]  # a rewritten .git file could point git anywhere
        for folder in self.also_writable:
            args += ["--bind", str(folder), str(folder)]
        return [*args, "--chdir", str(self.worktree)]

    def _landlock(self, argv: list[str], rlimits: dict[str, int], extra_env: dict[str, str] | None) -> Prepared:
        scratch = Path(tempfile.mkdtemp(prefix="sevenfold-cmd-"))
        (scratch / "home").mkdir()
        read = [*_landlock_roots(tuple(_hidden_paths(self.policy))), *(p for p in self.policy.shown if p.exists())]
        # Not /dev/shm: it is shared with the host and outlives the command.
        write = [self.worktree, scratch, *self.also_writable, Path("/dev/null"), Path("/dev/zero")]
        if not self.writable:
            read.append(self.worktree)
            write.remove(self.worktree)
        spec = {
            "read": [str(p) for p in read],
            "write": [str(p) for p in write],
            "deny_network": not self.policy.settings.network,
            "limits": rlimits,
            "parent": os.getpid(),
        }
        launcher = [sys.executable, "-I", "-S", landlock_exec.__file__, json.dumps(spec), PAYLOAD_FD, "--", *argv]
        env = self.environment(str(scratch / "home"), str(scratch), extra_env)
        return Prepared(launcher, launcher_environment(self.worktree), scratch, json.dumps(env).encode())


def _hidden_paths(policy: SandboxPolicy) -> list[Path]:
    """Every path hidden from commands, shallowest first (a tmpfs over a folder hides what a deeper one showed)."""
    paths = {Path(p) for p in _HIDDEN} | set(policy.hidden)
    paths.discard(Path("/"))  # a home of "/" (some service accounts) must not hide the whole system
    return sorted(paths, key=lambda p: (len(p.parts), str(p)))


@functools.lru_cache(maxsize=16)
def _landlock_roots(hidden: tuple[Path, ...]) -> tuple[Path, ...]:
    """What Landlock lets commands read: everything but the hidden paths and `/proc` (computed once per policy).

    `/proc` is left out because Landlock, as measured here, does not stop reading `/proc/<pid>/environ` of
    processes outside the sandbox run by the same user.
    """
    return tuple(_visible_roots(Path("/"), {p for p in (*hidden, Path("/proc")) if p.exists()}))


def _visible_roots(folder: Path, hidden: set[Path]) -> list[Path]:
    """Folders and files under `folder` that together cover everything except `hidden` (for an allow-list)."""
    if folder in hidden:
        return []
    if not any(folder in h.parents for h in hidden):
        return [folder]
    roots: list[Path] = []
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return roots
    for child in children:
        if child.is_symlink():
            continue  # the rule would land on its target, which is covered (or hidden) on its own
        roots.extend(_visible_roots(child, hidden))
    return roots


def _interpreter_paths() -> list[Path]:
    """Folders the test interpreter needs: the `python` on PATH and ours, each with its virtualenv's base install.

    A virtualenv or a pyenv install under a home folder would otherwise be hidden, and `python -m pytest` would
    not start.
    """
    found: list[Path] = []
    for program in {shutil.which("python"), shutil.which("python3"), sys.executable}:
        if not program:
            continue
        for prefix in (Path(program).parent.parent, Path(os.path.realpath(program)).parent.parent):
            found.append(prefix)
            config = prefix / "pyvenv.cfg"
            if config.is_file():
                for line in config.read_text(errors="replace").splitlines():
                    key, _, value = line.partition("=")
                    if key.strip() == "home" and value.strip():
                        home = Path(value.strip())
                        found += [home.parent, Path(os.path.realpath(home)).parent]
    found += [Path(sys.base_prefix), Path(sys.prefix)]
    return [p for p in dict.fromkeys(found) if str(p) not in ("/", "/usr")]


def _absolute(paths: tuple[Path, ...] | list[Path]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(Path(os.path.realpath(p)) for p in paths))


@functools.cache
def _program(name: str) -> str:
    """Where `name` is on sevenfold's own PATH (the launcher's PATH is fixed); the bare name if nowhere."""
    return shutil.which(name) or name


def _prlimit_argv(rlimits: dict[str, int]) -> list[str]:
    program = _program("prlimit")
    if program == "prlimit":
        return []
    return [program, *(f"--{name}={value}:{_hard(name, value)}" for name, value in rlimits.items()), "--"]


def _hard(name: str, soft: int) -> int:
    """The hard limit: one second past the soft CPU limit, so SIGXCPU (a clear message) comes before SIGKILL."""
    return soft + 1 if name == "cpu" else soft


def sandbox_policy(settings: Settings, repo: Path) -> SandboxPolicy:
    """The sandbox policy of a run on `repo` with these settings (blocking: opens the repository, probes)."""
    git_dir = open_repository(repo).common_dir
    config = os.environ.get("SEVENFOLD_CONFIG")
    extra = (*CONFIG_FILES_READ, *([Path(config)] if config else []), *settings.sandbox.hide_paths)
    return SandboxPolicy.for_run(settings.sandbox, repo, git_dir, settings.run_root, tuple(extra))


def unconfined(worktree: Path) -> Jail:
    """A jail with no boundary (backend none) for sevenfold's own trusted commands and for tests of other things."""
    return SandboxPolicy("none", SandboxSettings(backend="none")).jail(worktree)

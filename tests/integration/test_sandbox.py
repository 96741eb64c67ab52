"""The sandbox around every command the model influences, attacked through the real command runner.

Each attack runs under every backend this machine has (bwrap and landlock); in CI bubblewrap is required, so a
bwrap case that cannot run fails instead of skipping.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from sevenfold.settings import SandboxSettings, Settings, load_settings
from sevenfold.tools import sandbox as sandbox_module
from sevenfold.tools.sandbox import Jail, SandboxPolicy, SandboxUnavailableError, resolve_backend, sandbox_policy
from sevenfold.tools.shell import run_command
from tests.gitutil import git
from tests.sandboxes import BACKENDS, require
from tests.waiting import wait_until


class World:
    """A user's repository with secrets around it, a run root, and a worker's worktree: what an attack aims at."""

    def __init__(self, tmp_path: Path, make_repo: Callable[..., Path], canary: str) -> None:
        self.canary = canary
        self.repo = make_repo({"app.py": "print('hi')\n", "tests/test_app.py": "def test_ok():\n    pass\n"})
        (self.repo / ".env").write_text(f"API_TOKEN={canary}\n")  # the user's uncommitted secret
        self.run_root = tmp_path / "runs"
        self.worktree = self.run_root / "r1" / "worktrees" / "w1"
        git(self.repo, "worktree", "add", "-q", "-b", "sevenfold/r1/w1", str(self.worktree))
        (self.run_root / "r1" / "checkpoints.sqlite").write_text(f"transcript {canary}")
        self.home_canary = Path.home() / f".sevenfold-test-canary-{secrets.token_hex(4)}"
        self.home_canary.write_text(f"aws_secret_access_key = {canary}\n")

    def policy(self, backend: str, **sandbox: object) -> SandboxPolicy:
        settings = Settings(run_root=self.run_root, sandbox=SandboxSettings(backend=backend, **sandbox))  # type: ignore[arg-type]
        return sandbox_policy(settings, self.repo)

    def jail(self, backend: str, **sandbox: object) -> Jail:
        return self.policy(backend, **sandbox).jail(self.worktree)

    def fingerprint(self) -> dict[str, str]:
        """The user's checkout and everything in its git directory, byte for byte (the worktrees' own folders aside)."""
        found = {}
        for path in sorted(self.repo.rglob("*")):
            if path.is_file() and "worktrees" not in path.relative_to(self.repo).parts:
                found[str(path.relative_to(self.repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found


@pytest.fixture
def world(tmp_path: Path, make_repo: Callable[..., Path]) -> Iterator[World]:
    made = World(tmp_path, make_repo, f"canary{secrets.token_hex(8)}")
    yield made
    made.home_canary.unlink(missing_ok=True)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_secrets_in_sevenfolds_environment_never_reach_a_command(
    backend: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(backend)
    monkeypatch.setenv("OPENAI_API_KEY", world.canary)
    monkeypatch.setenv("SEVENFOLD_ENDPOINTS__DEFAULT__API_KEY", world.canary)
    monkeypatch.setenv("INNOCENT_LOOKING", world.canary)
    attack = (
        "env; tr '\\0' '\\n' < /proc/$PPID/environ; "
        "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done; "
        "p=$$; for i in 1 2 3 4 5 6; do p=$(cut -d' ' -f4 /proc/$p/stat); tr '\\0' '\\n' < /proc/$p/environ; done"
    )
    result = await run_command(attack, world.jail(backend), 60, 200_000)
    assert world.canary not in result.output
    assert "PATH=" in result.output  # the command did run and print its environment


@pytest.mark.parametrize("backend", BACKENDS)
async def test_home_the_users_checkout_and_the_run_directory_are_out_of_reach(backend: str, world: World) -> None:
    require(backend)
    targets = [world.home_canary, world.repo / ".env", world.run_root / "r1" / "checkpoints.sqlite"]
    attack = "; ".join(f"cat {t}; grep -r {world.canary} {t.parent}" for t in targets)
    result = await run_command(attack + "; echo done", world.jail(backend), 60, 200_000)
    assert world.canary not in result.output and "done" in result.output


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_repositorys_git_directory_is_read_only(backend: str, world: World) -> None:
    require(backend)
    before = world.fingerprint()
    common = world.repo / ".git"
    attack = [
        "git status --short; echo status=$?",
        f"printf '#!/bin/sh\\ntouch {world.repo}/pwned\\n' > {common}/hooks/post-commit",
        f"chmod +x {common}/hooks/post-checkout",
        f"git -C {world.repo} reset --hard HEAD",
        f"git -C {world.repo} update-ref refs/heads/main HEAD",
        f"git -C {world.repo} config core.hooksPath /tmp",
        "git config core.fsmonitor 'touch /tmp/fsmonitor-ran'",
        "git commit --allow-empty -m sneaky",
        f"rm -rf {common}/refs",
        "echo 'gitdir: /tmp/evil' > .git",
    ]
    result = await run_command("; ".join(attack), world.jail(backend), 60, 50_000)
    assert "status=0" in result.output  # git status still works for the worker
    assert world.fingerprint() == before
    assert not (world.repo / "pwned").exists()
    if backend == "bwrap":  # landlock cannot protect one file inside the writable worktree (sevenfold's git does)
        assert (world.worktree / ".git").read_text().startswith("gitdir: ") and "evil" not in (
            world.worktree / ".git"
        ).read_text()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_worktree_is_writable_and_tmp_is_private(backend: str, world: World) -> None:
    require(backend)
    name = f"sevenfold-private-{world.canary}"
    result = await run_command(
        f"echo edited > app.py && echo scratch > $TMPDIR/{name} && cat $TMPDIR/{name} && echo x > /tmp/{name}; cat app.py",
        world.jail(backend),
        60,
        10_000,
    )
    assert "scratch" in result.output and (world.worktree / "app.py").read_text() == "edited\n"
    assert not (Path("/tmp") / name).exists()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_network_and_the_hosts_unix_sockets_are_out_of_reach(
    backend: str, world: World, tmp_path: Path
) -> None:
    require(backend)
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagrams,
        socket.socket(socket.AF_UNIX) as service,
    ):
        datagrams.bind(("127.0.0.1", 0))
        service.bind(str(tmp_path / "service.sock"))  # like Docker's socket: a host service reached by path
        service.listen()
        for sock in (listener, datagrams, service):
            sock.setblocking(False)
        port, udp = listener.getsockname()[1], datagrams.getsockname()[1]
        attack = (
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)\" 2>&1 | tail -1; "
            f"python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {udp}))\" 2>&1 | tail -1; "
            f"python3 -c \"import socket; socket.socket(socket.AF_UNIX).connect('{tmp_path / 'service.sock'}')\" 2>&1 | tail -1; "
            f"(echo hello > /dev/tcp/127.0.0.1/{port}) 2>&1; echo tried"
        )
        result = await run_command(attack, world.jail(backend), 60, 10_000)
        assert "tried" in result.output
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
        with pytest.raises(BlockingIOError):
            datagrams.recv(16)  # nothing sent
        with pytest.raises(BlockingIOError):
            service.accept()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_root_keeps_no_capabilities_inside(backend: str, world: World) -> None:
    require(backend)
    # PR_CAPBSET_READ for CAP_SYS_ADMIN (21) and CAP_SYS_MODULE (16): 1 if the capability could still be had.
    probe = "python3 -c \"import ctypes; p = ctypes.CDLL(None).prctl; print('bounding', p(23, 21, 0, 0, 0), p(23, 16, 0, 0, 0))\""
    result = await run_command(probe, world.jail(backend), 60, 10_000)
    assert "bounding 0 0" in result.output


def _survivors(tag: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if any(tag in part for part in p.info["cmdline"] or [])]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_nothing_a_command_starts_outlives_it(backend: str, world: World) -> None:
    require(backend)
    tag = f"31{secrets.randbelow(10**6)}"
    attack = (
        f"setsid -f sleep {tag}1; nohup sleep {tag}2 > /dev/null 2>&1 & "
        f"env -u SEVENFOLD_WORKTREE setsid -f sleep {tag}3; (sleep {tag}4 &); "
        f"bash -c 'sleep {tag}5 & disown'; "
        f"env -u SEVENFOLD_WORKTREE setsid -f sleep {tag}6 > /dev/null 2>&1 < /dev/null; echo started; kill -9 $PPID"
    )
    result = await run_command(attack, world.jail(backend), 60, 10_000)
    assert "started" in result.output
    assert _survivors(tag) == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_memory_file_size_and_cpu_limits_stop_a_command_with_a_clear_message(backend: str, world: World) -> None:
    require(backend)
    jail = world.jail(backend, memory_mb=256, file_size_mb=8, cpu_seconds=1)
    hog = await run_command("python3 -c 'x = bytearray(2 * 1024**3)'", jail, 60, 10_000)
    assert hog.exit_code != 0 and hog.limit == "memory" and "memory limit" in hog.for_model()
    big = await run_command("head -c 2000000000 /dev/zero > big.bin", jail, 60, 10_000)
    assert big.limit == "file size" and "file size limit" in big.for_model()
    assert (world.worktree / "big.bin").stat().st_size <= 8 * 2**20
    spin = await run_command("python3 -c 'while True: pass'", jail, 60, 10_000)
    assert spin.limit == "CPU time" and not spin.timed_out


async def test_an_explicit_backend_that_cannot_run_is_refused_in_one_line(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    sandbox_module.bwrap_works.cache_clear()
    try:
        with pytest.raises(SandboxUnavailableError, match="bubblewrap"):
            resolve_backend("bwrap")
    finally:
        sandbox_module.bwrap_works.cache_clear()


async def test_with_no_backend_at_all_auto_refuses_and_says_how_to_install_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox_module, "bwrap_works", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(sandbox_module, "landlock_abi", lambda: 0)
    with pytest.raises(SandboxUnavailableError, match="install bubblewrap"):
        resolve_backend("auto")
    assert resolve_backend("none") == "none"


async def test_network_can_be_turned_on_by_setting(world: World) -> None:
    require("bwrap")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        result = await run_command(
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5); print('connected')\"",
            world.jail("bwrap", network=True),
            60,
            10_000,
        )
        assert "connected" in result.output


DRIVER = """
import asyncio, sys
from pathlib import Path
from sevenfold.settings import SandboxSettings
from sevenfold.tools.sandbox import SandboxPolicy
from sevenfold.tools.shell import run_command

repo, worktree, runs, backend, tag = sys.argv[1:]
policy = SandboxPolicy.for_run(SandboxSettings(backend=backend), Path(repo), Path(repo) / ".git", Path(runs))
asyncio.run(run_command(f"setsid -f sleep {tag}1; sleep {tag}2", policy.jail(Path(worktree)), 600, 1000))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_commands_die_with_the_process_that_started_them(backend: str, world: World, tmp_path: Path) -> None:
    require(backend)
    tag = f"32{secrets.randbelow(10**6)}"
    (tmp_path / "driver.py").write_text(DRIVER)
    args = [str(world.repo), str(world.worktree), str(world.run_root), backend, tag]
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), *args])
    try:
        sleeping = lambda: [p for p in _survivors(tag) if p.info["cmdline"][0] == "sleep"]  # noqa: E731
        wait_until(lambda: len(sleeping()) == 2, "the command's two sleeps to start")
    finally:
        driver.kill()  # SIGKILL: sevenfold gets no chance to clean up
        driver.wait(timeout=30)
    wait_until(
        lambda: _survivors(tag) == [],
        lambda: f"the command to die with its driver; left: {[p.info['cmdline'] for p in _survivors(tag)]}",
    )


@pytest.fixture
def visible_folder() -> Iterator[Path]:
    """A folder outside every place hidden by default (the sandbox shows the rest of the system read-only)."""
    folder = Path(tempfile.mkdtemp(prefix="sevenfold-visible-", dir="/srv" if os.access("/srv", os.W_OK) else "/opt"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_settings_files_read_and_paths_named_in_hide_paths_are_hidden(
    backend: str, world: World, visible_folder: Path
) -> None:
    require(backend)
    config = visible_folder / "sevenfold.toml"
    config.write_text(f'[endpoints.default]\napi_key = "{world.canary}"\n')
    private = visible_folder / "private.txt"
    private.write_text(world.canary)
    load_settings(config)  # this process has now read a file that holds a key
    control = visible_folder / "public.txt"
    control.write_text("public")
    jail = world.jail(backend, hide_paths=[private])
    result = await run_command(f"cat {config} {private} {control}", jail, 60, 10_000)
    assert world.canary not in result.output
    assert "public" in result.output  # the folder itself stays visible: only those files are hidden


async def test_landlock_refuses_setuid_and_setgid_bits(world: World) -> None:
    """Landlock does not cover metadata: a command owning a system file could otherwise plant a setuid binary."""
    require("landlock")
    (world.worktree / "tool").write_text("#!/bin/sh\n")
    fchmod = "python3 -c \"import os, sys; fd = os.open('tool', os.O_RDONLY); os.fchmod(fd, int(sys.argv[1], 8))\""
    result = await run_command(
        "chmod 4755 tool; echo setuid=$?; chmod 2755 tool; echo setgid=$?; "
        f"{fchmod} 4755 2>/dev/null; echo fsetuid=$?; chmod 755 tool; echo plain=$?",
        world.jail("landlock"),
        60,
        10_000,
    )
    for refused in ("setuid=1", "setgid=1", "fsetuid=1"):
        assert refused in result.output
    assert "plain=0" in result.output
    assert (world.worktree / "tool").stat().st_mode & 0o7777 == 0o755


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_commands_environment_never_acts_on_the_launcher_outside_the_sandbox(
    backend: str, world: World, tmp_path: Path
) -> None:
    """`PATH` (or `LD_PRELOAD`) given to commands, by the user or a repository's test settings, is set inside only:
    the launcher that builds the sandbox runs outside it with a fixed environment."""
    require(backend)
    decoys = tmp_path / "decoys"
    decoys.mkdir()
    for name in ("bwrap", "prlimit", "python3", "bash"):
        decoy = decoys / name
        decoy.write_text(f'#!/bin/sh\ntouch {tmp_path}/decoy-ran\nexec /usr/bin/{name} "$@"\n')
        decoy.chmod(0o755)
    jail = world.jail(backend, env={"PATH": f"{decoys}:/usr/bin:/bin", "ONLY_INSIDE": "yes"})
    result = await run_command(["/usr/bin/env"], jail, 60, 10_000)
    assert "ONLY_INSIDE=yes" in result.output and f"PATH={decoys}" in result.output  # set for the command
    assert not (tmp_path / "decoy-ran").exists()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_home_folder_of_slash_hides_nothing_it_should_not(
    backend: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some service accounts have HOME=/: hiding it would hide the whole system and no command could start."""
    require(backend)
    monkeypatch.setenv("HOME", "/")
    result = await run_command("echo started", world.jail(backend), 60, 10_000)
    assert result.exit_code == 0 and "started" in result.output

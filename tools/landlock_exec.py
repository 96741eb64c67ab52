"""Landlock through ctypes, and a launcher that confines one command with it.

Run as a script (`python -I -S landlock_exec.py SPEC ENV_FD -- argv...`) the file starts the command as its child, and
only the child is confined: resource limits, no root capabilities, Landlock (filesystem allow-list, TCP
bind/connect denied, signals and abstract sockets scoped to the sandbox) and a seccomp filter (sockets, setuid bits).
When the command ends the launcher kills every process it left behind (the launcher is a child subreaper, so
orphans come back to it, and it is outside the sandbox, so the command cannot kill it first). It imports only the standard
library so it starts fast and needs no installed package; `sevenfold.tools.sandbox` imports it as a module
for `abi_version()`.

Kernel interface: include/uapi/linux/landlock.h (ABI 1: filesystem, 2: refer, 3: truncate, 4: TCP,
5: device ioctl, 6: scoping of abstract unix sockets and signals).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import resource
import signal
import socket
import sys

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS, _PR_SET_CHILD_SUBREAPER, _PR_SET_PDEATHSIG = 38, 36, 1

# Filesystem rights, by the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_WRITE_TREE = sum(1 << bit for bit in range(4, 13))  # remove, make (char, dir, reg, sock, fifo, block, sym)
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]  # fmt: skip


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: object) -> int:
    result = int(_libc.syscall(ctypes.c_long(number), *args))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def abi_version() -> int:
    """The Landlock ABI the running kernel offers; 0 when Landlock is missing or disabled."""
    try:
        return _syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0


def _fs_rights(abi: int) -> int:
    rights = EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | _WRITE_TREE
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(read: list[str], write: list[str], deny_network: bool) -> int:
    """Confine this process (and everything it starts) for good: read and execute under `read`, anything under `write`.

    TCP bind and connect are denied when `deny_network` (ABI 4+); abstract unix sockets and signals are scoped to
    the sandbox (ABI 6+). Returns the ABI used. Paths that do not exist are skipped.
    """
    abi = abi_version()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available in this kernel")
    handled = _fs_rights(abi)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if deny_network and abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0
    attr = _RulesetAttr(handled, net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    reading = EXECUTE | READ_FILE | READ_DIR
    for paths, rights in ((read, reading), (write, handled)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                allowed = rights & handled
                if not os.path.isdir(path):
                    allowed &= _FILE_ONLY
                rule = _PathBeneathAttr(allowed, fd)
                _syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0))  # fmt: skip
            finally:
                os.close(fd)
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    _syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    os.close(ruleset)
    return abi


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


# Per machine: audit arch, socket, io_uring_setup, and the chmod calls with the argument that holds the mode.
_ARCHES = {
    "x86_64": (0xC000003E, 41, 425, {90: 1, 91: 1, 268: 2, 452: 2}),  # chmod, fchmod, fchmodat, fchmodat2
    "aarch64": (0xC00000B7, 198, 425, {52: 1, 53: 2, 452: 2}),  # fchmod, fchmodat, fchmodat2
}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_LD_ABS, _JEQ, _JSET, _AND, _RET = 0x20, 0x15, 0x45, 0x54, 0x06
_ALLOW, _DENY = 0x7FFF0000, 0x00050000 | errno.EACCES
_SETUID_SETGID = 0o6000


def _assemble(program: list[tuple[int, str | int, str | int, int] | str]) -> list[tuple[int, int, int, int]]:
    """Classic BPF with labels: a string item names the next instruction; jumps may name a label instead of an offset."""
    labels, index = {}, 0
    for item in program:
        if isinstance(item, str):
            labels[item] = index
        else:
            index += 1
    out: list[tuple[int, int, int, int]] = []
    for item in program:
        if isinstance(item, str):
            continue
        code, jt, jf, k = item
        here = len(out) + 1
        out.append((code, labels[jt] - here if isinstance(jt, str) else jt, labels[jf] - here if isinstance(jf, str) else jf, k))  # fmt: skip
    return out


def seccomp_filter(deny_network: bool) -> bool:
    """A seccomp filter for what Landlock leaves open. Returns False where the machine is not known (no filter).

    - `socket()`: no unix sockets (the host's services, e.g. Docker's, are reachable by path and Landlock does not
      stop `connect` on them), and with `deny_network` no socket at all (Landlock only covers TCP: UDP and raw
      sockets would still reach the network). `io_uring_setup` is refused (it can open sockets without the call).
    - `chmod` and friends: no setuid or setgid bit. Landlock does not cover metadata, so a command run as the owner
      of a system file could otherwise plant a setuid binary. Other mode changes stay possible (refusing `chmod`
      by path breaks `git init`, `shutil.copy` and most installers); docs/security.md says so.
    """
    arch = _ARCHES.get(os.uname().machine)
    if arch is None:
        return False
    audit_arch, socket_nr, uring_nr, chmods = arch
    program: list[tuple[int, str | int, str | int, int] | str] = [
        (_LD_ABS, 0, 0, 4),
        (_JEQ, 0, "allow", audit_arch),  # another ABI (e.g. 32-bit): not ours to judge
        (_LD_ABS, 0, 0, 0),
        (_AND, 0, 0, 0xBFFFFFFF),  # x32 calls are the same calls
        (_JEQ, "deny", 0, uring_nr),
        (_JEQ, "socket", 0, socket_nr),
    ]
    program += [(_JEQ, f"mode{argument}", 0, number) for number, argument in chmods.items()]
    program += [(_RET, 0, 0, _ALLOW)]
    for argument in sorted(set(chmods.values())):  # the mode's argument, low half
        program += [f"mode{argument}", (_LD_ABS, 0, 0, 16 + 8 * argument), (_JSET, "deny", "allow", _SETUID_SETGID)]
    program += [
        "socket",
        (_LD_ABS, 0, 0, 16),  # the family: first argument, low half
        (_JEQ, "deny", 0, socket.AF_UNIX),
        (_JEQ, "deny", "deny", 0) if deny_network else (_JEQ, "allow", "allow", 0),
        "allow",
        (_RET, 0, 0, _ALLOW),
        "deny",
        (_RET, 0, 0, _DENY),
    ]
    rows = _assemble(program)
    filters = (_SockFilter * len(rows))(*(_SockFilter(*row) for row in rows))
    prog = _SockFprog(len(rows), filters)
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")
    return True


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_PR_CAPBSET_DROP, _PR_SET_SECUREBITS = 24, 28
_SECUREBITS_LOCKED_NOROOT = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x10  # noroot, no setuid fixup, keep-caps: locked


def drop_root_powers() -> None:
    """Run as root without root's capabilities, for good: empty bounding set, no capabilities regained on exec.

    Landlock confines files and TCP; a root process keeping CAP_SYS_MODULE or CAP_SYS_ADMIN could still load a
    kernel module or change the system. Without capabilities, root is an ordinary user that owns some files.
    """
    if os.geteuid() != 0:
        return
    for capability in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break
    if _libc.prctl(_PR_SET_SECUREBITS, _SECUREBITS_LOCKED_NOROOT, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot lock securebits")
    header = _CapHeader(0x20080522, 0)
    nothing = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), ctypes.byref(nothing)) != 0:
        raise OSError(ctypes.get_errno(), "cannot drop capabilities")


def _set_limits(limits: dict[str, int]) -> None:
    names = {"data": resource.RLIMIT_DATA, "fsize": resource.RLIMIT_FSIZE, "cpu": resource.RLIMIT_CPU}
    names["nproc"] = resource.RLIMIT_NPROC
    names["core"] = resource.RLIMIT_CORE
    for name, value in limits.items():
        # One second of grace past the CPU limit, so SIGXCPU (a clear message) comes before SIGKILL.
        resource.setrlimit(names[name], (value, value + 1 if name == "cpu" else value))


def _descendants() -> list[int]:
    """Every process below this one (children of children too), read from /proc."""
    found, frontier = [], [os.getpid()]
    while frontier:
        parent = frontier.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as children:
                    kids = [int(pid) for pid in children.read().split()]
            except OSError:
                continue
            found.extend(kids)
            frontier.extend(kids)
    return found


def _kill_everything_below() -> None:
    """SIGKILL every descendant and reap it, until none is left (orphans re-parent to us meanwhile)."""
    while True:
        pids = _descendants()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)  # one of our children has been killed: this returns
        except ChildProcessError:
            return


def _which(program: str, path: str) -> str:
    """The path `execvp` would run with this PATH; looked up before confinement (afterwards even imports may fail)."""
    if "/" in program:
        return program
    for folder in path.split(os.pathsep):
        candidate = os.path.join(folder, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return program


def main(argv: list[str]) -> int:
    """`SPEC ENV_FD -- command...`: confine, run the command, clean up after it; exit with its status."""
    spec = json.loads(argv[0])
    with os.fdopen(int(argv[1]), "rb") as payload:  # the command's environment: never ours (we run unconfined)
        environment = json.loads(payload.read())
    command = argv[argv.index("--") + 1 :]
    # Die (cleaning up) with the process that started us, as bwrap's --die-with-parent does.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != spec.get("parent", os.getppid()):
        return 128 + signal.SIGTERM  # it died before the line above
    program = _which(command[0], environment.get("PATH", os.defpath))
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def stop(signum: int, _frame: object) -> None:
        _kill_everything_below()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    child = os.fork()
    if child == 0:
        # Only the child is confined: the launcher stays outside the sandbox's domain, so the command cannot signal
        # it (ABI 6 scoping) and leave a process behind by killing the one that would clean up.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            _set_limits(spec.get("limits", {}))
            drop_root_powers()
            restrict(spec["read"], spec["write"], spec["deny_network"])
            seccomp_filter(spec["deny_network"])
        except OSError as exc:  # never run the command unconfined
            print(f"sevenfold sandbox: cannot confine the command: {exc}", file=sys.stderr)
            os._exit(126)
        try:
            os.execve(program, command, environment)
        except OSError as exc:
            print(f"sevenfold sandbox: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
            os._exit(127)
    _, status = os.waitpid(child, 0)
    _kill_everything_below()
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

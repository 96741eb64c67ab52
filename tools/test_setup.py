"""How a project's tests run: the user's settings, the project's own `[tool.sevenfold]`, its layout, and a
collection on the base commit that shows the test command can at least find and import the tests.

The repository is untrusted input (a model or a hostile repository may have written it). From its
`pyproject.toml` only `test_command` and `test_env` are read, never anything about the sandbox, the network,
endpoints, paths or limits; what the user set (flags, environment, config file) wins over them; and variables
that a dynamic loader, a shell or the sandbox's own launcher read are refused.
"""

from __future__ import annotations

import asyncio
import configparser
import re
import shlex
import shutil
import tempfile
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sevenfold.errors import SettingsError
from sevenfold.settings import Settings, ToolLimits
from sevenfold.tools.git import run_git
from sevenfold.tools.sandbox import Jail, SandboxPolicy
from sevenfold.tools.shell import run_command
from sevenfold.tools.testing import check_test_command, first_error, test_argv

REPOSITORY_KEYS = ("test_command", "test_env")
"""The only `[tool.sevenfold]` keys read from a repository."""
SRC_CHOICE = "src layout"

_CONFIG_FILES = ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini")
_MAX_CONFIG_BYTES = 1 << 20
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_VALUE = re.compile(r"[\w.,:/@+=-]{1,200}")  # shown in a suggestion: no tox substitutions, no control codes
# Read by the dynamic loader, a shell, Python's startup or sevenfold's sandbox launcher (which starts with the
# command's environment): a repository must not set them. Project variables (`MYLIB_MODE`, `PYTHONPATH`) pass.
_REFUSED = frozenset(
    {"PATH", "HOME", "TMPDIR", "SHELL", "ENV", "BASH_ENV", "IFS", "CDPATH", "PS4", "PROMPT_COMMAND", "PYTHONHOME",
     "PYTHONSTARTUP", "GLIBC_TUNABLES", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES", "RES_OPTIONS",
     "LOCALDOMAIN", "TZDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"}
)  # fmt: skip
_REFUSED_PREFIXES = ("LD_", "DYLD_", "MALLOC_", "BASH_FUNC_", "SEVENFOLD_", "GIT_")


@dataclass(frozen=True)
class Project:
    """What the base commit says about running its tests: its config files (plain files only) and layout."""

    files: dict[str, str] = field(default_factory=dict)
    src_layout: bool = False

    def toml(self) -> dict[str, Any]:
        """pyproject.toml's tables ({} when there is none or it is not valid TOML: pytest will say so)."""
        try:
            return tomllib.loads(self.files.get("pyproject.toml", ""))
        except tomllib.TOMLDecodeError:
            return {}

    def sets_pythonpath(self) -> bool:
        """Whether the project's pytest configuration sets `pythonpath` (then pytest finds the code itself)."""
        pytest_table = self.toml().get("tool", {}).get("pytest", {})
        if "pythonpath" in pytest_table or "pythonpath" in pytest_table.get("ini_options", {}):
            return True
        sections = {"pytest.ini": "pytest", "setup.cfg": "tool:pytest", "tox.ini": "pytest"}
        return any(_ini(self.files.get(name, "")).has_option(s, "pythonpath") for name, s in sections.items())

    def tox_variables(self) -> dict[str, str]:
        """The variables tox.ini's test environments set (`setenv`), first value of each name."""
        ini = _ini(self.files.get("tox.ini", ""))
        found: dict[str, str] = {}
        for section in ini.sections():
            if section == "testenv" or section.startswith("testenv:"):
                for line in ini.get(section, "setenv", fallback="").splitlines():
                    name, _, value = (part.strip() for part in line.partition("="))
                    if _NAME.fullmatch(name):
                        found.setdefault(name, value)
        return found


@dataclass(frozen=True)
class Collection:
    """What `<test command> --collect-only` found."""

    exit_code: int | None
    collected: int
    error: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """The tests could be collected (none at all is not an error here: a task may be to write the first)."""
        return self.exit_code in (0, 5) and not self.error


@dataclass(frozen=True)
class TestSetup:
    """How this run's tests run, and where each part came from."""

    __test__ = False  # not a pytest test class

    command: str
    env: dict[str, str]
    """Variables set for every sandboxed command (`sandbox.env`): the user's and the repository's."""
    from_repository: tuple[str, ...] = ()
    """What came from the repository's `[tool.sevenfold]`: `test_command`, `test_env.NAME`."""
    chosen: str = ""
    """Why sevenfold changed the command (`src layout`), if it did."""
    collected: int | None = None
    """Tests collected at the base commit; None when not checked."""
    notes: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The setup as events and `run.json` show it: variable names, never their values."""
        return {
            "command": self.command,
            "env": sorted(self.env),
            "from_repository": list(self.from_repository),
            "chosen": self.chosen,
            "collected": self.collected,
            "notes": list(self.notes),
        }

    def apply(self, settings: Settings) -> Settings:
        """`settings` with this test command and these variables."""
        return settings.model_copy(
            update={
                "tools": settings.tools.model_copy(update={"test_command": self.command}),
                "sandbox": settings.sandbox.model_copy(update={"env": dict(self.env)}),
            }
        )


async def resolve_test_setup(settings: Settings, repo: Path, commit: str, policy: SandboxPolicy) -> TestSetup:
    """The run's test setup, checked: the command runs, and collects the tests of `commit` in the sandbox.

    Chooses `PYTHONPATH=src` only when the default command cannot collect a `src/` layout and that fixes it.
    Raises `SettingsError` with one line (the first error and what to try) when the tests cannot be collected.
    """
    project = await read_project(repo, commit)
    setup = _merge(settings, project)
    policy = replace(policy, settings=policy.settings.model_copy(update={"env": setup.env}))
    limits = settings.tools.model_copy(update={"test_command": setup.command})
    version = await check_test_command(limits, policy.jail(repo, writable=False))
    if not version.lower().startswith("pytest"):
        not_pytest = f"collection not checked: the test command is not pytest ({version[:80]})"
        return replace(setup, notes=(*setup.notes, not_pytest))
    async with base_checkout(repo, commit) as tree:
        jail = policy.jail(tree, writable=False)
        found = await collect(jail, setup.command, collect_timeout(limits.test_timeout))
        if found.ok:
            return _collected(setup, project, found)
        retry = None
        if _may_choose_src(settings, setup, project):
            src_setup = replace(setup, command=f"PYTHONPATH=src {setup.command}", chosen=SRC_CHOICE)
            retry = await collect(jail, src_setup.command, collect_timeout(limits.test_timeout))
            if retry.ok:
                return _collected(src_setup, project, retry)
    raise SettingsError(_cannot_collect(setup, project, found, retry))


async def read_project(repo: Path, commit: str) -> Project:
    """The test-related config files of `commit` (regular files up to 1 MiB, read from git, never the checkout)."""
    listing = await run_git("ls-tree", "-l", "-z", commit, "--", *_CONFIG_FILES, "src", cwd=repo)
    files: dict[str, str] = {}
    src = False
    for entry in filter(None, listing.split("\0")):
        meta, _, path = entry.partition("\t")
        mode, kind, sha, size = meta.split()
        if path == "src":
            src = kind == "tree"
        elif kind == "blob" and mode in ("100644", "100755") and int(size) <= _MAX_CONFIG_BYTES:
            files[path] = await run_git("cat-file", "blob", sha, cwd=repo)
    return Project(files, src)


@asynccontextmanager
async def base_checkout(repo: Path, commit: str) -> AsyncIterator[Path]:
    """A temporary detached worktree of `commit` (in a temp folder), removed and pruned afterwards."""
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="sevenfold-preflight-"))
    tree = folder / "tree"
    try:
        await run_git("worktree", "add", "--detach", "--quiet", str(tree), commit, cwd=repo)
        yield tree
    finally:
        await run_git("worktree", "remove", "--force", str(tree), cwd=repo, check=False)
        await asyncio.to_thread(shutil.rmtree, folder, True)
        await run_git("worktree", "prune", cwd=repo, check=False)


COLLECT_TIMEOUT_MIN_S = 60.0
"""The shortest time collection gets: a test timeout of a few seconds is about running tests, not importing them."""


def collect_timeout(test_timeout: float) -> float:
    """How long the preflight's collection may take: the test timeout, but never under `COLLECT_TIMEOUT_MIN_S`."""
    return max(test_timeout, COLLECT_TIMEOUT_MIN_S)


async def collect(jail: Jail, command: str, timeout_s: float) -> Collection:
    """Run `<command> --collect-only -q` in the jail: how many tests it finds, or the first error."""
    argv, env = test_argv(command, ["--collect-only", "-q", "-p", "no:cacheprovider"])
    run = await run_command(argv, jail, timeout_s, 20_000, env)
    counted = re.search(r"(\d+) tests? collected", run.output)
    failed = run.exit_code not in (0, 5) or "ERROR collecting" in run.output  # --continue-on-collection-errors
    error = (first_error(run.output) or _last_line(run.output)) if failed else ""
    return Collection(run.exit_code, int(counted.group(1)) if counted else 0, error, run.timed_out)


def _merge(settings: Settings, project: Project) -> TestSetup:
    """The user's settings over the repository's `[tool.sevenfold]` (only its `REPOSITORY_KEYS`)."""
    table = project.toml().get("tool", {}).get("sevenfold", {})
    if not isinstance(table, dict):
        raise SettingsError("the repository's pyproject.toml: [tool.sevenfold] must be a table")
    notes = []
    ignored = sorted(set(table) - set(REPOSITORY_KEYS))
    if ignored:
        notes.append(
            f"ignored in the repository's [tool.sevenfold]: {', '.join(ignored)} (only {' and '.join(REPOSITORY_KEYS)} are read)"
        )
    origin: list[str] = []
    command = settings.tools.test_command
    if "test_command" in table and "test_command" not in settings.tools.model_fields_set:
        command = _repository_command(table["test_command"])
        origin.append("test_command")
    env = dict(settings.sandbox.env)
    for name, value in _repository_env(table.get("test_env", {})).items():
        if name not in env:
            env[name] = value
            origin.append(f"test_env.{name}")
    return TestSetup(command, env, tuple(origin), notes=tuple(notes))


def _repository_command(value: object) -> str:
    where = "the repository's pyproject.toml [tool.sevenfold] test_command"
    if not isinstance(value, str) or not value.strip() or len(value) > 1000 or "\n" in value:
        raise SettingsError(f"{where}: must be one line of text, at most 1000 characters")
    try:
        _, env = test_argv(value, [])
    except ValueError as exc:
        raise SettingsError(f"{where}: cannot be split into words ({exc})") from None
    _check_names(env, where)
    return value


def _repository_env(value: object) -> dict[str, str]:
    where = "the repository's pyproject.toml [tool.sevenfold] test_env"
    if not isinstance(value, dict) or len(value) > 100:
        raise SettingsError(f'{where}: must be a table of at most 100 NAME = "value" strings')
    for name, text in value.items():
        if not _NAME.fullmatch(name) or not isinstance(text, str) or len(text) > 4096:
            raise SettingsError(
                f"{where}: {name!r} must be a variable name with a string value (up to 4096 characters)"
            )
    _check_names(value, where)
    return dict(value)


def _check_names(env: dict[str, str], where: str) -> None:
    refused = sorted(n for n in env if n in _REFUSED or n.startswith(_REFUSED_PREFIXES))
    if refused:
        raise SettingsError(
            f"{where}: may not set {', '.join(refused)} (set it yourself with --test-env if you mean it)"
        )


def _may_choose_src(settings: Settings, setup: TestSetup, project: Project) -> bool:
    default = ToolLimits.model_fields["test_command"].default
    return (
        setup.command == default
        and "test_command" not in setup.from_repository
        and "test_command" not in settings.tools.model_fields_set
        and project.src_layout
        and "PYTHONPATH" not in setup.env
        and not project.sets_pythonpath()
    )


def _collected(setup: TestSetup, project: Project, found: Collection) -> TestSetup:
    notes = list(setup.notes)
    if found.exit_code == 5 or not found.collected:
        notes.append("no tests were collected at the base commit: a round passes only when some test passes")
    unset = _tox_unset(setup, project)
    if unset:
        notes.append(f"tox.ini sets {', '.join(unset)} for its tests, not set here: {_test_env_flags(unset)}")
    return replace(setup, collected=found.collected, notes=tuple(notes))


def _cannot_collect(setup: TestSetup, project: Project, found: Collection, retry: Collection | None) -> str:
    why = "timed out" if found.timed_out else f"exit {found.exit_code}" + (f": {found.error}" if found.error else "")
    if retry is not None:
        why += f"; with PYTHONPATH=src: {retry.error or f'exit {retry.exit_code}'}"
    tries = []
    if project.src_layout and retry is None and "PYTHONPATH" not in setup.env:
        tries.append(f"--test-command {shlex.quote('PYTHONPATH=src ' + setup.command)}")
    unset = _tox_unset(setup, project)
    tries.append(f"{_test_env_flags(unset)} (tox.ini sets them)" if unset else "--test-env NAME=VALUE")
    tries.append("--test-command '/path/to/venv/bin/python -m pytest' with sandbox.read_paths for a virtualenv")
    return (
        f"test command {setup.command!r} cannot collect the tests at the base commit ({why}); try {'; or '.join(tries)}"
    )


def _tox_unset(setup: TestSetup, project: Project) -> dict[str, str]:
    return {name: value for name, value in project.tox_variables().items() if name not in setup.env}


def _test_env_flags(variables: dict[str, str]) -> str:
    """`--test-env` options that set these variables: tox's value when it is plain text, else VALUE."""
    return " ".join(
        f"--test-env {shlex.quote(f'{name}={value}' if _PLAIN_VALUE.fullmatch(value) else f'{name}=VALUE')}"
        for name, value in variables.items()
    )


def _ini(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return configparser.RawConfigParser()
    return parser


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""

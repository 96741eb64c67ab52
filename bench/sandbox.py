"""What does the sandbox cost per command? Each backend side by side, interleaved, in one run.

Runs the same commands through `sevenfold.tools.shell.run_command` (what a worker's `run_command` tool does) in a
real git worktree, rotating the backends command by command so machine noise hits them alike, and reports the
median and p90 wall time per command for each backend and its extra cost over `none`.

    .venv/bin/python bench/sandbox.py [--repeats 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sevenfold.settings import SandboxSettings
from sevenfold.tools.sandbox import SandboxPolicy, bwrap_works, landlock_abi
from sevenfold.tools.shell import run_command

COMMANDS = {"true": "true", "git status": "git status --short", "python -c pass": "python3 -c pass"}


def _worktree(root: Path) -> tuple[Path, Path]:
    repo = root / "repo"
    repo.mkdir()
    for i in range(50):
        (repo / f"m{i}.py").write_text(f"x = {i}\n")
    run = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*run[:1], "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*run, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*run, "-C", str(repo), "commit", "-qm", "init"], check=True)
    worktree = root / "runs" / "r" / "worktrees" / "w"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "-b", "w", str(worktree)], check=True)
    return repo, worktree


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def measure(repeats: int) -> dict[str, dict[str, dict[str, float]]]:
    backends = ["none"] + (["bwrap"] if bwrap_works() is None else []) + (["landlock"] if landlock_abi() else [])
    with tempfile.TemporaryDirectory() as folder:
        repo, worktree = _worktree(Path(folder))
        jails = {
            b: SandboxPolicy.for_run(SandboxSettings(backend=b), repo, repo / ".git", Path(folder) / "runs").jail(
                worktree
            )
            for b in backends
        }
        times: dict[str, dict[str, list[float]]] = {c: {b: [] for b in backends} for c in COMMANDS}
        for name, command in COMMANDS.items():
            for _ in range(repeats):
                for backend in backends:  # interleaved: the same noise for every backend
                    started = time.perf_counter()
                    result = await run_command(command, jails[backend], 60, 10_000)
                    times[name][backend].append(time.perf_counter() - started)
                    assert result.exit_code == 0, (backend, command, result.output)
    report: dict[str, dict[str, dict[str, float]]] = {}
    for name, by_backend in times.items():
        base = statistics.median(by_backend["none"])
        report[name] = {
            backend: {
                "median_ms": round(statistics.median(values) * 1000, 2),
                "p90_ms": round(_percentile(values, 0.9) * 1000, 2),
                "extra_median_ms": round((statistics.median(values) - base) * 1000, 2),
                "ratio_to_none": round(statistics.median(values) / base, 2),
            }
            for backend, values in by_backend.items()
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = asyncio.run(measure(args.repeats))
    print(f"{'command':<16}{'backend':<10}{'median ms':>10}{'p90 ms':>10}{'extra ms':>10}{'x none':>8}")
    for name, by_backend in report.items():
        for backend, row in by_backend.items():
            print(
                f"{name:<16}{backend:<10}{row['median_ms']:>10}{row['p90_ms']:>10}"
                f"{row['extra_median_ms']:>10}{row['ratio_to_none']:>8}"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""The public API: the names `sevenfold` exports, and the README's embedding example run for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import sevenfold
from tests.gitutil import git

README = Path(__file__).resolve().parents[2] / "README.md"
TASK = "Implement every stub module of the package so that the whole test suite passes."


def test_every_public_name_imports_from_sevenfold() -> None:
    for name in sevenfold.__all__:
        assert getattr(sevenfold, name) is not None, name


def test_the_readme_embedding_example_runs_as_a_subgraph(
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    example_repo: Callable[[str], Path],
    run_env: dict[str, str],
) -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- embedding example:", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    _, base_url = sim_process("--profile", "instant", "--policy", "demo")
    repo = example_repo("embedded")
    code = (
        block.replace("http://gpu-box:8000/v1", base_url)
        .replace("make the failing tests pass", TASK)
        .replace("/src/myapp", str(repo))
        .replace("RunContext(max_rounds=2)", "RunContext(max_rounds=1)")  # the demo needs two: one must fail
    )
    assert code.count(base_url) == code.count(str(repo)) == code.count("max_rounds=1") == 1  # placeholders still there
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=run_env)
    assert run.returncode == 0, run.stderr[-3000:]
    status, branch = run.stdout.split()
    assert re.fullmatch(r"sevenfold/[0-9-a-f]+/result", branch)
    # The run context reached the embedded graph: one round only, so the planted bug is still there.
    assert status == "failed"
    assert git(repo, "rev-parse", "--verify", branch)
    reports = list(Path(run_env["SEVENFOLD_RUN_ROOT"]).glob("*/report.json"))
    assert len(reports) == 1 and len(json.loads(reports[0].read_text())["rounds"]) == 1

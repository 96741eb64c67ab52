"""`sevenfold run` input that is refused before anything starts: the task given twice or not at all, a task file
that cannot be read, a `--test-env` that is not NAME=VALUE."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sevenfold.cli import app
from sevenfold.errors import SevenfoldError


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give the task once: as TASK, as - (read from standard input) or with --task-file PATH"),
        (["Fix it.", "--task-file", "task.md"], "give the task once"),
        (["--task-file", "missing.md"], "--task-file missing.md: cannot read it (No such file or directory)"),
        (["--task-file", "latin1.md"], "--task-file latin1.md: the task is not UTF-8 text"),
        (["Fix it.", "--test-env", "NOEQUALS"], "--test-env 'NOEQUALS': give NAME=VALUE"),
        (["Fix it.", "--test-env", "1BAD=x"], "--test-env '1BAD=x': give NAME=VALUE"),
    ],
)
def test_bad_task_or_test_env_input_is_refused_with_one_line(
    args: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "task.md").write_text("Fix it.\n")
    (tmp_path / "latin1.md").write_bytes("Corrigez-le, s'il vous plaît.".encode("latin-1"))
    result = CliRunner().invoke(app, ["run", *args, "--repo", str(tmp_path / "nowhere")])
    assert isinstance(result.exception, SevenfoldError), result.output
    assert says in str(result.exception) and "\n" not in str(result.exception)

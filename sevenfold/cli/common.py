"""What the commands share: the error console, options several commands take, settings from flags, and the
entry point's one-line errors."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from sevenfold.errors import SevenfoldError
from sevenfold.settings import Settings, load_settings

console = Console(stderr=True)
"""Progress and errors: standard error, so that standard output is the command's result (or JSON events)."""

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file (also SEVENFOLD_CONFIG).")]
SandboxOption = Annotated[
    str | None,
    typer.Option(
        "--sandbox",
        help="Where the model's commands run: auto (bwrap, else landlock, else refuse), bwrap, landlock, or none "
        "(unconfined, warned on every run).",
    ),
]
EventsOption = Annotated[
    bool, typer.Option("--events", help="Print every progress event as one JSON line on stdout (for scripts).")
]
QuietOption = Annotated[bool, typer.Option(help="No live view.")]
CheckpointUrlOption = Annotated[
    str | None,
    typer.Option(
        "--checkpoint-url",
        help="A shared PostgreSQL database for checkpoints and run records, postgresql://USER@HOST:PORT/DB (also "
        "SEVENFOLD_CHECKPOINT_URL; needs sevenfold[postgres]). Default: a SQLite file per run.",
        show_default=False,
    ),
]


def settings_from_flags(config: Path | None, **flags: Any) -> Settings:
    """Settings from `--config`, the environment and the flags given (a flag left `None` was not given).

    `base_url`, `model` and `slots` change the default endpoint (see `Settings.with_overrides`). Raises
    `SettingsError` with one line naming the first bad field.
    """
    return load_settings(config).with_overrides(**flags)


def run_app(app: typer.Typer) -> None:
    """Run `app`: sevenfold's errors become one line and exit code 2; Ctrl-C exits 130 and SIGTERM 143."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        app()
    except SevenfoldError as exc:
        # Escaped: messages hold user text and brackets ("sevenfold[bench]") that are not rich markup.
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)

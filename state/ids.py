"""Run ids: sortable by when the run started, unique enough for one machine, and safe as a folder and branch name."""

from __future__ import annotations

import re
import secrets
import time

from sevenfold.errors import SevenfoldError

_SAFE_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class UnsafeRunIdError(SevenfoldError):
    """A run id given by the user cannot name a folder under the run root and a branch `sevenfold/<run-id>/...`."""


def new_run_id() -> str:
    """A sortable, unique run id: date, time and a random suffix."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def checked_run_id(run_id: str) -> str:
    """`run_id` if it is a safe name: 1-64 letters, digits, '.', '_' and '-', starting with a letter or digit.

    So it stays one folder under the run root (no '/', not '.' or '..') and fits in a branch name
    `sevenfold/<run-id>/...` (git refuses '..' anywhere and a part ending in '.lock'). Raises `UnsafeRunIdError`,
    one line naming the rule, otherwise.
    """
    if not _SAFE_RUN_ID.fullmatch(run_id) or ".." in run_id or run_id.endswith(".lock"):
        raise UnsafeRunIdError(
            f"run id {run_id!r} is not a safe name: use letters, digits, '.', '_' and '-' (at most 64), "
            "starting with a letter or digit, without '..' and not ending in '.lock'"
        )
    return run_id

"""Which sandbox backends a test may use here: shared by the sandbox, attack and test-runner suites."""

from __future__ import annotations

import os

import pytest

from sevenfold.tools import sandbox as sandbox_module

BACKENDS = ["bwrap", "landlock"]


def require(backend: str) -> None:
    """Skip a backend this machine lacks; in CI bubblewrap must work (a skipped attack suite proves nothing)."""
    if backend == "bwrap" and (why := sandbox_module.bwrap_works()) is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the bwrap sandbox tests: {why}")
        pytest.skip(why)
    if backend == "landlock" and sandbox_module.landlock_abi() < 1:
        pytest.skip("this kernel has no Landlock")

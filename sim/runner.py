"""Running a simulator: in the background of this process (tests, demo, notebooks), or waiting for one in its own."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from sevenfold.sim.clock import PACING_FLOOR_S
from sevenfold.sim.server import SimConfig, Simulator, serve


class BackgroundSimulator:
    """A simulator on its own event loop in a daemon thread.

    Use as a context manager; `base_url` is ready on entry::

        with BackgroundSimulator(SimConfig(time_scale=50)) as sim:
            ChatOpenAI(base_url=sim.base_url, api_key="EMPTY", model=sim.model)
    """

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SimConfig()
        self.host = host
        self.port = port
        self.simulator = Simulator(self.config)
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sevenfold-sim", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def model(self) -> str:
        return self.config.model

    def start(self) -> BackgroundSimulator:
        """Start serving; returns when the port is bound."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(serve(self.simulator, self.host, self.port), self._loop)
        self._runner, self.base_url = future.result(timeout=30)
        return self

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
            self._runner = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> BackgroundSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def serve_forever(config: SimConfig, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM (the `sevenfold sim` command)."""
    simulator = Simulator(config)
    runner, base_url = await serve(simulator, host, port)
    p = config.profile
    announce(
        f"sevenfold sim: serving {config.model} at {base_url} "
        f"(profile {p.name}, max_num_seqs {simulator.max_num_seqs}, max_model_len {simulator.max_model_len}, "
        f"time scale {config.time_scale:g}, policy {config.policy if isinstance(config.policy, str) else type(config.policy).__name__})"
    )
    announce("this is a simulator of a vLLM server: its replies come from a scripted policy, not from a model")
    interval_s = p.token_interval_s / config.time_scale
    if 0 < interval_s < PACING_FLOOR_S:
        announce(
            f"note: at time scale {config.time_scale:g} a lone sequence's tokens are {interval_s * 1000:.2f} ms apart, "
            f"below the {PACING_FLOOR_S * 1000:g} ms this simulator paces honestly: agents work as usual, but "
            f"streamed timings are not the model's and `sevenfold bench` refuses (it takes --time-scale "
            f"{p.token_interval_s / PACING_FLOOR_S:.1f} or less)"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(port: int, process: subprocess.Popen[Any], timeout_s: float = 30.0) -> str:
    """Wait until a `sevenfold sim` started as `process` answers `/health` on 127.0.0.1:`port`; its base URL.

    `RuntimeError` if the process exits first or nothing answers within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return f"http://127.0.0.1:{port}/v1"
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"sevenfold sim exited with code {process.returncode} before serving") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"sevenfold sim did not answer on port {port} within {timeout_s:.0f} s") from None
            time.sleep(0.1)

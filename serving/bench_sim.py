"""Knowing when `sevenfold bench` measures `sevenfold sim`, and when the simulator cannot be measured honestly.

The simulator answers `GET /version` as vLLM does (`{"version": ...}`) plus a
`sevenfold_sim` object: its profile, its time scale, the shortest modelled
interval between two tokens, and its pacing floor. From those the bench reports
figures in modelled time and labels them "simulated: PROFILE at scale K".

It also refuses a run the simulator cannot pace: at time scale K a token the
profile models T seconds after the last one leaves T/K seconds later on the
wall clock, and below the pacing floor (`sevenfold.sim.clock.PACING_FLOOR_S`,
measured by `bench/sim_pacing.py`) tokens leave in bursts, so ITL would measure
the event loop, not the model. vLLM itself has no such limit and no such field,
so against it nothing here applies.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from sevenfold.errors import ServerError


@dataclass(frozen=True)
class SimulatorInfo:
    """What `sevenfold sim` says it is (`GET /version`, key `sevenfold_sim`): its figures are modelled time."""

    profile: str
    time_scale: float
    """Modelled seconds per wall-clock second."""
    token_interval_s: float
    """Modelled time between two tokens of a sequence decoding alone: the shortest the profile has."""
    pacing_floor_s: float
    """The shortest wall-clock interval between tokens the simulator streams honestly."""

    @property
    def label(self) -> str:
        """The words shown with every figure from the simulator: 'simulated: PROFILE at scale K'."""
        return f"simulated: {self.profile} at scale {self.time_scale:g}"

    @property
    def max_time_scale(self) -> float:
        """The largest time scale at which a lone sequence's tokens are still paced honestly."""
        return self.token_interval_s / self.pacing_floor_s if self.pacing_floor_s > 0 else float("inf")

    @property
    def paces_tokens(self) -> bool:
        """Whether streamed tokens arrive at modelled intervals (so ITL means something) at this scale."""
        return self.token_interval_s / self.time_scale >= self.pacing_floor_s

    @classmethod
    def from_version(cls, text: str) -> SimulatorInfo | None:
        """The `sevenfold_sim` object of a `/version` answer; None for vLLM's (`{"version": ...}`) or anything else."""
        try:
            body = json.loads(text)
        except ValueError:
            return None
        info = body.get("sevenfold_sim") if isinstance(body, dict) else None
        if not isinstance(info, dict):
            return None
        try:
            return cls(
                profile=str(info["profile"]),
                time_scale=float(info["time_scale"]),
                token_interval_s=float(info["token_interval_s"]),
                pacing_floor_s=float(info["pacing_floor_s"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def check_pacing(base_url: str, simulated: SimulatorInfo) -> None:
    """Raise `ServerError` if the simulator cannot stream tokens at their modelled intervals at its time scale."""
    if simulated.paces_tokens:
        return
    floor_ms = simulated.pacing_floor_s * 1000
    if simulated.token_interval_s <= 0:
        raise ServerError(
            f"the simulator at {base_url} runs profile {simulated.profile}, which models no time between tokens: "
            f"there is nothing to benchmark; run it with a timed profile (h100-fp8, rtx4090-awq, or a .toml)"
        )
    raise ServerError(
        f"the simulator at {base_url} ({simulated.label}) would stream a token every "
        f"{simulated.token_interval_s / simulated.time_scale * 1000:.2f} ms of wall time, below the {floor_ms:g} ms "
        f"it paces honestly (so ITL would measure the event loop, not the model); "
        f"restart it with --time-scale {math.floor(simulated.max_time_scale * 10) / 10:g} or less"
    )

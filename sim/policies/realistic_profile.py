"""The numbers behind the `realistic` policy: how long Qwen3-Coder agents run, and what each turn holds.

Defaults are the published figures gathered in DESIGN section 11 (public
trajectories of Qwen3-Coder-480B under mini-swe-agent and Terminus, and a
NeMo-Gym report on Qwen3-Coder-30B-A3B); where a figure was not published (a
median where only a p90 is known, the mix of tool kinds, the summary length)
the default is an estimate and its field says so. They are estimates of a
shape, not truths. Pass your own with a TOML or YAML file::

    seed = 3
    subtasks = 7
    turns = {median = 35, p90 = 60, low = 4, high = 75}       # Qwen3-Coder-480B-like
    malformed_rate = 0.03
    [output_chars.test]
    median = 1500
    p90 = 6000
    low = 20
    high = 48000

Every distribution is a `Spread`: a lognormal given by its median and p90,
clipped to [low, high] (the heavy tail the trajectories show, with the maxima
they reached).
"""

from __future__ import annotations

import math
import random
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from sevenfold.errors import SettingsError
from sevenfold.sim.policies.base import MALFORMED_SHAPES

TOOL_KINDS = ("edit", "shell", "search", "view", "test")
"""Kinds of worker turn: an edit of the subtask's file; a shell command; grep/find/ls; a file view; a test run."""

FIXTURE_CHARS = 50_000
"""Size of the text file each simulated worker makes first, which its sized commands print from."""

_Z90 = 1.2815515655446004  # the standard normal's 90th percentile


@dataclass(frozen=True)
class Spread:
    """A heavy-tailed quantity: lognormal with this median and 90th percentile, clipped to [low, high]."""

    median: float
    p90: float
    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.median <= self.p90 or not self.low <= self.median <= self.high:
            raise SettingsError(f"a spread needs 0 < median <= p90 and low <= median <= high; got {self}")

    @property
    def sigma(self) -> float:
        return math.log(self.p90 / self.median) / _Z90

    def draw(self, rng: random.Random) -> int:
        """One value, rounded to a whole number."""
        value = self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return round(min(self.high, max(self.low, value)))


def _default_output_chars() -> dict[str, Spread]:
    # p90s are DESIGN section 11's (tests ~6k, views ~3.7k, grep/find/ls ~1.7k); medians are estimates chosen so that
    # the median over all tool outputs is about the published 250 characters; maxima "above 40k".
    return {
        "shell": Spread(median=120, p90=1_000, low=20, high=48_000),
        "search": Spread(median=300, p90=1_700, low=20, high=48_000),
        "view": Spread(median=900, p90=3_700, low=100, high=42_000),
        "test": Spread(median=1_500, p90=6_000, low=20, high=48_000),
    }


@dataclass(frozen=True)
class RealisticProfile:
    """What a `realistic` run looks like. Field defaults: DESIGN section 11, or an estimate where marked."""

    seed: int = 0
    """Same seed and same requests, same replies."""
    subtasks: int = 7
    """Subtasks in the planner's plan: one per worker slot by default."""
    turns: Spread = field(default_factory=lambda: Spread(median=60, p90=100, low=4, high=150))
    """Model turns per worker, the final answer included. Qwen3-Coder-30B-A3B averages 88 on SWE-Gym with many runs
    at the step limit; 480B has a median of 35 (p90 55-65). Median 60, p90 100 is a 30B-like estimate."""
    completion_tokens: Spread = field(default_factory=lambda: Spread(median=90, p90=400, low=8, high=2_000))
    """Tokens the model writes per turn: median about 90, p90 180-800, occasionally 1-2k (a file in one go)."""
    tool_kinds: dict[str, float] = field(
        default_factory=lambda: {"edit": 0.25, "shell": 0.2, "search": 0.2, "view": 0.2, "test": 0.15}
    )
    """Relative weight of each kind of middle turn (an estimate: the sources give sizes per kind, not shares)."""
    output_chars: dict[str, Spread] = field(default_factory=_default_output_chars)
    """Characters of tool output per kind (edits return a one-line confirmation and are not drawn)."""
    malformed_rate: float = 0.03
    """Share of tool-call turns whose call is written broken: about 3% (reports range from 0 to 20-45%)."""
    malformed_burst_turns: float = 3.0
    """Mean length of a run of broken turns ("once a session goes wrong it tends to stay wrong"; an estimate)."""
    malformed_shapes: dict[str, float] = field(
        default_factory=lambda: {
            "missing_open_tag": 0.4,
            "parameter_run_on": 0.3,
            "json_inside": 0.15,
            "unclosed_function": 0.15,
        }
    )
    """How broken calls are broken, by weight (names in `sim/policies/base.py`; the first two are DESIGN's shapes)."""
    summary_tokens: Spread = field(default_factory=lambda: Spread(median=800, p90=1_200, low=200, high=2_000))
    """Length of a compaction summary (an estimate)."""
    planner_reasoning_tokens: Spread = field(default_factory=lambda: Spread(median=600, p90=1_500, low=50, high=4_000))
    """Thinking before a plan, when the request has thinking on (an estimate)."""
    review_tokens: Spread = field(default_factory=lambda: Spread(median=120, p90=300, low=20, high=800))
    """Length of the reviewer's note (an estimate)."""
    run_tests_before_answer: bool = True
    """The turn before the final answer runs the project's tests (real output, size not drawn)."""

    def __post_init__(self) -> None:
        problems = []
        if self.subtasks < 1:
            problems.append("subtasks must be at least 1")
        if self.turns.low < 4:
            problems.append("turns.low must be at least 4 (set up, write the file, test, answer)")
        if not 0.0 <= self.malformed_rate < 1.0 or self.malformed_burst_turns < 1.0:
            problems.append("malformed_rate must be in [0, 1) and malformed_burst_turns at least 1")
        if set(self.tool_kinds) - set(TOOL_KINDS) or not any(w > 0 for w in self.tool_kinds.values()):
            problems.append(f"tool_kinds must weigh some of {', '.join(TOOL_KINDS)}")
        missing = {k for k, w in self.tool_kinds.items() if w > 0 and k != "edit"} - set(self.output_chars)
        if missing:
            problems.append(f"output_chars has no spread for {', '.join(sorted(missing))}")
        if any(s.high > FIXTURE_CHARS - 2_000 for s in self.output_chars.values()):
            problems.append(f"output_chars highs must stay below {FIXTURE_CHARS - 2_000} (the fixture's size)")
        if set(self.malformed_shapes) - set(MALFORMED_SHAPES):
            problems.append(f"malformed_shapes must be among {', '.join(MALFORMED_SHAPES)}")
        if problems:
            raise SettingsError("realistic profile: " + "; ".join(problems))

    @property
    def malformed_entry(self) -> float:
        """Chance that a good turn is followed by a broken one, so that the long-run share is `malformed_rate`."""
        stay = 1.0 - 1.0 / self.malformed_burst_turns
        return self.malformed_rate * (1.0 - stay) / (1.0 - self.malformed_rate)

    @classmethod
    def from_file(cls, path: Path) -> RealisticProfile:
        """Defaults overridden by a TOML (.toml) or YAML (.yaml/.yml) file; `SettingsError` naming what is wrong."""
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise SettingsError(f"cannot read realistic profile {path}: {exc}".splitlines()[0]) from None
        if not isinstance(data, dict):
            raise SettingsError(f"realistic profile {path}: expected a table of settings")
        try:
            return cls.from_dict(data)
        except (SettingsError, TypeError, ValueError) as exc:
            raise SettingsError(f"realistic profile {path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RealisticProfile:
        """Defaults with the given settings on top; a spread may be given in part (`{median = 40}`)."""
        base = cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown settings {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        changes: dict[str, Any] = {}
        for key, value in data.items():
            current = getattr(base, key)
            if isinstance(current, Spread):
                changes[key] = _spread(current, value, key)
            elif key == "output_chars":
                spreads = dict(current)
                for kind, given in _table(value, key).items():
                    default = spreads.get(kind, Spread(median=250, p90=2_300, low=20, high=48_000))
                    spreads[kind] = _spread(default, given, f"output_chars.{kind}")
                changes[key] = spreads
            elif isinstance(current, dict):
                changes[key] = {str(k): float(v) for k, v in _table(value, key).items()}
            else:
                changes[key] = type(current)(value)
        return replace(base, **changes)


def _table(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingsError(f"{key} must be a table")
    return value


def _spread(default: Spread, value: object, key: str) -> Spread:
    given = _table(value, key)
    unknown = set(given) - {"median", "p90", "low", "high"}
    if unknown:
        raise SettingsError(f"{key}: unknown keys {', '.join(sorted(unknown))} (median, p90, low, high)")
    return replace(default, **{k: float(v) for k, v in given.items()})

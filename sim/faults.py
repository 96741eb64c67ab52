"""Seeded fault injection: the ways a vLLM server lets its clients down.

`--fault KIND:RATE[:ARG]`, any number of times:

- `http5xx:RATE[:STATUS]`  answer with an OpenAI-style error (500 unless STATUS given)
- `stall:RATE:SECONDS`     send no bytes for SECONDS (wall-clock), then carry on
- `drop:RATE`              close the connection mid-response
- `leak:RATE`              leave tool-call text in `content`, finish_reason "stop"
                           (vLLM started with the wrong --tool-call-parser, e.g. hermes)
- `malformed:RATE`         the model writes broken tool-call XML
- `length:RATE`            cut the output short, finish_reason "length"

Draws are a function of the seed, the request's content (without the tool-call
ids the server invented) and how many times that content has been seen, so a
run is repeatable whatever the timing, and a retry gets a fresh draw.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sevenfold.errors import SettingsError
from sevenfold.sim.policies.base import request_digest

KINDS = ("http5xx", "stall", "drop", "leak", "malformed", "length")


@dataclass(frozen=True)
class FaultSpec:
    """One fault kind, the fraction of requests it hits, and its argument."""

    kind: str
    rate: float
    arg: float | None = None

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse `KIND:RATE[:ARG]`; `SettingsError` with the accepted forms if malformed."""
        parts = text.split(":")
        usage = f"bad --fault {text!r}: expected KIND:RATE[:ARG] with KIND one of {', '.join(KINDS)} and RATE in 0..1"
        if len(parts) not in (2, 3) or parts[0] not in KINDS:
            raise SettingsError(usage)
        try:
            rate = float(parts[1])
            arg = float(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise SettingsError(usage) from None
        if not 0.0 <= rate <= 1.0:
            raise SettingsError(usage)
        if parts[0] == "stall" and (arg is None or arg <= 0):
            raise SettingsError(f"bad --fault {text!r}: stall needs SECONDS > 0, e.g. stall:0.05:30")
        return cls(parts[0], rate, arg)


@dataclass(frozen=True)
class FaultDraw:
    """The faults one request gets."""

    http_status: int | None = None
    stall_s: float | None = None
    drop: bool = False
    leak: bool = False
    malformed: bool = False
    truncate: bool = False
    variant: float = 0.0
    """A uniform draw in [0, 1) for choosing how a fault shows (where to cut, what to break)."""

    @property
    def names(self) -> list[str]:
        out = []
        if self.http_status:
            out.append(f"http{self.http_status}")
        for name in ("stall_s", "drop", "leak", "malformed", "truncate"):
            if getattr(self, name):
                out.append(name.removesuffix("_s"))
        return out


class FaultInjector:
    """Decides, repeatably, which faults each request gets."""

    def __init__(self, specs: list[FaultSpec], seed: int) -> None:
        self.specs = specs
        self.seed = seed
        self._seen: Counter[str] = Counter()

    def draw(self, body: dict[str, Any]) -> FaultDraw:
        """The faults for this request (the n-th occurrence of its content)."""
        if not self.specs:
            return FaultDraw()
        digest = request_digest(body)
        occurrence = self._seen[digest]
        self._seen[digest] += 1
        rng = random.Random(f"{self.seed}:{digest}:{occurrence}")
        fields: dict[str, object] = {}
        for spec in self.specs:
            if rng.random() >= spec.rate:
                continue
            if spec.kind == "http5xx":
                fields["http_status"] = int(spec.arg or 500)
            elif spec.kind == "stall":
                fields["stall_s"] = spec.arg
            elif spec.kind == "length":
                fields["truncate"] = True
            else:
                fields[spec.kind] = True
        return FaultDraw(variant=rng.random(), **fields)  # type: ignore[arg-type]

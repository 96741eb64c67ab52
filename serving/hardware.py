"""The GPUs sevenfold knows, and finding the ones in this machine.

Memory is what `nvidia-smi --query-gpu=memory.total` reports for each card (MiB),
which is what vLLM's `--gpu-memory-utilization` is a fraction of.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

from sevenfold.errors import SevenfoldError

MIB = 1024**2
GIB = 1024**3

Architecture = Literal["ampere", "ada", "hopper"]


@dataclass(frozen=True)
class Gpu:
    """One kind of card."""

    name: str
    memory_bytes: int
    architecture: Architecture
    aliases: tuple[str, ...] = ()

    @property
    def fp8(self) -> bool:
        """Native FP8 (weights and KV cache): Ada and Hopper; Ampere emulates it slowly or not at all."""
        return self.architecture in ("ada", "hopper")

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


KNOWN: tuple[Gpu, ...] = (
    Gpu("a100-40", 40_960 * MIB, "ampere", ("a100-40gb", "a100-sxm4-40gb", "a100-pcie-40gb")),
    Gpu("a100-80", 81_920 * MIB, "ampere", ("a100", "a100-80gb", "a100-sxm4-80gb", "a100-pcie-80gb", "a100-80gb-pcie")),
    Gpu("a10-24", 23_028 * MIB, "ampere", ("a10",)),
    Gpu("rtx3090-24", 24_576 * MIB, "ampere", ("3090", "rtx3090", "rtx-3090", "geforce-rtx-3090")),
    Gpu("rtx4090-24", 24_564 * MIB, "ada", ("4090", "rtx4090", "rtx-4090", "geforce-rtx-4090")),
    Gpu("l4-24", 23_034 * MIB, "ada", ("l4",)),
    Gpu("l40s-48", 46_068 * MIB, "ada", ("l40s",)),
    Gpu("h100-80", 81_559 * MIB, "hopper", ("h100", "h100-80gb", "h100-sxm", "h100-pcie", "h100-80gb-hbm3")),
    Gpu("h100-94", 95_830 * MIB, "hopper", ("h100-nvl", "h100-94gb")),
    Gpu("h200-141", 143_771 * MIB, "hopper", ("h200", "h200-141gb", "h200-nvl")),
)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-")


def find_gpu(name: str) -> Gpu:
    """A known GPU by name or alias (case and punctuation do not matter); `SevenfoldError` listing the known ones."""
    key = _key(name)
    for gpu in KNOWN:
        if key == gpu.name or key in gpu.aliases:
            return gpu
    known = ", ".join(g.name for g in KNOWN)
    raise SevenfoldError(f"unknown GPU {name!r} (known: {known})")


def detect_gpus(timeout_s: float = 10.0) -> tuple[Gpu, int]:
    """The GPU model in this machine and how many there are, from nvidia-smi.

    A card that is not in the table keeps the memory nvidia-smi reports and is
    treated as Ampere (no FP8) unless its name says H100/H200/L40/4090.
    """
    if shutil.which("nvidia-smi") is None:
        raise SevenfoldError("nvidia-smi not found, so the GPUs cannot be detected: pass --gpu NAME [--count N]")
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        raise SevenfoldError(f"nvidia-smi failed ({exc}): pass --gpu NAME [--count N]") from None
    rows = [line.rsplit(",", 1) for line in out.strip().splitlines() if "," in line]
    if not rows:
        raise SevenfoldError("nvidia-smi lists no GPUs: pass --gpu NAME [--count N]")
    name = rows[0][0].strip()
    try:
        memory = int(float(rows[0][1]))
    except ValueError:
        raise SevenfoldError(f"nvidia-smi reports no memory size for {name!r}: pass --gpu NAME [--count N]") from None
    if any(row[0].strip() != name for row in rows):
        raise SevenfoldError("this machine mixes GPU models; pass --gpu NAME --count N for the ones vLLM should use")
    try:
        known = find_gpu(name)
        return Gpu(known.name, memory * MIB, known.architecture), len(rows)
    except SevenfoldError:
        lowered = name.lower()
        arch: Architecture = "hopper" if re.search(r"h100|h200|gh200", lowered) else "ampere"
        if re.search(r"l40|4090|l4\b|ada", lowered):
            arch = "ada"
        return Gpu(_key(name), memory * MIB, arch), len(rows)

"""Showing a `sevenfold bench` report: a table for the terminal and a PNG.

Figures from `sevenfold sim` are labelled "simulated: PROFILE at scale K" in
the table's title and the plot's, never shown under the model's name alone.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from sevenfold.errors import SevenfoldError
from sevenfold.serving.bench_metrics import BenchReport, LatencyStats

PLOT_NEEDS = "--plot needs matplotlib: pip install 'sevenfold[bench]'"
BURSTY = 0.2
"""Above this share of burst gaps a level's ITL gets a note. Healthy runs measured 0-17% (at 4 in flight, brief
stalls of a busy machine followed by catch-up); median ITL was off by 40% and more only above half."""


def _ms(stats: LatencyStats) -> str:
    return f"{stats.mean:.1f} / {stats.median:.1f} / {stats.p99:.1f}"


def bench_table(report: BenchReport) -> Table:
    """One row per concurrency level: throughputs, latencies (mean / median / p99 ms), scaling, failures."""
    completed = sum(lv.completed for lv in report.levels)
    measured = sum(lv.total_input_tokens for lv in report.levels) / completed if completed else 0
    caption = "latencies in ms as mean / median / p99; scaling = out tok/s ÷ (c × out tok/s at c=1)"
    if report.simulated:
        k = report.simulated.time_scale
        basis = "as on the wall clock (scale 1)" if k == 1 else f"wall-clock times × {k:g}, rates ÷ {k:g}"
        caption = f"modelled time: {basis}; {caption}"
    table = Table(
        title=f"{report.source} at {report.base_url}: {report.num_prompts} requests a level, "
        f"{report.output_len} tokens out, {report.input_len} in ({measured:.0f} by the server's count)",
        caption=caption,
    )
    for name in ("c", "req/s", "out tok/s", "total tok/s"):
        table.add_column(name, justify="right")
    for name in ("TTFT", "TPOT", "ITL", "E2E"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("scaling", justify="right")
    table.add_column("failed", justify="right")
    for lv in report.levels:
        table.add_row(
            str(lv.concurrency),
            f"{lv.request_throughput:.2f}",
            f"{lv.output_throughput:.1f}",
            f"{lv.total_token_throughput:.1f}",
            _ms(lv.ttft_ms),
            _ms(lv.tpot_ms),
            _ms(lv.itl_ms),
            _ms(lv.e2el_ms),
            "n/a" if lv.scaling_efficiency is None else f"{lv.scaling_efficiency:.2f}",
            str(lv.failed) if not lv.failed else f"[red]{lv.failed}[/red]",
        )
    return table


def bench_notes(report: BenchReport) -> list[str]:
    """What a reader of the table should also know: unforced lengths, failures, levels that never filled."""
    notes = []
    if report.simulated:
        note = f"{report.simulated.label}: the simulator's model of that hardware, not a measurement of it"
        if report.simulated.time_scale != 1:
            note += (
                f"; TTFT and E2E also hold each request's own wall-clock cost (HTTP, JSON: about 1-2 ms), "
                f"multiplied by {report.simulated.time_scale:g}"
            )
        notes.append(note)
    if report.backend == "completions":
        notes.append("driven through /v1/completions (raw prompts, no chat template), as `vllm bench serve` does")
    if not report.lengths_forced:
        notes.append("the server did not take ignore_eos/min_tokens: output lengths are the model's own")
    if report.levels and all(lv.scaling_efficiency is None for lv in report.levels):
        notes.append("scaling is n/a: add 1 to --concurrency")
    for lv in report.levels:
        if lv.burst_share is not None and lv.burst_share > BURSTY:
            notes.append(
                f"c={lv.concurrency}: {lv.burst_share:.0%} of token gaps were shorter than the simulator can make them "
                "(tokens arrived in bursts: the machine was busy), so this level's ITL is not the model's"
            )
        if lv.failed:
            notes.append(f"c={lv.concurrency}: {lv.failed} of {lv.failed + lv.completed} failed ({lv.first_error})")
        if lv.concurrency > report.num_prompts:
            notes.append(f"c={lv.concurrency}: only {report.num_prompts} requests, so never {lv.concurrency} in flight")
    return notes


def require_matplotlib() -> None:
    """Raise `SevenfoldError` with the install command if matplotlib is missing (check before a long run)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SevenfoldError(PLOT_NEEDS) from None


def plot_title(report: BenchReport) -> str:
    """The plot's title; against the simulator its first line is "simulated: PROFILE at scale K, in modelled time"."""
    title = f"{report.model}, ~{report.input_len} in / {report.output_len} out"
    if report.simulated:  # first, so the figure cannot be read as a measurement of the model on hardware
        title = f"{report.simulated.label}, in modelled time\n{title}"
    return title


def plot_report(report: BenchReport, path: Path) -> None:
    """A PNG of output throughput (with linear scaling from c=1 for reference) and median ITL by concurrency.

    Against the simulator the title (also the PNG's `Title` text) says so: see `plot_title`.
    """
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [lv.concurrency for lv in report.levels]
    figure, left = plt.subplots(figsize=(7.5, 4.2))
    left.plot(xs, [lv.output_throughput for lv in report.levels], "o-", color="tab:blue", label="output tok/s")
    base = next((lv for lv in report.levels if lv.concurrency == 1), None)
    if base is not None:
        left.plot(xs, [x * base.output_throughput for x in xs], ":", color="tab:blue", label="linear from c=1")
    left.set_xscale("log", base=2)
    left.set_xticks(xs, [str(x) for x in xs])
    left.set_xlabel("requests in flight")
    modelled = " (modelled)" if report.simulated else ""
    left.set_ylabel(f"output tokens/s{modelled}", color="tab:blue")
    left.set_ylim(bottom=0, top=1.15 * max(lv.output_throughput for lv in report.levels) or None)
    right = left.twinx()
    right.plot(xs, [lv.itl_ms.median for lv in report.levels], "s--", color="tab:red", label="median ITL")
    right.set_ylabel(f"median ITL (ms){modelled}", color="tab:red")
    right.set_ylim(bottom=0, top=1.15 * max(lv.itl_ms.median for lv in report.levels) or None)
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    left.legend(handles=handles, loc="lower right", fontsize="small")  # under the curves, which rise to the right
    title = plot_title(report)
    left.set_title(title, fontsize="medium")
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata={"Title": title.replace("\n", "; ")})  # PNG text, for whoever finds the file
    plt.close(figure)

"""Reports of a load test: JSON summary, markdown summary, PNG plots (beside Locust's HTML)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmops.loadtest import stats
from llmops.loadtest.slo import SloResult

TABLE_METRICS = ("ttft", "tpot", "itl", "e2el")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.2f}"
    return str(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, document: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(_json_safe(document), indent=2, sort_keys=True) + "\n")
    return path


def summary_lines(summary: Mapping[str, Any], slo_results: Sequence[SloResult] = ()) -> list[str]:
    """Plain-text summary for the terminal (and the markdown report)."""
    lines = [
        f"requests {summary['requests']} (completed {summary['completed']}, failed {summary['failed']}"
        f"{', ' + str(summary['errors_by_status']) if summary['errors_by_status'] else ''}) in {summary['duration_s']:.1f}s",
        f"throughput {summary['request_throughput']:.2f} req/s, {summary['output_throughput']:.1f} output tok/s, "
        f"{summary['total_token_throughput']:.1f} total tok/s",
        f"{'metric (ms)':<12}{'mean':>10}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}",
    ]
    for m in TABLE_METRICS:
        row = [summary.get(f"{s}_{m}_ms") for s in ("mean", "p50", "p90", "p95", "p99")]
        lines.append(f"{m:<12}" + "".join(f"{_num(v):>10}" for v in row))
    for r in slo_results:
        lines.append(f"SLO {'ok    ' if r.ok else 'BREACH'} {r.message}")
    return lines


def write_markdown(path: Path, title: str, summary: Mapping[str, Any], slo_results: Sequence[SloResult],
                   context: Mapping[str, Any], plots: Sequence[Path], sweep_rows: Sequence[Mapping[str, Any]] = ()) -> Path:  # fmt: skip
    md = [f"# {title}", ""]
    md += [f"- **{k}**: {v}" for k, v in context.items()]
    md += ["", "## Summary", "", "| metric (ms) | mean | p50 | p90 | p95 | p99 |", "| --- | --- | --- | --- | --- | --- |"]
    for m in TABLE_METRICS:
        md.append(f"| {m} | " + " | ".join(_num(summary.get(f"{s}_{m}_ms")) for s in ("mean", "p50", "p90", "p95", "p99")) + " |")
    md += [
        "",
        f"- requests: {summary['requests']}, completed {summary['completed']}, failed {summary['failed']} "
        f"(error ratio {summary['error_ratio']:.4f}; by status {summary['errors_by_status'] or '{}'})",
        f"- request_throughput: {summary['request_throughput']:.3f} req/s; output_throughput: "
        f"{summary['output_throughput']:.1f} tok/s; total_token_throughput: {summary['total_token_throughput']:.1f} tok/s",
        f"- tokens: {summary['total_input_tokens']} in, {summary['total_output_tokens']} out",
    ]
    if slo_results:
        md += ["", "## SLOs", "", "| SLO | result |", "| --- | --- |"]
        md += [f"| {r.slo.label} | {'ok' if r.ok else '**BREACH**'}: {r.message} |" for r in slo_results]
    if sweep_rows:
        md += ["", "## Sweep", "", "| offered req/s | achieved req/s | mean concurrency | p50 TTFT ms | p95 TTFT ms | SLOs |",
               "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for row in sweep_rows:
            md.append(
                f"| {_num(row['offered_rate'])} | {_num(row['request_throughput'])} | {_num(row['mean_concurrency'])} "
                f"| {_num(row['p50_ttft_ms'])} | {_num(row['p95_ttft_ms'])} | {'ok' if row['slo_ok'] else 'breach'} |"
            )
    if plots:
        md += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    path.write_text("\n".join(md) + "\n")
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency_over_time(path: Path, samples: Sequence[stats.Sample], width_s: float = 2.0) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ok = [s for s in samples if s.ok]
    buckets = stats.windows(ok, width_s)
    xs = [t for t, _ in buckets]
    for ax, metric in zip(axes, ("ttft", "e2el"), strict=True):
        for q, style in ((50, "-"), (95, "--"), (99, ":")):
            ys = []
            for _, group in buckets:
                vals = [v for s in group if (v := getattr(s, f"{metric}_ms")) is not None]
                ys.append(stats.percentile(vals, q) if vals else math.nan)
            ax.plot(xs, ys, style, label=f"p{q}")
        ax.set_ylabel(f"{metric} (ms)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
    ax2 = axes[1].twinx()
    ax2.bar([x - width_s for x in xs], [len(g) / width_s for _, g in buckets], width=width_s * 0.9, alpha=0.15, color="gray", align="edge")
    ax2.set_ylabel("completed req/s")
    axes[1].set_xlabel("seconds since start")
    fig.suptitle("Latency percentiles over time")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_ttft_histogram(path: Path, samples: Sequence[stats.Sample]) -> Path:
    plt = _pyplot()
    values = [s.ttft_ms for s in samples if s.ok and s.ttft_ms is not None]
    fig, ax = plt.subplots(figsize=(8, 4))
    if values:
        ax.hist(values, bins=min(60, max(10, len(values) // 10)))
        for q, color in ((50, "green"), (95, "orange"), (99, "red")):
            v = stats.percentile(values, q)
            ax.axvline(v, color=color, linestyle="--", label=f"p{q} {v:.1f} ms")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no streamed request: no TTFT", ha="center", transform=ax.transAxes)
    ax.set_xlabel("time to first token (ms)")
    ax.set_ylabel("requests")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_sweep(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    conc = [r["mean_concurrency"] for r in rows]
    ax.plot(conc, [r["request_throughput"] for r in rows], "o-", label="req/s")
    for r in rows:
        if not r["slo_ok"]:
            ax.plot(r["mean_concurrency"], r["request_throughput"], "rx", markersize=10)
    ax.set_xlabel("mean concurrency (requests in flight)")
    ax.set_ylabel("achieved req/s")
    ax2 = ax.twinx()
    ax2.plot(conc, [r["output_throughput"] for r in rows], "s--", color="tab:orange", label="output tok/s")
    ax2.set_ylabel("output tokens/s")
    ax.grid(True, alpha=0.3)
    fig.suptitle("Throughput against concurrency (sweep; x = SLO breach)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

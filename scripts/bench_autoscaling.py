#!/usr/bin/env python3
"""Benchmark: autoscaling reaction to a load spike, the chart's tuning vs KEDA's defaults.

One release serves four models side by side, all with the same queue
trigger, bounds and simulators, all driven by the same Locust spike (each
model gets an equal share of the clients):

- ``chart-warm`` / ``keda-warm``: minReplicas 1; the chart's default tuning
  vs KEDA's defaults (pollingInterval 30 s, cooldownPeriod 300 s, the HPA's
  default behavior);
- ``chart-zero`` / ``keda-zero``: the same at minReplicas 0 (activation on
  the gateway's in-flight requests), where pollingInterval gates the 0 -> 1 step.

Prometheus scrapes at the observability chart's default interval. Each
repetition runs on a fresh stack (cluster included): after a helm
uninstall/install with the same names, the new HPA came up at the previous
run's replica count ("ScaleDownStabilized" with every metric at 0). Prints the figures (seconds from the
spike start to the scale-out decision and to every new replica Ready) and
writes ``timeline-<rep>.jsonl``, ``figures.json`` and ``autoscaling.png``
into the report dir.

    PYTHONPATH=src .venv/bin/python scripts/bench_autoscaling.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from llmops import cluster, paths
from llmops.autoscale import scenarios
from llmops.autoscale.stack import CLUSTER_PORT_BASE, PROMETHEUS_PORT, AutoscaleStack, ModelSpec, Recorder, StackConfig

NAMESPACE = "autoscale-bench"
VARIANTS = ("chart-warm", "keda-warm", "chart-zero", "keda-zero")
SETTLE_TIMEOUT_S = 240.0


def overrides(max_replicas: int) -> dict[str, dict[str, Any]]:
    common = {"maxReplicas": max_replicas}  # the simulators keep kv_cache_usage_perc at 0: the queue decides
    zero = {"initialCooldownPeriod": 0}  # KEDA's own default; lets a fresh install idle at zero at once
    return {
        "chart-warm": {**common, "minReplicas": 1},
        "keda-warm": scenarios.keda_defaults(**common, minReplicas=1),
        "chart-zero": scenarios.scale_to_zero(NAMESPACE, "chart-zero", **common, **zero),
        "keda-zero": scenarios.keda_defaults(**scenarios.scale_to_zero(NAMESPACE, "keda-zero", **common, **zero)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--reps", type=int, default=2, help="repetitions (each on a fresh stack and cluster)")
    ap.add_argument("--rate", type=float, default=24.0,
                    help="open-loop arrivals per second during the spike (shared by the 4 models)")
    ap.add_argument("--length", type=float, default=80.0, help="spike length in seconds")
    ap.add_argument("--max-replicas", type=int, default=4)
    ap.add_argument("--max-num-seqs", type=int, default=2, help="concurrency of each simulator replica")
    ap.add_argument("--report-dir", type=Path, default=paths.REPO_ROOT / "reports" / "bench-autoscaling")
    args = ap.parse_args(argv)
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C: the stack stops everything it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    models = [ModelSpec(v, f"{v}-llm", max_num_seqs=args.max_num_seqs) for v in VARIANTS]
    values = scenarios.umbrella_values(NAMESPACE, models, overrides(args.max_replicas),
                                       prometheus_url=f"http://127.0.0.1:{PROMETHEUS_PORT}", itl="15ms")  # fmt: skip
    out = args.report_dir
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    panels: list[tuple[str, list[Any], float, float]] = []
    started = time.monotonic()
    for rep in range(args.reps):
        # A fresh cluster per repetition: a reinstalled release (same HPA names) was seen to
        # inherit the previous run's replicas (ScaleDownStabilized with every metric at 0).
        cfg = StackConfig(models, values, out / "work", namespace=NAMESPACE)
        with AutoscaleStack(cfg, progress=lambda m: print(f"  [stack] {m}", flush=True)) as stack:
            print(f"rep {rep}: stack up ({stack.timings}); scrape: {stack.monitor_source}", flush=True)
            stack.wait_for("every variant settled at its start", SETTLE_TIMEOUT_S, lambda: settled(stack), interval=1)
            recorders = {v: Recorder(stack, v).start() for v in VARIANTS}
            targets = {stack.gateways[v].model: [stack.gateways[v].url] for v in VARIANTS}
            # Open loop, so one model's latency (e.g. requests held at zero replicas) does not
            # change the others' load; nothing before the spike, which would wake the zero variants.
            load = {"shape": "spike", "unit": "rate", "base": 0, "peak": args.rate, "at": "1s",
                    "length": f"{args.length}s", "duration": f"{1 + args.length + 5}s"}  # fmt: skip
            run = scenarios.LoadRun(targets, load, out / f"locust-{rep}").start()
            try:
                outcome = run.join(args.length + 200)
            finally:
                samples = {v: r.stop() for v, r in recorders.items()}
            for v in VARIANTS:
                at = scenarios.first_request_offset(recorders[v], run)  # the spike's first request
                end = at + args.length
                fig = scenarios.analyze(samples[v], at, end, f"{v} rep {rep}")
                results[v].append(fig.as_dict())
                scenarios.write_samples(out / f"timeline-{v}-{rep}.jsonl", samples[v])
                if rep == 0:
                    panels.append((v, samples[v], at, end))
                print(f"rep {rep} {v:11s} decision {_fmt(fig.decision_s)} first-ready {_fmt(fig.first_ready_s)} "
                      f"all-ready {_fmt(fig.ready_s)} (max desired {fig.max_desired}, reversals {fig.reversals_during_spike}, "
                      f"peak queue {fig.peak_queue})", flush=True)  # fmt: skip
            print(f"rep {rep} load: {outcome.summary['completed']} ok, {outcome.summary['failed']} failed", flush=True)
        report(out, args, results, panels)
        # the next cluster reuses the API server port: let the old one close it
        deadline = time.monotonic() + 60
        while cluster._port_busy(CLUSTER_PORT_BASE) and time.monotonic() < deadline:
            time.sleep(1)
    print(f"wall time {time.monotonic() - started:.0f}s; report {out}")
    return 0


def report(out: Path, args: argparse.Namespace, results: dict[str, list[dict[str, Any]]],
           panels: list[tuple[str, list[Any], float, float]]) -> None:
    """figures.json, autoscaling.png and the table, from every repetition so far (a crash keeps what was done)."""
    reps = len(results[VARIANTS[0]])
    summary: dict[str, Any] = {v: _summary(results[v]) for v in VARIANTS}
    for start in ("warm", "zero"):
        chart, keda = summary[f"chart-{start}"], summary[f"keda-{start}"]
        for key in ("decision_s", "ready_s"):
            if chart[key] and keda[key]:
                summary[f"speedup-{start}-{key}"] = round(keda[key] / chart[key], 2)
    (out / "figures.json").write_text(json.dumps({"runs": results, "summary": summary, "args": vars(args) | {
        "report_dir": str(out)}}, indent=2, default=str))  # fmt: skip
    scenarios.plot(out / "autoscaling.png", panels, "spike -> queue, desired and ready replicas (rep 0)")
    print(f"\nmedian seconds from spike start (n={reps}):")
    print(f"{'variant':12s} {'decision':>9s} {'first ready':>12s} {'all ready':>10s} {'reversals':>10s}")
    for v in VARIANTS:
        row = summary[v]
        print(f"{v:12s} {_fmt(row['decision_s']):>9s} {_fmt(row['first_ready_s']):>12s} {_fmt(row['ready_s']):>10s} "
              f"{row['reversals']:>10d}")  # fmt: skip
    for k, val in summary.items():
        if k.startswith("speedup"):
            print(f"{k}: {val}x (KEDA defaults / chart)")


def settled(stack: AutoscaleStack, checks: int = 3) -> bool:
    """Warm variants at 1 replica with their queue scraped and no fallback; zero variants at 0; CHECKS times in a row.

    Right after an install the engines are not scraped yet: the warm variants' queries come back empty,
    which the chart counts as errors (ignoreNullValues false), so KEDA may hold the fallback replicas for a while.
    """
    for _ in range(checks):
        for v in VARIANTS:
            if v.endswith("zero"):
                if stack.deployment(v) != (0, 0):
                    return False
            elif stack.deployment(v) != (1, 1) or stack.queue(v) is None or _fallback(stack, v):
                return False
        time.sleep(2)
    return True


def _fallback(stack: AutoscaleStack, model: str) -> bool:
    conds = stack.scaled_object(model).get("status", {}).get("conditions", [])
    return any(c["type"] == "Fallback" and c.get("status") == "True" for c in conds)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(vals), 1) if vals else None

    return {"decision_s": med("decision_s"), "first_ready_s": med("first_ready_s"), "ready_s": med("ready_s"),
            "reversals": sum(r["reversals_during_spike"] for r in runs),
            "missing": sum(r["decision_s"] is None for r in runs)}  # fmt: skip


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


if __name__ == "__main__":
    sys.exit(main())

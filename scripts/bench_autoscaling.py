#!/usr/bin/env python3
"""Benchmark: autoscaling reaction to a load spike, the chart's tuning vs KEDA's defaults.

One release serves seven models side by side, all with the same queue
trigger, bounds (1 or 0 .. 8 replicas) and simulators, all driven by the
same open-loop Locust spike (each model gets the same arrival rate, which
needs about 7 replicas: more than the HPA's default +4 pods per step):

- ``chart-*``: the chart's default tuning (2 s polling, one-step scale-up,
  the observability chart's 5 s scrape);
- ``demand-warm``: the chart's tuning plus its opt-in ``demand`` trigger
  (arrivals per second at the model's gateway, target: what one replica
  serves), which asks for the needed replicas before a queue builds up;
- ``keda-*``: KEDA's defaults (pollingInterval 30 s, cooldownPeriod 300 s,
  the HPA's default behavior), scraped like the chart (5 s): isolates the
  ScaledObject tuning;
- ``stock-*``: KEDA's defaults scraped at prometheus-operator's default
  30 s (a monitor without an interval): what wiring KEDA to a stock
  kube-prometheus-stack gives;

each at minReplicas 1 (``-warm``) and at minReplicas 0 (``-zero``,
activation on the gateway's in-flight requests, where pollingInterval
gates the 0 -> 1 step). All HPAs come from one install, so they share the
controller-manager's 15 s sync phase within a repetition; the spike starts
a random 0-30 s after the stack settles, so the repetitions sample the
polling and sync phases instead of hitting the same one each time.

The engines are the chart's simulator pods on the local cluster's real
node (one fake GPU each, so the node gets variants x max-replicas of them);
the warm variants take their load through the chart's vLLM Router, the
``-zero`` variants and ``demand-warm`` through a holding gateway each (the
router cannot hold requests at zero replicas and exports no per-model
arrival counter; the gateway is a stand-in for the component the product
lacks, issue #14). The stack refuses to start when the release at every
maximum outgrows the real node: each engine pod requests 6 GiB of
ephemeral storage for its emptyDirs (the chart's floor with values/local's
1 GiB model cache), so the default 7 x 8 pods need about 340 GiB of the
node's disk; lower ``--max-replicas`` on a smaller disk.

Each repetition runs on a fresh stack (cluster included): after a helm
uninstall/install with the same names, the new HPA came up at the previous
run's replica count ("ScaleDownStabilized" with every metric at 0). Prints
the figures (seconds from the spike's first request to the scale-out
decision, the first new replica Ready, and enough replicas Ready for the
offered load) and writes ``timeline-<variant>-<rep>.jsonl``,
``figures.json`` and ``autoscaling.png`` into the report dir.

    PYTHONPATH=src .venv/bin/python scripts/bench_autoscaling.py --reps 6
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from llmops import cluster, paths
from llmops.autoscale import scenarios
from llmops.cluster import node
from llmops.autoscale.stack import (CLUSTER_PORT_BASE, PROMETHEUS_PORT, AutoscaleStack, ModelSpec, Recorder, StackConfig,
                                    demand_query)

NAMESPACE = "autoscale-bench"
# the chart's tuning plus its opt-in demand trigger (arrivals at the model's gateway), warm only
VARIANTS = ("chart-warm", "demand-warm", "keda-warm", "stock-warm", "chart-zero", "keda-zero", "stock-zero")
# Behind a holding gateway: the variants that start at zero, and demand-warm (its trigger reads the gateway's arrivals).
GATEWAY_VARIANTS = tuple(v for v in VARIANTS if v.endswith("-zero") or v.startswith("demand"))
STOCK_SCRAPE = "30s"  # prometheus-operator's default scrape interval
TTFT_S, ITL_S, MEAN_OUTPUT_TOKENS = 0.05, 0.03, 64  # simulator latencies; the spike profile's mean output
SERVICE_S = TTFT_S + MEAN_OUTPUT_TOKENS * ITL_S  # mean seconds one request holds a sequence slot
SETTLE_TIMEOUT_S = 240.0
# Up to 7 x 8 engine pods share the 2-core real node, whose allocatable CPU is the machine's: requests
# small enough that every variant can reach its maximum (an idle simulator uses next to no CPU).
ENGINE_RESOURCES = {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"memory": "256Mi"}}
PLOT_TITLE = "spike -> queue, desired and ready replicas (rep 0)"


def overrides(max_replicas: int, max_num_seqs: int) -> dict[str, dict[str, Any]]:
    common = {"maxReplicas": max_replicas}  # the simulators keep kv_cache_usage_perc at 0: the queue decides
    zero = {"initialCooldownPeriod": 0}  # KEDA's own default; lets a fresh install idle at zero at once
    out: dict[str, dict[str, Any]] = {}
    for v in VARIANTS:
        tuning, start = v.split("-")
        o = scenarios.scale_to_zero_behind_gateway(NAMESPACE, v, **common, **zero) if start == "zero" else {**common, "minReplicas": 1}
        if tuning == "demand":
            target = round(max_num_seqs / SERVICE_S, 2)  # arrivals/s one replica keeps up with
            o["triggers"] = {"demand": {"enabled": True, "query": demand_query(NAMESPACE, v), "targetPerReplica": target}}
        out[v] = o if tuning in ("chart", "demand") else scenarios.keda_defaults(**o)
    return out


def replicas_needed(rate: float, max_num_seqs: int) -> int:
    """Replicas whose concurrency covers RATE arrivals/s at the simulators' mean service time (Little's law)."""
    return math.ceil(rate * SERVICE_S / max_num_seqs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--reps", type=int, default=2, help="repetitions (each on a fresh stack and cluster)")
    ap.add_argument("--rate", type=float, default=3.5, help="open-loop arrivals per second and model during the spike")
    ap.add_argument("--length", type=float, default=80.0, help="spike length in seconds")
    ap.add_argument("--max-replicas", type=int, default=8)
    ap.add_argument("--max-num-seqs", type=int, default=1, help="concurrency of each simulator replica")
    ap.add_argument("--phase-jitter", type=float, default=30.0,
                    help="the spike starts a random 0..N s after the stack settles (samples the 30 s polling phase)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the phase offsets")
    ap.add_argument("--plot-only", action="store_true",
                    help="redraw autoscaling.png from the report dir's rep-0 timelines and figures.json; run nothing")
    ap.add_argument("--report-dir", type=Path, default=paths.REPO_ROOT / "reports" / "bench-autoscaling")
    args = ap.parse_args(argv)
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C: the stack stops everything it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    models = [ModelSpec(v, f"{v}-llm", max_num_seqs=args.max_num_seqs) for v in VARIANTS]
    values = scenarios.umbrella_values(NAMESPACE, models, overrides(args.max_replicas, args.max_num_seqs),
                                       prometheus_url=f"http://127.0.0.1:{PROMETHEUS_PORT}",
                                       ttft=f"{TTFT_S * 1000:.0f}ms", itl=f"{ITL_S * 1000:.0f}ms",
                                       engine_resources=ENGINE_RESOURCES)  # fmt: skip
    need = min(replicas_needed(args.rate, args.max_num_seqs), args.max_replicas)
    # one fake GPU on the real node per engine pod, every variant at its maximum
    gpus = len(VARIANTS) * args.max_replicas
    if not 1 <= gpus <= node.MAX_FAKE_GPUS:
        ap.error(f"{len(VARIANTS)} variants x --max-replicas {args.max_replicas} = {gpus} engine pods; the real node "
                 f"holds at most {node.MAX_FAKE_GPUS} fake GPUs")
    out = args.report_dir
    if args.plot_only:
        return replot(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    panels: list[tuple[str, list[Any], float, float]] = []
    started = time.monotonic()
    rng = random.Random(args.seed)
    for rep in range(args.reps):
        # A fresh cluster per repetition: a reinstalled release (same HPA names) was seen to
        # inherit the previous run's replicas (ScaleDownStabilized with every metric at 0).
        cfg = StackConfig(models, values, out / "work", namespace=NAMESPACE, gateway_models=GATEWAY_VARIANTS,
                          node_gpus=gpus, node_gpu_product=scenarios.GPU_PRODUCT,
                          scrape_intervals={v: STOCK_SCRAPE for v in VARIANTS if v.startswith("stock")})  # fmt: skip
        with AutoscaleStack(cfg, progress=lambda m: print(f"  [stack] {m}", flush=True)) as stack:
            print(f"rep {rep}: stack up ({stack.timings}); scrape: {stack.monitor_source}", flush=True)
            stack.wait_for("every variant settled at its start", SETTLE_TIMEOUT_S, lambda: settled(stack), interval=1)
            # KEDA's polling loops and the HPA syncs tick from the install on: without a random
            # offset every repetition would hit them at about the same phase and the medians
            # would show one phase instead of the expected wait.
            offset = rng.uniform(0, args.phase_jitter)
            print(f"rep {rep}: spike in {offset:.1f}s (random phase offset)", flush=True)
            time.sleep(offset)
            recorders = {v: Recorder(stack, v).start() for v in VARIANTS}
            targets = {stack.targets[v].served_name: [stack.url(v)] for v in VARIANTS}
            # Open loop, so one model's latency (e.g. requests held at zero replicas) does not
            # change the others' load; nothing before the spike, which would wake the zero variants.
            load = {"shape": "spike", "unit": "rate", "base": 0, "peak": args.rate * len(VARIANTS), "at": "1s",
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
                fig.extra["capacity_s"] = next((x.t - at for x in samples[v] if x.t >= at and x.ready >= need), None)
                fig.extra["need"] = need
                results[v].append(fig.as_dict())
                scenarios.write_samples(out / f"timeline-{v}-{rep}.jsonl", samples[v])
                if rep == 0:
                    panels.append((v, samples[v], at, end))
                print(f"rep {rep} {v:11s} decision {_fmt(fig.decision_s)} first-ready {_fmt(fig.first_ready_s)} "
                      f"all-ready {_fmt(fig.ready_s)} capacity({need}) {_fmt(fig.extra['capacity_s'])} (max desired {fig.max_desired}, reversals {fig.reversals_during_spike}, "
                      f"peak queue {fig.peak_queue})", flush=True)  # fmt: skip
            print(f"rep {rep} load: {outcome.summary['completed']} ok, {outcome.summary['failed']} failed", flush=True)
        report(out, args, results, panels)
        # the next cluster reuses the API server port: let the old one close it
        deadline = time.monotonic() + 60
        while cluster._port_busy(CLUSTER_PORT_BASE) and time.monotonic() < deadline:
            time.sleep(1)
    print(f"wall time {time.monotonic() - started:.0f}s; report {out}")
    return 0


METRICS = ("decision_s", "first_ready_s", "capacity_s", "ready_s")


def report(out: Path, args: argparse.Namespace, results: dict[str, list[dict[str, Any]]],
           panels: list[tuple[str, list[Any], float, float]]) -> None:
    """figures.json, autoscaling.png and the table, from every repetition so far (a crash keeps what was done)."""
    reps = len(results[VARIANTS[0]])
    summary: dict[str, Any] = {v: _summary(results[v]) for v in VARIANTS}
    speedups: dict[str, float] = {}
    for start in ("warm", "zero"):
        for base in ("keda", "stock"):
            ref = summary[f"{base}-{start}"]
            for tuned in ("chart", "demand"):
                mine = summary.get(f"{tuned}-{start}")
                for key in METRICS:
                    if mine and mine[key] and ref[key]:
                        speedups[f"{base}/{tuned} {start} {key}"] = round(ref[key] / mine[key], 2)
    (out / "figures.json").write_text(json.dumps({"runs": results, "summary": summary, "speedups": speedups,
                                                  "args": vars(args) | {"report_dir": str(out)}},
                                                 indent=2, default=str))  # fmt: skip
    scenarios.plot(out / "autoscaling.png", panels, PLOT_TITLE)
    print(f"\nmedian seconds from the spike's first request (n={reps}):")
    print(f"{'variant':12s} {'decision':>9s} {'first ready':>12s} {'capacity':>9s} {'all ready':>10s} "
          f"{'max desired':>12s} {'reversals':>10s}")  # fmt: skip
    for v in VARIANTS:
        row = summary[v]
        print(f"{v:12s} {_fmt(row['decision_s']):>9s} {_fmt(row['first_ready_s']):>12s} {_fmt(row['capacity_s']):>9s} "
              f"{_fmt(row['ready_s']):>10s} {row['max_desired']:>12s} {row['reversals']:>10d}")  # fmt: skip
    for k, val in speedups.items():
        print(f"speedup {k}: {val}x")


def replot(out: Path) -> int:
    runs = json.loads((out / "figures.json").read_text())["runs"]
    panels = [(v, scenarios.read_samples(out / f"timeline-{v}-0.jsonl"), runs[v][0]["spike_at"], runs[v][0]["spike_end"])
              for v in runs]  # fmt: skip
    print(scenarios.plot(out / "autoscaling.png", panels, PLOT_TITLE))
    return 0


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
    def value(run: dict[str, Any], key: str) -> float | None:
        return run[key] if key in run else run["extra"].get(key)

    def med(key: str) -> float | None:
        vals = [x for x in (value(r, key) for r in runs) if x is not None]
        return round(statistics.median(vals), 1) if vals else None

    return {**{key: med(key) for key in METRICS},
            "max_desired": "/".join(str(r["max_desired"]) for r in runs),
            "reversals": sum(r["reversals_during_spike"] for r in runs),
            "missing": sum(r["decision_s"] is None for r in runs)}  # fmt: skip


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


if __name__ == "__main__":
    sys.exit(main())

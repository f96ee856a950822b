"""Autoscaling runs shared by the e2e tests and ``scripts/bench_autoscaling.py``.

A run drives load through a model's front door (the chart's router, or the
holding gateway of a model that scales from zero) with the Locust harness
(``llmops.loadtest``) while a :class:`~llmops.autoscale.stack.Recorder`
samples queue length, desired and ready replicas; :func:`analyze` turns
the samples into the figures the issue asks for (spike start -> scale-out
decision -> new replicas Ready, oscillation) and :func:`plot` draws them.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import cluster, paths
from llmops.autoscale.stack import AutoscaleStack, ModelSpec, Recorder, Sample, activation_query, read_samples, write_samples
from llmops.loadtest import harness

# The product the engines select (vllm.models[].gpu.product); the stack's real node carries its label.
GPU_PRODUCT = cluster.H100_PRODUCT
# Each engine pod is one small Go process: the "micro" preset leaves the 2-core real node room for
# the router and every engine of the run at its maximum (the default "small" reserves 250m each).
ENGINE_PRESET = "micro"

# What KEDA does when a ScaledObject sets nothing: 30 s polling, 300 s cooldown,
# and no `advanced.horizontalPodAutoscalerConfig.behavior`, i.e. the HPA's own
# defaults (scale up: max of +100 % / +4 pods per 15 s, no stabilization;
# scale down: 300 s stabilization, -100 % per 15 s).
KEDA_DEFAULTS: dict[str, Any] = {
    "pollingInterval": 30,
    "cooldownPeriod": 300,
    "behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15},
                                 {"type": "Pods", "value": 4, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                      "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
    },
}  # fmt: skip


def umbrella_values(namespace: str, models: Sequence[ModelSpec], autoscaling: Mapping[str, Mapping[str, Any]], *,
                    prometheus_url: str, ttft: str = "50ms", itl: str = "10ms",
                    engine_resources: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Umbrella values: one GPU simulator engine per model, KEDA autoscaling with per-model overrides, monitoring on.

    Prometheus scrapes at the observability chart's default interval (see ``StackConfig.scrape_intervals``).
    Engines get the ENGINE_PRESET resources, or ENGINE_RESOURCES (the chart's ``resources``, which win).
    """
    vllm_models = [
        {"name": m.name, "servedModelName": m.served_name, "maxNumSeqs": m.max_num_seqs, "replicas": None,
         "source": "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main", "gpu": {"count": 1, "product": GPU_PRODUCT},
         "resourcesPreset": ENGINE_PRESET, **({"resources": dict(engine_resources)} if engine_resources else {})}
        for m in models
    ]  # fmt: skip
    local = local_settings()
    return {
        "global": {"monitoring": {"enabled": True}},
        # No DCGM exporter in this stack: alerts on its series could never fire (the chart refuses them).
        "observability": {"rules": {"gpuXid": {"enabled": False}, "gpuEcc": {"enabled": False}}},
        "vllm": {"models": vllm_models, "modelCache": local["modelCache"],
                 "simulator": {"image": local["simulator"], "timeToFirstToken": ttft, "interTokenLatency": itl},
                 "tests": {"image": local["tests"]}},
        "router": {"enabled": True},
        "autoscaling": {
            "enabled": True,
            "prometheus": {"serverAddress": prometheus_url},
            "models": {name: dict(overrides) for name, overrides in autoscaling.items()},
        },
    }


def local_settings() -> dict[str, dict[str, Any]]:
    """What values/local.yaml sets for a machine like this one and the run takes as is.

    The simulator and test images (built here, imported into the real node)
    and the model cache (a small emptyDir: each engine pod requests its
    emptyDirs as ephemeral storage on the node's disk).
    """
    local = yaml.safe_load((paths.VALUES_DIR / "local.yaml").read_text())["vllm"]
    return {"simulator": dict(local["simulator"]["image"]), "tests": dict(local["tests"]["image"]),
            "modelCache": dict(local["modelCache"])}  # fmt: skip


def scale_to_zero(hold_timeout: str = "5m", **extra: Any) -> dict[str, Any]:
    """Overrides for a model that idles at zero behind the chart's holding path (the KEDA HTTP add-on, the default holder)."""
    return {"minReplicas": 0, "scaleToZero": {"holder": "httpAddOn", "holdTimeout": hold_timeout}, **extra}


def scale_to_zero_behind_gateway(namespace: str, model: str, **extra: Any) -> dict[str, Any]:
    """Overrides for a model that idles at zero and wakes on a home-made holding gateway's traffic (StackConfig.gateway_models; benchmarks only)."""
    return {
        "minReplicas": 0,
        "scaleToZero": {"holder": "none", "activationQuery": activation_query(namespace, model), "activationThreshold": 0},
        **extra,
    }


def keda_defaults(**extra: Any) -> dict[str, Any]:
    out = copy.deepcopy(KEDA_DEFAULTS)
    out.update(extra)
    return out


@dataclass
class LoadRun:
    """Locust in a background thread (the harness runs it as a subprocess)."""

    targets: Mapping[str, list[str]]
    load: Mapping[str, Any]
    report_dir: Path
    profile: str = "spike"
    outcome: harness.Outcome | None = None
    error: BaseException | None = None
    started: float = 0.0
    _thread: threading.Thread | None = None

    def start(self) -> LoadRun:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="locust-run", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.outcome = harness.execute(targets=self.targets, profile=self.profile, slo_ref=None,
                                           load_overrides=self.load, report_dir=self.report_dir, quiet=True,
                                           plots=False, title="autoscaling load")  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - re-raised by join()
            self.error = exc

    def join(self, timeout: float) -> harness.Outcome:
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the Locust run did not finish within {timeout:.0f}s")
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


@dataclass
class Figures:
    """What one spike did to one model, in seconds from the spike start."""

    label: str
    spike_at: float
    spike_end: float
    start_replicas: int
    max_desired: int
    decision_s: float | None  # first sample whose desired replicas exceed the start
    ready_s: float | None  # first sample whose ready replicas reach the spike's max desired
    first_ready_s: float | None  # first sample with more ready replicas than at the start
    scale_in_s: float | None  # from the end of the load to desired back at the start value
    reversals_during_spike: int  # desired went down then up again (or up then down) while load lasted
    peak_queue: float | None
    queue_at_end_of_spike: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def analyze(samples: Sequence[Sample], spike_at: float, spike_end: float, label: str = "") -> Figures:
    before = [s for s in samples if s.t <= spike_at] or samples[:1]
    start = before[-1].desired if before else 0
    start_ready = before[-1].ready if before else 0
    during = [s for s in samples if spike_at <= s.t <= spike_end]
    after = [s for s in samples if s.t > spike_end]
    max_desired = max((s.desired for s in samples if s.t >= spike_at), default=start)
    decision = next((s.t - spike_at for s in samples if s.t >= spike_at and s.desired > start), None)
    ready = next((s.t - spike_at for s in samples if s.t >= spike_at and s.ready >= max_desired > start), None)
    first_ready = next((s.t - spike_at for s in samples if s.t >= spike_at and s.ready > start_ready), None)
    scale_in = next((s.t - spike_end for s in after if s.desired <= start), None) if max_desired > start else None
    queues = [s.queue for s in during if s.queue is not None and not math.isnan(s.queue)]
    tail = [s.queue for s in during if s.t >= spike_end - 5 and s.queue is not None]
    return Figures(label, spike_at, spike_end, start, max_desired, decision, ready, first_ready, scale_in,
                   reversals([s.desired for s in during]), max(queues) if queues else None,
                   tail[-1] if tail else None)  # fmt: skip


def reversals(series: Sequence[int]) -> int:
    """How often a series changes direction (1 2 2 3 -> 0; 1 3 2 3 -> 2)."""
    direction = 0
    count = 0
    for a, b in zip(series, series[1:]):
        step = (b > a) - (b < a)
        if step and direction and step != direction:
            count += 1
        if step:
            direction = step
    return count


def plot(path: Path, runs: Sequence[tuple[str, Sequence[Sample], float, float]], title: str) -> Path:
    """Queue length, desired and ready replicas over time; one panel per run (label, samples, spike_at, spike_end)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(13, 3.6 * len(runs)), squeeze=False, sharex=True)
    for ax, (label, samples, at, end) in zip(axes[:, 0], runs):
        t = [s.t - at for s in samples]
        ax.plot(t, [s.queue if s.queue is not None else float("nan") for s in samples], color="tab:red",
                label="queue (sum vllm:num_requests_waiting, as Prometheus has it)")  # fmt: skip
        ax.plot(t, [s.gateway_in_flight for s in samples], color="tab:orange", linestyle=":",
                label="in flight at the gateway (held while no replica serves)")  # fmt: skip
        ax.set_ylabel("requests")
        ax2 = ax.twinx()
        ax2.step(t, [s.desired for s in samples], where="post", color="tab:blue", label="desired replicas")
        ax2.step(t, [s.ready for s in samples], where="post", color="tab:green", linestyle="--", label="ready replicas")
        ax2.set_ylabel("replicas")
        ax2.set_ylim(bottom=0, top=max([s.desired for s in samples] + [1]) + 1)
        ax.axvspan(0, end - at, color="0.9", label="spike")
        ax.set_title(label)
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        # beside the panel, so it never hides a line
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", bbox_to_anchor=(1.06, 1.0), fontsize=8)
    axes[-1, 0].set_xlabel("seconds from spike start")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.99))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_spike(stack: AutoscaleStack, model: str, out_dir: Path, *, base: int, peak: int, at: float, length: float,
              tail: float, settle_timeout: float = 0.0, label: str = "") -> tuple[Figures, list[Sample], harness.Outcome]:  # fmt: skip
    """Locust spike through MODEL's front door; record until TAIL seconds after it (and until desired is back, within settle_timeout)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    duration = at + length + tail
    served = stack.targets[model].served_name
    load = {"shape": "spike", "base": base, "peak": peak, "at": f"{at}s", "length": f"{length}s", "duration": f"{duration}s"}
    rec = Recorder(stack, model).start()
    try:
        run = LoadRun({served: [stack.url(model)]}, load, out_dir / "locust").start()
        outcome = run.join(duration + 120)
        # Locust needs a few seconds to boot: the spike starts `at` after its first request.
        first = first_request_offset(rec, run)
        spike_at, spike_end = first + at, first + at + length
        if settle_timeout:
            start_desired = next((s.desired for s in reversed(rec.samples) if s.t <= spike_at), 1)
            deadline = time.monotonic() + settle_timeout
            while time.monotonic() < deadline:
                if rec.samples and rec.samples[-1].desired <= start_desired:
                    break
                time.sleep(1)
    finally:
        samples = rec.stop()
    write_samples(out_dir / "timeline.jsonl", samples)
    return analyze(samples, spike_at, spike_end, label or model), samples, outcome


def first_request_offset(rec: Recorder, run: LoadRun) -> float:
    """Recorder time of the first request Locust sent (from its raw samples), else the thread start."""
    import json

    samples_file = run.report_dir / "run-samples.jsonl"
    starts: list[float] = []
    if samples_file.exists():
        for line in samples_file.read_text().splitlines():
            if line.strip():
                starts.append(float(json.loads(line)["start"]))
    if starts:
        # Sample.start is wall-clock; convert through the recorder's monotonic origin.
        wall_origin = time.time() - (time.monotonic() - rec.t0)
        return min(starts) - wall_origin
    return run.started - rec.t0

"""The load-test step of ``make demo``: endpoints for the models of the values file, default profile, report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from llmops import endpoints
from llmops.errors import LlmopsError
from llmops.loadtest import harness, targets

DEFAULT_RELEASE = "llmops"
DEFAULT_NAMESPACE = "llmops"


def models_in_values(values_file: str | Path) -> list[dict[str, Any]]:
    """``vllm.models`` of an environment values file (each entry has a DNS-label ``name``)."""
    path = Path(values_file)
    if not path.is_file():
        raise LlmopsError(f"values file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    models = (data.get("vllm") or {}).get("models") or []
    named = [m for m in models if isinstance(m, dict) and m.get("name")]
    if not named:
        raise LlmopsError(f"{path}: no `vllm.models[].name` entries: nothing to start an endpoint for")
    return [m for m in named if m.get("enabled", True)]


def simulator_configs(models: list[dict[str, Any]]) -> list[tuple[endpoints.SimulatorConfig, int]]:
    """One simulator config per model (served under the model's ``name``, as the Service label says) and its replicas."""
    out = []
    for model in models:
        served = str(model["name"])
        engine = model.get("engine") or {}
        seqs = int(engine.get("maxNumSeqs") or model.get("maxNumSeqs") or 16)
        replicas = int(model.get("replicas", 1) or 1)
        out.append((endpoints.SimulatorConfig(model=served, max_num_seqs=seqs), replicas))
    return out


def demo_step(args: argparse.Namespace) -> str:
    release = getattr(args, "release", None) or DEFAULT_RELEASE
    namespace = getattr(args, "namespace", None) or DEFAULT_NAMESPACE
    models = models_in_values(args.values)
    with endpoints.EndpointManager() as manager:
        for config, replicas in simulator_configs(models):
            manager.reconcile(
                f"{namespace}/{release}-{config.model}",
                config,
                replicas,
                labels={"release": release, "namespace": namespace},
            )
        started = manager.targets()
        print(f"  endpoints: {', '.join(f'{m} -> {u}' for m, u in started.items())}", flush=True)
        try:
            with targets.from_release(release, namespace) as resolved:
                how = f"release {release}/{namespace} via the API server + local endpoint registry"
                outcome = _run(args, resolved, how)
        except LlmopsError as exc:
            # Without a cluster (e.g. `llmops loadtest` on its own) the simulators are still real endpoints.
            print(f"  note: cannot resolve release {release} through the API server ({exc}); "
                  "load goes straight to the simulators", flush=True)  # fmt: skip
            outcome = _run(args, started, "simulators started for the values file")
    for line in outcome.lines:
        print(f"  {line}", flush=True)
    print(f"  report: {outcome.report_dir / 'summary.md'} (Locust HTML, JSON, PNG plots beside it)", flush=True)
    if not outcome.ok:
        raise harness.SloBreach("SLO breached: " + "; ".join(outcome.breaches()))
    return f"(report {outcome.report_dir})"


def _run(args: argparse.Namespace, resolved: dict[str, list[str]], how: str) -> harness.Outcome:
    return harness.execute(
        targets=resolved,
        profile=getattr(args, "profile", None) or harness.DEFAULT_PROFILE,
        slo_ref=harness.DEFAULT_SLO,
        load_overrides={"duration": args.duration},
        title="make demo: load test",
        context={"values": str(args.values), "resolved": how},
    )

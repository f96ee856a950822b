"""The load-test step of ``make demo``: endpoints for the models of the values file, default profile, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmops.cluster import endpoints
from llmops.validate import render
from llmops.errors import LlmopsError
from llmops.loadtest import harness, targets

DEFAULT_RELEASE = "llmops"
DEFAULT_NAMESPACE = "llmops"
UMBRELLA = "llmops-stack"


def engine_deployments(values_file: str | Path, release: str, namespace: str) -> list[endpoints.EngineDeployment]:
    """The umbrella chart rendered with the values file: its engine Deployments (args, replicas, model label)."""
    path = Path(values_file)
    if not path.is_file():
        raise LlmopsError(f"values file {path} does not exist")
    manifests = render.render(UMBRELLA, [path], helm="helm3", release=release, namespace=namespace)
    found = endpoints.engine_deployments(manifests, namespace)
    if not found:
        raise LlmopsError(f"{path}: the rendered release has no engine Deployment (vllm.models empty?)")
    return found


def demo_step(args: argparse.Namespace) -> str:
    release = getattr(args, "release", None) or DEFAULT_RELEASE
    namespace = getattr(args, "namespace", None) or DEFAULT_NAMESPACE
    from llmops import cluster

    if cluster.has_real_node(getattr(args, "cluster", None) or cluster.DEFAULT_NAME):
        # The release's pods run on the real node: load goes through its Services.
        with targets.from_release(release, namespace) as resolved:
            listing = ", ".join(f"{m} -> {' '.join(u)}" for m, u in resolved.items())
            print(f"  targets: {listing} (engine pods on the real node, through their Service)", flush=True)
            outcome = _run(args, resolved, f"release {release} -n {namespace}: its Services' ClusterIPs (kube-proxy)")
        return _finish(outcome, release, namespace, keep=False)
    deployments = engine_deployments(args.values, release, namespace)
    keep = bool(getattr(args, "keep", False))
    with endpoints.EndpointManager() as manager:
        if keep:
            manager.detach()  # --keep: the endpoints outlive the demo, like the cluster and the release
        for dep in deployments:
            # One simulator per replica, with the args the chart renders for the pod.
            manager.reconcile(
                dep.group,
                dep.config,
                dep.replicas,
                labels={"release": release, "namespace": namespace, "model_name": dep.model, "deployment": dep.name},
            )
        started = manager.targets()
        listing = ", ".join(f"{m} -> {' '.join(u)}" for m, u in started.items())
        print(f"  endpoints: {listing}", flush=True)
        try:
            with targets.from_release(release, namespace) as resolved:
                how = f"release {release} -n {namespace}: Services via the API server, mapped to the host endpoints"
                outcome = _run(args, resolved, how)
        except LlmopsError as exc:
            # Without a cluster (e.g. the load-test step on its own) the simulators are still real endpoints.
            print(f"  note: cannot resolve release {release} through the API server ({exc}); "
                  "load goes straight to the simulators", flush=True)  # fmt: skip
            outcome = _run(args, started, "simulators started for the values file")
    return _finish(outcome, release, namespace, keep=keep)


def _finish(outcome: harness.Outcome, release: str, namespace: str, *, keep: bool) -> str:
    for line in outcome.lines:
        print(f"  {line}", flush=True)
    print(f"  report: {outcome.report_dir / 'summary.md'} (Locust HTML, JSON, PNG plots beside it)", flush=True)
    if keep:
        print(f"  endpoints left running: `llmops loadtest --release {release} -n {namespace}` loads them again; "
              "`llmops endpoints down` stops them", flush=True)  # fmt: skip
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

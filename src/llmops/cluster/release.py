"""Helm release lifecycle on a cluster from ``llmops.cluster``: install, upgrade, test, rollback, uninstall.

Every call runs the pinned Helm 3 or Helm 4 (``helm="helm3"|"helm4"``)
against the cluster's own kubeconfig, never the user's. The serving
namespace is created by us, labelled Pod Security ``enforce: restricted``,
so the real admission of the API server checks every pod the chart makes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import cluster, paths, tools
from llmops.validate import render
from llmops.errors import LlmopsError

DEFAULT_RELEASE = "llmops"
DEFAULT_NAMESPACE = "llmops"
DEFAULT_CHART = paths.CHARTS_DIR / "llmops-stack"
DEFAULT_TIMEOUT = "5m"
PSA_LEVEL = "restricted"
READY_TIMEOUT_S = 300.0


class ReleaseError(LlmopsError):
    """helm failed; the message carries helm's own error text."""

    exit_code = 1


def psa_labels(level: str = PSA_LEVEL) -> dict[str, str]:
    """Pod Security Admission labels: enforce LEVEL, and warn/audit at the same level."""
    labels = {}
    for mode in ("enforce", "warn", "audit"):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return labels


def ensure_namespace(
    namespace: str, *, cluster_name: str = cluster.DEFAULT_NAME, level: str = PSA_LEVEL, real_node: bool = False
) -> None:
    """Create or update NAMESPACE with Pod Security labels; ``real_node`` pins its pods to the real node."""
    meta: dict[str, object] = {"name": namespace, "labels": psa_labels(level)}
    if real_node:
        from llmops.cluster import node

        meta["annotations"] = node.namespace_annotations()
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
    cluster.kubectl(cluster_name, "apply", "-f", "-", input_text=yaml.safe_dump(doc))


def helm(
    *args: str, helm_bin: str = "helm3", cluster_name: str = cluster.DEFAULT_NAME, timeout: float = 600
) -> str:
    """Run pinned Helm against the cluster; raise ReleaseError with helm's stderr on failure."""
    kubeconfig = cluster.kubeconfig_path(cluster_name)
    argv = [str(tools.require(helm_bin)), "--kubeconfig", str(kubeconfig), *args]
    env = tools.tool_env({"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cluster.cluster_dir(cluster_name) / "kube-cache")})
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        # stdout carries what Helm printed before failing, e.g. `helm test --logs` pod output.
        printed = "\n".join(proc.stdout.strip().splitlines()[-40:])
        raise ReleaseError(f"{helm_bin} {' '.join(args[:3])} failed (exit {proc.returncode}):\n{proc.stderr.strip()}"
                           + (f"\n--- output:\n{printed}" if printed else ""))
    return proc.stdout


@dataclass
class Release:
    """Where a release lives and which Helm drives it."""

    name: str = DEFAULT_RELEASE
    namespace: str = DEFAULT_NAMESPACE
    helm_bin: str = "helm3"
    cluster_name: str = cluster.DEFAULT_NAME
    timings: dict[str, float] = field(default_factory=dict)
    # Pin the namespace's pods to the cluster's real node (containers really run).
    real_node: bool = False

    def _helm(self, *args: str, timeout: float = 600) -> str:
        return helm(*args, "--namespace", self.namespace, helm_bin=self.helm_bin,
                    cluster_name=self.cluster_name, timeout=timeout)

    def _wait_flags(self, wait: bool, timeout: str) -> list[str]:
        return (["--wait"] if wait else []) + ["--timeout", timeout]

    def _timed(self, step: str, fn: Any, ready: bool = False) -> str:
        started = time.monotonic()
        out: str = fn()
        if ready:
            self.wait_ready()
        self.timings[step] = time.monotonic() - started
        return out

    def not_ready(self) -> list[str]:
        """The release's Deployments that are not fully rolled out and Available ("name ready/wanted")."""
        out = cluster.kubectl(self.cluster_name, "get", "deployments", "-n", self.namespace, "-o", "json",
                              "-l", f"app.kubernetes.io/instance={self.name}")
        bad = []
        for d in json.loads(out)["items"]:
            st, want = d.get("status", {}), d["spec"].get("replicas", 1)
            if (st.get("observedGeneration", 0) < d["metadata"]["generation"]
                    or st.get("updatedReplicas", 0) != want or st.get("availableReplicas", 0) != want):
                bad.append(f"{d['metadata']['name']} {st.get('availableReplicas', 0)}/{want}")
        return bad

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until every Deployment of the release is Available with all replicas updated.

        Helm 3 `--wait` counts a Deployment ready at replicas - maxUnavailable
        ready pods, i.e. at 0 of 1 with the GPU-safe maxUnavailable 1 strategy.
        """
        deadline = time.monotonic() + timeout_s
        bad = self.not_ready()
        while bad and time.monotonic() < deadline:
            time.sleep(0.25)
            bad = self.not_ready()
        if bad:
            raise ReleaseError(f"release {self.name}: Deployments not Available after {timeout_s:.0f}s: "
                               f"{', '.join(bad)}; see `llmops status -n {self.namespace}`")

    def install(self, chart: str | Path, values: Sequence[str | Path] = (), *, set_values: dict[str, Any] | None = None,
                wait: bool = True, timeout: str = DEFAULT_TIMEOUT, create_namespace: bool = True,
                chart_args: Sequence[str] = ()) -> str:
        """helm install (into a PSA-restricted namespace we create) and wait until ready.

        CHART is a chart folder or an ``oci://`` reference; CHART_ARGS go with
        it (``--version``, ``--verify --keyring FILE``, ``--plain-http``).
        """
        chart_dir = _prepare(chart, self.helm_bin)
        if create_namespace:
            ensure_namespace(self.namespace, cluster_name=self.cluster_name, real_node=self.real_node)
        args = ["install", self.name, str(chart_dir), *chart_args, *_values_args(values, set_values),
                *self._wait_flags(wait, timeout)]
        return self._timed("install", lambda: self._helm(*args), ready=wait)

    def upgrade(self, chart: str | Path, values: Sequence[str | Path] = (), *, set_values: dict[str, Any] | None = None,
                wait: bool = True, timeout: str = DEFAULT_TIMEOUT, chart_args: Sequence[str] = ()) -> str:
        chart_dir = _prepare(chart, self.helm_bin)
        args = ["upgrade", self.name, str(chart_dir), *chart_args, *_values_args(values, set_values),
                *self._wait_flags(wait, timeout)]
        return self._timed("upgrade", lambda: self._helm(*args), ready=wait)

    def rollback(self, revision: int | None = None, *, wait: bool = True, timeout: str = DEFAULT_TIMEOUT) -> str:
        args = ["rollback", self.name] + ([str(revision)] if revision else []) + self._wait_flags(wait, timeout)
        return self._timed("rollback", lambda: self._helm(*args), ready=wait)

    def test(self, timeout: str = DEFAULT_TIMEOUT, *, logs: bool = False) -> str:
        """helm test; with ``logs`` a failure carries the failed test pods' own output.

        Needs pods that run (a real node, or kind): on kwok nodes only it
        fails at once with the fix (``cluster up --real-nodes 1``).

        (``helm test --logs`` cannot be used: a passing test pod is already
        gone, deleted by its ``hook-succeeded`` policy, when Helm asks for its logs.)
        """
        # kwok nodes run no container: a test pod there would wait out TIMEOUT.
        cluster.require_real_pods(self.cluster_name)
        try:
            return self._timed("test", lambda: self._helm("test", self.name, "--timeout", timeout))
        except ReleaseError as exc:
            if not logs:
                raise
            raise ReleaseError(f"{exc}\n--- test pod logs:\n{self._test_pod_logs()}") from exc

    def _test_pod_logs(self) -> str:
        pods = json.loads(cluster.kubectl(self.cluster_name, "get", "pods", "-n", self.namespace, "-o", "json",
                                          "-l", f"app.kubernetes.io/instance={self.name}"))["items"]
        out = []
        for pod in pods:
            if pod["metadata"].get("annotations", {}).get("helm.sh/hook") not in ("test", "test-success"):
                continue
            name = pod["metadata"]["name"]
            try:
                text = cluster.kubectl(self.cluster_name, "logs", "-n", self.namespace, name, "--all-containers")
            except LlmopsError as err:
                text = f"(no logs: {err})"
            out.append(f"{name}:\n{text.strip()}")
        return "\n".join(out) or "(no test pod left)"

    def uninstall(self, *, wait: bool = True, timeout: str = DEFAULT_TIMEOUT) -> str:
        args = ["uninstall", self.name] + (["--wait"] if wait else []) + ["--timeout", timeout]
        return self._timed("uninstall", lambda: self._helm(*args))

    def history(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json.loads(self._helm("history", self.name, "-o", "json"))
        return out

    def status(self) -> dict[str, Any] | None:
        """helm status as JSON, or None when there is no such release."""
        try:
            out: dict[str, Any] = json.loads(self._helm("status", self.name, "-o", "json"))
        except ReleaseError as exc:
            if "not found" in str(exc):
                return None
            raise
        return out


def _prepare(chart: str | Path, helm_bin: str) -> str | Path:
    if str(chart).startswith("oci://"):
        return str(chart)
    chart_dir = render.chart_path(chart)
    if not (chart_dir / "Chart.yaml").exists():
        raise LlmopsError(f"{chart_dir} is not a chart (no Chart.yaml)")
    render.ensure_dependencies(chart_dir, helm_bin)
    return chart_dir


def _values_args(values: Sequence[str | Path], set_values: dict[str, Any] | None) -> list[str]:
    args: list[str] = []
    for v in values:
        args += ["--values", str(v)]
    if set_values:
        # --set-json keeps types (ints, bools, lists) exactly as given.
        for key, value in _flatten(set_values):
            args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            out += _flatten(value, path)
        else:
            out.append((path, value))
    return out


# ---------------------------------------------------------------------------
# What is running, and why something is not
# ---------------------------------------------------------------------------


@dataclass
class PodState:
    name: str
    phase: str
    node: str
    ready: bool
    reason: str = ""


def pod_states(namespace: str, *, cluster_name: str = cluster.DEFAULT_NAME, selector: str | None = None) -> list[PodState]:
    """Pods of NAMESPACE; a Pending pod carries the scheduler's reason (PodScheduled condition or its last event)."""
    args = ["get", "pods", "-n", namespace, "-o", "json"] + (["-l", selector] if selector else [])
    pods = json.loads(cluster.kubectl(cluster_name, *args))["items"]
    events: dict[str, str] = {}
    if any(p.get("status", {}).get("phase") == "Pending" for p in pods):
        ev = json.loads(cluster.kubectl(cluster_name, "get", "events", "-n", namespace,
                                        "--field-selector", "reason=FailedScheduling", "-o", "json"))["items"]
        for e in sorted(ev, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
            events[e["involvedObject"]["name"]] = e.get("message", "")
    states = []
    for pod in pods:
        st = pod.get("status", {})
        conditions = {c["type"]: c for c in st.get("conditions", [])}
        reason = ""
        if st.get("phase") == "Pending":
            sched = conditions.get("PodScheduled", {})
            if sched.get("status") == "False":
                reason = f"{sched.get('reason', 'Unschedulable')}: {sched.get('message', '')}".strip()
            reason = reason or events.get(pod["metadata"]["name"], "")
        states.append(
            PodState(
                name=pod["metadata"]["name"],
                phase=st.get("phase", "?"),
                node=pod.get("spec", {}).get("nodeName", ""),
                ready=conditions.get("Ready", {}).get("status") == "True",
                reason=reason,
            )
        )
    return states


# ---------------------------------------------------------------------------
# `llmops demo` step
# ---------------------------------------------------------------------------


def demo_step(args: argparse.Namespace) -> str:
    """Install (or upgrade) the stack with the demo's values file into the local cluster."""
    name = getattr(args, "cluster", None) or cluster.DEFAULT_NAME
    rel = Release(cluster_name=name, real_node=cluster.has_real_node(name))
    values = [args.values]
    if rel.status() is None:
        rel.install(DEFAULT_CHART, values)
    else:
        rel.upgrade(DEFAULT_CHART, values)
    pods = pod_states(rel.namespace, cluster_name=rel.cluster_name)
    ready = sum(p.ready for p in pods)
    step = "install" if "install" in rel.timings else "upgrade"
    where = "on the real node" if rel.real_node else "on kwok nodes"
    return (f"(release {rel.name} in namespace {rel.namespace} [PSA {PSA_LEVEL}] {where}: {ready}/{len(pods)} pods ready; "
            f"{step} --wait {rel.timings[step]:.1f}s)")

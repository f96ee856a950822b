"""What an upgrade would change, from the real tools, and the upgrades we refuse without ``--force``.

The proposed objects come from Helm itself (``helm upgrade --dry-run=server
-o json``: rendered against the live cluster, lookups and capabilities
included); the diff shown is ``kubectl diff`` of those objects against the
live ones (server-side dry run), plus the objects that would leave the
release (Helm's stored manifest minus the proposed one). Refused unless
forced:

- a Deployment whose ``spec.selector`` changes (immutable: the upgrade would
  fail half-applied, or, if forced by delete and recreate, drop every pod);
- a PersistentVolumeClaim that leaves the release or is no longer mounted
  (a model cache: kept by ``helm.sh/resource-policy: keep`` but orphaned,
  and the engines start with an empty cache and download again);
- a model (``llmops.io/model`` on the engine Deployments) that disappears
  while it has traffic. Traffic = completed requests in the last WINDOW
  (``increase(vllm:e2e_request_latency_seconds_count[WINDOW])``) plus
  requests running or waiting now, summed over the release's engines, read
  from Prometheus (``--prometheus`` / ``LLMOPS_PROMETHEUS_URL``). Without a
  Prometheus to ask, a dropped model counts as having traffic: we cannot
  prove it idle.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import cluster, tools
from llmops.cluster import release
from llmops.errors import LlmopsError

MODEL_LABEL = "llmops.io/model"
DEFAULT_WINDOW = "15m"
TrafficFn = Callable[[str], float | None]


class UpgradeRefused(LlmopsError):
    exit_code = 1


Key = tuple[str, str]  # (kind, name)


@dataclass
class Preview:
    diff: str
    removed: list[Key] = field(default_factory=list)
    added: list[Key] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


def objects(manifest: str) -> dict[Key, dict[str, Any]]:
    out = {}
    for doc in yaml.safe_load_all(manifest):
        if isinstance(doc, dict) and doc.get("kind"):
            out[(str(doc["kind"]), str(doc["metadata"]["name"]))] = doc
    return out


def _models(objs: dict[Key, dict[str, Any]]) -> set[str]:
    return {str(o["metadata"].get("labels", {})[MODEL_LABEL]) for (kind, _), o in objs.items()
            if kind == "Deployment" and MODEL_LABEL in (o["metadata"].get("labels") or {})}


def _mounted_claims(objs: dict[Key, dict[str, Any]]) -> set[str]:
    return {v["persistentVolumeClaim"]["claimName"] for (kind, _), o in objs.items() if kind in ("Deployment", "StatefulSet")
            for v in o["spec"]["template"]["spec"].get("volumes") or [] if "persistentVolumeClaim" in v}


def refusals(old: dict[Key, dict[str, Any]], new: dict[Key, dict[str, Any]], traffic: TrafficFn | None) -> list[str]:
    """Why this upgrade must not run unforced (empty when it may)."""
    out = []
    for key, o in old.items():
        n = new.get(key)
        if key[0] == "Deployment" and n is not None and o["spec"].get("selector") != n["spec"].get("selector"):
            out.append(f"Deployment {key[1]}: spec.selector changes from {o['spec'].get('selector')} to "
                       f"{n['spec'].get('selector')} (immutable; the Deployment would have to be replaced)")
    mounted_before, mounted_after = _mounted_claims(old), _mounted_claims(new)
    for kind, name in old:
        if kind == "PersistentVolumeClaim" and (kind, name) not in new:
            out.append(f"PersistentVolumeClaim {name} leaves the release (a model cache: kept on the cluster "
                       "but orphaned; the engines would download the model again)")
    for claim in sorted(mounted_before - mounted_after):
        if ("PersistentVolumeClaim", claim) in new:
            out.append(f"PersistentVolumeClaim {claim} is no longer mounted by any engine")
    for model in sorted(_models(old) - _models(new)):
        served = traffic(model) if traffic else None
        if served is None:
            out.append(f"model {model} is dropped and no Prometheus was given to show it idle "
                       "(--prometheus URL or LLMOPS_PROMETHEUS_URL)")
        elif served > 0:
            out.append(f"model {model} is dropped but served {served:g} requests in the traffic window")
    return out


def prometheus_traffic(url: str, namespace: str, release_name: str, window: str = DEFAULT_WINDOW) -> TrafficFn:
    """Requests completed in WINDOW plus those running/waiting now, for one model of the release."""

    def query(promql: str) -> float:
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query?{q}", timeout=10) as resp:
            data = json.loads(resp.read())
        if data.get("status") != "success":
            raise LlmopsError(f"Prometheus {url}: {data.get('error', data)}")
        return sum(float(r["value"][1]) for r in data["data"]["result"])

    def traffic(model: str) -> float:
        sel = f'namespace="{namespace}",llmops_release="{release_name}",llmops_model="{model}"'
        return query(f"sum(increase(vllm:e2e_request_latency_seconds_count{{{sel}}}[{window}]))"
                     f" or vector(0)") + query(
            f"sum(vllm:num_requests_running{{{sel}}}) + sum(vllm:num_requests_waiting{{{sel}}}) or vector(0)")

    return traffic


def proposed_manifest(rel: release.Release, chart: str | Path, values: Sequence[str | Path],
                      chart_args: Sequence[str] = ()) -> str:
    """The manifest Helm would install: ``helm upgrade --dry-run=server -o json`` (hooks excluded)."""
    from llmops.cluster.release import _values_args  # one place builds --values/--set-json

    out = rel._helm("upgrade", rel.name, str(chart), *chart_args, *_values_args(values, None),
                    "--dry-run=server", "-o", "json")
    return str(json.loads(out)["manifest"])


def kubectl_diff(cluster_name: str, namespace: str, manifest: str) -> str:
    """``kubectl diff`` (server-side dry run) of MANIFEST against the live objects; exit 1 = differences."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(manifest)
    kubeconfig = cluster.kubeconfig_path(cluster_name)
    proc = subprocess.run([str(tools.require("kubectl")), "--kubeconfig", str(kubeconfig), "diff", "-n", namespace,
                           "-f", fh.name], capture_output=True, text=True, env=tools.tool_env(), check=False)
    Path(fh.name).unlink(missing_ok=True)
    if proc.returncode > 1:
        raise LlmopsError(f"kubectl diff failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def preview(rel: release.Release, chart: str | Path, values: Sequence[str | Path], *,
            chart_args: Sequence[str] = (), traffic: TrafficFn | None = None) -> Preview:
    if rel.status() is None:
        raise LlmopsError(f"release {rel.name} is not installed in namespace {rel.namespace}")
    old = objects(rel._helm("get", "manifest", rel.name))
    if not isinstance(chart, str) or not chart.startswith("oci://"):
        release._prepare(chart, rel.helm_bin)
    new_text = proposed_manifest(rel, chart, values, chart_args)
    new = objects(new_text)
    return Preview(
        diff=kubectl_diff(rel.cluster_name, rel.namespace, new_text),
        removed=sorted(set(old) - set(new)),
        added=sorted(set(new) - set(old)),
        refusals=refusals(old, new, traffic),
    )

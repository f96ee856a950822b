"""A load test run inside the cluster by ``charts/loadtest`` (Locust master + workers as Jobs).

``llmops loadtest --release NAME -n NS --in-cluster`` installs the chart next
to the release, aimed at the release's Service (its one engine Service, or its
router when it serves several models), waits for the master Job to end, reads
the summary line the master prints (exact percentiles over every worker's raw
samples, see loadtests/locustfile.py), applies the same SLO gates as a host
run and writes ``summary.json``/``summary.md`` and the master's log into the
report folder; then the chart is uninstalled.

On the local cluster the pods run on the real node (the release's namespace
is pinned there) from ``localhost/llmops/locust``, built here on demand and
imported into the node's containerd (llmops.cluster.load_images).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from llmops import cluster, paths
from llmops.cluster import images, release
from llmops.errors import LlmopsError
from llmops.loadtest import harness, profiles, report, shapes, slo

CHART = paths.CHARTS_DIR / "loadtest"
IMAGE = "locust"
SUMMARY_MARKER = "LLMOPS_SUMMARY "
# Beyond the shape's duration: pods start, workers connect, in-flight requests drain.
GRACE_S = 180.0


def target_url(release_name: str, namespace: str, cluster_name: str, service: str | None = None) -> str:
    """The in-cluster URL of SERVICE, else of the release's one engine Service, else of its router Service."""
    items = json.loads(cluster.kubectl(cluster_name, "get", "services", "-n", namespace, "-o", "json",
                                       "-l", f"app.kubernetes.io/instance={release_name}"))["items"]

    def url(svc: dict[str, Any]) -> str:
        port = next((p["port"] for p in svc["spec"].get("ports", []) if p.get("name") == "http"), None)
        if port is None:
            raise LlmopsError(f"Service {namespace}/{svc['metadata']['name']} has no port named http")
        return f"http://{svc['metadata']['name']}.{namespace}.svc:{port}"

    by_component: dict[str, list[dict[str, Any]]] = {}
    for svc in items:
        by_component.setdefault(svc["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""), []).append(svc)
    if service:
        named = [svc for svc in items if svc["metadata"]["name"] == service]
        if not named:
            raise LlmopsError(f"release {release_name} in {namespace} has no Service {service}; it has "
                              f"{', '.join(sorted(s['metadata']['name'] for s in items)) or 'none'}")
        return url(named[0])
    engines, routers = by_component.get("engine", []), by_component.get("router", [])
    if len(engines) == 1:
        return url(engines[0])
    if routers:
        return url(routers[0])
    raise LlmopsError(f"release {release_name} in {namespace} has {len(engines)} engine Services and no router: "
                      "nothing single to aim the in-cluster load test at; is it installed?")


def _profile(profile: str | Path, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], shapes.Shape]:
    path = harness.resolve_profile(profile)
    data = dict(yaml.safe_load(path.read_text()))
    prof = profiles.parse(data, str(path))
    data["load"] = {**prof.load, **{k: v for k, v in overrides.items() if v is not None}}
    shape = shapes.build(data["load"])
    if shape.kind == "sweep":
        raise LlmopsError("a sweep runs several Locust runs one after another; run it from the host (without --in-cluster)")
    return data, shape


def master_job_state(name: str, namespace: str, cluster_name: str) -> str:
    """``Complete``, ``Failed`` or ``""`` (still running) for Job NAME."""
    job = json.loads(cluster.kubectl(cluster_name, "get", "job", name, "-n", namespace, "-o", "json"))
    for cond in job.get("status", {}).get("conditions", []) or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return ""


def parse_summary(log: str) -> dict[str, Any]:
    """The summary the master printed (the last ``LLMOPS_SUMMARY`` line of its log)."""
    lines = [ln for ln in log.splitlines() if ln.startswith(SUMMARY_MARKER)]
    if not lines:
        tail = "\n".join(log.strip().splitlines()[-20:])
        raise LlmopsError(f"the Locust master printed no summary line ({SUMMARY_MARKER.strip()}); its log ends:\n{tail}")
    doc = json.loads(lines[-1][len(SUMMARY_MARKER):])
    return dict(doc["summary"])


def execute(
    *,
    release_name: str,
    namespace: str,
    cluster_name: str = cluster.DEFAULT_NAME,
    profile: str | Path = harness.DEFAULT_PROFILE,
    slo_ref: str | Path | None = harness.DEFAULT_SLO,
    load_overrides: Mapping[str, Any] | None = None,
    workers: int = 2,
    seed: int | None = 1,
    report_dir: Path | None = None,
    helm_bin: str = "helm3",
    service: str | None = None,
    say: Any = print,
) -> harness.Outcome:
    """Run charts/loadtest against the release and return the verdict; never raises on an SLO breach."""
    profile_data, shape = _profile(profile, load_overrides or {})
    slos = harness.resolve_slo(slo_ref)
    out = report_dir or paths.REPO_ROOT / "reports" / time.strftime("loadtest-incluster-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    cluster.load_images(cluster_name, [IMAGE], say)
    url = target_url(release_name, namespace, cluster_name, service)
    name = f"{release_name}-loadtest"[:53].rstrip("-")
    recipe = images.recipes()[IMAGE]
    values = {
        "fullnameOverride": name,
        "target": {"url": url},
        "image": {"registry": "localhost", "repository": f"llmops/{recipe.name}", "tag": recipe.version},
        "profile": profile_data,
        "seed": seed,
        "worker": {"replicas": workers},
        "job": {"activeDeadlineSeconds": int(shape.duration + GRACE_S)},
    }
    values_file = out / "loadtest-values.yaml"
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    rel = release.Release(name, namespace, helm_bin, cluster_name)
    say(f"  in-cluster load: {workers} Locust workers -> {url} ({shape.kind}, {shape.duration:g}s), release {name}")
    started = time.monotonic()
    rel.install(CHART, [values_file], wait=False, create_namespace=False)
    try:
        deadline = time.monotonic() + shape.duration + GRACE_S
        state = ""
        while not state and time.monotonic() < deadline:
            time.sleep(2)
            state = master_job_state(f"{name}-master", namespace, cluster_name)
        log = cluster.kubectl(cluster_name, "logs", "-n", namespace, f"job/{name}-master", timeout=60)
        (out / "master.log").write_text(log)
        if not state:
            raise LlmopsError(f"the Locust master Job {namespace}/{name}-master did not finish within "
                              f"{shape.duration + GRACE_S:.0f}s; its log: {out / 'master.log'}")
        if state == "Failed":
            tail = "\n".join(log.strip().splitlines()[-20:])
            raise LlmopsError(f"the Locust master Job {namespace}/{name}-master failed; its log ends:\n{tail}")
        summary = parse_summary(log)
    finally:
        rel.uninstall(wait=False)
    wall = time.monotonic() - started
    slo_results = slo.evaluate(slos, summary)
    ctx = {"target": f"{url} (in the cluster, release {release_name} -n {namespace})",
           "runner": f"charts/loadtest: 1 master + {workers} workers ({images.ref(IMAGE)})",
           "profile": str(profile_data.get("name", profile)), "shape": shape.kind, "wall_s": f"{wall:.1f}",
           "master log": "master.log"}
    document = {
        "title": "In-cluster load test",
        "context": ctx,
        "profile": profile_data,
        "load": {**shape.to_dict(), "duration_s": shape.duration},
        "summary": summary,
        "slos": [{"slo": r.slo.label, "key": r.slo.key, "observed": r.observed, "ok": r.ok, "message": r.message}
                 for r in slo_results],
        "ok": all(r.ok for r in slo_results),
    }
    report.write_json(out / "summary.json", document)
    report.write_markdown(out / "summary.md", "In-cluster load test", summary, slo_results, ctx, [], [])
    return harness.Outcome(out, summary, slo_results, report.summary_lines(summary, slo_results))

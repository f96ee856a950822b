"""`llmops loadtest --release`: engine Services found through a real API server, mapped to host simulators.

On the local provider kwok pods run nothing and Services do not route; the
harness must still find the release's engine Services (and their model label)
through the API server and send the load to the simulators registered for
that release. This installs the vllm chart (simulator engine, 2 replicas) on
the shared local cluster, mirrors it with one simulator per replica, and runs
the CLI against the release.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from llmops import cluster, paths
from llmops.cluster import endpoints, release
from llmops.validate import render

CLUSTER_NAME = os.environ.get("LLMOPS_CLUSTER", cluster.DEFAULT_NAME)
VALUES = {
    "engine": "simulator",
    "simulator": {"timeToFirstToken": "20ms", "interTokenLatency": "2ms"},
    "modelDefaults": {"replicas": 2, "maxNumSeqs": 32, "gpu": {"count": 0}, "resourcesPreset": "nano"},
    "models": [{"name": "tiny", "servedModelName": "tiny-llm", "source": "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main"}],
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(release, namespace, values file) of the vllm chart installed on the shared local cluster."""
    values = tmp_path_factory.mktemp("values") / "vllm.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    ns = f"lt-{uuid.uuid4().hex[:6]}"
    with cluster.shared(CLUSTER_NAME, "local") as info:
        rel = release.Release(name="lt", namespace=ns, cluster_name=info.name)
        rel.install(paths.CHARTS_DIR / "vllm", [values])
        try:
            yield rel.name, ns, values
        finally:
            rel.uninstall(wait=False)
            cluster.kubectl(info.name, "delete", "namespace", ns, "--wait=false")


def test_release_target_resolves_services_via_api_and_loads_the_registered_simulators(
    installed: tuple[str, str, Path], tmp_path: Path
) -> None:
    name, ns, values = installed
    registry = tmp_path / "endpoints.json"
    (dep,) = endpoints.engine_deployments(render.render("vllm", [values], release=name, namespace=ns), ns)
    assert (dep.name, dep.model, dep.replicas, dep.config.served) == ("lt-tiny", "tiny", 2, ("tiny-llm",))
    with endpoints.EndpointManager(log_dir=tmp_path, registry=registry) as mgr:
        sims = mgr.reconcile(dep.group, dep.config, dep.replicas,
                             labels={"release": name, "namespace": ns, "model_name": dep.model})  # fmt: skip
        report = tmp_path / "report"
        proc = subprocess.run(
            [sys.executable, "-m", "llmops", "loadtest", "--release", name, "-n", ns, "--duration", "3s",
             "--users", "4", "--report-dir", str(report)],
            capture_output=True, text=True, timeout=180, check=False, cwd=paths.REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(paths.REPO_ROOT / "src"), "LLMOPS_ENDPOINTS_REGISTRY": str(registry)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        doc = json.loads((report / "summary.json").read_text())
        # both replicas' simulators, under the served name, found from the Service's llmops.io/model label
        assert doc["context"]["targets"] == f"tiny-llm -> {' '.join(s.url for s in sims)}"
        assert doc["summary"]["completed"] > 0 and doc["summary"]["failed"] == 0
        served = [int(endpoints_served(s.url)) for s in sims]
        assert all(n > 0 for n in served), f"round robin reached every replica: {served}"


def test_release_without_registered_endpoints_is_an_error_naming_the_fix(installed: tuple[str, str, Path], tmp_path: Path) -> None:
    name, ns, _ = installed
    proc = subprocess.run(
        [sys.executable, "-m", "llmops", "loadtest", "--release", name, "-n", ns, "--duration", "2s"],
        capture_output=True, text=True, timeout=120, check=False, cwd=paths.REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(paths.REPO_ROOT / "src"),
             "LLMOPS_ENDPOINTS_REGISTRY": str(tmp_path / "empty.json")},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "port-forward" in proc.stderr and "llmops endpoints up" in proc.stderr


def endpoints_served(url: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:  # noqa: S310 - loopback
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("vllm:request_success_total"))


def test_release_on_the_real_node_is_loaded_through_its_service_cluster_ip(tmp_path: Path) -> None:
    """No host simulator: the pods run on the real node and the load crosses the Service (kube-proxy)."""
    from llmops.cluster import images

    sim = images.recipes()["llm-d-inference-sim"]
    values = tmp_path / "vllm.yaml"
    registry_, _, repository = images.ref("llm-d-inference-sim").rpartition(":")[0].partition("/")
    values.write_text(yaml.safe_dump({
        **VALUES,
        "simulator": {**VALUES["simulator"], "image": {"registry": registry_, "repository": repository, "tag": sim.version}},
    }))  # fmt: skip
    ns = f"ltr-{uuid.uuid4().hex[:6]}"
    with cluster.shared(CLUSTER_NAME, "local") as info:
        if not cluster.has_real_node(info.name):
            pytest.fail(f"cluster {info.name} has no real node (LLMOPS_REAL_NODES=0?)")
        rel = release.Release(name="ltr", namespace=ns, cluster_name=info.name, real_node=True)
        try:
            rel.install(paths.CHARTS_DIR / "vllm", [values])
            svc = json.loads(cluster.kubectl(info.name, "get", "service", "-n", ns, "ltr-tiny", "-o", "json"))
            report = tmp_path / "report"
            proc = subprocess.run(
                [sys.executable, "-m", "llmops", "loadtest", "--release", "ltr", "-n", ns, "--duration", "3s",
                 "--users", "4", "--report-dir", str(report)],
                capture_output=True, text=True, timeout=180, check=False, cwd=paths.REPO_ROOT,
                env={**os.environ, "PYTHONPATH": str(paths.REPO_ROOT / "src"),
                     "LLMOPS_ENDPOINTS_REGISTRY": str(tmp_path / "empty.json")},
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
            doc = json.loads((report / "summary.json").read_text())
            assert doc["context"]["targets"] == f"tiny-llm -> http://{svc['spec']['clusterIP']}:8000"
            assert doc["summary"]["completed"] > 0 and doc["summary"]["failed"] == 0
        finally:
            rel.uninstall(wait=False)
            cluster.kubectl(info.name, "delete", "namespace", ns, "--wait=false")

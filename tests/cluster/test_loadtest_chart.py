"""charts/loadtest for real: Locust master and workers as pods on the real node, against a release's Service.

The local environment is installed into a namespace pinned to the real node;
`llmops loadtest --release ... --in-cluster` installs the chart next to it,
and the master's summary (exact percentiles over every worker's samples)
comes back to the host, where the SLO gates apply.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from llmops import cli, cluster, paths
from llmops.cluster import release
from llmops.loadtest import incluster

from .conftest import kubelet_started

ENV = paths.VALUES_DIR / "local.yaml"


@pytest.fixture(scope="module")
def served(local_cluster: cluster.ClusterInfo) -> Iterator[tuple[str, str]]:
    """values/local.yaml installed on the real node: (release, namespace)."""
    if not cluster.has_real_node(local_cluster.name):
        pytest.fail(f"cluster {local_cluster.name} has no real node (LLMOPS_REAL_NODES=0?); the loadtest chart needs one")
    namespace = f"lt-{uuid.uuid4().hex[:8]}"
    release.ensure_namespace(namespace, cluster_name=local_cluster.name, real_node=True)
    rel = release.Release("llmops", namespace, "helm3", local_cluster.name, real_node=True)
    try:
        rel.install(paths.CHARTS_DIR / "llmops-stack", [ENV], timeout="3m", create_namespace=False)
        yield rel.name, namespace
    finally:
        cluster.kubectl(local_cluster.name, "delete", "namespace", namespace, "--wait=false")


def _loadtest(info: cluster.ClusterInfo, release_name: str, namespace: str, report: Path, *extra: str) -> int:
    return cli.main(["loadtest", "--release", release_name, "-n", namespace, "--in-cluster", "--cluster", info.name,
                     "--workers", "2", "--duration", "15s", "--users", "4", "--report-dir", str(report), *extra])


def test_locust_pods_load_the_release_through_its_service_and_the_report_comes_back(
    local_cluster: cluster.ClusterInfo, served: tuple[str, str], tmp_path: Path
) -> None:
    release_name, namespace = served
    code = _loadtest(local_cluster, release_name, namespace, tmp_path / "ok")
    doc = json.loads((tmp_path / "ok" / "summary.json").read_text())
    summary = doc["summary"]
    assert summary["requests"] > 0 and summary["completed"] == summary["requests"], summary
    assert summary["failed"] == 0 and summary["errors_by_status"] == {}, summary
    assert summary["p50_ttft_ms"] > 0 and summary["total_output_tokens"] > 0
    assert code == 0 and doc["ok"], doc["slos"]
    # Master and both workers were started by the real node's kubelet, and went through the engine Service.
    started = kubelet_started(local_cluster, namespace, "loadtest")
    assert len([p for p in started if "-master-" in p]) == 1 and len([p for p in started if "-worker-" in p]) == 2, started
    assert f"http://{release_name}-tiny.{namespace}.svc:8000" in doc["context"]["target"]
    assert "LLMOPS_SUMMARY" in (tmp_path / "ok" / "master.log").read_text()


def test_an_slo_the_simulator_cannot_meet_makes_the_in_cluster_run_fail_naming_it(
    local_cluster: cluster.ClusterInfo, served: tuple[str, str], tmp_path: Path
) -> None:
    release_name, namespace = served
    # The simulator's first token comes after 50 ms (values/local.yaml): 1 ms cannot hold.
    slo_file = tmp_path / "impossible.yaml"
    slo_file.write_text(yaml.safe_dump({"slos": [{"metric": "ttft", "stat": "p50", "max": 1}]}))
    code = _loadtest(local_cluster, release_name, namespace, tmp_path / "breach", "--slo", str(slo_file))
    doc = json.loads((tmp_path / "breach" / "summary.json").read_text())
    assert doc["summary"]["requests"] > 0, doc["summary"]
    assert code == 1 and doc["ok"] is False
    (breach,) = doc["slos"]
    assert not breach["ok"] and breach["observed"] > 1 and "ttft p50" in breach["message"], breach


def test_the_run_can_go_through_the_router_front_door(
    local_cluster: cluster.ClusterInfo, served: tuple[str, str], tmp_path: Path
) -> None:
    """The router lists models in its own shape ({"models": [...]}); the locustfile reads it too."""
    release_name, namespace = served
    code = _loadtest(local_cluster, release_name, namespace, tmp_path / "router", "--service", f"{release_name}-router")
    doc = json.loads((tmp_path / "router" / "summary.json").read_text())
    assert f"http://{release_name}-router.{namespace}.svc:8000" in doc["context"]["target"]
    assert doc["summary"]["requests"] > 0 and doc["summary"]["failed"] == 0, doc["summary"]
    assert code == 0


def test_a_release_that_is_not_installed_is_refused_before_any_pod_starts(local_cluster: cluster.ClusterInfo) -> None:
    with pytest.raises(Exception, match="no router|engine Services"):
        incluster.target_url("absent", "default", local_cluster.name)

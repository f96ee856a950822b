"""chart-testing (ct) with the repository's ct.yaml: lint every chart, install every chart's ci/*-values.yaml."""

from __future__ import annotations

import subprocess

from llmops import cluster, paths, release, tools

CT_NAMESPACE = "ct-llmops"  # ct.yaml `namespace`: created by us, PSA restricted


def _ct(*args: str, kubeconfig: str | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    extra = {"KUBECONFIG": kubeconfig} if kubeconfig else {}
    return subprocess.run(
        [str(tools.require("ct")), *args, "--config", str(paths.REPO_ROOT / "ct.yaml")],
        cwd=paths.REPO_ROOT, env=tools.tool_env(extra), capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_ct_lint_passes_for_every_chart() -> None:
    proc = _ct("lint", "--all")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "All charts linted successfully" in proc.stdout + proc.stderr


def test_ct_install_installs_and_tests_every_chart_on_the_local_cluster(local_cluster: cluster.ClusterInfo) -> None:
    release.ensure_namespace(CT_NAMESPACE, cluster_name=local_cluster.name)
    try:
        # A library chart cannot be installed; ct v3.14 does not skip it by itself.
        proc = _ct("install", "--all", "--excluded-charts", "common", kubeconfig=str(local_cluster.kubeconfig))
        summary = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith((" ✔", " ✖")) or "FAILED" in ln]
        assert proc.returncode == 0, "\n".join(summary) or proc.stdout[-4000:] + proc.stderr[-3000:]
        assert "All charts installed successfully" in proc.stdout + proc.stderr
    finally:
        cluster.kubectl(local_cluster.name, "delete", "namespace", CT_NAMESPACE, "--wait=false")

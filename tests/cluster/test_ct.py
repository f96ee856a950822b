"""chart-testing (ct) with the repository's ct.yaml: lint every chart, install every chart's ci/*-values.yaml."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from llmops import cluster, paths, tools
from llmops.cluster import release
from llmops.publish import record

from .conftest import kubelet_started

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


# What ct.yaml's charts expect to exist before they are installed, as a site
# prepares it out of band: the API key Secret charts/loadtest/ci/02 names.
CT_PREPARED = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "llm-api-key"},
               "stringData": {"token": "ct-not-a-real-key"}}


def test_ct_install_installs_and_tests_every_chart_on_the_real_node(local_cluster: cluster.ClusterInfo) -> None:
    """ct's namespace is pinned to the real node: every pod runs, each chart's helm test runs its script."""
    cluster.require_real_pods(local_cluster.name, "ct install runs every chart's helm test, which needs a real node "
                                                  "(`llmops cluster up --real-nodes 1`)")
    # The ci values run the images built here; `cluster up` imports neither locust (charts/loadtest)
    # nor the KEDA HTTP add-on (charts/autoscaling/ci/04: a model held at zero replicas).
    cluster.load_images(local_cluster.name, ["locust", "keda-http-add-on"], print)
    release.ensure_namespace(CT_NAMESPACE, cluster_name=local_cluster.name, real_node=True)
    try:
        cluster.kubectl(local_cluster.name, "apply", "-n", CT_NAMESPACE, "-f", "-", input_text=json.dumps(CT_PREPARED))
        started = time.monotonic()
        # A library chart cannot be installed; ct v3.14 does not skip it by itself.
        proc = _ct("install", "--all", "--excluded-charts", "common", kubeconfig=str(local_cluster.kubeconfig))
        print(f"ct install --all: {time.monotonic() - started:.1f}s")
        out = proc.stdout + proc.stderr
        summary = [ln for ln in out.splitlines() if ln.startswith((" ✔", " ✖")) or "FAILED" in ln]
        assert proc.returncode == 0, "\n".join(summary) or proc.stdout[-4000:] + proc.stderr[-3000:]
        assert "All charts installed successfully" in out
        # The charts with a helm test ran it for real: its pods were started by the kubelet.
        tested = kubelet_started(local_cluster, CT_NAMESPACE, "-test-")
        assert tested, f"no helm test pod was started by the real node's kubelet:\n{out[-3000:]}"
    finally:
        cluster.kubectl(local_cluster.name, "delete", "namespace", CT_NAMESPACE, "--wait=false")


# ---------------------------------------------------------------------------
# ct's own version-increment check, offline: ct compares each chart with the
# merge-base of a remote branch, so a local clone gets a remote-tracking ref
# at the last release's commit (no network, no real remote).
# ---------------------------------------------------------------------------


def _clone_at_last_release(tmp_path: Path, *, with_changes: bool = False) -> tuple[Path, str]:
    """A clone whose origin/last-release is the newest release (WITH_CHANGES: the newest one HEAD differs from).

    Right after a cut HEAD equals the newest release, so the check that needs
    changed charts targets the release before it.
    """
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(paths.REPO_ROOT), str(clone)], check=True)
    releases = sorted(record.load(), key=lambda r: r.semver, reverse=True)
    assert releases, "releases.yaml records no release"
    target = releases[0]
    if with_changes:
        target = next((r for r in releases if record.changed_charts(r.commit, "HEAD", clone)), releases[-1])
    subprocess.run(["git", "-C", str(clone), "update-ref", "refs/remotes/origin/last-release", target.commit], check=True)
    return clone, target.commit


def _ct_version_check(clone: Path) -> subprocess.CompletedProcess[str]:
    """ct's own change detection (it turns the version check off with --charts or --all)."""
    return subprocess.run(
        [str(tools.require("ct")), "lint", "--config", str(clone / "ct.yaml"), "--check-version-increment",
         "--remote", "origin", "--target-branch", "last-release"],
        cwd=clone, env=tools.tool_env(), capture_output=True, text=True, timeout=600, check=False)


def test_ct_version_increment_check_passes_for_charts_changed_since_the_last_release(tmp_path: Path) -> None:
    clone, commit = _clone_at_last_release(tmp_path, with_changes=True)
    changed = sorted(record.with_dependents(record.changed_charts(commit, "HEAD", clone),
                                            record.chart_meta(clone / "charts")))
    assert changed, "nothing changed since the last release: cut one before this test means anything"
    proc = _ct_version_check(clone)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Version increment checking disabled" not in out and "Chart version ok." in out
    for chart in changed:
        assert f"{chart} => (version:" in out, f"ct did not lint changed chart {chart}:\n{out[-2000:]}"


def test_ct_version_increment_check_fails_a_changed_chart_without_a_bump(tmp_path: Path) -> None:
    clone, _commit = _clone_at_last_release(tmp_path)
    values = clone / "charts" / "vllm" / "values.yaml"
    values.write_text(values.read_text() + "\n# changed without a bump\n")
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "commit", "-qam", "change vllm"], check=True)
    proc = _ct_version_check(clone)
    assert proc.returncode != 0
    assert "Needs a version bump" in proc.stdout + proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]

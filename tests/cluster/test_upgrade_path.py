"""The upgrade path: every recorded release line, installed from the OCI registry, upgraded to HEAD, rolled back.

For the newest patch of each of the two newest release lines (major.minor)
in releases.yaml whose charts differ from HEAD's (a patch release supersedes
the earlier ones of its line; older lines upgrade through these, see
docs/upgrading.md) and each environment file that existed at
its commit (taken from that commit, never from today's tree): install the
released umbrella from ``oci://127.0.0.1:PORT/charts`` with ``--verify``,
upgrade to the working tree's umbrella with the same values (Helm 3 and
Helm 4), then roll back to the release. Checked: the upgrade succeeds (an
immutable-field error is reported as such), every Deployment becomes
Available, no PersistentVolumeClaim is deleted or replaced (same UID), and
the rollback returns the release's chart.

Environment files whose images need real digests (production, air-gapped)
render only with a digest overlay: ``LLMOPS_UPGRADE_OVERLAYS`` (default
``tests/fixtures/overlays``) holding ``<env>.yaml`` is appended to the values
of both install and upgrade when present; otherwise a file with placeholder
digests gets the test-only digests (``environments.TEST_IMAGE_DIGESTS``). An
environment that does not fit the simulated cluster fails; it is never skipped.

Zero failed requests: an environment that runs on the cluster's real node
(``values/local.yaml``: simulator engines behind the vLLM Router, real
containers, kube-proxy Services) is installed there, and while ``helm
upgrade`` and then ``helm rollback`` roll its engines and its router, a
client (``llmops.loadtest.steadyload``) streams chat completions through the router's
ClusterIP Service from the host, records every request and the gaps between
streamed tokens, and the case fails on a single failed request. The upgrade
must replace every engine and router pod (checked by pod UID); when the
release and HEAD render the same pod templates (a release cut from the tree
under test), the case forces the rollout with a pod annotation in the HEAD
values and says so in its figures. A release whose environment has no router
(0.1.0) has no Service to send the load through before the upgrade (and its
local file names a ghcr.io image the offline node cannot pull): it upgrades
on kwok nodes without the load, like the other environments. Figures go to
``reports/cluster/upgrade-load.json`` (scripts/bench_upgrade.py reads them).

``LLMOPS_UPGRADE_HEAD_VALUES`` (files separated by ``:``) is appended to the
HEAD values only: how docs/benchmarks.md's drain experiments take one drain
setting away for the upgrade without editing the charts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmops import cluster, environments, paths
from llmops.loadtest import steadyload
from llmops.cluster import release
from llmops.validate import render
from llmops.publish import oci, record, registry, semver, signing

from .conftest import kubectl_json, wait_until
# one_environment_at_a_time: releases of shipped environments create cluster-scoped objects (the
# llm-inference PriorityClass) and fill GPU pools, so they take turns with test_charts' installs.
from .test_charts import (  # noqa: F401
    INSTALL_TIMEOUT, UMBRELLA, _bind_volumes, _wait_available, fit, one_environment_at_a_time, remove_release)

OVERLAYS = Path(os.environ.get("LLMOPS_UPGRADE_OVERLAYS", paths.REPO_ROOT / "tests" / "fixtures" / "overlays"))
HEAD_EXTRA = [Path(p) for p in os.environ.get("LLMOPS_UPGRADE_HEAD_VALUES", "").split(":") if p]
RECORDS = record.load()
# Environments whose pods serve on the real node (every image they run is built by `cluster up`).
REAL_NODE_ENVS = ("local",)
LOAD_CONCURRENCY = int(os.environ.get("LLMOPS_UPGRADE_LOAD_CONCURRENCY", "4"))
# Streams of about 3 s with local.yaml's simulator (exactly this many tokens with ignore_eos, 50 ms to
# the first, 10 ms each after): longer than a pod without its drain settings lives after it is marked
# for deletion, so such a pod shows up as broken streams.
LOAD_MAX_TOKENS = int(os.environ.get("LLMOPS_UPGRADE_LOAD_MAX_TOKENS", "300"))
# A load that ran this few requests over a rollout proves nothing.
MIN_REQUESTS = 20
ROUTER_READY_TIMEOUT_S = 90
NAMESPACE_GONE_TIMEOUT_S = 180
FIGURES_FILE = paths.REPO_ROOT / "reports" / "cluster" / "upgrade-load.json"


def _envs_at(commit: str) -> list[str]:
    names = record.git("ls-tree", "--name-only", f"{commit}:values").split()
    return sorted(n.removesuffix(".yaml") for n in names if n.endswith(".yaml"))




# The supported upgrade window (docs/upgrading.md): from the newest patch of either of the two newest
# release lines that differ from HEAD's charts; older releases upgrade through them. Each line costs
# about 15 minutes of make test (12 cases that share the cluster one at a time).
SUPPORTED_LINES = 2


def _newest_patch_of_each_minor(records: list[record.ReleaseRecord]) -> list[record.ReleaseRecord]:
    """A patch release supersedes the earlier patches of its line (users upgrade from the newest), so
    the matrix covers one release per major.minor and grows by one line per minor release."""
    newest: dict[tuple[int, int], record.ReleaseRecord] = {}
    for rec in records:
        v = semver.Version.parse(rec.version)
        key = (v.major, v.minor)
        if key not in newest or semver.Version.parse(newest[key].version) < v:
            newest[key] = rec
    return [newest[k] for k in sorted(newest)]


# A release whose charts are HEAD's (the one just cut) has no upgrade to HEAD yet: it joins the
# matrix with the first chart change after it.
LINES = [rec for rec in _newest_patch_of_each_minor(RECORDS) if record.changed_charts(rec.commit)][-SUPPORTED_LINES:]
CASES = [(rec.version, env) for rec in LINES for env in _envs_at(rec.commit)]


def _claims(info: cluster.ClusterInfo, namespace: str) -> dict[str, str]:
    items = kubectl_json(info, "get", "persistentvolumeclaims", "-n", namespace)["items"]
    return {c["metadata"]["name"]: c["metadata"]["uid"] for c in items if not c["metadata"].get("deletionTimestamp")}


UPGRADES = paths.REPO_ROOT / "tests" / "fixtures" / "upgrades"


def _carried_to_head(values: list[Path], env: str, version: str, tmp_path: Path) -> list[Path]:
    """The release's values as a user carries them to HEAD.

    The migration table (``llmops.publish.migrate``) moves renamed keys and
    drops removed ones; then the user's upgrade overlay for each version
    since the release (``tests/fixtures/upgrades/<version>/<env>.yaml``, newer versions only: what
    docs/upgrading.md asks of that environment); then the test-only digests.
    Unchanged when nothing applies.
    """
    import yaml

    from llmops.publish import migrate

    data = yaml.safe_load(values[0].read_text()) or {}
    migrated, applied = migrate.apply(data)
    since = semver.Version.parse(version)
    extras = sorted((f for f in UPGRADES.glob(f"*/{env}.yaml") if semver.Version.parse(f.parent.name) > since),
                    key=lambda f: semver.Version.parse(f.parent.name))
    if not applied and not extras:
        return values
    first = tmp_path / f"{env}-migrated.yaml"
    first.write_text(yaml.safe_dump(migrated))
    out = [first, *extras]
    if environments.placeholder_digests(values[0]):
        out.append(environments.TEST_IMAGE_DIGESTS)
    return out


def _test_digests_for(old_umbrella: Path, tmp_path: Path) -> Path:
    """The test-only digest overlay cut to the subcharts OLD_UMBRELLA knows.

    A release whose environment files carry placeholder digests installs
    them as its own chart allowed; HEAD refuses placeholders, so install and
    upgrade both get the test-only digests (never a real image) for the
    blocks the old umbrella has (its schema may refuse a newer subchart's key).
    """
    import yaml

    known = set((yaml.safe_load((old_umbrella / "values.yaml").read_text()) or {}))
    known |= {d.get("alias") or d["name"] for d in yaml.safe_load((old_umbrella / "Chart.yaml").read_text()).get("dependencies", [])}
    digests = yaml.safe_load(environments.TEST_IMAGE_DIGESTS.read_text()) or {}
    out = tmp_path / "test-image-digests.yaml"
    out.write_text(yaml.safe_dump({k: v for k, v in digests.items() if k in known}))
    return out


@pytest.fixture(scope="session")
def released(oci_registry: registry.LocalRegistry, signing_key: signing.SigningKey,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[oci.Published]]:
    """Every recorded release (from its commit) under oci://.../charts.

    Not conftest's ``published``: that one also publishes the working tree,
    which the version rule refuses between a chart change and its release,
    and the upgrade path tests exactly such trees.
    """
    work = tmp_path_factory.mktemp("publish-releases")
    return {rec.version: oci.publish(oci_registry.url("charts"), version=rec.version, key=signing_key, work=work)
            for rec in RECORDS}


def _pods(info: cluster.ClusterInfo, namespace: str, component: str) -> dict[str, str]:
    """UID -> name of the COMPONENT pods that are not terminating."""
    items = kubectl_json(info, "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/component={component}")["items"]
    return {p["metadata"]["uid"]: p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")}


def _all_pod_uids(info: cluster.ClusterInfo, namespace: str) -> set[str]:
    return {p["metadata"]["uid"] for p in kubectl_json(info, "get", "pods", "-n", namespace)["items"]}


def _router_target(info: cluster.ClusterInfo, namespace: str) -> tuple[str, str] | None:
    """(base URL of the router's ClusterIP Service, the model the engines serve), or None without a router."""
    services = kubectl_json(info, "get", "services", "-n", namespace, "-l", "app.kubernetes.io/component=router")["items"]
    if not services:
        return None
    svc = services[0]["spec"]
    port = next(p["port"] for p in svc["ports"] if p.get("name") == "http" or p["port"] == 8000)
    engines = kubectl_json(info, "get", "deployments", "-n", namespace, "-l", "app.kubernetes.io/component=engine")["items"]
    model = engines[0]["spec"]["template"]["metadata"]["annotations"]["llmops.io/served-model-name"]
    return f"http://{svc['clusterIP']}:{port}", model


def _streams(url: str, model: str) -> bool:
    return steadyload.SteadyLoad(url, model, request_timeout_s=10).once().ok


def _pod_templates(manifests: list[render.Manifest]) -> dict[str, Any]:
    return {m.name: m.obj["spec"]["template"] for m in manifests if m.kind == "Deployment"}


def _record_figures(case: str, phase: str, figures: dict[str, Any]) -> None:
    """Merge one phase's figures into FIGURES_FILE (xdist workers write it concurrently)."""
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES_FILE.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = json.loads(FIGURES_FILE.read_text()) if FIGURES_FILE.exists() else {}
        data.setdefault(case, {})[phase] = figures
        tmp = FIGURES_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, FIGURES_FILE)


@contextlib.contextmanager
def steady_load(info: cluster.ClusterInfo, namespace: str, grace_s: float, *, measure: bool) -> Iterator[dict[str, Any]]:
    """A streaming load through the router's Service for as long as the block runs, then until every pod
    that existed when it began has terminated (their drain is what is measured).

    Yields a dict the summary is written into when the block ends
    (``measured`` False unless MEASURE and the release runs a router).
    """
    figures: dict[str, Any] = {"measured": False}
    target = _router_target(info, namespace) if measure else None
    if target is None:
        yield figures
        return
    url, model = target
    wait_until(f"the router at {url} to stream a chat completion for {model}", ROUTER_READY_TIMEOUT_S,
               lambda: _streams(url, model), interval=1)
    before = _all_pod_uids(info, namespace)
    load = steadyload.SteadyLoad(url, model, concurrency=LOAD_CONCURRENCY, max_tokens=LOAD_MAX_TOKENS)
    load.start()
    try:
        yield figures
        wait_until("the pods replaced by the rollout to terminate", grace_s + 60,
                   lambda: not (before & _all_pod_uids(info, namespace)), interval=1)
    finally:
        summary = load.stop()
        figures.update(measured=True, url=url, model=model, concurrency=LOAD_CONCURRENCY, **summary.as_dict())
        print(f"[steady load] {summary.line()}")


def name_for(version: str, env: str, helm_bin: str) -> str:
    return f"up{version.replace('.', '')}-{env[:14].rstrip('-')}-h{helm_bin[-1]}"


def _grace_seconds(manifests: list[render.Manifest]) -> float:
    return max((m.obj["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
                for m in manifests if m.kind == "Deployment"), default=30)


def _check_load(figures: dict[str, Any], what: str) -> None:
    if not figures["measured"]:
        return
    assert figures["failed_requests"] == 0, (
        f"{figures['failed_requests']} of {figures['requests']} streamed requests failed during the {what}:\n"
        + "\n".join(figures["failures"]))
    assert figures["requests"] >= MIN_REQUESTS, f"only {figures['requests']} requests ran during the {what}: no load to judge"


def _check_replaced(info: cluster.ClusterInfo, namespace: str, before: dict[str, dict[str, str]], what: str) -> None:
    """Every engine and router pod of BEFORE was replaced: the rollout the load ran through really happened."""
    for component, old in before.items():
        now = _pods(info, namespace, component)
        assert now, f"no {component} pod after the {what}"
        kept = set(old) & set(now)
        assert not kept, f"the {what} did not roll the {component} pods: {sorted(old[u] for u in kept)} still run"


@pytest.mark.slow
@pytest.mark.parametrize(("version", "env"), CASES, ids=[f"{v}-{e}" for v, e in CASES])
def test_release_upgrades_to_head_with_its_own_values_and_rolls_back(
    version: str, env: str, helm_bin: str, local_cluster: cluster.ClusterInfo, released: dict[str, list[oci.Published]],
    oci_registry: object, signing_key: signing.SigningKey, tmp_path: Path, one_environment_at_a_time: None
) -> None:
    rec = record.find(RECORDS, version)
    old = oci.export(rec.commit, tmp_path / "release")
    values = [old / "values" / f"{env}.yaml"]
    if (OVERLAYS / f"{env}.yaml").exists():
        values.append(OVERLAYS / f"{env}.yaml")
    elif environments.placeholder_digests(values[0]):
        values.append(_test_digests_for(old / "charts" / "llmops-stack", tmp_path))
    head_values = _carried_to_head(values, env, version, tmp_path)
    reason = fit(head_values, helm_bin)  # the larger of the two footprints: HEAD adds the router
    assert not reason, f"{env} of {version} does not fit the simulated cluster: {reason}"

    name = name_for(version, env, helm_bin)
    manifests = render.render(old / "charts" / "llmops-stack", values, helm=helm_bin, release=name, namespace=name)
    release_router = any(m.kind == "Deployment" and m.obj["metadata"]["labels"].get("app.kubernetes.io/component")
                         == "router" for m in manifests)
    # On the real node when there is a router to send the load through: a release without one (0.1.0)
    # also ran images the node does not have (ghcr.io), and upgrades on kwok nodes as before.
    real_node = env in REAL_NODE_ENVS and release_router
    if real_node and not cluster.has_real_node(local_cluster.name):
        pytest.fail(f"cluster {local_cluster.name} has no real node (LLMOPS_REAL_NODES=0?); {env} upgrades under load there")
    # A re-run meets the namespace of the last run still terminating (deleted without waiting).
    wait_until(f"namespace {name} of an earlier run to be gone", NAMESPACE_GONE_TIMEOUT_S, lambda: not any(
        n["metadata"]["name"] == name for n in kubectl_json(local_cluster, "get", "namespaces")["items"]), interval=1)
    release.ensure_namespace(name, cluster_name=local_cluster.name, real_node=real_node)
    upgrade_values = [*head_values, *HEAD_EXTRA]
    head_manifests = render.render(UMBRELLA, upgrade_values, helm=helm_bin, release=name, namespace=name)
    old_templates, head_templates = _pod_templates(manifests), _pod_templates(head_manifests)
    forced = real_node and any(old_templates.get(d) == t for d, t in head_templates.items())
    if forced:
        # The release and HEAD render the same pod template: nothing would roll. A pod annotation in
        # the HEAD values makes the upgrade (and so the rollback) replace every engine and router pod.
        mark = tmp_path / "rollout-mark.yaml"
        note = {"llmops.io/upgrade-test": uuid.uuid4().hex[:12]}
        mark.write_text(json.dumps({"vllm": {"podAnnotations": note}, "router": {"podAnnotations": note}}))
        upgrade_values.append(mark)
        head_manifests = render.render(UMBRELLA, upgrade_values, helm=helm_bin, release=name, namespace=name)
    grace = max(_grace_seconds(manifests), _grace_seconds(head_manifests))
    pvs, _prepared, priority_classes = _bind_volumes(local_cluster, name, manifests)
    rel = release.Release(name, name, helm_bin, local_cluster.name, real_node=real_node)
    url = oci_registry.url("charts")  # type: ignore[attr-defined]
    case = f"{version}-{env}-{helm_bin}"
    try:
        rel.install(f"{url}/llmops-stack", values, timeout=INSTALL_TIMEOUT, create_namespace=False, chart_args=[
            "--version", version, "--verify", "--keyring", str(signing_key.public_keyring), *oci.plain_http(url)])
        _wait_available(local_cluster, name)
        claims = _claims(local_cluster, name)

        if head_values != values:
            # The release's file as it was is refused before anything reaches the cluster.
            with pytest.raises(render.RenderError):
                render.render(UMBRELLA, [*values, environments.TEST_IMAGE_DIGESTS], helm=helm_bin, release=name,
                              namespace=name)
            assert rel.history()[-1]["chart"] == f"llmops-stack-{version}", "a refused upgrade left a revision"
        before = {c: _pods(local_cluster, name, c) for c in ("engine", "router")} if real_node else {}
        with steady_load(local_cluster, name, grace, measure=real_node) as upgrade_load:
            try:
                rel.upgrade(UMBRELLA, upgrade_values, timeout=INSTALL_TIMEOUT)
            except release.ReleaseError as exc:
                if "field is immutable" in str(exc):
                    pytest.fail(f"upgrade {version} -> HEAD ({env}) changes an immutable field:\n{exc}")
                raise
            _wait_available(local_cluster, name)
        upgrade_load["forced_rollout"] = forced
        _record_figures(case, "upgrade", upgrade_load)
        if real_node:
            _check_replaced(local_cluster, name, {c: p for c, p in before.items() if p}, "upgrade")
        _check_load(upgrade_load, "upgrade")
        after = _claims(local_cluster, name)
        assert {c: after.get(c) for c in claims} == claims, "the upgrade deleted or replaced a PersistentVolumeClaim"
        head_version = str(record.chart_meta()["llmops-stack"]["version"])
        assert [h["chart"] for h in rel.history()] == [f"llmops-stack-{version}", f"llmops-stack-{head_version}"]

        before = {c: _pods(local_cluster, name, c) for c in ("engine", "router")} if real_node else {}
        back = UPGRADES / version / "rollback" / f"{env}.yaml"
        with steady_load(local_cluster, name, grace, measure=real_node) as rollback_load:
            if back.exists():
                # A release with a known rollback defect: the way back docs/upgrading.md gives for it.
                rel.upgrade(f"{url}/llmops-stack", [*values, back], timeout=INSTALL_TIMEOUT, chart_args=[
                    "--version", version, "--verify", "--keyring", str(signing_key.public_keyring), *oci.plain_http(url)])
            else:
                rel.rollback(1, timeout=INSTALL_TIMEOUT)
            _wait_available(local_cluster, name)
        rollback_load["forced_rollout"] = forced
        _record_figures(case, "rollback", rollback_load)
        if real_node:
            # The release's pods are back: a router the release did not have is gone, not replaced.
            components = ["engine"] + (["router"] if _router_target(local_cluster, name) else [])
            _check_replaced(local_cluster, name, {c: before[c] for c in components if before.get(c)}, "rollback")
        _check_load(rollback_load, "rollback")
        history = rel.history()
        assert history[-1]["chart"] == f"llmops-stack-{version}" and history[-1]["status"] == "deployed"
        rolled = _claims(local_cluster, name)
        assert {c: rolled.get(c) for c in claims} == claims, "the rollback deleted or replaced a PersistentVolumeClaim"
    finally:
        remove_release(local_cluster, rel, pvs, priority_classes)

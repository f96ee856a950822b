"""The upgrade path: every recorded release, installed from the OCI registry, upgraded to HEAD, rolled back.

For each release in releases.yaml and each environment file that existed at
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

Zero failed requests during the upgrade needs the real node and the router
(other branches): ``steady_load`` below is where that load runs; today it
records that it was not measured.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops import cluster, environments, paths, release, render
from llmops.publish import oci, record, semver, signing

from .conftest import kubectl_json
# one_environment_at_a_time: releases of shipped environments create cluster-scoped objects (the
# llm-inference PriorityClass) and fill GPU pools, so they take turns with test_charts' installs.
from .test_charts import INSTALL_TIMEOUT, UMBRELLA, _bind_volumes, _wait_available, fit, one_environment_at_a_time  # noqa: F401

OVERLAYS = Path(os.environ.get("LLMOPS_UPGRADE_OVERLAYS", paths.REPO_ROOT / "tests" / "fixtures" / "overlays"))
RECORDS = record.load()


def _envs_at(commit: str) -> list[str]:
    names = record.git("ls-tree", "--name-only", f"{commit}:values").split()
    return sorted(n.removesuffix(".yaml") for n in names if n.endswith(".yaml"))


CASES = [(rec.version, env) for rec in RECORDS for env in _envs_at(rec.commit)]


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


@contextlib.contextmanager
def steady_load(rel: release.Release) -> Iterator[dict[str, object]]:
    """Hook: a streaming load through the router while the upgrade rolls the engines (target: 0 failures).

    Needs the real node (pods that serve) and the router chart; until they
    land the upgrade runs without load and the figure says so.
    """
    yield {"measured": False, "failed_requests": None}


@pytest.mark.slow
@pytest.mark.parametrize(("version", "env"), CASES, ids=[f"{v}-{e}" for v, e in CASES])
def test_release_upgrades_to_head_with_its_own_values_and_rolls_back(
    version: str, env: str, helm_bin: str, local_cluster: cluster.ClusterInfo, published: dict[str, list[oci.Published]],
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

    name = f"up{version.replace('.', '')}-{env[:14].rstrip('-')}-h{helm_bin[-1]}"
    release.ensure_namespace(name, cluster_name=local_cluster.name)
    manifests = render.render(old / "charts" / "llmops-stack", values, helm=helm_bin, release=name, namespace=name)
    pvs, _prepared, priority_classes = _bind_volumes(local_cluster, name, manifests)
    rel = release.Release(name, name, helm_bin, local_cluster.name)
    url = oci_registry.url("charts")  # type: ignore[attr-defined]
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
        with steady_load(rel):
            try:
                rel.upgrade(UMBRELLA, head_values, timeout=INSTALL_TIMEOUT)
            except release.ReleaseError as exc:
                if "field is immutable" in str(exc):
                    pytest.fail(f"upgrade {version} -> HEAD ({env}) changes an immutable field:\n{exc}")
                raise
            _wait_available(local_cluster, name)
        after = _claims(local_cluster, name)
        assert {c: after.get(c) for c in claims} == claims, "the upgrade deleted or replaced a PersistentVolumeClaim"
        head_version = str(record.chart_meta()["llmops-stack"]["version"])
        assert [h["chart"] for h in rel.history()] == [f"llmops-stack-{version}", f"llmops-stack-{head_version}"]

        rel.rollback(1, timeout=INSTALL_TIMEOUT)
        _wait_available(local_cluster, name)
        history = rel.history()
        assert history[-1]["chart"] == f"llmops-stack-{version}" and history[-1]["status"] == "deployed"
        rolled = _claims(local_cluster, name)
        assert {c: rolled.get(c) for c in claims} == claims, "the rollback deleted or replaced a PersistentVolumeClaim"
    finally:
        if rel.status() is not None:
            rel.uninstall(wait=False)
        cluster.kubectl(local_cluster.name, "delete", "namespace", name, "--wait=false")
        if pvs:
            cluster.kubectl(local_cluster.name, "delete", "pv", *pvs, "--wait=false")
        if priority_classes:
            cluster.kubectl(local_cluster.name, "delete", "priorityclass", *priority_classes, "--ignore-not-found")

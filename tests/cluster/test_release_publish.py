"""Published releases: signed charts pushed to a real OCI registry (CNCF distribution), verified, installed from it.

Release 0.1.0 is rebuilt from its recorded commit (git archive) and the
working tree is published beside it under ``head/``; both are signed with a
key generated for the session (temp GNUPGHOME), pulled back with ``--verify``
by Helm 3 and Helm 4, and the umbrella is installed from ``oci://`` with
``--verify`` on each. A tampered package served with the original
provenance is refused by both.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml

from llmops import cluster, paths
from llmops.cluster import release
from llmops.publish import oci, record, registry, signing

from .conftest import wait_until

FIRST = record.load()[0]


def test_every_chart_of_the_release_is_pushed_with_its_provenance_layer(
    published: dict[str, list[oci.Published]], oci_registry: registry.LocalRegistry
) -> None:
    first = {p.chart: p.version for p in published[FIRST.version]}
    assert first == FIRST.charts, "the packages built from the recorded commit carry the recorded versions"
    for p in published[FIRST.version]:
        layers = oci.manifest(oci_registry.url("charts"), p.chart, p.version)["layers"]
        kinds = sorted(layer["mediaType"] for layer in layers)
        assert kinds == sorted([oci.CHART_MEDIA_TYPE, oci.PROV_MEDIA_TYPE]), f"{p.ref}: {kinds}"


def test_the_release_is_rebuilt_from_its_recorded_commit_not_the_working_tree(
    published: dict[str, list[oci.Published]], tmp_path: Path
) -> None:
    pkg = next(p.package for p in published[FIRST.version] if p.chart == "llmops-stack")
    with tarfile.open(pkg) as tar:
        chart_yaml = tar.extractfile("llmops-stack/Chart.yaml").read().decode()  # type: ignore[union-attr]
        templates = sorted(n.removeprefix("llmops-stack/templates/") for n in tar.getnames()
                           if n.startswith("llmops-stack/templates/"))
    at_commit = record.git("show", f"{FIRST.commit}:charts/llmops-stack/Chart.yaml")
    # helm package re-serialises Chart.yaml (comments go): compare the data.
    assert yaml.safe_load(chart_yaml) == yaml.safe_load(at_commit)
    assert templates == sorted(record.git("ls-tree", "--name-only", f"{FIRST.commit}:charts/llmops-stack/templates").split())


@pytest.mark.parametrize("helm_bin", ["helm3", "helm4"])
def test_both_helm_majors_verify_every_pushed_chart(
    helm_bin: str, published: dict[str, list[oci.Published]], oci_registry: registry.LocalRegistry,
    signing_key: signing.SigningKey, tmp_path: Path
) -> None:
    for where, items in (("charts", published[FIRST.version]), ("head", published["head"])):
        for p in items:
            pulled = oci.pull_verified(oci_registry.url(where), p.chart, p.version, signing_key.public_keyring,
                                       tmp_path / where, helm_bin)
            assert pulled.read_bytes() == p.package.read_bytes()


def _tamper(pkg: Path, dest: Path) -> Path:
    """The same chart name and version with one values line changed, re-packed; the original .prov beside it."""
    out = io.BytesIO()
    with tarfile.open(pkg) as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name.endswith("/values.yaml") and member.name.count("/") == 1:
                data = data + b"\n# injected\n"  # type: ignore[operator]
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    dest.mkdir(parents=True, exist_ok=True)
    bad = dest / pkg.name
    bad.write_bytes(out.getvalue())
    (dest / (pkg.name + ".prov")).write_bytes(pkg.with_name(pkg.name + ".prov").read_bytes())
    return bad


@pytest.mark.parametrize("helm_bin", ["helm3", "helm4"])
def test_a_tampered_package_with_the_original_provenance_fails_verification(
    helm_bin: str, published: dict[str, list[oci.Published]], oci_registry: registry.LocalRegistry,
    signing_key: signing.SigningKey, tmp_path: Path
) -> None:
    original = next(p.package for p in published[FIRST.version] if p.chart == "vllm")
    bad = _tamper(original, tmp_path / "bad")
    with pytest.raises(oci.PublishError, match="sha256 sum does not match"):
        oci.helm(helm_bin, "verify", str(bad), "--keyring", str(signing_key.public_keyring))
    url = oci_registry.url(f"tampered-{helm_bin}")
    oci.push(bad, url)
    with pytest.raises(oci.PublishError, match="sha256 sum does not match"):
        oci.pull_verified(url, "vllm", FIRST.charts["vllm"], signing_key.public_keyring, tmp_path / "pull", helm_bin)
    # A package signed by another key is refused too.
    other = signing.generate(tmp_path / "other-gnupg")
    with pytest.raises(oci.PublishError, match="openpgp|signature|key"):
        oci.pull_verified(oci_registry.url("charts"), "vllm", FIRST.charts["vllm"], other.public_keyring,
                          tmp_path / "other", helm_bin)


def test_install_refuses_a_tampered_umbrella_before_anything_reaches_the_cluster(
    published: dict[str, list[oci.Published]], oci_registry: registry.LocalRegistry,
    signing_key: signing.SigningKey, local_cluster: cluster.ClusterInfo, tmp_path: Path, helm_bin: str
) -> None:
    original = next(p.package for p in published[FIRST.version] if p.chart == "llmops-stack")
    url = oci_registry.url(f"tampered-install-{helm_bin}")
    oci.push(_tamper(original, tmp_path / "bad"), url)
    name = f"tampered-h{helm_bin[-1]}"
    rel = release.Release(name, name, helm_bin, local_cluster.name)
    try:
        with pytest.raises(release.ReleaseError, match="sha256 sum does not match"):
            rel.install(f"{url}/llmops-stack", [paths.VALUES_DIR / "local.yaml"], timeout="2m", chart_args=[
                "--version", FIRST.version, "--verify", "--keyring", str(signing_key.public_keyring),
                *oci.plain_http(url)])
        assert rel.status() is None
    finally:
        cluster.kubectl(local_cluster.name, "delete", "namespace", name, "--wait=false")


def test_the_released_umbrella_installs_from_the_registry_with_its_signature_verified(
    published: dict[str, list[oci.Published]], oci_registry: registry.LocalRegistry,
    signing_key: signing.SigningKey, local_cluster: cluster.ClusterInfo, tmp_path: Path, helm_bin: str
) -> None:
    values = oci.export(FIRST.commit, tmp_path / "src") / "values" / "local.yaml"
    name = f"from-oci-h{helm_bin[-1]}"
    rel = release.Release(name, name, helm_bin, local_cluster.name)
    url = oci_registry.url("charts")
    try:
        out = rel.install(f"{url}/llmops-stack", [values], timeout="3m", chart_args=[
            "--version", FIRST.version, "--verify", "--keyring", str(signing_key.public_keyring), *oci.plain_http(url)])
        assert "STATUS: deployed" in out
        assert rel.history()[-1]["chart"] == f"llmops-stack-{FIRST.version}"
        wait_until("the release's Deployments Available", 120, lambda: not rel.not_ready(), rel.not_ready)
        rel.uninstall(timeout="2m")
    finally:
        if rel.status() is not None:
            rel.uninstall(wait=False)
        cluster.kubectl(local_cluster.name, "delete", "namespace", name, "--wait=false")

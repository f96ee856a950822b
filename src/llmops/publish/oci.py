"""Package every chart of a release (signed), push it to an OCI registry, and verify what the registry serves.

A recorded release is packaged from a ``git archive`` of its commit, so a
past release is rebuilt exactly as it was cut; ``version=None`` packages the
working tree. Signing is Helm provenance (``helm package --sign``): ``helm
push`` uploads the ``.prov`` beside the chart as a layer of the same OCI
artifact, and ``helm pull|install --verify`` fetch and check it. After
pushing, every chart is pulled back with ``--verify`` by each Helm major.

Registry credentials never come from the repository: a registry that needs
them is logged into beforehand (``helm registry login``) and its config file
is passed with ``LLMOPS_REGISTRY_CONFIG``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmops import paths, tools
from llmops.validate import render
from llmops.errors import LlmopsError
from llmops.publish import record
from llmops.publish.signing import SigningKey

ENV_REGISTRY_CONFIG = "LLMOPS_REGISTRY_CONFIG"
PROV_MEDIA_TYPE = "application/vnd.cncf.helm.chart.provenance.v1.prov"
CHART_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
Progress = Callable[[str], None]


class PublishError(LlmopsError):
    exit_code = 1


@dataclass
class Published:
    chart: str
    version: str
    ref: str
    digest: str
    package: Path
    provenance: Path | None


def helm(helm_bin: str, *args: str, timeout: float = 300) -> str:
    env = tools.tool_env()
    argv = [str(tools.require(helm_bin)), *args]
    if os.environ.get(ENV_REGISTRY_CONFIG) and args and args[0] in ("push", "pull", "install", "upgrade", "show"):
        argv += ["--registry-config", os.environ[ENV_REGISTRY_CONFIG]]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise PublishError(f"{helm_bin} {' '.join(args[:2])} failed (exit {proc.returncode}):\n"
                           f"{(proc.stderr or proc.stdout).strip()}")
    return proc.stdout + proc.stderr


def plain_http(url: str) -> list[str]:
    """Loopback registries speak HTTP; anything else gets Helm's default (TLS)."""
    host = url.removeprefix("oci://").split("/")[0]
    return ["--plain-http"] if host.split(":")[0] in ("127.0.0.1", "localhost") else []


def export(commit: str, dest: Path, repo: Path = paths.REPO_ROOT) -> Path:
    """charts/ and values/ of COMMIT (``git archive``) extracted into DEST; returns DEST."""
    full = record.require_commit(commit, repo)
    data = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", full, "charts", "values"],
                          capture_output=True, check=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def source(version: str | None, work: Path, repo: Path = paths.REPO_ROOT) -> Path:
    """The charts/ folder to package: the recorded commit of VERSION, or the working tree (None)."""
    if version is None:
        return repo / "charts"
    rec = record.find(record.load(repo / record.RECORD_FILE.name), version)
    return export(rec.commit, work / f"release-{version}") / "charts"


def package_all(charts_dir: Path, out: Path, *, key: SigningKey | None, helm_bin: str = "helm3",
                progress: Progress = print) -> list[tuple[str, str, Path]]:
    """`helm package [--sign]` every chart under CHARTS_DIR (library charts too: others depend on them).

    Returns (chart name, version, package path) per chart.
    """
    out.mkdir(parents=True, exist_ok=True)
    packages = []
    for name, meta in record.chart_meta(charts_dir).items():
        chart = charts_dir / name
        render.ensure_dependencies(chart, helm_bin)
        helm(helm_bin, "package", str(chart), "--destination", str(out), *(key.helm_args() if key else []))
        pkg = out / f"{meta['name']}-{meta['version']}.tgz"
        if not pkg.exists():
            raise PublishError(f"helm package wrote no {pkg.name}")
        if key and not pkg.with_name(pkg.name + ".prov").exists():
            raise PublishError(f"helm package --sign wrote no {pkg.name}.prov")
        progress(f"packaged {pkg.name}" + (" + .prov" if key else ""))
        packages.append((str(meta["name"]), str(meta["version"]), pkg))
    return packages


def push(pkg: Path, url: str, helm_bin: str = "helm3") -> tuple[str, str]:
    """`helm push` PKG (its .prov rides along when present); returns (ref, digest)."""
    out = helm(helm_bin, "push", str(pkg), url, *plain_http(url))
    ref = re.search(r"Pushed:\s*(\S+)", out)
    digest = re.search(r"Digest:\s*(sha256:[0-9a-f]{64})", out)
    if not ref or not digest:
        raise PublishError(f"helm push printed no ref/digest:\n{out}")
    return ref.group(1), digest.group(1)


def exists(url: str, chart: str, version: str, helm_bin: str = "helm3") -> bool:
    """Whether URL already serves CHART at VERSION (`helm show chart`)."""
    try:
        helm(helm_bin, "show", "chart", f"{url}/{chart}", "--version", version, *plain_http(url), timeout=60)
    except PublishError:
        return False
    return True


def pull_verified(url: str, chart: str, version: str, keyring: Path, dest: Path, helm_bin: str = "helm3") -> Path:
    """`helm pull --verify` CHART VERSION from URL into DEST; raises PublishError when verification fails."""
    dest.mkdir(parents=True, exist_ok=True)
    helm(helm_bin, "pull", f"{url}/{chart}", "--version", version, "--verify", "--keyring", str(keyring),
         "--destination", str(dest), *plain_http(url))
    return dest / f"{chart}-{version}.tgz"


def manifest(url: str, chart: str, version: str) -> dict:  # type: ignore[type-arg]
    """The OCI manifest the registry serves for CHART:VERSION (loopback HTTP registries only)."""
    host, _, path = url.removeprefix("oci://").partition("/")
    req = urllib.request.Request(f"http://{host}/v2/{path}/{chart}/manifests/{version}",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        data: dict = json.loads(resp.read())  # type: ignore[type-arg]
        return data


def publish(url: str, *, version: str | None, key: SigningKey | None, helm_bin: str = "helm3",
            verify_with: Sequence[str] = ("helm3", "helm4"), work: Path | None = None,
            progress: Progress = print) -> list[Published]:
    """Package (signed when KEY is given), push to URL, pull back and verify with each Helm of VERIFY_WITH."""
    if version is None:
        # The tree is publishable only when it obeys the version rule: then a chart still at a
        # released version has exactly that release's content.
        problems = record.version_problems()
        if problems:
            raise PublishError("the working tree breaks the version rule; cut a release first:\n" + "\n".join(problems))
    own_tmp = work is None
    work = work or Path(tempfile.mkdtemp(prefix="llmops-publish-"))
    try:
        charts_dir = source(version, work)
        label = f"release {version}" if version else "the working tree"
        progress(f"packaging {label} from {charts_dir}")
        packages = package_all(charts_dir, work / "packages" / (version or "tree"), key=key, helm_bin=helm_bin,
                               progress=progress)
        published = []
        for name, ver, pkg in packages:
            if exists(url, name, ver, helm_bin):
                # A published tag never moves: users may have pinned its digest.
                progress(f"skipped {name} {ver}: already in {url}")
                continue
            ref, digest = push(pkg, url, helm_bin)
            prov = pkg.with_name(pkg.name + ".prov")
            published.append(Published(name, ver, ref, digest, pkg, prov if prov.exists() else None))
            progress(f"pushed {ref} {digest[:19]}")
        if key:
            for hb in verify_with:
                for p in published:
                    pull_verified(url, p.chart, p.version, key.public_keyring, work / "verify" / hb, hb)
                progress(f"verified {len(published)} charts from {url} with {hb} pull --verify")
        return published
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)

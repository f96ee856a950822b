"""Render charts with the pinned Helm 3 or Helm 4 and parse the manifests.

Renders are memoised on (helm, chart content, values content, options), so a
test suite that asks for the same render many times pays for it once.
"""

from __future__ import annotations

import copy as copy_module
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops import paths, tools
from llmops.errors import LlmopsError
from llmops.loadtest import chartfiles

HELM_VERSIONS = ("helm3", "helm4")


class RenderError(LlmopsError):
    """helm template failed; the message carries helm's own error text."""

    exit_code = 1

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


@dataclass(frozen=True)
class Manifest:
    """One rendered object, with the template file it came from."""

    obj: dict[str, Any]
    source: str

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.obj.get("metadata", {}).get("name", ""))


def chart_path(chart: str | Path) -> Path:
    p = Path(chart)
    return p if p.is_absolute() or p.exists() else paths.CHARTS_DIR / chart


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and not f.name.endswith(".tgz"):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _local_dependencies(chart: Path) -> list[Path]:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    deps = []
    for dep in meta.get("dependencies") or []:
        repo = str(dep.get("repository", ""))
        if repo.startswith("file://"):
            deps.append((chart / repo.removeprefix("file://")).resolve())
    return deps


def ensure_dependencies(chart: str | Path, helm: str = "helm3") -> None:
    """Prepare CHART for Helm: generated files (loadtest), then `helm dependency update` if local deps changed.

    A stamp in charts/<chart>/charts/ records a digest of every local
    dependency, so an unchanged tree costs one hash and no helm call.
    """
    chart = chart_path(chart)
    if chart.name == chartfiles.CHART and (chart / "Chart.yaml").is_file():
        # The loadtest chart's files/ are generated from the repository (a build step, not tracked).
        chartfiles.generate(chart)
    deps = _local_dependencies(chart)
    if not deps:
        return
    for dep in deps:
        ensure_dependencies(dep, helm)
    digest = hashlib.sha256("".join(_tree_digest(d) for d in deps).encode()).hexdigest()
    stamp = chart / "charts" / ".deps-digest"

    def up_to_date() -> bool:
        # The archives must be there too: a stamp alone (copied, or committed
        # by mistake) must never hide a missing dependency.
        archives_present = all(any((chart / "charts").glob(f"{d.name}-*.tgz")) for d in deps)
        return archives_present and stamp.exists() and stamp.read_text() == digest

    if up_to_date():
        return
    # pytest-xdist workers (and parallel CLI runs) render at the same time: one
    # rebuilds charts/<chart>/charts while the others wait, then see the stamp.
    with paths.cache_lock(hashlib.sha256(str(chart.resolve()).encode()).hexdigest()[:16]):
        if up_to_date():
            return
        _dependency_update(chart, helm)
        stamp.write_text(digest)


def _dependency_update(chart: Path, helm: str) -> None:
    proc = subprocess.run(
        # `update`, not `build`: a Chart.lock left from before a dependency was
        # added makes `build` fail ("out of sync"); all ours are file:// anyway.
        [str(tools.require(helm)), "dependency", "update", "--skip-refresh", str(chart)],
        capture_output=True,
        text=True,
        env=tools.tool_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise RenderError(f"helm dependency update {chart} failed:\n{proc.stderr.strip()}", proc.stderr)


_CACHE: dict[str, list[Manifest]] = {}


def render(
    chart: str | Path,
    values: Sequence[str | Path] = (),
    *,
    helm: str = "helm3",
    release: str = "llmops",
    namespace: str = "llmops",
    set_values: dict[str, Any] | None = None,
    extra_args: Iterable[str] = (),
    kube_version: str | None = None,
) -> list[Manifest]:
    """`helm template` CHART with VALUES files (and ``set_values`` as one more values file)."""
    chart = chart_path(chart)
    ensure_dependencies(chart, helm)
    files = [Path(v) for v in values]
    tmp: Path | None = None
    if set_values:
        fd, name = tempfile.mkstemp(suffix=".yaml", prefix="llmops-set-")
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(set_values, fh)
        tmp = Path(name)
        files.append(tmp)
    extra = list(extra_args)
    if kube_version:
        extra += ["--kube-version", kube_version]
    key = hashlib.sha256(
        "\0".join(
            [helm, _tree_digest(chart), release, namespace, *extra]
            + [f.read_text() for f in files]
        ).encode()
    ).hexdigest()
    try:
        if key not in _CACHE:
            _CACHE[key] = _helm_template(helm, chart, files, release, namespace, extra)
        return list(_CACHE[key])
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _helm_template(
    helm: str, chart: Path, files: list[Path], release: str, namespace: str, extra: list[str]
) -> list[Manifest]:
    argv = [str(tools.require(helm)), "template", release, str(chart), "--namespace", namespace, *extra]
    for f in files:
        argv += ["--values", str(f)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=tools.tool_env(), check=False)
    if proc.returncode != 0:
        raise RenderError(proc.stderr.strip() or f"helm template exited {proc.returncode}", proc.stderr)
    return parse_manifests(proc.stdout)


# A template that prints .Values: what Helm computed from the chart's defaults,
# its subcharts' defaults (under their aliases, globals copied in) and the
# values files, exactly as every other template of the chart sees them.
_VALUES_TEMPLATE = "templates/zz-llmops-computed-values.yaml"


def computed_values(
    chart: str | Path,
    values: Sequence[str | Path] = (),
    *,
    helm: str = "helm3",
    set_values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The values Helm renders CHART with, asked from Helm itself.

    A temporary copy of the chart gets one extra template, ``{{ toJson .Values }}``,
    rendered alone with ``--show-only``. Helm validates values.schema.json
    and runs the chart's validateValues before printing anything, so this is
    for values Helm accepts; ``values_schema`` explains the ones it refuses.
    """
    chart = chart_path(chart)
    ensure_dependencies(chart, helm)
    files = [Path(v) for v in values]
    overlay = yaml.safe_dump(set_values) if set_values else ""
    key = hashlib.sha256("\0".join([helm, _tree_digest(chart), overlay, *(f.read_text() for f in files)]).encode()).hexdigest()
    if key not in _VALUES_CACHE:
        with tempfile.TemporaryDirectory(prefix="llmops-values-") as tmp:
            copy = Path(tmp) / chart.name
            shutil.copytree(chart, copy, symlinks=True)
            (copy / _VALUES_TEMPLATE).write_text("{{ toJson .Values }}\n")
            if overlay:
                files.append(Path(tmp) / "set-values.yaml")
                files[-1].write_text(overlay)
            manifests = _helm_template(helm, copy, files, "llmops", "llmops", ["--show-only", _VALUES_TEMPLATE])
        if len(manifests) != 1:
            raise RenderError(f"helm printed {len(manifests)} documents for {_VALUES_TEMPLATE}, expected 1", "")
        _VALUES_CACHE[key] = manifests[0].obj
    return copy_module.deepcopy(_VALUES_CACHE[key])


_VALUES_CACHE: dict[str, dict[str, Any]] = {}


def parse_manifests(text: str) -> list[Manifest]:
    """Split `helm template` output into objects, keeping the `# Source:` of each."""
    manifests: list[Manifest] = []
    for doc in text.split("\n---"):
        source = ""
        for line in doc.splitlines():
            if line.startswith("# Source: "):
                source = line.removeprefix("# Source: ").strip()
                break
        obj = yaml.safe_load(doc)
        if isinstance(obj, dict) and obj:
            manifests.append(Manifest(obj, source))
    return manifests


def find_one(manifests: Iterable[Manifest], kind: str) -> dict[str, Any]:
    """The single object of KIND; fails naming what was rendered instead."""
    objs = find(manifests, kind)
    assert len(objs) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in objs]}"
    return objs[0]


def find(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects of KIND (and NAME, if given)."""
    return [m.obj for m in manifests if m.kind == kind and (name is None or m.name == name)]

"""Air-gap bundle: one archive with everything an offline cluster needs to install one environment.

``llmops bundle --values values/air-gapped.yaml -o FILE`` writes a tar.gz:

- ``charts/``: every chart packaged (signed ``.prov`` beside each when a key
  is configured, see ``llmops.publish.signing``);
- ``values/``: the values files given, in order;
- ``bundle.json``: suite version, charts (file, version, sha256), every
  container image the environment runs (rendered from the bundled umbrella
  with those values, hooks and init containers included) with its digest,
  and the model files to pre-stage (per model and LoRA adapter: the source
  and where it must be when the cluster has no egress);
- ``SHA256SUMS`` over every other file.

``llmops bundle verify FILE`` checks it offline: checksums, every chart's
provenance against a public keyring (``--keyring`` or
``LLMOPS_VERIFY_KEYRING``; the trust anchor never comes from the bundle),
every image pinned by digest, and that the image list is exactly what the
bundled umbrella renders with the bundled values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from llmops.validate import render
from llmops.engine.engine_args import resolved_models
from llmops.errors import LlmopsError
from llmops.publish import oci, record
from llmops.publish.signing import SigningKey

FORMAT = 1
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
PLACEHOLDER = "@sha256:" + "0" * 64
Progress = Callable[[str], None]


class BundleError(LlmopsError):
    exit_code = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def images(manifests: Sequence[render.Manifest]) -> list[dict[str, Any]]:
    """Every container image of the rendered objects: image, digest (or None), and the objects that run it."""
    found: dict[str, set[str]] = {}
    for m in manifests:
        spec = m.obj.get("spec") or {}
        if m.kind == "Pod":
            pod = spec
        elif m.kind == "CronJob":
            pod = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
        else:
            pod = spec.get("template", {}).get("spec", {}) if isinstance(spec.get("template"), dict) else {}
        for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            found.setdefault(str(c["image"]), set()).add(f"{m.kind}/{m.name}")
    out = []
    for image, users in sorted(found.items()):
        digest = image.rsplit("@", 1)[1] if DIGEST.search(image) else None
        out.append({"image": image, "digest": digest, "usedBy": sorted(users)})
    return out


def models(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The model files to pre-stage: every model and LoRA adapter source of the effective vllm values."""
    out = []
    for m in resolved_models(values):
        entries = [(str(m["name"]), str(m.get("source", "")), "model")]
        entries += [(f"{m['name']}/{a.get('name')}", str(a.get("source", "")), "lora") for a in m.get("loraAdapters") or []]
        for name, source, kind in entries:
            scheme, _, rest = source.partition("://")
            item: dict[str, Any] = {"name": name, "kind": kind, "source": source, "scheme": scheme}
            if scheme == "pvc":
                claim, _, sub = rest.partition("/")
                item["stage"] = f"copy the model files into PersistentVolumeClaim {claim} at /{sub}"
            elif scheme == "hf":
                repo, _, revision = rest.partition("@")
                item["stage"] = (f"download {repo} at revision {revision or 'main'} and serve it from a pvc:// "
                                 "source (the cluster has no egress)")
            else:
                item["stage"] = f"copy {source} into a claim and serve it from a pvc:// source"
            out.append(item)
    return out


def render_package(package: Path, values: Sequence[Path], helm_bin: str = "helm3") -> list[render.Manifest]:
    """`helm template` of a packaged chart (.tgz, dependencies inside) with VALUES."""
    argv = ["template", "llmops", str(package), "--namespace", "llmops"]
    for v in values:
        argv += ["--values", str(v)]
    return render.parse_manifests(_stdout(helm_bin, argv))


def _stdout(helm_bin: str, argv: list[str]) -> str:
    import subprocess

    from llmops import tools

    proc = subprocess.run([str(tools.require(helm_bin)), *argv], capture_output=True, text=True,
                          env=tools.tool_env(), check=False)
    if proc.returncode != 0:
        raise render.RenderError(proc.stderr.strip(), proc.stderr)
    return proc.stdout


def _effective_vllm(charts_dir: Path, values: Sequence[Path], helm_bin: str) -> dict[str, Any]:
    """The umbrella's ``vllm`` values as Helm computes them for VALUES (defaults, files, coalesced by Helm)."""
    section = render.computed_values(charts_dir / "llmops-stack", values, helm=helm_bin).get("vllm")
    return dict(section) if isinstance(section, dict) else {}


def create(out: Path, values: Sequence[Path], *, key: SigningKey | None, version: str | None = None,
           helm_bin: str = "helm3", progress: Progress = print) -> dict[str, Any]:
    if not values:
        raise BundleError("give the environment's values files (--values values/air-gapped.yaml ...)")
    with tempfile.TemporaryDirectory(prefix="llmops-bundle-") as tmp:
        work = Path(tmp)
        charts_dir = oci.source(version, work / "src")
        stage = work / "bundle"
        packages = oci.package_all(charts_dir, stage / "charts", key=key, helm_bin=helm_bin, progress=progress)
        (stage / "values").mkdir(parents=True)
        bundled_values = []
        for i, v in enumerate(values):
            dst = stage / "values" / f"{i:02d}-{Path(v).name}"
            shutil.copyfile(v, dst)
            bundled_values.append(dst)
        umbrella = next(p for n, _v, p in packages if n == record.SUITE_CHART)
        try:
            manifests = render_package(umbrella, bundled_values, helm_bin)
        except render.RenderError as exc:
            # The charts refuse placeholder digests and every other bad value with the values path.
            raise BundleError(f"the bundled umbrella does not render with these values:\n{exc}") from exc
        imgs = images(manifests)
        unpinned = [i["image"] for i in imgs if not i["digest"]]
        placeholders = [i["image"] for i in imgs if i["image"].endswith(PLACEHOLDER)]
        if unpinned or placeholders:
            parts = ([f"no digest: {', '.join(unpinned)}"] if unpinned else []) + (
                [f"placeholder digest: {', '.join(placeholders)}"] if placeholders else [])
            raise BundleError("an air-gap bundle needs every image pinned by a real digest (set the digests of "
                              "your mirrored images in the values); " + "; ".join(parts))
        meta = {
            "format": FORMAT,
            "suite": next(v for n, v, _p in packages if n == record.SUITE_CHART),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "source": f"release {version}" if version else "working tree",
            "signed": key is not None,
            "signKey": key.fingerprint if key and key.fingerprint else None,
            "charts": [{"name": n, "version": v, "file": f"charts/{p.name}", "sha256": _sha256(p),
                        "provenance": f"charts/{p.name}.prov" if key else None} for n, v, p in packages],
            "values": [f"values/{p.name}" for p in bundled_values],
            "images": imgs,
            "models": models(_effective_vllm(charts_dir, bundled_values, helm_bin)),
        }
        (stage / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
        sums = [f"{_sha256(f)}  {f.relative_to(stage)}" for f in sorted(stage.rglob("*")) if f.is_file()]
        (stage / "SHA256SUMS").write_text("\n".join(sums) + "\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(out, "w:gz") as tar:
            tar.add(stage, arcname="llmops-bundle")
        progress(f"wrote {out}: {len(packages)} charts, {len(imgs)} images, {len(meta['models'])} model sources")
        return meta


def verify(bundle: Path, keyring: Path | None, helm_bin: str = "helm3") -> list[str]:
    """Problems found in BUNDLE, offline ([] = valid)."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="llmops-bundle-verify-") as tmp:
        with tarfile.open(bundle) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / "llmops-bundle"
        sums = {}
        for line in (root / "SHA256SUMS").read_text().splitlines():
            digest, _, name = line.partition("  ")
            sums[name] = digest
        present = {str(f.relative_to(root)) for f in root.rglob("*") if f.is_file()} - {"SHA256SUMS"}
        for name in sorted(present - set(sums)):
            problems.append(f"{name}: not listed in SHA256SUMS")
        for name, digest in sorted(sums.items()):
            if name not in present:
                problems.append(f"{name}: listed in SHA256SUMS but missing")
            elif _sha256(root / name) != digest:
                problems.append(f"{name}: checksum mismatch")
        meta = json.loads((root / "bundle.json").read_text())
        for chart in meta["charts"]:
            if chart["provenance"] is None:
                problems.append(f"{chart['file']}: not signed")
            elif keyring is None:
                problems.append("no public keyring to verify the charts with (--keyring or LLMOPS_VERIFY_KEYRING)")
                break
            else:
                try:
                    oci.helm(helm_bin, "verify", str(root / chart["file"]), "--keyring", str(keyring))
                except oci.PublishError as exc:
                    problems.append(f"{chart['file']}: provenance does not verify: {str(exc).splitlines()[-1]}")
        for img in meta["images"]:
            if not img.get("digest") or not DIGEST.search(img["image"]):
                problems.append(f"image {img['image']}: not pinned by digest")
        umbrella = next((root / c["file"] for c in meta["charts"] if c["name"] == record.SUITE_CHART), None)
        if umbrella is None:
            problems.append(f"no {record.SUITE_CHART} chart in the bundle")
        elif not problems:
            rendered = images(render_package(umbrella, [root / v for v in meta["values"]], helm_bin))
            if [i["image"] for i in rendered] != [i["image"] for i in meta["images"]]:
                problems.append("the image list differs from what the bundled chart renders with the bundled values")
        if not meta.get("models"):
            problems.append("bundle.json lists no model files to pre-stage")
    return problems

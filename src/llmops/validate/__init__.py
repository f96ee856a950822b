"""`llmops validate`: values -> schema -> render (Helm 3 and 4) -> Kubernetes/CRD schemas -> cross-object checks.

One *target* is one environment: an ordered list of values files layered on
the umbrella chart's defaults. For each target:

1. the values are checked against the umbrella's and every enabled
   subchart's values.schema.json (``llmops.validate.values_schema``), all errors at
   once with file and line;
2. the chart is rendered with every pinned Helm major, in parallel; the
   majors must agree on what they render;
3. every rendered object is checked against the Kubernetes OpenAPI schema
   of each supported minor (``llmops.validate.kubeschema``) and every custom resource
   against its operator's pinned CRD (``llmops.validate.crds``);
4. cross-object checks run over the render (``llmops.validate.crosscheck``).

A target whose values fail step 1 is not rendered: Helm would reject the
same values with a less precise message (``render_invalid=True`` renders
anyway, which the bad-values corpus uses to prove Helm rejects them too).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops import paths
from llmops.validate import crds, crosscheck, kubeschema, render, values_schema
from llmops.errors import LlmopsError

Progress = Callable[[str], None]


class ValidationFailed(LlmopsError):
    exit_code = 1


@dataclass(frozen=True)
class Target:
    name: str
    files: tuple[Path, ...]


@dataclass
class Problem:
    """One error of one target, whatever step found it."""

    step: str  # values | render | kubernetes | crd | crosscheck
    where: str  # file:line, helm version, or Kind/namespace/name
    path: str  # values path or object path ("" when not applicable)
    message: str

    def __str__(self) -> str:
        path = f" {self.path}:" if self.path else ""
        return f"[{self.step}] {self.where}:{path} {self.message}"


@dataclass
class TargetResult:
    target: Target
    problems: list[Problem] = field(default_factory=list)
    render_errors: dict[str, str] = field(default_factory=dict)  # helm -> stderr
    manifests: dict[str, list[render.Manifest]] = field(default_factory=dict)
    steps: dict[str, str] = field(default_factory=dict)  # step -> ok | failed | skipped: why
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.target.name,
            "files": [_rel(f) for f in self.target.files],
            "ok": self.ok,
            "steps": self.steps,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "problems": [vars(p) for p in self.problems],
            "objects": {h: len(m) for h, m in self.manifests.items()},
        }


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(paths.REPO_ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- targets


def env_file(name: str) -> Path:
    p = paths.VALUES_DIR / f"{name}.yaml"
    if not p.exists():
        have = ", ".join(environments()) or "none"
        raise LlmopsError(f"no environment {name!r}: {_rel(p)} does not exist (environments: {have})")
    return p


def environments() -> list[str]:
    """Every environment: values/*.yaml, by name."""
    return sorted(p.stem for p in paths.VALUES_DIR.glob("*.yaml"))


def targets_from(envs: Sequence[str] = (), files: Sequence[str] = (), all_envs: bool = False,
                 overlays: Sequence[str | Path] = ()) -> list[Target]:
    """--env NAME (one target each), -f FILE... (one layered target), --all (every environment).

    OVERLAYS (--overlay FILE) are layered last onto every target, e.g. real
    image digests over the placeholders of the shipped production files.
    """
    missing_overlays = [str(f) for f in overlays if not Path(f).exists()]
    if missing_overlays:
        raise LlmopsError(f"overlay file(s) not found: {', '.join(missing_overlays)}")
    out = _targets(envs, files, all_envs)
    extra = tuple(Path(f) for f in overlays)
    return [Target(t.name, t.files + extra) for t in out] if extra else out


def _targets(envs: Sequence[str], files: Sequence[str], all_envs: bool) -> list[Target]:
    out: list[Target] = []
    names = list(environments()) if all_envs else []
    names += [e for e in envs if e not in names]
    out += [Target(n, (env_file(n),)) for n in names]
    if files:
        missing = [f for f in files if not Path(f).exists()]
        if missing:
            raise LlmopsError(f"values file(s) not found: {', '.join(missing)}")
        out.append(Target("+".join(Path(f).stem for f in files), tuple(Path(f) for f in files)))
    if not out:
        raise LlmopsError("nothing to validate: give --env NAME, -f FILE or --all")
    return out


# --------------------------------------------------------------------------- steps


def _values_step(result: TargetResult, chart: str) -> None:
    started = time.monotonic()
    errors = values_schema.validate_files(list(result.target.files), chart)
    result.problems += [Problem("values", f"{e.file}:{e.line}", e.path, f"{e.problem}" + (f" ({e.allowed})" if e.allowed else "")) for e in errors]
    result.steps["values"] = "failed" if errors else "ok"
    result.seconds["values"] = time.monotonic() - started


def _normalise(value: Any) -> Any:
    # Helm 3 and 4 differ in whether toYaml output ends with a newline; a YAML
    # or text payload means the same either way, so trailing whitespace is not a divergence.
    if isinstance(value, str):
        return value.rstrip()
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return path or "(object)"


def _divergence(first: list[render.Manifest], other: list[render.Manifest]) -> str | None:
    a = {(m.kind, m.name): _normalise(m.obj) for m in first}
    b = {(m.kind, m.name): _normalise(m.obj) for m in other}
    if set(a) != set(b):
        return f"different objects: {sorted(set(a) ^ set(b))}"
    for key in sorted(a):
        if a[key] != b[key]:
            return f"{key[0]}/{key[1]} differs at {_first_difference(a[key], b[key])}"
    return None


# One problem of a chart's validateValues message: "- vllm.models[0].name: what is wrong".
_RULE_LINE = re.compile(r"^\s*-\s+((?:global|[a-z][A-Za-z0-9]*)(?:\.[A-Za-z0-9_-]+|\[\d+\])*):\s+(.+)$")


def _render_problems(errors: dict[str, str], files: Sequence[Path], chart: str) -> list[Problem]:
    """Helm failures as problems; chart-rule lines that name a values path are located at file:line.

    When every Helm major reports the same rules, each is listed once.
    """
    parsed = {h: [m.groups() for line in text.splitlines() if (m := _RULE_LINE.match(line))] for h, text in errors.items()}
    problems: list[Problem] = []
    if parsed and all(parsed.values()) and len({tuple(v) for v in parsed.values()}) == 1:
        helms = ", ".join(errors)
        for path, message in next(iter(parsed.values())):
            file, line = values_schema.locate(path, files, chart)
            problems.append(Problem("render", f"{file}:{line}", path, f"{message} (chart rule; {helms})"))
        return problems
    return [Problem("render", h, "", text) for h, text in errors.items()]


def _render_step(result: TargetResult, chart: str, helms: Sequence[str], release: str, namespace: str,
                 pool: ThreadPoolExecutor) -> None:
    started = time.monotonic()
    futures = {
        h: pool.submit(render.render, chart, list(result.target.files), helm=h, release=release, namespace=namespace)
        for h in helms
    }
    for h, fut in futures.items():
        try:
            result.manifests[h] = fut.result()
        except render.RenderError as exc:
            result.render_errors[h] = str(exc)
    result.problems += _render_problems(result.render_errors, result.target.files, chart)
    if len(result.manifests) > 1:
        first, *rest = list(result.manifests)
        for other in rest:
            diff = _divergence(result.manifests[first], result.manifests[other])
            if diff:
                result.problems.append(Problem("render", f"{first} vs {other}", "", f"Helm majors render differently: {diff}"))
    result.steps["render"] = "failed" if result.render_errors else "ok"
    result.seconds["render"] = time.monotonic() - started


def _schema_steps(result: TargetResult, kube_versions: Sequence[str]) -> None:
    if not result.manifests:
        result.steps["kubernetes"] = result.steps["crd"] = "skipped: nothing rendered"
        return
    manifests = next(iter(result.manifests.values()))
    started = time.monotonic()
    kfind = kubeschema.validate_objects([m.obj for m in manifests], kube_versions)
    result.problems += [Problem("kubernetes", f"{f.kind}/{f.name}", f.path, f"Kubernetes {f.version}: {f.message}") for f in kfind]
    result.steps["kubernetes"] = "failed" if kfind else "ok"
    result.seconds["kubernetes"] = time.monotonic() - started
    started = time.monotonic()
    cfind = crds.validate_custom_resources(manifests)
    pinned = set(crds.target_groups())
    unpinned = [
        m for m in manifests
        if kubeschema.is_custom_resource(m.obj) and str(m.obj.get("apiVersion", "")).rpartition("/")[0] not in pinned
    ]
    result.problems += [Problem("crd", f"{f.kind}/{f.name}", f.path, f"{f.version}: {f.message}") for f in cfind]
    result.problems += [
        Problem("crd", f"{m.kind}/{m.name}", "",
                f"no pinned CRD for {m.obj.get('apiVersion')}; add it to [tool.llmops.crds] in pyproject.toml")
        for m in unpinned
    ]
    result.steps["crd"] = "failed" if (cfind or unpinned) else "ok"
    result.seconds["crd"] = time.monotonic() - started


def _cross_step(result: TargetResult, namespace: str) -> None:
    if not result.manifests:
        result.steps["crosscheck"] = "skipped: nothing rendered"
        return
    started = time.monotonic()
    found = crosscheck.crosscheck(next(iter(result.manifests.values())), namespace)
    result.problems += [Problem("crosscheck", f.resource, f.check, f.message) for f in found]
    result.steps["crosscheck"] = "failed" if found else "ok"
    result.seconds["crosscheck"] = time.monotonic() - started


def validate(
    targets: Sequence[Target],
    *,
    chart: str = values_schema.UMBRELLA,
    helms: Sequence[str] = render.HELM_VERSIONS,
    kube_versions: Sequence[str] = kubeschema.DEFAULT_VERSIONS,
    release: str = "llmops",
    namespace: str = "llmops",
    render_invalid: bool = False,
    progress: Progress = lambda _m: None,
) -> list[TargetResult]:
    """Run steps 1-4 for every target; renders of all targets and Helm majors share one thread pool."""
    render.ensure_dependencies(chart, helms[0])
    results = [TargetResult(t) for t in targets]
    with ThreadPoolExecutor(max_workers=max(2, len(helms))) as pool:
        for r in results:
            _values_step(r, chart)
            progress(f"{r.target.name}: values {r.steps['values']} ({r.seconds['values']:.2f}s)")
        # Helm runs are subprocesses: threads overlap them (and our Python work) on both cores.
        def later(r: TargetResult) -> TargetResult:
            if r.steps["values"] != "ok" and not render_invalid:
                r.steps["render"] = "skipped: values invalid"
                r.steps["kubernetes"] = r.steps["crd"] = r.steps["crosscheck"] = "skipped: values invalid"
                return r
            _render_step(r, chart, helms, release, namespace, pool)
            progress(f"{r.target.name}: render {r.steps['render']} with {', '.join(helms)} ({r.seconds['render']:.2f}s)")
            _schema_steps(r, kube_versions)
            _cross_step(r, namespace)
            progress(f"{r.target.name}: kubernetes {r.steps['kubernetes']}, crd {r.steps['crd']}, "
                     f"crosscheck {r.steps['crosscheck']}")
            return r

        with ThreadPoolExecutor(max_workers=2) as outer:
            results = list(outer.map(later, results))
    return results


# --------------------------------------------------------------------------- output


def format_text(results: Sequence[TargetResult]) -> str:
    lines = []
    for r in results:
        status = "ok" if r.ok else f"INVALID ({len(r.problems)} problem(s))"
        lines.append(f"{r.target.name} [{', '.join(_rel(f) for f in r.target.files)}]: {status}")
        for p in r.problems:
            if p.step == "values" or (p.step == "render" and p.path):
                lines.append(f"  {p.where}: {p.path}: {p.message}")
            else:
                lines.extend("  " + line for line in str(p).splitlines())
    bad = sum(1 for r in results if not r.ok)
    lines.append(f"{len(results) - bad}/{len(results)} target(s) valid")
    return "\n".join(lines)


def format_json(results: Sequence[TargetResult]) -> str:
    return json.dumps({"ok": all(r.ok for r in results), "targets": [r.as_dict() for r in results]}, indent=2)


def demo_step(args: Any) -> str:
    """`llmops demo` step 1: validate the demo's values file (raises when invalid)."""
    results = validate(targets_from(files=[args.values]), progress=lambda m: print(f"  {m}", file=sys.stderr))
    if not results[0].ok:
        raise ValidationFailed(format_text(results))
    objects = len(next(iter(results[0].manifests.values()), []))
    return f"({objects} objects valid with Helm 3 and 4, Kubernetes {', '.join(kubeschema.DEFAULT_VERSIONS)})"

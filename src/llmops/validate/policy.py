"""`llmops policy`: checkov (built-in + our checks in policies/checks) over every environment's render.

One checkov process scans all environments: each environment's manifests go
into one file ``<env>.yaml`` in a temporary folder, scanned with
``--framework kubernetes`` (checkov's helm framework silently drops a chart
when helm writes anything to stderr, so we render ourselves). Before writing,
each object gets the release namespace if it has none, and annotations with
what the checks need from the values: ``policy.llmops.io/environment``
(``global.environment``, read by the production-only check) and
``policy.llmops.io/gpu-resource`` / ``gpu-taint`` (``global.gpu``). The scanned copy is never applied.

Checks that need a whole environment at once (a checkov check sees one object)
run here in Python over the same render and land in the same reports:

- CKV_LLMOPS_8: every pod template is selected by a NetworkPolicy for
  ingress and for egress in its namespace.

Exceptions (``policies/exceptions.yaml``) turn a failure into a documented
"excepted" result; every entry needs a reason, and entries that match
nothing are reported as stale. Reports: text summary, JSON, JUnit XML and
SARIF under ``--report-dir``; checkov's own writers produce the JUnit XML and
SARIF (an exception is checkov's "skipped" with the reason as its comment).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import paths, tools
from llmops.validate import crosscheck, render, values_schema
from llmops.errors import LlmopsError, ToolError
from llmops.validate import Target

ENV_ANNOTATION = "policy.llmops.io/environment"
GPU_RESOURCE_ANNOTATION = "policy.llmops.io/gpu-resource"
GPU_TAINT_ANNOTATION = "policy.llmops.io/gpu-taint"
CHECKS_DIR = paths.POLICIES_DIR / "checks"
EXCEPTIONS_FILE = paths.POLICIES_DIR / "exceptions.yaml"
DEFAULT_REPORT_DIR = paths.REPO_ROOT / "reports" / "policy"

Progress = Callable[[str], None]

# Built-in checks we do not run, with the reason printed in every summary.
SUPERSEDED = {
    "CKV2_K8S_6": "superseded by CKV_LLMOPS_8: checkov's graph links objects across every file of the scan, "
    "so one environment's NetworkPolicies would cover another environment's pods",
}

# Checks computed in Python over a whole environment (id -> title).
PYTHON_CHECKS = {
    "CKV_LLMOPS_8": "Every pod is selected by a NetworkPolicy for ingress and egress",
}


@dataclass
class Result:
    """One check on one resource in one environment."""

    check_id: str
    check_name: str
    env: str
    resource: str  # Kind/namespace/name (Kind/name when cluster-scoped)
    status: str  # passed | failed | excepted
    details: list[str] = field(default_factory=list)
    source: str = ""  # chart template that rendered the resource
    reason: str = ""  # exception reason when excepted
    guideline: str = ""


@dataclass(frozen=True)
class PolicyException:
    check: str
    resource: str  # glob over Kind/namespace/name
    reason: str
    envs: tuple[str, ...] = ()
    line: int = 0

    def matches(self, r: Result) -> bool:
        return (
            fnmatch.fnmatchcase(r.check_id, self.check)
            and fnmatch.fnmatchcase(r.resource, self.resource)
            and (not self.envs or r.env in self.envs)
        )


@dataclass
class PolicyReport:
    results: list[Result]
    envs: list[str]
    resources_scanned: int
    stale_exceptions: list[PolicyException]
    seconds: dict[str, float]

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed


# --------------------------------------------------------------------------- exceptions


def load_exceptions(path: Path = EXCEPTIONS_FILE) -> list[PolicyException]:
    """Read the reviewed exceptions; an entry without a reason (or check/resource) is an error."""
    if not path.exists():
        return []
    from llmops.validate.yamlpos import load

    doc = load(path)
    entries = (doc.data or {}).get("exceptions") if isinstance(doc.data, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise LlmopsError(f"{path}: `exceptions` must be a list of {{check, resource, reason}}")
    out = []
    problems = []
    for i, e in enumerate(entries):
        line = doc.lines.get(("exceptions", i), 0)
        if not isinstance(e, dict):
            problems.append(f"{path}:{line}: exceptions[{i}] must be a map")
            continue
        unknown = set(e) - {"check", "resource", "reason", "envs"}
        missing = [k for k in ("check", "resource", "reason") if not str(e.get(k) or "").strip()]
        if missing:
            problems.append(f"{path}:{line}: exceptions[{i}] needs {', '.join(missing)} "
                            "(every exception says which check, which resource, and why)")
        if unknown:
            problems.append(f"{path}:{line}: exceptions[{i}] has unknown key(s) {', '.join(sorted(unknown))} "
                            "(allowed: check, resource, reason, envs)")
        if missing or unknown:
            continue
        envs = e.get("envs") or []
        out.append(PolicyException(str(e["check"]), str(e["resource"]), str(e["reason"]).strip(),
                                   tuple(str(x) for x in envs), line))
    if problems:
        raise LlmopsError("invalid policy exceptions:\n" + "\n".join(problems))
    return out


def apply_exceptions(results: list[Result], exceptions: Sequence[PolicyException]) -> list[PolicyException]:
    """Mark failures covered by an exception as excepted; return the exceptions that matched nothing."""
    used: set[PolicyException] = set()
    for r in results:
        if r.status != "failed":
            continue
        for e in exceptions:
            if e.matches(r):
                r.status, r.reason = "excepted", e.reason
                used.add(e)
                break
    return [e for e in exceptions if e not in used]


# --------------------------------------------------------------------------- rendering


def _resource_id(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def _policy_annotations(target: Target, helm: str = "helm3") -> dict[str, str]:
    """What the checks need to know from the values (as Helm computed them): environment tier, GPU resource and taint."""
    values = render.computed_values(values_schema.UMBRELLA, list(target.files), helm=helm)
    glob = values.get("global") if isinstance(values.get("global"), dict) else {}
    gpu = glob.get("gpu") if isinstance(glob.get("gpu"), dict) else {}
    taint = gpu.get("taint") if isinstance(gpu.get("taint"), dict) else {}
    return {
        ENV_ANNOTATION: str(glob.get("environment") or ""),
        GPU_RESOURCE_ANNOTATION: str(gpu.get("resourceName") or "nvidia.com/gpu"),
        GPU_TAINT_ANNOTATION: f"{taint.get('key') or 'nvidia.com/gpu'}:{taint.get('effect') or 'NoSchedule'}",
    }


def _stamp(m: render.Manifest, namespace: str, stamps: dict[str, str]) -> dict[str, Any]:
    obj = json.loads(json.dumps(m.obj, default=str))
    meta = obj.setdefault("metadata", {})
    ns = crosscheck.namespace_of(m, namespace)
    if ns:
        meta["namespace"] = ns
    annotations = meta.get("annotations") or {}
    annotations.update(stamps)
    meta["annotations"] = annotations
    return obj


def render_targets(
    targets: Sequence[Target], helm: str, release: str, namespace: str
) -> dict[str, tuple[list[render.Manifest], dict[str, str]]]:
    """{env: (manifests, annotations to stamp)}, rendered in parallel."""
    chart = values_schema.UMBRELLA
    render.ensure_dependencies(chart, helm)

    def one(t: Target) -> tuple[str, tuple[list[render.Manifest], dict[str, str]]]:
        try:
            manifests = render.render(chart, list(t.files), helm=helm, release=release, namespace=namespace)
        except render.RenderError as exc:
            raise render.RenderError(
                f"{t.name}: {helm} cannot render it, so it cannot be policy-checked "
                f"(`llmops validate` on the same values says why):\n{exc}", exc.stderr
            ) from exc
        return t.name, (manifests, _policy_annotations(t, helm))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, targets))


def _source_path(source: str) -> str:
    """`llmops-stack/charts/vllm/templates/x.yaml` -> `charts/vllm/templates/x.yaml` when that file exists."""
    parts = source.split("/")
    if "templates" in parts:
        i = parts.index("templates")
        chart = parts[i - 1] if i > 0 else ""
        candidate = paths.CHARTS_DIR / chart / "/".join(parts[i:])
        if candidate.exists():
            return str(candidate.relative_to(paths.REPO_ROOT))
    return source


# --------------------------------------------------------------------------- python checks


def network_policy_coverage(env: str, manifests: Sequence[render.Manifest], namespace: str) -> list[Result]:
    """CKV_LLMOPS_8: a pod no NetworkPolicy selects accepts and sends traffic from/to anywhere."""
    policies = []
    for m in manifests:
        if m.kind != "NetworkPolicy":
            continue
        spec = m.obj.get("spec") or {}
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
        policies.append((crosscheck.namespace_of(m, namespace), spec.get("podSelector") or {}, set(types)))
    out = []
    for t in crosscheck.pod_templates(manifests, namespace):
        covered = set()
        for ns, selector, types in policies:
            if ns == t.namespace and crosscheck.selector_matches(selector, t.labels):
                covered |= types
        missing = sorted({"Ingress", "Egress"} - covered)
        out.append(Result(
            "CKV_LLMOPS_8", PYTHON_CHECKS["CKV_LLMOPS_8"], env,
            _resource_id(t.owner.kind, t.namespace, t.owner.name),
            "failed" if missing else "passed",
            [f"no NetworkPolicy selects this pod for {', '.join(missing)}"] if missing else [],
            _source_path(t.owner.source),
        ))
    return out


# --------------------------------------------------------------------------- checkov


def _checkov_resource(raw: str) -> str:
    kind, _, rest = raw.partition(".")
    ns, _, name = rest.partition(".")
    if kind in crosscheck.CLUSTER_SCOPED:
        return f"{kind}/{name}"
    return _resource_id(kind, ns, name)


def run_checkov(scan_dir: Path, out_dir: Path) -> dict[str, Any]:
    checkov = tools.require("checkov")
    argv = [
        str(checkov), "--directory", str(scan_dir), "--framework", "kubernetes", "--skip-download",
        "--external-checks-dir", str(CHECKS_DIR), "--output", "json", "--output-file-path", str(out_dir),
        "--compact",  # no --quiet: it drops passed checks from the JSON report too
        "--skip-check", ",".join(SUPERSEDED),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=tools.tool_env(), check=False)
    report = out_dir / "results_json.json"
    # checkov exits 1 when a check fails; anything else without a report is checkov itself failing.
    if proc.returncode not in (0, 1) or not report.exists():
        raise ToolError(f"checkov exited {proc.returncode} without a report:\n{proc.stderr.strip()[-2000:]}")
    if "Cannot load external check" in proc.stderr:
        raise ToolError(f"checkov could not load a check from {CHECKS_DIR}:\n{proc.stderr.strip()[-2000:]}")
    data = json.loads(report.read_text())
    if isinstance(data, list):  # one entry per framework when several ran
        data = next((d for d in data if d.get("check_type") == "kubernetes"), data[0] if data else {})
    return data if isinstance(data, dict) else {}


def _checkov_results(data: dict[str, Any], sources: dict[tuple[str, str], str]) -> list[Result]:
    out = []
    for status, key in (("passed", "passed_checks"), ("failed", "failed_checks"), ("excepted", "skipped_checks")):
        for rec in (data.get("results") or {}).get(key) or []:
            env = Path(str(rec.get("file_path", ""))).stem
            resource = _checkov_resource(str(rec.get("resource", "")))
            check_result = rec.get("check_result") or {}
            out.append(Result(
                str(rec.get("check_id")), str(rec.get("check_name", "")), env, resource, status,
                list(check_result.get("details") or rec.get("details") or []),
                sources.get((env, resource), ""),
                str(check_result.get("suppress_comment", "")) if status == "excepted" else "",
                str(rec.get("guideline") or ""),
            ))
    return out


def require_scanned(summary: dict[str, Any], objects: int) -> int:
    """checkov's resource count, or a ToolError when it checked nothing (or could not parse a file)."""
    scanned = int(summary.get("resource_count") or 0)
    if scanned == 0:
        raise ToolError(
            f"checkov scanned 0 resources out of {objects} rendered object(s): nothing was checked. "
            "Run checkov by hand on the rendered files to see why it dropped them."
        )
    if int(summary.get("parsing_errors") or 0):
        raise ToolError(f"checkov could not parse {summary['parsing_errors']} rendered file(s)")
    return scanned


def check(
    targets: Sequence[Target],
    *,
    helm: str = "helm3",
    release: str = "llmops",
    namespace: str = "llmops",
    exceptions_file: Path = EXCEPTIONS_FILE,
    progress: Progress = lambda _m: None,
) -> PolicyReport:
    """Render every target, scan all of them with one checkov run, add the Python checks, apply exceptions."""
    seconds: dict[str, float] = {}
    exceptions = load_exceptions(exceptions_file)
    started = time.monotonic()
    rendered = render_targets(targets, helm, release, namespace)
    seconds["render"] = time.monotonic() - started
    progress(f"rendered {len(rendered)} environment(s) with {helm} in {seconds['render']:.1f}s")
    work = Path(tempfile.mkdtemp(prefix="llmops-policy-"))
    try:
        scan_dir = work / "manifests"
        scan_dir.mkdir()
        sources: dict[tuple[str, str], str] = {}
        objects = 0
        for env, (manifests, stamps) in rendered.items():
            docs = []
            for m in manifests:
                obj = _stamp(m, namespace, stamps)
                docs.append(obj)
                ns = crosscheck.namespace_of(m, namespace)
                sources[(env, _resource_id(m.kind, ns, m.name))] = _source_path(m.source)
            objects += len(docs)
            (scan_dir / f"{env}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
        started = time.monotonic()
        progress(f"checkov: scanning {objects} object(s) of {len(rendered)} environment(s) in one run ...")
        data = run_checkov(scan_dir, work / "out")
        seconds["checkov"] = time.monotonic() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = data.get("summary") or {}
    scanned = require_scanned(summary, objects)
    progress(f"checkov: {scanned} resource(s), {summary.get('passed', 0)} passed, "
             f"{summary.get('failed', 0)} failed in {seconds['checkov']:.1f}s")
    results = _checkov_results(data, sources)
    for env, (manifests, _stamps) in rendered.items():
        results += network_policy_coverage(env, manifests, namespace)
    stale = apply_exceptions(results, exceptions)
    results.sort(key=lambda r: (r.status != "failed", r.env, r.check_id, r.resource))
    return PolicyReport(results, list(rendered), scanned, stale, seconds)


# --------------------------------------------------------------------------- reports


def summary_text(report: PolicyReport) -> str:
    lines = []
    by_env: dict[str, dict[str, int]] = {}
    for r in report.results:
        by_env.setdefault(r.env, {"passed": 0, "failed": 0, "excepted": 0})[r.status] += 1
    for r in report.failed:
        detail = "; ".join(r.details) if r.details else r.check_name
        where = f" [{r.source}]" if r.source else ""
        lines.append(f"FAILED {r.env}: {r.check_id} {r.resource}: {detail}{where}")
    if report.failed:
        lines.append("")
    lines.append(f"{'environment':<24} {'passed':>7} {'failed':>7} {'excepted':>9}")
    for env in report.envs:
        c = by_env.get(env, {"passed": 0, "failed": 0, "excepted": 0})
        lines.append(f"{env:<24} {c['passed']:>7} {c['failed']:>7} {c['excepted']:>9}")
    for e in report.stale_exceptions:
        lines.append(f"warning: {EXCEPTIONS_FILE.name}:{e.line}: exception {e.check} {e.resource} matched nothing; "
                     "remove it if the problem is fixed")
    for check_id, why in SUPERSEDED.items():
        lines.append(f"not run: {check_id} ({why})")
    excepted = {(r.check_id, r.reason) for r in report.results if r.status == "excepted"}
    if excepted:
        lines.append(f"{len(excepted)} exception(s) applied, each with its reason in the reports")
    lines.append(f"policy: {'ok' if report.ok else 'FAILED'}: {len(report.failed)} failure(s), "
                 f"{report.resources_scanned} resources scanned by checkov")
    return "\n".join(lines)


def to_json(report: PolicyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "environments": report.envs,
        "resources_scanned": report.resources_scanned,
        "seconds": {k: round(v, 2) for k, v in report.seconds.items()},
        "stale_exceptions": [asdict(e) for e in report.stale_exceptions],
        "results": [asdict(r) for r in report.results],
    }


# Runs in checkov's own virtualenv (its pins clash with ours): checkov's Report,
# Record and Sarif classes write the JUnit XML and SARIF files, so the formats
# are exactly what checkov itself produces. Our results come in as JSON on
# stdin; an exception becomes checkov's SKIPPED result with the reason as its
# suppress_comment (how checkov reports its own skip annotations), and the
# Python checks (CKV_LLMOPS_8) are records like any other. One test suite per
# environment.
_CHECKOV_WRITER = """
import json, sys
from checkov.common.models.enums import CheckResult
from checkov.common.output.record import Record
from checkov.common.output.report import Report
from checkov.common.output.sarif import Sarif

data = json.load(sys.stdin)
status = {"passed": CheckResult.PASSED, "failed": CheckResult.FAILED, "excepted": CheckResult.SKIPPED}
reports = []
for env in data["envs"]:
    report = Report(env)
    for r in data["results"]:
        if r["env"] != env:
            continue
        result = {"result": status[r["status"]]}
        if r["status"] == "excepted":
            result["suppress_comment"] = "exception: " + r["reason"]
        path = "/" + (r["source"] or "values/" + env + ".yaml")
        # checkov puts the offending snippet in code_block; ours are the details (what is wrong).
        block = [(i, line + "\\n") for i, line in enumerate(r["details"], start=1)]
        record = Record(check_id=r["check_id"], check_name=r["check_name"] or r["check_id"], check_result=result,
                        code_block=block, file_path=path, file_line_range=[1, 1], resource=env + "/" + r["resource"],
                        evaluations=None, check_class="", file_abs_path=path, details=r["details"] or None)
        record.guideline = r["guideline"] or None
        report.add_record(record)
    reports.append(report)
with open(sys.argv[1], "w") as fh:
    fh.write(Report.get_junit_xml_string([rep.get_test_suite() for rep in reports]))
with open(sys.argv[2], "w") as fh:
    json.dump(Sarif(reports, tool="llmops policy (checkov)").json, fh, indent=2)
"""


def write_checkov_formats(report: PolicyReport, junit: Path, sarif: Path) -> None:
    """JUnit XML and SARIF of REPORT, written by checkov's own output classes."""
    python = tools.require("checkov").resolve().parent / "python"
    payload = json.dumps({"envs": report.envs, "results": [asdict(r) for r in report.results]})
    proc = subprocess.run([str(python), "-c", _CHECKOV_WRITER, str(junit), str(sarif)], input=payload,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolError(f"checkov's report writers failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")


def write_reports(report: PolicyReport, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "summary": directory / "summary.txt",
        "json": directory / "policy.json",
        "junit": directory / "policy.junit.xml",
        "sarif": directory / "policy.sarif",
    }
    files["summary"].write_text(summary_text(report) + "\n")
    files["json"].write_text(json.dumps(to_json(report), indent=2) + "\n")
    write_checkov_formats(report, files["junit"], files["sarif"])
    return files

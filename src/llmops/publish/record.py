"""``releases.yaml``: the released versions of the suite, and the version rule they imply.

Git tags may not survive how this repository is merged, so the record is a
file: one entry per release with the commit it was cut from, the date, the
notes, every chart's version at that commit and the operator/tool pins it
was tested against (read from that commit's ``pyproject.toml``, so the
support matrix is generated, never typed).

The version rule (``version_problems``): a chart whose files differ from the
last release's commit (or that depends on such a chart: its package embeds
the dependency) must carry a greater version than it was released with, and
the umbrella pins every local subchart exactly at that subchart's version.
"""

from __future__ import annotations

import subprocess
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import paths
from llmops.errors import LlmopsError
from llmops.publish.semver import Version

RECORD_FILE = paths.REPO_ROOT / "releases.yaml"
SUITE_CHART = "llmops-stack"
HEADER = """\
# Released versions of the llmops-stack charts (newest last). Written by
# `llmops release record` (see docs/releasing.md); git tags alone may not
# survive how this repository is merged, so this file is the record.
#   commit: the commit whose tree IS the release (charts/ and values/ at it
#           are what `llmops release publish --version V` packages)
#   charts: every chart's version at that commit
#   tested_with: the pins of that commit's pyproject.toml (support matrix)
"""


class RecordError(LlmopsError):
    exit_code = 1


@dataclass
class ReleaseRecord:
    version: str
    commit: str
    date: str
    notes: str
    charts: dict[str, str] = field(default_factory=dict)
    tested_with: dict[str, str] = field(default_factory=dict)

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)


def git(*args: str, repo: Path = paths.REPO_ROOT, check: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RecordError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def load(path: Path = RECORD_FILE) -> list[ReleaseRecord]:
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    out = []
    for i, raw in enumerate(data.get("releases") or []):
        missing = {"version", "commit", "date"} - set(raw)
        if missing:
            raise RecordError(f"{path.name}: releases[{i}] lacks {', '.join(sorted(missing))}")
        out.append(ReleaseRecord(str(raw["version"]), str(raw["commit"]), str(raw["date"]), str(raw.get("notes", "")),
                                 {k: str(v) for k, v in (raw.get("charts") or {}).items()},
                                 {k: str(v) for k, v in (raw.get("tested_with") or {}).items()}))
    return out


def save(records: list[ReleaseRecord], path: Path = RECORD_FILE) -> None:
    body = yaml.safe_dump({"releases": [asdict(r) for r in records]}, sort_keys=False, width=100)
    path.write_text(HEADER + body)


def latest(records: list[ReleaseRecord]) -> ReleaseRecord | None:
    return max(records, key=lambda r: r.semver) if records else None


def find(records: list[ReleaseRecord], version: str) -> ReleaseRecord:
    for r in records:
        if r.version == version:
            return r
    known = ", ".join(r.version for r in records) or "none"
    raise RecordError(f"no release {version} in releases.yaml (released: {known})")


def require_commit(commit: str, repo: Path = paths.REPO_ROOT) -> str:
    """The full hash of COMMIT, or a clear error when this clone lacks it."""
    out = git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", repo=repo, check=False).strip()
    if not out:
        raise RecordError(f"commit {commit} is not in this clone (shallow clone? run `git fetch --unshallow`)")
    return out


# ---------------------------------------------------------------------------
# Charts in a tree or at a commit
# ---------------------------------------------------------------------------


def chart_meta(charts_dir: Path = paths.CHARTS_DIR) -> dict[str, dict[str, Any]]:
    """Chart.yaml of every chart under CHARTS_DIR, by folder name."""
    return {p.parent.name: yaml.safe_load(p.read_text()) or {} for p in sorted(charts_dir.glob("*/Chart.yaml"))}


def chart_meta_at(rev: str, repo: Path = paths.REPO_ROOT) -> dict[str, dict[str, Any]]:
    out = {}
    for line in git("ls-tree", "--name-only", f"{rev}:charts", repo=repo).split():
        text = git("show", f"{rev}:charts/{line}/Chart.yaml", repo=repo, check=False)
        if text:
            out[line] = yaml.safe_load(text) or {}
    return out


def versions(meta: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: str(m.get("version")) for name, m in meta.items()}


def local_dependencies(meta: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each chart's file:// dependencies (name = chart folder, version = the pin)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, m in meta.items():
        deps = []
        for d in m.get("dependencies") or []:
            repo_ = str(d.get("repository", ""))
            if repo_.startswith("file://"):
                deps.append({"chart": Path(repo_.removeprefix("file://")).name, "version": str(d.get("version"))})
        out[name] = deps
    return out


def changed_charts(since: str, until: str | None = None, repo: Path = paths.REPO_ROOT) -> set[str]:
    """Charts with a file that differs between SINCE and UNTIL (a commit; None = the working tree, untracked included)."""
    names = git("diff", "--name-only", since, *([until] if until else []), "--", "charts/", repo=repo).split()
    if until is None:
        names += git("ls-files", "--others", "--exclude-standard", "--", "charts/", repo=repo).split()
    return {n.split("/")[1] for n in names if n.count("/") >= 2}


def with_dependents(changed: set[str], meta: dict[str, dict[str, Any]]) -> set[str]:
    """CHANGED plus every chart that (transitively) depends on one of them: its package embeds the dependency."""
    deps = local_dependencies(meta)
    out = set(changed)
    grew = True
    while grew:
        grew = False
        for name, ds in deps.items():
            if name not in out and any(d["chart"] in out for d in ds):
                out.add(name)
                grew = True
    return out


def tested_with_at(rev: str, repo: Path = paths.REPO_ROOT) -> dict[str, str]:
    """Kubernetes, Helm and operator versions pinned in REV's pyproject.toml: what that release was tested against."""
    data = tomllib.loads(git("show", f"{rev}:pyproject.toml", repo=repo))
    llmops = data.get("tool", {}).get("llmops", {})
    tools_, crds = llmops.get("tools", {}), llmops.get("crds", {})
    out: dict[str, str] = {}
    picks = {"kubernetes": "kube-control-plane", "helm3": "helm3", "helm4": "helm4", "keda-operator": "keda",
             "prometheus": "prometheus"}
    for key, tool in picks.items():
        if tool in tools_ and "version" in tools_[tool]:
            out[key] = str(tools_[tool]["version"])
    for name, spec in crds.items():
        out[f"{name}-crds"] = str(spec.get("version"))
    return out


# ---------------------------------------------------------------------------
# The version rule
# ---------------------------------------------------------------------------


def pin_problems(meta: dict[str, dict[str, Any]]) -> list[str]:
    """Every local dependency is pinned to exactly the version its Chart.yaml carries."""
    problems = []
    for name, deps in local_dependencies(meta).items():
        for d in deps:
            target = meta.get(d["chart"])
            if target is None:
                problems.append(f"charts/{name}/Chart.yaml: dependency {d['chart']} has no chart folder")
                continue
            try:
                Version.parse(d["version"])
            except LlmopsError:
                problems.append(f"charts/{name}/Chart.yaml: dependency {d['chart']} version '{d['version']}' "
                                "is a range; pin the exact version")
                continue
            if d["version"] != str(target.get("version")):
                problems.append(f"charts/{name}/Chart.yaml: dependency {d['chart']} pinned at {d['version']} but "
                                f"charts/{d['chart']} is {target.get('version')}")
    return problems


def version_problems(records: list[ReleaseRecord] | None = None, repo: Path = paths.REPO_ROOT,
                     charts_dir: Path | None = None) -> list[str]:
    """Why the working tree's chart versions break the rule against the last release ([] when they do not)."""
    records = load(repo / RECORD_FILE.name) if records is None else records
    charts_dir = charts_dir or repo / "charts"
    meta = chart_meta(charts_dir)
    problems = pin_problems(meta)
    for name, m in meta.items():
        try:
            Version.parse(str(m.get("version")))
        except LlmopsError as exc:
            problems.append(f"charts/{name}/Chart.yaml: version: {exc}")
    last = latest(records)
    if last is None:
        return problems
    commit = require_commit(last.commit, repo)
    changed = with_dependents(changed_charts(commit, None, repo) & set(meta), meta)
    for name in sorted(changed):
        released = last.charts.get(name)
        if released is None:
            continue  # a chart new since the last release: any version
        current = str(meta[name].get("version"))
        try:
            bumped = Version.parse(current) > Version.parse(released)
        except LlmopsError:
            continue  # reported above
        if not bumped:
            problems.append(f"charts/{name} changed since release {last.version} (commit {commit[:12]}) but its "
                            f"version is still {current}; bump it (SemVer) or run `llmops release cut VERSION`")
    return problems

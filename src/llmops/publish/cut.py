"""``llmops release cut VERSION`` and ``llmops release record VERSION``: the two steps of a release.

The flow (docs/releasing.md):

1. ``cut``: the umbrella takes VERSION; every other chart that changed since
   the last release (or embeds one that did) takes its released version
   bumped at the same SemVer level as the suite (kept if already higher);
   every ``file://`` pin follows; CHANGELOG's Unreleased entries move under
   VERSION and become each bumped chart's ``artifacthub.io/changes`` next to
   the rest of the Artifact Hub metadata; chart READMEs are regenerated.
   Commit that: the commit is the release.
2. ``record``: appends VERSION with commit = HEAD (that commit) to
   releases.yaml, checked against the previous release. Commit that too; it
   changes no chart, so packaging "the recorded commit" later gives exactly
   what was cut. ``cut --commit`` does both commits.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import paths
from llmops.errors import LlmopsError
from llmops.publish import changelog, record
from llmops.publish.semver import Version, level_between

ENV_FINGERPRINT = "LLMOPS_SIGNING_FINGERPRINT"
ENV_KEY_URL = "LLMOPS_SIGNING_KEY_URL"


class CutError(LlmopsError):
    exit_code = 1


@dataclass
class Plan:
    version: str
    level: str
    previous: record.ReleaseRecord | None
    bumps: dict[str, tuple[str, str]] = field(default_factory=dict)  # chart -> (old, new)
    changed: set[str] = field(default_factory=set)


def plan(version: str, repo: Path = paths.REPO_ROOT) -> Plan:
    records = record.load(repo / record.RECORD_FILE.name)
    last = record.latest(records)
    new = Version.parse(version)
    meta = record.chart_meta(repo / "charts")
    if record.SUITE_CHART not in meta:
        raise CutError(f"charts/{record.SUITE_CHART} is missing")
    if last is None:
        p = Plan(version, "minor", None, changed=set(meta))
        for name, m in meta.items():
            cur = str(m["version"])
            p.bumps[name] = (cur, version if name == record.SUITE_CHART else cur)
        return p
    level = level_between(last.semver, new)
    changed = record.with_dependents(record.changed_charts(record.require_commit(last.commit, repo), None, repo)
                                     & set(meta), meta)
    if not changed:
        raise CutError(f"no chart changed since release {last.version} ({last.commit[:12]}): nothing to release")
    p = Plan(version, level, last, changed=changed)
    for name, m in meta.items():
        cur = Version.parse(str(m["version"]))
        released = last.charts.get(name)
        if name == record.SUITE_CHART:
            if cur > new:
                raise CutError(f"charts/{name} is already at {cur}, above {new}")
            target = new
        elif released is None or name not in changed:
            target = cur
        else:
            target = max(cur, Version.parse(released).bump(level))
        if str(target) != str(cur) or name in changed:
            p.bumps[name] = (str(cur), str(target))
    return p


# ---------------------------------------------------------------------------
# Chart.yaml edits that keep comments and key order
# ---------------------------------------------------------------------------


def set_version(text: str, version: str) -> str:
    out, n = re.subn(r"(?m)^version:.*$", f"version: {version}", text, count=1)
    if n != 1:
        raise CutError("Chart.yaml has no top-level 'version:' line")
    return out


def set_dependency_pin(text: str, chart: str, version: str) -> str:
    """Set ``version:`` of the dependency item whose repository is ``file://../CHART``."""
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if re.match(r"^\s*- name:", ln)]
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        for j in range(start + 1, end):
            if lines[j] and not lines[j].startswith(" "):
                end = j
                break
        block = range(start, end)
        if any(re.search(rf"repository:\s*['\"]?file://\.\./{re.escape(chart)}['\"]?\s*$", lines[j]) for j in block):
            for j in block:
                if m := re.match(r"^(\s*(?:- )?)version:", lines[j]):
                    lines[j] = f"{m.group(1)}version: {version}"
    return "\n".join(lines) + "\n"


def set_annotations(text: str, annotations: dict[str, str]) -> str:
    """Replace the top-level ``annotations:`` block (or append one) with ANNOTATIONS."""
    lines = text.splitlines()
    if "annotations:" in [ln.rstrip() for ln in lines]:
        start = [ln.rstrip() for ln in lines].index("annotations:")
        end = start + 1
        while end < len(lines) and (not lines[end] or lines[end].startswith((" ", "#"))):
            end += 1
        lines[start:end] = []
    while lines and not lines[-1].strip():
        lines.pop()
    block = yaml.dump({"annotations": annotations}, Dumper=_LiteralDumper, sort_keys=False, width=1000)
    return "\n".join(lines) + "\n" + block


class _LiteralDumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str)


# ---------------------------------------------------------------------------
# Artifact Hub metadata
# ---------------------------------------------------------------------------


def _license(repo: Path) -> str:
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    lic = data.get("project", {}).get("license", {})
    return str(lic.get("text", "")) if isinstance(lic, dict) else str(lic)


def _blob(home: str, path: str) -> str:
    return f"{home.rstrip('/')}/blob/main/{path}"


def images(chart_dir: Path) -> list[dict[str, str]]:
    """Every container image the chart runs with its default values (hooks and init containers included)."""
    from llmops.validate import render
    from llmops.publish.bundle import images as rendered_images

    # A concern chart whose defaults need site input (the ingress chart needs
    # hosts and a GatewayClass) is rendered with its first chart-testing
    # values file instead: that is the configuration CI installs.
    # Its own `image` key is dropped: CI installs images built here, users the chart's default.
    attempts: list[list[Path]] = [[], *([f] for f in sorted((chart_dir / "ci").glob("*-values.yaml")))]
    manifests = None
    with tempfile.TemporaryDirectory() as tmp:
        for values in attempts:
            site = []
            for f in values:
                doc = {k: v for k, v in (yaml.safe_load(f.read_text()) or {}).items() if k != "image"}
                site.append(Path(tmp) / f.name)
                site[-1].write_text(yaml.safe_dump(doc))
            try:
                manifests = render.render(chart_dir, site, helm="helm3")
                break
            except render.RenderError:
                if values is attempts[-1]:
                    raise
    out = []
    for item in rendered_images(manifests or []):
        # An image built on the user's own machine (`localhost/llmops/...`, e.g.
        # the ci files' Locust image) is nothing Artifact Hub can pull or scan.
        if item["image"].startswith("localhost/"):
            continue
        name = item["image"].rsplit("/", 1)[-1].split("@")[0].split(":")[0]
        out.append({"name": name, "image": item["image"]})
    return out


def annotations(chart: str, meta: dict[str, Any], version: str, entries: list[changelog.Entry], repo: Path,
                chart_dir: Path) -> dict[str, str]:
    home = str(meta.get("home", ""))
    changes = changelog.artifacthub_changes(entries, chart, record.SUITE_CHART) or [
        {"kind": "changed", "description": f"Released with llmops-stack {version} (see CHANGELOG.md)"}]
    out = {
        "artifacthub.io/changes": yaml.safe_dump(changes, sort_keys=False, width=1000),
        "artifacthub.io/license": _license(repo),
        "artifacthub.io/links": yaml.safe_dump([
            {"name": "source", "url": home},
            {"name": "changelog", "url": _blob(home, "CHANGELOG.md")},
            {"name": "upgrading", "url": _blob(home, "docs/upgrading.md")},
        ], sort_keys=False, width=1000),
        "artifacthub.io/prerelease": "true" if Version.parse(version).pre else "false",
        "artifacthub.io/containsSecurityUpdates": "true" if any(e.kind == "security" for e in entries
                                                               if chart == record.SUITE_CHART or e.scope == chart)
        else "false",
    }
    if meta.get("type") != "library":
        imgs = images(chart_dir)
        if imgs:
            out["artifacthub.io/images"] = yaml.safe_dump(imgs, sort_keys=False, width=1000)
    fingerprint, key_url = os.environ.get(ENV_FINGERPRINT, ""), os.environ.get(ENV_KEY_URL, "")
    if fingerprint or key_url:
        # Artifact Hub's linter (`ah lint`) rejects a signKey without both fields.
        if not (fingerprint and key_url):
            raise CutError(f"set both {ENV_FINGERPRINT} and {ENV_KEY_URL} (where users fetch the public key), or neither")
        key = {"fingerprint": fingerprint, "url": key_url}
        out["artifacthub.io/signKey"] = yaml.safe_dump(key, sort_keys=False, width=1000)
    return out


# ---------------------------------------------------------------------------
# cut / record
# ---------------------------------------------------------------------------


def apply(p: Plan, repo: Path = paths.REPO_ROOT, date: str | None = None, docs: bool = True) -> list[Path]:
    """Write the plan: Chart.yaml versions, pins, annotations; CHANGELOG; READMEs. Returns the files written."""
    date = date or dt.date.today().isoformat()
    log_path = repo / "CHANGELOG.md"
    log_text = changelog.release(changelog.read(log_path), p.version, date)
    entries = changelog.section(log_text, p.version).entries
    written = [log_path]
    new_versions = {name: new for name, (_, new) in p.bumps.items()}
    for name, (_old, new) in p.bumps.items():
        chart_dir = repo / "charts" / name
        path = chart_dir / "Chart.yaml"
        text = set_version(path.read_text(), new)
        meta = yaml.safe_load(text)
        for dep in record.local_dependencies({name: meta})[name]:
            if dep["chart"] in new_versions:
                text = set_dependency_pin(text, dep["chart"], new_versions[dep["chart"]])
        path.write_text(text)
        written.append(path)
    # Annotations last: the umbrella's image list renders with its new pins.
    for name, (_old, new) in p.bumps.items():
        path = repo / "charts" / name / "Chart.yaml"
        meta = yaml.safe_load(path.read_text())
        path.write_text(set_annotations(path.read_text(), annotations(name, meta, new, entries, repo, path.parent)))
    log_path.write_text(log_text)
    upgrading = repo / "docs" / "upgrading.md"
    if upgrading.exists() and "\n## Unreleased\n" in upgrading.read_text():
        # The notes written since the last release become this version's; a new Unreleased opens above.
        upgrading.write_text(upgrading.read_text().replace(
            "\n## Unreleased\n", f"\n## Unreleased\n\n- Nothing to migrate yet.\n\n## {p.version}\n", 1))
        written.append(upgrading)
    problems = record.pin_problems(record.chart_meta(repo / "charts"))
    if problems:
        raise CutError("after the cut: " + "; ".join(problems))
    if docs:
        from llmops import chartdocs

        chartdocs.generate(repo / "charts")
        written += [repo / "charts" / name / "README.md" for name in p.bumps]
    return written


def make_record(version: str, commit: str = "HEAD", repo: Path = paths.REPO_ROOT, notes: str = "",
                date: str | None = None) -> record.ReleaseRecord:
    """A record for VERSION at COMMIT, checked against the releases before it."""
    full = record.require_commit(commit, repo)
    records = record.load(repo / record.RECORD_FILE.name)
    if any(r.version == version for r in records):
        raise CutError(f"release {version} is already recorded")
    meta = record.chart_meta_at(full, repo)
    charts = record.versions(meta)
    if charts.get(record.SUITE_CHART) != version:
        raise CutError(f"at {full[:12]} charts/{record.SUITE_CHART} is {charts.get(record.SUITE_CHART)}, not {version}: "
                       "run `llmops release cut` and commit first")
    problems = record.pin_problems(meta)
    last = record.latest(records)
    if last is not None:
        if not Version.parse(version) > last.semver:
            raise CutError(f"{version} is not greater than the last release {last.version}")
        changed = record.with_dependents(record.changed_charts(record.require_commit(last.commit, repo), full, repo)
                                         & set(meta), meta)
        for name in sorted(changed):
            if name in last.charts and not Version.parse(charts[name]) > Version.parse(last.charts[name]):
                problems.append(f"charts/{name} changed since {last.version} but is still {charts[name]}")
    if problems:
        raise CutError(f"cannot record {version} at {full[:12]}: " + "; ".join(problems))
    if not notes:
        try:
            text = record.git("show", f"{full}:CHANGELOG.md", repo=repo)
            entries = changelog.section(text, version).entries
            notes = "; ".join(e.text.rstrip(".") for e in entries[:3]) + ("; ..." if len(entries) > 3 else "")
        except LlmopsError:
            notes = ""
    return record.ReleaseRecord(version, full, date or dt.date.today().isoformat(), notes, charts,
                                record.tested_with_at(full, repo))


def append_record(rec: record.ReleaseRecord, repo: Path = paths.REPO_ROOT) -> Path:
    path = repo / record.RECORD_FILE.name
    records = record.load(path)
    records.append(rec)
    record.save(records, path)
    return path

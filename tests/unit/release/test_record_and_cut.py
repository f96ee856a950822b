"""releases.yaml and the version rule against the real repository, and `release cut` on a scratch git repository."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from llmops import paths
from llmops.publish import changelog, cut, record
from llmops.publish.semver import Version


def test_no_chart_changed_since_the_last_release_without_a_version_bump() -> None:
    problems = record.version_problems()
    assert problems == [], "\n".join(problems)


def test_every_record_matches_the_chart_versions_at_its_commit_and_versions_increase() -> None:
    records = record.load()
    assert records, "releases.yaml records no release"
    assert [r.semver for r in records] == sorted(r.semver for r in records), "releases.yaml is not in version order"
    for rec in records:
        assert re.fullmatch(r"[0-9a-f]{40}", rec.commit), f"{rec.version}: record the full commit hash"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rec.date)
        at = record.versions(record.chart_meta_at(rec.commit))
        assert rec.charts == at, f"release {rec.version}: charts differ from Chart.yaml at {rec.commit[:12]}"
        assert at[record.SUITE_CHART] == rec.version
        assert rec.tested_with == record.tested_with_at(rec.commit)


def test_the_umbrella_pins_every_subchart_exactly() -> None:
    meta = record.chart_meta()
    assert record.pin_problems(meta) == []
    umbrella = {d["chart"]: d["version"] for d in record.local_dependencies(meta)[record.SUITE_CHART]}
    assert umbrella and all(umbrella[c] == str(meta[c]["version"]) for c in umbrella)


def test_a_range_or_stale_pin_is_reported_with_the_chart_and_dependency() -> None:
    meta = record.chart_meta()
    meta["llmops-stack"]["dependencies"][1]["version"] = "~0.1.0"
    meta["gpu"]["dependencies"][0]["version"] = "0.0.9"
    problems = record.pin_problems(meta)
    assert any("charts/llmops-stack/Chart.yaml: dependency vllm version '~0.1.0' is a range" in p for p in problems)
    common = meta["common"]["version"]
    assert any(f"charts/gpu/Chart.yaml: dependency common pinned at 0.0.9 but charts/common is {common}" in p
               for p in problems)


# ---------------------------------------------------------------------------
# A scratch repository: released at 0.1.0, then changed
# ---------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(paths.CHARTS_DIR, repo / "charts", ignore=shutil.ignore_patterns("*.tgz", "charts", "Chart.lock"))
    # The scratch history starts as if every chart had just been released at 0.1.0.
    for chart_yaml in (repo / "charts").glob("*/Chart.yaml"):
        text = cut.set_version(chart_yaml.read_text(), "0.1.0")
        for dep in record.local_dependencies({"c": yaml.safe_load(text)})["c"]:
            text = cut.set_dependency_pin(text, dep["chart"], "0.1.0")
        chart_yaml.write_text(text)
    for name in ("pyproject.toml", ".gitignore"):
        shutil.copyfile(paths.REPO_ROOT / name, repo / name)
    (repo / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-11-28\n\n### Added\n\n- first\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "0.1.0")
    rec = cut.make_record("0.1.0", "HEAD", repo=repo, notes="first", date="2026-11-28")
    cut.append_record(rec, repo)
    _commit(repo, "record 0.1.0")
    return repo


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", message)


def _change_vllm(repo: Path) -> None:
    values = repo / "charts" / "vllm" / "values.yaml"
    values.write_text(values.read_text() + "\n# a change after 0.1.0\n")
    log = repo / "CHANGELOG.md"
    log.write_text(log.read_text().replace("## [Unreleased]\n",
                                           "## [Unreleased]\n\n### Changed\n\n- **vllm**: a changed default.\n"))


def test_a_changed_chart_without_a_bump_fails_the_rule_and_names_its_dependents(scratch: Path) -> None:
    assert record.version_problems(repo=scratch) == []
    _change_vllm(scratch)
    problems = record.version_problems(repo=scratch)
    assert [p.split()[0] for p in problems] == ["charts/llmops-stack", "charts/vllm"]
    assert "changed since release 0.1.0" in problems[1] and "still 0.1.0" in problems[1]


def test_an_untracked_template_counts_as_a_change(scratch: Path) -> None:
    (scratch / "charts" / "ingress" / "templates" / "new-configmap.yaml").write_text("# new\n")
    assert "charts/ingress" in {p.split()[0] for p in record.version_problems(repo=scratch)}


def test_cut_bumps_changed_charts_and_pins_moves_the_changelog_and_writes_artifacthub_metadata(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cut.ENV_FINGERPRINT, "0123456789ABCDEF0123456789ABCDEF01234567")
    monkeypatch.setenv(cut.ENV_KEY_URL, "https://example.org/llmops-stack/pubkey.asc")
    _change_vllm(scratch)
    (scratch / "docs").mkdir()
    (scratch / "docs" / "upgrading.md").write_text("# Upgrading\n\n## Unreleased\n\n- rename x to y\n\n## 0.1.0\n")
    gpu_before = (scratch / "charts" / "gpu" / "Chart.yaml").read_text()
    plan = cut.plan("0.2.0", scratch)
    assert plan.level == "minor"
    assert plan.bumps == {"vllm": ("0.1.0", "0.2.0"), "llmops-stack": ("0.1.0", "0.2.0")}
    cut.apply(plan, scratch, date="2026-12-01", docs=False)

    umbrella_text = (scratch / "charts" / "llmops-stack" / "Chart.yaml").read_text()
    assert "# No `enabled` default for these two" in umbrella_text, "the cut dropped a comment"
    umbrella = yaml.safe_load(umbrella_text)
    pins = {d["name"]: d["version"] for d in umbrella["dependencies"]}
    assert pins["vllm"] == "0.2.0" and pins["gpu"] == "0.1.0" and pins["common"] == "0.1.0"
    vllm = yaml.safe_load((scratch / "charts" / "vllm" / "Chart.yaml").read_text())
    assert vllm["version"] == "0.2.0"
    ann = vllm["annotations"]
    assert yaml.safe_load(ann["artifacthub.io/changes"]) == [{"kind": "changed", "description": "a changed default."}]
    assert ann["artifacthub.io/license"] == "Apache-2.0"
    assert {link["name"] for link in yaml.safe_load(ann["artifacthub.io/links"])} == {"source", "changelog", "upgrading"}
    sign_key = yaml.safe_load(ann["artifacthub.io/signKey"])
    assert sign_key["fingerprint"].startswith("0123") and sign_key["url"].endswith("pubkey.asc")
    assert all("image" in i for i in yaml.safe_load(ann["artifacthub.io/images"]))
    umbrella_changes = yaml.safe_load(umbrella["annotations"]["artifacthub.io/changes"])
    assert umbrella_changes == [{"kind": "changed", "description": "vllm: a changed default."}]
    assert (scratch / "charts" / "gpu" / "Chart.yaml").read_text() == gpu_before, "an unchanged chart must not be touched"
    sections = changelog.parse((scratch / "CHANGELOG.md").read_text())
    assert [(s.version, len(s.entries)) for s in sections] == [("Unreleased", 0), ("0.2.0", 1), ("0.1.0", 1)]
    assert record.version_problems(repo=scratch) == []
    notes = (scratch / "docs" / "upgrading.md").read_text()
    assert notes.index("## Unreleased") < notes.index("## 0.2.0\n\n- rename x to y") < notes.index("## 0.1.0")

    with pytest.raises(cut.CutError, match="is 0.1.0, not 0.2.0"):
        cut.make_record("0.2.0", "HEAD", repo=scratch)
    _commit(scratch, "cut 0.2.0")
    rec = cut.make_record("0.2.0", "HEAD", repo=scratch, date="2026-12-01")
    assert rec.charts["vllm"] == "0.2.0" and rec.charts["gpu"] == "0.1.0"
    assert rec.notes == "a changed default"
    cut.append_record(rec, scratch)
    assert [r.version for r in record.load(scratch / "releases.yaml")] == ["0.1.0", "0.2.0"]


def test_a_common_library_change_bumps_every_chart_that_embeds_it_at_the_patch_level(scratch: Path) -> None:
    helpers = next((scratch / "charts" / "common" / "templates").glob("_*.tpl"))
    helpers.write_text(helpers.read_text() + "\n{{/* changed */}}\n")
    plan = cut.plan("0.1.1", scratch)
    assert plan.level == "patch"
    dependents = {n for n, m in record.chart_meta(scratch / "charts").items()
                  if any(d["chart"] == "common" for d in record.local_dependencies({n: m})[n])}
    assert set(plan.bumps) == dependents | {"common", "llmops-stack"}
    assert all(new == "0.1.1" for _old, new in plan.bumps.values())


def test_cut_refuses_a_version_not_above_the_last_release_and_a_release_with_no_change(scratch: Path) -> None:
    with pytest.raises(cut.CutError, match="no chart changed since release 0.1.0"):
        cut.plan("0.2.0", scratch)
    _change_vllm(scratch)
    with pytest.raises(Exception, match="not greater than 0.1.0"):
        cut.plan("0.1.0", scratch)


def test_a_record_with_a_changed_but_unbumped_chart_is_refused(scratch: Path) -> None:
    _change_vllm(scratch)
    chart = scratch / "charts" / "llmops-stack" / "Chart.yaml"
    chart.write_text(cut.set_version(chart.read_text(), "0.2.0"))
    _commit(scratch, "bump only the umbrella")
    with pytest.raises(cut.CutError, match="charts/vllm changed since 0.1.0 but is still 0.1.0"):
        cut.make_record("0.2.0", "HEAD", repo=scratch)


def test_set_annotations_replaces_an_existing_block_and_keeps_the_rest() -> None:
    text = "apiVersion: v2\nname: x\nversion: 0.1.0\nannotations:\n  a: b\n  c: |\n    multi\n# tail comment\n"
    out = cut.set_annotations(text, {"artifacthub.io/license": "Apache-2.0", "k": "l1\nl2\n"})
    data = yaml.safe_load(out)
    assert data["annotations"] == {"artifacthub.io/license": "Apache-2.0", "k": "l1\nl2\n"}
    assert data["version"] == "0.1.0" and out.count("annotations:") == 1
    assert Version.parse(data["version"]) == Version.parse("0.1.0")


def test_artifacthub_image_lists_leave_out_images_built_on_the_users_machine() -> None:
    """charts/loadtest renders with its ci file (it needs a target), whose Locust image is built here: users get the default."""
    listed = [i["image"] for i in cut.images(paths.CHARTS_DIR / "loadtest")]
    assert listed and not any(i.startswith("localhost/") for i in listed), listed
    assert any(i["image"].startswith("ghcr.io/llm-d/") for i in cut.images(paths.CHARTS_DIR / "llmops-stack"))

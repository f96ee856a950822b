"""Every relative link in README.md and docs/*.md points at a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmops import paths

DOCS = [paths.REPO_ROOT / "README.md", *sorted((paths.REPO_ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target); code spans are removed first.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")


def links(doc: Path) -> list[str]:
    text = CODE.sub("", FENCE.sub("", doc.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def anchors(doc: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in FENCE.sub("", doc.read_text()).splitlines():
        if m := re.match(r"^#{1,6}\s+(.*?)\s*#*$", line):
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-"))
    return out


def broken(doc: Path) -> list[str]:
    bad = []
    for target in links(doc):
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target} (no heading #{anchor})")
    return bad


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(paths.REPO_ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    assert not broken(doc), f"{doc.name}: broken links: {broken(doc)}"


def test_readme_links_every_stage_page() -> None:
    readme = set(links(paths.REPO_ROOT / "README.md"))
    for page in ("validate", "cluster", "loadtest", "engine", "autoscaling", "toolchain"):
        assert f"docs/{page}.md" in readme


def test_checker_catches_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## Real heading\n")
    doc = tmp_path / "b.md"
    doc.write_text("[ok](a.md#real-heading) [gone](c.md) [bad](a.md#nope) `[code](x.md)` [web](https://x.io/y)\n")
    assert broken(doc) == ["c.md (no such file)", "a.md#nope (no heading #nope)"]

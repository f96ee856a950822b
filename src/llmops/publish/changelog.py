"""``CHANGELOG.md`` in Keep a Changelog 1.1.0 form, and Artifact Hub's ``artifacthub.io/changes`` from it.

One changelog for the suite. An entry that concerns one chart starts with
its name in bold (``- **vllm**: reject ...``); unscoped entries concern the
suite (the umbrella). Section headings are Keep a Changelog's
(``### Added``/``Changed``/``Deprecated``/``Removed``/``Fixed``/``Security``),
which are also Artifact Hub's change kinds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from llmops import paths
from llmops.errors import LlmopsError

CHANGELOG = paths.REPO_ROOT / "CHANGELOG.md"
KINDS = ("added", "changed", "deprecated", "removed", "fixed", "security")
UNRELEASED = "Unreleased"
_VERSION_H = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$")
_KIND_H = re.compile(r"^### (?P<kind>\w+)\s*$")
_SCOPE = re.compile(r"^\*\*(?P<scope>[a-z0-9-]+)\*\*:\s*(?P<text>.*)$", re.S)


class ChangelogError(LlmopsError):
    exit_code = 1


@dataclass
class Entry:
    kind: str
    text: str
    scope: str = ""


@dataclass
class Section:
    version: str
    date: str
    entries: list[Entry] = field(default_factory=list)


def parse(text: str) -> list[Section]:
    """Sections newest first; multi-line entries are joined; unknown ### headings are an error."""
    sections: list[Section] = []
    kind = ""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if m := _VERSION_H.match(line):
            sections.append(Section(m["version"], m["date"] or ""))
            kind = ""
        elif m := _KIND_H.match(line):
            kind = m["kind"].lower()
            if kind not in KINDS:
                raise ChangelogError(f"CHANGELOG.md:{lineno}: '### {m['kind']}' is not a Keep a Changelog section "
                                     f"(allowed: {', '.join(k.capitalize() for k in KINDS)})")
        elif line.startswith("- ") and sections and kind:
            body = line[2:].strip()
            scope = ""
            if sm := _SCOPE.match(body):
                scope, body = sm["scope"], sm["text"].strip()
            sections[-1].entries.append(Entry(kind, body, scope))
        elif line.startswith("  ") and line.strip() and sections and sections[-1].entries and kind:
            sections[-1].entries[-1].text += " " + line.strip()
    return sections


def section(text: str, version: str) -> Section:
    for s in parse(text):
        if s.version == version:
            return s
    raise ChangelogError(f"CHANGELOG.md has no '## [{version}]' section")


def release(text: str, version: str, date: str) -> str:
    """Move the Unreleased entries under ``## [VERSION] - DATE`` and open a new, empty Unreleased section."""
    if any(s.version == version for s in parse(text)):
        raise ChangelogError(f"CHANGELOG.md already has a section for {version}")
    unreleased = section(text, UNRELEASED)
    if not unreleased.entries:
        raise ChangelogError("CHANGELOG.md: the Unreleased section has no entries; say what this release changes")
    heading = f"## [{UNRELEASED}]"
    lines = text.splitlines()
    index = next(i for i, ln in enumerate(lines) if ln.strip() == heading)
    lines[index:index + 1] = [heading, "", f"## [{version}] - {date}"]
    return "\n".join(lines) + "\n"


def artifacthub_changes(entries: list[Entry], chart: str, suite_chart: str) -> list[dict[str, str]]:
    """The ``artifacthub.io/changes`` list for CHART: its scoped entries; the suite chart gets every entry."""
    out = []
    for e in entries:
        if chart == suite_chart:
            out.append({"kind": e.kind, "description": f"{e.scope}: {e.text}" if e.scope else e.text})
        elif e.scope == chart:
            out.append({"kind": e.kind, "description": e.text})
    return out


def read(path: Path = CHANGELOG) -> str:
    if not path.exists():
        raise ChangelogError(f"{path} does not exist")
    return path.read_text()

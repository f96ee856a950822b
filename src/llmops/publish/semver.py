"""Semantic versions (semver.org 2.0.0) of charts: parse, compare, bump."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmops.errors import LlmopsError

_RE = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
LEVELS = ("major", "minor", "patch")


@dataclass(frozen=True, order=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _RE.match(str(text).strip())
        if not m:
            raise LlmopsError(f"'{text}' is not a SemVer version (MAJOR.MINOR.PATCH[-PRERELEASE])")
        return cls(int(m["major"]), int(m["minor"]), int(m["patch"]), m["pre"] or "")

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A pre-release sorts before its release; numeric identifiers compare as numbers.
        pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.pre.split(".")) if self.pre else ()
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)  # type: ignore[return-value]

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        return self._key() >= other._key()

    def bump(self, level: str) -> Version:
        if level == "major":
            return Version(self.major + 1, 0, 0)
        if level == "minor":
            return Version(self.major, self.minor + 1, 0)
        if level == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise LlmopsError(f"unknown bump level '{level}' (allowed: {', '.join(LEVELS)})")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")


def level_between(old: Version, new: Version) -> str:
    """The bump level that takes OLD to NEW (NEW must be greater)."""
    if not new > old:
        raise LlmopsError(f"version {new} is not greater than {old}")
    if new.major != old.major:
        return "major"
    if new.minor != old.minor:
        return "minor"
    return "patch"

"""Carry a values file across the suite's renamed and removed keys.

The one table is ``charts/llmops-stack/migrations.yaml`` (the chart itself
refuses a values file that still sets an old key, naming old path, new path
and version). This applies the same table to a values tree the way a user
would by hand: a renamed key's value moves to its new path, a removed key
is dropped. It never invents a value for a new rule; what else a version
asks for is in docs/upgrading.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops import paths

TABLE = paths.CHARTS_DIR / "llmops-stack" / "migrations.yaml"


@dataclass(frozen=True)
class Applied:
    old: str
    new: str
    version: str


def table(path: Path = TABLE) -> list[dict[str, str]]:
    return list((yaml.safe_load(path.read_text()) or {}).get("migrations") or [])


def _pop(tree: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    *parents, leaf = dotted.split(".")
    node: Any = tree
    for key in parents:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    if not isinstance(node, dict) or leaf not in node:
        return False, None
    return True, node.pop(leaf)


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def apply(values: dict[str, Any], entries: list[dict[str, str]] | None = None) -> tuple[dict[str, Any], list[Applied]]:
    """VALUES with every old key of the table moved (renamed) or dropped (removed), and what was done."""
    out = copy.deepcopy(values)
    done = []
    for m in entries if entries is not None else table():
        found, value = _pop(out, m["old"])
        if not found:
            continue
        if m.get("new"):
            _put(out, m["new"], value)
        done.append(Applied(m["old"], m.get("new") or "", str(m["version"])))
    return out, done

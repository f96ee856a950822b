"""Load YAML while remembering the line of every key, so errors can say `file:line`.

PyYAML's ``compose`` keeps the position of each node; we walk the node tree
once and record, for every values path (a tuple of keys and list indices),
the 1-based line where it is written. Duplicate keys, which PyYAML would
silently collapse to the last one, are reported instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]

# libyaml's parser when PyYAML was built with it (about 10x faster on chart values files).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlSyntaxError(Exception):
    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass
class PositionedYaml:
    """A parsed YAML document plus the line of every path in it."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    duplicates: list[tuple[PathKey, int, int]] = field(default_factory=list)

    def line_of(self, path: PathKey) -> int | None:
        """Line of PATH, or of its closest written ancestor, or None if nothing of it is in this file."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None and (cut > 0 or path == ()):
                return line
        return None


def _walk(node: yaml.Node, path: PathKey, out: PositionedYaml) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            # Merge keys (<<) are rare in values files; keep positions of what we can see.
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                out.duplicates.append((path + (key,), seen[key], line))
            seen[key] = line
            out.lines[path + (key,)] = line
            _walk(value_node, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out.lines.setdefault(path + (index,), item.start_mark.line + 1)
            _walk(item, path + (index,), out)


def load(path: str | Path, text: str | None = None, display: str | None = None) -> PositionedYaml:
    """Parse one YAML document from PATH (or TEXT) and index the line of every key."""
    name = display or str(path)
    if text is None:
        text = Path(path).read_text()
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSyntaxError(name, line, f"YAML syntax error: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(name, 1, f"YAML error: {exc}") from exc
    result = PositionedYaml(name, data if data is not None else {})
    result.lines[()] = 1
    if node is not None:
        _walk(node, (), result)
    return result


def format_path(path: PathKey) -> str:
    """('vllm', 'models', 0, 'name') -> 'vllm.models[0].name'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"

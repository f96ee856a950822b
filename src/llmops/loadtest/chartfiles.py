"""Generate ``charts/loadtest/files/``: the locustfile and the harness modules it imports.

The loadtest chart ships the Locust code to its pods in a ConfigMap, read
with ``.Files.Glob``. Those files are not tracked: this build step copies
them from the repository (``loadtests/locustfile.py`` and the ``llmops``
modules the locustfile imports, followed transitively, with their package
``__init__`` files) before Helm reads the chart. Rendering through the
harness (``render.ensure_dependencies``) runs it; ``llmops chart-files`` and
``make loadtest-files`` run it by hand (a plain ``helm template
charts/loadtest`` without them fails with a message naming that command).
"""

from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path

from llmops import paths

CHART = "loadtest"
LOCUSTFILE = paths.REPO_ROOT / "loadtests" / "locustfile.py"
SRC = paths.REPO_ROOT / "src"
COMMAND = "llmops chart-files (or make loadtest-files)"


def _imports(path: Path) -> set[str]:
    """``llmops.*`` module names PATH imports when it is imported.

    Imports inside function bodies are left out: they run only when called
    (``llmops.loadtest.demo_step`` imports the whole demo lazily), and the pod
    never calls them.
    """
    found: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "llmops":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "llmops")
        todo.extend(ast.iter_child_nodes(node))
    return found


def _source(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module (a function), not a module


def sources() -> dict[str, Path]:
    """Path under files/ -> repository file, for the locustfile and its import closure."""
    out: dict[str, Path] = {"locustfile.py": LOCUSTFILE}
    todo = [LOCUSTFILE]
    while todo:
        for module in sorted(_imports(todo.pop())):
            parts = module.split(".")
            # each package on the way needs its __init__ for the import to work
            for depth in range(1, len(parts) + 1):
                src = _source(".".join(parts[:depth]))
                if src is None:
                    continue
                rel = src.relative_to(SRC).as_posix()
                if rel not in out:
                    out[rel] = src
                    todo.append(src)
    return dict(sorted(out.items()))


def generate(chart_dir: Path | None = None) -> list[str]:
    """Write files/ of the loadtest chart (only files whose content changed); returns the paths under files/.

    Files in files/ that the closure no longer needs are removed. Writes are
    atomic, so parallel renders (pytest-xdist) never read half a file.
    """
    files = (chart_dir or paths.CHARTS_DIR / CHART) / "files"
    wanted = sources()
    for rel, src in wanted.items():
        dest = files / rel
        text = src.read_text()
        if dest.is_file() and dest.read_text() == text:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, dest)
    for stale in sorted(files.rglob("*.py")):
        if stale.relative_to(files).as_posix() not in wanted:
            stale.unlink()
    return list(wanted)

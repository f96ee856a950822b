"""The harness's modules import each other without cycles (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from llmops import paths

SRC = paths.REPO_ROOT / "src"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in (SRC / "llmops").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmops"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in files else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("llmops"))
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] when there is none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_harness_modules_have_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_reports_a_cycle_through_a_function_level_import() -> None:
    graph = {"llmops.cluster.endpoints": {"llmops.loadtest.targets"}, "llmops.loadtest.targets": {"llmops.cluster.endpoints"}}
    assert find_cycle(graph) == ["llmops.cluster.endpoints", "llmops.loadtest.targets", "llmops.cluster.endpoints"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_endpoints_and_load_test_targets_share_the_kubeconfig_lookup_below_both() -> None:
    graph = import_graph()
    assert "llmops.cluster.kubeconfig" in graph["llmops.cluster.endpoints"] and "llmops.cluster.kubeconfig" in graph["llmops.loadtest.targets"]
    assert "llmops.loadtest.targets" not in graph["llmops.cluster.endpoints"]


def test_kubeconfig_follows_llmops_cluster_then_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmops import cluster
    from llmops.cluster import kubeconfig

    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path))
    monkeypatch.setenv("LLMOPS_CLUSTER", "mine")
    monkeypatch.setenv("KUBECONFIG", "/elsewhere/config")
    assert kubeconfig.resolve() == "/elsewhere/config"  # no local cluster "mine" yet
    path = cluster.kubeconfig_path("mine")
    path.parent.mkdir(parents=True)
    path.write_text("apiVersion: v1\n")
    assert kubeconfig.resolve() == str(path)

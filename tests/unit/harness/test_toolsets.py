"""Tool sets: each command installs only the tools it runs, derived from the `for` keys in pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmops import paths, tools
from llmops.errors import ToolError

PYPROJECT_HEAD = """
[project]
dependencies = []
[tool.llmops.toolsets]
demo = "make demo"
unit = "make test-unit"
"""


def _pyproject(tmp_path: Path, tool_table: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT_HEAD + tool_table)
    return path


def test_every_pinned_tool_names_its_sets_explicitly() -> None:
    # load_specs raises on a table without `for`; this also proves the real file loads.
    specs = tools.load_specs()
    sets = set(tools.load_toolsets())
    for spec in specs.values():
        assert "for" in spec.raw, spec.name
        assert set(spec.sets) <= sets, spec.name


def test_a_new_tool_without_for_fails_loudly_naming_the_tool_and_the_sets(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, '[tool.llmops.tools.registry]\nkind = "go"\nversion = "v3.0.0"\n')
    with pytest.raises(ToolError, match=r"\[tool\.llmops\.tools\.registry\]: missing `for = \[\.\.\.\]`.*demo, unit"):
        tools.load_specs(path)


def test_a_tool_naming_an_unknown_set_fails(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, '[tool.llmops.tools.x]\nkind = "go"\nversion = "1"\nfor = ["demo", "nightly"]\n')
    with pytest.raises(ToolError, match="unknown set.*nightly"):
        tools.load_specs(path)


def test_the_old_optional_key_is_rejected_with_the_replacement(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, '[tool.llmops.tools.x]\nkind = "go"\nversion = "1"\noptional = true\n')
    with pytest.raises(ToolError, match=r"write `for = \[\]`"):
        tools.load_specs(path)


def test_demo_installs_what_the_demo_runs_and_none_of_the_test_only_tools() -> None:
    demo = set(tools.tools_for("demo"))
    # validate (Helm 3 + 4), cluster up (control plane, etcd, kwok, kubectl), release (helm3), load test (simulator);
    # cluster up's real node (kubelet/kube-proxy, CoreDNS, containerd, runc, CNI, iptables, conntrack)
    # and the images it builds for it (buildah, mmdebstrap, gcc for the static pause)
    assert demo == {"helm3", "helm4", "kubectl", "kube-control-plane", "etcd", "kwok", "inference-sim",
                    "kube-node", "coredns", "containerd", "ctr", "runc", "cni-plugins", "iptables", "conntrack",
                    "buildah", "mmdebstrap", "gcc"}


def test_heavy_tools_belong_only_to_the_tier_that_runs_them() -> None:
    specs = tools.load_specs()
    assert specs["keda"].sets == ("e2e",)  # only the autoscaling e2e runs KEDA
    assert specs["vllm"].sets == ("engine",)
    assert specs["ct"].sets == ("cluster",)
    assert "checkov" in tools.tools_for("unit") and "checkov" not in tools.tools_for("demo")


def test_all_is_the_union_of_the_sets_and_leaves_out_tools_in_no_set() -> None:
    union = {name for s in tools.load_toolsets() for name in tools.tools_for(s)}
    assert set(tools.tools_for("all")) == union
    assert not {"kind", "guidellm"} & union  # `for = []`: installed only when named


def test_unknown_set_and_names_with_set_are_refused() -> None:
    with pytest.raises(ToolError, match="unknown tool set 'nightly'; sets: demo"):
        tools.tools_for("nightly")
    with pytest.raises(ToolError, match="not both"):
        tools.select(tools.load_specs(), ["helm3"], "demo")


def test_every_make_target_bootstraps_a_declared_set() -> None:
    makefile = (paths.REPO_ROOT / "Makefile").read_text()
    used = set(re.findall(r"^\t@scripts/bootstrap --for (\S+)$", makefile, re.MULTILINE))
    assert used == {*tools.load_toolsets(), tools.ALL}, "every set has its make target and no target names an unknown set"


def test_every_tool_in_a_set_has_a_cold_figure_in_benchmarks_md() -> None:
    # The heartbeat's expectation on a fresh machine comes from that table.
    seeds = tools.seed_seconds()
    missing = [n for n in tools.tools_for("all") if n not in seeds and tools.load_specs()[n].kind != "python-entrypoint"]
    assert not missing, f"add a cold-install row to docs/benchmarks.md for {missing}"


def test_install_overlaps_download_bound_kinds_with_go_builds_and_records_durations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "cache"))
    running: set[str] = set()
    overlapped: list[set[str]] = []
    lock = threading.Lock()

    def fake(spec: tools.ToolSpec, log: Path, hb: object) -> Path:
        with lock:
            running.add(spec.kind)
            overlapped.append(set(running))
        time.sleep(0.3)
        with lock:
            running.discard(spec.kind)
        out = tmp_path / "out" / spec.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"#!/bin/sh\necho {spec.expect}\n")
        out.chmod(0o755)
        return out

    monkeypatch.setitem(tools.INSTALLERS, "go", fake)
    monkeypatch.setitem(tools.INSTALLERS, "pip-venv", fake)
    specs = {n: s for n, s in tools.load_specs().items() if n in {"helm-docs", "checkov"}}
    for name in specs:  # plain version output for the fake binaries
        specs[name] = tools.ToolSpec(**{**specs[name].__dict__, "verify": ("--version",), "kind": specs[name].kind})
    lines: list[str] = []
    results = tools.install(["helm-docs", "checkov"], specs=specs, progress=lines.append)
    assert [r.name for r in results] == ["helm-docs", "checkov"]
    assert any(s == {"go", "pip-venv"} for s in overlapped), "checkov's venv must install while the Go build runs"
    assert any("installing (go); expected ~" in line for line in lines)
    timings = (tmp_path / "cache" / "timings.json").read_text()
    assert "helm-docs v1.14.2" in timings and "checkov 3.3.30" in timings

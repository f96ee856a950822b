"""The toolchain pins and the verification that guards them."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from llmops import paths, tools
from llmops.errors import ToolError


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_tool(cache: Path, name: str, prints: str, exit_code: int = 0) -> None:
    binary = cache / "bin" / name
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text(f"#!/bin/sh\necho '{prints}'\nexit {exit_code}\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)


def test_every_required_tool_is_pinned_once_in_pyproject() -> None:
    specs = tools.load_specs()
    assert {"helm3", "helm4", "ct", "kubectl", "yamllint", "yamale", "checkov"} <= set(specs)
    install_names = [s.install_as for s in specs.values()]
    assert len(install_names) == len(set(install_names)), "two tools install under one name"
    # Majors the harness is written for; the exact pins live only in pyproject.toml.
    assert specs["helm3"].version.startswith("v3.")
    assert specs["helm4"].version.startswith("v4.")
    assert specs["ct"].version.startswith("v3.")


def test_python_entrypoint_version_comes_from_dependency_pin() -> None:
    with paths.PYPROJECT.open("rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    (pin,) = [d.partition("==")[2] for d in deps if d.startswith("yamllint==")]
    spec = tools.load_specs()["yamllint"]
    assert spec.version == pin
    assert spec.expect == pin


def test_verify_reports_missing_tool_with_fix(isolated_cache: Path) -> None:
    status = tools.verify(tools.load_specs()["helm3"])
    assert not status.ok
    assert "llmops tools install helm3" in status.detail


def test_verify_rejects_wrong_version_and_names_both(isolated_cache: Path) -> None:
    spec = tools.load_specs()["helm3"]
    _fake_tool(isolated_cache, "helm3", "v3.0.1")
    status = tools.verify(spec)
    assert not status.ok
    assert status.found == "v3.0.1"
    assert spec.version in status.detail and "--force helm3" in status.detail


def test_verify_accepts_pinned_version(isolated_cache: Path) -> None:
    spec = tools.load_specs()["helm4"]
    _fake_tool(isolated_cache, "helm4", spec.version)
    status = tools.verify(spec)
    assert status.ok, status.detail
    assert status.found == spec.version


def test_verify_fails_when_tool_exits_non_zero(isolated_cache: Path) -> None:
    _fake_tool(isolated_cache, "ct", tools.load_specs()["ct"].version, exit_code=3)
    status = tools.verify(tools.load_specs()["ct"])
    assert not status.ok
    assert "exited 3" in status.detail


def test_require_names_the_fix_when_tool_missing(isolated_cache: Path) -> None:
    with pytest.raises(ToolError, match="make bootstrap"):
        tools.require("helm3")


def test_unknown_tool_name_lists_the_pinned_ones() -> None:
    with pytest.raises(ToolError, match="pinned tools: .*helm3"):
        tools.install(["helm5"])


@pytest.mark.parametrize("name", tools.tools_for("unit"))
def test_installed_tool_reports_pinned_version(name: str) -> None:
    """The real cache (after `make test-unit` bootstrapped the unit set) holds exactly the pinned versions."""
    status = tools.verify(tools.load_specs()[name])
    assert status.ok, status.detail


def test_only_the_tools_module_runs_go_so_every_go_cache_stays_in_the_tool_cache() -> None:
    """`go` run with the default environment writes ~/go (GOPATH) and ~/.cache/go-build (GOCACHE).

    llmops.tools.go_env() points GOMODCACHE/GOCACHE into the tool cache; any
    other place that starts `go` (a test downloading a module, a script)
    would bypass it.
    """
    import ast

    offenders = []
    roots = [paths.REPO_ROOT / "src", paths.REPO_ROOT / "tests", paths.REPO_ROOT / "scripts"]
    files = [f for r in roots for f in sorted(r.rglob("*.py"))]
    assert len(files) > 50, "the scan found too few Python files to mean anything"
    for f in files:
        if f == paths.REPO_ROOT / "src" / "llmops" / "tools.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            # an argv literal passed to a call: run(["go", ...]), Popen(("go", ...))
            argv = node.args[0] if isinstance(node, ast.Call) and node.args else None
            if isinstance(argv, (ast.List, ast.Tuple)) and argv.elts and isinstance(argv.elts[0], ast.Constant) \
                    and argv.elts[0].value == "go":
                offenders.append(f"{f.relative_to(paths.REPO_ROOT)}:{node.lineno}")
    assert not offenders, f"start Go through llmops.tools (go_env) instead: {offenders}"


def test_require_names_the_tool_table_and_its_sets_for_an_alias(isolated_cache: Path) -> None:
    with pytest.raises(ToolError, match=r"llmops tools install kube-control-plane` \(tool sets: demo, cluster, e2e, engine\)"):
        tools.require("kube-scheduler")


def test_kube_node_is_built_from_the_control_planes_module_version_and_replaces() -> None:
    specs = tools.load_specs()
    node, cp = specs["kube-node"], specs["kube-control-plane"]
    assert (node.get("module"), node.version, node.get("ldflags")) == (cp.get("module"), cp.version, cp.get("ldflags"))
    assert node.get("replace") == cp.get("replace")
    assert {"kubelet", "kube-proxy", "llmops-device-plugin"} <= {node.install_as, *node.get("aliases")}


def test_build_like_refuses_a_table_that_also_pins_its_own_version(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.llmops.toolsets]\nunit = "the unit tier"\n'
        '[tool.llmops.tools.a]\nkind = "go"\nfor = ["unit"]\nmodule = "m"\nversion = "v1"\n'
        '[tool.llmops.tools.b]\nkind = "go"\nfor = ["unit"]\nbuild_like = "a"\nversion = "v2"\n'
    )
    with pytest.raises(ToolError, match="build_like takes them from a"):
        tools.load_specs(pyproject)


def test_an_edit_to_a_go_tools_own_source_makes_it_stale(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tools.load_specs()["kube-node"]
    spec.home.mkdir(parents=True)
    (spec.home / ".sources").write_text(tools.sources_digest(spec))
    assert tools.FRESHNESS["go"](spec)
    (spec.home / ".sources").write_text("digest-of-an-older-main.go")
    assert not tools.FRESHNESS["go"](spec)


@pytest.mark.parametrize("name", ["containerd", "ctr", "runc", "cni-plugins", "iptables", "buildah", "gcc", "mmdebstrap"])
def test_real_node_apt_tools_are_pinned_to_exact_debian_versions(name: str) -> None:
    spec = tools.load_specs()[name]
    assert spec.kind == "apt" and spec.get("package") and any(ch.isdigit() for ch in spec.version)


def test_verify_exit_accepts_the_known_failure_and_refuses_a_clean_exit(isolated_cache: Path) -> None:
    """The HTTP add-on's binaries cannot start without their environment: the pinned panic proves them."""
    spec = tools.load_specs()["keda-http-add-on"]
    assert spec.get("verify_exit") == 2
    _fake_tool(isolated_cache, spec.install_as, f"panic: required key KEDA_HTTP_SCALER_TARGET_ADMIN_NAMESPACE missing value\n"
               f"/m/github.com/kedacore/{spec.expect}:43 +0x4c", exit_code=2)
    status = tools.verify(spec)
    assert status.ok, status.detail
    _fake_tool(isolated_cache, spec.install_as, spec.expect, exit_code=0)
    status = tools.verify(spec)
    assert not status.ok and "exited 0 (expected 2)" in status.detail

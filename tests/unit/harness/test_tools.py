"""The toolchain pins and the verification that guards them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from llmops import tools
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
    assert specs["helm3"].version.startswith("v3.21.")
    assert specs["helm4"].version.startswith("v4.2.")
    assert specs["ct"].version.startswith("v3.14.")


def test_python_entrypoint_version_comes_from_dependency_pin() -> None:
    spec = tools.load_specs()["yamllint"]
    assert spec.version == "1.38.0"
    assert spec.expect == "1.38.0"


def test_verify_reports_missing_tool_with_fix(isolated_cache: Path) -> None:
    status = tools.verify(tools.load_specs()["helm3"])
    assert not status.ok
    assert "llmops tools install helm3" in status.detail


def test_verify_rejects_wrong_version_and_names_both(isolated_cache: Path) -> None:
    _fake_tool(isolated_cache, "helm3", "v3.20.0")
    status = tools.verify(tools.load_specs()["helm3"])
    assert not status.ok
    assert status.found == "v3.20.0"
    assert "v3.21.4" in status.detail and "--force helm3" in status.detail


def test_verify_accepts_pinned_version(isolated_cache: Path) -> None:
    _fake_tool(isolated_cache, "helm4", "v4.2.4")
    status = tools.verify(tools.load_specs()["helm4"])
    assert status.ok, status.detail
    assert status.found == "v4.2.4"


def test_verify_fails_when_tool_exits_non_zero(isolated_cache: Path) -> None:
    _fake_tool(isolated_cache, "ct", "v3.14.0", exit_code=3)
    status = tools.verify(tools.load_specs()["ct"])
    assert not status.ok
    assert "exited 3" in status.detail


def test_require_names_the_fix_when_tool_missing(isolated_cache: Path) -> None:
    with pytest.raises(ToolError, match="make bootstrap"):
        tools.require("helm3")


def test_unknown_tool_name_lists_the_pinned_ones() -> None:
    with pytest.raises(ToolError, match="pinned tools: .*helm3"):
        tools.install(["helm5"])


@pytest.mark.parametrize("name", ["helm3", "helm4", "ct", "kubectl", "yamllint", "yamale", "checkov"])
def test_installed_tool_reports_pinned_version(name: str) -> None:
    """The real cache (after `make bootstrap`) holds exactly the pinned versions."""
    status = tools.verify(tools.load_specs()[name])
    assert status.ok, status.detail


def test_kube_node_is_built_from_the_control_planes_module_version_and_replaces() -> None:
    specs = tools.load_specs()
    node, cp = specs["kube-node"], specs["kube-control-plane"]
    assert (node.get("module"), node.version, node.get("ldflags")) == (cp.get("module"), cp.version, cp.get("ldflags"))
    assert node.get("replace") == cp.get("replace")
    assert {"kubelet", "kube-proxy", "llmops-device-plugin"} <= {node.install_as, *node.get("aliases")}


def test_build_like_refuses_a_table_that_also_pins_its_own_version(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.llmops.tools.a]\nkind = "go"\nmodule = "m"\nversion = "v1"\n'
        '[tool.llmops.tools.b]\nkind = "go"\nbuild_like = "a"\nversion = "v2"\n'
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

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


@pytest.mark.parametrize("name", tools.tools_for("unit"))
def test_installed_tool_reports_pinned_version(name: str) -> None:
    """The real cache (after `make test-unit` bootstrapped the unit set) holds exactly the pinned versions."""
    status = tools.verify(tools.load_specs()[name])
    assert status.ok, status.detail


def test_require_names_the_tool_table_and_its_sets_for_an_alias(isolated_cache: Path) -> None:
    with pytest.raises(ToolError, match=r"llmops tools install kube-control-plane` \(tool sets: demo, cluster, e2e\)"):
        tools.require("kube-scheduler")

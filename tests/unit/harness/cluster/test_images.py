"""Images built here for the real node: names, cache keys, reproducible builds."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from llmops.cluster import images


def test_every_image_is_named_localhost_llmops_what_version_and_runs_as_non_root() -> None:
    for recipe in images.recipes().values():
        assert recipe.ref == f"localhost/llmops/{recipe.name}:{recipe.version}"
        assert not recipe.user.startswith("0"), recipe.name


def test_the_simulator_image_carries_the_pinned_simulator_version() -> None:
    from llmops import tools

    assert images.ref("llm-d-inference-sim") == f"localhost/llmops/llm-d-inference-sim:{tools.load_specs()['inference-sim'].version}"


def test_cache_key_changes_with_the_bytes_of_an_input_file_and_with_the_recipe(tmp_path: Path) -> None:
    recipe = images.Recipe("x", "1", "scratch", files={"/x": "tool:x"}, entrypoint=("/x",))
    binary = tmp_path / "x"
    binary.write_bytes(b"one")
    first = images.cache_key(recipe, {"/x": binary})
    binary.write_bytes(b"two")
    assert images.cache_key(recipe, {"/x": binary}) != first
    binary.write_bytes(b"one")
    assert images.cache_key(recipe, {"/x": binary}) == first
    other = images.Recipe("x", "1", "scratch", files={"/x": "tool:x"}, entrypoint=("/x", "--flag"))
    assert images.cache_key(other, {"/x": binary}) != first


def test_unknown_image_name_lists_the_table() -> None:
    with pytest.raises(images.LlmopsError, match="known: .*pause"):
        images.build_all(["nope"])


def _manifest_digest(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    return str(index["manifests"][0]["digest"])


def test_pause_image_builds_reproducibly_from_the_pinned_kubernetes_pause_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builds into two empty caches give the same image digest (gcc + buildah, about 2 s).

    The digest covers the config and every layer's bytes; only the archive's
    own tar headers carry the build time.
    """
    digests = []
    for run in ("a", "b"):
        monkeypatch.setattr(images, "images_dir", lambda run=run: tmp_path / run)
        digests.append(_manifest_digest(images.build(images.recipes()["pause"])))
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")


def test_on_demand_images_are_built_only_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    monkeypatch.setattr(images, "build", lambda recipe, say=None: built.append(recipe.name) or Path(recipe.name))
    on_demand = {n for n, r in images.recipes().items() if r.on_demand}
    assert "vllm-cpu" in on_demand, "the 6-7 GB engine image must not be built for every cluster up"
    images.build_all()
    assert built and not on_demand & set(built)
    built.clear()
    images.build_all(["vllm-cpu"])
    assert built == ["vllm-cpu"]



def test_http_add_on_image_holds_the_interceptor_and_scaler_of_the_pinned_add_on_tool() -> None:
    from llmops import tools

    recipe = images.recipes()[images.HTTP_ADD_ON_IMAGE]
    spec = tools.load_specs()["keda-http-add-on"]
    assert recipe.files == {"/keda-http-interceptor": "tool:keda-http-interceptor", "/keda-http-scaler": "tool:keda-http-scaler"}
    # `tool:NAME` is an install name: each must be a binary that tool's build links into the cache's bin.
    packages = spec.get("packages")
    assert packages["keda-http-interceptor"].endswith("/interceptor") and packages["keda-http-scaler"].endswith("/scaler")
    assert recipe.base == "scratch" and recipe.ref == f"localhost/llmops/keda-http-add-on:{spec.version}"


def test_http_add_on_image_is_on_demand_and_out_of_cluster_up() -> None:
    """Its tool is in the cluster and e2e sets only: `cluster up` (demo) and `images build` without names must not need it."""
    from llmops import cluster

    assert images.recipes()[images.HTTP_ADD_ON_IMAGE].on_demand
    assert images.HTTP_ADD_ON_IMAGE not in cluster.NODE_IMAGES


def test_http_add_on_image_input_missing_names_the_tool_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(images.ToolError, match=r"llmops tools install keda-http-add-on` \(tool sets: cluster, e2e\)"):
        images.build(images.recipes()[images.HTTP_ADD_ON_IMAGE])

def test_vllm_cpu_image_copies_the_pinned_engine_venv_and_is_named_for_its_vllm_version() -> None:
    from llmops import tools

    recipe = images.recipes()["vllm-cpu"]
    assert recipe.venv == "vllm" and tools.load_specs()["vllm"].kind == "pip-venv-staged"
    assert recipe.ref == f"localhost/llmops/vllm-cpu:{tools.load_specs()['vllm'].version}"
    # What vLLM's CPU backend runs besides Python: the C++ compiler and openssl (header hash) for
    # torch.compile, lscpu via /bin/sh for the thread binding.
    assert {"g++", "openssl", "util-linux", "dash"} <= set(recipe.packages)


def test_cache_key_of_a_venv_image_follows_the_installed_distributions(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = images.Recipe("x", "1", "debian", packages=("python3",), venv="v")
    pins = {"dists": ["torch-2.13.0.dist-info"]}
    monkeypatch.setattr(images, "venv_pins", lambda tool: json.dumps(pins))
    first = images.cache_key(recipe, {})
    pins["dists"] = ["torch-2.13.1.dist-info"]
    assert images.cache_key(recipe, {}) != first


def _import_x(root: Path) -> str:
    import subprocess
    import sys

    code = "import m; print(m.X)"
    env = {"PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("pin", [True, False])
def test_pinned_pyc_times_keep_copied_bytecode_valid_after_the_fixed_file_times(tmp_path: Path, pin: bool) -> None:
    """The .pyc of ``X = 1`` is kept; the source then says ``X = 2`` (same size) at the fixed time.

    Python runs the pyc only while its recorded mtime and size match the
    source: with the times pinned it prints 1, without them it recompiles (2).
    """
    import os
    import py_compile

    source = tmp_path / "m.py"
    source.write_text("X = 1\n")
    os.utime(source, (1_600_000_000, 1_600_000_000))
    py_compile.compile(str(source), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    source.write_text("X = 2\n")
    os.utime(source, (images.SOURCE_DATE_EPOCH, images.SOURCE_DATE_EPOCH))
    if pin:
        images._pin_pyc_times(tmp_path)
    assert _import_x(tmp_path) == ("1" if pin else "2")
# Charts whose ci/*-values.yaml `ct install` runs as real pods on the real node (no registry there).
POD_CHARTS = ("vllm", "router", "llmops-stack", "loadtest")


@pytest.mark.parametrize("chart", POD_CHARTS)
def test_ci_values_of_charts_that_run_pods_use_only_images_built_here(chart: str) -> None:
    from llmops.validate import render
    from llmops.publish.bundle import images as rendered_images

    built = {r.ref for r in images.recipes().values()}
    for values in sorted((render.chart_path(chart) / "ci").glob("*-values.yaml")):
        used = {i["image"] for i in rendered_images(render.render(chart, [values], helm="helm3"))}
        assert used <= built, f"{chart}/ci/{values.name} runs {sorted(used - built)}, which no recipe builds"


def test_autoscaling_chart_runs_the_add_on_image_this_harness_builds() -> None:
    """The chart's default httpAddOn.image is the locally built image's reference (a bump moves both)."""
    import yaml

    from llmops import paths

    image = yaml.safe_load((paths.CHARTS_DIR / "autoscaling" / "values.yaml").read_text())["httpAddOn"]["image"]
    assert f"{image['registry']}/{image['repository']}:{image['tag']}" == images.ref(images.HTTP_ADD_ON_IMAGE)

"""Images built here for the real node: names, cache keys, reproducible builds."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from llmops import images


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


# Charts whose ci/*-values.yaml `ct install` runs as real pods on the real node (no registry there).
POD_CHARTS = ("vllm", "router", "llmops-stack", "loadtest")


@pytest.mark.parametrize("chart", POD_CHARTS)
def test_ci_values_of_charts_that_run_pods_use_only_images_built_here(chart: str) -> None:
    from llmops import render
    from llmops.publish.bundle import images as rendered_images

    built = {r.ref for r in images.recipes().values()}
    for values in sorted((render.chart_path(chart) / "ci").glob("*-values.yaml")):
        used = {i["image"] for i in rendered_images(render.render(chart, [values], helm="helm3"))}
        assert used <= built, f"{chart}/ci/{values.name} runs {sorted(used - built)}, which no recipe builds"

"""values_schema's coalescing (needed for values Helm refuses) agrees with Helm's own computed values."""

from __future__ import annotations

from typing import Any

import pytest

from llmops import environments, paths
from llmops.validate import render, values_schema

ENVIRONMENTS = sorted(paths.VALUES_DIR.glob("*.yaml"))


def _without_nulls_and_library_sections(tree: Any) -> Any:
    """Helm keeps null-valued chart defaults and gives library charts (common) a section; ours drops both."""
    if not isinstance(tree, dict):
        return tree
    return {k: _without_nulls_and_library_sections(v) for k, v in tree.items() if v is not None and k != "common"}


def ours(files: list[Any]) -> dict[str, Any]:
    docs, errors = values_schema.load_documents(files)
    assert not errors
    values, _sections = values_schema.coalesce(values_schema.load_chart(values_schema.UMBRELLA), [d.data for d in docs])
    return values


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda p: p.stem)
def test_coalesced_values_equal_helms_computed_values(env: Any, helm: str) -> None:
    layers = environments.test_layers([env])  # test-only digests over production placeholders
    computed = render.computed_values(values_schema.UMBRELLA, layers, helm=helm)
    assert _without_nulls_and_library_sections(computed) == _without_nulls_and_library_sections(ours(layers))


def test_a_null_in_a_values_file_deletes_the_default_in_both(helm: str, tmp_path: Any) -> None:
    layer = tmp_path / "null.yaml"
    layer.write_text("vllm:\n  modelDefaults:\n    extraArgs: null\n")
    computed = render.computed_values(values_schema.UMBRELLA, [paths.VALUES_DIR / "local.yaml", layer], helm=helm)
    assert "extraArgs" not in computed["vllm"]["modelDefaults"]
    assert "extraArgs" not in ours([paths.VALUES_DIR / "local.yaml", layer])["vllm"]["modelDefaults"]

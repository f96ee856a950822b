"""Which upgrades `llmops upgrade` refuses, judged on objects the umbrella really renders (values/local.yaml)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmops import paths
from llmops.validate import render
from llmops.publish import preview

UMBRELLA = paths.CHARTS_DIR / "llmops-stack"
LOCAL = paths.VALUES_DIR / "local.yaml"
TWO_MODELS = {"vllm": {"models": [
    {"name": "tiny", "servedModelName": "tiny-llm", "source": "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main"},
    {"name": "small", "servedModelName": "small-llm", "source": "hf://HuggingFaceTB/SmolLM2-360M-Instruct@main"}]}}
PVC_CACHE = {"vllm": {"modelCache": {"type": "pvc", "size": "1Gi", "accessMode": "ReadWriteMany"}}}


def _objs(set_values: dict[str, Any] | None = None) -> dict[preview.Key, dict[str, Any]]:
    manifests = render.render(UMBRELLA, [LOCAL], set_values=set_values)
    return {(m.kind, m.name): m.obj for m in manifests}


def test_an_upgrade_with_only_new_settings_is_not_refused() -> None:
    old = _objs()
    new = _objs({"vllm": {"modelDefaults": {"extraEnv": [{"name": "X", "value": "1"}]}}})
    assert old != new
    assert preview.refusals(old, new, traffic=None) == []


def test_a_changed_deployment_selector_is_refused_naming_the_deployment() -> None:
    old = _objs()
    new = copy.deepcopy(old)
    key = next(k for k in new if k[0] == "Deployment")
    new[key]["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "server"
    reasons = preview.refusals(old, new, traffic=None)
    assert len(reasons) == 1 and reasons[0].startswith(f"Deployment {key[1]}: spec.selector changes")


def test_a_model_cache_claim_leaving_the_release_is_refused() -> None:
    old, new = _objs(PVC_CACHE), _objs()
    claims = [name for kind, name in old if kind == "PersistentVolumeClaim"]
    assert claims, "modelCache.type pvc renders a claim per model"
    reasons = preview.refusals(old, new, traffic=None)
    assert any(r.startswith(f"PersistentVolumeClaim {claims[0]} leaves the release") for r in reasons)


@pytest.mark.parametrize(("served", "refused"), [(None, True), (12.0, True), (0.0, False)])
def test_a_dropped_model_is_refused_while_it_has_traffic_or_nothing_shows_it_idle(served: float | None,
                                                                                refused: bool) -> None:
    old, new = _objs(TWO_MODELS), _objs()
    asked: list[str] = []

    def traffic(model: str) -> float | None:
        asked.append(model)
        return served

    reasons = preview.refusals(old, new, traffic=traffic)
    assert asked == ["small"]
    assert bool([r for r in reasons if r.startswith("model small is dropped")]) is refused

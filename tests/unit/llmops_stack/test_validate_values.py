"""llmops-stack.validateValues: cross-chart rules of the umbrella."""

from __future__ import annotations

import pytest

from llmops.validate.render import RenderError

CHART = "llmops-stack"


def test_per_model_map_key_that_names_no_vllm_model_fails(render_chart) -> None:
    # Any subchart alias with a `models` map is checked, including ones added later.
    with pytest.raises(RenderError) as exc:
        render_chart(
            CHART,
            set_values={
                "autoscaling": {"enabled": True, "models": {"tiny": {}, "ghost": {}}},
                "vllm": {"models": [{"name": "tiny", "source": "hf://o/t@1", "replicas": None}]},
            },
        )
    msg = str(exc.value)
    assert 'autoscaling.models.ghost: no model named "ghost"' in msg
    assert "autoscaling.models.tiny" not in msg


def test_per_model_map_keys_are_not_checked_when_the_subchart_is_disabled(render_chart) -> None:
    assert render_chart(CHART, set_values={"autoscaling": {"enabled": False, "models": {"ghost": {}}}})


def test_unknown_top_level_key_is_rejected_by_the_umbrella_schema(render_chart) -> None:
    with pytest.raises(RenderError, match="vlmm"):
        render_chart(CHART, set_values={"vlmm": {"engine": "vllm"}})


def test_vllm_subchart_can_be_disabled_by_its_condition(render_chart) -> None:
    manifests = render_chart(CHART, set_values={"vllm": {"enabled": False}})
    assert [m.name for m in manifests if m.kind == "Deployment"] == ["llmops-router"]


def test_autoscaled_model_with_a_fixed_replica_count_fails(render_chart) -> None:
    values = {"autoscaling": {"enabled": True, "models": {"tiny": {}}}, "vllm": {"modelDefaults": {"replicas": 2}}}
    with pytest.raises(RenderError, match=r"vllm.models\[0\].replicas: 2, but autoscaling.models.tiny scales this model"):
        render_chart(CHART, set_values=values)


def test_autoscaled_model_with_null_replicas_renders_without_spec_replicas(render_chart) -> None:
    values = {"autoscaling": {"enabled": True, "models": {"tiny": {}}}, "vllm": {"models": [{"name": "tiny", "source": "hf://o/t@1", "replicas": None}]},
              # the triggers read what the observability monitor scrapes
              "global": {"monitoring": {"enabled": True}},
              "observability": {"rules": {"gpuXid": {"enabled": False}, "gpuEcc": {"enabled": False}}}}
    (dep,) = [m.obj for m in render_chart(CHART, set_values=values) if m.kind == "Deployment" and m.name != "llmops-router"]
    assert "replicas" not in dep["spec"]

"""vllm.validateValues and values.schema.json: bad values fail rendering, naming each values path."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.validate.render import RenderError

CHART = "vllm"


def _error(render_chart, values: dict[str, Any]) -> str:
    with pytest.raises(RenderError) as exc:
        render_chart(CHART, set_values=values)
    return str(exc.value)


def test_tensor_parallel_larger_than_gpu_count_fails_naming_the_model(render_chart) -> None:
    msg = _error(render_chart, {"engine": "vllm", "models": [{"name": "m", "source": "hf://o/m@a", "gpu": {"count": 2}, "tensorParallelSize": 4}]})
    assert "vllm.models[0].tensorParallelSize: 4 is larger than vllm.models[0].gpu.count 2" in msg


def test_grace_period_not_above_prestop_plus_drain_fails(render_chart) -> None:
    msg = _error(render_chart, {"shutdown": {"preStopSleepSeconds": 10, "drainSeconds": 50, "terminationGracePeriodSeconds": 60}})
    assert "vllm.shutdown.terminationGracePeriodSeconds: 60 must be larger than preStopSleepSeconds + drainSeconds = 60" in msg


def test_every_problem_is_reported_in_one_failure(render_chart) -> None:
    values = {
        "engine": "vllm",
        "models": [
            {"name": "dup", "source": "hf://o/a@1"},
            {"name": "dup", "source": "hf://o/b@1", "tensorParallelSize": 2},
        ],
        "apiKey": {"enabled": True},
        "rollout": {"maxSurge": 0, "maxUnavailable": 0},
    }
    msg = _error(render_chart, values)
    for path in (
        "vllm.models[1].name",
        "vllm.models[1].servedModelName",
        "vllm.models[1].tensorParallelSize",
        "vllm.apiKey.secretName",
        "vllm.rollout",
    ):
        assert path in msg, path
    assert "5 problem(s)" in msg


def test_air_gapped_rejects_sources_that_need_egress(render_chart) -> None:
    msg = _error(render_chart, {"engine": "vllm", "global": {"airGapped": True}, "models": [{"name": "m", "source": "s3://b/m"}]})
    assert "vllm.models[0].source: global.airGapped is true" in msg


def test_production_requires_pinned_revision_and_image_digests(render_chart) -> None:
    values = {"engine": "vllm", "global": {"environment": "production"}, "models": [{"name": "m", "source": "hf://o/m"}]}
    msg = _error(render_chart, values)
    assert "vllm.models[0].source: production models must pin a revision" in msg
    assert "vllm.image.digest" in msg and "vllm.tests.image.digest" in msg


def test_read_write_once_cache_with_several_replicas_fails(render_chart) -> None:
    values = {"modelCache": {"type": "pvc"}, "models": [{"name": "m", "source": "hf://o/m@a", "replicas": 2}]}
    assert "vllm.models[0].replicas: 2 replicas share one ReadWriteOnce cache claim" in _error(render_chart, values)


def test_loosened_security_context_fails_restricted_checks(render_chart) -> None:
    values = {"containerSecurityContext": {"allowPrivilegeEscalation": True, "capabilities": {"add": ["SYS_ADMIN"]}}}
    msg = _error(render_chart, values)
    assert "allowPrivilegeEscalation: must be false" in msg
    assert "SYS_ADMIN is not allowed" in msg


def test_duplicate_served_model_name_fails(render_chart) -> None:
    values = {"models": [{"name": "a", "servedModelName": "x", "source": "hf://o/a@1"}, {"name": "b", "servedModelName": "x", "source": "hf://o/b@1"}]}
    assert 'vllm.models[1].servedModelName: "x" is already served by vllm.models[0]' in _error(render_chart, values)


def test_model_name_that_makes_a_name_longer_than_63_fails(render_chart) -> None:
    values = {"models": [{"name": "m" * 60, "source": "hf://o/m@a"}]}
    assert "is longer than 63 characters" in _error(render_chart, values)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"engnie": "vllm"}, "engnie"),
        ({"engine": "tgi"}, "engine"),
        ({"models": [{"name": "m", "source": "hf://o/m@a", "replicsa": 2}]}, "replicsa"),
        ({"models": [{"name": "Bad_Name", "source": "hf://o/m@a"}]}, "/models/0/name"),
        ({"modelCache": {"type": "hostPath"}}, "/modelCache/type"),
        ({"image": {"digest": "sha256:short"}}, "/image/digest"),
        ({"pdb": {"minAvailable": 1}}, "minAvailable"),
        ({"models": [{"name": "m", "source": "hf://o/m@a", "gpu": {"count": -1}}]}, "/models/0/gpu/count"),
        ({"rollout": {"minReadySeconds": -1}}, "/rollout/minReadySeconds"),
    ],
    ids=["typo-root", "bad-engine", "typo-model", "bad-name", "bad-cache", "bad-digest", "no-minAvailable", "negative-gpu",
         "negative-min-ready"],
)
def test_schema_rejects_typos_bad_enums_and_ranges(render_chart, values: dict[str, Any], fragment: str) -> None:
    assert fragment in _error(render_chart, values)


def test_unknown_resource_preset_fails_even_when_resources_are_explicit(render_chart) -> None:
    helm_msg = _error(
        render_chart,
        {"modelLoader": {"resourcesPreset": "huge"}},
    )
    assert "resourcesPreset" in helm_msg or "huge" in helm_msg

"""charts/autoscaling: KEDA ScaledObjects, TriggerAuthentication and autoscaling/v2 HPAs per model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmops.validate import crds, kubeschema, render
from llmops.validate.render import RenderError

CHART = "autoscaling"
CI = sorted((render.chart_path(CHART) / "ci").glob("*-values.yaml"))
INGRESS_RATE = 'sum(rate(nginx_ingress_controller_requests{exported_service="llmops-chat"}[2m]))'


def _triggers(so: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in so["spec"]["triggers"]}


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_values_render_objects_valid_against_crds_and_kubernetes(render_chart, values: Path) -> None:
    manifests = render_chart(CHART, [values])
    objs = [m.obj for m in manifests]
    assert objs, "every ci scenario renders at least one autoscaler"
    assert crds.validate_custom_resources(objs) == []
    assert kubeschema.validate_objects(objs) == []


def test_model_key_creates_scaled_object_targeting_the_engine_deployment(render_chart) -> None:
    so = render.find_one(render_chart(CHART, set_values={"models": {"chat": {}}}), "ScaledObject")
    assert so["metadata"]["name"] == "llmops-chat"
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llmops-chat"}
    assert so["metadata"]["labels"]["llmops.io/model"] == "chat"


def test_no_models_renders_no_autoscaler(render_chart) -> None:
    kinds = {m.kind for m in render_chart(CHART)}
    assert not kinds & {"ScaledObject", "HorizontalPodAutoscaler", "TriggerAuthentication"}


def test_default_tuning_wakes_faster_than_keda_defaults_scales_out_in_one_step_and_in_slowly(render_chart) -> None:
    spec = render.find_one(render_chart(CHART, set_values={"models": {"chat": {}}}), "ScaledObject")["spec"]
    assert spec["pollingInterval"] * 3 <= 30  # KEDA default polling 30 s gates activation from zero
    # the fallback still tolerates ~10 s of unreadable metrics at that polling rate
    assert spec["pollingInterval"] * spec["fallback"]["failureThreshold"] >= 10
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    up = behavior["scaleUp"]
    assert up["stabilizationWindowSeconds"] == 0 and up["selectPolicy"] == "Max"
    assert max(p["periodSeconds"] for p in up["policies"]) <= 15
    # One sync reaches a full 8-GPU node's worth from a single replica; the HPA default (+4 pods / +100 %) cannot.
    allowed_from_one = max(p["value"] if p["type"] == "Pods" else p["value"] / 100 for p in up["policies"])
    assert 1 + allowed_from_one >= 9
    # No flapping: scale-in waits for a window of low readings and removes one pod at a time.
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 60
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


def test_queue_and_kv_cache_triggers_query_only_this_models_series(render_chart) -> None:
    so = render.find_one(render_chart(CHART, set_values={"models": {"chat": {}}}), "ScaledObject")
    triggers = _triggers(so)
    assert set(triggers) == {"queue", "kv-cache"}
    queue = triggers["queue"]["metadata"]
    assert queue["query"] == 'sum(vllm:num_requests_waiting{namespace="llmops",llmops_release="llmops",llmops_model="chat"})'
    assert queue["threshold"] == "5"
    assert queue["ignoreNullValues"] == "false"  # a broken scrape is an error -> fallback
    assert "vllm:kv_cache_usage_perc" in triggers["kv-cache"]["metadata"]["query"]
    assert all(t["metricType"] == "AverageValue" for t in triggers.values())


def test_release_label_can_be_left_out_of_the_queries(render_chart) -> None:
    so = render.find_one(render_chart(CHART, set_values={"prometheus": {"releaseLabel": ""}, "models": {"chat": {}}}), "ScaledObject")
    assert _triggers(so)["queue"]["metadata"]["query"] == 'sum(vllm:num_requests_waiting{namespace="llmops",llmops_model="chat"})'


def test_ttft_trigger_scales_p95_by_pod_count_and_reads_idle_as_zero(render_chart) -> None:
    values = {"models": {"chat": {"triggers": {"ttft": {"enabled": True, "thresholdSeconds": 1.5}}}}}
    ttft = _triggers(render.find_one(render_chart(CHART, set_values=values), "ScaledObject"))["ttft"]["metadata"]
    assert ttft["threshold"] == "1.5"
    assert ttft["query"].startswith("(histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{")
    assert "* scalar(count(vllm:num_requests_running{" in ttft["query"]
    assert ttft["query"].endswith("or vector(0)")


def test_demand_trigger_is_off_by_default_and_targets_arrivals_per_replica(render_chart) -> None:
    default = _triggers(render.find_one(render_chart(CHART, set_values={"models": {"chat": {}}}), "ScaledObject"))
    assert "demand" not in default  # it needs a query over something in front of the engines
    query = 'sum(rate(nginx_ingress_controller_requests{ingress="chat"}[1m]))'
    values = {"models": {"chat": {"triggers": {"demand": {"enabled": True, "query": query, "targetPerReplica": 0.5}}}}}
    demand = _triggers(render.find_one(render_chart(CHART, set_values=values), "ScaledObject"))["demand"]
    assert demand["metricType"] == "AverageValue"  # desired = ceil(arrivals / target): the HPA's proportional rule
    assert demand["metadata"]["query"] == query
    assert demand["metadata"]["threshold"] == "0.5"
    assert demand["metadata"]["ignoreNullValues"] == "false"  # a missing series is an error -> fallback


def test_model_override_wins_over_defaults_per_model(render_chart) -> None:
    values = {"defaults": {"maxReplicas": 6}, "models": {"chat": {"maxReplicas": 2, "fallback": {"replicas": 1}}, "code": {}}}
    sos = {o["metadata"]["name"]: o["spec"] for o in render.find(render_chart(CHART, set_values=values), "ScaledObject")}
    assert sos["llmops-chat"]["maxReplicaCount"] == 2
    assert sos["llmops-chat"]["fallback"] == {"failureThreshold": 5, "replicas": 1}
    assert sos["llmops-code"]["maxReplicaCount"] == 6


def test_scale_to_zero_without_holder_or_activation_query_fails_and_says_why(render_chart) -> None:
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values={"models": {"chat": {"minReplicas": 0, "scaleToZero": {"holder": "none"}}}})
    assert "autoscaling.models.chat.scaleToZero.activationQuery" in str(err.value)
    assert "vanish with the last engine pod" in str(err.value)


def test_scale_to_zero_on_a_vllm_metric_fails_because_it_does_not_exist_at_zero_pods(render_chart) -> None:
    values = {"models": {"chat": {"minReplicas": 0, "scaleToZero": {"activationQuery": "sum(vllm:num_requests_waiting)"}}}}
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values=values)
    assert "autoscaling.models.chat.scaleToZero.activationQuery" in str(err.value)
    assert "zero engine pods" in str(err.value)


def test_scale_to_zero_with_ingress_activation_wakes_on_that_metric_only(render_chart) -> None:
    values = {"models": {"chat": {"minReplicas": 0, "scaleToZero": {"activationQuery": INGRESS_RATE, "activationThreshold": 0.5}}}}
    so = render.find_one(render_chart(CHART, set_values=values), "ScaledObject")
    assert so["spec"]["minReplicaCount"] == 0
    triggers = _triggers(so)
    activation = triggers["activation"]["metadata"]
    assert activation["query"] == INGRESS_RATE
    assert activation["activationThreshold"] == "0.5"
    assert activation["ignoreNullValues"] == "false"
    # With no pods the vLLM series are absent by design, not an error.
    assert triggers["queue"]["metadata"]["ignoreNullValues"] == "true"


@pytest.mark.parametrize(
    ("mode", "parameters"),
    [("bearer", {"bearerToken"}), ("basic", {"username", "password"}), ("tls", {"cert", "key"})],
)
def test_prometheus_auth_mode_renders_trigger_authentication_from_existing_secret(render_chart, mode: str, parameters: set[str]) -> None:
    values = {"prometheus": {"auth": {"mode": mode, "secretName": "prom-reader"}}, "models": {"chat": {}}}
    manifests = render_chart(CHART, set_values=values)
    ta = render.find_one(manifests, "TriggerAuthentication")
    refs = ta["spec"]["secretTargetRef"]
    assert {r["parameter"] for r in refs} == parameters
    assert {r["name"] for r in refs} == {"prom-reader"}
    triggers = render.find_one(manifests, "ScaledObject")["spec"]["triggers"]
    assert triggers, "the ScaledObject has no trigger to check"
    for trigger in triggers:
        assert trigger["authenticationRef"] == {"name": ta["metadata"]["name"]}
        assert trigger["metadata"]["authModes"] == mode


def test_prometheus_auth_without_secret_fails(render_chart) -> None:
    with pytest.raises(RenderError, match=r"autoscaling.prometheus.auth.secretName: required"):
        render_chart(CHART, set_values={"prometheus": {"auth": {"mode": "basic"}}, "models": {"chat": {}}})


def test_every_problem_is_reported_in_one_failure(render_chart) -> None:
    values = {"models": {"chat": {"minReplicas": 3, "maxReplicas": 2}, "code": {"triggers": {"queue": {"enabled": False}, "kvCache": {"enabled": False}}}}}
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values=values)
    text = str(err.value)
    assert "autoscaling.models.chat.minReplicas: 3 is larger than maxReplicas 2" in text
    assert "autoscaling.models.chat.fallback.replicas: 2 is larger than maxReplicas 2" not in text
    assert "autoscaling.models.code.triggers: no trigger is enabled" in text


def test_schema_rejects_a_misspelt_model_setting(render_chart) -> None:
    with pytest.raises(RenderError, match="maxReplica"):
        render_chart(CHART, set_values={"models": {"chat": {"maxReplica": 3}}})


def test_engine_hpa_renders_autoscaling_v2_with_gpu_behaviour_and_no_keda_objects(render_chart) -> None:
    manifests = render_chart(CHART, set_values={"engine": "hpa", "models": {"chat": {"maxReplicas": 3}}})
    assert not render.find(manifests, "ScaledObject")
    hpa = render.find_one(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "llmops-chat"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120
    metrics = {m["pods"]["metric"]["name"]: m["pods"]["target"]["averageValue"] for m in hpa["spec"]["metrics"]}
    assert metrics == {"vllm_num_requests_waiting": "5", "vllm_kv_cache_usage_perc": "0.75"}


def test_engine_hpa_refuses_scale_to_zero_and_ttft(render_chart) -> None:
    values = {"engine": "hpa", "models": {"chat": {"minReplicas": 0, "triggers": {"ttft": {"enabled": True}}}}}
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values=values)
    assert "autoscaling.models.chat.minReplicas: 0 needs engine keda" in str(err.value)
    assert "autoscaling.models.chat.triggers.ttft: TTFT p95 scaling needs engine keda" in str(err.value)


def test_trigger_queries_parse_with_promtool_and_read_only_contract_metrics(render_chart, tmp_path: Path) -> None:
    import subprocess

    import yaml

    from llmops import tools
    from llmops.validate import metrics_contract

    values = {"models": {"chat": {"triggers": {"ttft": {"enabled": True}}}, "batch": {"minReplicas": 0, "scaleToZero": {"activationQuery": INGRESS_RATE}}}}
    triggers = [t for so in render.find(render_chart(CHART, set_values=values), "ScaledObject") for t in so["spec"]["triggers"]
                if t["type"] == "prometheus"]
    rules = [{"record": f"keda:trigger_{i}", "expr": t["metadata"]["query"]} for i, t in enumerate(triggers)]
    path = tmp_path / "triggers.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "triggers", "rules": rules}]}))
    proc = subprocess.run([str(tools.require("promtool")), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The activation query is the user's (outside the engines by design); ours use only contract metrics.
    ours = [t["metadata"]["query"] for t in triggers if t["name"] != "activation"]
    assert len(ours) == 5  # batch: queue, kv-cache; chat: queue, kv-cache, ttft
    assert {q: metrics_contract.unknown_metrics(q) for q in ours if metrics_contract.unknown_metrics(q)} == {}

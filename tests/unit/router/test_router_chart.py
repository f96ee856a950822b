"""charts/router: the vLLM Router Deployment, discovery RBAC, drain, spread and validation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from llmops import tools
from llmops.validate import kubeschema, render
from llmops.validate.render import RenderError

CHART = "router"
CI = sorted((render.chart_path(CHART) / "ci").glob("*-values.yaml"))


def _deployment(render_chart, **values: Any) -> dict[str, Any]:
    return render.find_one(render_chart(CHART, set_values=values), "Deployment")


def _args(dep: dict[str, Any]) -> list[str]:
    return [str(a) for a in dep["spec"]["template"]["spec"]["containers"][0]["args"]]


def _flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_values_render_objects_valid_for_kubernetes(render_chart, values: Path) -> None:
    objs = [m.obj for m in render_chart(CHART, [values])]
    assert kubeschema.validate_objects(objs) == []


def test_router_runs_igw_mode_with_namespace_scoped_discovery_of_the_release_engines(render_chart) -> None:
    args = _args(_deployment(render_chart))
    assert "--enable-igw" in args  # multi-model: requests reach only their model's pods
    assert "--service-discovery" in args
    assert _flag(args, "--service-discovery-namespace") == "llmops"
    assert _flag(args, "--service-discovery-port") == "8000"
    start = args.index("--selector") + 1
    selector = set(args[start : start + 3])
    assert selector == {"app.kubernetes.io/name=vllm", "app.kubernetes.io/instance=llmops", "app.kubernetes.io/component=engine"}


def test_role_grants_only_get_list_watch_on_pods_in_the_release_namespace(render_chart) -> None:
    manifests = render_chart(CHART)
    role = render.find_one(manifests, "Role")
    assert role["metadata"]["namespace"] == "llmops"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    binding = render.find_one(manifests, "RoleBinding")
    sa = render.find_one(manifests, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "llmops"}]
    assert not [m for m in manifests if m.kind in {"ClusterRole", "ClusterRoleBinding"}]


def test_pod_meets_restricted_security_and_has_a_memory_limit(render_chart) -> None:
    spec = _deployment(render_chart)["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = spec["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["resources"]["limits"]["memory"]


def test_prefix_tree_size_comes_from_values_only_for_cache_aware(render_chart) -> None:
    args = _args(_deployment(render_chart, cacheAware={"maxTreeSize": 65536}))
    assert _flag(args, "--max-tree-size") == "65536"
    assert "--max-tree-size" not in _args(_deployment(render_chart, policy="round_robin"))


def test_retries_breaker_and_health_checks_come_from_values(render_chart) -> None:
    args = _args(_deployment(render_chart, retries={"maxRetries": 4}, healthCheck={"intervalSeconds": 7, "timeoutSeconds": 2}, circuitBreaker={"failureThreshold": 9}))
    assert _flag(args, "--retry-max-retries") == "4"
    assert _flag(args, "--health-check-interval-secs") == "7"
    assert _flag(args, "--health-check-timeout-secs") == "2"
    assert _flag(args, "--cb-failure-threshold") == "9"
    off = _args(_deployment(render_chart, circuitBreaker={"enabled": False}))
    assert "--disable-circuit-breaker" in off and "--cb-failure-threshold" not in off


def test_rate_limit_is_passed_to_the_router_only_when_set(render_chart) -> None:
    assert "--rate-limit-tokens-per-second" not in _args(_deployment(render_chart))
    assert _flag(_args(_deployment(render_chart, limits={"rateLimitPerSecond": 50})), "--rate-limit-tokens-per-second") == "50"


def test_graceful_drain_sleeps_before_stop_within_the_grace_period(render_chart) -> None:
    spec = _deployment(render_chart, drain={"preStopSleepSeconds": 15, "terminationGracePeriodSeconds": 200})["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 200
    assert spec["containers"][0]["lifecycle"]["preStop"] == {"sleep": {"seconds": 15}}


def test_a_new_router_pod_takes_traffic_only_after_its_discovery_grace(render_chart) -> None:
    # The router's /readiness answers 200 before discovery registered any engine: the startup probe waits.
    c = _deployment(render_chart)["spec"]["template"]["spec"]["containers"][0]
    assert c["startupProbe"]["initialDelaySeconds"] == 3
    c = _deployment(render_chart, drain={"discoveryGraceSeconds": 8})["spec"]["template"]["spec"]["containers"][0]
    assert c["startupProbe"]["initialDelaySeconds"] == 8


def test_router_rollout_never_drops_below_its_replicas_and_keeps_a_pdb(render_chart) -> None:
    manifests = render_chart(CHART, set_values={})
    dep = render.find_one(manifests, "Deployment")
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert render.find_one(manifests, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("bad", [-1, 301, "3"])
def test_schema_refuses_a_bad_discovery_grace_naming_the_path(render_chart, bad: Any) -> None:
    with pytest.raises(RenderError, match="discoveryGraceSeconds"):
        render_chart(CHART, set_values={"drain": {"discoveryGraceSeconds": bad}})


def test_readiness_does_not_depend_on_engines(render_chart) -> None:
    # A model scaled to zero must not take the router out of its Service.
    c = _deployment(render_chart)["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/liveness"


def test_production_gets_a_hard_spread_over_nodes(render_chart) -> None:
    prod = {"global": {"environment": "production"}, "replicaCount": 2, "image": {"digest": "sha256:" + "ab" * 32}}
    spec = _deployment(render_chart, **prod)["spec"]["template"]["spec"]
    (tsc,) = spec["topologySpreadConstraints"]
    assert tsc["topologyKey"] == "kubernetes.io/hostname"
    assert tsc["whenUnsatisfiable"] == "DoNotSchedule"
    # Tainted GPU nodes counted as empty domains would block the rollout's surge pod.
    assert tsc["nodeTaintsPolicy"] == "Honor"
    assert tsc["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "router"
    assert "topologySpreadConstraints" not in _deployment(render_chart)["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"policy": "least_loaded"}, "router.policy"),
        ({"policy": "consistent_hash", "sessionHeader": "x-my-session"}, "router.sessionHeader"),
        ({"global": {"environment": "production"}, "replicaCount": 1, "image": {"digest": "sha256:" + "ab" * 32}}, "router.replicaCount"),
        ({"global": {"environment": "production"}, "replicaCount": 2}, "router.image.digest"),
        ({"drain": {"preStopSleepSeconds": 30, "terminationGracePeriodSeconds": 30}}, "router.drain.terminationGracePeriodSeconds"),
        ({"containerSecurityContext": {"allowPrivilegeEscalation": True}}, "router.containerSecurityContext.allowPrivilegeEscalation"),
        ({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}, "router.autoscaling.minReplicas"),
    ],
)
def test_invalid_values_fail_naming_the_path(render_chart, values: dict[str, Any], path: str) -> None:
    with pytest.raises(RenderError, match=path.replace(".", r"\.").replace("[", r"\[")):
        render_chart(CHART, set_values=values)


def test_lora_adapters_behind_the_router_render_with_one_base_model_and_fail_naming_the_path_with_two(render_chart) -> None:
    # Discovery learns one model per pod (the first of its /v1/models): an
    # adapter's requests can only be trusted to reach its base model's pods
    # when that is the release's only model.
    gamma = {"name": "gamma", "source": "hf://org/gamma@main", "loraAdapters": [{"name": "sql", "source": "hf://org/sql@main"}]}
    render_chart("llmops-stack", set_values={"vllm": {"models": [gamma]}})
    beta = {"name": "beta", "source": "hf://org/beta@main"}
    with pytest.raises(RenderError, match=r"vllm\.models\[1\]\.loraAdapters: .*one model per engine pod"):
        render_chart("llmops-stack", set_values={"vllm": {"models": [beta, gamma]}})
    render_chart("llmops-stack", set_values={"vllm": {"models": [beta, gamma]}, "router": {"enabled": False},
                                             "networkPolicies": {"router": {"enabled": False}}})


_PARSE = (
    "import dataclasses, json, sys\n"
    "from vllm_router.launch_router import parse_router_args\n"
    "print(json.dumps(dataclasses.asdict(parse_router_args(sys.argv[1:])), default=str))\n"
)


def _parsed_by_the_pinned_router(args: list[str]) -> dict[str, Any]:
    python = tools.require("vllm-router").resolve().parent / "python"
    proc = subprocess.run([str(python), "-c", _PARSE, *args], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"vllm-router rejected the rendered args: {proc.stderr[-800:]}"
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


ROUTER_CI = [p for p in CI if "mode: inferencePool" not in p.read_text()]


@pytest.mark.parametrize("values", ROUTER_CI, ids=lambda p: p.name)
def test_rendered_args_are_accepted_by_the_pinned_router_with_their_types(values: Path) -> None:
    # One Helm major is enough: the args are the same text under both.
    dep = render.find_one(render.render(CHART, [values]), "Deployment")
    ours = __import__("yaml").safe_load(values.read_text()) or {}
    parsed = _parsed_by_the_pinned_router(_args(dep))
    assert parsed["enable_igw"] is True and parsed["service_discovery"] is True
    assert parsed["policy"] == ours.get("policy", "cache_aware")
    assert parsed["request_timeout_secs"] == ours.get("requestTimeoutSeconds", 1800)
    assert parsed["retry_max_retries"] == ours.get("retries", {}).get("maxRetries", 3)
    assert parsed["health_check_interval_secs"] == ours.get("healthCheck", {}).get("intervalSeconds", 5)
    assert parsed["queue_size"] == ours.get("limits", {}).get("queueSize", 1024)
    assert parsed["service_discovery_port"] == ours.get("discovery", {}).get("port", 8000)
    assert parsed["prometheus_port"] == ours.get("metrics", {}).get("port", 29000)
    if parsed["policy"] == "cache_aware":
        assert parsed["max_tree_size"] == ours.get("cacheAware", {}).get("maxTreeSize", 2097152)
    rate = ours.get("limits", {}).get("rateLimitPerSecond")
    assert parsed["rate_limit_tokens_per_second"] == rate


def test_inference_pool_mode_renders_a_pool_valid_against_the_pinned_crd_and_no_router(render_chart) -> None:
    from llmops.validate import crds

    values = {"mode": "inferencePool", "inferencePool": {"endpointPicker": {"serviceName": "epp", "port": 9002}}}
    manifests = render_chart(CHART, set_values=values)
    assert [m.kind for m in manifests] == ["InferencePool"]
    pool = manifests[0].obj
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "engine"
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"] == {"name": "epp", "kind": "Service", "port": {"number": 9002}, "failureMode": "FailClose"}
    assert crds.validate_custom_resources([pool]) == []
    # The pinned CRD's schema is really applied: a ninth target port is refused.
    broken = {**pool, "spec": {**pool["spec"], "targetPorts": [{"number": 8000 + i} for i in range(9)]}}
    assert crds.validate_custom_resources([broken]) != []


def test_inference_pool_mode_needs_an_endpoint_picker(render_chart) -> None:
    with pytest.raises(RenderError, match=r"router\.inferencePool\.endpointPicker\.serviceName"):
        render_chart(CHART, set_values={"mode": "inferencePool"})

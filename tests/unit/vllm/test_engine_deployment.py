"""charts/vllm engine Deployment: engines, args, GPU scheduling, security, probes, rollout."""

from __future__ import annotations

from typing import Any

import pytest

from llmops import tools
from llmops.validate import kubeschema, render

from ._helpers import deployments, engine, env, flag_values, pod_spec

CHART = "vllm"
H100 = "NVIDIA-H100-80GB-HBM3"


def _vllm(models: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"engine": "vllm", "models": models, **extra}


def _single(render_chart, values: dict[str, Any]) -> dict[str, Any]:
    deps = deployments(render_chart(CHART, set_values=values))
    assert len(deps) == 1, list(deps)
    return next(iter(deps.values()))


def test_default_values_render_simulator_with_no_gpu_and_valid_objects(render_chart) -> None:
    manifests = render_chart(CHART)
    dep = _single(render_chart, {})
    c = engine(dep)
    # The default simulator image is the version the harness pins and runs (pyproject.toml).
    assert c["image"] == f"ghcr.io/llm-d/llm-d-inference-sim:{tools.load_specs()['inference-sim'].version}"
    assert "command" not in c, "the simulator image's entrypoint is the simulator"
    assert "nvidia.com/gpu" not in str(c["resources"])
    assert "tolerations" not in pod_spec(dep)
    assert kubeschema.validate_objects([m.obj for m in manifests]) == []


def test_each_model_gets_its_own_deployment_and_service_named_release_dash_model(render_chart) -> None:
    models = [
        {"name": "chat", "source": "hf://org/chat@abc"},
        {"name": "code", "source": "pvc://models/code", "replicas": 3},
    ]
    manifests = render_chart(CHART, set_values=_vllm(models))
    deps = deployments(manifests)
    assert sorted(deps) == ["llmops-chat", "llmops-code"]
    assert deps["llmops-code"]["spec"]["replicas"] == 3
    services = {s["metadata"]["name"]: s for s in render.find(manifests, "Service")}
    assert sorted(services) == ["llmops-chat", "llmops-code"]
    for name, svc in services.items():
        pod_labels = deps[name]["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    # Two models must never select each other's pods.
    assert deps["llmops-chat"]["spec"]["selector"] != deps["llmops-code"]["spec"]["selector"]


def test_engine_pod_labels_follow_the_shared_contract(render_chart) -> None:
    dep = _single(render_chart, _vllm([{"name": "chat", "source": "hf://org/chat@abc"}]))
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": "llmops",
        "app.kubernetes.io/component": "engine",
        "app.kubernetes.io/part-of": "llmops-stack",
        "llmops.io/model": "chat",
    }.items() <= labels.items()
    assert "app.kubernetes.io/version" not in dep["spec"]["selector"]["matchLabels"]
    assert engine(dep)["ports"][0] == {"name": "http", "containerPort": 8000, "protocol": "TCP"}


def test_vllm_engine_args_carry_typed_settings_and_extra_args(render_chart) -> None:
    model = {
        "name": "chat",
        "servedModelName": "org/chat",
        "source": "hf://org/chat@abc",
        "dtype": "bfloat16",
        "maxModelLen": 8192,
        "maxNumSeqs": 128,
        "maxNumBatchedTokens": 4096,
        "gpu": {"count": 2},
        "tensorParallelSize": 2,
        "gpuMemoryUtilization": 0.85,
        "enablePrefixCaching": False,
        "enableChunkedPrefill": True,
        "quantization": "fp8",
        "kvCacheDtype": "fp8",
        "extraArgs": ["--seed", "7"],
    }
    c = engine(_single(render_chart, _vllm([model])))
    assert c["command"] == ["vllm", "serve"]
    flags = flag_values(c["args"])
    assert flags["--model"] == ["/cache/models/chat"]
    assert flags["--served-model-name"] == ["org/chat"]
    assert flags["--dtype"] == ["bfloat16"]
    assert flags["--max-model-len"] == ["8192"]
    assert flags["--max-num-seqs"] == ["128"]
    assert flags["--max-num-batched-tokens"] == ["4096"]
    assert flags["--tensor-parallel-size"] == ["2"]
    assert flags["--gpu-memory-utilization"] == ["0.85"]
    assert flags["--quantization"] == ["fp8"]
    assert flags["--kv-cache-dtype"] == ["fp8"]
    assert flags["--load-format"] == ["safetensors"]
    assert "--no-enable-prefix-caching" in flags and "--enable-prefix-caching" not in flags
    assert "--enable-chunked-prefill" in flags
    assert c["args"][-2:] == ["--seed", "7"]


def test_unset_boolean_engine_settings_leave_vllm_defaults_alone(render_chart) -> None:
    c = engine(_single(render_chart, _vllm([{"name": "chat", "source": "hf://org/chat@abc"}])))
    assert not [a for a in c["args"] if "prefix-caching" in a or "chunked-prefill" in a]


def test_lora_adapters_enable_lora_and_list_every_adapter_in_one_flag(render_chart) -> None:
    model = {
        "name": "chat",
        "source": "hf://org/chat@abc",
        "loraAdapters": [{"name": "sql", "source": "hf://org/sql@1"}, {"name": "chat2", "source": "pvc://loras/c2"}],
    }
    dep = _single(render_chart, _vllm([model]))
    flags = flag_values(engine(dep)["args"])
    assert "--enable-lora" in flags
    assert flags["--max-loras"] == ["2"]
    assert [v.split("=")[0] for v in flags["--lora-modules"]] == ["sql", "chat2"]
    inits = {c["name"] for c in pod_spec(dep)["initContainers"]}
    assert inits == {"download-model", "download-lora-sql"}
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod_spec(dep)["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"loras"}


@pytest.mark.parametrize("count", [1, 8])
def test_gpu_request_sets_limits_toleration_product_selector_and_runtime_class(render_chart, count: int) -> None:
    model = {"name": "big", "source": "hf://org/big@abc", "gpu": {"count": count, "product": H100}, "tensorParallelSize": count}
    spec = pod_spec(_single(render_chart, _vllm([model], runtimeClassName="nvidia")))
    res = engine({"spec": {"template": {"spec": spec}}})["resources"]
    assert res["limits"]["nvidia.com/gpu"] == count
    assert res["requests"]["nvidia.com/gpu"] == count
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["nodeSelector"]["nvidia.com/gpu.product"] == H100
    assert spec["runtimeClassName"] == "nvidia"


def test_cpu_only_model_gets_no_gpu_toleration_selector_or_runtime_class(render_chart) -> None:
    values = _vllm([{"name": "cpu", "source": "hf://org/cpu@abc"}], runtimeClassName="nvidia")
    spec = pod_spec(_single(render_chart, values))
    assert "tolerations" not in spec and "nodeSelector" not in spec and "runtimeClassName" not in spec
    assert "gpu" not in str(engine({"spec": {"template": {"spec": spec}}})["resources"])
    assert "--gpu-memory-utilization" not in engine({"spec": {"template": {"spec": spec}}})["args"]


def test_custom_gpu_resource_name_and_taint_from_global_are_used(render_chart) -> None:
    values = _vllm(
        [{"name": "m", "source": "hf://o/m@a", "gpu": {"count": 1}}],
        **{"global": {"gpu": {"resourceName": "amd.com/gpu", "productLabel": "x", "taint": {"key": "amd.com/gpu", "effect": "NoExecute"}}}},
    )
    spec = pod_spec(_single(render_chart, values))
    assert spec["containers"][0]["resources"]["limits"]["amd.com/gpu"] == 1
    assert spec["tolerations"] == [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoExecute"}]


def test_gpu_rollout_default_is_surge_zero_so_it_never_waits_for_a_spare_gpu(render_chart) -> None:
    gpu = _single(render_chart, _vllm([{"name": "m", "source": "hf://o/m@a", "gpu": {"count": 1}}]))
    assert gpu["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    cpu = _single(render_chart, _vllm([{"name": "m", "source": "hf://o/m@a"}]))
    assert cpu["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_rollout_type_recreate_and_explicit_surge_are_honoured(render_chart) -> None:
    models = [{"name": "m", "source": "hf://o/m@a", "gpu": {"count": 1}}]
    recreate = _single(render_chart, _vllm(models, rollout={"type": "Recreate"}))
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}
    surge = _single(render_chart, _vllm(models, rollout={"maxSurge": "25%", "maxUnavailable": 0}))
    assert surge["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}


def test_min_ready_seconds_holds_the_old_pod_until_the_router_can_have_registered_the_new_one(render_chart) -> None:
    models = [{"name": "m", "source": "hf://o/m@a"}]
    assert _single(render_chart, _vllm(models))["spec"]["minReadySeconds"] == 5
    assert _single(render_chart, _vllm(models, rollout={"minReadySeconds": 0}))["spec"]["minReadySeconds"] == 0


def test_pod_meets_restricted_with_writable_home_tmp_caches_and_memory_shm(render_chart) -> None:
    dep = _single(render_chart, _vllm([{"name": "m", "source": "hf://o/m@a"}], shmSizeLimit="8Gi"))
    spec = pod_spec(dep)
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] >= 10000
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
    c = engine(dep)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    e = env(c)
    for var in ("HOME", "HF_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "XDG_CACHE_HOME"):
        path = e[var]
        mount = max((mp for mp in mounts if path == mp or path.startswith(mp + "/")), key=len)
        assert "emptyDir" in volumes[mounts[mount]] or "persistentVolumeClaim" in volumes[mounts[mount]], var
    assert "/tmp" in mounts
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}


def test_startup_probe_budget_default_fits_a_70b_load_and_liveness_waits_for_it(render_chart) -> None:
    c = engine(_single(render_chart, _vllm([{"name": "m", "source": "hf://o/m@a"}])))
    startup = c["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"


def test_probe_budget_comes_from_values(render_chart) -> None:
    values = _vllm([{"name": "m", "source": "hf://o/m@a"}], probes={"startup": {"periodSeconds": 5, "failureThreshold": 72, "timeoutSeconds": 1}})
    c = engine(_single(render_chart, values))
    assert (c["startupProbe"]["periodSeconds"], c["startupProbe"]["failureThreshold"]) == (5, 72)


def test_shutdown_values_set_prestop_sleep_drain_flag_and_grace_period(render_chart) -> None:
    values = _vllm(
        [{"name": "m", "source": "hf://o/m@a"}],
        shutdown={"preStopSleepSeconds": 7, "drainSeconds": 40, "terminationGracePeriodSeconds": 60},
    )
    dep = _single(render_chart, values)
    c = engine(dep)
    assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 7}}
    assert flag_values(c["args"])["--shutdown-timeout"] == ["40"]
    assert pod_spec(dep)["terminationGracePeriodSeconds"] == 60


def test_digest_wins_over_tag_and_global_registry_replaces_the_registry(render_chart) -> None:
    digest = "sha256:" + "ab" * 32
    values = _vllm(
        [{"name": "m", "source": "hf://o/m@a"}],
        image={"digest": digest},
        **{"global": {"imageRegistry": "mirror.internal:5000", "imagePullSecrets": ["mirror"]}},
    )
    spec = pod_spec(_single(render_chart, values))
    assert spec["containers"][0]["image"] == f"mirror.internal:5000/vllm/vllm-openai@{digest}"
    assert spec["imagePullSecrets"] == [{"name": "mirror"}]
    assert all(c["image"].startswith("mirror.internal:5000/") for c in spec["initContainers"])


def test_hf_source_downloads_pinned_revision_with_token_file_not_env(render_chart) -> None:
    values = _vllm([{"name": "m", "source": "hf://org/model@0123abc"}], modelLoader={"hf": {"tokenSecret": {"name": "hf", "key": "tok"}}})
    spec = pod_spec(_single(render_chart, values))
    (init,) = spec["initContainers"]
    assert init["command"][:7] == ["hf", "download", "org/model", "--revision", "0123abc", "--local-dir", "/cache/models/m"]
    assert env(init)["HF_TOKEN_PATH"].startswith("/var/run/secrets/")
    assert "secretKeyRef" not in str(init["env"])
    secret_vol = next(v for v in spec["volumes"] if v["name"] == "hf-token")
    assert secret_vol["secret"]["secretName"] == "hf"
    assert secret_vol["secret"]["items"] == [{"key": "tok", "path": "token"}]


def test_s3_source_syncs_with_the_aws_cli_and_endpoint(render_chart) -> None:
    values = _vllm([{"name": "m", "source": "s3://bucket/llama"}], modelLoader={"s3": {"endpointUrl": "http://minio:9000"}})
    (init,) = pod_spec(_single(render_chart, values))["initContainers"]
    assert init["image"].startswith("docker.io/amazon/aws-cli:")
    assert init["command"][:5] == ["aws", "s3", "sync", "s3://bucket/llama", "/cache/models/m"]
    assert init["command"][-2:] == ["--endpoint-url", "http://minio:9000"]


def test_pvc_source_mounts_the_claim_read_only_without_download(render_chart) -> None:
    spec = pod_spec(_single(render_chart, _vllm([{"name": "m", "source": "pvc://weights/llama/8b"}])))
    assert "initContainers" not in spec
    c = spec["containers"][0]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "model")
    assert mount == {"name": "model", "mountPath": "/models/m", "subPath": "llama/8b", "readOnly": True}
    assert flag_values(c["args"])["--model"] == ["/models/m"]
    vol = next(v for v in spec["volumes"] if v["name"] == "model")
    assert vol["persistentVolumeClaim"] == {"claimName": "weights", "readOnly": True}


def test_offline_cache_skips_downloads_and_engine_is_always_hub_offline(render_chart) -> None:
    # an offline cache is one filled beforehand: a claim (an emptyDir would start empty; the chart refuses that)
    cache = {"offline": True, "type": "existingClaim", "existingClaim": "warm-cache"}
    spec = pod_spec(_single(render_chart, _vllm([{"name": "m", "source": "hf://o/m@a"}], modelCache=cache)))
    assert "initContainers" not in spec
    assert env(spec["containers"][0])["HF_HUB_OFFLINE"] == "1"


def test_cache_pvc_is_created_per_model_and_kept_on_uninstall(render_chart) -> None:
    values = _vllm(
        [{"name": "a", "source": "hf://o/a@1"}, {"name": "b", "source": "hf://o/b@1"}],
        modelCache={"type": "pvc", "size": "80Gi", "storageClassName": "fast", "accessMode": "ReadWriteMany"},
    )
    manifests = render_chart(CHART, set_values=values)
    pvcs = {p["metadata"]["name"]: p for p in render.find(manifests, "PersistentVolumeClaim")}
    assert sorted(pvcs) == ["llmops-a-cache", "llmops-b-cache"]
    assert pvcs["llmops-a-cache"]["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "fast",
        "resources": {"requests": {"storage": "80Gi"}},
    }
    assert pvcs["llmops-a-cache"]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    cache = next(v for v in pod_spec(deployments(manifests)["llmops-b"])["volumes"] if v["name"] == "cache")
    assert cache == {"name": "cache", "persistentVolumeClaim": {"claimName": "llmops-b-cache"}}


def test_api_key_comes_from_a_secret_reference_only(render_chart) -> None:
    values = _vllm([{"name": "m", "source": "hf://o/m@a"}], apiKey={"enabled": True, "secretName": "keys", "secretKey": "k"})
    c = engine(_single(render_chart, values))
    assert env(c)["VLLM_API_KEY"] == {"secretKeyRef": {"name": "keys", "key": "k"}}
    assert "--api-key" not in c["args"]


def test_otlp_endpoint_enables_vllm_tracing(render_chart) -> None:
    values = _vllm([{"name": "m", "source": "hf://o/m@a"}], tracing={"otlpEndpoint": "http://otel:4317"})
    c = engine(_single(render_chart, values))
    assert flag_values(c["args"])["--otlp-traces-endpoint"] == ["http://otel:4317"]
    assert env(c)["OTEL_SERVICE_NAME"] == "llmops-m"


def test_explicit_resources_win_over_preset(render_chart) -> None:
    explicit = {"requests": {"cpu": "3", "memory": "5Gi"}, "limits": {"memory": "6Gi"}}
    c = engine(_single(render_chart, {"models": [{"name": "m", "source": "hf://o/m@a", "resources": explicit, "resourcesPreset": "large"}]}))
    # the ephemeral storage the emptyDirs hold is added (home 1Gi + tmp 4Gi + 20Gi emptyDir cache)
    assert c["resources"] == {
        "requests": {**explicit["requests"], "ephemeral-storage": "25600Mi"},
        "limits": {**explicit["limits"], "ephemeral-storage": "25600Mi"},
    }
    preset = engine(_single(render_chart, {"models": [{"name": "m", "source": "hf://o/m@a", "resourcesPreset": "nano"}]}))
    assert preset["resources"]["requests"]["cpu"] == "50m"


def test_topology_spread_without_selector_gets_the_model_selector(render_chart) -> None:
    values = _vllm(
        [{"name": "m", "source": "hf://o/m@a"}],
        topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}],
    )
    dep = _single(render_chart, values)
    (tsc,) = pod_spec(dep)["topologySpreadConstraints"]
    assert tsc["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_null_replicas_leaves_the_count_to_an_autoscaler(render_chart) -> None:
    dep = _single(render_chart, {"models": [{"name": "m", "source": "hf://o/m@a", "replicas": None}]})
    assert "replicas" not in dep["spec"]

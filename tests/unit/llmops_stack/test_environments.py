"""Every environment file in values/ through the umbrella chart, under Helm 3 and Helm 4."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmops import environments, paths, tools
from llmops.cluster import images
from llmops.validate import kubeschema, render

CHART = "llmops-stack"
ENV_FILES = sorted(paths.VALUES_DIR.glob("*.yaml"))
PRODUCTION = ("production-h100", "production-70b", "air-gapped")
GPU_KEY = "nvidia.com/gpu"


def _env(name: str) -> Path:
    return paths.VALUES_DIR / f"{name}.yaml"


def _pod_specs(manifests: list[render.Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """Every pod template of MANIFESTS; never empty (a loop over nothing would check nothing)."""
    specs = list(_iter_pod_specs(manifests))
    assert specs, "rendered no pod template"
    return specs


def _iter_pod_specs(manifests: list[render.Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for m in manifests:
        spec = m.obj.get("spec", {})
        if m.kind == "Pod":
            yield m.name, spec
        elif "template" in spec and "spec" in spec["template"]:
            yield f"{m.kind}/{m.name}", spec["template"]["spec"]
        elif m.kind == "CronJob":
            yield m.name, spec["jobTemplate"]["spec"]["template"]["spec"]


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def _gpus(spec: dict[str, Any]) -> int:
    return sum(int((c.get("resources") or {}).get("limits", {}).get(GPU_KEY, 0)) for c in _containers(spec))


def _engines(manifests: list[render.Manifest]) -> list[dict[str, Any]]:
    """The engine Deployments; never empty (every environment and the defaults serve a model)."""
    engines = [
        d
        for d in render.find(manifests, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "engine"
    ]
    assert engines, "rendered no engine Deployment"
    return engines


@pytest.fixture(params=ENV_FILES, ids=lambda p: p.stem)
def env_file(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


def test_every_environment_renders_objects_valid_for_kubernetes_1_33_to_1_35(render_chart, env_file: Path) -> None:
    objs = [m.obj for m in render_chart(CHART, environments.test_layers([env_file]))]
    assert objs
    assert kubeschema.validate_objects(objs, versions=kubeschema.DEFAULT_VERSIONS) == []


def test_gpu_requests_and_gpu_tolerations_appear_exactly_together(render_chart, env_file: Path) -> None:
    for name, spec in _pod_specs(render_chart(CHART, environments.test_layers([env_file]))):
        tolerates = any(t.get("key") == GPU_KEY for t in spec.get("tolerations", []))
        gpus = _gpus(spec)
        assert tolerates == (gpus > 0), f"{name}: {gpus} GPU(s), GPU toleration {tolerates}"
        for c in _containers(spec):
            res = c.get("resources") or {}
            assert res.get("limits", {}).get(GPU_KEY) == res.get("requests", {}).get(GPU_KEY), f"{name}/{c['name']}"


def test_every_pod_meets_pod_security_restricted(render_chart, env_file: Path) -> None:
    for name, spec in _pod_specs(render_chart(CHART, environments.test_layers([env_file]))):
        psc = spec.get("securityContext", {})
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        # The router alone talks to the API server (pod discovery; its Role
        # allows get/list/watch pods in the namespace and nothing else).
        assert spec.get("automountServiceAccountToken") is (name == "Deployment/llmops-router"), name
        for c in _containers(spec):
            sc = c.get("securityContext", {})
            where = f"{name}/{c['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert int(sc.get("runAsUser", psc.get("runAsUser", 0))) >= 10000, where
            assert sc.get("readOnlyRootFilesystem") is True, where
        for v in spec.get("volumes", []):
            assert "hostPath" not in v, f"{name}: hostPath volume {v['name']}"


def test_engine_shutdown_grace_exceeds_prestop_plus_drain(render_chart, env_file: Path) -> None:
    for dep in _engines(render_chart(CHART, environments.test_layers([env_file]))):
        spec = dep["spec"]["template"]["spec"]
        engine = spec["containers"][0]
        prestop = engine["lifecycle"]["preStop"]["sleep"]["seconds"]
        args = engine["args"]
        drain = int(args[args.index("--shutdown-timeout") + 1]) if "--shutdown-timeout" in args else 0
        assert spec["terminationGracePeriodSeconds"] > prestop + drain


def test_engines_have_startup_probe_budget_and_pdb_with_max_unavailable(render_chart, env_file: Path) -> None:
    manifests = render_chart(CHART, environments.test_layers([env_file]))
    pdbs = render.find(manifests, "PodDisruptionBudget")
    for dep in _engines(manifests):
        engine = dep["spec"]["template"]["spec"]["containers"][0]
        probe = engine["startupProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 10 * 60, dep["metadata"]["name"]
        assert engine["livenessProbe"]["httpGet"]["path"] == "/health"
        labels = dep["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(covering) == 1, dep["metadata"]["name"]
        assert "minAvailable" not in covering[0]["spec"]
        assert covering[0]["spec"]["maxUnavailable"] not in (0, "0", "0%")


def test_engines_with_gpus_roll_out_without_a_surge_pod(render_chart, env_file: Path) -> None:
    for dep in _engines(render_chart(CHART, environments.test_layers([env_file]))):
        if _gpus(dep["spec"]["template"]["spec"]) > 0:
            strategy = dep["spec"]["strategy"]
            assert strategy["type"] == "Recreate" or strategy["rollingUpdate"]["maxSurge"] in (0, "0", "0%")


def test_autoscaled_engines_leave_replicas_to_their_autoscaler(render_chart, env_file: Path) -> None:
    manifests = render_chart(CHART, environments.test_layers([env_file]))
    targets = {o["spec"]["scaleTargetRef"]["name"] for o in render.find(manifests, "ScaledObject")}
    targets |= {o["spec"]["scaleTargetRef"]["name"] for o in render.find(manifests, "HorizontalPodAutoscaler")}
    for dep in _engines(manifests):
        autoscaled = dep["metadata"]["name"] in targets
        assert ("replicas" in dep["spec"]) != autoscaled, dep["metadata"]["name"]


def test_local_runs_the_simulator_with_no_gpu_anywhere(render_chart) -> None:
    manifests = render_chart(CHART, [_env("local")])
    (dep,) = _engines(manifests)
    # Built here and imported into the real node (llmops.cluster.images), never pulled.
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == images.ref("llm-d-inference-sim")
    assert "gpu" not in str([m.obj for m in manifests]).lower().replace("gpu-memory", "")
    assert not render.find(manifests, "PersistentVolumeClaim")
    assert all(s["spec"]["type"] == "ClusterIP" for s in render.find(manifests, "Service"))


def test_local_values_file_equals_the_umbrella_defaults_for_serving(render_chart) -> None:
    from_file = _engines(render_chart(CHART, [_env("local")]))
    default = _engines(render_chart(CHART))
    strip = lambda ds: [(d["metadata"]["name"], d["spec"]["template"]["spec"]["containers"][0]["args"]) for d in ds]  # noqa: E731
    assert strip(from_file) == strip(default)


@pytest.mark.parametrize("env", PRODUCTION)
def test_shipped_production_file_with_placeholder_digests_fails_to_render_naming_images_paths_and_how(
    render_chart, env: str
) -> None:
    assert environments.placeholder_digests(_env(env)), f"{env} is expected to ship placeholders"
    with pytest.raises(render.RenderError) as err:
        render_chart(CHART, [_env(env)])
    message = str(err.value)
    bullets = [line for line in message.splitlines() if line.startswith("- ")]
    assert len(bullets) == 1, message  # one problem, listing every image
    for path in ("vllm.image.digest", "vllm.tests.image.digest"):
        assert path in bullets[0]
    assert "vllm/vllm-openai:v0.32.0" in bullets[0] and "crane digest" in bullets[0]
    if env == "production-70b":
        assert "vllm.modelLoader.s3.image.digest" in bullets[0]


def test_test_digest_overlay_says_it_is_test_only_and_names_no_real_digest() -> None:
    text = environments.TEST_IMAGE_DIGESTS.read_text()
    assert "TEST-ONLY" in text.split("\n", 1)[0]
    assert environments.placeholder_digests(environments.TEST_IMAGE_DIGESTS) == []


@pytest.mark.parametrize("env", PRODUCTION)
def test_production_environments_pin_every_image_by_digest(render_chart, env: str) -> None:
    for name, spec in _pod_specs(render_chart(CHART, environments.test_layers([_env(env)]))):
        for c in _containers(spec):
            assert "@sha256:" in c["image"], f"{env}: {name}/{c['name']} uses {c['image']}"


def test_production_h100_runs_several_8b_replicas_on_one_h100_each(render_chart) -> None:
    manifests = render_chart(CHART, environments.test_layers([_env("production-h100")]))
    (dep,) = _engines(manifests)
    spec = dep["spec"]["template"]["spec"]
    (scaler,) = [o for o in render.find(manifests, "ScaledObject") if o["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]]
    assert scaler["spec"]["minReplicaCount"] >= 2
    assert _gpus(spec) == 1
    assert spec["nodeSelector"]["nvidia.com/gpu.product"].startswith("NVIDIA-H100")
    assert "8B" in spec["containers"][0]["args"][spec["containers"][0]["args"].index("--served-model-name") + 1]


def test_production_70b_shards_across_all_gpus_of_the_pod(render_chart) -> None:
    (dep,) = _engines(render_chart(CHART, environments.test_layers([_env("production-70b")])))
    spec = dep["spec"]["template"]["spec"]
    args = spec["containers"][0]["args"]
    tp = int(args[args.index("--tensor-parallel-size") + 1])
    assert tp in (4, 8)
    assert _gpus(spec) == tp
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")["emptyDir"]
    assert shm["medium"] == "Memory" and shm["sizeLimit"].endswith("Gi") and int(shm["sizeLimit"][:-2]) >= 16


def test_air_gapped_pulls_from_the_mirror_and_downloads_nothing(render_chart) -> None:
    manifests = render_chart(CHART, environments.test_layers([_env("air-gapped")]))
    for name, spec in _pod_specs(manifests):
        assert "initContainers" not in spec, name
        for c in _containers(spec):
            assert c["image"].startswith("registry.airgap.internal:5000/"), f"{name}: {c['image']}"
        assert {"name": "airgap-registry"} in spec.get("imagePullSecrets", []), name
    for dep in _engines(manifests):
        spec = dep["spec"]["template"]["spec"]
        assert any("persistentVolumeClaim" in v and v["name"] == "model" for v in spec["volumes"])


def test_staging_runs_vllm_on_one_gpu_with_a_pinned_model_revision(render_chart) -> None:
    (dep,) = _engines(render_chart(CHART, [_env("staging")]))
    spec = dep["spec"]["template"]["spec"]
    assert _gpus(spec) == 1
    (init,) = spec["initContainers"]
    revision = init["command"][init["command"].index("--revision") + 1]
    assert len(revision) == 40 and int(revision, 16) >= 0


def test_every_environment_file_opens_with_who_it_is_for_and_its_assumptions(env_file: Path) -> None:
    head = env_file.read_text().split("\n\n", 1)[0]
    assert head.startswith("#") and len(head.splitlines()) >= 3
    if env_file.stem in ("local", "staging", *PRODUCTION):
        assert "Assumes" in head


def test_helm_lint_strict_is_clean_for_every_environment(helm: str, env_file: Path) -> None:
    render.ensure_dependencies(CHART, helm)
    layers = [arg for f in environments.test_layers([env_file]) for arg in ("--values", str(f))]
    proc = subprocess.run(
        [str(tools.require(helm)), "lint", "--strict", str(render.chart_path(CHART)), *layers],
        capture_output=True, text=True, env=tools.tool_env(), check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def _quantity(q: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * mult
    return float(q)


def _max_pods(manifests: list[render.Manifest], dep: dict[str, Any]) -> int:
    name = dep["metadata"]["name"]
    for so in render.find(manifests, "ScaledObject"):
        if so["spec"]["scaleTargetRef"]["name"] == name:
            return int(so["spec"]["maxReplicaCount"])
    for hpa in render.find(manifests, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == name:
            return int(hpa["spec"]["maxReplicas"])
    return int(dep["spec"].get("replicas", 1))


def test_a_cache_claim_shared_by_several_replicas_is_read_write_many(render_chart, env_file: Path) -> None:
    manifests = render_chart(CHART, environments.test_layers([env_file]))
    claims = {p["metadata"]["name"]: p for p in render.find(manifests, "PersistentVolumeClaim")}
    for dep in _engines(manifests):
        for vol in dep["spec"]["template"]["spec"]["volumes"]:
            claim = claims.get((vol.get("persistentVolumeClaim") or {}).get("claimName", ""))
            if claim and _max_pods(manifests, dep) > 1:
                assert claim["spec"]["accessModes"] == ["ReadWriteMany"], (
                    f"{env_file.stem}: {dep['metadata']['name']} scales to {_max_pods(manifests, dep)} pods on "
                    f"{claim['metadata']['name']} ({claim['spec']['accessModes']})"
                )


def test_a_created_priority_class_is_used_by_every_gpu_pod(render_chart, env_file: Path) -> None:
    manifests = render_chart(CHART, environments.test_layers([env_file]))
    created = {p["metadata"]["name"] for p in render.find(manifests, "PriorityClass")}
    for name, spec in _pod_specs(manifests):
        if created and _gpus(spec) > 0:
            assert spec.get("priorityClassName") in created, f"{env_file.stem}: {name} runs at priority 0"


@pytest.mark.parametrize("env", PRODUCTION)
def test_production_replicas_never_share_a_node(render_chart, env: str) -> None:
    manifests = render_chart(CHART, environments.test_layers([_env(env)]))
    for dep in _engines(manifests):
        spec = dep["spec"]["template"]["spec"]
        hard_spread = any(
            c["topologyKey"] == "kubernetes.io/hostname" and c["whenUnsatisfiable"] == "DoNotSchedule"
            for c in spec.get("topologySpreadConstraints", [])
        )
        anti = spec.get("affinity", {}).get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
        assert hard_spread or any(t["topologyKey"] == "kubernetes.io/hostname" for t in anti), dep["metadata"]["name"]
        assert _max_pods(manifests, dep) > 1


def test_engines_request_and_limit_the_ephemeral_storage_their_emptydirs_hold(render_chart, env_file: Path) -> None:
    for dep in _engines(render_chart(CHART, environments.test_layers([env_file]))):
        spec = dep["spec"]["template"]["spec"]
        disk = sum(
            _quantity(str(v["emptyDir"].get("sizeLimit", "0")))
            for v in spec["volumes"]
            if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory"
        )
        for c in _containers(spec):
            res = c["resources"]
            where = f"{env_file.stem}: {dep['metadata']['name']}/{c['name']}"
            assert _quantity(res["requests"]["ephemeral-storage"]) >= disk, where
            assert _quantity(res["limits"]["ephemeral-storage"]) >= disk, where


def test_staging_downloads_only_the_files_vllm_loads(render_chart) -> None:
    (dep,) = _engines(render_chart(CHART, [_env("staging")]))
    (init,) = dep["spec"]["template"]["spec"]["initContainers"]
    cmd = init["command"]
    includes = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--include"]
    excludes = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--exclude"]
    assert "*.safetensors" in includes and "*.json" in includes
    assert not any(p.endswith((".pth", ".bin", ".pt")) for p in includes)
    assert "original/*" in excludes


def test_local_helm_test_runs_the_python_image_built_here(render_chart) -> None:
    manifests = render_chart(CHART, [_env("local")])
    tests = [m.obj for m in manifests if m.obj["kind"] == "Pod" and "test" in m.obj["metadata"].get("annotations", {}).get("helm.sh/hook", "")]
    assert tests and all(p["spec"]["containers"][0]["image"] == images.ref("python") for p in tests)

"""Property: values generated inside the vllm chart's own schema constraints pass the schema and render.

Scalars (enums, ranges, nullable types) are drawn from the constraints read
out of charts/vllm/values.schema.json at test time, so a schema change moves
the generator with it. Cross-field rules that only validateValues knows
(tensorParallelSize <= gpu.count, grace period > preStop + drain, vLLM's
token-budget limits, unique names) are satisfied by construction: the
property is that every value the rules allow really renders, with one
engine Deployment per model carrying the GPUs it asked for.

Each example renders the vllm subchart once, with Helm 3 or Helm 4 (drawn).
Profiles: `ci` (CI=true) runs 200 examples, `dev` 40.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops import paths
from llmops.validate import render, values_schema

SCHEMA: dict[str, Any] = json.loads((paths.CHARTS_DIR / "vllm" / "values.schema.json").read_text())
MODEL = SCHEMA["properties"]["models"]["items"]["properties"]

settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = "ci" if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else "dev"


def scalar(schema: dict[str, Any], cap: int = 1 << 20) -> st.SearchStrategy[Any]:
    """Strategy for a scalar JSON Schema: enum, boolean, integer/number ranges, nullable types."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    options: list[st.SearchStrategy[Any]] = []
    if "null" in types:
        options.append(st.none())
    if "boolean" in types:
        options.append(st.booleans())
    if "integer" in types:
        lo = schema.get("minimum", 0)
        hi = min(schema.get("maximum", cap), cap)
        options.append(st.integers(lo, hi))
    elif "number" in types:
        lo = schema.get("exclusiveMinimum", schema.get("minimum", 0.0))
        exclusive = "exclusiveMinimum" in schema
        options.append(
            st.floats(lo, schema.get("maximum", float(cap)), exclude_min=exclusive, allow_nan=False)
            .map(lambda x: round(x, 4))
            .filter(lambda x: x > lo or not exclusive)
        )
    assert options, f"no strategy for {schema}"
    return st.one_of(options)


DNS = st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
SEGMENT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}", fullmatch=True)
SOURCES = st.one_of(
    st.builds(lambda o, m, r: f"hf://{o}/{m}@{r}", SEGMENT, SEGMENT, st.from_regex(r"[0-9a-f]{7,40}", fullmatch=True)),
    st.builds(lambda o, m: f"hf://{o}/{m}", SEGMENT, SEGMENT),
    st.builds(lambda b, p: f"s3://{b}/{p}", DNS, SEGMENT),
    st.builds(lambda c, p: f"pvc://{c}/{p}", DNS, SEGMENT),
)


@st.composite
def model(draw: st.DrawFn, name: str) -> dict[str, Any]:
    gpus = draw(scalar(MODEL["gpu"]["properties"]["count"]))
    entry: dict[str, Any] = {
        "name": name,
        "source": draw(SOURCES),
        "replicas": draw(st.integers(MODEL["replicas"].get("minimum", 0), 4)),
        "gpu": {"count": gpus},
        # validateValues: every tensor-parallel rank needs a GPU.
        "tensorParallelSize": draw(st.integers(1, max(1, gpus))),
    }
    for key in ("dtype", "maxModelLen", "gpuMemoryUtilization", "maxNumSeqs", "maxNumBatchedTokens",
                "enablePrefixCaching", "enableChunkedPrefill", "resourcesPreset"):
        if draw(st.booleans()):
            entry[key] = draw(scalar(MODEL[key]))
    # validateValues (vLLM's scheduler limits): a step's token budget covers every running sequence,
    # and a whole prompt when chunked prefill is off.
    budget = entry.get("maxNumBatchedTokens")
    if budget is not None:
        floors = [entry.get("maxNumSeqs") or 0]
        if entry.get("enableChunkedPrefill") is False:
            floors.append(entry.get("maxModelLen") or 0)
        entry["maxNumBatchedTokens"] = max([budget, *floors])
    if draw(st.booleans()):
        # validateValues: a request never exceeds its limit (quantities in different units).
        request_mi = draw(st.integers(1, 64 * 1024))
        limit_mi = request_mi + draw(st.integers(0, 64 * 1024))
        entry["resources"] = {"requests": {"memory": f"{request_mi}Mi", "cpu": f"{draw(st.integers(1, 8000))}m"},
                              "limits": {"memory": draw(st.sampled_from([f"{limit_mi}Mi", f"{limit_mi * 1048576}"]))}}
    if gpus and draw(st.booleans()):
        entry["gpu"]["product"] = draw(st.sampled_from(["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L4"]))
    return entry


@st.composite
def vllm_values(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(DNS, min_size=1, max_size=3, unique=True))
    pre = draw(st.integers(0, 30))
    drain = draw(st.integers(0, 300))
    cache_schema = SCHEMA["properties"]["modelCache"]["properties"]
    cache = {"type": draw(st.sampled_from(["emptyDir", "pvc"])),
             # validateValues: the loader writes the cache, so never ReadOnlyMany.
             "accessMode": draw(st.sampled_from([m for m in cache_schema["accessMode"]["enum"] if m != "ReadOnlyMany"]))}
    rollout: dict[str, Any] = {"type": draw(scalar(SCHEMA["properties"]["rollout"]["properties"]["type"]))}
    replicas_share_claim = cache["type"] == "pvc" and cache["accessMode"] == "ReadWriteOnce"
    if replicas_share_claim:
        # validateValues: a surge pod (or a second replica) on another node hangs on Multi-Attach.
        rollout = {"type": "RollingUpdate", "maxSurge": 0, "maxUnavailable": 1} if draw(st.booleans()) else {"type": "Recreate"}
    models = [draw(model(n)) for n in names]
    if replicas_share_claim:
        for m in models:
            m["replicas"] = min(m["replicas"], 1)
    engine = draw(scalar(SCHEMA["properties"]["engine"]))
    # validateValues: vLLM needs minutes to start (>= 300 s of startup budget).
    period = draw(st.integers(1, 30))
    threshold = draw(st.integers(-(-300 // period) if engine == "vllm" else 1, 400))
    return {
        "engine": engine,
        "modelCache": cache,
        "probes": {"startup": {"periodSeconds": period, "failureThreshold": threshold}},
        "models": models,
        # validateValues: the grace period outlasts preStop + drain.
        "shutdown": {"preStopSleepSeconds": pre, "drainSeconds": drain,
                     "terminationGracePeriodSeconds": pre + drain + draw(st.integers(1, 60))},
        "rollout": rollout,
    }


@settings(settings.get_profile(PROFILE))
@given(values=vllm_values(), helm=st.sampled_from(render.HELM_VERSIONS))
def test_values_within_the_schema_render_one_engine_per_model(values: dict[str, Any], helm: str, tmp_path_factory: Any) -> None:
    f = tmp_path_factory.mktemp("v") / "values.yaml"
    f.write_text(json.dumps(values))
    assert values_schema.validate_files([f], "vllm") == []
    manifests = render.render("vllm", [f], helm=helm, release="p")
    deployments = {m.name: m.obj for m in manifests if m.kind == "Deployment"}
    assert set(deployments) == {f"p-{m['name']}" for m in values["models"]}
    for m in values["models"]:
        pod = deployments[f"p-{m['name']}"]["spec"]["template"]["spec"]
        limits = pod["containers"][0].get("resources", {}).get("limits", {})
        assert int(limits.get("nvidia.com/gpu", 0)) == m["gpu"]["count"]
        assert pod["terminationGracePeriodSeconds"] == values["shutdown"]["terminationGracePeriodSeconds"]
        # the engine asks for (and may use) the disk its emptyDirs hold
        resources = pod["containers"][0]["resources"]
        assert resources["requests"]["ephemeral-storage"] == resources["limits"]["ephemeral-storage"]

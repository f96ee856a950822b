"""The run's umbrella values: what the chart renders from them is what the real node can run."""

from __future__ import annotations

from pathlib import Path

import yaml

from llmops import paths
from llmops.autoscale import scenarios
from llmops.autoscale.stack import ModelSpec, capacity_problems
from llmops.validate import render


def test_umbrella_values_render_gpu_engines_from_the_locally_built_image_and_fit_six_fake_gpus(tmp_path: Path) -> None:
    models = [ModelSpec("burst", "burst-llm"), ModelSpec("idle", "idle-llm")]
    overrides = {"burst": {"minReplicas": 1, "maxReplicas": 4},
                 "idle": scenarios.scale_to_zero(maxReplicas=2)}  # fmt: skip
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(scenarios.umbrella_values("ns", models, overrides, prometheus_url="http://127.0.0.1:1")))
    docs = [m.obj for m in render.render("llmops-stack", [values], release="as", namespace="ns")]
    local = yaml.safe_load((paths.VALUES_DIR / "local.yaml").read_text())["vllm"]["simulator"]["image"]
    engines = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] in ("as-burst", "as-idle")]
    assert len(engines) == 2
    for d in engines:
        pod = d["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == f"{local['registry']}/{local['repository']}:{local['tag']}"
        assert pod["nodeSelector"]["nvidia.com/gpu.product"] == scenarios.GPU_PRODUCT
    assert any(d["kind"] == "Deployment" and d["metadata"]["name"] == "as-router" for d in docs)
    # the e2e's real node: 6 fake GPUs, 2 cores, a disk like this machine's
    node = {"nvidia.com/gpu": 6.0, "cpu": 2.0, "memory": 8 * 1024.0**3, "ephemeral-storage": 200 * 1024.0**3}
    assert capacity_problems(docs, node) == []
    assert capacity_problems(docs, {**node, "nvidia.com/gpu": 5.0})

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import (
    WORKLOAD_KINDS,
    LlmopsK8Check,
    all_containers,
    gpu_resource,
    gpu_taint,
    is_gpu_pod,
    pod_spec,
)


def tolerates(spec: dict[str, Any], taint_key: str, taint_effect: str) -> bool:
    for t in spec.get("tolerations") or []:
        key, op, effect = t.get("key"), t.get("operator", "Equal"), t.get("effect")
        if effect not in (None, "", taint_effect):
            continue
        if op == "Exists" and key in (None, "", taint_key):
            return True
        if key == taint_key:
            return True
    return False


class GpuLimitsAndToleration(LlmopsK8Check):
    """A pod that asks for GPUs must limit them (the device plugin schedules on limits) and tolerate the GPU taint."""

    def __init__(self) -> None:
        super().__init__(
            name="GPU pods set nvidia.com/gpu limits and tolerate the GPU taint",
            id="CKV_LLMOPS_3",
            categories=(CheckCategories.KUBERNETES,),
            supported_entities=WORKLOAD_KINDS,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        spec = pod_spec(conf)
        resource = gpu_resource(conf)
        if not is_gpu_pod(spec, resource):
            return CheckResult.PASSED
        for c in all_containers(spec):
            res = c.get("resources") or {}
            if resource in (res.get("requests") or {}) and resource not in (res.get("limits") or {}):
                self.details.append(f"container {c.get('name')} requests {resource} without a limit")
        key, effect = gpu_taint(conf)
        if not tolerates(spec, key, effect):
            self.details.append(f"no toleration for the {key}:{effect} taint of GPU nodes")
        return CheckResult.FAILED if self.details else CheckResult.PASSED


check = GpuLimitsAndToleration()

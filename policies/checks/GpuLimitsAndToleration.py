from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import LlmopsK8Check, GPU_RESOURCE, GPU_TAINT_KEY, WORKLOAD_KINDS, all_containers, is_gpu_pod, pod_spec


def tolerates_gpu_taint(spec: dict[str, Any]) -> bool:
    for t in spec.get("tolerations") or []:
        key, op, effect = t.get("key"), t.get("operator", "Equal"), t.get("effect")
        if effect not in (None, "", "NoSchedule"):
            continue
        if op == "Exists" and key in (None, "", GPU_TAINT_KEY):
            return True
        if key == GPU_TAINT_KEY:
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
        if not is_gpu_pod(spec):
            return CheckResult.PASSED
        for c in all_containers(spec):
            res = c.get("resources") or {}
            if GPU_RESOURCE in (res.get("requests") or {}) and GPU_RESOURCE not in (res.get("limits") or {}):
                self.details.append(f"container {c.get('name')} requests {GPU_RESOURCE} without a limit")
        if not tolerates_gpu_taint(spec):
            self.details.append(f"no toleration for the {GPU_TAINT_KEY}:NoSchedule taint of GPU nodes")
        return CheckResult.FAILED if self.details else CheckResult.PASSED


check = GpuLimitsAndToleration()

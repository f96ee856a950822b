from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import LlmopsK8Check, WORKLOAD_KINDS, all_containers, pod_spec


class ShmSizeLimit(LlmopsK8Check):
    """/dev/shm backed by memory counts against the pod's memory: without a sizeLimit it can OOM the node."""

    def __init__(self) -> None:
        super().__init__(
            name="/dev/shm is a memory emptyDir with a sizeLimit",
            id="CKV_LLMOPS_5",
            categories=(CheckCategories.KUBERNETES,),
            supported_entities=WORKLOAD_KINDS,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        spec = pod_spec(conf)
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        for c in all_containers(spec):
            for m in c.get("volumeMounts") or []:
                if str(m.get("mountPath", "")).rstrip("/") != "/dev/shm":
                    continue
                vol = volumes.get(m.get("name")) or {}
                empty = vol.get("emptyDir")
                if not isinstance(empty, dict):
                    self.details.append(f"container {c.get('name')}: /dev/shm volume {m.get('name')} is not an emptyDir")
                elif not empty.get("sizeLimit"):
                    self.details.append(f"volume {m.get('name')} mounted at /dev/shm has no sizeLimit")
        return CheckResult.FAILED if self.details else CheckResult.PASSED


check = ShmSizeLimit()

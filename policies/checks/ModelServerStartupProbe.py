from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import LlmopsK8Check, ENGINE_COMPONENT, WORKLOAD_KINDS, pod_labels, pod_spec


class ModelServerStartupProbe(LlmopsK8Check):
    """Model loads take minutes: without a startupProbe the liveness probe kills the pod mid-load."""

    def __init__(self) -> None:
        super().__init__(
            name="Model server containers have a startupProbe",
            id="CKV_LLMOPS_6",
            categories=(CheckCategories.KUBERNETES,),
            supported_entities=WORKLOAD_KINDS,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        if pod_labels(conf).get("app.kubernetes.io/component") != ENGINE_COMPONENT:
            return CheckResult.PASSED
        for c in pod_spec(conf).get("containers") or []:
            serves = any(p.get("name") == "http" for p in c.get("ports") or [])
            if serves and not c.get("startupProbe"):
                self.details.append(f"engine container {c.get('name')} serves port http but has no startupProbe")
        return CheckResult.FAILED if self.details else CheckResult.PASSED


check = ModelServerStartupProbe()

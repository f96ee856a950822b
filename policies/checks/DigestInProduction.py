from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import LlmopsK8Check, WORKLOAD_KINDS, all_containers, environment, pod_spec


class DigestInProduction(LlmopsK8Check):
    """In production a tag is not enough: tags move, digests do not.

    The environment comes from the `policy.llmops.io/environment` annotation
    that `llmops policy` stamps (from the values' global.environment) on the
    copy it scans; objects without it are not judged by this check.
    """

    def __init__(self) -> None:
        super().__init__(
            name="Images are pinned by digest in production environments",
            id="CKV_LLMOPS_2",
            categories=(CheckCategories.KUBERNETES,),
            supported_entities=WORKLOAD_KINDS,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        if environment(conf) != "production":
            return CheckResult.PASSED
        unpinned = [str(c.get("image", "")) for c in all_containers(pod_spec(conf)) if "@sha256:" not in str(c.get("image", ""))]
        self.details.extend(f"image {i!r} is not pinned by digest" for i in unpinned)
        return CheckResult.FAILED if unpinned else CheckResult.PASSED


check = DigestInProduction()

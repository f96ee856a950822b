from __future__ import annotations

import re
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import LlmopsK8Check, WORKLOAD_KINDS, all_containers, environment, pod_spec


PLACEHOLDER = re.compile(r"@sha256:([0-9a-f])\1{63}$")


class DigestInProduction(LlmopsK8Check):
    """In production a tag is not enough: tags move, digests do not.

    The environment comes from the `policy.llmops.io/environment` annotation
    that `llmops policy` stamps (from the values' global.environment) on the
    copy it scans; objects without it are not judged for tags. A placeholder
    digest (64 times the same hex digit, as the shipped values files carry
    until someone fills in the reviewed digest) names no image, so it never
    counts as pinned, in any environment.
    """

    def __init__(self) -> None:
        super().__init__(
            name="Images are pinned by digest in production environments",
            id="CKV_LLMOPS_2",
            categories=(CheckCategories.KUBERNETES,),
            supported_entities=WORKLOAD_KINDS,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        images = [str(c.get("image", "")) for c in all_containers(pod_spec(conf))]
        placeholders = [i for i in images if PLACEHOLDER.search(i)]
        self.details.extend(f"image {i!r} has a placeholder digest, not a real one" for i in placeholders)
        unpinned = []
        if environment(conf) == "production":
            unpinned = [i for i in images if "@sha256:" not in i]
            self.details.extend(f"image {i!r} is not pinned by digest" for i in unpinned)
        return CheckResult.FAILED if (unpinned or placeholders) else CheckResult.PASSED


check = DigestInProduction()

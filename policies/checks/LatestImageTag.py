from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import LlmopsK8Check, WORKLOAD_KINDS, all_containers, pod_spec


def image_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (means :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses the mutable tag latest"
    return None


class LatestImageTag(LlmopsK8Check):
    """A tag or digest, never `latest`: a restart must not silently change the model server."""

    def __init__(self) -> None:
        super().__init__(
            name="Images are pinned to a tag or digest, never latest",
            id="CKV_LLMOPS_1",
            categories=(CheckCategories.KUBERNETES,),
            supported_entities=WORKLOAD_KINDS,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        problems = [p for c in all_containers(pod_spec(conf)) if (p := image_problem(str(c.get("image", ""))))]
        self.details.extend(problems)
        return CheckResult.FAILED if problems else CheckResult.PASSED


check = LatestImageTag()

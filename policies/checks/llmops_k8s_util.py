"""Helpers shared by the llmops custom checkov checks (not a check itself).

checkov puts this folder on sys.path while it loads external checks, so the
check modules import this one by its plain name.
"""

from __future__ import annotations

from typing import Any

WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob")
ENV_ANNOTATION = "policy.llmops.io/environment"
# Stamped by `llmops policy` from global.gpu (resourceName, taint.key, taint.effect).
GPU_RESOURCE_ANNOTATION = "policy.llmops.io/gpu-resource"
GPU_TAINT_ANNOTATION = "policy.llmops.io/gpu-taint"
ENGINE_COMPONENT = "engine"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"


def pod_template(conf: dict[str, Any]) -> dict[str, Any]:
    """The pod (metadata + spec) of any workload kind; {} when there is none."""
    kind = conf.get("kind")
    if kind == "Pod":
        return conf
    spec = conf.get("spec") or {}
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    tpl = spec.get("template")
    return tpl if isinstance(tpl, dict) else {}


def pod_spec(conf: dict[str, Any]) -> dict[str, Any]:
    spec = pod_template(conf).get("spec")
    return spec if isinstance(spec, dict) else {}


def pod_labels(conf: dict[str, Any]) -> dict[str, str]:
    return dict((pod_template(conf).get("metadata") or {}).get("labels") or {})


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out.extend(c for c in spec.get(key) or [] if isinstance(c, dict))
    return out


def annotation(conf: dict[str, Any], key: str, default: str = "") -> str:
    raw = (conf.get("metadata") or {}).get("annotations") or {}
    # checkov turns metadata.annotations into a list of one-entry maps while it parses skips.
    merged: dict[str, Any] = {}
    for item in raw if isinstance(raw, list) else [raw]:
        if isinstance(item, dict):
            merged.update(item)
    return str(merged.get(key) or default)


def environment(conf: dict[str, Any]) -> str:
    """The environment tier the policy run stamped on the scanned copy of this object."""
    return annotation(conf, ENV_ANNOTATION)


def gpu_resource(conf: dict[str, Any]) -> str:
    return annotation(conf, GPU_RESOURCE_ANNOTATION, GPU_RESOURCE)


def gpu_taint(conf: dict[str, Any]) -> tuple[str, str]:
    key, _, effect = annotation(conf, GPU_TAINT_ANNOTATION, f"{GPU_TAINT_KEY}:NoSchedule").partition(":")
    return key, effect or "NoSchedule"


def is_gpu_pod(spec: dict[str, Any], resource: str = GPU_RESOURCE) -> bool:
    for c in all_containers(spec):
        res = c.get("resources") or {}
        for section in ("requests", "limits"):
            value = (res.get(section) or {}).get(resource)
            if value not in (None, 0, "0"):
                return True
    return False


from checkov.common.checks.base_check import BaseCheck  # noqa: E402
from checkov.kubernetes.checks.resource.base_spec_check import BaseK8Check  # noqa: E402


class LlmopsK8Check(BaseK8Check):
    """BaseK8Check whose failure reasons (``self.details``) reach the JSON report.

    checkov's kubernetes runner drops ``details`` when it builds a record but
    keeps the ``check_result`` dict, so the reasons travel there.
    """

    def run(self, scanned_file: str, entity_configuration: dict[str, Any], entity_name: str, entity_type: str,
            skip_info: Any) -> Any:
        result = BaseCheck.run(self, scanned_file, entity_configuration, entity_name, entity_type, skip_info)
        result["details"] = list(self.details)
        return result

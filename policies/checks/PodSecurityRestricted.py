from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult

from llmops_k8s_util import LlmopsK8Check, WORKLOAD_KINDS, all_containers, pod_spec

# Pod Security Standards "restricted" (Kubernetes 1.33-1.35), written from the
# published standard: the volume types it allows and the one capability it lets a pod add.
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
                   "secret", "image"}
ADDABLE_CAPS = {"NET_BIND_SERVICE"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    out: list[str] = []
    psc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"{field}: true")
    for v in spec.get("volumes") or []:
        kinds = {k for k in v if k != "name" and not k.startswith("__")}  # checkov adds __startline__
        bad = kinds - ALLOWED_VOLUMES
        if bad:
            out.append(f"volume {v.get('name')} uses {', '.join(sorted(bad))}")
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            out.append(f"unsafe sysctl {s.get('name')}")
    pod_nonroot = psc.get("runAsNonRoot") is True
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        out.append(f"pod seccompProfile {pod_seccomp}")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("pod hostProcess")
    for c in all_containers(spec):
        name = c.get("name")
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"container {name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"container {name}: allowPrivilegeEscalation is not false")
        nonroot = sc.get("runAsNonRoot", None)
        if nonroot is False or (nonroot is None and not pod_nonroot):
            out.append(f"container {name}: runAsNonRoot is not true (pod or container)")
        if sc.get("runAsUser") == 0:
            out.append(f"container {name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"container {name}: seccompProfile is not RuntimeDefault/Localhost")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"container {name}: capabilities do not drop ALL")
        extra = set(caps.get("add") or []) - ADDABLE_CAPS
        if extra:
            out.append(f"container {name}: adds capabilities {', '.join(sorted(extra))}")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"container {name}: procMount {sc.get('procMount')}")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append(f"container {name}: hostPort {p['hostPort']}")
    return out


class PodSecurityRestricted(LlmopsK8Check):
    """Every pod we render meets Pod Security "restricted", so the namespace can enforce it."""

    def __init__(self) -> None:
        super().__init__(
            name='Pods meet the Pod Security Standard "restricted"',
            id="CKV_LLMOPS_4",
            categories=(CheckCategories.KUBERNETES,),
            supported_entities=WORKLOAD_KINDS,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        problems = restricted_violations(pod_spec(conf))
        self.details.extend(problems)
        return CheckResult.FAILED if problems else CheckResult.PASSED


check = PodSecurityRestricted()
